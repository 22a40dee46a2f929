//! Nacos 3.x config API in the `{code, message, data}` envelope: the client read
//! (`/v3/client/cs/config`), the admin and console config and history endpoints (one set of
//! handlers under `/v3/admin/cs`, `/v3/console/cs` and the guide's `/v3/cs`), search with
//! paging, and ZIP export/import. Also the v2 history and namespace endpoints, which share the
//! envelope.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::Multipart;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::consistency;
use super::nacos_history;
use super::nacos_v2::v2_error;
use super::params;
use super::AppState;
use crate::domain::config::make_key;
use crate::domain::config_admin::ConfigFilter;
use crate::domain::config_admin::ImportPolicy;
use crate::domain::DomainError;
use crate::state_machine::command::ConfigItem;
use crate::state_machine::command::ConfigKey;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/v3/client/cs/config", get(client_get))
        .route("/v2/cs/history", get(history))
        .route("/v2/cs/history/list", get(history))
        .route("/v2/cs/history/previous", get(history_previous))
        .route("/v1/cs/metrics/ip", get(client_metrics));
    for base in ["/v3/admin/cs", "/v3/console/cs", "/v3/cs"] {
        r = r
            .route(&format!("{base}/config"), get(detail).post(publish).delete(remove))
            .route(&format!("{base}/config/list"), get(list))
            .route(&format!("{base}/config/beta"), get(beta_get).delete(beta_stop))
            .route(&format!("{base}/metrics/ip"), get(client_metrics))
            .route(&format!("{base}/config/searchDetail"), get(list))
            .route(&format!("{base}/config/export"), get(export))
            .route(&format!("{base}/config/export2"), get(export))
            .route(&format!("{base}/config/import"), post(import))
            .route(&format!("{base}/history"), get(history))
            .route(&format!("{base}/history/list"), get(history))
            .route(&format!("{base}/history/previous"), get(history_previous));
    }
    r
}

fn ok(data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "data": data})).into_response()
}

fn reply(r: Result<Value, DomainError>) -> Response {
    match r {
        Ok(v) => ok(v),
        Err(e) => v2_error(e),
    }
}

fn group(p: &HashMap<String, String>) -> Option<&str> {
    p.get("groupName").or(p.get("group")).map(String::as_str)
}

fn namespace(p: &HashMap<String, String>) -> Option<&str> {
    p.get("namespaceId").or(p.get("tenant")).map(String::as_str)
}

fn key_of(p: &HashMap<String, String>) -> Result<ConfigKey, DomainError> {
    if group(p).is_none_or(|g| g.trim().is_empty()) {
        return Err(DomainError::Invalid("Required parameter 'groupName' is not present".into()));
    }
    make_key(namespace(p), group(p), p.get("dataId").map(String::as_str))
}

fn number(p: &HashMap<String, String>, k: &str, default: usize) -> Result<usize, DomainError> {
    match p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| DomainError::Invalid(format!("{k} must be a number"))),
    }
}

fn detail_json(k: &ConfigKey, c: &ConfigItem) -> Value {
    json!({
        "id": c.create_index.to_string(),
        "dataId": k.data_id,
        "groupName": k.group,
        "namespaceId": k.namespace,
        "content": c.content,
        "md5": c.md5,
        "type": c.meta.config_type,
        "appName": c.meta.app_name,
        "desc": c.meta.desc,
        "configTags": c.meta.tags,
        "encryptedDataKey": c.meta.encrypted_data_key,
        "createUser": c.meta.src_user,
        "createIp": c.meta.src_ip,
        "createTime": c.create_time_ms,
        "modifyTime": c.modify_time_ms,
    })
}

async fn client_get(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(
        async {
            let key = key_of(&p)?;
            let c = st.config.get(&key, consistency(&p)).await?;
            let c = c.ok_or_else(|| DomainError::NotFound("config data not exist".into()))?;
            Ok(json!({
                "resultCode": 200, "errorCode": 0, "success": true,
                "content": c.content, "encryptedDataKey": c.meta.encrypted_data_key,
                "contentType": c.meta.config_type, "md5": c.md5, "lastModified": c.modify_time_ms, "beta": false,
            }))
        }
        .await,
    )
}

async fn detail(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(
        async {
            let key = key_of(&p)?;
            let c = st.config.get(&key, consistency(&p)).await?;
            let c = c.ok_or_else(|| DomainError::NotFound("config data not exist".into()))?;
            Ok(detail_json(&key, &c))
        }
        .await,
    )
}

async fn publish(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    reply(
        async {
            let key = key_of(&p)?;
            let content =
                p.get("content").cloned().ok_or_else(|| DomainError::Invalid("content is required".into()))?;
            let opts = super::publish_options(&p, &headers, peer, "configTags", "srcUser");
            st.config.publish(key, content, opts).await?;
            Ok(json!(true))
        }
        .await,
    )
}

async fn remove(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    reply(
        async {
            let key = key_of(&p)?;
            st.config.remove(key, super::src_user(&p, &headers, "srcUser"), peer.ip().to_string()).await?;
            Ok(json!(true))
        }
        .await,
    )
}

/// Search filters as the v1, v3 and console APIs name them.
pub fn filter_of(p: &HashMap<String, String>) -> ConfigFilter {
    let s = |k: &str| p.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    ConfigFilter {
        namespace: Some(namespace(p).unwrap_or("").to_string()),
        data_id: s("dataId"),
        group: group(p).map(|g| g.trim().to_string()).unwrap_or_default(),
        app_name: s("appName"),
        tags: p.get("configTags").or(p.get("config_tags")).cloned().unwrap_or_default(),
        blur: p.get("search").is_some_and(|v| v == "blur"),
        data_ids: s("dataIds").split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).collect(),
    }
}

/// A page of configs in Nacos' page shape; `row` renders one item.
pub async fn search_page(
    st: &AppState,
    p: &HashMap<String, String>,
    row: fn(&ConfigKey, &ConfigItem) -> Value,
) -> Result<Value, DomainError> {
    let page =
        st.config.search(&filter_of(p), number(p, "pageNo", 1)?, number(p, "pageSize", 100)?, consistency(p)).await?;
    Ok(json!({
        "totalCount": page.total,
        "pageNumber": page.page_no,
        "pagesAvailable": page.pages_available(),
        "pageItems": page.items.iter().map(|(k, c)| row(k, c)).collect::<Vec<_>>(),
    }))
}

async fn beta_get(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(
        async {
            let key = key_of(&p)?;
            Ok(match st.config.get_beta(&key, consistency(&p)).await? {
                Some(b) => {
                    let mut v = detail_json(&key, &b.item);
                    v["betaIps"] = json!(b.beta_ips);
                    v
                }
                None => Value::Null,
            })
        }
        .await,
    )
}

async fn beta_stop(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    reply(
        async {
            let key = key_of(&p)?;
            Ok(json!(st.config.remove_beta(key).await?))
        }
        .await,
    )
}

/// What the SDK clients at `ip` connected to this node hold for a config (their cached and
/// snapshot md5s), asked over their push streams.
async fn client_metrics(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(
        async {
            let ip = p.get("ip").map(|v| v.trim()).filter(|v| !v.is_empty());
            let ip = ip.ok_or_else(|| DomainError::Invalid("Required parameter 'ip' is not present".into()))?;
            let key = if p.contains_key("dataId") { Some(key_of(&p)?) } else { None };
            let m = crate::grpc::nacos::config::client_metrics(&st.sdk_conns, ip, key.as_ref()).await;
            Ok(Value::Object(m))
        }
        .await,
    )
}

async fn list(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(search_page(&st, &p, detail_json).await)
}

async fn export(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    match st.config.export_zip(&filter_of(&p)).await {
        Ok(bytes) => {
            let name = format!("attachment; filename=nacos_config_export_{}.zip", crate::now_ms());
            ([(header::CONTENT_TYPE, "application/zip".to_string()), (header::CONTENT_DISPOSITION, name)], bytes)
                .into_response()
        }
        Err(e) => v2_error(e),
    }
}

async fn import(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(
        async {
            let policy = ImportPolicy::parse(p.get("policy").map(String::as_str))?;
            let mut multipart =
                multipart.map_err(|e| DomainError::Invalid(format!("expected a multipart upload with a file: {e}")))?;
            let mut file = None;
            while let Some(field) =
                multipart.next_field().await.map_err(|e| DomainError::Invalid(format!("bad multipart body: {e}")))?
            {
                if field.name() == Some("file") {
                    file = Some(field.bytes().await.map_err(|e| DomainError::Invalid(format!("upload failed: {e}")))?);
                }
            }
            let file = file.ok_or_else(|| DomainError::Invalid("the multipart field 'file' is missing".into()))?;
            let user = super::src_user(&p, &headers, "srcUser");
            let res = st.config.import_zip(namespace(&p), &file, policy, &user, &peer.ip().to_string()).await?;
            Ok(serde_json::to_value(res).unwrap_or(Value::Null))
        }
        .await,
    )
}

async fn history(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(nacos_history::history_query(&st, &p).await)
}

async fn history_previous(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(nacos_history::previous_query(&st, &p))
}
