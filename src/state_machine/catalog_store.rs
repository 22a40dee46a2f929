//! Apply and reads of Consul catalog registrations and checks.

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::catalog::CatalogCmd;
use super::command::Applied;
use super::command::Change;
use super::ApplyCtx;
use super::StoreResult;

pub fn apply(_db: &DB, _b: &mut WriteBatch, _ctx: &ApplyCtx, cmd: &CatalogCmd) -> StoreResult<(Applied, Vec<Change>)> {
    match *cmd {}
}
