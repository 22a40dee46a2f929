//! The registry as Consul reads it: nodes, service instances and checks, assembled per read
//! from the in-memory registry and `consul_check`, with what Consul has and Batata does not
//! store synthesized:
//!
//! - every Raft member is a server node `batata-<id>` with a passing `serfHealth` check and a
//!   `consul` service (port 8300);
//! - a Nacos instance of `public`/`DEFAULT_GROUP` is a service on the node `nacos-<ip>`
//!   (address = its ip, one node per ip, the same on every server) with one check
//!   `nacos:<instanceId>`: passing when healthy and enabled, else critical.
//!
//! Orders are Consul's: by lowercased node name, then lowercased service ID.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::Arc;

use rocksdb::DB;
use serde_json::Value;

use super::config::DEFAULT_GROUP;
use super::config::DEFAULT_NAMESPACE;
use super::DomainError;
use crate::raft::RaftNode;
use crate::state_machine::catalog::*;
use crate::state_machine::catalog_store;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;

pub const NACOS_NODE_PREFIX: &str = "nacos-";
pub const NACOS_CHECK_PREFIX: &str = "nacos:";
pub const SERF_CHECK: &str = "serfHealth";

/// A UUID-shaped id from 16 bytes.
fn uuid_of(b: [u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A server's node: the same identity `/v1/agent/self` reports.
pub fn server_node(id: u64, http_addr: &str) -> NodeItem {
    let address = http_addr.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_else(|| "127.0.0.1".into());
    let tagged = BTreeMap::from([("lan".to_string(), address.clone()), ("wan".to_string(), address.clone())]);
    NodeItem {
        name: format!("batata-{id}"),
        id: uuid_of((id as u128).to_be_bytes()),
        address,
        tagged_addresses: tagged,
        meta: BTreeMap::from([("consul-network-segment".to_string(), String::new())]),
        create_index: 1,
        modify_index: 1,
    }
}

pub fn local_node(node: &RaftNode) -> NodeItem {
    let s = node.status();
    let addr = s.members.iter().find(|m| m.id == node.id).map(|m| m.peer.http_addr.clone()).unwrap_or_default();
    server_node(node.id, &addr)
}

fn nacos_node(ip: &str) -> NodeItem {
    let name = format!("{NACOS_NODE_PREFIX}{ip}");
    NodeItem {
        id: uuid_of(md5::compute(name.as_bytes()).0),
        name,
        address: ip.to_string(),
        meta: BTreeMap::from([("registry".to_string(), "nacos".to_string())]),
        create_index: 1,
        modify_index: 1,
        ..Default::default()
    }
}

/// One service instance as Consul shows it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub node: NodeItem,
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u32,
    pub meta: BTreeMap<String, String>,
    pub tagged_addresses: BTreeMap<String, Value>,
    pub weights: (i64, i64),
    pub enable_tag_override: bool,
    pub kind: String,
    /// Registered through Nacos (its health is the synthetic `nacos:` check).
    pub nacos: Option<InstanceItem>,
}

impl ServiceView {
    fn of(node: NodeItem, key: &ServiceKey, i: &InstanceItem) -> ServiceView {
        let m = &i.metadata;
        let nacos = !matches!(i.owner, Owner::Consul { .. });
        ServiceView {
            node,
            id: if nacos { i.id.clone() } else { catalog_store::service_id_of(i).to_string() },
            name: key.name.clone(),
            tags: m.get(META_TAGS).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default(),
            address: i.ip.clone(),
            port: i.port,
            meta: m
                .iter()
                .filter(|(k, _)| !META_RESERVED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tagged_addresses: m.get(META_TAGGED).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default(),
            weights: (
                (i.weight.round() as i64).max(1),
                m.get(META_WEIGHT_WARNING).and_then(|w| w.parse().ok()).unwrap_or(1),
            ),
            enable_tag_override: m.get(META_TAG_OVERRIDE).is_some_and(|v| v == "true"),
            kind: m.get(META_KIND).cloned().unwrap_or_default(),
            nacos: nacos.then(|| i.clone()),
        }
    }

    fn consul(node: NodeItem) -> ServiceView {
        ServiceView {
            node,
            id: "consul".into(),
            name: "consul".into(),
            tags: vec![],
            address: String::new(),
            port: 8300,
            meta: BTreeMap::new(),
            tagged_addresses: BTreeMap::new(),
            weights: (1, 1),
            enable_tag_override: false,
            kind: String::new(),
            nacos: None,
        }
    }

    fn sort_key(&self) -> (String, String) {
        (self.node.name.to_lowercase(), self.id.to_lowercase())
    }
}

/// A check with its service's tags.
#[derive(Debug, Clone)]
pub struct CheckView {
    pub item: CheckItem,
    pub service_tags: Vec<String>,
}

fn visible(key: &ServiceKey) -> bool {
    key.namespace == DEFAULT_NAMESPACE && key.group == DEFAULT_GROUP
}

/// One read of the catalog (one RocksDB handle, one look at the registry).
pub struct CatalogRead<'a> {
    node: &'a RaftNode,
    db: Arc<DB>,
    servers: Vec<NodeItem>,
    stored: BTreeMap<String, NodeItem>,
    checks: RefCell<HashMap<String, Vec<CheckItem>>>,
}

impl<'a> CatalogRead<'a> {
    pub fn new(node: &'a RaftNode) -> Result<CatalogRead<'a>, DomainError> {
        let db = node.sm.db();
        let mut servers: Vec<NodeItem> =
            node.status().members.iter().map(|m| server_node(m.id, &m.peer.http_addr)).collect();
        if servers.is_empty() {
            servers.push(local_node(node));
        }
        let stored = catalog_store::nodes(&db)?.into_iter().map(|n| (n.name.to_lowercase(), n)).collect();
        Ok(CatalogRead { node, db, servers, stored, checks: RefCell::new(HashMap::new()) })
    }

    fn server(&self, lower: &str) -> Option<&NodeItem> {
        self.servers.iter().find(|n| n.name.to_lowercase() == lower)
    }

    /// A node by name (case-insensitive): a server, a stored node, or a Nacos ip's node.
    pub fn node(&self, name: &str) -> Option<NodeItem> {
        let lower = name.to_lowercase();
        if let Some(n) = self.server(&lower).or_else(|| self.stored.get(&lower)) {
            return Some(n.clone());
        }
        let ip = lower.strip_prefix(NACOS_NODE_PREFIX)?;
        self.nacos_instances(|_, i| i.ip.eq_ignore_ascii_case(ip)).first().map(|(_, i)| nacos_node(&i.ip))
    }

    /// Every node, sorted.
    pub fn nodes(&self) -> Vec<NodeItem> {
        let mut out: BTreeMap<String, NodeItem> = self.stored.clone();
        for s in &self.servers {
            out.insert(s.name.to_lowercase(), s.clone());
        }
        for (_, i) in self.nacos_instances(|_, _| true) {
            let n = nacos_node(&i.ip);
            out.entry(n.name.to_lowercase()).or_insert(n);
        }
        out.into_values().collect()
    }

    fn nacos_instances(&self, keep: impl Fn(&ServiceKey, &InstanceItem) -> bool) -> Vec<(ServiceKey, InstanceItem)> {
        self.node.sm.naming(|idx| {
            let mut out = Vec::new();
            for (k, v) in idx.services().filter(|(k, _)| visible(k)) {
                for i in v.instances.values() {
                    if !matches!(i.owner, Owner::Consul { .. }) && keep(k, i) {
                        out.push((k.clone(), i.clone()));
                    }
                }
            }
            out
        })
    }

    fn view(&self, key: &ServiceKey, i: &InstanceItem) -> ServiceView {
        let node = match &i.owner {
            Owner::Consul { node } => self
                .server(node)
                .or_else(|| self.stored.get(node))
                .cloned()
                .unwrap_or_else(|| NodeItem { name: node.clone(), address: i.ip.clone(), ..Default::default() }),
            _ => nacos_node(&i.ip),
        };
        ServiceView::of(node, key, i)
    }

    /// Instances of a service (case-insensitive name), sorted.
    pub fn service(&self, name: &str) -> Vec<ServiceView> {
        let mut out: Vec<ServiceView> = if name.eq_ignore_ascii_case("consul") {
            self.servers.iter().cloned().map(ServiceView::consul).collect()
        } else {
            Vec::new()
        };
        let found: Vec<(ServiceKey, InstanceItem)> = self.node.sm.naming(|idx| {
            idx.services()
                .filter(|(k, _)| visible(k) && k.name.eq_ignore_ascii_case(name))
                .flat_map(|(k, v)| v.instances.values().map(move |i| (k.clone(), i.clone())))
                .collect()
        });
        out.extend(found.iter().map(|(k, i)| self.view(k, i)));
        out.sort_by_key(ServiceView::sort_key);
        out
    }

    /// Every service name with its instances' tags (sorted, unique).
    pub fn service_names(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        out.insert("consul".into(), BTreeSet::new());
        self.node.sm.naming(|idx| {
            for (k, v) in idx.services().filter(|(k, v)| visible(k) && !v.instances.is_empty()) {
                let tags = out.entry(k.name.clone()).or_default();
                for i in v.instances.values() {
                    if let Some(t) = i.metadata.get(META_TAGS) {
                        tags.extend(serde_json::from_str::<Vec<String>>(t).unwrap_or_default());
                    }
                }
            }
        });
        out
    }

    /// The services of a node, sorted; `None` for an unknown node.
    pub fn node_services(&self, name: &str) -> Result<Option<(NodeItem, Vec<ServiceView>)>, DomainError> {
        let Some(node) = self.node(name) else { return Ok(None) };
        let lower = node.name.to_lowercase();
        let mut out = Vec::new();
        if self.server(&lower).is_some() {
            out.push(ServiceView::consul(node.clone()));
        }
        if let Some(ip) = lower.strip_prefix(NACOS_NODE_PREFIX).filter(|_| !self.stored.contains_key(&lower)) {
            for (k, i) in self.nacos_instances(|_, i| i.ip.eq_ignore_ascii_case(ip)) {
                out.push(ServiceView::of(node.clone(), &k, &i));
            }
        }
        for (k, i) in catalog_store::node_instances(&self.db, &lower)? {
            if visible(&k) {
                out.push(ServiceView::of(node.clone(), &k, &i));
            }
        }
        out.sort_by_key(ServiceView::sort_key);
        Ok(Some((node, out)))
    }

    /// The services registered on the agent's node (the synthesized `consul` one excluded).
    pub fn agent_services(&self, local: &str) -> Result<Vec<ServiceView>, DomainError> {
        let Some(node) = self.node(local) else { return Ok(vec![]) };
        let mut out: Vec<ServiceView> = catalog_store::node_instances(&self.db, local)?
            .iter()
            .filter(|(k, _)| visible(k))
            .map(|(k, i)| ServiceView::of(node.clone(), k, i))
            .collect();
        out.sort_by_key(ServiceView::sort_key);
        Ok(out)
    }

    fn stored_checks(&self, node: &str) -> Result<Vec<CheckItem>, DomainError> {
        let lower = node.to_lowercase();
        if let Some(c) = self.checks.borrow().get(&lower) {
            return Ok(c.clone());
        }
        let c = catalog_store::checks(&self.db, Some(&lower))?;
        self.checks.borrow_mut().insert(lower, c.clone());
        Ok(c)
    }

    /// Node-level checks of a node (`serfHealth` for servers).
    pub fn node_level_checks(&self, node: &NodeItem) -> Result<Vec<CheckView>, DomainError> {
        let mut out = Vec::new();
        if self.server(&node.name.to_lowercase()).is_some() {
            out.push(CheckView { item: serf_check(node), service_tags: vec![] });
        }
        for c in self.stored_checks(&node.name)?.into_iter().filter(|c| c.service_id.is_empty()) {
            out.push(CheckView { item: CheckItem { node: node.name.clone(), ..c }, service_tags: vec![] });
        }
        Ok(out)
    }

    /// A service instance's own checks.
    pub fn service_checks(&self, s: &ServiceView) -> Result<Vec<CheckView>, DomainError> {
        if let Some(i) = &s.nacos {
            return Ok(vec![CheckView { item: nacos_check(s, i), service_tags: s.tags.clone() }]);
        }
        let mut out = Vec::new();
        for c in self.stored_checks(&s.node.name)?.into_iter().filter(|c| c.service_id == s.id) {
            let item = CheckItem { node: s.node.name.clone(), service_name: s.name.clone(), ..c };
            out.push(CheckView { item, service_tags: s.tags.clone() });
        }
        Ok(out)
    }

    /// Node checks then the instance's checks (what `/v1/health/service` lists).
    pub fn health_checks(&self, s: &ServiceView) -> Result<Vec<CheckView>, DomainError> {
        let mut out = self.node_level_checks(&s.node)?;
        out.extend(self.service_checks(s)?);
        Ok(out)
    }

    /// Every check of a node (node-level and its services').
    pub fn node_checks(&self, name: &str) -> Result<Vec<CheckView>, DomainError> {
        let Some((node, services)) = self.node_services(name)? else { return Ok(vec![]) };
        let mut out = self.node_level_checks(&node)?;
        for s in &services {
            out.extend(self.service_checks(s)?);
        }
        Ok(out)
    }

    /// Every check of the catalog.
    pub fn all_checks(&self) -> Result<Vec<CheckView>, DomainError> {
        let mut out = Vec::new();
        for n in self.nodes() {
            if n.name.to_lowercase().starts_with(NACOS_NODE_PREFIX) && !self.stored.contains_key(&n.name.to_lowercase())
            {
                continue;
            }
            out.extend(self.node_checks(&n.name)?);
        }
        for (k, i) in self.nacos_instances(|_, _| true) {
            let s = ServiceView::of(nacos_node(&i.ip), &k, &i);
            out.push(CheckView { item: nacos_check(&s, &i), service_tags: s.tags.clone() });
        }
        Ok(out)
    }
}

fn serf_check(node: &NodeItem) -> CheckItem {
    CheckItem {
        node: node.name.clone(),
        id: SERF_CHECK.into(),
        name: "Serf Health Status".into(),
        status: PASSING.into(),
        output: "Agent alive and reachable".into(),
        create_index: 1,
        modify_index: 1,
        ..Default::default()
    }
}

fn nacos_check(s: &ServiceView, i: &InstanceItem) -> CheckItem {
    let (status, output) = match (i.healthy, i.enabled) {
        (true, true) => (PASSING, "Nacos instance is healthy"),
        (false, _) => (CRITICAL, "Nacos instance is unhealthy"),
        (true, false) => (CRITICAL, "Nacos instance is disabled"),
    };
    CheckItem {
        node: s.node.name.clone(),
        id: format!("{NACOS_CHECK_PREFIX}{}", i.id),
        name: "Nacos instance health".into(),
        status: status.into(),
        output: output.into(),
        service_id: s.id.clone(),
        service_name: s.name.clone(),
        check_type: "nacos".into(),
        create_index: 1,
        modify_index: 1,
        ..Default::default()
    }
}
