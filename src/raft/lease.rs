//! Leader-local liveness: when each SDK connection, each beating HTTP instance, each Consul
//! session and each Consul TTL check was last kept alive. Nothing here goes through Raft. Every
//! node feeds it: the leader directly, followers by a [`LeaseReport`] sent over the cluster port
//! each second (keep-alives batched, connection lists every few seconds). The domains read it to
//! decide the transitions they propose.
//!
//! A leader that has just been elected knows nothing yet: every lease is re-armed with a full
//! period the first time it is looked at ([`Leases::conn_seen`], [`Leases::seen`]), so an
//! election never expires anything early.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;
use serde::Serialize;

use super::types::NodeId;
use crate::state_machine::naming::ServiceKey;

/// What a follower tells the leader about the liveness it observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeaseReport {
    pub node: NodeId,
    /// Every SDK connection the node holds, when this report carries the list.
    pub conns: Option<Vec<String>>,
    /// What was kept alive since the last report.
    pub keys: Vec<LeaseKey>,
}

/// An instance reference: service and instance id.
pub type InstanceRef = (ServiceKey, String);

/// Something kept alive by a client's requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaseKey {
    /// An HTTP instance's beat.
    Beat(InstanceRef),
    /// A Consul session renewal (session id).
    Session(String),
    /// A Consul TTL check update (check id).
    Check(String),
}

#[derive(Default)]
struct State {
    /// The term the leader tables belong to; a new term starts them afresh.
    term: u64,
    conns: HashMap<(NodeId, String), Instant>,
    seen: HashMap<LeaseKey, Instant>,
    /// Registration-created services seen empty, since when.
    empty: HashMap<ServiceKey, Instant>,
    /// Keep-alives received here and not yet reported to the leader (followers).
    pending: HashSet<LeaseKey>,
}

#[derive(Default)]
pub struct Leases {
    state: Mutex<State>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the leader tables afresh when `term` differs from theirs (a new leadership).
    pub fn begin_term(&self, term: u64) {
        let mut s = self.lock();
        if s.term != term {
            s.term = term;
            s.conns.clear();
            s.seen.clear();
            s.empty.clear();
        }
    }

    /// Leader side: records a report (from a follower or from this node).
    pub fn record(&self, report: LeaseReport) {
        let now = Instant::now();
        let mut s = self.lock();
        for c in report.conns.into_iter().flatten() {
            s.conns.insert((report.node, c), now);
        }
        for k in report.keys {
            s.seen.insert(k, now);
        }
    }

    /// A keep-alive received by this node: recorded at once on the leader, else queued for the
    /// next report.
    pub fn keep_alive(&self, node: NodeId, is_leader: bool, key: LeaseKey) {
        if is_leader {
            self.record(LeaseReport { node, conns: None, keys: vec![key] });
        } else {
            self.lock().pending.insert(key);
        }
    }

    /// Follower side: keeps a keep-alive for the next report.
    pub fn queue(&self, key: LeaseKey) {
        self.lock().pending.insert(key);
    }

    /// Follower side: the keep-alives to report now.
    pub fn take_pending(&self) -> Vec<LeaseKey> {
        self.lock().pending.drain().collect()
    }

    /// When the connection was last seen alive; first sight re-arms it at `now`.
    pub fn conn_seen(&self, node: NodeId, conn: &str, now: Instant) -> Instant {
        *self.lock().conns.entry((node, conn.to_string())).or_insert(now)
    }

    /// When `key` was last kept alive; first sight re-arms it at `now`.
    pub fn seen(&self, key: &LeaseKey, now: Instant) -> Instant {
        let mut s = self.lock();
        if let Some(t) = s.seen.get(key) {
            return *t;
        }
        s.seen.insert(key.clone(), now);
        now
    }

    /// Drops the keep-alive entries `keep` refuses (each domain prunes its own kind).
    pub fn retain_keys(&self, keep: impl Fn(&LeaseKey) -> bool) {
        self.lock().seen.retain(|k, _| keep(k));
    }

    /// Since when a registration-created service has been empty; first sight is `now`.
    pub fn empty_since(&self, key: &ServiceKey, now: Instant) -> Instant {
        let mut s = self.lock();
        if let Some(t) = s.empty.get(key) {
            return *t;
        }
        s.empty.insert(key.clone(), now);
        now
    }

    /// Drops entries for connections that no longer own anything, and for services that are no
    /// longer empty.
    pub fn retain(&self, conns: &HashSet<(NodeId, String)>, empty: &HashSet<ServiceKey>) {
        let mut s = self.lock();
        s.conns.retain(|k, _| conns.contains(k));
        s.empty.retain(|k, _| empty.contains(k));
    }
}
