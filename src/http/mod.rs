//! HTTP adapters (axum): parse, call the domain, shape the reply. No storage access here.

pub mod consul;
pub mod guard;
pub mod nacos_auth;
pub mod nacos_config;
pub mod nacos_history;
pub mod nacos_listener;
pub mod nacos_namespace;
pub mod nacos_namespace_v3;
pub mod nacos_naming;
pub mod nacos_naming_v2;
pub mod nacos_naming_v3;
pub mod nacos_v2;
pub mod nacos_v3;
pub mod ops;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
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

/// Shared by every handler. Axum clones the state into every extractor and middleware of every
/// request, so it is one `Arc` (one atomic increment) rather than the struct of a dozen handles
/// (the config GET profile had cloning and dropping that struct at 3.4 %).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub node: Arc<RaftNode>,
    pub config: ConfigService,
    pub namespaces: crate::domain::namespace::NamespaceService,
    /// Commit index recovered at start: the node is ready once it has applied this.
    pub ready_index: u64,
    pub data_dir: std::path::PathBuf,
    /// Empty when none is configured.
    pub cluster_secret: Arc<String>,
    /// The SDK port's connections on this node (client metrics, gauges).
    pub sdk_conns: Arc<crate::grpc::nacos::connections::Connections>,
    /// The config listeners this node holds (gauge).
    pub sdk_config_listeners: Arc<crate::grpc::nacos::config::Listeners>,
    pub naming: crate::domain::naming_service::NamingService,
    /// The SDK port's naming state on this node (subscriber gauge).
    pub sdk_naming: Arc<crate::grpc::nacos::naming::Naming>,
    pub auth: crate::domain::auth::AuthService,
    /// Consul ACLs (on exactly when auth is), with their compiled-policy cache.
    pub consul_acl: crate::domain::consul_acl::ConsulAcl,
    /// Largest request body (`server.max-body-bytes`).
    pub max_body: usize,
}

/// Builds the router served on the main port (Nacos under the context path, Consul and
/// operations under `/v1`) and on the dedicated Consul port.
pub fn router(state: AppState, context_path: &str) -> Router {
    let max_body = state.max_body;
    let guard = axum::middleware::from_fn_with_state(state.clone(), admin_guard);
    let nacos = Router::new()
        .merge(nacos_auth::routes())
        .merge(nacos_config::routes())
        .merge(nacos_listener::routes())
        .merge(nacos_history::routes())
        .merge(nacos_namespace::routes())
        .merge(nacos_namespace_v3::routes())
        .merge(nacos_v2::routes())
        .merge(nacos_v3::routes())
        .merge(nacos_naming::routes())
        .merge(nacos_naming_v2::routes())
        .merge(nacos_naming_v3::routes())
        .merge(ops::nacos_routes())
        .merge(ops::admin_routes().route_layer(guard.clone()))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::nacos_guard))
        .layer(DefaultBodyLimit::max(max_body));
    // A snapshot may be far larger than an API request.
    // A snapshot holds everything: the cluster secret and, with ACLs on, a management token.
    let management = axum::middleware::from_fn_with_state(state.clone(), consul::authz::management_guard);
    let consul = Router::new()
        .merge(ops::consul_routes())
        .merge(consul::routes(&state))
        .layer(DefaultBodyLimit::max(max_body))
        .merge(
            snapshot::routes()
                .route_layer(guard)
                .route_layer(management)
                .layer(DefaultBodyLimit::max(MAX_SNAPSHOT_UPLOAD)),
        );
    let app =
        if context_path == "/" { nacos.merge(consul) } else { Router::new().nest(context_path, nacos).merge(consul) };
    app.layer(CatchPanicLayer::new()).with_state(state)
}

/// Largest snapshot `PUT /v1/snapshot` accepts.
const MAX_SNAPSHOT_UPLOAD: usize = 1 << 30;

/// Header carrying the cluster secret on operator requests (membership, snapshots).
pub const ADMIN_SECRET_HEADER: &str = "x-batata-cluster-secret";

/// Operator endpoints can replace the whole state or change membership. Until user
/// authentication exists they demand the cluster secret; a node without one (standalone)
/// serves them to loopback clients only.
async fn admin_guard(
    State(st): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let allowed = if st.cluster_secret.is_empty() {
        peer.ip().is_loopback()
    } else {
        let given = req.headers().get(ADMIN_SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        crate::grpc::cluster::secret_eq(given, st.cluster_secret.as_bytes())
    };
    if !allowed {
        return (
            StatusCode::FORBIDDEN,
            "operator endpoint: the cluster secret is required (header X-Batata-Cluster-Secret)",
        )
            .into_response();
    }
    next.run(req).await
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

/// Publish options from request parameters. v1 and v2 name two of them differently
/// (`config_tags`/`configTags`, `src_user`/`srcUser`); `casMd5` comes as a header (or parameter).
pub fn publish_options(
    p: &HashMap<String, String>,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    tags_key: &str,
    user_key: &str,
) -> crate::domain::config::PublishOptions {
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    crate::domain::config::PublishOptions {
        meta: crate::state_machine::command::ConfigMeta {
            config_type: get("type"),
            app_name: get("appName"),
            desc: get("desc"),
            tags: get(tags_key),
            encrypted_data_key: get("encryptedDataKey"),
            src_user: src_user(p, headers, user_key),
            src_ip: peer.ip().to_string(),
        },
        cas_md5: headers.get("casMd5").and_then(|v| v.to_str().ok()).map(str::to_string).or(p.get("casMd5").cloned()),
        create_only: false,
    }
}

/// Who made a config change, for its history: the authenticated user (set by the guard), else
/// what the client says (`src_user` / `srcUser`), as Nacos records it with auth off.
pub fn src_user(p: &HashMap<String, String>, headers: &HeaderMap, key: &str) -> String {
    match headers.get(guard::PRINCIPAL_HEADER).and_then(|v| v.to_str().ok()) {
        Some(user) => user.to_string(),
        None => p.get(key).cloned().unwrap_or_default(),
    }
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
        DomainError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        DomainError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        DomainError::Cluster(WriteError::Invalid(m)) => (StatusCode::BAD_REQUEST, m.clone()),
        DomainError::Cluster(w) => (StatusCode::SERVICE_UNAVAILABLE, w.to_string()),
        DomainError::Storage(s) => (StatusCode::INTERNAL_SERVER_ERROR, s.to_string()),
    };
    (code, msg).into_response()
}
