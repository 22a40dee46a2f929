//! Server-side health checks of persistent instances, run by the leader only (followers would
//! only disagree with it). Each cluster's checker decides how: `TCP` (Nacos' default) connects
//! to the instance's port (or the cluster's check port), `HTTP` expects a 200 from the check
//! path, `NONE` leaves the health to the operator. As in Nacos, an instance changes state after
//! [`CHECK_TIMES`] consecutive results the other way; only those transitions are proposed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::raft::lease::InstanceRef;
use crate::raft::RaftNode;
use crate::state_machine::command::Command;
use crate::state_machine::naming::ClusterItem;
use crate::state_machine::naming::NamingCmd;
use crate::state_machine::naming::Owner;

pub const CHECK_TIMES: u32 = 3;
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const PARALLEL_CHECKS: usize = 64;

struct Target {
    r: InstanceRef,
    healthy: bool,
    host: String,
    port: u32,
    cluster: ClusterItem,
}

/// Runs for the life of the process; checks every `interval` while this node leads.
pub async fn run(node: Arc<RaftNode>, interval: Duration) {
    let http = reqwest::Client::builder().timeout(CHECK_TIMEOUT).build().unwrap_or_default();
    // Consecutive results against the current state: (instance) -> count.
    let mut streaks: HashMap<InstanceRef, u32> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !node.raft.is_leader() {
            streaks.clear();
            continue;
        }
        let targets = targets(&node);
        let results: Vec<(Target, bool)> = futures::stream::iter(targets)
            .map(|t| {
                let http = http.clone();
                async move {
                    let ok = check(&http, &t).await;
                    (t, ok)
                }
            })
            .buffer_unordered(PARALLEL_CHECKS)
            .collect()
            .await;
        let mut flips = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (t, ok) in results {
            seen.insert(t.r.clone());
            if ok == t.healthy {
                streaks.remove(&t.r);
                continue;
            }
            let n = streaks.entry(t.r.clone()).or_insert(0);
            *n += 1;
            if *n >= CHECK_TIMES {
                streaks.remove(&t.r);
                tracing::info!(instance = %t.r.1, healthy = ok, "health check changed an instance's state");
                flips.push((t.r.0, t.r.1, ok));
            }
        }
        streaks.retain(|k, _| seen.contains(k));
        if !flips.is_empty() {
            if let Err(e) = node.write(Command::Naming(NamingCmd::SetHealth { items: flips })).await {
                tracing::warn!("health transitions not committed (checked again next round): {e}");
            }
        }
    }
}

fn targets(node: &RaftNode) -> Vec<Target> {
    node.sm.naming(|idx| {
        let mut out = Vec::new();
        for (key, view) in idx.services() {
            for i in view.instances.values().filter(|i| i.owner == Owner::Persistent) {
                let cluster = view.item.clusters.get(&i.cluster).cloned().unwrap_or_default();
                if cluster.check_type == "NONE" {
                    continue;
                }
                let port = if cluster.use_instance_port { i.port } else { cluster.check_port };
                out.push(Target {
                    r: (key.clone(), i.id.clone()),
                    healthy: i.healthy,
                    host: i.ip.clone(),
                    port,
                    cluster,
                });
            }
        }
        out
    })
}

async fn check(http: &reqwest::Client, t: &Target) -> bool {
    let host = if t.host.contains(':') { format!("[{}]", t.host) } else { t.host.clone() };
    match t.cluster.check_type.as_str() {
        "HTTP" => {
            let path = if t.cluster.check_path.starts_with('/') {
                t.cluster.check_path.clone()
            } else {
                format!("/{}", t.cluster.check_path)
            };
            let url = format!("http://{host}:{}{path}", t.port);
            matches!(http.get(url).send().await, Ok(r) if r.status().as_u16() == 200)
        }
        _ => {
            let addr = format!("{host}:{}", t.port);
            matches!(tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)))
        }
    }
}
