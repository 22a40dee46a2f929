//! Who is in the cluster and how it is founded.
//!
//! Node ids are derived from a member's `host:port` (FNV-1a, 63 bits) so that every node of a
//! `cluster.conf` computes the same initial membership without talking, and are persisted in
//! `<data-dir>/node_id` on first start so they never change under a node.
//!
//! The cluster is initialized exactly once: only the member with the smallest address may do
//! it, only while its own log is pristine, and only after every other listed member answered
//! that it is pristine too. A restart of all nodes finds initialized logs and skips this; a
//! wiped node finds initialized peers and waits to be caught up instead of founding a second
//! cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;

use super::network::Purpose;
use super::rpc::AdminRequest;
use super::rpc::AdminResponse;
use super::types::NodeId;
use super::types::Peer;
use super::RaftNode;
use crate::grpc::pb::RaftPayload;
use crate::state_machine::command::Command;
use crate::state_machine::command::SysCmd;

/// Stable id of the member at `http_addr` (`host:port` of its main port).
pub fn node_id_for(http_addr: &str) -> NodeId {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in http_addr.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h & 0x7fff_ffff_ffff_ffff).max(1)
}

/// Reads `<data-dir>/node_id`, or writes `proposed` there on first start.
pub fn load_or_store_node_id(data_dir: &Path, proposed: NodeId) -> std::io::Result<NodeId> {
    let p = data_dir.join("node_id");
    match std::fs::read_to_string(&p) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("corrupt {}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::state_machine::snapshot::write_atomic(&p, proposed.to_string().as_bytes())?;
            Ok(proposed)
        }
        Err(e) => Err(e),
    }
}

/// Asks the peer at `raft_addr` for its status over the cluster port.
pub async fn peer_status(node: &RaftNode, raft_addr: &str) -> Option<super::rpc::ClusterStatus> {
    let mut c = node.clients.client(raft_addr, Purpose::App).ok()?;
    let req = node.clients.request(RaftPayload { data: super::network::encode(&AdminRequest::Status) }, None);
    let resp = tokio::time::timeout(Duration::from_secs(2), c.admin(req)).await.ok()?.ok()?;
    match super::network::decode::<super::rpc::AdminResult>(&resp.into_inner().data).ok()? {
        Ok(AdminResponse::Status(s)) => Some(*s),
        _ => None,
    }
}

/// Founds a single-node cluster on first start.
pub async fn bootstrap_standalone(node: &RaftNode, me: Peer) -> anyhow::Result<()> {
    if !node.raft.is_initialized().await? {
        node.raft.initialize(BTreeMap::from([(node.id, me)])).await?;
        tracing::info!(node_id = node.id, "initialized a new standalone cluster");
    }
    Ok(())
}

/// Founds the cluster from `cluster.conf` once every member is up and pristine (see module
/// docs). Runs in the background until the cluster exists.
pub async fn bootstrap_members(node: Arc<RaftNode>, members: BTreeMap<NodeId, Peer>) {
    let Some(first) = members.iter().min_by(|a, b| a.1.http_addr.cmp(&b.1.http_addr)).map(|(id, _)| *id) else {
        return;
    };
    loop {
        match node.raft.is_initialized().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(_) => return,
        }
        if first == node.id && node.log.is_pristine().unwrap_or(false) {
            let mut all_pristine = true;
            for (id, peer) in &members {
                if *id == node.id {
                    continue;
                }
                match peer_status(&node, &peer.raft_addr).await {
                    Some(s) if !s.initialized => {}
                    Some(_) => {
                        tracing::info!(peer = %peer.http_addr, "peer already belongs to a cluster; not initializing");
                        all_pristine = false;
                    }
                    None => all_pristine = false,
                }
            }
            if all_pristine {
                match node.raft.initialize(members.clone()).await {
                    Ok(()) => tracing::info!(members = members.len(), "initialized the cluster"),
                    Err(e) => tracing::warn!(error = %e, "cluster initialization failed"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A node outside `cluster.conf` with role `learner` asks the cluster to add it.
pub async fn join_as_learner(node: Arc<RaftNode>, me: Peer, seeds: Vec<Peer>) {
    loop {
        let st = node.status();
        if st.members.iter().any(|m| m.id == node.id) {
            return;
        }
        for seed in &seeds {
            let Ok(mut c) = node.clients.client(&seed.raft_addr, Purpose::App) else { continue };
            let req = AdminRequest::AddLearner { id: node.id, peer: me.clone() };
            let r = node.clients.request(RaftPayload { data: super::network::encode(&req) }, None);
            if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(5), c.admin(r)).await {
                if let Ok(Ok(AdminResponse::Done)) =
                    super::network::decode::<super::rpc::AdminResult>(&resp.into_inner().data)
                {
                    tracing::info!(seed = %seed.http_addr, "joined the cluster as a learner");
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Leader duty: record a cluster id once, right after the cluster first elects a leader.
pub async fn ensure_cluster_id(node: Arc<RaftNode>) {
    let mut metrics = node.raft.metrics();
    loop {
        if node.raft.is_leader() {
            match node.sm.cluster_id() {
                Ok(Some(_)) => return,
                Ok(None) => {
                    let id = format!("{:016x}{:016x}", node.id, crate::now_nanos());
                    if node.write(Command::Sys(SysCmd::InitCluster { cluster_id: id })).await.is_ok() {
                        return;
                    }
                }
                Err(_) => return,
            }
        } else if matches!(node.sm.cluster_id(), Ok(Some(_))) {
            return;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
