//! `/nacos/metrics`: Prometheus text built at scrape time from Raft metrics and the log
//! store's counters, so the hot path only bumps atomics.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::raft::RaftNode;

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

/// What this node's SDK port holds.
pub struct SdkGauges {
    pub connections: usize,
    pub config_listeners: usize,
    pub naming_subscribers: usize,
}

pub fn render(node: &RaftNode, sdk: SdkGauges) -> String {
    let st = node.status();
    let mut reg = Registry::with_prefix("batata");
    gauge(&mut reg, "sdk_connections", "Nacos SDK connections held by this node", sdk.connections as i64);
    gauge(
        &mut reg,
        "sdk_config_listeners",
        "Config listeners (connection, key) held by this node",
        sdk.config_listeners as i64,
    );
    gauge(
        &mut reg,
        "sdk_naming_subscribers",
        "Naming subscriptions (connection, service) held by this node",
        sdk.naming_subscribers as i64,
    );
    let (services, instances) = node.sm.naming(|idx| (idx.services().count(), idx.instance_count()));
    gauge(&mut reg, "naming_services", "Registry services", services as i64);
    gauge(&mut reg, "naming_instances", "Registry instances", instances as i64);
    let opt = |v: Option<u64>| v.map(|x| x as i64).unwrap_or(-1);
    gauge(&mut reg, "raft_term", "Current Raft term", st.term as i64);
    gauge(&mut reg, "raft_leader_id", "Node id of the known leader, -1 if none", opt(st.leader));
    gauge(&mut reg, "raft_is_leader", "1 if this node is the leader", i64::from(st.leader == Some(node.id)));
    gauge(&mut reg, "raft_last_log_index", "Last log index", opt(st.last_log_index));
    gauge(&mut reg, "raft_commit_index", "Committed log index", opt(st.committed));
    gauge(&mut reg, "raft_applied_index", "Applied log index", opt(st.applied));
    gauge(&mut reg, "raft_snapshot_index", "Last snapshot log index", opt(st.snapshot));
    gauge(&mut reg, "raft_members", "Members in the current membership", st.members.len() as i64);
    let lag: Family<Vec<(String, String)>, Gauge> = Family::default();
    if let Some(last) = st.last_log_index {
        for m in &st.members {
            if m.id == node.id {
                continue;
            }
            if let Some(matched) = m.matched {
                lag.get_or_create(&vec![("peer".to_string(), m.id.to_string())])
                    .set(last.saturating_sub(matched) as i64);
            }
        }
    }
    reg.register("raft_replication_lag_entries", "Leader's last index minus the peer's matched index", lag);
    let s = &node.log.stats;
    let fsyncs = s.fsyncs.load(Ordering::Relaxed);
    let synced = s.entries_synced.load(Ordering::Relaxed);
    counter(&mut reg, "raft_log_fsyncs", "fsyncs of the Raft log WAL", fsyncs);
    counter(
        &mut reg,
        "raft_log_fsync_microseconds",
        "Total microseconds spent in Raft log fsync",
        s.fsync_nanos.load(Ordering::Relaxed) / 1_000,
    );
    counter(&mut reg, "raft_log_appends", "append() calls on the Raft log", s.appends.load(Ordering::Relaxed));
    counter(&mut reg, "raft_log_entries_synced", "Log entries made durable by the flusher", synced);
    gauge(
        &mut reg,
        "raft_log_entries_per_fsync_milli",
        "Entries per fsync x1000 since start (group-commit efficiency)",
        (synced * 1000).checked_div(fsyncs).unwrap_or(0) as i64,
    );
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    out
}
