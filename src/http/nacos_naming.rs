//! Nacos naming v1 (`/v1/ns/...`): instances (register, deregister, update, detail, list, beat),
//! services (CRUD and list), operator health, cluster settings and the metrics probe.
//!
//! The `naming_params` section below is shared with the v2 and v3 adapters: parameter parsing
//! and the registry operations they all perform, each written once. The adapters only choose
//! the reply shape (plain text here, the `{code, message, data}` envelope there).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::Request;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::put;
use axum::Json;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::consistency;
use super::nacos_error;
use super::params;
use super::AppState;
use crate::domain::config::normalize_namespace;
use crate::domain::config::DEFAULT_GROUP;
use crate::domain::naming::parse_metadata;
use crate::domain::naming::service_key;
use crate::domain::naming::InstanceSpec;
use crate::domain::naming_service::BeatReply;
use crate::domain::naming_service::ServiceDetail;
use crate::domain::naming_view::Selection;
use crate::domain::naming_view::ServiceInfo;
use crate::domain::DomainError;
use crate::state_machine::naming::ClusterItem;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;
use crate::state_machine::naming::ServiceSpec;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ns/instance", get(instance_detail).post(register).put(update).delete(deregister))
        .route("/v1/ns/instance/list", get(list))
        .route("/v1/ns/instance/beat", put(beat))
        .route("/v1/ns/service", get(service_get).post(service_create).put(service_update).delete(service_remove))
        .route("/v1/ns/service/list", get(service_list))
        .route("/v1/ns/health/instance", put(health))
        .route("/v1/ns/cluster", put(cluster))
        .route("/v1/ns/operator/metrics", get(metrics))
}

// ---------------------------------------------------------------------------------------------
// naming_params: shared by the v1, v2 and v3 naming adapters.
// ---------------------------------------------------------------------------------------------

/// Query-string and form-body parameters merged, for every method (as Nacos reads them).
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Params, Response> {
        let query = req.uri().query().map(str::to_string);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(Params(params(query.as_deref(), &headers, &body)))
    }
}

/// Why a naming request failed; each API version renders it in its own shape.
#[derive(Debug)]
pub enum Fail {
    /// A required parameter is absent or blank.
    Missing(&'static str),
    Domain(DomainError),
    NoNamespace(String),
    NoInstance(String),
    NoService(String),
}

impl From<DomainError> for Fail {
    fn from(e: DomainError) -> Fail {
        Fail::Domain(e)
    }
}

fn invalid(msg: String) -> Fail {
    Fail::Domain(DomainError::Invalid(msg))
}

/// A parameter's value, trimmed; `None` when absent or blank.
pub fn text<'a>(p: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required<'a>(p: &'a HashMap<String, String>, k: &'static str) -> Result<&'a str, Fail> {
    text(p, k).ok_or(Fail::Missing(k))
}

fn number<T: FromStr>(p: &HashMap<String, String>, k: &str) -> Result<Option<T>, Fail> {
    match text(p, k) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| invalid(format!("{k} must be a number, got '{v}'"))),
    }
}

/// `true`/`false` (any case) from the first of `keys` present; `default` when none is.
fn flag(p: &HashMap<String, String>, keys: &[&str], default: bool) -> Result<bool, Fail> {
    let Some((k, v)) = keys.iter().find_map(|k| text(p, k).map(|v| (*k, v))) else { return Ok(default) };
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(format!("{k} must be true or false, got '{v}'"))),
    }
}

/// A `true`/`false` parameter, `false` when absent.
pub fn flag_of(p: &HashMap<String, String>, k: &str) -> Result<bool, Fail> {
    flag(p, &[k], false)
}

/// The service a request names (`serviceName`, possibly grouped, `groupName`, `namespaceId`).
pub fn key_of(p: &HashMap<String, String>) -> Result<ServiceKey, Fail> {
    let name = required(p, "serviceName")?;
    Ok(service_key(text(p, "namespaceId"), text(p, "groupName"), Some(name))?)
}

/// The namespace of a write must exist.
fn ensure_namespace(st: &AppState, key: &ServiceKey) -> Result<(), Fail> {
    if st.namespaces.exists(&key.namespace)? {
        Ok(())
    } else {
        Err(Fail::NoNamespace(format!("Namespace '{}' does not exist", key.namespace)))
    }
}

/// The cluster a request names (`clusterName`, or the legacy `cluster`); blank is the default.
fn cluster_of(p: &HashMap<String, String>) -> String {
    text(p, "clusterName").or(text(p, "cluster")).unwrap_or("").to_string()
}

/// `ip`, `port` and cluster of an instance a request points at.
fn address(p: &HashMap<String, String>) -> Result<(String, i64, String), Fail> {
    let ip = required(p, "ip")?.to_string();
    let port = number(p, "port")?.ok_or(Fail::Missing("port"))?;
    Ok((ip, port, cluster_of(p)))
}

fn spec_of_item(i: &InstanceItem) -> InstanceSpec {
    InstanceSpec {
        instance_id: i.id.clone(),
        ip: i.ip.clone(),
        port: i64::from(i.port),
        weight: i.weight,
        healthy: i.healthy,
        enabled: i.enabled,
        ephemeral: i.ephemeral,
        cluster: i.cluster.clone(),
        metadata: i.metadata.clone(),
    }
}

/// An instance from the request's parameters over `base` (the defaults, or the stored instance
/// for an update). Values go to the domain unmodified: it validates them.
fn spec_of(p: &HashMap<String, String>, base: InstanceSpec) -> Result<InstanceSpec, Fail> {
    let (ip, port, cluster) = address(p)?;
    Ok(InstanceSpec {
        instance_id: text(p, "instanceId").map(str::to_string).unwrap_or(base.instance_id),
        ip,
        port,
        weight: number(p, "weight")?.unwrap_or(base.weight),
        healthy: flag(p, &["healthy"], base.healthy)?,
        enabled: flag(p, &["enabled", "enable"], base.enabled)?,
        ephemeral: flag(p, &["ephemeral"], base.ephemeral)?,
        cluster,
        metadata: match p.get("metadata") {
            Some(m) => parse_metadata(m)?,
            None => base.metadata,
        },
    })
}

/// Registers the instance a request describes: ephemeral ones live by beats, the others until
/// deleted. The registration counts as the instance's first beat.
pub async fn op_register(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    let spec = spec_of(p, InstanceSpec::default())?;
    ensure_namespace(st, &key)?;
    let owner = if spec.ephemeral { Owner::Beat } else { Owner::Persistent };
    for i in st.naming.register(&key, owner, vec![spec], false).await? {
        if i.ephemeral {
            st.naming.beat(&key, &i.ip, i64::from(i.port), &i.cluster, None).await?;
        }
    }
    Ok(())
}

pub async fn op_deregister(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    let (ip, port, cluster) = address(p)?;
    Ok(st.naming.deregister(&key, &ip, port, &cluster).await?)
}

fn no_instance(key: &ServiceKey, ip: &str, port: i64) -> Fail {
    Fail::NoInstance(format!("no instance {ip}:{port} in service {}", key.grouped()))
}

/// The instance a request points at.
pub fn op_find(st: &AppState, p: &HashMap<String, String>) -> Result<(ServiceKey, InstanceItem), Fail> {
    let key = key_of(p)?;
    let (ip, port, cluster) = address(p)?;
    match st.naming.find_instance(&key, &ip, port, &cluster) {
        Some(i) => Ok((key, i)),
        None => Err(no_instance(&key, &ip, port)),
    }
}

/// Updates an instance; parameters left out keep their stored values.
pub async fn op_update(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let (key, old) = op_find(st, p)?;
    let spec = spec_of(p, spec_of_item(&old))?;
    st.naming.update_instance(&key, spec).await.map_err(|e| match e {
        DomainError::NotFound(m) => Fail::NoInstance(m),
        e => Fail::Domain(e),
    })
}

/// `ServiceInfo` for a query (`clusters` or `clusterName`, `healthyOnly`, `consistency`).
pub async fn op_query(st: &AppState, p: &HashMap<String, String>, grouped_name: bool) -> Result<ServiceInfo, Fail> {
    let key = key_of(p)?;
    let clusters = text(p, "clusters").or(text(p, "clusterName")).unwrap_or("");
    let sel = Selection { clusters, healthy_only: flag(p, &["healthyOnly"], false)?, grouped_name };
    Ok(st.naming.query(&key, &sel, consistency(p)).await?)
}

/// Every instance of a service, disabled ones too (admin listings), filtered by `clusterName`
/// and `healthyOnly`.
pub fn op_instances(st: &AppState, p: &HashMap<String, String>) -> Result<(ServiceKey, Vec<InstanceItem>), Fail> {
    let key = key_of(p)?;
    let clusters: Vec<&str> =
        text(p, "clusterName").unwrap_or("").split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    let healthy_only = flag(p, &["healthyOnly"], false)?;
    let mut all = st.naming.instances(&key);
    all.retain(|i| (clusters.is_empty() || clusters.contains(&i.cluster.as_str())) && (i.healthy || !healthy_only));
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((key, all))
}

/// What a client's `beat` parameter describes.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct BeatJson {
    ip: Option<String>,
    port: Option<i64>,
    cluster: Option<String>,
    weight: Option<f64>,
    metadata: Option<BTreeMap<String, Value>>,
    instance_id: Option<String>,
}

/// An HTTP client's beat: ip, port and cluster from the `beat` JSON when given, else from the
/// parameters; with a `beat`, an unknown instance is registered from it.
pub async fn op_beat(st: &AppState, p: &HashMap<String, String>) -> Result<BeatReply, Fail> {
    let key = key_of(p)?;
    let beat: Option<BeatJson> = match text(p, "beat") {
        Some(b) => Some(serde_json::from_str(b).map_err(|e| invalid(format!("beat is not a valid JSON object: {e}")))?),
        None => None,
    };
    let b = beat.as_ref();
    let ip = match b.and_then(|b| b.ip.clone()).filter(|ip| !ip.trim().is_empty()) {
        Some(ip) => ip,
        None => required(p, "ip")?.to_string(),
    };
    let port = match b.and_then(|b| b.port) {
        Some(port) => port,
        None => number(p, "port")?.ok_or(Fail::Missing("port"))?,
    };
    let cluster = b.and_then(|b| b.cluster.clone()).filter(|c| !c.trim().is_empty()).unwrap_or_else(|| cluster_of(p));
    let described = match beat {
        Some(b) => {
            ensure_namespace(st, &key)?;
            let metadata = b
                .metadata
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            Some(InstanceSpec {
                instance_id: b.instance_id.unwrap_or_default(),
                ip: ip.clone(),
                port,
                weight: b.weight.unwrap_or(1.0),
                cluster: cluster.clone(),
                metadata,
                ..InstanceSpec::default()
            })
        }
        None => None,
    };
    Ok(st.naming.beat(&key, &ip, port, &cluster, described).await?)
}

/// A Nacos 3 client heartbeat: only for a known instance (no registration from it).
pub async fn op_heartbeat(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    let (ip, port, cluster) = address(p)?;
    let r = st.naming.beat(&key, &ip, port, &cluster, None).await?;
    if r.code == crate::domain::naming_service::BEAT_OK {
        Ok(())
    } else {
        Err(no_instance(&key, &ip, port))
    }
}

pub async fn op_set_health(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    let (ip, port, cluster) = address(p)?;
    let healthy = required(p, "healthy").and_then(|_| flag(p, &["healthy"], true))?;
    st.naming.set_health(&key, &ip, port, &cluster, healthy).await.map_err(|e| match e {
        DomainError::NotFound(_) => no_instance(&key, &ip, port),
        e => Fail::Domain(e),
    })
}

/// A `selector` parameter: a JSON object of type `none` or `label`.
fn selector_of(s: &str) -> Result<String, Fail> {
    let v: serde_json::Map<String, Value> =
        serde_json::from_str(s).map_err(|e| invalid(format!("selector is not a valid JSON object: {e}")))?;
    match v.get("type").and_then(Value::as_str) {
        Some("none" | "label") => Ok(Value::Object(v).to_string()),
        other => Err(invalid(format!("selector type must be 'none' or 'label', got {other:?}"))),
    }
}

/// Service settings from the parameters over `base`.
fn service_spec(p: &HashMap<String, String>, base: ServiceSpec) -> Result<ServiceSpec, Fail> {
    Ok(ServiceSpec {
        protect_threshold: number(p, "protectThreshold")?.unwrap_or(base.protect_threshold),
        metadata: match p.get("metadata") {
            Some(m) => parse_metadata(m)?,
            None => base.metadata,
        },
        selector: match text(p, "selector") {
            Some(s) => selector_of(s)?,
            None => base.selector,
        },
    })
}

fn service_fail(e: DomainError) -> Fail {
    match e {
        DomainError::NotFound(m) => Fail::NoService(m),
        e => Fail::Domain(e),
    }
}

pub fn op_service_get(st: &AppState, p: &HashMap<String, String>) -> Result<ServiceDetail, Fail> {
    let key = key_of(p)?;
    st.naming.get_service(&key).ok_or_else(|| Fail::NoService(format!("service {} is not found!", key.grouped())))
}

pub async fn op_service_create(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    let spec = service_spec(p, ServiceSpec::default())?;
    ensure_namespace(st, &key)?;
    Ok(st.naming.create_service(&key, spec).await?)
}

/// Updates a service; parameters left out keep their stored values.
pub async fn op_service_update(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let old = op_service_get(st, p)?;
    let spec = service_spec(p, old.item.spec)?;
    st.naming.update_service(&old.key, spec).await.map_err(service_fail)
}

pub async fn op_service_remove(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let key = key_of(p)?;
    st.naming.remove_service(&key).await.map_err(service_fail)
}

/// A cluster's health-check settings from the parameters over its current ones.
pub async fn op_cluster(st: &AppState, p: &HashMap<String, String>) -> Result<(), Fail> {
    let svc = op_service_get(st, p)?;
    let name = required(p, "clusterName")?.to_string();
    let mut c: ClusterItem = svc.clusters.into_iter().find(|(n, _)| *n == name).map(|(_, c)| c).unwrap_or_default();
    if let Some(port) = number::<u32>(p, "checkPort")? {
        c.check_port = port;
    }
    c.use_instance_port = flag(p, &["useInstancePort4Check"], c.use_instance_port)?;
    if let Some(h) = text(p, "healthChecker") {
        let h: serde_json::Map<String, Value> =
            serde_json::from_str(h).map_err(|e| invalid(format!("healthChecker is not a valid JSON object: {e}")))?;
        c.check_type = h.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        c.check_path = h.get("path").and_then(Value::as_str).unwrap_or("").to_string();
    }
    if let Some(m) = p.get("metadata") {
        c.metadata = parse_metadata(m)?;
    }
    st.naming.update_cluster(&svc.key, &name, c).await.map_err(service_fail)
}

/// `pageNo` (1-based) and `pageSize`.
pub fn page_of(p: &HashMap<String, String>, default_size: usize) -> Result<(usize, usize), Fail> {
    Ok((number(p, "pageNo")?.unwrap_or(1), number(p, "pageSize")?.unwrap_or(default_size)))
}

/// Plain service names of a namespace and group (default `DEFAULT_GROUP`), one page, and the
/// total.
pub fn op_service_names(
    p: &HashMap<String, String>,
    st: &AppState,
    default_size: usize,
) -> Result<(usize, Vec<String>), Fail> {
    let (page_no, page_size) = page_of(p, default_size)?;
    let ns = normalize_namespace(text(p, "namespaceId"));
    let group = text(p, "groupName").unwrap_or(DEFAULT_GROUP);
    Ok(st.naming.list_services(&ns, group, page_no, page_size))
}

/// `{"type":"none"}` unless a selector was set.
pub fn selector_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| json!({"type": "none"}))
}

pub fn health_checker_json(c: &ClusterItem) -> Value {
    match c.check_type.as_str() {
        "HTTP" => json!({"type": "HTTP", "path": c.check_path}),
        t => json!({"type": t}),
    }
}

/// Nacos' instance detail (v1 names the service `service`, v2 `serviceName`).
pub fn instance_detail_json(key: &ServiceKey, i: &InstanceItem, service_field: &str) -> Value {
    json!({
        service_field: key.grouped(), "ip": i.ip, "port": i.port, "clusterName": i.cluster,
        "weight": i.weight, "healthy": i.healthy, "enabled": i.enabled, "ephemeral": i.ephemeral,
        "instanceId": i.id, "metadata": i.metadata,
    })
}

// ---------------------------------------------------------------------------------------------
// v1 handlers
// ---------------------------------------------------------------------------------------------

fn v1_fail(f: Fail) -> Response {
    match f {
        Fail::Missing(k) => nacos_error(DomainError::Invalid(format!("Param '{k}' is required."))),
        Fail::Domain(e) => nacos_error(e),
        Fail::NoNamespace(m) => nacos_error(DomainError::Invalid(m)),
        Fail::NoInstance(m) => nacos_error(DomainError::NotFound(m)),
        // Nacos answers 400 for a missing service.
        Fail::NoService(m) => nacos_error(DomainError::Invalid(m)),
    }
}

fn v1_ok(r: Result<(), Fail>) -> Response {
    match r {
        Ok(()) => "ok".into_response(),
        Err(f) => v1_fail(f),
    }
}

fn v1_json(r: Result<Value, Fail>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(f) => v1_fail(f),
    }
}

async fn register(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_register(&st, &p).await)
}

async fn deregister(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_deregister(&st, &p).await)
}

async fn update(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_update(&st, &p).await)
}

async fn instance_detail(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(op_find(&st, &p).map(|(k, i)| instance_detail_json(&k, &i, "service")))
}

async fn list(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(op_query(&st, &p, true).await.map(|info| serde_json::to_value(info).unwrap_or(Value::Null)))
}

pub fn beat_json(r: &BeatReply) -> Value {
    json!({"clientBeatInterval": r.interval_ms, "code": r.code, "lightBeatEnabled": true})
}

async fn beat(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(op_beat(&st, &p).await.map(|r| beat_json(&r)))
}

async fn health(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_set_health(&st, &p).await)
}

async fn cluster(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_cluster(&st, &p).await)
}

async fn service_create(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_service_create(&st, &p).await)
}

async fn service_update(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_service_update(&st, &p).await)
}

async fn service_remove(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_ok(op_service_remove(&st, &p).await)
}

async fn service_get(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(op_service_get(&st, &p).map(|d| {
        let clusters: Vec<Value> = d
            .clusters
            .iter()
            .map(|(name, c)| {
                json!({"name": name, "healthChecker": health_checker_json(c), "metadata": c.metadata,
                       "defaultCheckPort": c.check_port, "useIPPort4Check": c.use_instance_port})
            })
            .collect();
        json!({
            "namespaceId": d.key.namespace, "groupName": d.key.group, "name": d.key.name,
            "protectThreshold": d.item.spec.protect_threshold, "metadata": d.item.spec.metadata,
            "selector": selector_json(&d.item.spec.selector), "clusters": clusters,
        })
    }))
}

async fn service_list(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(op_service_names(&p, &st, 20).map(|(count, doms)| json!({"count": count, "doms": doms})))
}

/// The health probe of Java 2.x, Go and Node.js clients; counts with `onlyStatus=false`.
async fn metrics(State(st): State<AppState>, Params(p): Params) -> Response {
    v1_json(
        async {
            if flag(&p, &["onlyStatus"], true)? {
                return Ok(json!({"status": "UP"}));
            }
            let (mut services, mut instances, mut healthy) = (0, 0, 0);
            for ns in st.namespaces.list()? {
                for s in st.naming.services_in(&ns.id) {
                    services += 1;
                    instances += s.instance_count;
                    healthy += s.healthy_count;
                }
            }
            Ok(json!({"status": "UP", "serviceCount": services, "instanceCount": instances,
                      "healthyInstanceCount": healthy, "subscribeCount": 0}))
        }
        .await,
    )
}
