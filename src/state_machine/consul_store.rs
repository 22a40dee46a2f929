//! Apply and reads of Consul KV, sessions and events.

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::Change;
use super::consul::ConsulCmd;
use super::ApplyCtx;
use super::StoreResult;

pub fn apply(_db: &DB, _b: &mut WriteBatch, _ctx: &ApplyCtx, cmd: &ConsulCmd) -> StoreResult<(Applied, Vec<Change>)> {
    match *cmd {}
}
