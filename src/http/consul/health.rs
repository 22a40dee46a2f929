//! `/v1/health/*`: service (with `passing`, `tag`, `node-meta`, `filter`), checks, state and
//! node (all blocking on the catalog table), the agent's `/v1/agent/health/service/{name,id}/*`
//! (the aggregate as the status code), and the HealthCheck JSON. `/health/service` lists
//! instances in the order and with the node ids of `/catalog/service`, each with its node's
//! checks then its own.
//!
//! ACLs, as Consul: instances need service read on their service and node read on their node;
//! service checks need service read, node checks node read; what the token may not read is
//! left out.

// Handler helpers return axum's `Response` as their error (the reply to send); it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::extract::Extension;
use axum::extract::Path;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Map;
use serde_json::Value;

use super::agent::local_services;
use super::caller::Acl;
use super::catalog::agent_service_json;
use super::catalog::blocking_read;
use super::catalog::domain_error;
use super::catalog::keep;
use super::catalog::node_json;
use super::catalog::node_meta_ok;
use super::catalog::node_service_json;
use super::catalog::read;
use super::catalog::tags_ok;
use super::error;
use super::ConsulQuery;
use crate::domain::consul_defs::NODE_MAINT;
use crate::domain::consul_defs::SERVICE_MAINT_PREFIX;
use crate::domain::consul_view::CheckView;
use crate::domain::consul_view::ServiceView;
use crate::http::AppState;
use crate::state_machine::catalog::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/health/service/{*name}", get(service))
        .route("/v1/health/checks/{*name}", get(checks))
        .route("/v1/health/state/", get(missing_state))
        .route("/v1/health/state/{state}", get(state))
        .route("/v1/health/node/{*node}", get(node))
        .route("/v1/agent/health/service/name/{*name}", get(health_by_name))
        .route("/v1/agent/health/service/id/{*id}", get(health_by_id))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

async fn service(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let passing = match ConsulQuery::parse(raw.as_deref()).go_bool("passing") {
        Ok(p) => p.unwrap_or(false),
        Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid value for ?passing"),
    };
    blocking_read(&st, &acl, raw, |st, q, f, v| {
        let cat = read(st)?;
        let mut out = Vec::new();
        let pick =
            |s: &&ServiceView| node_meta_ok(q, &s.node) && tags_ok(q, s) && v.service(&s.name) && v.node(&s.node.name);
        for s in cat.service(&name).iter().filter(pick) {
            let mut checks = cat.health_checks(s).map_err(domain_error)?;
            checks.retain(|c| v.check(c));
            if passing && checks.iter().any(|c| c.item.status != PASSING) {
                continue;
            }
            let entry = json!({"Node": node_json(&s.node), "Service": node_service_json(s),
                           "Checks": checks.iter().map(check_json).collect::<Vec<_>>()});
            if keep(f, &entry) {
                out.push(entry);
            }
        }
        Ok(json!(out))
    })
    .await
}

fn checks_reply(list: &[CheckView], f: &Option<super::filter::Filter>) -> Value {
    json!(list.iter().map(check_json).filter(|v| keep(f, v)).collect::<Vec<_>>())
}

async fn checks(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    blocking_read(&st, &acl, raw, |st, q, f, v| {
        let cat = read(st)?;
        let mut out = Vec::new();
        for s in cat.service(&name).iter().filter(|s| node_meta_ok(q, &s.node)) {
            out.extend(cat.service_checks(s).map_err(domain_error)?.into_iter().filter(|c| v.check(c)));
        }
        Ok(checks_reply(&out, f))
    })
    .await
}

async fn missing_state() -> Response {
    error(StatusCode::BAD_REQUEST, "Missing check state")
}

async fn state(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(state): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    if state != "any" && !valid_status(&state) {
        return error(StatusCode::BAD_REQUEST, format!("Invalid check state {state:?}"));
    }
    blocking_read(&st, &acl, raw, |st, q, f, v| {
        let cat = read(st)?;
        let all = cat.all_checks().map_err(domain_error)?;
        let mut out: Vec<CheckView> = Vec::new();
        for c in all.into_iter().filter(|c| (state == "any" || c.item.status == state) && v.check(c)) {
            if q.all("node-meta").is_empty() || cat.node(&c.item.node).is_some_and(|n| node_meta_ok(q, &n)) {
                out.push(c);
            }
        }
        Ok(checks_reply(&out, f))
    })
    .await
}

async fn node(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    blocking_read(&st, &acl, raw, |st, _, f, v| {
        let mut out = read(st)?.node_checks(&name).map_err(domain_error)?;
        out.retain(|c| v.check(c));
        Ok(checks_reply(&out, f))
    })
    .await
}

/// A Go `time.Duration` string (`10s`, `1m0s`, `1.5s`, `500ms`) of milliseconds.
pub(super) fn go_dur(ms: u64) -> String {
    if ms == 0 {
        return String::new();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let frac = ms % 1000;
    let s = (ms / 1000) % 60;
    let secs = if frac == 0 { format!("{s}s") } else { format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0')) };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

pub(super) fn check_json(c: &CheckView) -> Value {
    let i = &c.item;
    let d = &i.def;
    let mut def = Map::new();
    let mut put = |k: &str, v: Value| {
        let empty = v.as_str().is_some_and(str::is_empty) || v.as_bool() == Some(false);
        if !empty {
            def.insert(k.to_string(), v);
        }
    };
    put("HTTP", json!(d.http));
    put("TCP", json!(d.tcp));
    put("Method", json!(d.method));
    put("Body", json!(d.body));
    put("TLSSkipVerify", json!(d.tls_skip_verify));
    put("Interval", json!(go_dur(d.interval_ms)));
    put("Timeout", json!(go_dur(d.timeout_ms)));
    put("DeregisterCriticalServiceAfter", json!(go_dur(d.deregister_critical_after_ms)));
    if !d.header.is_empty() {
        def.insert("Header".into(), json!(d.header));
    }
    let kind = if i.check_type == "maintenance" { "" } else { i.check_type.as_str() };
    json!({"Node": i.node, "CheckID": i.id, "Name": i.name, "Status": i.status, "Notes": i.notes,
           "Output": i.output, "ServiceID": i.service_id, "ServiceName": i.service_name,
           "ServiceTags": c.service_tags, "Type": kind, "Interval": go_dur(d.interval_ms),
           "Timeout": go_dur(d.timeout_ms), "ExposedPort": 0, "Definition": def,
           "CreateIndex": i.create_index, "ModifyIndex": i.modify_index})
}

/// Consul's aggregate: maintenance > critical > warning > passing.
fn aggregated(checks: &[CheckView]) -> &'static str {
    let ids = |p: &dyn Fn(&CheckView) -> bool| checks.iter().any(p);
    if ids(&|c| c.item.id == NODE_MAINT || c.item.id.starts_with(SERVICE_MAINT_PREFIX)) {
        "maintenance"
    } else if ids(&|c| c.item.status == CRITICAL) {
        CRITICAL
    } else if ids(&|c| c.item.status == WARNING) {
        WARNING
    } else {
        PASSING
    }
}

fn code_of(status: &str) -> StatusCode {
    match status {
        PASSING => StatusCode::OK,
        WARNING => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn wants_text(q: &ConsulQuery, h: &HeaderMap) -> bool {
    q.get("format") == Some("text")
        || (q.get("format").is_none()
            && h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.starts_with("text/plain")))
}

fn agent_health(st: &AppState, pick: impl Fn(&ServiceView) -> bool) -> Result<Vec<(&'static str, Value)>, Response> {
    let (cat, svcs) = local_services(st)?;
    let mut out = Vec::new();
    for s in svcs.iter().filter(|s| pick(s)) {
        let checks = cat.health_checks(s).map_err(domain_error)?;
        let agg = aggregated(&checks);
        let cs: Vec<Value> =
            checks.iter().filter(|c| c.item.id != crate::domain::consul_view::SERF_CHECK).map(check_json).collect();
        out.push((agg, json!({"AggregatedStatus": agg, "Service": agent_service_json(s), "Checks": cs})));
    }
    Ok(out)
}

fn health_reply(text: bool, status: &'static str, body: Value) -> Response {
    if text {
        (code_of(status), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], status).into_response()
    } else {
        (code_of(status), Json(body)).into_response()
    }
}

async fn health_by_name(
    State(st): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let text = wants_text(&q, &headers);
    let found = match agent_health(&st, |s| s.name == name) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if found.is_empty() {
        let msg = format!("ServiceName {name} Not Found");
        return if text {
            error(StatusCode::NOT_FOUND, msg)
        } else {
            (StatusCode::NOT_FOUND, Json(json!([]))).into_response()
        };
    }
    let rank = |s: &str| match s {
        PASSING => 0,
        WARNING => 1,
        CRITICAL => 2,
        _ => 3,
    };
    let worst = found.iter().map(|(a, _)| *a).max_by_key(|a| rank(a)).unwrap_or(PASSING);
    health_reply(text, worst, Value::Array(found.into_iter().map(|(_, v)| v).collect()))
}

async fn health_by_id(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let agent = crate::domain::consul_view::local_node(&st.node).name;
    if let Err(r) = super::vet::agent_service_read(&st, &acl, &agent, &id) {
        return r;
    }
    let q = ConsulQuery::parse(q.as_deref());
    let text = wants_text(&q, &headers);
    match agent_health(&st, |s| s.id == id) {
        Err(r) => r,
        Ok(mut found) => match found.pop() {
            None => error(StatusCode::NOT_FOUND, format!("ServiceId {id} not found")),
            Some((agg, v)) => health_reply(text, agg, v),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::go_dur;

    #[test]
    fn go_duration_strings() {
        assert_eq!(go_dur(10_000), "10s");
        assert_eq!(go_dur(60_000), "1m0s");
        assert_eq!(go_dur(1_500), "1.5s");
        assert_eq!(go_dur(500), "500ms");
        assert_eq!(go_dur(3_723_250), "1h2m3.25s");
        assert_eq!(go_dur(0), "");
    }
}
