//! Consul catalog and agent registrations and their health checks, on the shared registry.
//!
//! A Consul service instance *is* a registry instance (`naming.rs`) owned by
//! `Owner::Consul { node }`; what Consul adds lives beside it in `consul_check`: node records
//! and check records. Tags, meta and the other Consul-only service fields are kept in the
//! instance's metadata under the `consul.*` keys below, so Nacos clients see them too.
//!
//! An instance's `healthy` is derived, in the same apply that changes a check: healthy unless a
//! check of the instance or of its node is `critical` (passing and warning count as healthy).
//!
//! Variants and fields are append-only (postcard encodes positions).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

use super::naming::InstanceItem;
use super::naming::ServiceKey;

/// Instance metadata: the service's tags, a JSON array of strings.
pub const META_TAGS: &str = "consul.tags";
/// Instance metadata: the Consul service ID, present when the instance id differs from it (the
/// ID is taken in that service by another node, so the instance id is `<ID>@<node>`).
pub const META_ID: &str = "consul.id";
/// Instance metadata: `TaggedAddresses` as a JSON object, when any.
pub const META_TAGGED: &str = "consul.taggedAddresses";
/// Instance metadata: `"true"` when `EnableTagOverride` is set.
pub const META_TAG_OVERRIDE: &str = "consul.enableTagOverride";
/// Instance metadata: `Weights.Warning` when not 1 (`Weights.Passing` is the weight).
pub const META_WEIGHT_WARNING: &str = "consul.weights.warning";
/// Instance metadata: the service `Kind`, when not empty.
pub const META_KIND: &str = "consul.kind";
/// Every reserved metadata key; the rest of the metadata is the service's `Meta`.
pub const META_RESERVED: [&str; 6] =
    [META_TAGS, META_ID, META_TAGGED, META_TAG_OVERRIDE, META_WEIGHT_WARNING, META_KIND];

pub const PASSING: &str = "passing";
pub const WARNING: &str = "warning";
pub const CRITICAL: &str = "critical";

pub fn valid_status(s: &str) -> bool {
    matches!(s, PASSING | WARNING | CRITICAL)
}

/// A Consul node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeItem {
    /// As registered (lookups are case-insensitive).
    pub name: String,
    /// Node UUID (may be empty).
    pub id: String,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// How a check runs; durations in milliseconds, 0 = unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub ttl_ms: u64,
    pub http: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    pub tcp: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub deregister_critical_after_ms: u64,
}

/// A Consul health check, of a node (empty `service_id`) or of one of its services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckItem {
    /// The node's name as registered.
    pub node: String,
    pub id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    /// `ttl`, `http`, `tcp`... for agent checks (the leader runs `http`/`tcp` and expires
    /// `ttl`); empty for catalog-registered checks, which are only recorded.
    pub check_type: String,
    pub def: CheckDef,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A service registration: the registry instance as Consul describes it. Apply chooses the
/// instance id, sets the owner and derives `healthy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReg {
    pub key: ServiceKey,
    /// The Consul service ID (unique per node).
    pub service_id: String,
    pub instance: InstanceItem,
}

/// A node with an optional service and checks (`/v1/catalog/register`, agent registrations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub node: NodeItem,
    /// Keep an existing node's fields.
    pub skip_node_update: bool,
    pub service: Option<ServiceReg>,
    pub checks: Vec<CheckItem>,
    /// Agent semantics: a check that exists keeps its status and output.
    pub keep_status: bool,
    /// Checks of the service that are not in `checks` are removed.
    pub replace_checks: bool,
}

/// A check's new status and output (TTL updates, results of the leader's checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub node: String,
    pub check_id: String,
    pub status: String,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogCmd {
    /// Upserts the node (unless skipped and present), the service and the checks. Refused when
    /// a check names a service the node does not have, or the registry refuses the instance.
    Register(Box<Registration>),
    /// Only `node`: the node with all its services and checks; with `service_id`: that service
    /// and its checks; with `check_id`: that check. Missing targets are no-ops.
    Deregister { node: String, service_id: Option<String>, check_id: Option<String> },
    /// Sets check statuses; missing checks are skipped.
    SetStatus { items: Vec<StatusUpdate> },
}

impl CatalogCmd {
    pub fn name(&self) -> &'static str {
        match self {
            CatalogCmd::Register(_) => "catalog.register",
            CatalogCmd::Deregister { .. } => "catalog.deregister",
            CatalogCmd::SetStatus { .. } => "catalog.set_status",
        }
    }
}
