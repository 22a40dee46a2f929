//! `/v1/session/*`: create, destroy, renew (PUT) and info, list, node (GET, blocking on the
//! sessions table). A session is serialized as Consul does: `LockDelay` as integer
//! nanoseconds (the Go client decodes a `time.Duration`), `TTL` as the string given.
//!
//! ACLs, as Consul: creating, renewing or destroying a session needs session write on its
//! node; lists leave out the sessions the token may not read (session read on their node).

// Handler helpers return the reply to send (axum's `Response`) as their error: it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::Extension;
use axum::extract::Path;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::put;
use axum::Json;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::blocking;
use super::blocking::QueryOpts;
use super::caller::Acl;
use super::error;
use super::kv::consul_error;
use super::AgentNode;
use super::ConsulQuery;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_session;
use crate::domain::consul_session::SessionRequest;
use crate::http::AppState;
use crate::state_machine::consul::SessionItem;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/session/create", put(create))
        .route("/v1/session/destroy/{*id}", put(destroy))
        .route("/v1/session/renew/{*id}", put(renew))
        .route("/v1/session/info/{*id}", get(info))
        .route("/v1/session/node/{*node}", get(by_node))
        .route("/v1/session/list", get(list))
        .route("/v1/session/destroy/", put(missing_session))
        .route("/v1/session/renew/", put(missing_session))
        .route("/v1/session/info/", get(missing_session))
        .route("/v1/session/node/", get(missing_node))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

pub(super) fn session_json(s: &SessionItem) -> Value {
    let or_null = |v: Value, empty: bool| if empty { Value::Null } else { v };
    let service_checks: Vec<Value> = s.service_checks.iter().map(|id| json!({"ID": id, "Namespace": ""})).collect();
    json!({
        "ID": s.id,
        "Name": s.name,
        "Node": s.node,
        "LockDelay": s.lock_delay_ns,
        "Behavior": s.behavior.as_str(),
        "TTL": s.ttl,
        "NodeChecks": or_null(json!(s.node_checks), s.node_checks.is_empty()),
        "ServiceChecks": or_null(json!(service_checks), service_checks.is_empty()),
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// The create body, normalized (`Name`, `name`... all read as `name`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    name: Option<String>,
    node: Option<String>,
    lockdelay: Option<Value>,
    behavior: Option<String>,
    ttl: Option<String>,
    checks: Option<Vec<String>>,
    nodechecks: Option<Vec<String>>,
    servicechecks: Option<Vec<ServiceCheckBody>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceCheckBody {
    id: String,
}

async fn create(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    let run = async {
        super::check_enterprise_params(&q)?;
        let b: CreateBody = super::decode_body(&body, &[])?;
        let req = SessionRequest {
            name: b.name,
            node: b.node,
            lock_delay: b.lockdelay,
            behavior: b.behavior,
            ttl: b.ttl,
            checks: b.checks,
            node_checks: b.nodechecks,
            service_checks: b.servicechecks.map(|v| v.into_iter().map(|c| c.id).collect()),
        };
        let item = consul_session::build(req, &AgentNode::of(&st).name).map_err(consul_error)?;
        acl.check(Kind::Session, &item.node, Perm::Write)?;
        let id = consul_session::create(&st.node, item).await.map_err(consul_error)?;
        Ok::<Response, Response>(Json(json!({ "ID": id })).into_response())
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}

/// Session write on the node of session `id` (an unknown session is the handler's to answer).
fn may_write(st: &AppState, acl: &Acl, id: &str) -> Result<(), Response> {
    match consul_session::get(&st.node, id).map_err(consul_error)? {
        Some(s) => acl.check(Kind::Session, &s.node, Perm::Write),
        None => Ok(()),
    }
}

async fn destroy(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = super::check_enterprise_params(&ConsulQuery::parse(raw.as_deref())) {
        return r;
    }
    if let Err(r) = may_write(&st, &acl, &id) {
        return r;
    }
    match consul_session::destroy(&st.node, &id).await {
        Ok(()) => Json(true).into_response(),
        Err(e) => consul_error(e),
    }
}

async fn renew(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = super::check_enterprise_params(&ConsulQuery::parse(raw.as_deref())) {
        return r;
    }
    if let Err(r) = may_write(&st, &acl, &id) {
        return r;
    }
    match consul_session::renew(&st.node, &id).await {
        Ok(s) => Json(vec![session_json(&s)]).into_response(),
        Err(e) => consul_error(e),
    }
}

async fn missing_session() -> Response {
    error(StatusCode::BAD_REQUEST, "Missing session")
}

async fn missing_node() -> Response {
    error(StatusCode::BAD_REQUEST, "Missing node name")
}

/// A blocking read of sessions selected by `pick` and readable by the token; `[]` when none.
async fn read(st: &AppState, acl: &Acl, raw: Option<&str>, pick: impl Fn(&SessionItem) -> bool) -> Response {
    let q = ConsulQuery::parse(raw);
    let opts = match QueryOpts::parse(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut filtered = false;
    let res = blocking::run(st, &opts, Table::Sessions, || {
        let index = st.node.sm.table_index(Table::Sessions);
        let all = consul_session::list(&st.node).map_err(consul_error)?;
        let picked: Vec<&SessionItem> = all.iter().filter(|s| pick(s)).collect();
        let shown: Vec<Value> =
            picked.iter().filter(|s| acl.allows(Kind::Session, &s.node, Perm::Read)).map(|s| session_json(s)).collect();
        filtered = shown.len() < picked.len();
        Ok((shown, index))
    })
    .await;
    match res {
        Ok((list, meta)) => {
            let mut r = meta.json(&list);
            acl.mark_filtered(&mut r, filtered);
            r
        }
        Err(r) => r,
    }
}

async fn info(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    read(&st, &acl, raw.as_deref(), |s| s.id == id).await
}

async fn by_node(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(node): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    read(&st, &acl, raw.as_deref(), |s| s.node.eq_ignore_ascii_case(&node)).await
}

async fn list(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(raw): RawQuery) -> Response {
    read(&st, &acl, raw.as_deref(), |_| true).await
}
