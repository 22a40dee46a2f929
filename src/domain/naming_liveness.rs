//! The registry's liveness loop, run by every node once a second.
//!
//! A follower reports what it saw (beats since the last report; its SDK connections every few
//! seconds) to the leader. The leader folds its own observations into the lease table
//! (`raft::lease`), scans the in-memory registry, and proposes only the transitions, in batches:
//! connections unseen for the grace period are expired with everything they registered; HTTP
//! instances without beats turn unhealthy after `preserved.heart.beat.timeout` (15 s) and are
//! removed after `preserved.ip.delete.timeout` (30 s); a beat brings an unhealthy one back;
//! services that registrations created and that stayed empty for [`Timing::empty_service`] are
//! dropped (Nacos' empty-service cleaner, 60 s by default).

use std::collections::BTreeSet;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use super::naming::meta_ms;
use super::naming::DEFAULT_BEAT_TIMEOUT_MS;
use super::naming::DEFAULT_DELETE_TIMEOUT_MS;
use super::naming::META_BEAT_TIMEOUT;
use super::naming::META_DELETE_TIMEOUT;
use crate::raft::lease::InstanceRef;
use crate::raft::lease::LeaseKey;
use crate::raft::lease::LeaseReport;
use crate::raft::RaftNode;
use crate::state_machine::command::Command;
use crate::state_machine::naming::NamingCmd;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;

/// The SDK connections this node holds (their ids), supplied by the gRPC adapter.
pub type LocalConns = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

const TICK: Duration = Duration::from_secs(1);
/// A follower sends its connection list every this many ticks.
const CONN_REPORT_EVERY: u32 = 3;

/// The leader's timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// An SDK connection nobody reports is expired after this.
    pub connection_grace: Duration,
    /// A registration-created service empty this long is removed.
    pub empty_service: Duration,
}

/// Runs for the life of the process.
pub async fn run(node: Arc<RaftNode>, local_conns: LocalConns, timing: Timing) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u32 = 0;
    loop {
        tick.tick().await;
        n = n.wrapping_add(1);
        if node.raft.is_leader() {
            let term = node.status().term;
            node.leases.begin_term(term);
            // Beats this node queued while it was a follower count as seen now.
            let keys = node.leases.take_pending();
            node.leases.record(LeaseReport { node: node.id, conns: Some(local_conns()), keys });
            let t = transitions(&node, timing, Instant::now());
            propose(&node, t).await;
        } else {
            let conns = if n.is_multiple_of(CONN_REPORT_EVERY) { Some(local_conns()) } else { None };
            let keys = node.leases.take_pending();
            if conns.is_none() && keys.is_empty() {
                continue;
            }
            let report = LeaseReport { node: node.id, conns, keys: keys.clone() };
            if node.send_lease_report(&report).await.is_err() {
                // Try again with the next report rather than lose the keep-alives.
                for k in keys {
                    node.leases.queue(k);
                }
            }
        }
    }
}

/// What the leader proposes after one scan.
#[derive(Debug, Default, PartialEq)]
pub struct Transitions {
    pub expire: Vec<Owner>,
    pub remove: Vec<InstanceRef>,
    pub health: Vec<(ServiceKey, String, bool)>,
    pub empty_services: Vec<ServiceKey>,
}

/// Scans the registry against the lease table (leader only).
pub fn transitions(node: &RaftNode, timing: Timing, now: Instant) -> Transitions {
    let grace = timing.connection_grace;
    let mut expire: BTreeSet<Owner> = BTreeSet::new();
    let mut t = Transitions::default();
    let mut live_conns: HashSet<(u64, String)> = HashSet::new();
    let mut live_beats: HashSet<LeaseKey> = HashSet::new();
    let mut empty: HashSet<ServiceKey> = HashSet::new();
    node.sm.naming(|idx| {
        for (key, view) in idx.services() {
            if view.instances.is_empty() && !view.item.explicit {
                if now.saturating_duration_since(node.leases.empty_since(key, now)) > timing.empty_service {
                    t.empty_services.push(key.clone());
                }
                empty.insert(key.clone());
            }
            for inst in view.instances.values() {
                match &inst.owner {
                    Owner::Conn { node: owner_node, conn } => {
                        let seen = node.leases.conn_seen(*owner_node, conn, now);
                        live_conns.insert((*owner_node, conn.clone()));
                        if now.saturating_duration_since(seen) > grace {
                            expire.insert(inst.owner.clone());
                        }
                    }
                    Owner::Beat => {
                        let r = (key.clone(), inst.id.clone());
                        let lk = LeaseKey::Beat(r.clone());
                        let silent = now.saturating_duration_since(node.leases.seen(&lk, now));
                        let timeout =
                            Duration::from_millis(meta_ms(&inst.metadata, META_BEAT_TIMEOUT, DEFAULT_BEAT_TIMEOUT_MS));
                        let delete = Duration::from_millis(meta_ms(
                            &inst.metadata,
                            META_DELETE_TIMEOUT,
                            DEFAULT_DELETE_TIMEOUT_MS,
                        ));
                        if silent > delete {
                            t.remove.push(r.clone());
                        } else if silent > timeout && inst.healthy {
                            t.health.push((key.clone(), inst.id.clone(), false));
                        } else if silent <= timeout && !inst.healthy {
                            t.health.push((key.clone(), inst.id.clone(), true));
                        }
                        live_beats.insert(lk);
                    }
                    Owner::Persistent => {}
                    // Consul registrations live until deregistered; their TTL checks are
                    // watched by `consul_checks`.
                    Owner::Consul { .. } => {}
                }
            }
        }
    });
    node.leases.retain(&live_conns, &empty);
    node.leases.retain_keys(|k| !matches!(k, LeaseKey::Beat(_)) || live_beats.contains(k));
    t.expire = expire.into_iter().collect();
    t
}

async fn propose(node: &RaftNode, t: Transitions) {
    let mut cmds = Vec::new();
    if !t.expire.is_empty() {
        tracing::info!(owners = t.expire.len(), "expiring the instances of SDK connections that are gone");
        cmds.push(NamingCmd::ExpireOwners { owners: t.expire });
    }
    if !t.remove.is_empty() {
        tracing::info!(instances = t.remove.len(), "removing instances whose beats stopped");
        cmds.push(NamingCmd::Remove { items: t.remove });
    }
    if !t.health.is_empty() {
        cmds.push(NamingCmd::SetHealth { items: t.health });
    }
    if !t.empty_services.is_empty() {
        cmds.push(NamingCmd::RemoveEmptyServices { keys: t.empty_services });
    }
    for c in cmds {
        if let Err(e) = node.write(Command::Naming(c)).await {
            tracing::warn!("liveness transition not committed (retried next tick): {e}");
        }
    }
}
