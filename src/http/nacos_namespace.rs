//! Nacos v1 namespaces: `/v1/console/namespaces` GET / POST / PUT / DELETE.

use axum::body::Bytes;
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

use super::nacos_error;
use super::nacos_namespace_v3::view_json;
use super::params;
use super::AppState;
use crate::domain::DomainError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/console/namespaces", get(list).post(create).put(update).delete(remove))
}

async fn list(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    if p.get("checkNamespaceIdExist").map(|v| v == "true").unwrap_or(false) {
        let id = p.get("customNamespaceId").cloned().unwrap_or_default();
        return match st.namespaces.exists(&id) {
            Ok(b) => (StatusCode::OK, b.to_string()).into_response(),
            Err(e) => nacos_error(e),
        };
    }
    if p.get("show").map(|v| v == "all").unwrap_or(false) {
        let id = p.get("namespaceId").cloned().unwrap_or_default();
        return match st.namespaces.get(&id) {
            Ok(n) => Json(view_json(&n)).into_response(),
            Err(e) => nacos_error(e),
        };
    }
    match st.namespaces.list() {
        Ok(all) => Json(json!({"code": 200, "message": null, "data": all.iter().map(view_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => nacos_error(e),
    }
}

/// Nacos answers these with `true`/`false`; a refusal is `false` with its status code.
fn bool_reply(r: Result<(), DomainError>) -> Response {
    match r {
        Ok(()) => (StatusCode::OK, "true").into_response(),
        Err(DomainError::Conflict(_)) => (StatusCode::OK, "false").into_response(),
        Err(e) => nacos_error(e),
    }
}

async fn create(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let name = p.get("namespaceName").cloned().unwrap_or_default();
    let desc = p.get("namespaceDesc").cloned().unwrap_or_default();
    bool_reply(st.namespaces.create(p.get("customNamespaceId").map(String::as_str), &name, &desc).await.map(|_| ()))
}

async fn update(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let id = p.get("namespace").cloned().unwrap_or_default();
    let name = p.get("namespaceShowName").cloned().unwrap_or_default();
    let desc = p.get("namespaceDesc").cloned().unwrap_or_default();
    bool_reply(st.namespaces.update(&id, &name, &desc).await)
}

async fn remove(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let id = p.get("namespaceId").cloned().unwrap_or_default();
    bool_reply(st.namespaces.delete(&id).await)
}
