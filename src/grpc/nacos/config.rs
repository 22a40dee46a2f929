//! Config over the SDK port: query, publish, remove, batch listen, and the change pushes.
//!
//! Listeners are per node: each node remembers which of *its* connections listen to which key.
//! Every node's change hub is fed by its own apply, so a change committed through any node is
//! pushed by every node to the listeners it holds.

use std::collections::HashMap;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::connections::Conn;
use super::connections::Connections;
use super::pb;
use super::wire;
use super::wire::code;
use super::wire::non_blank;
use super::wire::Incoming;
use crate::domain::config::make_key;
use crate::domain::config::ConfigService;
use crate::domain::config::ListenKey;
use crate::domain::config::PublishOptions;
use crate::domain::DomainError;
use crate::domain::ReadConsistency;
use crate::state_machine::command::ConfigKey;
use crate::state_machine::command::ConfigMeta;
use crate::state_machine::watch::ChangeHub;

/// Push acknowledgement timeout and retry schedule (Nacos: 3 s, then 2 s × attempt).
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);
const PUSH_ATTEMPTS: u32 = 6;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct QueryReq {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PublishReq {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    content: Option<String>,
    cas_md5: Option<String>,
    addition_map: HashMap<String, Option<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListenReq {
    listen: bool,
    config_listen_contexts: Vec<ListenCtx>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListenCtx {
    data_id: Option<String>,
    group: Option<String>,
    tenant: Option<String>,
    md5: Option<String>,
}

/// Which connections listen to which keys on this node. A listener remembers the tenant
/// exactly as the client sent it: replies and pushes must echo it (`None` = sent blank).
#[derive(Default)]
pub struct Listeners {
    inner: Mutex<ListenerMaps>,
}

#[derive(Default)]
struct ListenerMaps {
    by_key: HashMap<ConfigKey, HashMap<SocketAddr, Option<String>>>,
    by_conn: HashMap<SocketAddr, HashSet<ConfigKey>>,
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, ListenerMaps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, conn: SocketAddr, key: ConfigKey, tenant: Option<String>) {
        let mut m = self.lock();
        m.by_conn.entry(conn).or_default().insert(key.clone());
        m.by_key.entry(key).or_default().insert(conn, tenant);
    }

    fn remove(&self, conn: SocketAddr, key: &ConfigKey) {
        let mut m = self.lock();
        if let Some(keys) = m.by_conn.get_mut(&conn) {
            keys.remove(key);
        }
        if let Some(l) = m.by_key.get_mut(key) {
            l.remove(&conn);
            if l.is_empty() {
                m.by_key.remove(key);
            }
        }
    }

    /// Drops everything a closed connection listened to.
    pub fn drop_conn(&self, conn: SocketAddr) {
        let mut m = self.lock();
        for key in m.by_conn.remove(&conn).unwrap_or_default() {
            if let Some(l) = m.by_key.get_mut(&key) {
                l.remove(&conn);
                if l.is_empty() {
                    m.by_key.remove(&key);
                }
            }
        }
    }

    fn listening(&self, key: &ConfigKey) -> Vec<(SocketAddr, Option<String>)> {
        self.lock().by_key.get(key).map(|l| l.iter().map(|(a, t)| (*a, t.clone())).collect()).unwrap_or_default()
    }

    fn everything(&self) -> Vec<(ConfigKey, SocketAddr, Option<String>)> {
        let m = self.lock();
        m.by_key.iter().flat_map(|(k, l)| l.iter().map(move |(a, t)| (k.clone(), *a, t.clone()))).collect()
    }

    pub fn count(&self) -> usize {
        self.lock().by_key.values().map(HashMap::len).sum()
    }
}

fn fail_for(kind: &str, e: &DomainError) -> pb::Payload {
    let c = match e {
        DomainError::Invalid(_) => code::INVALID_PARAM,
        DomainError::NotFound(_) => code::NOT_FOUND,
        DomainError::Conflict(_) => code::SERVER_ERROR,
        DomainError::Forbidden(_) | DomainError::Throttled { .. } => code::NO_RIGHT,
        DomainError::Cluster(_) | DomainError::Storage(_) => code::SERVER_ERROR,
    };
    wire::fail(kind, c, &e.to_string(), Value::Null)
}

type KeyFields<'a> = (&'a Option<String>, &'a Option<String>, &'a Option<String>);

/// Decodes a request naming one config and validates that config's key; the error is the
/// typed failure reply of `kind`.
fn keyed<T: for<'de> Deserialize<'de>>(
    inc: &Incoming,
    kind: &str,
    fields: impl Fn(&T) -> KeyFields<'_>,
) -> Result<(T, ConfigKey), Box<pb::Payload>> {
    let r: T = inc.decode().map_err(|m| Box::new(wire::fail(kind, code::INVALID_PARAM, &m, Value::Null)))?;
    let (tenant, group, data_id) = fields(&r);
    let key =
        make_key(tenant.as_deref(), group.as_deref(), data_id.as_deref()).map_err(|e| Box::new(fail_for(kind, &e)))?;
    Ok((r, key))
}

/// `consistency: linearizable` in the request headers asks for a read-index read.
fn consistency(inc: &Incoming) -> ReadConsistency {
    match inc.header("consistency") {
        Some("linearizable") => ReadConsistency::Linearizable,
        _ => ReadConsistency::Local,
    }
}

pub async fn query(svc: &ConfigService, inc: &Incoming, conn: &Conn) -> pb::Payload {
    const KIND: &str = "ConfigQueryResponse";
    let (r, key) = match keyed::<QueryReq>(inc, KIND, |r| (&r.tenant, &r.group, &r.data_id)) {
        Ok(x) => x,
        Err(reply) => return *reply,
    };
    let found = match non_blank(&r.tag) {
        // A tagged read gets the tagged version or nothing, as in Nacos.
        Some(tag) => svc.get_tag(&key, tag, consistency(inc)).await.map(|o| o.map(|i| (i, false))),
        None => svc.get_for(&key, &conn.client_ip, consistency(inc)).await,
    };
    match found {
        Ok(Some((item, beta))) => wire::ok(
            KIND,
            json!({
                "content": item.content,
                "md5": item.md5,
                "contentType": item.meta.config_type,
                "encryptedDataKey": item.meta.encrypted_data_key,
                "lastModified": item.modify_time_ms,
                "beta": beta,
                "isBeta": beta,
            }),
        ),
        Ok(None) => wire::fail(
            KIND,
            code::CONFIG_NOT_FOUND,
            "config data not exist",
            json!({"lastModified": 0, "beta": false, "isBeta": false}),
        ),
        Err(e) => fail_for(KIND, &e),
    }
}

pub async fn publish(svc: &ConfigService, inc: &Incoming, conn: &Conn) -> pb::Payload {
    const KIND: &str = "ConfigPublishResponse";
    let (r, key) = match keyed::<PublishReq>(inc, KIND, |r| (&r.tenant, &r.group, &r.data_id)) {
        Ok(x) => x,
        Err(reply) => return *reply,
    };
    let extra = |k: &str| r.addition_map.get(k).and_then(non_blank).unwrap_or("").to_string();
    // Clients send every addition key, most of them blank: blank means absent.
    let client_ip = if inc.client_ip.is_empty() { conn.client_ip.clone() } else { inc.client_ip.clone() };
    let opts = PublishOptions {
        meta: ConfigMeta {
            config_type: extra("type"),
            app_name: extra("appName"),
            desc: extra("desc"),
            tags: extra("config_tags"),
            encrypted_data_key: extra("encryptedDataKey"),
            src_user: inc
                .header(super::guard::PRINCIPAL_HEADER)
                .map(str::to_string)
                .unwrap_or_else(|| extra("src_user")),
            src_ip: client_ip,
        },
        cas_md5: non_blank(&r.cas_md5).map(str::to_string),
        create_only: false,
    };
    let beta_ips = extra("betaIps");
    let (content, tag) = (r.content.unwrap_or_default(), extra("tag"));
    // Nacos' order: betaIps first, then tag, else the normal version.
    let done = if !beta_ips.is_empty() {
        svc.publish_beta(key, content, &beta_ips, opts).await
    } else if !tag.is_empty() {
        svc.publish_tag(key, content, &tag, opts).await
    } else {
        svc.publish(key, content, opts).await
    };
    match done {
        Ok(_) => wire::ok(KIND, Value::Null),
        Err(e) => fail_for(KIND, &e),
    }
}

pub async fn remove(svc: &ConfigService, inc: &Incoming, conn: &Conn) -> pb::Payload {
    const KIND: &str = "ConfigRemoveResponse";
    let (r, key) = match keyed::<QueryReq>(inc, KIND, |r| (&r.tenant, &r.group, &r.data_id)) {
        Ok(x) => x,
        Err(reply) => return *reply,
    };
    let done = match non_blank(&r.tag) {
        Some(tag) => svc.remove_tag(key, tag).await,
        None => {
            let user = inc.header(super::guard::PRINCIPAL_HEADER).unwrap_or_default().to_string();
            svc.remove(key, user, conn.client_ip.clone()).await
        }
    };
    match done {
        Ok(_) => wire::ok(KIND, Value::Null),
        Err(e) => fail_for(KIND, &e),
    }
}

pub fn batch_listen(svc: &ConfigService, listeners: &Listeners, inc: &Incoming, conn: &Conn) -> pb::Payload {
    const KIND: &str = "ConfigChangeBatchListenResponse";
    let r: ListenReq = match inc.decode() {
        Ok(r) => r,
        Err(m) => return wire::fail(KIND, code::INVALID_PARAM, &m, Value::Null),
    };
    let mut keys = Vec::with_capacity(r.config_listen_contexts.len());
    for c in &r.config_listen_contexts {
        match make_key(c.tenant.as_deref(), c.group.as_deref(), c.data_id.as_deref()) {
            Ok(key) => keys.push(ListenKey { key, md5: c.md5.clone().unwrap_or_default() }),
            Err(e) => return fail_for(KIND, &e),
        }
    }
    if !r.listen {
        for k in &keys {
            listeners.remove(conn.remote, &k.key);
        }
        return wire::ok(KIND, json!({"changedConfigs": []}));
    }
    for (k, c) in keys.iter().zip(&r.config_listen_contexts) {
        listeners.add(conn.remote, k.key.clone(), non_blank(&c.tenant).map(str::to_string));
    }
    let changed = match svc.changed_now(&keys, &conn.client_ip) {
        Ok(c) => c,
        Err(e) => return fail_for(KIND, &e),
    };
    let changed: Vec<Value> = changed
        .into_iter()
        .map(|i| {
            let c = &r.config_listen_contexts[i];
            // Echo exactly what the client sent: the Java client looks its cache up by it.
            json!({
                "dataId": c.data_id.clone().unwrap_or_default(),
                "group": c.group.clone().unwrap_or_default(),
                "tenant": c.tenant.clone().unwrap_or_default(),
            })
        })
        .collect();
    wire::ok(KIND, json!({ "changedConfigs": changed }))
}

/// Pushes a `ConfigChangeNotifyRequest` to every listener of every changed key this node holds.
/// Runs off the change hub, so apply never waits for a client.
pub async fn notify_changes(hub: ChangeHub, conns: Arc<Connections>, listeners: Arc<Listeners>) {
    let mut rx = hub.subscribe();
    loop {
        let targets = match rx.recv().await {
            Ok(ev) => {
                let mut t = Vec::new();
                for c in &ev.changes {
                    match c.config_key() {
                        Some(key) => t.extend(listeners.listening(key).into_iter().map(|(a, tn)| (key.clone(), a, tn))),
                        None if c.is_reset() => t.extend(listeners.everything()),
                        None => {}
                    }
                }
                t
            }
            // Fell behind: tell every listener to re-check (a spurious notify costs one query).
            Err(RecvError::Lagged(_)) => listeners.everything(),
            Err(RecvError::Closed) => return,
        };
        for (key, addr, tenant) in targets {
            if let Some(conn) = conns.get(&addr) {
                tokio::spawn(push_with_retry(conns.clone(), conn, key, tenant));
            }
        }
    }
}

async fn push_with_retry(conns: Arc<Connections>, conn: Arc<Conn>, key: ConfigKey, tenant: Option<String>) {
    let mut body = json!({"dataId": key.data_id, "group": key.group, "module": "config"});
    if let Some(t) = tenant {
        body["tenant"] = Value::String(t);
    }
    for attempt in 1..=PUSH_ATTEMPTS {
        match conn.push(&conns.push_ids, "ConfigChangeNotifyRequest", body.clone(), PUSH_TIMEOUT).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(id = %conn.id, attempt, error = ?e, "config change push failed");
                if conns.get(&conn.remote).is_none_or(|c| !Arc::ptr_eq(&c, &conn)) {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2 * u64::from(attempt))).await;
            }
        }
    }
    tracing::info!(id = %conn.id, "config change push retries exhausted; closing the connection");
    conns.unregister(&conn);
}

/// Asks every connection of client `ip` held by this node for its config metrics
/// (`ClientConfigMetricRequest`): for `key`, its cached and snapshot md5s. The answers' `metrics`
/// maps are merged.
pub async fn client_metrics(conns: &Connections, ip: &str, key: Option<&ConfigKey>) -> serde_json::Map<String, Value> {
    let keys = match key {
        Some(k) => {
            // Nacos' group key: dataId+group+tenant.
            let gk = format!("{}+{}+{}", k.data_id, k.group, k.namespace);
            json!([{"type": "cacheData", "key": gk}, {"type": "snapshotData", "key": gk}])
        }
        None => json!([]),
    };
    let asks = conns.all().into_iter().filter(|c| c.client_ip == ip).map(|c| {
        let body = json!({"metricsKeys": keys, "module": "config"});
        async move { c.ask(&conns.push_ids, "ClientConfigMetricRequest", body, PUSH_TIMEOUT).await }
    });
    let mut out = serde_json::Map::new();
    for answer in futures::future::join_all(asks).await.into_iter().flatten() {
        if let Some(Value::Object(m)) = answer.get("metrics") {
            out.extend(m.clone());
        }
    }
    out
}
