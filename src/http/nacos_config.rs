//! Nacos config v1: `/v1/cs/configs` GET / POST / DELETE (the first vertical slice).

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::consistency;
use super::nacos_error;
use super::params;
use super::publish_options;
use super::AppState;
use crate::domain::config::make_key;
use crate::domain::DomainError;
use crate::state_machine::command::ConfigItem;
use crate::state_machine::command::ConfigKey;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/cs/configs", get(get_config).post(publish_config).delete(delete_config))
}

fn key_of(
    p: &std::collections::HashMap<String, String>,
) -> Result<crate::state_machine::command::ConfigKey, DomainError> {
    make_key(
        p.get("tenant").or(p.get("namespaceId")).map(String::as_str),
        p.get("group").map(String::as_str),
        p.get("dataId").map(String::as_str),
    )
}

/// The Content-Type Nacos serves for a config type.
fn content_type(config_type: &str) -> &'static str {
    match config_type {
        "json" => "application/json;charset=UTF-8",
        "xml" => "application/xml;charset=UTF-8",
        "html" => "text/html;charset=UTF-8",
        _ => "text/plain;charset=UTF-8",
    }
}

/// One row of a v1 search page.
fn search_row(k: &ConfigKey, c: &ConfigItem) -> serde_json::Value {
    serde_json::json!({
        "id": c.create_index.to_string(),
        "dataId": k.data_id,
        "group": k.group,
        "content": c.content,
        "md5": c.md5,
        "encryptedDataKey": c.meta.encrypted_data_key,
        "tenant": k.namespace,
        "appName": c.meta.app_name,
        "type": c.meta.config_type,
    })
}

/// `show=all`: every field of the config (Nacos `ConfigAllInfo`).
fn all_info(k: &ConfigKey, c: &ConfigItem) -> serde_json::Value {
    serde_json::json!({
        "id": c.create_index.to_string(), "dataId": k.data_id, "group": k.group, "tenant": k.namespace,
        "content": c.content, "md5": c.md5, "appName": c.meta.app_name, "type": c.meta.config_type,
        "desc": c.meta.desc, "configTags": c.meta.tags, "encryptedDataKey": c.meta.encrypted_data_key,
        "createUser": c.meta.src_user, "createIp": c.meta.src_ip, "createTime": c.create_time_ms,
        "modifyTime": c.modify_time_ms, "use": "", "effect": "", "schema": "",
    })
}

fn is_beta(p: &std::collections::HashMap<String, String>) -> bool {
    p.get("beta").is_some_and(|v| v == "true")
}

/// `GET ?beta=true`: the beta version's details (Nacos answers `data: null` when there is none).
async fn beta_info(st: &AppState, p: &std::collections::HashMap<String, String>) -> Response {
    let key = match key_of(p) {
        Ok(k) => k,
        Err(e) => return nacos_error(e),
    };
    match st.config.get_beta(&key, consistency(p)).await {
        Ok(b) => axum::Json(serde_json::json!({
            "code": 200,
            "message": "query beta ok",
            "data": b.map(|b| serde_json::json!({
                "id": b.item.create_index.to_string(), "dataId": key.data_id, "group": key.group,
                "tenant": key.namespace, "content": b.item.content, "md5": b.item.md5, "betaIps": b.beta_ips,
                "appName": b.item.meta.app_name, "type": b.item.meta.config_type,
            })),
        }))
        .into_response(),
        Err(e) => nacos_error(e),
    }
}

async fn get_config(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    if is_beta(&p) {
        return beta_info(&st, &p).await;
    }
    // `search=accurate|blur` turns the read into a paged search (the console's list).
    if p.contains_key("search") {
        return match super::nacos_v3::search_page(&st, &p, search_row).await {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => nacos_error(e),
        };
    }
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(e) => return nacos_error(e),
    };
    if p.get("show").is_some_and(|v| v == "all") {
        return match st.config.get(&key, consistency(&p)).await {
            Ok(Some(c)) => axum::Json(all_info(&key, &c)).into_response(),
            Ok(None) => (StatusCode::NOT_FOUND, "config data not exist\n").into_response(),
            Err(e) => nacos_error(e),
        };
    }
    let tag = p.get("tag").map(|t| t.trim()).filter(|t| !t.is_empty());
    let found = match tag {
        Some(tag) => st.config.get_tag(&key, tag, consistency(&p)).await.map(|o| o.map(|i| (i, false))),
        None => st.config.get_for(&key, &peer.ip().to_string(), consistency(&p)).await,
    };
    match found {
        Ok(Some((item, beta))) => {
            let mut resp = (StatusCode::OK, item.content).into_response();
            let h = resp.headers_mut();
            let mut set = |k: &'static str, v: &str| {
                if let Ok(v) = axum::http::HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            };
            set("Content-Type", content_type(&item.meta.config_type));
            set("Content-MD5", &item.md5);
            set("Config-Type", &item.meta.config_type);
            let modified = std::time::UNIX_EPOCH + std::time::Duration::from_millis(item.modify_time_ms);
            set("Last-Modified", &httpdate::fmt_http_date(modified));
            set("Pragma", "no-cache");
            set("Cache-Control", "no-cache,no-store");
            set("Expires", "0");
            if !item.meta.encrypted_data_key.is_empty() {
                set("Encrypted-Data-Key", &item.meta.encrypted_data_key);
            }
            if beta {
                set("isBeta", "true");
            }
            resp
        }
        Ok(None) => (StatusCode::NOT_FOUND, "config data not exist\n").into_response(),
        Err(e) => nacos_error(e),
    }
}

async fn publish_config(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(e) => return nacos_error(e),
    };
    let Some(content) = p.get("content").cloned() else {
        return nacos_error(DomainError::Invalid("content is required".into()));
    };
    let opts = publish_options(&p, &headers, peer, "config_tags", "src_user");
    // `betaIps` (a header, as clients send it) publishes a beta version for those IPs only.
    let beta_ips = headers.get("betaIps").and_then(|v| v.to_str().ok()).or(p.get("betaIps").map(String::as_str));
    let tag = p.get("tag").map(|t| t.trim()).filter(|t| !t.is_empty());
    let done = match (beta_ips.map(str::trim).filter(|b| !b.is_empty()), tag) {
        (Some(ips), _) => st.config.publish_beta(key, content, ips, opts).await,
        (None, Some(tag)) => st.config.publish_tag(key, content, tag, opts).await,
        (None, None) => st.config.publish(key, content, opts).await,
    };
    match done {
        Ok(_) => (StatusCode::OK, "true").into_response(),
        Err(DomainError::Conflict(_)) => (StatusCode::OK, "false").into_response(),
        Err(e) => nacos_error(e),
    }
}

async fn delete_config(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(e) => return nacos_error(e),
    };
    if is_beta(&p) {
        return match st.config.remove_beta(key).await {
            Ok(_) => {
                axum::Json(serde_json::json!({"code": 200, "message": "stop beta ok", "data": true})).into_response()
            }
            Err(e) => nacos_error(e),
        };
    }
    if let Some(tag) = p.get("tag").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        return match st.config.remove_tag(key, tag).await {
            Ok(_) => (StatusCode::OK, "true").into_response(),
            Err(e) => nacos_error(e),
        };
    }
    let user = super::src_user(&p, &headers, "src_user");
    match st.config.remove(key, user, peer.ip().to_string()).await {
        Ok(_) => (StatusCode::OK, "true").into_response(),
        Err(e) => nacos_error(e),
    }
}
