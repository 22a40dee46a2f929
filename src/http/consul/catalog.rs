//! `/v1/catalog/*` (register, deregister, services, service, nodes, node, node-services) and
//! what the agent and health endpoints share with them: the JSON shapes of nodes, services and
//! checks, `?filter=`, `?node-meta=`, `?tag=`, Consul's error and 405 replies.
//!
//! ACLs, as Consul: reads leave out the nodes and services the token may not read; writes are
//! vetted in `vet`.

// Handler helpers return axum's `Response` as their error (the reply to send); it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

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
use super::defs::RawCheck;
use super::defs::RawService;
use super::error;
use super::filter::Filter;
use super::ConsulQuery;
use super::DATACENTER;
use crate::domain::consul_catalog::ConsulCatalog;
use crate::domain::consul_view::CatalogRead;
use crate::domain::consul_view::ServiceView;
use crate::domain::DomainError;
use crate::http::AppState;
use crate::raft::WriteError;
use crate::state_machine::catalog::NodeItem;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog/register", put(register))
        .route("/v1/catalog/deregister", put(deregister))
        .route("/v1/catalog/services", get(services))
        .route("/v1/catalog/nodes", get(nodes))
        .route("/v1/catalog/service/{*name}", get(service))
        .route("/v1/catalog/node/{*node}", get(node))
        .route("/v1/catalog/node-services/{*node}", get(node_services))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

pub(super) fn domain_error(e: DomainError) -> Response {
    match e {
        DomainError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        DomainError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        DomainError::Conflict(m) => error(StatusCode::CONFLICT, m),
        DomainError::Forbidden(m) => error(StatusCode::FORBIDDEN, m),
        DomainError::Cluster(WriteError::NoLeader) => error(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader"),
        DomainError::Cluster(WriteError::Invalid(m)) => error(StatusCode::BAD_REQUEST, m),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

pub(super) fn read(st: &AppState) -> Result<CatalogRead<'_>, Response> {
    CatalogRead::new(&st.node).map_err(domain_error)
}

pub(super) fn catalog_index(st: &AppState) -> u64 {
    st.node.sm.table_index(Table::Catalog)
}

/// `?filter=`: invalid is Consul's 500.
pub(super) fn filter_of(q: &ConsulQuery) -> Result<Option<Filter>, Response> {
    match q.get("filter").filter(|f| !f.trim().is_empty()) {
        None => Ok(None),
        Some(f) => Filter::parse(f).map(Some).map_err(|e| {
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("Failed to create boolean expression evaluator: {e}"))
        }),
    }
}

pub(super) fn keep(f: &Option<Filter>, v: &Value) -> bool {
    f.as_ref().is_none_or(|f| f.matches(v))
}

/// `?node-meta=k:v` (repeatable, all must match).
pub(super) fn node_meta_ok(q: &ConsulQuery, n: &NodeItem) -> bool {
    q.all("node-meta").iter().all(|p| {
        let (k, v) = p.split_once(':').unwrap_or((p, ""));
        n.meta.get(k).is_some_and(|x| x == v)
    })
}

/// `?tag=` (repeatable, all must be present, case-insensitive).
pub(super) fn tags_ok(q: &ConsulQuery, s: &ServiceView) -> bool {
    q.all("tag").iter().all(|t| s.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
}

pub(super) fn node_json(n: &NodeItem) -> Value {
    json!({"ID": n.id, "Node": n.name, "Address": n.address, "Datacenter": DATACENTER,
           "TaggedAddresses": n.tagged_addresses, "Meta": n.meta,
           "CreateIndex": n.create_index, "ModifyIndex": n.modify_index})
}

fn weights(s: &ServiceView) -> Value {
    json!({"Passing": s.weights.0, "Warning": s.weights.1})
}

/// A service as `/catalog/node` and `/health/service` show it (NodeService).
pub(super) fn node_service_json(s: &ServiceView) -> Value {
    let mut v = json!({"ID": s.id, "Service": s.name, "Tags": s.tags, "Address": s.address, "Meta": s.meta,
                       "Port": s.port, "Weights": weights(s), "EnableTagOverride": s.enable_tag_override,
                       "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {},
                       "Kind": s.kind, "Datacenter": DATACENTER});
    if !s.tagged_addresses.is_empty() {
        v["TaggedAddresses"] = json!(s.tagged_addresses);
    }
    v
}

/// A service as the agent shows it (AgentService).
pub(super) fn agent_service_json(s: &ServiceView) -> Value {
    let mut v = json!({"ID": s.id, "Service": s.name, "Tags": s.tags, "Meta": s.meta, "Port": s.port,
                       "Address": s.address, "Weights": weights(s), "EnableTagOverride": s.enable_tag_override,
                       "Datacenter": DATACENTER});
    if !s.tagged_addresses.is_empty() {
        v["TaggedAddresses"] = json!(s.tagged_addresses);
    }
    if !s.kind.is_empty() {
        v["Kind"] = json!(s.kind);
    }
    v
}

/// One instance as `/catalog/service` shows it (ServiceNode).
fn service_node_json(s: &ServiceView) -> Value {
    let n = &s.node;
    let mut v = json!({"ID": n.id, "Node": n.name, "Address": n.address, "Datacenter": DATACENTER,
        "TaggedAddresses": n.tagged_addresses, "NodeMeta": n.meta, "ServiceKind": s.kind,
        "ServiceID": s.id, "ServiceName": s.name, "ServiceTags": s.tags, "ServiceAddress": s.address,
        "ServiceWeights": weights(s), "ServiceMeta": s.meta, "ServicePort": s.port,
        "ServiceEnableTagOverride": s.enable_tag_override,
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "ServiceConnect": {},
        "CreateIndex": n.create_index, "ModifyIndex": n.modify_index});
    if !s.tagged_addresses.is_empty() {
        v["ServiceTaggedAddresses"] = json!(s.tagged_addresses);
    }
    v
}

/// Runs a catalog read as a blocking query and replies with its JSON; `f` leaves out what the
/// token may not read through its `Visible`.
pub(super) async fn blocking_read(
    st: &AppState,
    acl: &Acl,
    raw: Option<String>,
    mut f: impl FnMut(&AppState, &ConsulQuery, &Option<Filter>, &Visible) -> Result<Value, Response>,
) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    let opts = match QueryOpts::parse(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let filter = match filter_of(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let visible = Visible::new(acl);
    // The index is read first: a change applied meanwhile then wakes the next round.
    let run = blocking::run(st, &opts, Table::Catalog, || {
        let index = catalog_index(st);
        visible.reset();
        Ok((f(st, &q, &filter, &visible)?, index))
    });
    match run.await {
        Ok((v, meta)) => {
            let mut r = meta.json(&v);
            visible.finish(&mut r);
            r
        }
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRegistration {
    id: Option<String>,
    node: Option<String>,
    address: Option<String>,
    taggedaddresses: Option<BTreeMap<String, String>>,
    nodemeta: Option<BTreeMap<String, String>>,
    service: Option<RawService>,
    check: Option<RawCheck>,
    checks: Option<Vec<RawCheck>>,
    skipnodeupdate: Option<bool>,
}

pub(super) const USER_MAPS: [&str; 4] = ["meta", "nodemeta", "header", "taggedaddresses"];

async fn register(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(r) = super::check_enterprise_params(&ConsulQuery::parse(q.as_deref())) {
        return r;
    }
    let r: RawRegistration = match super::decode_body(&body, &USER_MAPS) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let node = NodeItem {
        name: r.node.unwrap_or_default(),
        id: r.id.unwrap_or_default(),
        address: r.address.unwrap_or_default(),
        tagged_addresses: r.taggedaddresses.unwrap_or_default(),
        meta: r.nodemeta.unwrap_or_default(),
        ..Default::default()
    };
    let service = match r.service.map(|s| s.spec(true)).transpose() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut checks = Vec::new();
    for c in r.check.into_iter().chain(r.checks.unwrap_or_default()) {
        match c.spec() {
            Ok(c) => checks.push(c),
            Err(e) => return e,
        }
    }
    let skip = r.skipnodeupdate.unwrap_or(false);
    if let Err(r) = super::vet::register(&st, &acl, &node, skip, service.as_ref(), &checks) {
        return r;
    }
    let cat = ConsulCatalog::new(st.node.clone());
    match cat.catalog_register(node, skip, service, checks).await {
        Ok(()) => Json(true).into_response(),
        Err(e) => domain_error(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDeregistration {
    node: Option<String>,
    serviceid: Option<String>,
    checkid: Option<String>,
}

async fn deregister(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if let Err(r) = super::check_enterprise_params(&ConsulQuery::parse(q.as_deref())) {
        return r;
    }
    let r: RawDeregistration = match super::decode_body(&body, &[]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let (node, service_id, check_id) = (r.node.unwrap_or_default(), nonempty(r.serviceid), nonempty(r.checkid));
    if let Err(r) = super::vet::deregister(&st, &acl, &node, service_id.as_deref(), check_id.as_deref()) {
        return r;
    }
    let cat = ConsulCatalog::new(st.node.clone());
    match cat.catalog_deregister(&node, service_id, check_id).await {
        Ok(()) => Json(true).into_response(),
        Err(e) => domain_error(e),
    }
}

async fn services(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(q): RawQuery) -> Response {
    blocking_read(&st, &acl, q, |st, q, f, v| {
        let cat = read(st)?;
        let mut out = Map::new();
        let plain = q.all("node-meta").is_empty() && f.is_none();
        if plain {
            for (name, tags) in cat.service_names().into_iter().filter(|(name, _)| v.service(name)) {
                out.insert(name, json!(tags));
            }
            return Ok(Value::Object(out));
        }
        // With node-meta or a filter, per instance (the filter sees ServiceNode fields).
        let mut acc: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for n in cat.nodes().iter().filter(|n| node_meta_ok(q, n)) {
            if let Some((_, svcs)) = cat.node_services(&n.name).map_err(domain_error)? {
                for s in svcs.iter().filter(|s| v.service(&s.name) && keep(f, &service_node_json(s))) {
                    acc.entry(s.name.clone()).or_default().extend(s.tags.iter().cloned());
                }
            }
        }
        Ok(json!(acc))
    })
    .await
}

async fn nodes(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(q): RawQuery) -> Response {
    blocking_read(&st, &acl, q, |st, q, f, v| {
        let cat = read(st)?;
        let out: Vec<Value> = cat
            .nodes()
            .iter()
            .filter(|n| node_meta_ok(q, n) && v.node(&n.name))
            .map(node_json)
            .filter(|x| keep(f, x))
            .collect();
        Ok(json!(out))
    })
    .await
}

async fn service(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    blocking_read(&st, &acl, q, |st, q, f, v| {
        let cat = read(st)?;
        let out: Vec<Value> = cat
            .service(&name)
            .iter()
            .filter(|s| node_meta_ok(q, &s.node) && tags_ok(q, s) && v.service(&s.name) && v.node(&s.node.name))
            .map(service_node_json)
            .filter(|x| keep(f, x))
            .collect();
        Ok(json!(out))
    })
    .await
}

async fn node(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    blocking_read(&st, &acl, q, |st, _, f, v| {
        let Some((n, svcs)) = read(st)?.node_services(&name).map_err(domain_error)? else { return Ok(Value::Null) };
        if !v.node(&n.name) {
            return Ok(Value::Null);
        }
        let services: Map<String, Value> = svcs
            .iter()
            .filter(|s| v.service(&s.name))
            .map(|s| (s.id.clone(), node_service_json(s)))
            .filter(|(_, x)| keep(f, x))
            .collect();
        Ok(json!({"Node": node_json(&n), "Services": services}))
    })
    .await
}

async fn node_services(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    blocking_read(&st, &acl, q, |st, _, f, v| {
        let Some((n, svcs)) = read(st)?.node_services(&name).map_err(domain_error)? else { return Ok(Value::Null) };
        if !v.node(&n.name) {
            return Ok(Value::Null);
        }
        let services: Vec<Value> =
            svcs.iter().filter(|s| v.service(&s.name)).map(node_service_json).filter(|x| keep(f, x)).collect();
        Ok(json!({"Node": node_json(&n), "Services": services}))
    })
    .await
}
