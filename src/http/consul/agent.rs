//! `/v1/agent/*` services, checks, TTL updates and maintenance: this server is
//! the agent, and what is registered here belongs to its node (`batata-<id>`). Writes return
//! 200 with an empty body; reads are local, not blocking (except `/agent/service/<id>`, which
//! blocks on its content hash).
//!
//! ACLs, as Consul: writes need service write on the service they touch (node write on the
//! agent's node for node checks and maintenance), see `vet`; lists leave out what the token may
//! not read.

// Handler helpers return axum's `Response` as their error (the reply to send); it is large,
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
use serde_json::Map;
use serde_json::Value;

use super::blocking;
use super::blocking::QueryOpts;
use super::caller::Acl;
use super::caller::Visible;
use super::catalog::agent_service_json;
use super::catalog::domain_error;
use super::catalog::filter_of;
use super::catalog::keep;
use super::catalog::read;
use super::catalog::USER_MAPS;
use super::defs::RawCheck;
use super::defs::RawService;
use super::error;
use super::health::check_json;
use super::ConsulQuery;
use crate::domain::consul_catalog::ConsulCatalog;
use crate::domain::consul_view::CatalogRead;
use crate::domain::consul_view::ServiceView;
use crate::http::AppState;
use crate::state_machine::catalog::*;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/service/register", put(register))
        .route("/v1/agent/service/deregister/{*id}", put(deregister))
        .route("/v1/agent/service/maintenance/{*id}", put(service_maintenance))
        .route("/v1/agent/service/{*id}", get(service))
        .route("/v1/agent/services", get(services))
        .route("/v1/agent/checks", get(checks))
        .route("/v1/agent/check/register", put(check_register))
        .route("/v1/agent/check/deregister/{*id}", put(check_deregister))
        .route("/v1/agent/check/pass/{*id}", put(pass))
        .route("/v1/agent/check/warn/{*id}", put(warn))
        .route("/v1/agent/check/fail/{*id}", put(fail))
        .route("/v1/agent/check/update/{*id}", put(update))
        .route("/v1/agent/maintenance", put(node_maintenance))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

fn bad(m: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, m)
}

fn done(r: Result<(), crate::domain::DomainError>) -> Response {
    match r {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => domain_error(e),
    }
}

fn catalog(st: &AppState) -> ConsulCatalog {
    ConsulCatalog::new(st.node.clone())
}

async fn register(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    if let Err(r) = super::check_enterprise_params(&q) {
        return r;
    }
    let replace = match q.get("replace-existing-checks") {
        None => false,
        Some("") => true,
        Some(v) => super::parse_go_bool(v).unwrap_or(false),
    };
    let raw: RawService = match super::decode_body(&body, &USER_MAPS) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let spec = match raw.spec(false) {
        Ok(spec) => spec,
        Err(e) => return e,
    };
    if let Err(r) = super::vet::agent_register(&st, &acl, &agent(&st), &spec) {
        return r;
    }
    done(catalog(&st).agent_register(spec, replace).await)
}

/// The agent's node name.
fn agent(st: &AppState) -> String {
    catalog(st).local().name
}

async fn deregister(State(st): State<AppState>, Extension(acl): Extension<Acl>, Path(id): Path<String>) -> Response {
    if let Err(r) = super::vet::agent_service(&st, &acl, &agent(&st), &id) {
        return r;
    }
    done(catalog(&st).agent_deregister(&id).await)
}

async fn check_register(State(st): State<AppState>, Extension(acl): Extension<Acl>, body: Bytes) -> Response {
    let raw: RawCheck = match super::decode_body(&body, &USER_MAPS) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let spec = match raw.spec() {
        Ok(spec) => spec,
        Err(e) => return e,
    };
    if let Err(r) = super::vet::agent_check_register(&st, &acl, &agent(&st), &spec) {
        return r;
    }
    done(catalog(&st).agent_check_register(spec).await)
}

async fn check_deregister(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = super::vet::agent_check(&st, &acl, &agent(&st), &id) {
        return r;
    }
    done(catalog(&st).agent_check_deregister(&id).await)
}

/// A TTL update; unknown and non-TTL checks are Consul's 500.
async fn ttl(st: &AppState, acl: &Acl, id: &str, status: &str, output: &str) -> Response {
    if let Err(r) = super::vet::agent_check(st, acl, &agent(st), id) {
        return r;
    }
    match catalog(st).ttl_update(id, status, output).await {
        Err(crate::domain::DomainError::NotFound(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
        other => done(other),
    }
}

fn note(q: &Option<String>) -> String {
    ConsulQuery::parse(q.as_deref()).get("note").unwrap_or("").to_string()
}

async fn pass(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    ttl(&st, &acl, &id, PASSING, &note(&q)).await
}

async fn warn(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    ttl(&st, &acl, &id, WARNING, &note(&q)).await
}

async fn fail(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    ttl(&st, &acl, &id, CRITICAL, &note(&q)).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUpdate {
    status: Option<String>,
    output: Option<String>,
}

async fn update(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let u: RawUpdate = match super::decode_body(&body, &[]) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let status = u.status.unwrap_or_default();
    if !valid_status(&status) {
        return bad(format!("Invalid check status: '{status}'"));
    }
    ttl(&st, &acl, &id, &status, &u.output.unwrap_or_default()).await
}

fn enable(q: &ConsulQuery) -> Result<bool, Response> {
    match q.go_bool("enable") {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(bad("Missing value for enable")),
        Err(_) => Err(bad("Invalid value for enable")),
    }
}

async fn service_maintenance(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    if let Err(r) = super::vet::agent_service(&st, &acl, &agent(&st), &id) {
        return r;
    }
    match enable(&q) {
        Ok(on) => done(catalog(&st).service_maintenance(&id, on, q.get("reason").unwrap_or("")).await),
        Err(r) => r,
    }
}

async fn node_maintenance(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    match enable(&q) {
        Ok(on) => done(catalog(&st).node_maintenance(on, q.get("reason").unwrap_or("")).await),
        Err(r) => r,
    }
}

pub(super) fn local_services(st: &AppState) -> Result<(CatalogRead<'_>, Vec<ServiceView>), Response> {
    let cat = read(st)?;
    let local = catalog(st).local();
    let svcs = cat.agent_services(&local.name).map_err(domain_error)?;
    Ok((cat, svcs))
}

/// A local (not blocking) list reply, marked when the token's view left items out.
fn local_reply(v: &Visible, r: Result<Value, Response>) -> Response {
    match r {
        Ok(v2) => {
            let mut r = Json(v2).into_response();
            v.finish(&mut r);
            r
        }
        Err(r) => r,
    }
}

async fn services(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let v = Visible::new(&acl);
    let run = || -> Result<Value, Response> {
        let f = filter_of(&q)?;
        let (_, svcs) = local_services(&st)?;
        let out: Map<String, Value> = svcs
            .iter()
            .filter(|s| v.service(&s.name))
            .map(|s| (s.id.clone(), agent_service_json(s)))
            .filter(|(_, x)| keep(&f, x))
            .collect();
        Ok(Value::Object(out))
    };
    local_reply(&v, run())
}

async fn checks(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let v = Visible::new(&acl);
    let run = || -> Result<Value, Response> {
        let f = filter_of(&q)?;
        let cat = read(&st)?;
        let local = catalog(&st).local();
        let all = cat.node_checks(&local.name).map_err(domain_error)?;
        let out: Map<String, Value> = all
            .iter()
            .filter(|c| c.item.id != crate::domain::consul_view::SERF_CHECK && v.check(c))
            .map(|c| (c.item.id.clone(), check_json(c)))
            .filter(|(_, x)| keep(&f, x))
            .collect();
        Ok(Value::Object(out))
    };
    local_reply(&v, run())
}

fn content_hash(v: &Value) -> String {
    format!("{:x}", md5::compute(v.to_string().as_bytes()))[..16].to_string()
}

/// `GET /v1/agent/service/<id>`: blocks while `?hash=` equals the current content hash.
async fn service(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = super::vet::agent_service_read(&st, &acl, &agent(&st), &id) {
        return r;
    }
    let q = ConsulQuery::parse(q.as_deref());
    let mut opts = match QueryOpts::parse(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let want = q.get("hash").filter(|h| !h.is_empty()).map(str::to_string);
    // The hash stands in for the index: 1 while unchanged, 2 once it differs.
    opts.index = u64::from(want.is_some());
    let run = blocking::run(&st, &opts, Table::Catalog, || {
        let (_, svcs) = local_services(&st)?;
        let found = svcs.iter().find(|s| s.id == id).map(|s| {
            let v = agent_service_json(s);
            let h = content_hash(&v);
            (v, h)
        });
        let same = matches!((&found, &want), (Some((_, h)), Some(w)) if h == w);
        Ok((found, if same { 1 } else { 2 }))
    });
    match run.await {
        Err(r) => r,
        Ok((None, _)) => error(StatusCode::NOT_FOUND, format!("unknown service ID: {id}")),
        Ok((Some((mut v, h)), _)) => {
            v["ContentHash"] = json!(h);
            let mut r = Json(v).into_response();
            if let Ok(hv) = h.parse() {
                r.headers_mut().insert("X-Consul-ContentHash", hv);
            }
            r
        }
    }
}
