//! Consul's table indexes: for each table (KV, sessions, catalog, events), the log index of the
//! last applied change to it. Blocking queries compare against them before re-running a query,
//! and endpoints without a finer index report them (`X-Consul-Index`). The durable copy lives in
//! `sm_meta`, written in the batch of the change, so an index never goes back across restarts;
//! the in-memory copy is updated when the change is published.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;
use rocksdb::DB;
use serde::Deserialize;
use serde::Serialize;

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
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Kv, Table::Sessions, Table::Catalog, Table::Events];

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

/// The in-memory copy.
#[derive(Default)]
pub struct TableIndexes([AtomicU64; 4]);

impl TableIndexes {
    pub fn load(db: &DB) -> StoreResult<TableIndexes> {
        let t = TableIndexes::default();
        t.reload(db)?;
        Ok(t)
    }

    pub fn reload(&self, db: &DB) -> StoreResult<()> {
        for table in Table::ALL {
            self.0[table.slot()].store(load(db, table)?, Ordering::Release);
        }
        Ok(())
    }

    pub fn get(&self, table: Table) -> u64 {
        self.0[table.slot()].load(Ordering::Acquire)
    }

    pub fn set(&self, table: Table, index: u64) {
        self.0[table.slot()].fetch_max(index, Ordering::AcqRel);
    }
}
