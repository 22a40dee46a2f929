//! Consul sessions: the create rules (TTL bounds, LockDelay, Behavior, default checks, node and
//! checks registered and not critical), renew as a keep-alive in the leader's lease table, and
//! the leader loop that invalidates sessions whose TTL lapsed or whose node or checks no longer
//! back them.
//!
//! Expiry follows Consul: a session is invalidated once 2 × TTL passed without a renewal (the
//! doubled TTL tolerates clock and scheduling slack, and clients renew every TTL/2). Only the
//! leader decides, from its lease table, and proposes one batched `SessionExpire`; apply then
//! releases or deletes the held keys with the leader-stamped lock-delay.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use super::consul_kv::ConsulError;
use super::consul_view::CatalogRead;
use crate::raft::lease::LeaseKey;
use crate::raft::RaftNode;
use crate::state_machine::catalog::CRITICAL;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::consul::Behavior;
use crate::state_machine::consul::ConsulCmd;
use crate::state_machine::consul::SessionItem;
use crate::state_machine::consul_store;

/// Consul's `session_ttl_min` default.
pub const MIN_TTL: Duration = Duration::from_secs(10);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
/// Consul's MaxLockDelay: longer requests are capped.
pub const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
/// The node check every session gets unless the request names its checks.
pub const SERF_HEALTH: &str = "serfHealth";

const TICK: Duration = Duration::from_secs(1);

/// A create request as decoded from the body; `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    pub name: Option<String>,
    pub node: Option<String>,
    /// A Go duration string or a JSON number (ns; below 1000 it means seconds).
    pub lock_delay: Option<serde_json::Value>,
    pub behavior: Option<String>,
    pub ttl: Option<String>,
    /// Legacy `Checks`: node checks when `NodeChecks` is absent.
    pub checks: Option<Vec<String>>,
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Option<Vec<String>>,
}

/// Consul's LockDelay decoding: numbers below 1000 are seconds (clients send `15`), other
/// numbers nanoseconds, strings Go durations; capped at 60 s.
pub fn parse_lock_delay(v: &serde_json::Value) -> Result<Duration, ConsulError> {
    let d = match v {
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(x) if x < 1000 => Duration::from_secs(x),
            Some(x) => Duration::from_nanos(x),
            None => return Err(ConsulError::BadRequest(format!("Request decode failed: invalid LockDelay {n}"))),
        },
        serde_json::Value::String(s) => super::go_duration::parse_go_duration(s)
            .ok_or_else(|| ConsulError::BadRequest(format!("Request decode failed: invalid LockDelay {s:?}")))?,
        other => return Err(ConsulError::BadRequest(format!("Request decode failed: invalid LockDelay {other}"))),
    };
    Ok(d.min(MAX_LOCK_DELAY))
}

/// The TTL of a stored session (`None`: no TTL, or zero).
pub fn ttl_of(s: &SessionItem) -> Option<Duration> {
    if s.ttl.is_empty() {
        return None;
    }
    super::go_duration::parse_go_duration(&s.ttl).filter(|d| !d.is_zero())
}

/// Validates a create request and fills Consul's defaults. The id is drawn by [`create`].
pub fn build(req: SessionRequest, default_node: &str) -> Result<SessionItem, ConsulError> {
    let behavior = match req.behavior.as_deref().unwrap_or("") {
        "" | "release" => Behavior::Release,
        "delete" => Behavior::Delete,
        other => return Err(ConsulError::Refused(format!("Invalid Behavior setting '{other}'"))),
    };
    let ttl = req.ttl.unwrap_or_default();
    if !ttl.is_empty() {
        let d = super::go_duration::parse_go_duration(&ttl).ok_or_else(|| {
            ConsulError::Refused(format!("Session TTL '{ttl}' invalid: time: invalid duration {ttl:?}"))
        })?;
        if !d.is_zero() && (d < MIN_TTL || d > MAX_TTL) {
            return Err(ConsulError::Refused(format!(
                "Invalid Session TTL '{}', must be between [10s=24h0m0s]",
                d.as_nanos()
            )));
        }
    }
    let lock_delay = match &req.lock_delay {
        Some(v) => parse_lock_delay(v)?,
        None => DEFAULT_LOCK_DELAY,
    };
    let node_checks = req.node_checks.or(req.checks).unwrap_or_else(|| vec![SERF_HEALTH.to_string()]);
    Ok(SessionItem {
        id: String::new(),
        name: req.name.unwrap_or_default(),
        node: req.node.filter(|n| !n.is_empty()).unwrap_or_else(|| default_node.to_string()),
        lock_delay_ns: lock_delay.as_nanos() as u64,
        behavior,
        ttl,
        node_checks,
        service_checks: req.service_checks.unwrap_or_default(),
        create_index: 0,
        modify_index: 0,
    })
}

/// Why the catalog no longer backs a session, in Consul's words: its node is gone, or one of
/// its checks is missing or critical (warning does not count). `None` when it is backed.
pub fn unbacked(read: &CatalogRead<'_>, s: &SessionItem) -> Result<Option<String>, ConsulError> {
    if read.node(&s.node).is_none() {
        return Ok(Some("Missing node registration".into()));
    }
    let checks = read.node_checks(&s.node).map_err(|e| ConsulError::Refused(e.to_string()))?;
    for id in s.node_checks.iter().chain(&s.service_checks) {
        match checks.iter().find(|c| &c.item.id == id) {
            None => return Ok(Some(format!("Missing check '{id}' registration"))),
            Some(c) if c.item.status == CRITICAL => {
                return Ok(Some(format!("Check '{id}' is in {} state", c.item.status)));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Creates the session under a fresh id and starts its lease; returns the id. Its node and
/// checks must be registered and not critical (Consul's 500 otherwise).
pub async fn create(node: &RaftNode, mut item: SessionItem) -> Result<String, ConsulError> {
    let read = CatalogRead::new(node).map_err(|e| ConsulError::Refused(e.to_string()))?;
    if let Some(why) = unbacked(&read, &item)? {
        return Err(ConsulError::Refused(why));
    }
    drop(read);
    for _ in 0..3 {
        item.id = uuid::Uuid::new_v4().to_string();
        match node.write(Command::Consul(ConsulCmd::SessionCreate(Box::new(item.clone())))).await? {
            Applied::Ok { .. } => {
                node.leases.keep_alive(node.id, node.raft.is_leader(), LeaseKey::Session(item.id.clone()));
                return Ok(item.id);
            }
            // A drawn id collided: draw again.
            Applied::AlreadyExists => continue,
            other => return Err(ConsulError::Refused(format!("unexpected apply result {other:?}"))),
        }
    }
    Err(ConsulError::Refused("could not draw a free session id".into()))
}

/// Destroys a session (idempotent: an unknown id is fine, as in Consul).
pub async fn destroy(node: &RaftNode, id: &str) -> Result<(), ConsulError> {
    if id.is_empty() {
        return Err(ConsulError::BadRequest("Missing session".into()));
    }
    match node.write(Command::Consul(ConsulCmd::SessionDestroy { id: id.to_string() })).await? {
        Applied::Ok { .. } | Applied::NotFound => Ok(()),
        other => Err(ConsulError::Refused(format!("unexpected apply result {other:?}"))),
    }
}

/// Renews a session's TTL: a keep-alive for the leader's lease table (reported by followers),
/// nothing through Raft. Reads after catching up with the leader, so a session just created
/// through another node is found.
pub async fn renew(node: &RaftNode, id: &str) -> Result<SessionItem, ConsulError> {
    if !node.raft.is_leader() {
        node.linearizable_barrier().await?;
    }
    let s = get(node, id)?.ok_or_else(|| ConsulError::NotFound(format!("Session id '{id}' not found")))?;
    node.leases.keep_alive(node.id, node.raft.is_leader(), LeaseKey::Session(s.id.clone()));
    Ok(s)
}

pub fn get(node: &RaftNode, id: &str) -> Result<Option<SessionItem>, ConsulError> {
    Ok(consul_store::session_get(&node.sm.db(), id)?)
}

pub fn list(node: &RaftNode) -> Result<Vec<SessionItem>, ConsulError> {
    Ok(consul_store::session_list(&node.sm.db())?)
}

/// Runs for the life of the process: once a second, while this node leads, expires sessions
/// whose TTL lapsed.
pub async fn run(node: Arc<RaftNode>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut armed = Armed::default();
    loop {
        tick.tick().await;
        if !node.raft.is_leader() {
            armed = Armed::default();
            continue;
        }
        let term = node.status().term;
        if armed.term != term {
            armed = Armed { term, first_seen: HashMap::new() };
        }
        let sessions = match list(&node) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("session expiry scan failed: {e}");
                continue;
            }
        };
        let mut ids = expired(&node, &sessions, &mut armed, Instant::now());
        let lapsed = ids.len();
        ids.extend(invalidated(&node, &sessions).into_iter().filter(|id| !ids.contains(id)).collect::<Vec<_>>());
        if ids.is_empty() {
            continue;
        }
        tracing::info!(lapsed, unbacked = ids.len() - lapsed, "invalidating Consul sessions");
        if let Err(e) = node.write(Command::Consul(ConsulCmd::SessionExpire { ids })).await {
            tracing::warn!("session expiry not committed (retried next tick): {e}");
        }
    }
}

/// Sessions whose node or checks no longer back them (leader). Consul invalidates them in the
/// write that deregisters the node or turns the check critical; here the leader does it on its
/// next tick, through the same command as TTL expiry.
fn invalidated(node: &RaftNode, sessions: &[SessionItem]) -> Vec<String> {
    let read = match CatalogRead::new(node) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("session check scan failed: {e}");
            return vec![];
        }
    };
    let mut out = Vec::new();
    for s in sessions {
        match unbacked(&read, s) {
            Ok(Some(why)) => {
                tracing::info!(session = %s.id, "invalidating a Consul session: {why}");
                out.push(s.id.clone());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("session check scan failed: {e}"),
        }
    }
    out
}

/// When this leadership first saw each session. The lease table's entries may predate this
/// term (this node led before) until the naming loop starts the term afresh; never expiring
/// before 2 × TTL from this term's first sight keeps such stale entries harmless.
#[derive(Default)]
pub struct Armed {
    term: u64,
    first_seen: HashMap<String, Instant>,
}

/// The sessions to expire now (leader), pruning this domain's lease entries to live sessions.
pub fn expired(node: &RaftNode, sessions: &[SessionItem], armed: &mut Armed, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    let mut live = HashSet::new();
    for s in sessions {
        let Some(ttl) = ttl_of(s) else { continue };
        let key = LeaseKey::Session(s.id.clone());
        let renewed = node.leases.seen(&key, now);
        let first = *armed.first_seen.entry(s.id.clone()).or_insert(now);
        if now.saturating_duration_since(renewed.max(first)) > ttl * 2 {
            out.push(s.id.clone());
        }
        live.insert(key);
    }
    armed.first_seen.retain(|id, _| live.contains(&LeaseKey::Session(id.clone())));
    node.leases.retain_keys(|k| !matches!(k, LeaseKey::Session(_)) || live.contains(k));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lock_delay_numbers_below_1000_are_seconds_and_60s_is_the_cap() {
        let d = |v| parse_lock_delay(&v).unwrap();
        assert_eq!(d(json!(5)), Duration::from_secs(5));
        assert_eq!(d(json!(15_000_000_000u64)), Duration::from_secs(15));
        assert_eq!(d(json!("15000ms")), Duration::from_secs(15));
        assert_eq!(d(json!("10m")), MAX_LOCK_DELAY);
        assert!(parse_lock_delay(&json!("15")).is_err());
    }

    #[test]
    fn create_defaults_and_rules() {
        let s = build(SessionRequest::default(), "n1").unwrap();
        assert_eq!((s.node.as_str(), s.lock_delay_ns, s.behavior), ("n1", 15_000_000_000, Behavior::Release));
        assert_eq!(s.node_checks, vec![SERF_HEALTH.to_string()]);
        let none = build(SessionRequest { checks: Some(vec![]), ..Default::default() }, "n1").unwrap();
        assert!(none.node_checks.is_empty());
        let bad = |r: SessionRequest| matches!(build(r, "n"), Err(ConsulError::Refused(_)));
        assert!(bad(SessionRequest { ttl: Some("5s".into()), ..Default::default() }));
        assert!(bad(SessionRequest { ttl: Some("25h".into()), ..Default::default() }));
        assert!(bad(SessionRequest { ttl: Some("soon".into()), ..Default::default() }));
        assert!(bad(SessionRequest { behavior: Some("keep".into()), ..Default::default() }));
        assert!(build(SessionRequest { ttl: Some("0s".into()), ..Default::default() }, "n").is_ok());
        assert!(build(SessionRequest { ttl: Some("10s".into()), ..Default::default() }, "n").is_ok());
    }
}
