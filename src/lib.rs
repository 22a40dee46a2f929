//! Batata: one binary that replaces a Nacos cluster (config center + service registry) and
//! speaks the Consul HTTP API, from a single Raft-replicated store.
//!
//! # Layout
//! - [`settings`]: `conf/application.yml` + `BATATA_*` overrides, `cluster.conf`.
//! - [`raft`]: everything that names openraft — log store, network, forwarding, read-index,
//!   membership. Its front door is [`raft::RaftNode`].
//! - [`state_machine`]: the deterministic RocksDB state machine, its schema, snapshots and the
//!   change hub.
//! - [`domain`]: validation and business rules shared by every protocol adapter; builds
//!   `Command`s and reads the store. Adapters never touch RocksDB.
//! - [`http`], [`grpc`]: protocol adapters (parse, call the domain, shape the reply).
//! - [`app`]: wiring, startup and graceful shutdown.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod mysql_sync;
pub mod raft;
pub mod settings;
pub mod state_machine;

use std::time::SystemTime;
use std::time::UNIX_EPOCH;

/// Wall-clock milliseconds. Only proposers and liveness tasks read the clock; apply never does.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
