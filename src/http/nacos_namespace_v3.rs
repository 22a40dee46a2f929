//! Namespaces in the `{code, message, data}` envelope: `/v2/console/namespace`,
//! `/v3/admin/core/namespace` and `/v3/console/core/namespace` (each with `/list`, and v3 with
//! `/check` / `/exist`). Parameters as Nacos names them: `namespaceId` (or
//! `customNamespaceId` on create), `namespaceName`, `namespaceDesc`.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::nacos_v2::v2_error;
use super::params;
use super::AppState;
use crate::domain::namespace::NamespaceView;
use crate::domain::DomainError;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for base in ["/v2/console/namespace", "/v3/admin/core/namespace", "/v3/console/core/namespace"] {
        r = r
            .route(base, get(detail).post(create).put(update).delete(remove))
            .route(&format!("{base}/list"), get(list))
            .route(&format!("{base}/check"), get(exists))
            .route(&format!("{base}/exist"), get(exists));
    }
    r
}

fn reply(r: Result<Value, DomainError>) -> Response {
    match r {
        Ok(v) => Json(json!({"code": 0, "message": "success", "data": v})).into_response(),
        Err(e) => v2_error(e),
    }
}

/// A namespace as every Nacos API version renders it.
pub(super) fn view_json(n: &NamespaceView) -> Value {
    json!({
        "namespace": n.id,
        "namespaceShowName": n.name,
        "namespaceDesc": n.desc,
        "quota": n.quota,
        "configCount": n.config_count,
        "type": n.kind,
    })
}

async fn list(State(st): State<AppState>) -> Response {
    reply(st.namespaces.list().map(|all| Value::Array(all.iter().map(view_json).collect())))
}

async fn detail(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    reply(st.namespaces.get(p.get("namespaceId").map(String::as_str).unwrap_or("")).map(|n| view_json(&n)))
}

async fn exists(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    let id = p.get("customNamespaceId").or(p.get("namespaceId")).map(String::as_str).unwrap_or("");
    reply(st.namespaces.exists(id).map(Value::Bool))
}

async fn create(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let id = p.get("customNamespaceId").or(p.get("namespaceId")).map(String::as_str);
    let name = p.get("namespaceName").map(String::as_str).unwrap_or("");
    let desc = p.get("namespaceDesc").map(String::as_str).unwrap_or("");
    reply(st.namespaces.create(id, name, desc).await.map(|_| Value::Bool(true)))
}

async fn update(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let id = p.get("namespaceId").or(p.get("namespace")).map(String::as_str).unwrap_or("");
    let name = p.get("namespaceName").or(p.get("namespaceShowName")).map(String::as_str).unwrap_or("");
    let desc = p.get("namespaceDesc").map(String::as_str).unwrap_or("");
    reply(st.namespaces.update(id, name, desc).await.map(|_| Value::Bool(true)))
}

async fn remove(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    reply(st.namespaces.delete(p.get("namespaceId").map(String::as_str).unwrap_or("")).await.map(|_| Value::Bool(true)))
}
