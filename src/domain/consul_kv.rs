//! Consul KV, transactions and user events: the rules Consul applies before anything reaches
//! the log (key rules, value and transaction limits, event names and filters), the commands,
//! and the reads the HTTP adapter serves. Lock semantics themselves live in apply
//! (`state_machine::consul_store`), where every replica evaluates them against the same state.

use crate::raft::RaftNode;
use crate::raft::WriteError;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::consul::ConsulCmd;
use crate::state_machine::consul::ConsulReply;
use crate::state_machine::consul::EventItem;
use crate::state_machine::consul::KvDeleteOp;
use crate::state_machine::consul::KvEntry;
use crate::state_machine::consul::KvSetOp;
use crate::state_machine::consul::TxnError;
use crate::state_machine::consul::TxnOp;
use crate::state_machine::consul::TxnReply;
use crate::state_machine::consul_store;

/// Consul's `kv_max_value_size` default (= Raft's suggested entry size).
pub const MAX_VALUE_BYTES: usize = 512 * 1024;
/// Operations per transaction since Consul 1.14.
pub const MAX_TXN_OPS: usize = 128;
/// Consul's `txn_max_req_len` default.
pub const MAX_TXN_BODY_BYTES: usize = 512 * 1024;
/// Serf's user-event limit, which Consul inherits (name plus payload).
pub const MAX_EVENT_BYTES: usize = 512;

/// Errors of the Consul domain; the adapter maps each to Consul's status code once.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// Bad client input (400); nothing was stored.
    #[error("{0}")]
    BadRequest(String),
    /// A size limit (413); nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    /// What Consul reports as a server error (500) with this text: an invalid session on
    /// acquire, an out-of-range session TTL. Clients match on the wording.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cluster(#[from] WriteError),
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
}

fn traversal(key: &str) -> bool {
    key.split(['/', '\\']).any(|seg| seg == "..")
}

/// Consul's key rules, permissive as its current releases are: any UTF-8 is fine except control
/// characters, a leading `/`, and `..` path segments (also percent-encoded, which a client may
/// send through a double-encoding proxy). An empty key is a prefix covering everything.
pub fn validate_key(key: &str) -> Result<(), ConsulError> {
    if key.chars().any(char::is_control) {
        return Err(ConsulError::BadRequest(format!("Invalid key name {key:?}: control characters are not allowed")));
    }
    if key.starts_with('/') {
        return Err(ConsulError::BadRequest(format!("Invalid key name {key:?}: keys must not begin with '/'")));
    }
    let decoded = key
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%5c", "\\")
        .replace("%5C", "\\");
    if traversal(key) || traversal(&decoded) {
        return Err(ConsulError::BadRequest(format!("Invalid key name {key:?}: path traversal is not allowed")));
    }
    Ok(())
}

/// The 413 of a KV value over the limit.
pub fn value_too_large(len: Option<usize>) -> ConsulError {
    let size = len.map(|n| format!("({n} bytes)")).unwrap_or_default();
    ConsulError::TooLarge(format!(
        "Request body{size} too large, max size: {MAX_VALUE_BYTES} bytes. See \
         https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
    ))
}

fn unexpected(a: Applied) -> ConsulError {
    ConsulError::Refused(format!("unexpected apply result {a:?}"))
}

/// PUT: `true` when written (or already as asked), `false` when a CAS, lock or release
/// precondition did not hold.
pub async fn put(node: &RaftNode, key: String, value: Vec<u8>, flags: u64, op: KvSetOp) -> Result<bool, ConsulError> {
    validate_key(&key)?;
    if key.is_empty() {
        return Err(ConsulError::BadRequest("Missing key name".into()));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(value_too_large(Some(value.len())));
    }
    match node.write(Command::Consul(ConsulCmd::KvSet { key, value, flags, op })).await? {
        Applied::Ok { .. } => Ok(true),
        Applied::CasMismatch => Ok(false),
        Applied::Rejected { reason } => Err(ConsulError::Refused(reason)),
        other => Err(unexpected(other)),
    }
}

/// DELETE: `true` unless a CAS delete found the key at another index.
pub async fn delete(node: &RaftNode, key: String, op: KvDeleteOp) -> Result<bool, ConsulError> {
    validate_key(&key)?;
    if key.is_empty() && op != KvDeleteOp::Recurse {
        return Err(ConsulError::BadRequest("Missing key name".into()));
    }
    match node.write(Command::Consul(ConsulCmd::KvDelete { key, op })).await? {
        Applied::Ok { .. } => Ok(true),
        Applied::CasMismatch => Ok(false),
        other => Err(unexpected(other)),
    }
}

/// One key from this node's state (the caller has chosen the consistency).
pub fn get(node: &RaftNode, key: &str) -> Result<Option<KvEntry>, ConsulError> {
    Ok(consul_store::kv_get(&node.sm.db(), key)?)
}

/// Entries under a prefix and the prefix's index (0 when nothing, live or deleted, is there:
/// the caller then reports the KV table's index, read before this call).
pub fn list(node: &RaftNode, prefix: &str) -> Result<(Vec<(String, KvEntry)>, u64), ConsulError> {
    Ok(consul_store::kv_list(&node.sm.db(), prefix)?)
}

/// `?keys`: the keys under `prefix`, each cut after the first `separator` past the prefix and
/// de-duplicated (Consul's folder view).
pub fn keys_view(entries: &[(String, KvEntry)], prefix: &str, separator: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (k, _) in entries {
        let cut = match (separator.is_empty(), k.get(prefix.len()..)) {
            (false, Some(rest)) => match rest.find(separator) {
                Some(i) => &k[..prefix.len() + i + separator.len()],
                None => k.as_str(),
            },
            _ => k.as_str(),
        };
        if out.last().map(String::as_str) != Some(cut) {
            out.push(cut.to_string());
        }
    }
    out
}

/// A parsed transaction operation, or why it cannot run (an unknown verb, a catalog
/// operation): such operations fail the transaction but are reported beside the others.
pub type TxnItem = Result<TxnOp, String>;

/// Whether the transaction is served as a read: it writes nothing, or it is bound to fail on
/// an operation that cannot be proposed.
pub fn txn_is_read(items: &[TxnItem]) -> bool {
    items.iter().any(Result::is_err) || items.iter().all(|i| i.as_ref().is_ok_and(|op| !op.verb.is_write()))
}

/// Evaluates a transaction on this node's state without writing (after the caller's barrier).
pub fn txn_read(node: &RaftNode, items: &[TxnItem]) -> Result<TxnReply, ConsulError> {
    let positions: Vec<usize> = (0..items.len()).filter(|i| items[*i].is_ok()).collect();
    let ops: Vec<TxnOp> = items.iter().filter_map(|i| i.as_ref().ok().cloned()).collect();
    let mut reply = consul_store::eval_txn(&node.sm.db(), &ops, crate::now_ms())?;
    for e in reply.errors.iter_mut() {
        e.op_index = positions[e.op_index];
    }
    for (i, item) in items.iter().enumerate() {
        if let Err(what) = item {
            reply.errors.push(TxnError { op_index: i, what: what.clone() });
        }
    }
    reply.errors.sort_by_key(|e| e.op_index);
    if !reply.errors.is_empty() {
        reply.results.clear();
    }
    Ok(reply)
}

/// Proposes a transaction: all of it is applied at one index, or none of it.
pub async fn txn_write(node: &RaftNode, ops: Vec<TxnOp>) -> Result<TxnReply, ConsulError> {
    match node.write(Command::Consul(ConsulCmd::Txn { ops })).await? {
        Applied::Consul(r) => match *r {
            ConsulReply::Txn(t) => Ok(t),
        },
        other => Err(unexpected(other)),
    }
}

/// A user event to fire (`PUT /v1/event/fire/<name>`).
#[derive(Debug, Clone, Default)]
pub struct EventRequest {
    pub name: String,
    pub payload: Vec<u8>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
}

/// Validates and fires an event; returns it as stored (with its new id).
pub async fn fire_event(node: &RaftNode, req: EventRequest) -> Result<EventItem, ConsulError> {
    if req.name.is_empty() {
        return Err(ConsulError::BadRequest("Missing name".into()));
    }
    if req.name.starts_with('_') {
        return Err(ConsulError::BadRequest("User event names starting with '_' are reserved".into()));
    }
    if !req.tag_filter.is_empty() && req.service_filter.is_empty() {
        return Err(ConsulError::Refused("Cannot provide tag filter without service filter".into()));
    }
    for (what, f) in [("node", &req.node_filter), ("service", &req.service_filter), ("tag", &req.tag_filter)] {
        if let Err(e) = regex::Regex::new(f) {
            return Err(ConsulError::Refused(format!("Invalid {what} filter: {e}")));
        }
    }
    if req.name.len() + req.payload.len() > MAX_EVENT_BYTES {
        return Err(ConsulError::Refused(format!(
            "user event exceeds configured limit of {MAX_EVENT_BYTES} bytes before encoding"
        )));
    }
    let item = EventItem {
        id: uuid::Uuid::new_v4().to_string(),
        name: req.name,
        payload: req.payload,
        node_filter: req.node_filter,
        service_filter: req.service_filter,
        tag_filter: req.tag_filter,
        ltime: 0,
    };
    match node.write(Command::Consul(ConsulCmd::EventFire(Box::new(item.clone())))).await? {
        Applied::Ok { .. } => Ok(item),
        other => Err(unexpected(other)),
    }
}

/// Stored events, oldest first, optionally of one name.
pub fn list_events(node: &RaftNode, name: Option<&str>) -> Result<Vec<EventItem>, ConsulError> {
    let mut all = consul_store::event_list(&node.sm.db())?;
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        all.retain(|e| e.name == n);
    }
    Ok(all)
}

/// Consul's event-list index: the XOR of the two 64-bit halves of the last event's id, 1 when
/// there is none. Opaque and not monotonic: a watcher waits for it to differ.
pub fn events_index(events: &[EventItem]) -> u64 {
    let Some(last) = events.last() else { return 1 };
    let v = uuid::Uuid::parse_str(&last.id).map(|u| u.as_u128()).unwrap_or(0);
    (((v >> 64) as u64) ^ (v as u64)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        for ok in ["a", "a/b/", "config/app,dev/data", "with space", "50%", "a..b", "..x/y", "*:+"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["../etc", "a/../b", "a/..", "a\\..\\b", "a/%2e%2e/b", "a%2f..%2fb", "/lead", "a\nb", "a\0b"] {
            assert!(matches!(validate_key(bad), Err(ConsulError::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn keys_are_folded_at_the_separator() {
        let e = |k: &str| (k.to_string(), KvEntry::default());
        let entries = vec![e("web/a"), e("web/sub/x"), e("web/sub/y"), e("web/z/")];
        assert_eq!(keys_view(&entries, "web/", "/"), vec!["web/a", "web/sub/", "web/z/"]);
        assert_eq!(keys_view(&entries, "web/", "").len(), 4);
    }

    #[test]
    fn event_index_is_the_xor_of_the_id_halves() {
        let ev = |id: &str| EventItem { id: id.into(), ..Default::default() };
        assert_eq!(events_index(&[]), 1);
        assert_eq!(events_index(&[ev("00000000-0000-0001-0000-000000000003")]), 2);
    }
}
