//! Every openraft generic is pinned here, so an alpha-to-alpha API change touches one module.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::state_machine::command::Applied;
use crate::state_machine::command::LogEntry;
use crate::state_machine::snapshot::SnapshotFile;

/// How peers and clients reach a member. Carried in the Raft membership so every node agrees
/// on addresses without a side channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// `host:port` of the cluster gRPC port (9849).
    pub raft_addr: String,
    /// `host:port` of the main HTTP port (8848).
    pub http_addr: String,
    pub datacenter: String,
    pub region: String,
    pub zone: String,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.http_addr)
    }
}

openraft::declare_raft_types!(
    /// Batata's Raft type configuration.
    pub TypeConfig:
        D = LogEntry,
        R = Applied,
        NodeId = u64,
        Node = Peer,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachineStore>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>;
pub type Membership = openraft::Membership<NodeId, Peer>;
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
pub type LogState = openraft::LogState<TypeConfig>;
pub type IOFlushed = openraft::storage::IOFlushed<TypeConfig>;
pub type EntryResponder = openraft::storage::EntryResponder<TypeConfig>;
