//! Nacos 3.x naming in the `{code, message, data}` envelope: the client API
//! (`/v3/client/ns/instance`, where `heartBeat=true` turns a registration into a beat), and the
//! admin and console instance, service, health and cluster endpoints (one set of handlers under
//! `/v3/admin/ns` and `/v3/console/ns`). Parsing and operations are shared with v1 and v2.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use axum::routing::put;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::nacos_naming::flag_of;
use super::nacos_naming::op_cluster;
use super::nacos_naming::op_deregister;
use super::nacos_naming::op_find;
use super::nacos_naming::op_heartbeat;
use super::nacos_naming::op_instances;
use super::nacos_naming::op_query;
use super::nacos_naming::op_register;
use super::nacos_naming::op_service_create;
use super::nacos_naming::op_service_get;
use super::nacos_naming::op_service_remove;
use super::nacos_naming::op_service_update;
use super::nacos_naming::op_set_health;
use super::nacos_naming::op_update;
use super::nacos_naming::page_of;
use super::nacos_naming::text;
use super::nacos_naming::Fail;
use super::nacos_naming::Params;
use super::nacos_naming_v2::reply;
use super::nacos_naming_v2::reply_ok;
use super::nacos_naming_v2::service_detail_json;
use super::AppState;
use crate::domain::config::normalize_namespace;
use crate::domain::naming_view::InstanceView;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/v3/client/ns/instance", post(client_register).delete(deregister))
        .route("/v3/client/ns/instance/list", get(client_list))
        .route("/v3/console/ns/service/cluster", put(cluster));
    for base in ["/v3/admin/ns", "/v3/console/ns"] {
        r = r
            .route(&format!("{base}/instance"), get(instance_detail).post(register).put(update).delete(deregister))
            .route(
                &format!("{base}/service"),
                get(service_get).post(service_create).put(service_update).delete(service_remove),
            )
            .route(&format!("{base}/service/list"), get(service_list))
            .route(&format!("{base}/health/instance"), put(health))
            .route(&format!("{base}/cluster"), put(cluster));
    }
    r.route("/v3/admin/ns/instance/list", get(admin_instance_list))
        .route("/v3/console/ns/instance/list", get(console_instance_list))
}

/// Nacos' page shape, 1-based.
fn page(items: Vec<Value>, p: &HashMap<String, String>, default_size: usize) -> Result<Value, Fail> {
    let (page_no, page_size) = page_of(p, default_size)?;
    let total = items.len();
    let pages = if page_size == 0 { 0 } else { total.div_ceil(page_size) };
    let start = page_no.saturating_sub(1).saturating_mul(page_size);
    let rows: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    Ok(json!({"totalCount": total, "pageNumber": page_no.max(1), "pagesAvailable": pages, "pageItems": rows}))
}

async fn client_register(State(st): State<AppState>, Params(p): Params) -> Response {
    match flag_of(&p, "heartBeat") {
        Ok(true) => reply_ok(op_heartbeat(&st, &p).await),
        Ok(false) => reply_ok(op_register(&st, &p).await),
        Err(f) => reply_ok(Err(f)),
    }
}

/// The instances a client sees (enabled ones, with the protection threshold applied).
async fn client_list(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_query(&st, &p, false).await.map(|info| serde_json::to_value(info.hosts).unwrap_or(Value::Null)))
}

async fn register(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_register(&st, &p).await)
}

async fn deregister(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_deregister(&st, &p).await)
}

async fn update(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_update(&st, &p).await)
}

async fn instance_detail(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_find(&st, &p).map(|(k, i)| serde_json::to_value(InstanceView::of(&k, &i)).unwrap_or(Value::Null)))
}

fn instance_rows(st: &AppState, p: &HashMap<String, String>) -> Result<Vec<Value>, Fail> {
    let (key, all) = op_instances(st, p)?;
    Ok(all.iter().map(|i| serde_json::to_value(InstanceView::of(&key, i)).unwrap_or(Value::Null)).collect())
}

async fn admin_instance_list(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(instance_rows(&st, &p).map(Value::Array))
}

async fn console_instance_list(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(instance_rows(&st, &p).and_then(|rows| page(rows, &p, 100)))
}

async fn health(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_set_health(&st, &p).await)
}

async fn cluster(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_cluster(&st, &p).await)
}

async fn service_create(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_service_create(&st, &p).await)
}

async fn service_update(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_service_update(&st, &p).await)
}

async fn service_remove(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_service_remove(&st, &p).await)
}

async fn service_get(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_service_get(&st, &p).map(|d| service_detail_json(&d)))
}

/// A page of a namespace's services; `groupNameParam` / `serviceNameParam` (or `groupName` /
/// `serviceName`) keep those whose group / name contains the value.
async fn service_list(State(st): State<AppState>, Params(p): Params) -> Response {
    let ns = normalize_namespace(text(&p, "namespaceId"));
    let group = text(&p, "groupNameParam").or(text(&p, "groupName")).unwrap_or("");
    let name = text(&p, "serviceNameParam").or(text(&p, "serviceName")).unwrap_or("");
    let rows: Vec<Value> = st
        .naming
        .services_in(&ns)
        .into_iter()
        .filter(|s| s.key.group.contains(group) && s.key.name.contains(name))
        .map(|s| {
            json!({"name": s.key.name, "groupName": s.key.group, "clusterCount": s.clusters.len(),
                   "ipCount": s.instance_count, "healthyInstanceCount": s.healthy_count, "triggerFlag": false})
        })
        .collect();
    reply(page(rows, &p, 100))
}
