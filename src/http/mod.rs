//! HTTP adapters (axum): parse, call the domain, shape the reply. No storage access here.

pub mod nacos_config;
pub mod ops;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::domain::config::ConfigService;
use crate::domain::DomainError;
use crate::domain::ReadConsistency;
use crate::raft::RaftNode;
use crate::raft::WriteError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<RaftNode>,
    pub config: ConfigService,
    /// Commit index recovered at start: the node is ready once it has applied this.
    pub ready_index: u64,
    pub data_dir: std::path::PathBuf,
}

/// Builds the router served on the main port (Nacos under the context path, Consul and
/// operations under `/v1`) and on the dedicated Consul port.
pub fn router(state: AppState, context_path: &str, max_body: usize) -> Router {
    let nacos = Router::new().merge(nacos_config::routes()).merge(ops::nacos_routes());
    let consul = Router::new().merge(ops::consul_routes()).merge(snapshot::routes());
    let app =
        if context_path == "/" { nacos.merge(consul) } else { Router::new().nest(context_path, nacos).merge(consul) };
    app.layer(DefaultBodyLimit::max(max_body)).layer(CatchPanicLayer::new()).with_state(state)
}

/// Query-string and form-body parameters merged (the body wins), as Nacos v1 reads them.
pub fn params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.starts_with("application/x-www-form-urlencoded"))
        .unwrap_or(!body.is_empty());
    if is_form {
        for (k, v) in form_urlencoded::parse(body) {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    out
}

/// `?consistent` (Consul) or `consistency=linearizable` asks for a read-index read.
pub fn consistency(p: &HashMap<String, String>) -> ReadConsistency {
    if p.contains_key("consistent") || p.get("consistency").map(|v| v == "linearizable").unwrap_or(false) {
        ReadConsistency::Linearizable
    } else {
        ReadConsistency::Local
    }
}

/// Nacos v1 error shape: a status code and a plain-text message.
pub fn nacos_error(e: DomainError) -> Response {
    let (code, msg) = match &e {
        DomainError::Invalid(m) => (StatusCode::BAD_REQUEST, format!("caused: {m};")),
        DomainError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        DomainError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        DomainError::Cluster(WriteError::Invalid(m)) => (StatusCode::BAD_REQUEST, m.clone()),
        DomainError::Cluster(w) => (StatusCode::SERVICE_UNAVAILABLE, w.to_string()),
        DomainError::Storage(s) => (StatusCode::INTERNAL_SERVER_ERROR, s.to_string()),
    };
    (code, msg).into_response()
}
