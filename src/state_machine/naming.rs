//! The service registry's replicated records and commands: one canonical model that the Nacos
//! adapters (and later Consul's) read and write.
//!
//! Registrations go through Raft; liveness does not. A gRPC instance is owned by the SDK
//! connection that registered it (node + connection id), an HTTP ephemeral instance lives by
//! beats, a persistent instance until deleted. The leader tracks liveness in memory and proposes
//! only transitions ([`NamingCmd::ExpireOwners`], [`NamingCmd::SetHealth`], [`NamingCmd::Remove`]).
//!
//! Like every command type, variants and fields are append-only (postcard encodes positions).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

/// A service's identity: namespace, group and plain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub group: String,
    pub name: String,
}

impl ServiceKey {
    /// `group@@name`, the grouped name Nacos puts in `Instance.serviceName`.
    pub fn grouped(&self) -> String {
        format!("{}@@{}", self.group, self.name)
    }
}

/// Who keeps an instance alive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Owner {
    /// A Nacos SDK connection held by node `node`: the instance lives while the connection does.
    Conn { node: u64, conn: String },
    /// An HTTP client that keeps the (ephemeral) instance alive with beats.
    Beat,
    /// Lives until deleted (`ephemeral=false`); its health comes from server-side checks.
    Persistent,
    /// A Consul registration on node `node` (lowercased name): lives until deregistered; its
    /// health is derived from its Consul checks (see `state_machine::catalog`).
    Consul { node: String },
}

/// A registered instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceItem {
    pub id: String,
    pub ip: String,
    pub port: u32,
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub cluster: String,
    pub metadata: BTreeMap<String, String>,
    pub owner: Owner,
    /// Leader time of the registration (set by apply from the entry).
    pub register_time_ms: u64,
}

/// Server-side health check of a cluster's persistent instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterItem {
    /// `TCP` (Nacos' default), `HTTP` or `NONE`.
    pub check_type: String,
    /// Path of an HTTP check.
    pub check_path: String,
    /// Port to check when `use_instance_port` is false.
    pub check_port: u32,
    pub use_instance_port: bool,
    pub metadata: BTreeMap<String, String>,
}

impl Default for ClusterItem {
    fn default() -> ClusterItem {
        ClusterItem {
            check_type: "TCP".into(),
            check_path: String::new(),
            check_port: 80,
            use_instance_port: true,
            metadata: BTreeMap::new(),
        }
    }
}

/// What a client may set on a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// 0.0 – 1.0: below this share of healthy instances, queries return all of them.
    pub protect_threshold: f64,
    pub metadata: BTreeMap<String, String>,
    /// Selector as JSON (`{"type":"none"}` when empty).
    pub selector: String,
}

/// A stored service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceItem {
    pub spec: ServiceSpec,
    /// Whether the service holds ephemeral instances (Nacos keeps the two kinds apart).
    pub ephemeral: bool,
    /// Created through the service API (kept until deleted) rather than by a registration
    /// (cleaned up by the leader once it has stayed empty for a while).
    pub explicit: bool,
    /// Clusters with explicit settings; instances may name others, which get the defaults.
    pub clusters: BTreeMap<String, ClusterItem>,
    pub create_time_ms: u64,
    pub modify_time_ms: u64,
}

/// How [`NamingCmd::UpsertService`] treats an existing or missing service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpsertMode {
    /// Fails with `AlreadyExists` when the service exists.
    Create,
    /// Fails with `NotFound` when it does not.
    Update,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NamingCmd {
    /// Registers `instances` for `owner`. With `replace_owned`, whatever `owner` had in the
    /// service is removed first: a gRPC connection holds one publish record per service, and a
    /// batch registration replaces it. Instances with an existing id are overwritten.
    Register {
        service: ServiceKey,
        owner: Owner,
        instances: Vec<InstanceItem>,
        replace_owned: bool,
    },
    /// Removes whatever `owner` registered in `service` (gRPC deregister: ip and port unused).
    DeregisterOwned {
        service: ServiceKey,
        owner: Owner,
    },
    /// Removes instances by id (HTTP deregister, beat expiry); missing ones are skipped.
    Remove {
        items: Vec<(ServiceKey, String)>,
    },
    /// Removes every instance of these owners (connections closed, or their node gone).
    ExpireOwners {
        owners: Vec<Owner>,
    },
    /// Health transitions decided by the leader (beats, health checks) or set by an operator.
    SetHealth {
        items: Vec<(ServiceKey, String, bool)>,
    },
    /// Replaces an existing instance's settings (weight, enabled, healthy, metadata), keeping its
    /// owner and registration time; `NotFound` when it does not exist.
    UpdateInstance {
        service: ServiceKey,
        instance: InstanceItem,
    },
    UpsertService {
        key: ServiceKey,
        spec: ServiceSpec,
        mode: UpsertMode,
    },
    /// Deletes a service; refused while it has instances.
    RemoveService {
        key: ServiceKey,
    },
    UpdateCluster {
        key: ServiceKey,
        name: String,
        cluster: ClusterItem,
    },
    /// Drops services that registrations created and that have stayed empty (leader cleanup,
    /// as Nacos' empty-service cleaner); skipped for any that got an instance meanwhile or was
    /// made explicit.
    RemoveEmptyServices {
        keys: Vec<ServiceKey>,
    },
}

impl NamingCmd {
    pub fn name(&self) -> &'static str {
        match self {
            NamingCmd::Register { .. } => "naming.register",
            NamingCmd::DeregisterOwned { .. } => "naming.deregister_owned",
            NamingCmd::Remove { .. } => "naming.remove",
            NamingCmd::ExpireOwners { .. } => "naming.expire_owners",
            NamingCmd::SetHealth { .. } => "naming.set_health",
            NamingCmd::UpdateInstance { .. } => "naming.update_instance",
            NamingCmd::UpsertService { .. } => "naming.upsert_service",
            NamingCmd::RemoveService { .. } => "naming.remove_service",
            NamingCmd::UpdateCluster { .. } => "naming.update_cluster",
            NamingCmd::RemoveEmptyServices { .. } => "naming.remove_empty_services",
        }
    }
}
