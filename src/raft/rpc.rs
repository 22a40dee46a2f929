//! Application messages on the cluster port beside Raft's own: forwarded writes, read-index and
//! membership administration. Postcard-encoded inside `RaftPayload`.

use serde::Deserialize;
use serde::Serialize;

use super::types::NodeId;
use super::types::Peer;
use crate::state_machine::command::Applied;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AdminRequest {
    Status,
    AddLearner { id: NodeId, peer: Peer },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub peer: Peer,
    pub voter: bool,
    /// Highest log index known replicated to it (leader's view; None elsewhere).
    pub matched: Option<u64>,
}

/// One node's view of the cluster (`batata cluster status`, `/nacos/v1/core/cluster/nodes`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub state: String,
    pub initialized: bool,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub purged: Option<u64>,
    pub members: Vec<MemberStatus>,
    pub cluster_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AdminResponse {
    Status(Box<ClusterStatus>),
    Done,
}

/// Result of a forwarded write, as the leader saw it.
pub type ForwardResult = Result<Applied, super::WriteError>;
/// Result of a read-index request: the log index a linearizable read must wait for.
pub type ReadIndexResult = Result<u64, super::WriteError>;
pub type AdminResult = Result<AdminResponse, super::WriteError>;
