//! Nacos v2 open API for configs: `/v2/cs/config` GET / POST / DELETE in the
//! `{code, message, data}` envelope with Nacos' v2 error codes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::consistency;
use super::params;
use super::publish_options;
use super::AppState;
use crate::domain::config::make_key;
use crate::domain::DomainError;
use crate::raft::WriteError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v2/cs/config", get(get_config).post(publish).delete(remove))
}

fn ok(data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "data": data})).into_response()
}

/// The v2 error envelope: HTTP status of the failure, a v2 code, an abstract and the detail.
pub fn v2_error(e: DomainError) -> Response {
    let (status, code, abstract_) = match &e {
        DomainError::Invalid(_) => (StatusCode::BAD_REQUEST, 20002, "parameter validate error"),
        DomainError::NotFound(_) => (StatusCode::NOT_FOUND, 20004, "resource not found"),
        DomainError::Conflict(_) => (StatusCode::CONFLICT, 20005, "resource conflict"),
        DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, 10001, "access denied"),
        DomainError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, 10001, "access denied"),
        DomainError::Cluster(WriteError::Invalid(_)) => (StatusCode::BAD_REQUEST, 20002, "parameter validate error"),
        DomainError::Cluster(_) => (StatusCode::SERVICE_UNAVAILABLE, 30000, "server error"),
        DomainError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, 30000, "server error"),
    };
    (status, Json(json!({"code": code, "message": abstract_, "data": e.to_string()}))).into_response()
}

/// `10000 parameter missing`, as Nacos answers a request without a required parameter.
fn missing(name: &str) -> Response {
    let detail = format!("Required parameter '{name}' type String is not present");
    (StatusCode::BAD_REQUEST, Json(json!({"code": 10000, "message": "parameter missing", "data": detail})))
        .into_response()
}

/// Why a request names no valid config: a missing parameter or a bad value.
enum KeyError {
    Missing(&'static str),
    Invalid(DomainError),
}

impl IntoResponse for KeyError {
    fn into_response(self) -> Response {
        match self {
            KeyError::Missing(name) => missing(name),
            KeyError::Invalid(e) => v2_error(e),
        }
    }
}

fn key_of(p: &HashMap<String, String>) -> Result<crate::state_machine::command::ConfigKey, KeyError> {
    for required in ["dataId", "group"] {
        if p.get(required).map(|v| v.trim().is_empty()).unwrap_or(true) {
            return Err(KeyError::Missing(required));
        }
    }
    make_key(
        p.get("namespaceId").map(String::as_str),
        p.get("group").map(String::as_str),
        p.get("dataId").map(String::as_str),
    )
    .map_err(KeyError::Invalid)
}

async fn get_config(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let found = match p.get("tag").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        Some(tag) => st.config.get_tag(&key, tag, consistency(&p)).await,
        None => st.config.get(&key, consistency(&p)).await,
    };
    match found {
        Ok(Some(item)) => ok(json!(item.content)),
        Ok(None) => v2_error(DomainError::NotFound("config data not exist".into())),
        Err(e) => v2_error(e),
    }
}

async fn publish(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let Some(content) = p.get("content").cloned() else { return missing("content") };
    let opts = publish_options(&p, &headers, peer, "configTags", "srcUser");
    match st.config.publish(key, content, opts).await {
        Ok(_) => ok(json!(true)),
        Err(e) => v2_error(e),
    }
}

async fn remove(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let key = match key_of(&p) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match st.config.remove(key, super::src_user(&p, &headers, "srcUser"), peer.ip().to_string()).await {
        Ok(_) => ok(json!(true)),
        Err(e) => v2_error(e),
    }
}
