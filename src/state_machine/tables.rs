//! Consul's table indexes: for each table (KV, sessions, catalog, events), the log index of the
//! last applied change to it. Blocking queries compare against them before re-running a query,
//! and endpoints without a finer index report them (`X-Consul-Index`). The durable copy lives in
//! `sm_meta`, written in the batch of the change, so an index never goes back across restarts;
//! the in-memory copy is updated when the change is published.

use rocksdb::WriteBatch;
use rocksdb::DB;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::watch;

use super::schema;
use super::StoreResult;

/// A Consul table. Append-only (encoded in `Change::ConsulTable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Table {
    Kv,
    Sessions,
    /// Services, nodes and checks: every registry change, Nacos' included (one registry).
    Catalog,
    Events,
    /// Users, roles, permissions, ACL policies and tokens (Nacos' and Consul's security state).
    Acl,
}

impl Table {
    pub const ALL: [Table; 5] = [Table::Kv, Table::Sessions, Table::Catalog, Table::Events, Table::Acl];

    fn slot(self) -> usize {
        self as usize
    }
}

/// Records in `b` that `table` changed at `index`.
pub fn bump(db: &DB, b: &mut WriteBatch, table: Table, index: u64) -> StoreResult<()> {
    b.put_cf(super::cf(db, schema::CF_META)?, schema::META_TABLE_INDEX[table.slot()], schema::encode(&index));
    Ok(())
}

fn load(db: &DB, table: Table) -> StoreResult<u64> {
    match db
        .get_pinned_cf(super::cf(db, schema::CF_META)?, schema::META_TABLE_INDEX[table.slot()])
        .map_err(super::io_err)?
    {
        Some(v) => schema::decode(&v),
        None => Ok(0),
    }
}

/// The in-memory copy, one watch per table: a blocking query waits on its own table's watch, so
/// a write to another table (or to none) never wakes it.
pub struct TableIndexes([watch::Sender<u64>; 5]);

impl TableIndexes {
    pub fn load(db: &DB) -> StoreResult<TableIndexes> {
        let t = TableIndexes(std::array::from_fn(|_| watch::Sender::new(0)));
        t.reload(db)?;
        Ok(t)
    }

    /// Replaces every index with the stored one (after the data was replaced wholesale, when an
    /// index may go back: clients reset, as Consul documents).
    pub fn reload(&self, db: &DB) -> StoreResult<()> {
        for table in Table::ALL {
            self.0[table.slot()].send_replace(load(db, table)?);
        }
        Ok(())
    }

    pub fn get(&self, table: Table) -> u64 {
        *self.0[table.slot()].borrow()
    }

    /// Moves `table`'s index forward to `index`, waking its watchers.
    pub fn set(&self, table: Table, index: u64) {
        self.0[table.slot()].send_if_modified(|cur| {
            let moved = index > *cur;
            if moved {
                *cur = index;
            }
            moved
        });
    }

    /// A watch of `table`'s index.
    pub fn watch(&self, table: Table) -> watch::Receiver<u64> {
        self.0[table.slot()].subscribe()
    }
}
