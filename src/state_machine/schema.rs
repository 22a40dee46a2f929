//! The one place that lists every column family and key encoding of the state-machine
//! database (`<data-dir>/sm/<generation>/`). The Raft log lives in a separate database
//! (`<data-dir>/raft/`, see `raft::log_store`), so a checkpoint of this one holds exactly the
//! replicated state.
//!
//! Every stored value starts with a format-version byte followed by postcard bytes
//! ([`encode`] / [`decode`]), so a later change of a value's layout can be migrated.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Current value format. Bump together with a migration when a stored type changes shape.
pub const FORMAT_VERSION: u8 = 1;

/// `sm_meta`: system keys, see the `META_*` constants.
pub const CF_META: &str = "sm_meta";
/// `config`: Nacos configs. Key: [`config_key`]. Value: `ConfigItem`.
pub const CF_CONFIG: &str = "config";
/// `dedup`: client request id (16 bytes BE) -> `DedupRecord` (log index + the `Applied` reply).
pub const CF_DEDUP: &str = "dedup";
/// `dedup_idx`: log index (8 bytes BE) ++ request id -> empty. Lets apply expire old request ids
/// in log order, deterministically.
pub const CF_DEDUP_IDX: &str = "dedup_idx";
/// `changes`: log index (8 bytes BE) ++ sequence (4 bytes BE) -> `Change`. The durable change
/// cursor: an asynchronous consumer (the MySQL mirror) resumes from the last index it saw.
pub const CF_CHANGES: &str = "changes";

/// `config_history`: [`config_key`] \0 log index (8 bytes BE) -> `HistoryItem`, one row per
/// publish and delete, written by the same apply.
pub const CF_HISTORY: &str = "config_history";
/// `config_history_id`: log index (8 bytes BE) -> the `config_history` key (lookup by id).
pub const CF_HISTORY_ID: &str = "config_history_id";

/// `namespace`: namespace id -> `NamespaceItem` (custom namespaces; `public` is implicit).
pub const CF_NAMESPACE: &str = "namespace";

/// `config_beta`: [`config_key`] -> `BetaItem`, the beta (gray by client IP) version of a
/// config, kept beside the normal one until the beta is stopped (Nacos `config_info_beta`).
pub const CF_CONFIG_BETA: &str = "config_beta";

/// `config_tag`: [`config_tag_key`] -> `ConfigItem`, tagged (gray by tag) versions of a config,
/// read by clients that ask for the tag (Nacos `config_info_tag`).
pub const CF_CONFIG_TAG: &str = "config_tag";

/// `naming_service`: [`service_key`] -> `ServiceItem`, registry services (Nacos and Consul).
pub const CF_NAMING_SERVICE: &str = "naming_service";
/// `naming_instance`: [`instance_key`] -> `InstanceItem`.
pub const CF_NAMING_INSTANCE: &str = "naming_instance";
/// `naming_owner`: [`owner_key`] -> empty. Finds what one owner (an SDK connection, a node's
/// connections, beats, persistent) registered, per service, without scanning every instance.
pub const CF_NAMING_OWNER: &str = "naming_owner";

/// `kv`: Consul KV key (UTF-8 bytes) -> `KvEntry` (see `state_machine::consul`).
pub const CF_KV: &str = "kv";
/// `kv_tombstone`: deleted KV key -> delete index (u64 BE), so a prefix's index still rises
/// when its newest key is deleted (Consul's tombstones).
pub const CF_KV_TOMBSTONE: &str = "kv_tombstone";
/// `session`: Consul session id -> `SessionItem`.
pub const CF_SESSION: &str = "session";
/// `consul_check`: Consul health checks of the registry ([`consul_check_key`] -> `CheckItem`)
/// and Consul nodes ([`consul_node_key`] -> `NodeItem`), see `state_machine::catalog`.
pub const CF_CONSUL_CHECK: &str = "consul_check";
/// `consul_event`: event sequence (u64 BE) -> user event; the newest 256 are kept.
pub const CF_CONSUL_EVENT: &str = "consul_event";

/// `auth`: the security state (see `state_machine::auth`), one family keyed by [`auth_key`]:
/// `u` user -> `UserItem`; `r` user \0 role -> empty; `p` role \0 resource \0 action -> empty;
/// `P` policy id -> `AclPolicy`; `T` accessor id -> `AclToken`; `B` -> bootstrap index (`u64`).
/// Restored with the data, so a restored cluster keeps its users and tokens.
pub const CF_AUTH: &str = "auth";

/// Column families that hold domain data: restored by `Sys::Restore` and covered by the state
/// checksum. System families (meta, dedup, changes) are node bookkeeping.
pub const DATA_CFS: &[&str] = &[
    CF_CONFIG,
    CF_HISTORY,
    CF_HISTORY_ID,
    CF_NAMESPACE,
    CF_CONFIG_BETA,
    CF_CONFIG_TAG,
    CF_NAMING_SERVICE,
    CF_NAMING_INSTANCE,
    CF_NAMING_OWNER,
    CF_KV,
    CF_KV_TOMBSTONE,
    CF_SESSION,
    CF_CONSUL_CHECK,
    CF_CONSUL_EVENT,
    CF_AUTH,
];

/// Every column family, in a fixed order. The index of a family in this list is its id in the
/// snapshot file format, so append only.
pub const ALL_CFS: &[&str] = &[
    CF_META,
    CF_CONFIG,
    CF_DEDUP,
    CF_DEDUP_IDX,
    CF_CHANGES,
    CF_HISTORY,
    CF_HISTORY_ID,
    CF_NAMESPACE,
    CF_CONFIG_BETA,
    CF_CONFIG_TAG,
    CF_NAMING_SERVICE,
    CF_NAMING_INSTANCE,
    CF_NAMING_OWNER,
    CF_KV,
    CF_KV_TOMBSTONE,
    CF_SESSION,
    CF_CONSUL_CHECK,
    CF_CONSUL_EVENT,
    CF_AUTH,
];

/// `sm_meta` key: last applied log id (`Option<LogId>`).
pub const META_LAST_APPLIED: &[u8] = b"last_applied";
/// `sm_meta` key: last membership (`StoredMembership`).
pub const META_MEMBERSHIP: &[u8] = b"membership";
/// `sm_meta` key: cluster id (`String`), set once by `Sys::InitCluster`.
pub const META_CLUSTER_ID: &[u8] = b"cluster_id";

/// `sm_meta` keys: the log index of the last change to each Consul table (`u64`), written in
/// the batch of that change; see `state_machine::tables`.
pub const META_TABLE_INDEX: [&[u8]; 5] = [b"idx_kv", b"idx_sessions", b"idx_catalog", b"idx_events", b"idx_acl"];

/// `sm_meta` key: change records below this log index were trimmed (`u64`).
pub const META_CHANGES_TRIMMED: &[u8] = b"changes_trimmed";

/// How many log indexes a request id is remembered for deduplication.
pub const DEDUP_WINDOW: u64 = 200_000;
/// How many log indexes of change records are kept for asynchronous consumers.
pub const CHANGES_WINDOW: u64 = 200_000;
/// Expiry of dedup and change records runs when `index % TRIM_EVERY == 0`, so every replica
/// trims at the same log positions.
pub const TRIM_EVERY: u64 = 1024;

/// Separator inside composite string keys. Nacos forbids it in names, and validation rejects it.
pub const SEP: u8 = 0;

/// `config` key: namespace \0 group \0 dataId.
pub fn config_key(namespace: &str, group: &str, data_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + group.len() + data_id.len() + 2);
    k.extend_from_slice(namespace.as_bytes());
    k.push(SEP);
    k.extend_from_slice(group.as_bytes());
    k.push(SEP);
    k.extend_from_slice(data_id.as_bytes());
    k
}

/// `config_history` key of the row written at `index`.
/// [`config_key`] \0 tag.
pub fn config_tag_key(namespace: &str, group: &str, data_id: &str, tag: &str) -> Vec<u8> {
    let mut k = config_key(namespace, group, data_id);
    k.push(SEP);
    k.extend_from_slice(tag.as_bytes());
    k
}

pub fn history_key(namespace: &str, group: &str, data_id: &str, index: u64) -> Vec<u8> {
    let mut k = history_prefix(namespace, group, data_id);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Prefix of every history row of one config.
pub fn history_prefix(namespace: &str, group: &str, data_id: &str) -> Vec<u8> {
    let mut k = config_key(namespace, group, data_id);
    k.push(SEP);
    k
}

/// Prefix of every config of one namespace.
pub fn config_ns_prefix(namespace: &str) -> Vec<u8> {
    let mut k = namespace.as_bytes().to_vec();
    k.push(SEP);
    k
}

/// `naming_service` key: namespace \0 group \0 service name (the shape of [`config_key`]).
pub fn service_key(namespace: &str, group: &str, name: &str) -> Vec<u8> {
    config_key(namespace, group, name)
}

/// `naming_instance` key: [`service_key`] \0 instance id. Validation keeps \0 out of ids.
pub fn instance_key(service: &[u8], id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(service.len() + id.len() + 1);
    k.extend_from_slice(service);
    k.push(SEP);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The owner part of a `naming_owner` key, ending in \0: `c` + node id (8 bytes BE) +
/// connection id for an SDK connection, `b` for beats, `p` for persistent instances, `k` +
/// node name for a Consul node's registrations.
pub fn owner_prefix(owner: &super::naming::Owner) -> Vec<u8> {
    use super::naming::Owner;
    let mut k = Vec::with_capacity(32);
    match owner {
        Owner::Conn { node, conn } => {
            k.push(b'c');
            k.extend_from_slice(&node.to_be_bytes());
            k.extend_from_slice(conn.as_bytes());
        }
        Owner::Beat => k.push(b'b'),
        Owner::Persistent => k.push(b'p'),
        Owner::Consul { node } => {
            k.push(b'k');
            k.extend_from_slice(node.as_bytes());
        }
    }
    k.push(SEP);
    k
}

/// `naming_owner` key: [`owner_prefix`] ++ [`instance_key`].
pub fn owner_key(owner: &super::naming::Owner, service: &[u8], id: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(&instance_key(service, id));
    k
}

/// `consul_check` key of a Consul node record: `n` + lowercased node name.
pub fn consul_node_key(node: &str) -> Vec<u8> {
    let mut k = vec![b'n'];
    k.extend_from_slice(node.to_lowercase().as_bytes());
    k
}

/// Prefix of every `consul_check` check record of a node (or of all nodes for `None`):
/// `c` + lowercased node name \0.
pub fn consul_check_prefix(node: Option<&str>) -> Vec<u8> {
    let mut k = vec![b'c'];
    if let Some(n) = node {
        k.extend_from_slice(n.to_lowercase().as_bytes());
        k.push(SEP);
    }
    k
}

/// `consul_check` key of a check: [`consul_check_prefix`] ++ check id (case-sensitive).
pub fn consul_check_key(node: &str, check: &str) -> Vec<u8> {
    let mut k = consul_check_prefix(Some(node));
    k.extend_from_slice(check.as_bytes());
    k
}

pub fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn change_key(index: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&index.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn dedup_idx_key(index: u64, request_id: u128) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&index.to_be_bytes());
    k[8..].copy_from_slice(&request_id.to_be_bytes());
    k
}

/// Version byte + postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // postcard only fails on writer errors or unsupported serde features, neither of which a
    // Vec writer and our plain data types can produce.
    postcard::to_io(value, &mut out).expect("postcard encoding into a Vec cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::io::Result<T> {
    postcard::from_bytes(payload(bytes)?).map_err(corrupt)
}

/// Decodes the leading fields of a stored value into `T` (a prefix of the stored type's fields,
/// in order) and ignores the rest, borrowing strings from `bytes`: postcard is not
/// self-describing, so reading only what is needed means reading a prefix. Used where a scan
/// over many records wants one small field of each (the md5 index at start-up).
pub fn decode_head<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> std::io::Result<T> {
    postcard::take_from_bytes(payload(bytes)?).map(|(head, _)| head).map_err(corrupt)
}

/// The postcard bytes of a stored value, after checking its format-version byte.
fn payload(bytes: &[u8]) -> std::io::Result<&[u8]> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => Ok(rest),
        Some((v, _)) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stored value has unknown format version {v}"),
        )),
        None => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "empty stored value")),
    }
}

fn corrupt(e: postcard::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("corrupt stored value: {e}"))
}

/// `kv` key: the Consul key's UTF-8 bytes, so a byte-prefix scan is Consul's prefix match.
pub fn kv_key(key: &str) -> &[u8] {
    key.as_bytes()
}

/// `kv_tombstone` value: the delete index (8 bytes BE), followed by the lock-delay deadline in
/// leader ms (8 bytes BE) when a session invalidation deleted the key while a lock-delay
/// applies: Consul keeps a key's lock-delay even when the key itself is gone.
pub fn kv_tombstone_value(delete_index: u64, lock_delay_until_ms: u64) -> Vec<u8> {
    let mut v = delete_index.to_be_bytes().to_vec();
    if lock_delay_until_ms > 0 {
        v.extend_from_slice(&lock_delay_until_ms.to_be_bytes());
    }
    v
}

/// (delete index, lock-delay deadline ms or 0) of a `kv_tombstone` value.
pub fn parse_kv_tombstone(v: &[u8]) -> Option<(u64, u64)> {
    let index = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let delay = match v.get(8..16) {
        Some(d) => u64::from_be_bytes(d.try_into().ok()?),
        None => 0,
    };
    Some((index, delay))
}

/// `session` key of a session record: the session id (ids never contain \0).
pub fn session_key(id: &str) -> &[u8] {
    id.as_bytes()
}

/// `session` key recording that session `id` holds the lock on KV `key`: id \0 key (value
/// empty). Lets an invalidation find the session's keys without scanning the KV table; such keys
/// are told apart from session records by the \0.
pub fn session_lock_key(id: &str, key: &str) -> Vec<u8> {
    let mut k = session_lock_prefix(id);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Prefix of every lock record of session `id`.
pub fn session_lock_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1);
    k.extend_from_slice(id.as_bytes());
    k.push(SEP);
    k
}

/// `consul_event` key: the log index the event was fired at (8 bytes BE), so keys sort in
/// firing order.
pub fn event_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_index_order() {
        assert!(index_key(2) > index_key(1));
        assert!(change_key(256, 0) > change_key(255, 9));
        assert!(dedup_idx_key(3, 0) > dedup_idx_key(2, u128::MAX));
    }

    #[test]
    fn value_roundtrip_and_version_check() {
        let v = encode(&("a".to_string(), 7u64));
        assert_eq!(v[0], FORMAT_VERSION);
        let back: (String, u64) = decode(&v).unwrap();
        assert_eq!(back, ("a".to_string(), 7));
        let mut bad = v.clone();
        bad[0] = 99;
        assert!(decode::<(String, u64)>(&bad).is_err());
        assert!(decode::<(String, u64)>(&[]).is_err());
    }

    #[test]
    fn config_keys_do_not_collide_across_fields() {
        assert_ne!(config_key("a", "bc", "d"), config_key("ab", "c", "d"));
        assert!(config_key("ns", "g", "d").starts_with(&config_ns_prefix("ns")));
    }
}

/// A record of the `auth` family. Names never contain \0 (the domain validates them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKey {
    User(String),
    /// (username, role).
    Binding(String, String),
    /// (role, resource, action).
    Permission(String, String, String),
    Policy(String),
    Token(String),
    AclBootstrap,
}

fn tagged(tag: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

pub fn auth_key(key: &AuthKey) -> Vec<u8> {
    match key {
        AuthKey::User(u) => tagged(b'u', &[u]),
        AuthKey::Binding(u, r) => tagged(b'r', &[u, r]),
        AuthKey::Permission(role, res, act) => tagged(b'p', &[role, res, act]),
        AuthKey::Policy(id) => tagged(b'P', &[id]),
        AuthKey::Token(id) => tagged(b'T', &[id]),
        AuthKey::AclBootstrap => vec![b'B'],
    }
}

/// The inverse of [`auth_key`]; `None` for a key of no known shape.
pub fn parse_auth_key(k: &[u8]) -> Option<AuthKey> {
    let (&tag, rest) = k.split_first()?;
    let parts: Vec<String> = rest.split(|b| *b == SEP).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let mut it = parts.into_iter();
    let mut next = || it.next();
    Some(match tag {
        b'u' => AuthKey::User(next()?),
        b'r' => AuthKey::Binding(next()?, next()?),
        b'p' => AuthKey::Permission(next()?, next()?, next()?),
        b'P' => AuthKey::Policy(next()?),
        b'T' => AuthKey::Token(next()?),
        b'B' => AuthKey::AclBootstrap,
        _ => return None,
    })
}

/// Prefix of every role binding of `username`.
pub fn binding_prefix(username: &str) -> Vec<u8> {
    let mut k = tagged(b'r', &[username]);
    k.push(SEP);
    k
}

/// Prefix of every permission of `role`.
pub fn permission_prefix(role: &str) -> Vec<u8> {
    let mut k = tagged(b'p', &[role]);
    k.push(SEP);
    k
}
