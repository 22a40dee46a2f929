//! Leader-local liveness: when each SDK connection and each beating HTTP instance was last seen.
//! Nothing here goes through Raft. Every node feeds it: the leader directly, followers by a
//! [`LeaseReport`] sent over the cluster port each second (beats batched, connection lists every
//! few seconds). The naming domain reads it to decide the transitions it proposes.
//!
//! A leader that has just been elected knows nothing yet: every lease is re-armed with a full
//! period the first time it is looked at ([`Leases::conn_seen`], [`Leases::beat_seen`]), so an
//! election never expires an instance early.

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
    /// HTTP instances that beat since the last report.
    pub beats: Vec<(ServiceKey, String)>,
}

/// An instance reference: service and instance id.
pub type InstanceRef = (ServiceKey, String);

#[derive(Default)]
struct State {
    /// The term the leader tables belong to; a new term starts them afresh.
    term: u64,
    conns: HashMap<(NodeId, String), Instant>,
    beats: HashMap<InstanceRef, Instant>,
    /// Registration-created services seen empty, since when.
    empty: HashMap<ServiceKey, Instant>,
    /// Beats received here and not yet reported to the leader (followers).
    pending: HashSet<InstanceRef>,
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
            s.beats.clear();
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
        for b in report.beats {
            s.beats.insert(b, now);
        }
    }

    /// Follower side: keeps a beat for the next report.
    pub fn queue_beat(&self, r: InstanceRef) {
        self.lock().pending.insert(r);
    }

    /// Follower side: the beats to report now.
    pub fn take_pending(&self) -> Vec<InstanceRef> {
        self.lock().pending.drain().collect()
    }

    /// When the connection was last seen alive; first sight re-arms it at `now`.
    pub fn conn_seen(&self, node: NodeId, conn: &str, now: Instant) -> Instant {
        *self.lock().conns.entry((node, conn.to_string())).or_insert(now)
    }

    /// When the instance last beat; first sight re-arms it at `now`.
    pub fn beat_seen(&self, r: &InstanceRef, now: Instant) -> Instant {
        let mut s = self.lock();
        if let Some(t) = s.beats.get(r) {
            return *t;
        }
        s.beats.insert(r.clone(), now);
        now
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

    /// Drops entries for connections and instances that no longer own anything, and for
    /// services that are no longer empty.
    pub fn retain(&self, conns: &HashSet<(NodeId, String)>, beats: &HashSet<InstanceRef>, empty: &HashSet<ServiceKey>) {
        let mut s = self.lock();
        s.conns.retain(|k, _| conns.contains(k));
        s.beats.retain(|k, _| beats.contains(k));
        s.empty.retain(|k, _| empty.contains(k));
    }
}
