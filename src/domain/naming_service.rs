//! Registry operations for every adapter: register, deregister, update, beat, query, services.
//! Writes become `Command::Naming` entries; reads come from the in-memory index.

use std::sync::Arc;

use super::naming::meta_ms;
use super::naming::InstanceSpec;
use super::naming::DEFAULT_BEAT_INTERVAL_MS;
use super::naming::DEFAULT_CLUSTER;
use super::naming::META_BEAT_INTERVAL;
use super::naming_view::service_info;
use super::naming_view::Selection;
use super::naming_view::ServiceInfo;
use super::DomainError;
use super::ReadConsistency;
use crate::raft::lease::LeaseKey;
use crate::raft::RaftNode;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::namespace_store;
use crate::state_machine::naming::ClusterItem;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::NamingCmd;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceItem;
use crate::state_machine::naming::ServiceKey;
use crate::state_machine::naming::ServiceSpec;
use crate::state_machine::naming::UpsertMode;

/// Nacos' beat reply codes.
pub const BEAT_OK: i64 = 10200;
pub const BEAT_UNKNOWN_RESOURCE: i64 = 20404;

/// What a beat answers.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatReply {
    pub code: i64,
    pub interval_ms: u64,
}

/// A service with the names of the clusters its instances use.
#[derive(Debug, Clone)]
pub struct ServiceDetail {
    pub key: ServiceKey,
    pub item: ServiceItem,
    pub clusters: Vec<(String, ClusterItem)>,
    pub instance_count: usize,
    pub healthy_count: usize,
}

#[derive(Clone)]
pub struct NamingService {
    node: Arc<RaftNode>,
}

impl NamingService {
    pub fn new(node: Arc<RaftNode>) -> NamingService {
        NamingService { node }
    }

    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }

    fn check_namespace(&self, ns: &str) -> Result<(), DomainError> {
        if ns == super::config::DEFAULT_NAMESPACE || namespace_store::get(&self.node.sm.db(), ns)?.is_some() {
            Ok(())
        } else {
            Err(DomainError::Invalid(format!("Namespace '{ns}' does not exist")))
        }
    }

    async fn write(&self, cmd: NamingCmd) -> Result<Applied, DomainError> {
        match self.node.write(Command::Naming(cmd)).await? {
            Applied::Rejected { reason } => Err(DomainError::Invalid(reason)),
            other => Ok(other),
        }
    }

    /// Registers instances for `owner`; see `NamingCmd::Register` for `replace_owned`. An SDK
    /// connection's and a beating client's instances are ephemeral, the rest persistent.
    pub async fn register(
        &self,
        key: &ServiceKey,
        owner: Owner,
        specs: Vec<InstanceSpec>,
        replace_owned: bool,
    ) -> Result<Vec<InstanceItem>, DomainError> {
        self.check_namespace(&key.namespace)?;
        let ephemeral = !matches!(owner, Owner::Persistent);
        let mut items = Vec::with_capacity(specs.len());
        for mut s in specs {
            s.ephemeral = ephemeral;
            items.push(s.into_item(key, owner.clone())?);
        }
        let cmd = NamingCmd::Register { service: key.clone(), owner, instances: items.clone(), replace_owned };
        self.write(cmd).await?;
        Ok(items)
    }

    /// Removes what `owner` registered in the service.
    pub async fn deregister_owned(&self, key: &ServiceKey, owner: Owner) -> Result<(), DomainError> {
        self.write(NamingCmd::DeregisterOwned { service: key.clone(), owner }).await.map(|_| ())
    }

    /// The instance at `ip:port` in `cluster` (default cluster when blank).
    pub fn find_instance(&self, key: &ServiceKey, ip: &str, port: i64, cluster: &str) -> Option<InstanceItem> {
        let cluster = if cluster.trim().is_empty() { DEFAULT_CLUSTER } else { cluster.trim() };
        self.node.sm.naming(|idx| {
            idx.service(key)?
                .instances
                .values()
                .find(|i| i.ip == ip && i64::from(i.port) == port && i.cluster == cluster)
                .cloned()
        })
    }

    /// Removes the instance at `ip:port` in `cluster`; absent is success, as in Nacos.
    pub async fn deregister(&self, key: &ServiceKey, ip: &str, port: i64, cluster: &str) -> Result<(), DomainError> {
        match self.find_instance(key, ip, port, cluster) {
            Some(i) => self.write(NamingCmd::Remove { items: vec![(key.clone(), i.id)] }).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Replaces an existing instance's settings; `NotFound` when there is none at that address.
    pub async fn update_instance(&self, key: &ServiceKey, spec: InstanceSpec) -> Result<(), DomainError> {
        let Some(old) = self.find_instance(key, &spec.ip, spec.port, &spec.cluster) else {
            return Err(DomainError::NotFound(format!(
                "instance {}:{} not found in service {}",
                spec.ip,
                spec.port,
                key.grouped()
            )));
        };
        let mut spec = spec;
        spec.instance_id = old.id.clone();
        spec.ephemeral = old.ephemeral;
        let item = spec.into_item(key, old.owner)?;
        match self.write(NamingCmd::UpdateInstance { service: key.clone(), instance: item }).await? {
            Applied::NotFound => Err(DomainError::NotFound(format!("instance {} not found", old.id))),
            _ => Ok(()),
        }
    }

    /// Operator health override, for persistent instances (ephemeral ones follow their owner).
    pub async fn set_health(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: i64,
        cluster: &str,
        healthy: bool,
    ) -> Result<(), DomainError> {
        let Some(i) = self.find_instance(key, ip, port, cluster) else {
            return Err(DomainError::NotFound(format!("instance {ip}:{port} not found in service {}", key.grouped())));
        };
        if i.ephemeral {
            return Err(DomainError::Invalid(
                "the health of an ephemeral instance follows its client; only persistent instances can be set".into(),
            ));
        }
        self.write(NamingCmd::SetHealth { items: vec![(key.clone(), i.id, healthy)] }).await.map(|_| ())
    }

    /// An HTTP client's beat. An unknown instance is registered from the beat's description when
    /// there is one, else the client is told to register again (20404).
    pub async fn beat(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: i64,
        cluster: &str,
        described: Option<InstanceSpec>,
    ) -> Result<BeatReply, DomainError> {
        let found = self.find_instance(key, ip, port, cluster);
        let item = match (found, described) {
            (Some(i), _) => i,
            (None, Some(spec)) => {
                let mut items = self.register(key, Owner::Beat, vec![spec], false).await?;
                items.pop().ok_or_else(|| DomainError::Invalid("empty registration".into()))?
            }
            (None, None) => {
                return Ok(BeatReply { code: BEAT_UNKNOWN_RESOURCE, interval_ms: DEFAULT_BEAT_INTERVAL_MS })
            }
        };
        let beat = LeaseKey::Beat((key.clone(), item.id.clone()));
        self.node.leases.keep_alive(self.node.id, self.node.raft.is_leader(), beat);
        Ok(BeatReply {
            code: BEAT_OK,
            interval_ms: meta_ms(&item.metadata, META_BEAT_INTERVAL, DEFAULT_BEAT_INTERVAL_MS),
        })
    }

    /// Every instance this SDK connection registered goes away with it.
    pub async fn connection_closed(&self, conn: &str) -> Result<(), DomainError> {
        let owner = Owner::Conn { node: self.node.id, conn: conn.to_string() };
        self.write(NamingCmd::ExpireOwners { owners: vec![owner] }).await.map(|_| ())
    }

    async fn barrier(&self, c: ReadConsistency) -> Result<(), DomainError> {
        if c == ReadConsistency::Linearizable {
            self.node.linearizable_barrier().await?;
        }
        Ok(())
    }

    /// A service's `ServiceInfo` for a selection (a missing service has no hosts).
    pub async fn query(
        &self,
        key: &ServiceKey,
        sel: &Selection<'_>,
        c: ReadConsistency,
    ) -> Result<ServiceInfo, DomainError> {
        self.barrier(c).await?;
        Ok(self.query_now(key, sel))
    }

    pub fn query_now(&self, key: &ServiceKey, sel: &Selection<'_>) -> ServiceInfo {
        self.node.sm.naming(|idx| service_info(key, idx.service(key), sel))
    }

    /// Every instance of a service, unfiltered (admin listings).
    pub fn instances(&self, key: &ServiceKey) -> Vec<InstanceItem> {
        self.node.sm.naming(|idx| idx.service(key).map(|v| v.instances.values().cloned().collect()).unwrap_or_default())
    }

    /// Plain service names of a namespace and group, sorted, one page (1-based) and the total.
    pub fn list_services(
        &self,
        namespace: &str,
        group: &str,
        page_no: usize,
        page_size: usize,
    ) -> (usize, Vec<String>) {
        let mut names: Vec<String> = self.node.sm.naming(|idx| {
            idx.services()
                .filter(|(k, _)| k.namespace == namespace && k.group == group)
                .map(|(k, _)| k.name.clone())
                .collect()
        });
        names.sort();
        let total = names.len();
        let start = page_no.saturating_sub(1).saturating_mul(page_size);
        (total, names.into_iter().skip(start).take(page_size).collect())
    }

    /// Every service of a namespace (every group), sorted by group then name.
    pub fn services_in(&self, namespace: &str) -> Vec<ServiceDetail> {
        let mut out: Vec<ServiceDetail> = self.node.sm.naming(|idx| {
            idx.services().filter(|(k, _)| k.namespace == namespace).map(|(k, v)| detail(k, v)).collect()
        });
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    pub fn get_service(&self, key: &ServiceKey) -> Option<ServiceDetail> {
        self.node.sm.naming(|idx| idx.service(key).map(|v| detail(key, v)))
    }

    pub async fn create_service(&self, key: &ServiceKey, spec: ServiceSpec) -> Result<(), DomainError> {
        self.check_namespace(&key.namespace)?;
        check_spec(&spec)?;
        match self.write(NamingCmd::UpsertService { key: key.clone(), spec, mode: UpsertMode::Create }).await? {
            Applied::AlreadyExists => Err(DomainError::Conflict(format!("service {} is already exist", key.grouped()))),
            _ => Ok(()),
        }
    }

    pub async fn update_service(&self, key: &ServiceKey, spec: ServiceSpec) -> Result<(), DomainError> {
        check_spec(&spec)?;
        match self.write(NamingCmd::UpsertService { key: key.clone(), spec, mode: UpsertMode::Update }).await? {
            Applied::NotFound => Err(not_found(key)),
            _ => Ok(()),
        }
    }

    pub async fn remove_service(&self, key: &ServiceKey) -> Result<(), DomainError> {
        match self.write(NamingCmd::RemoveService { key: key.clone() }).await? {
            Applied::NotFound => Err(not_found(key)),
            _ => Ok(()),
        }
    }

    pub async fn update_cluster(&self, key: &ServiceKey, name: &str, cluster: ClusterItem) -> Result<(), DomainError> {
        if !super::naming::valid_cluster(name) {
            return Err(DomainError::Invalid(format!("invalid cluster name: {name}")));
        }
        let bytes: usize =
            cluster.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + cluster.check_path.len();
        if bytes > super::naming::MAX_METADATA_BYTES {
            return Err(DomainError::Invalid("cluster metadata is too large".into()));
        }
        if !matches!(cluster.check_type.as_str(), "TCP" | "HTTP" | "NONE") {
            return Err(DomainError::Invalid(format!("unknown health checker type: {}", cluster.check_type)));
        }
        let cmd = NamingCmd::UpdateCluster { key: key.clone(), name: name.to_string(), cluster };
        match self.write(cmd).await? {
            Applied::NotFound => Err(not_found(key)),
            _ => Ok(()),
        }
    }
}

fn not_found(key: &ServiceKey) -> DomainError {
    DomainError::NotFound(format!("service {} is not found!", key.grouped()))
}

fn check_spec(spec: &ServiceSpec) -> Result<(), DomainError> {
    if !(0.0..=1.0).contains(&spec.protect_threshold) {
        return Err(DomainError::Invalid("protectThreshold must be between 0 and 1".into()));
    }
    let bytes: usize = spec.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + spec.selector.len();
    if bytes > super::naming::MAX_METADATA_BYTES {
        return Err(DomainError::Invalid("service metadata is too large".into()));
    }
    Ok(())
}

fn detail(key: &ServiceKey, v: &crate::state_machine::naming_index::ServiceView) -> ServiceDetail {
    let mut clusters: std::collections::BTreeMap<String, ClusterItem> = v.item.clusters.clone();
    for i in v.instances.values() {
        clusters.entry(i.cluster.clone()).or_default();
    }
    ServiceDetail {
        key: key.clone(),
        item: v.item.clone(),
        clusters: clusters.into_iter().collect(),
        instance_count: v.instances.len(),
        healthy_count: v.instances.values().filter(|i| i.healthy).count(),
    }
}
