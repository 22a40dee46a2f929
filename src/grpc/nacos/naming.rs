//! Naming over the SDK port: instance registration (single, batch, persistent), queries,
//! subscriptions, service lists, and the `NotifySubscriberRequest` pushes.
//!
//! A connection's ephemeral instances are owned by the connection (`Owner::Conn`): registering
//! again for a service replaces what the connection had there, and when the connection goes
//! away everything it registered is expired. Subscribers are per node, like config listeners:
//! every node applies every change and pushes to the subscribers it holds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::connections::Conn;
use super::pb;
use super::wire;
use super::wire::code;
use super::wire::non_blank;
use super::wire::Incoming;
use crate::domain::naming::service_key;
use crate::domain::naming::InstanceSpec;
use crate::domain::naming_service::NamingService;
use crate::domain::naming_view::Selection;
use crate::domain::naming_view::ServiceInfo;
use crate::domain::DomainError;
use crate::domain::ReadConsistency;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;

pub use super::naming_push::notify_subscribers;
pub use super::naming_push::Subscribers;

/// Common fields of naming requests.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NamingReq {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    instance: Option<InstanceJson>,
    instances: Vec<InstanceJson>,
    cluster: Option<String>,
    clusters: Option<String>,
    healthy_only: bool,
    subscribe: bool,
    page_no: Option<i64>,
    page_size: Option<i64>,
}

/// An instance as clients send it; every field may be absent or null.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct InstanceJson {
    instance_id: Option<String>,
    ip: Option<String>,
    port: Option<i64>,
    weight: Option<f64>,
    healthy: Option<bool>,
    enabled: Option<bool>,
    ephemeral: Option<bool>,
    cluster_name: Option<String>,
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

impl InstanceJson {
    fn spec(self) -> InstanceSpec {
        InstanceSpec {
            instance_id: self.instance_id.unwrap_or_default(),
            ip: self.ip.unwrap_or_default(),
            port: self.port.unwrap_or(0),
            weight: self.weight.unwrap_or(1.0),
            healthy: self.healthy.unwrap_or(true),
            enabled: self.enabled.unwrap_or(true),
            ephemeral: self.ephemeral.unwrap_or(true),
            cluster: self.cluster_name.unwrap_or_default(),
            metadata: self.metadata.unwrap_or_default(),
        }
    }
}

/// The naming handlers' state on this node.
pub struct Naming {
    pub service: NamingService,
    pub subscribers: Arc<Subscribers>,
    /// Services each connection registered in (and since when), so a closing connection that
    /// registered nothing costs no Raft write, and lost registrations can be noticed.
    published: Mutex<HashMap<SocketAddr, Published>>,
}

/// What one connection registered.
struct Published {
    conn: String,
    services: HashMap<ServiceKey, Instant>,
}

fn err_code(e: &DomainError) -> i64 {
    match e {
        DomainError::Invalid(_) => code::INVALID_PARAM,
        DomainError::NotFound(_) => code::NOT_FOUND,
        DomainError::Conflict(_) => code::CONFLICT,
        _ => code::SERVER_ERROR,
    }
}

fn empty_info(key: Option<&ServiceKey>) -> Value {
    json!({"name": key.map(|k| k.name.clone()).unwrap_or_default(),
           "groupName": key.map(|k| k.group.clone()).unwrap_or_default(),
           "clusters": "", "cacheMillis": 10000, "hosts": [], "lastRefTime": 0, "checksum": "",
           "allIPs": false, "allIps": false, "reachProtectionThreshold": false, "valid": true})
}

fn info_json(info: &ServiceInfo) -> Value {
    serde_json::to_value(info).unwrap_or(Value::Null)
}

impl Naming {
    pub fn new(service: NamingService) -> Naming {
        Naming { service, subscribers: Arc::new(Subscribers::default()), published: Mutex::new(HashMap::new()) }
    }

    fn owner(&self, conn: &Conn) -> Owner {
        Owner::Conn { node: self.service.node().id, conn: conn.id.clone() }
    }

    fn mark_published(&self, conn: &Conn, key: &ServiceKey, present: bool) {
        let mut g = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let p = g.entry(conn.remote).or_insert_with(|| Published { conn: conn.id.clone(), services: HashMap::new() });
        if present {
            p.services.insert(key.clone(), Instant::now());
        } else {
            p.services.remove(key);
        }
    }

    /// A closed connection: its subscriptions end and its instances are expired.
    pub fn connection_closed(&self, conn: &Conn) {
        self.subscribers.drop_conn(conn.remote);
        let had = self.published.lock().unwrap_or_else(|e| e.into_inner()).remove(&conn.remote);
        if had.is_some_and(|p| !p.services.is_empty()) {
            let svc = self.service.clone();
            let id = conn.id.clone();
            tokio::spawn(async move {
                // On failure the leader's liveness scan expires them after the grace period.
                if let Err(e) = svc.connection_closed(&id).await {
                    tracing::warn!(conn = %id, "could not expire a closed connection's instances now: {e}");
                }
            });
        }
    }

    /// `InstanceRequest`: `registerInstance` / `deregisterInstance` for this connection.
    pub async fn instance(&self, inc: &Incoming, conn: &Conn) -> pb::Payload {
        const KIND: &str = "InstanceResponse";
        let (req, key) = match parse(inc) {
            Ok(x) => x,
            Err(e) => return wire::fail(KIND, code::INVALID_PARAM, &e.to_string(), Value::Null),
        };
        let kind = req.kind.clone().unwrap_or_default();
        let res = match kind.as_str() {
            "registerInstance" => {
                let spec = req.instance.unwrap_or_default().spec();
                let r = self.service.register(&key, self.owner(conn), vec![spec], true).await.map(|_| ());
                if r.is_ok() {
                    self.mark_published(conn, &key, true);
                }
                r
            }
            "deregisterInstance" => {
                let r = self.service.deregister_owned(&key, self.owner(conn)).await;
                if r.is_ok() {
                    self.mark_published(conn, &key, false);
                }
                r
            }
            other => Err(DomainError::Invalid(format!("unsupported request type {other}"))),
        };
        reply(KIND, &kind, res)
    }

    /// `BatchInstanceRequest`: the connection's instances of the service become exactly these.
    pub async fn batch(&self, inc: &Incoming, conn: &Conn) -> pb::Payload {
        const KIND: &str = "BatchInstanceResponse";
        let (req, key) = match parse(inc) {
            Ok(x) => x,
            Err(e) => return wire::fail(KIND, code::INVALID_PARAM, &e.to_string(), Value::Null),
        };
        let kind = req.kind.clone().unwrap_or_default();
        if kind != "batchRegisterInstance" {
            return reply(KIND, &kind, Err(DomainError::Invalid(format!("unsupported request type {kind}"))));
        }
        if req.instances.iter().any(|i| i.ephemeral == Some(false)) {
            let e = DomainError::Invalid("batch registration accepts ephemeral instances only".into());
            return reply(KIND, &kind, Err(e));
        }
        let specs: Vec<InstanceSpec> = req.instances.into_iter().map(InstanceJson::spec).collect();
        let empty = specs.is_empty();
        let res = self.service.register(&key, self.owner(conn), specs, true).await.map(|_| ());
        if res.is_ok() {
            self.mark_published(conn, &key, !empty);
        }
        reply(KIND, &kind, res)
    }

    /// `PersistentInstanceRequest`: persistent instances, owned by no connection.
    pub async fn persistent(&self, inc: &Incoming) -> pb::Payload {
        const KIND: &str = "InstanceResponse";
        let (req, key) = match parse(inc) {
            Ok(x) => x,
            Err(e) => return wire::fail(KIND, code::INVALID_PARAM, &e.to_string(), Value::Null),
        };
        let kind = req.kind.clone().unwrap_or_default();
        let spec = req.instance.unwrap_or_default().spec();
        let res = match kind.as_str() {
            "registerInstance" => self.service.register(&key, Owner::Persistent, vec![spec], false).await.map(|_| ()),
            "deregisterInstance" => self.service.deregister(&key, &spec.ip, spec.port, &spec.cluster).await,
            other => Err(DomainError::Invalid(format!("unsupported request type {other}"))),
        };
        reply(KIND, &kind, res)
    }

    /// `ServiceQueryRequest` → `QueryServiceResponse` (always with a `serviceInfo`).
    pub async fn query(&self, inc: &Incoming) -> pb::Payload {
        const KIND: &str = "QueryServiceResponse";
        let (req, key) = match parse(inc) {
            Ok(x) => x,
            Err(e) => {
                return wire::fail(KIND, code::INVALID_PARAM, &e.to_string(), json!({"serviceInfo": empty_info(None)}))
            }
        };
        let clusters = req.cluster.unwrap_or_default();
        let sel = Selection { clusters: &clusters, healthy_only: req.healthy_only, grouped_name: false };
        match self.service.query(&key, &sel, ReadConsistency::Local).await {
            Ok(info) => wire::ok(KIND, json!({"serviceInfo": info_json(&info)})),
            Err(e) => wire::fail(KIND, err_code(&e), &e.to_string(), json!({"serviceInfo": empty_info(Some(&key))})),
        }
    }

    /// `SubscribeServiceRequest`: records (or drops) the subscriber first, then answers with the
    /// current data, so no change can fall between the answer and the first push.
    pub fn subscribe(&self, inc: &Incoming, conn: &Conn) -> pb::Payload {
        const KIND: &str = "SubscribeServiceResponse";
        let (req, key) = match parse(inc) {
            Ok(x) => x,
            Err(e) => {
                return wire::fail(KIND, code::INVALID_PARAM, &e.to_string(), json!({"serviceInfo": empty_info(None)}))
            }
        };
        let clusters = req.clusters.unwrap_or_default();
        if req.subscribe {
            self.subscribers.add(conn.remote, key.clone(), clusters.clone());
        } else {
            self.subscribers.remove(conn.remote, &key);
        }
        let info =
            self.service.query_now(&key, &Selection { clusters: &clusters, healthy_only: false, grouped_name: false });
        wire::ok(KIND, json!({"serviceInfo": info_json(&info)}))
    }

    /// `ServiceListRequest` → `ServiceListResponse` with `count` and one page of plain names.
    pub fn list(&self, inc: &Incoming) -> pb::Payload {
        const KIND: &str = "ServiceListResponse";
        let req: NamingReq = match inc.decode() {
            Ok(r) => r,
            Err(e) => return wire::fail(KIND, code::INVALID_PARAM, &e, json!({"count": 0, "serviceNames": []})),
        };
        let ns = crate::domain::config::normalize_namespace(req.namespace.as_deref());
        let group = non_blank(&req.group_name).unwrap_or(crate::domain::config::DEFAULT_GROUP);
        let page_no = req.page_no.unwrap_or(1).max(1) as usize;
        let page_size = req.page_size.unwrap_or(10).clamp(1, 10_000) as usize;
        let (count, names) = self.service.list_services(&ns, group, page_no, page_size);
        wire::ok(KIND, json!({"count": count, "serviceNames": names}))
    }
}

/// How long a registration must have existed before its absence counts as lost.
const AUDIT_AFTER: Duration = Duration::from_secs(10);

/// Notices lost registrations. If this node was cut off from the leader for longer than the
/// grace period, the leader expired the instances of its connections while the clients, still
/// connected here, believe them registered. Such a connection is closed: every SDK reconnects
/// and registers its instances again. Runs for the life of the process.
pub async fn audit_published(naming: Arc<Naming>, conns: Arc<super::connections::Connections>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let node = naming.service.node().id;
        let now = Instant::now();
        let lost: Vec<(SocketAddr, String)> = {
            let g = naming.published.lock().unwrap_or_else(|e| e.into_inner());
            naming.service.node().sm.naming(|idx| {
                g.iter()
                    .filter(|(_, p)| {
                        let owner = Owner::Conn { node, conn: p.conn.clone() };
                        p.services.iter().any(|(key, since)| {
                            now.duration_since(*since) > AUDIT_AFTER
                                && !idx.service(key).is_some_and(|v| v.instances.values().any(|i| i.owner == owner))
                        })
                    })
                    .map(|(a, p)| (*a, p.conn.clone()))
                    .collect()
            })
        };
        for (addr, id) in lost {
            if let Some(c) = conns.get(&addr).filter(|c| c.id == id) {
                tracing::warn!(conn = %id, "a connection's registrations were expired while it lived; closing it so the client registers again");
                conns.unregister(&c);
            }
        }
    }
}

fn parse(inc: &Incoming) -> Result<(NamingReq, ServiceKey), DomainError> {
    let req: NamingReq = inc.decode().map_err(DomainError::Invalid)?;
    let key = service_key(req.namespace.as_deref(), req.group_name.as_deref(), req.service_name.as_deref())?;
    Ok((req, key))
}

fn reply(kind: &str, req_type: &str, res: Result<(), DomainError>) -> pb::Payload {
    match res {
        Ok(()) => wire::ok(kind, json!({"type": req_type})),
        Err(e) => wire::fail(kind, err_code(&e), &e.to_string(), json!({"type": req_type})),
    }
}
