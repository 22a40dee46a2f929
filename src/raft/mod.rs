//! The replicated core's front door: everything that names openraft lives under `raft/`.
//!
//! [`RaftNode::write`] turns a [`Command`] into a committed, applied log entry — on the leader
//! directly, elsewhere by forwarding over the cluster port — and returns apply's reply only
//! after the entry is committed (fsynced on a majority). [`RaftNode::linearizable_barrier`]
//! gives any node, follower or learner included, a read-index barrier after which a local read
//! is linearizable.

pub mod lease;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod rpc;
pub mod types;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use openraft::async_runtime::WatchReceiver;
use openraft::ChangeMembers;
use openraft::ReadPolicy;
use serde::Deserialize;
use serde::Serialize;

use self::log_store::LogStore;
use self::network::PeerClients;
use self::network::Purpose;
use self::rpc::AdminRequest;
use self::rpc::AdminResponse;
use self::rpc::ClusterStatus;
use self::rpc::MemberStatus;
use self::types::NodeId;
use self::types::Peer;
use self::types::Raft;
use crate::grpc::pb::RaftPayload;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::command::LogEntry;
use crate::state_machine::StateMachineStore;

/// Errors of the replicated core, as every protocol adapter sees them.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum WriteError {
    #[error("no leader is available; the cluster may be electing one or has lost its quorum")]
    NoLeader,
    #[error("timed out waiting for the cluster")]
    Timeout,
    #[error("invalid cluster request: {0}")]
    Invalid(String),
    #[error("raft error: {0}")]
    Raft(String),
}

/// How long a client request may wait for a leader and commit before failing.
const WRITE_DEADLINE: Duration = Duration::from_secs(15);

pub struct RaftNode {
    pub raft: Raft,
    pub id: NodeId,
    pub sm: StateMachineStore,
    pub log: LogStore,
    pub clients: PeerClients,
    /// Liveness seen by this node (leader tables, and beats a follower has yet to report).
    pub leases: lease::Leases,
    /// Test-only seeded bug (`debug.fault.skip-read-index`): the read barrier does nothing.
    pub skip_read_index: bool,
    /// Request ids are (node id, start nanos + counter): unique without randomness.
    req_base: u128,
    req_seq: AtomicU64,
}

impl RaftNode {
    pub fn new(raft: Raft, id: NodeId, sm: StateMachineStore, log: LogStore, clients: PeerClients) -> RaftNode {
        let base = ((id as u128) << 64) | (crate::now_ms() as u128 * 1_000_000);
        RaftNode {
            raft,
            id,
            sm,
            log,
            clients,
            leases: Default::default(),
            skip_read_index: false,
            req_base: base,
            req_seq: AtomicU64::new(0),
        }
    }

    pub fn next_request_id(&self) -> u128 {
        self.req_base + self.req_seq.fetch_add(1, Ordering::Relaxed) as u128
    }

    /// Proposes `cmd` and waits for it to be committed and applied.
    pub async fn write(&self, cmd: Command) -> Result<Applied, WriteError> {
        let entry = LogEntry { time_ms: crate::now_ms(), request_id: Some(self.next_request_id()), cmd };
        self.write_entry(entry).await
    }

    /// Writes an entry, forwarding to the leader when this node is not it. Retries across leader
    /// changes with the same request id, so an entry whose first attempt did commit is applied
    /// once (the dedup table answers the retry).
    pub async fn write_entry(&self, entry: LogEntry) -> Result<Applied, WriteError> {
        let deadline = Instant::now() + WRITE_DEADLINE;
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.try_write_once(entry.clone()).await {
                Ok(a) => return Ok(a),
                Err(WriteError::NoLeader) | Err(WriteError::Timeout) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() + backoff > deadline {
                return Err(WriteError::NoLeader);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    async fn try_write_once(&self, mut entry: LogEntry) -> Result<Applied, WriteError> {
        // The leader stamps the time, so replicas agree on it whoever received the request.
        entry.time_ms = crate::now_ms();
        match self.raft.client_write(entry.clone()).await {
            Ok(resp) => Ok(resp.data),
            Err(e) => match e.forward_to_leader() {
                Some(f) => match (f.leader_id, f.leader_node.clone()) {
                    (Some(id), Some(node)) if id != self.id => self.forward(id, &node, &entry).await,
                    _ => Err(WriteError::NoLeader),
                },
                None => Err(WriteError::Raft(e.to_string())),
            },
        }
    }

    async fn app_call(&self, target: NodeId, peer: &Peer, kind: AppRpc, data: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let mut c = self.clients.client(&peer.raft_addr, Purpose::App).map_err(|_| WriteError::NoLeader)?;
        let req = self.clients.request(RaftPayload { data }, Some(target));
        let fut = async {
            match kind {
                AppRpc::Forward => c.forward(req).await,
                AppRpc::ReadIndex => c.read_index(req).await,
                AppRpc::Admin => c.admin(req).await,
                AppRpc::Lease => c.lease(req).await,
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), fut).await {
            Ok(Ok(r)) => Ok(r.into_inner().data),
            Ok(Err(s)) if s.code() == tonic::Code::PermissionDenied => {
                Err(WriteError::Invalid(s.message().to_string()))
            }
            Ok(Err(_)) => Err(WriteError::NoLeader),
            Err(_) => Err(WriteError::Timeout),
        }
    }

    async fn forward(&self, leader: NodeId, peer: &Peer, entry: &LogEntry) -> Result<Applied, WriteError> {
        let bytes = self.app_call(leader, peer, AppRpc::Forward, network::encode(entry)).await?;
        network::decode::<rpc::ForwardResult>(&bytes).map_err(WriteError::Raft)?
    }

    /// Leader side of a forwarded write: one attempt, never re-forwarded (no loops).
    pub async fn handle_forward(&self, mut entry: LogEntry) -> rpc::ForwardResult {
        entry.time_ms = crate::now_ms();
        match self.raft.client_write(entry).await {
            Ok(resp) => Ok(resp.data),
            Err(e) if e.forward_to_leader().is_some() => Err(WriteError::NoLeader),
            Err(e) => Err(WriteError::Raft(e.to_string())),
        }
    }

    /// Leader side of read-index: confirms leadership with a quorum round and returns the index
    /// a reader must have applied.
    pub async fn handle_read_index(&self) -> rpc::ReadIndexResult {
        match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(read_log_id) => Ok(read_log_id.index()),
            Err(e) if e.forward_to_leader().is_some() => Err(WriteError::NoLeader),
            Err(e) => Err(WriteError::Raft(e.to_string())),
        }
    }

    /// After this returns, a local read observes every write acknowledged before it was called.
    pub async fn linearizable_barrier(&self) -> Result<(), WriteError> {
        if self.skip_read_index {
            return Ok(());
        }
        let deadline = Instant::now() + WRITE_DEADLINE;
        loop {
            let res = if self.raft.is_leader() {
                self.handle_read_index().await
            } else {
                match self.leader_peer() {
                    Some((id, peer)) => match self.app_call(id, &peer, AppRpc::ReadIndex, Vec::new()).await {
                        Ok(b) => network::decode::<rpc::ReadIndexResult>(&b).map_err(WriteError::Raft)?,
                        Err(e) => Err(e),
                    },
                    None => Err(WriteError::NoLeader),
                }
            };
            match res {
                Ok(index) => return self.wait_applied(index, deadline).await,
                Err(WriteError::NoLeader) | Err(WriteError::Timeout) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the local state machine has applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), WriteError> {
        let mut rx = self.sm.hub().applied();
        let wait = async move { rx.wait_for(|applied| *applied >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(WriteError::Raft("state machine stopped".into())),
            Err(_) => Err(WriteError::Timeout),
        }
    }

    pub fn leader_peer(&self) -> Option<(NodeId, Peer)> {
        let m = self.raft.metrics().borrow_watched().clone();
        let leader = m.current_leader?;
        let peer = m.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, peer))
    }

    pub fn status(&self) -> ClusterStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = m
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, l)| (*id, l.as_ref().map(|l| l.index))).collect())
            .unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(id, peer)| MemberStatus {
                id: *id,
                peer: peer.clone(),
                voter: voters.contains(id),
                matched: matched.get(id).copied().flatten(),
            })
            .collect();
        ClusterStatus {
            node_id: self.id,
            state: format!("{:?}", m.state),
            initialized: m.membership_config.log_id().is_some(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            committed: m.cluster_committed.as_ref().or(m.local_committed.as_ref()).map(|l| l.index),
            applied: m.last_applied.as_ref().map(|l| l.index),
            snapshot: m.snapshot.as_ref().map(|l| l.index),
            purged: m.purged.as_ref().map(|l| l.index),
            members,
            cluster_id: self.sm.cluster_id().ok().flatten(),
        }
    }

    /// Sends this follower's liveness report to the leader (one attempt; the next report follows
    /// a second later).
    pub async fn send_lease_report(&self, report: &lease::LeaseReport) -> Result<(), WriteError> {
        let (id, peer) = self.leader_peer().ok_or(WriteError::NoLeader)?;
        if id == self.id {
            self.leases.record(report.clone());
            return Ok(());
        }
        self.app_call(id, &peer, AppRpc::Lease, network::encode(report)).await.map(|_| ())
    }

    /// Membership administration: runs on the leader, forwarded there from any node.
    pub async fn admin(&self, req: AdminRequest) -> rpc::AdminResult {
        if let AdminRequest::Status = req {
            return Ok(AdminResponse::Status(Box::new(self.status())));
        }
        if !self.raft.is_leader() {
            let (id, peer) = self.leader_peer().ok_or(WriteError::NoLeader)?;
            let b = self.app_call(id, &peer, AppRpc::Admin, network::encode(&req)).await?;
            return network::decode::<rpc::AdminResult>(&b).map_err(WriteError::Raft)?;
        }
        self.handle_admin_as_leader(req).await
    }

    pub async fn handle_admin_as_leader(&self, req: AdminRequest) -> rpc::AdminResult {
        let map =
            |e: openraft::error::RaftError<types::TypeConfig, openraft::error::ClientWriteError<types::TypeConfig>>| {
                if e.forward_to_leader().is_some() {
                    WriteError::NoLeader
                } else {
                    WriteError::Invalid(e.to_string())
                }
            };
        match req {
            AdminRequest::Status => Ok(AdminResponse::Status(Box::new(self.status()))),
            AdminRequest::AddLearner { id, peer } => {
                if id == self.id {
                    return Err(WriteError::Invalid("a node cannot add itself".into()));
                }
                // Non-blocking: an unreachable learner must not hang the admin call. Callers
                // poll `status` for its matched index.
                self.raft.add_learner(id, peer, false).await.map_err(map)?;
                Ok(AdminResponse::Done)
            }
            AdminRequest::Promote { id } => {
                let m = self.raft.metrics().borrow_watched().clone();
                if m.membership_config.membership().get_node(&id).is_none() {
                    return Err(WriteError::Invalid(format!("node {id} is not a member; add it as a learner first")));
                }
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(map)?;
                Ok(AdminResponse::Done)
            }
            AdminRequest::Remove { id } => {
                let m = self.raft.metrics().borrow_watched().clone();
                let membership = m.membership_config.membership();
                if membership.get_node(&id).is_none() {
                    return Err(WriteError::Invalid(format!("node {id} is not a member")));
                }
                if membership.voter_ids().any(|v| v == id) {
                    self.raft
                        .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                        .await
                        .map_err(map)?;
                } else {
                    self.raft
                        .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                        .await
                        .map_err(map)?;
                }
                Ok(AdminResponse::Done)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum AppRpc {
    Forward,
    ReadIndex,
    Admin,
    Lease,
}
