//! `/v1/agent/*` services, checks, TTL updates and maintenance: this server is
//! the agent, and what is registered here belongs to its node (`batata-<id>`). Writes return
//! 200 with an empty body; reads are local, not blocking (except `/agent/service/<id>`, which
//! blocks on its content hash).

// Handler helpers return axum's `Response` as their error (the reply to send); it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
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
use super::catalog::agent_service_json;
use super::catalog::domain_error;
use super::catalog::filter_of;
use super::catalog::keep;
use super::catalog::read;
use super::catalog::USER_MAPS;
use super::error;
use super::health::check_json;
use super::ConsulQuery;
use crate::domain::consul_catalog::ConsulCatalog;
use crate::domain::consul_defs::CheckSpec;
use crate::domain::consul_defs::ServiceSpec;
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
        .layer(axum::middleware::from_fn(super::catalog::method_not_allowed))
}

fn bad(m: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, m)
}

fn duration(v: &Option<Value>, field: &str) -> Result<Option<Duration>, Response> {
    match v {
        None => Ok(None),
        Some(v) => super::body_duration(v)
            .map(Some)
            .ok_or_else(|| bad(format!("Request decode failed: {field}: time: invalid duration {v}"))),
    }
}

/// A check definition as clients send it (normalized keys, see `decode_body`).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct RawCheck {
    id: Option<String>,
    checkid: Option<String>,
    name: Option<String>,
    notes: Option<String>,
    status: Option<String>,
    output: Option<String>,
    serviceid: Option<String>,
    ttl: Option<Value>,
    interval: Option<Value>,
    timeout: Option<Value>,
    deregistercriticalserviceafter: Option<Value>,
    http: Option<String>,
    method: Option<String>,
    header: Option<BTreeMap<String, Vec<String>>>,
    body: Option<String>,
    tlsskipverify: Option<bool>,
    tcp: Option<String>,
    udp: Option<String>,
    grpc: Option<String>,
    h2ping: Option<String>,
    args: Option<Vec<String>>,
    scriptargs: Option<Vec<String>>,
    aliasnode: Option<String>,
    aliasservice: Option<String>,
    dockercontainerid: Option<String>,
    /// Catalog checks carry HTTP/TCP/Interval... here.
    definition: Option<Box<RawCheck>>,
}

impl RawCheck {
    pub(super) fn spec(self) -> Result<CheckSpec, Response> {
        let d = self.definition.clone().map(|d| *d).unwrap_or_default();
        let s = |a: Option<String>, b: Option<String>| a.or(b).unwrap_or_default();
        let present = |v: &Option<String>| v.as_ref().is_some_and(|x| !x.is_empty());
        let other = if self.args.as_ref().or(self.scriptargs.as_ref()).is_some_and(|a| !a.is_empty()) {
            Some(if present(&self.dockercontainerid) { "docker" } else { "script" })
        } else if present(&self.grpc) {
            Some("grpc")
        } else if present(&self.udp) {
            Some("udp")
        } else if present(&self.h2ping) {
            Some("h2ping")
        } else if present(&self.aliasnode) || present(&self.aliasservice) {
            Some("alias")
        } else {
            None
        };
        Ok(CheckSpec {
            id: s(self.checkid, self.id),
            name: self.name.unwrap_or_default(),
            notes: self.notes.unwrap_or_default(),
            status: self.status.unwrap_or_default(),
            output: self.output.unwrap_or_default(),
            service_id: self.serviceid.unwrap_or_default(),
            ttl: duration(&self.ttl, "TTL")?,
            interval: duration(&self.interval.or(d.interval), "Interval")?,
            timeout: duration(&self.timeout.or(d.timeout), "Timeout")?,
            deregister_after: duration(
                &self.deregistercriticalserviceafter.or(d.deregistercriticalserviceafter),
                "DeregisterCriticalServiceAfter",
            )?,
            http: s(self.http, d.http),
            method: s(self.method, d.method),
            header: self.header.or(d.header).unwrap_or_default(),
            body: s(self.body, d.body),
            tls_skip_verify: self.tlsskipverify.or(d.tlsskipverify).unwrap_or(false),
            tcp: s(self.tcp, d.tcp),
            other,
        })
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(default)]
pub(super) struct RawWeights {
    passing: Option<i64>,
    warning: Option<i64>,
}

/// A service definition (agent: `Name`; catalog: `Service`).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct RawService {
    id: Option<String>,
    name: Option<String>,
    service: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    taggedaddresses: Option<BTreeMap<String, Value>>,
    meta: Option<BTreeMap<String, String>>,
    port: Option<i64>,
    kind: Option<String>,
    enabletagoverride: Option<bool>,
    weights: Option<RawWeights>,
    check: Option<RawCheck>,
    checks: Option<Vec<RawCheck>>,
}

impl RawService {
    pub(super) fn spec(self, catalog: bool) -> Result<ServiceSpec, Response> {
        let mut checks = Vec::new();
        for c in self.check.into_iter().chain(self.checks.unwrap_or_default()) {
            checks.push(c.spec()?);
        }
        let name = if catalog { self.service.or(self.name) } else { self.name };
        Ok(ServiceSpec {
            id: self.id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            address: self.address.unwrap_or_default(),
            tagged_addresses: self.taggedaddresses.unwrap_or_default(),
            meta: self.meta.unwrap_or_default(),
            port: self.port.unwrap_or(0),
            kind: self.kind.unwrap_or_default(),
            enable_tag_override: self.enabletagoverride.unwrap_or(false),
            weights: self.weights.map(|w| (w.passing.unwrap_or(1), w.warning.unwrap_or(1))),
            checks,
        })
    }
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

async fn register(State(st): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
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
    match raw.spec(false) {
        Ok(spec) => done(catalog(&st).agent_register(spec, replace).await),
        Err(e) => e,
    }
}

async fn deregister(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    done(catalog(&st).agent_deregister(&id).await)
}

async fn check_register(State(st): State<AppState>, body: Bytes) -> Response {
    let raw: RawCheck = match super::decode_body(&body, &USER_MAPS) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match raw.spec() {
        Ok(spec) => done(catalog(&st).agent_check_register(spec).await),
        Err(e) => e,
    }
}

async fn check_deregister(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    done(catalog(&st).agent_check_deregister(&id).await)
}

/// A TTL update; unknown and non-TTL checks are Consul's 500.
async fn ttl(st: &AppState, id: &str, status: &str, output: &str) -> Response {
    match catalog(st).ttl_update(id, status, output).await {
        Err(crate::domain::DomainError::NotFound(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
        other => done(other),
    }
}

fn note(q: &Option<String>) -> String {
    ConsulQuery::parse(q.as_deref()).get("note").unwrap_or("").to_string()
}

async fn pass(State(st): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    ttl(&st, &id, PASSING, &note(&q)).await
}

async fn warn(State(st): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    ttl(&st, &id, WARNING, &note(&q)).await
}

async fn fail(State(st): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    ttl(&st, &id, CRITICAL, &note(&q)).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUpdate {
    status: Option<String>,
    output: Option<String>,
}

async fn update(State(st): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let u: RawUpdate = match super::decode_body(&body, &[]) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let status = u.status.unwrap_or_default();
    if !valid_status(&status) {
        return bad(format!("Invalid check status: '{status}'"));
    }
    ttl(&st, &id, &status, &u.output.unwrap_or_default()).await
}

fn enable(q: &ConsulQuery) -> Result<bool, Response> {
    match q.go_bool("enable") {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(bad("Missing value for enable")),
        Err(_) => Err(bad("Invalid value for enable")),
    }
}

async fn service_maintenance(State(st): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
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

async fn services(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let run = || -> Result<Value, Response> {
        let f = filter_of(&q)?;
        let (_, svcs) = local_services(&st)?;
        let out: Map<String, Value> =
            svcs.iter().map(|s| (s.id.clone(), agent_service_json(s))).filter(|(_, v)| keep(&f, v)).collect();
        Ok(Value::Object(out))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn checks(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let run = || -> Result<Value, Response> {
        let f = filter_of(&q)?;
        let cat = read(&st)?;
        let local = catalog(&st).local();
        let all = cat.node_checks(&local.name).map_err(domain_error)?;
        let out: Map<String, Value> = all
            .iter()
            .filter(|c| c.item.id != crate::domain::consul_view::SERF_CHECK)
            .map(|c| (c.item.id.clone(), check_json(c)))
            .filter(|(_, v)| keep(&f, v))
            .collect();
        Ok(Value::Object(out))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn content_hash(v: &Value) -> String {
    format!("{:x}", md5::compute(v.to_string().as_bytes()))[..16].to_string()
}

/// `GET /v1/agent/service/<id>`: blocks while `?hash=` equals the current content hash.
async fn service(State(st): State<AppState>, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
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
