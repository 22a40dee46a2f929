//! Business rules shared by the protocol adapters: validation, defaults, building commands,
//! and reads. Sits between `http/`/`grpc/` and the replicated core; never touches RocksDB.

pub mod auth;
pub mod auth_admin;
pub mod auth_throttle;
pub mod config;
pub mod config_admin;
pub mod config_beta;
pub mod config_zip;
pub mod consul_acl;
pub mod consul_catalog;
pub mod consul_checks;
pub mod consul_defs;
pub mod consul_kv;
pub mod consul_session;
pub mod consul_view;
pub mod go_duration;
pub mod namespace;
pub mod naming;
pub mod naming_health;
pub mod naming_liveness;
pub mod naming_service;
pub mod naming_view;
pub mod snapshot;

use crate::raft::WriteError;

/// Errors of the domain layer; each protocol maps them once to its own shape.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Bad client input: nothing was stored.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A compare-and-swap precondition failed.
    #[error("{0}")]
    Conflict(String),
    /// Not authenticated, or not allowed: nothing was done. Nacos answers both with 403.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins from this address for this user.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Cluster(#[from] WriteError),
    #[error("storage error: {0}")]
    Storage(#[from] std::io::Error),
}

/// Read consistency a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadConsistency {
    /// Serve from the local state machine (the default, like Nacos and Consul's default mode).
    #[default]
    Local,
    /// Read-index through the leader, then read locally.
    Linearizable,
}
