//! Nacos naming v2 (`/v2/ns/...`) in the `{code, message, data}` envelope: instances (register,
//! deregister, update, detail, list, beat), services (CRUD and list) and operator health. The
//! parsing and the registry operations are the v1 adapter's (`nacos_naming`); this file only
//! shapes replies and maps failures to Nacos' v2 error codes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::put;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::nacos_naming::beat_json;
use super::nacos_naming::health_checker_json;
use super::nacos_naming::instance_detail_json;
use super::nacos_naming::op_beat;
use super::nacos_naming::op_deregister;
use super::nacos_naming::op_find;
use super::nacos_naming::op_query;
use super::nacos_naming::op_register;
use super::nacos_naming::op_service_create;
use super::nacos_naming::op_service_get;
use super::nacos_naming::op_service_names;
use super::nacos_naming::op_service_remove;
use super::nacos_naming::op_service_update;
use super::nacos_naming::op_set_health;
use super::nacos_naming::op_update;
use super::nacos_naming::selector_json;
use super::nacos_naming::Fail;
use super::nacos_naming::Params;
use super::nacos_v2::v2_error;
use super::AppState;
use crate::domain::naming_service::ServiceDetail;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/ns/instance", get(instance_detail).post(register).put(update).delete(deregister))
        .route("/v2/ns/instance/list", get(list))
        .route("/v2/ns/instance/beat", put(beat))
        .route("/v2/ns/service", get(service_get).post(service_create).put(service_update).delete(service_remove))
        .route("/v2/ns/service/list", get(service_list))
        .route("/v2/ns/health/instance", put(health))
}

/// Nacos' v2 error codes for naming failures.
pub const PARAMETER_MISSING: i64 = 10000;
pub const INSTANCE_NOT_FOUND: i64 = 21003;
pub const SERVICE_NOT_EXIST: i64 = 21008;
pub const NAMESPACE_NOT_EXIST: i64 = 22001;

fn envelope(status: StatusCode, code: i64, message: &str, data: String) -> Response {
    (status, Json(json!({"code": code, "message": message, "data": data}))).into_response()
}

/// A naming failure in the v2/v3 envelope.
pub fn v2_fail(f: Fail) -> Response {
    match f {
        Fail::Missing(k) => envelope(
            StatusCode::BAD_REQUEST,
            PARAMETER_MISSING,
            "parameter missing",
            format!("Required parameter '{k}' is not present"),
        ),
        Fail::Domain(e) => v2_error(e),
        Fail::NoNamespace(m) => envelope(StatusCode::BAD_REQUEST, NAMESPACE_NOT_EXIST, "namespace not exist", m),
        Fail::NoInstance(m) => envelope(StatusCode::NOT_FOUND, INSTANCE_NOT_FOUND, "instance not found", m),
        Fail::NoService(m) => envelope(StatusCode::NOT_FOUND, SERVICE_NOT_EXIST, "service not exist", m),
    }
}

pub fn ok(data: Value) -> Response {
    Json(json!({"code": 0, "message": "success", "data": data})).into_response()
}

pub fn reply(r: Result<Value, Fail>) -> Response {
    match r {
        Ok(v) => ok(v),
        Err(f) => v2_fail(f),
    }
}

/// `data: "ok"` on success.
pub fn reply_ok(r: Result<(), Fail>) -> Response {
    reply(r.map(|()| json!("ok")))
}

/// Nacos' `ServiceDetailInfo` (v2 and v3).
pub fn service_detail_json(d: &ServiceDetail) -> Value {
    let clusters: serde_json::Map<String, Value> = d
        .clusters
        .iter()
        .map(|(name, c)| {
            let v = json!({"clusterName": name, "healthChecker": health_checker_json(c), "metadata": c.metadata,
                           "healthyCheckPort": c.check_port, "useInstancePortForCheck": c.use_instance_port});
            (name.clone(), v)
        })
        .collect();
    json!({
        "namespaceId": d.key.namespace, "groupName": d.key.group, "serviceName": d.key.name,
        "clusterMap": clusters, "metadata": d.item.spec.metadata,
        "protectThreshold": d.item.spec.protect_threshold,
        "selector": selector_json(&d.item.spec.selector), "ephemeral": d.item.ephemeral,
    })
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
    reply(op_find(&st, &p).map(|(k, i)| instance_detail_json(&k, &i, "serviceName")))
}

async fn list(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_query(&st, &p, true).await.map(|info| serde_json::to_value(info).unwrap_or(Value::Null)))
}

async fn beat(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_beat(&st, &p).await.map(|r| beat_json(&r)))
}

async fn health(State(st): State<AppState>, Params(p): Params) -> Response {
    reply_ok(op_set_health(&st, &p).await)
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

async fn service_list(State(st): State<AppState>, Params(p): Params) -> Response {
    reply(op_service_names(&p, &st, 20).map(|(count, services)| json!({"count": count, "services": services})))
}
