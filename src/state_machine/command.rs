//! What goes through Raft: one [`LogEntry`] per proposal, one [`Command`] enum for every
//! domain, and the [`Applied`] reply that apply hands back to the proposer.
//!
//! Variants are append-only and never renamed or reordered: postcard encodes the variant
//! index, and old log entries must decode forever. The golden-bytes test below guards that.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use super::naming::InstanceItem;
use super::naming::ServiceItem;
use super::naming::ServiceKey;

/// One Raft log entry's payload. Time and ids are stamped by the leader before proposing, so
/// apply never reads a clock and every replica computes the same state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Milliseconds since the Unix epoch, stamped by the node that proposed.
    pub time_ms: u64,
    /// Client request id. A retried write carries the same id and is applied once.
    pub request_id: Option<u128>,
    pub cmd: Command,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.cmd.name(), self.time_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Sys(SysCmd),
    Config(ConfigCmd),
    Namespace(NamespaceCmd),
    Naming(super::naming::NamingCmd),
    /// Consul KV, sessions, transactions and events.
    Consul(super::consul::ConsulCmd),
    /// Consul catalog and agent registrations and their checks, on the shared registry.
    Catalog(super::catalog::CatalogCmd),
    /// Users, roles and permissions (Nacos) and ACL policies and tokens (Consul).
    Auth(super::auth::AuthCmd),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Sys(SysCmd::InitCluster { .. }) => "sys.init_cluster",
            Command::Sys(SysCmd::Restore { .. }) => "sys.restore",
            Command::Sys(SysCmd::PurgeHistory { .. }) => "sys.purge_history",
            Command::Config(ConfigCmd::Publish(_)) => "config.publish",
            Command::Config(ConfigCmd::Remove { .. }) => "config.remove",
            Command::Config(ConfigCmd::PublishBeta { .. }) => "config.publish_beta",
            Command::Config(ConfigCmd::RemoveBeta { .. }) => "config.remove_beta",
            Command::Config(ConfigCmd::PublishTag { .. }) => "config.publish_tag",
            Command::Config(ConfigCmd::RemoveTag { .. }) => "config.remove_tag",
            Command::Namespace(NamespaceCmd::Create { .. }) => "namespace.create",
            Command::Namespace(NamespaceCmd::Update { .. }) => "namespace.update",
            Command::Namespace(NamespaceCmd::Delete { .. }) => "namespace.delete",
            Command::Naming(n) => n.name(),
            Command::Consul(c) => c.name(),
            Command::Catalog(c) => c.name(),
            Command::Auth(c) => c.name(),
        }
    }
}

/// One `(column family id, key, value)` record of a snapshot or a restore.
pub type Record = (u8, Vec<u8>, Vec<u8>);

/// Cluster housekeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SysCmd {
    /// Record the cluster id once, right after the cluster is first initialized.
    InitCluster { cluster_id: String },
    /// Replace every data column family with the given records (disaster recovery restore).
    Restore { source_cluster_id: String, records: Vec<Record> },
    /// Drop config history rows older than `before_ms` (leader-proposed retention).
    PurgeHistory { before_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigKey {
    pub namespace: String,
    pub group: String,
    pub data_id: String,
}

/// What a config carries besides its key and content: its type, descriptive fields and who
/// wrote it. Shared by the command, the stored item and the domain's publish options; postcard
/// inlines a nested struct, so the encoding is that of the flat fields in this order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigMeta {
    pub config_type: String,
    pub app_name: String,
    pub desc: String,
    pub tags: String,
    pub encrypted_data_key: String,
    pub src_user: String,
    pub src_ip: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPublish {
    pub key: ConfigKey,
    pub content: String,
    /// Computed by the domain layer before proposing.
    pub md5: String,
    pub meta: ConfigMeta,
    /// Compare-and-swap: publish only if the stored md5 equals this.
    pub cas_md5: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConfigCmd {
    /// Boxed: it is far larger than every other command.
    Publish(Box<ConfigPublish>),
    Remove {
        key: ConfigKey,
        src_user: String,
        src_ip: String,
    },
    /// Publish a beta version served only to clients whose IP is in `beta_ips` (comma-separated).
    PublishBeta {
        publish: Box<ConfigPublish>,
        beta_ips: String,
    },
    /// Stop the beta of a config: every client gets the normal version again.
    RemoveBeta {
        key: ConfigKey,
    },
    /// Publish the version of a config that clients asking for `tag` read.
    PublishTag {
        publish: Box<ConfigPublish>,
        tag: String,
    },
    RemoveTag {
        key: ConfigKey,
        tag: String,
    },
}

/// A stored beta version of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BetaItem {
    pub item: ConfigItem,
    pub beta_ips: String,
}

impl BetaItem {
    /// Whether `ip` is one of the beta IPs.
    pub fn serves(&self, ip: &str) -> bool {
        beta_ip_matches(&self.beta_ips, ip)
    }
}

/// Whether `ip` is in a comma-separated list of beta IPs.
pub fn beta_ip_matches(list: &str, ip: &str) -> bool {
    !ip.is_empty() && list.split(',').any(|b| b.trim() == ip)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NamespaceCmd {
    Create { id: String, name: String, desc: String },
    Update { id: String, name: String, desc: String },
    Delete { id: String },
}

/// A custom namespace (Nacos `tenant_info`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceItem {
    pub name: String,
    pub desc: String,
    pub create_time_ms: u64,
    pub modify_time_ms: u64,
}

/// A stored Nacos config. `content` and `md5` stay the first two fields: the start-up md5 scan
/// decodes only that prefix (`config_store::for_each_md5`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigItem {
    pub content: String,
    pub md5: String,
    pub meta: ConfigMeta,
    pub create_time_ms: u64,
    pub modify_time_ms: u64,
    /// Log index of the creating and of the last modifying entry.
    pub create_index: u64,
    pub modify_index: u64,
}

/// A config history row (Nacos `his_config_info`): the config as it was before an update or a
/// delete, or as created by an insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// `I`nsert, `U`pdate or `D`elete.
    pub op: char,
    /// Log index of the change: the history id.
    pub index: u64,
    /// Leader time of the change.
    pub time_ms: u64,
    pub item: ConfigItem,
}

/// What apply returns for a command. Failures that are part of the protocol (CAS mismatch,
/// not found) are values, not errors: an `Err` from apply means storage failure and is fatal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    /// Blank and membership entries, and commands with nothing to report.
    None,
    /// The command changed (or confirmed) state at this log index.
    Ok { index: u64 },
    /// A compare-and-swap precondition did not hold; nothing was written.
    CasMismatch,
    /// The target did not exist; nothing was written.
    NotFound,
    /// The target exists already; nothing was written.
    AlreadyExists,
    /// A rule of the domain refused the command (checked against replicated state, so every
    /// replica agrees); nothing was written.
    Rejected { reason: String },
    /// A Consul command's reply that the variants above cannot carry (a transaction's results).
    Consul(Box<super::consul::ConsulReply>),
}

/// A change made by one applied entry, published to watchers and kept in the durable change
/// log for asynchronous consumers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    ConfigUpdated {
        key: ConfigKey,
        md5: String,
    },
    ConfigRemoved {
        key: ConfigKey,
    },
    /// Data was replaced wholesale (restore or snapshot install): consumers must resync.
    Reset,
    /// A beta version was published (or replaced) for these IPs.
    BetaUpdated {
        key: ConfigKey,
        md5: String,
        beta_ips: String,
    },
    BetaRemoved {
        key: ConfigKey,
    },
    TagUpdated {
        key: ConfigKey,
        tag: String,
        md5: String,
    },
    TagRemoved {
        key: ConfigKey,
        tag: String,
    },
    /// Instances of a service were registered or changed (`put`) or removed.
    NamingInstances {
        service: ServiceKey,
        put: Vec<InstanceItem>,
        removed: Vec<String>,
    },
    /// A service record was created or changed, or removed (`None`).
    NamingService {
        key: ServiceKey,
        item: Option<ServiceItem>,
    },
    /// A Consul table changed (its index is the entry's): blocking queries on it re-check.
    ConsulTable {
        table: super::tables::Table,
    },
}

impl Change {
    /// Whether the data was replaced wholesale: every watcher must re-read.
    pub fn is_reset(&self) -> bool {
        matches!(self, Change::Reset)
    }

    /// The service a registry change concerns.
    pub fn service_key(&self) -> Option<&ServiceKey> {
        match self {
            Change::NamingInstances { service, .. } => Some(service),
            Change::NamingService { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The config a change concerns (`None` for a reset and for registry changes).
    pub fn config_key(&self) -> Option<&ConfigKey> {
        match self {
            Change::ConfigUpdated { key, .. }
            | Change::ConfigRemoved { key }
            | Change::BetaUpdated { key, .. }
            | Change::BetaRemoved { key }
            | Change::TagUpdated { key, .. }
            | Change::TagRemoved { key, .. } => Some(key),
            Change::Reset
            | Change::NamingInstances { .. }
            | Change::NamingService { .. }
            | Change::ConsulTable { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden bytes: if this fails, a change broke the decoding of existing logs.
    #[test]
    fn golden_encoding_of_log_entries() {
        let e = LogEntry {
            time_ms: 1,
            request_id: Some(2),
            cmd: Command::Config(ConfigCmd::Remove {
                key: ConfigKey { namespace: "n".into(), group: "g".into(), data_id: "d".into() },
                src_user: String::new(),
                src_ip: "i".into(),
            }),
        };
        let bytes = postcard::to_allocvec(&e).unwrap();
        assert_eq!(bytes, vec![1, 1, 2, 1, 1, 1, b'n', 1, b'g', 1, b'd', 0, 1, b'i']);
        let init = LogEntry {
            time_ms: 0,
            request_id: None,
            cmd: Command::Sys(SysCmd::InitCluster { cluster_id: "c".into() }),
        };
        assert_eq!(postcard::to_allocvec(&init).unwrap(), vec![0, 0, 0, 0, 1, b'c']);
        assert_eq!(postcard::to_allocvec(&Applied::Ok { index: 5 }).unwrap(), vec![1, 5]);
        let publish = LogEntry {
            time_ms: 1,
            request_id: None,
            cmd: Command::Config(ConfigCmd::Publish(Box::new(ConfigPublish {
                key: ConfigKey { namespace: "n".into(), group: "g".into(), data_id: "d".into() },
                content: "c".into(),
                md5: "m".into(),
                meta: ConfigMeta { config_type: "t".into(), ..Default::default() },
                cas_md5: None,
            }))),
        };
        // The nested ConfigMeta is inlined: the bytes are those of the flat fields.
        assert_eq!(
            postcard::to_allocvec(&publish).unwrap(),
            vec![1, 0, 1, 0, 1, b'n', 1, b'g', 1, b'd', 1, b'c', 1, b'm', 1, b't', 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
