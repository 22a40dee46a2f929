//! Consul KV, sessions, transactions and events: the replicated records and the commands.
//! Variants and fields are append-only (postcard encodes positions).

use serde::Deserialize;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsulCmd {}

impl ConsulCmd {
    pub fn name(&self) -> &'static str {
        match *self {}
    }
}
