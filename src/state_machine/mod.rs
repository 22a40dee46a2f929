//! The replicated state machine on RocksDB (`<data-dir>/sm/`). Deterministic: apply reads no
//! clock, draws no randomness and does no I/O but its own write batch.
//!
//! The database can be replaced wholesale by a snapshot install, so it lives behind a lock of
//! an `Arc<DB>`: readers clone the `Arc` (cheap) and keep a consistent handle for their read.

pub mod apply;
pub mod auth;
pub mod auth_store;
pub mod catalog;
pub mod catalog_store;
pub mod command;
pub mod config_store;
pub mod consul;
pub mod consul_store;
mod consul_txn;
pub mod namespace_store;
pub mod naming;
pub mod naming_index;
pub mod naming_store;
pub mod raft_impl;
pub mod schema;
pub mod snapshot;
pub mod tables;
pub mod watch;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod consul_tests;
#[cfg(test)]
mod naming_tests;
#[cfg(test)]
mod test_sm;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;

use rocksdb::ColumnFamilyDescriptor;
use rocksdb::Options;
use rocksdb::DB;

use crate::raft::types::LogId;
use crate::raft::types::StoredMembership;
use command::Change;
use command::ConfigKey;
use watch::ChangeHub;

pub type StoreResult<T> = Result<T, io::Error>;

pub(crate) fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> StoreResult<&'a rocksdb::ColumnFamily> {
    db.cf_handle(name).ok_or_else(|| io_err(format!("missing column family {name}")))
}

/// Context stamped into every applied entry: its log index and the leader's clock.
#[derive(Debug, Clone, Copy)]
pub struct ApplyCtx {
    pub index: u64,
    pub time_ms: u64,
}

/// Last applied log id and membership, cached in memory; the durable copy is in `sm_meta`,
/// written in the same batch as the data it describes.
#[derive(Debug, Clone, Default)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

pub(crate) struct Inner {
    /// `<data-dir>`.
    root: PathBuf,
    db: RwLock<Arc<DB>>,
    state: Mutex<AppliedState>,
    hub: ChangeHub,
    /// md5 of every stored config, so listener checks (long polls, gRPC batch listens) never
    /// touch RocksDB. Updated right after each apply batch is written and before the change is
    /// published; rebuilt on open and whenever the data is replaced wholesale.
    md5_index: RwLock<Md5Index>,
    /// The registry in memory, maintained like the md5 index.
    naming: RwLock<naming_index::NamingIndex>,
    /// Consul table indexes (in-memory copy), see `tables`.
    tables: tables::TableIndexes,
}

/// md5 of every config, and md5 plus IPs of every beta version.
#[derive(Default)]
struct Md5Index {
    normal: HashMap<ConfigKey, String>,
    beta: HashMap<ConfigKey, (String, String)>,
}

/// What `state_checksum` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StateChecksum {
    pub applied: u64,
    pub crc32: u32,
    /// Records in every data column family.
    pub records: u64,
    /// Stored configs.
    pub configs: u64,
}

fn md5_index_of(db: &DB) -> StoreResult<Md5Index> {
    let mut normal = HashMap::with_capacity(config_store::estimate_count(db)?);
    config_store::for_each_md5(db, |k, md5| {
        normal.insert(k, md5.to_owned());
    })?;
    Ok(Md5Index {
        normal,
        beta: config_store::list_betas(db)?.into_iter().map(|(k, b)| (k, (b.item.md5, b.beta_ips))).collect(),
    })
}

/// Handle to the state machine; clones share one database.
#[derive(Clone)]
pub struct StateMachineStore {
    inner: Arc<Inner>,
}

pub(crate) fn open_db(path: &Path) -> StoreResult<DB> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Rarely written families (auth, namespaces, ...) would otherwise pin old write-ahead logs
    // for the next start to replay; as in the Raft log's database.
    opts.set_max_total_wal_size(crate::raft::log_store::MAX_TOTAL_WAL_BYTES);
    let cfs = schema::ALL_CFS.iter().map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
    DB::open_cf_descriptors(&opts, path, cfs).map_err(io_err)
}

pub(crate) fn read_applied_state(db: &DB) -> StoreResult<AppliedState> {
    let meta = cf(db, schema::CF_META)?;
    let last_applied = match db.get_cf(meta, schema::META_LAST_APPLIED).map_err(io_err)? {
        Some(v) => schema::decode::<Option<LogId>>(&v)?,
        None => None,
    };
    let membership = match db.get_cf(meta, schema::META_MEMBERSHIP).map_err(io_err)? {
        Some(v) => schema::decode::<StoredMembership>(&v)?,
        None => StoredMembership::default(),
    };
    Ok(AppliedState { last_applied, membership })
}

impl StateMachineStore {
    /// Opens the current generation under `<data-dir>/sm/` (see `snapshot::current_generation`),
    /// removing leftovers of an interrupted snapshot install.
    pub fn open(root: &Path) -> StoreResult<StateMachineStore> {
        let db_path = snapshot::prepare_dirs(root)?;
        let db = open_db(&db_path)?;
        let state = read_applied_state(&db)?;
        let hub = ChangeHub::new(state.last_applied.as_ref().map(|l| l.index).unwrap_or(0));
        let md5_index = RwLock::new(md5_index_of(&db)?);
        let naming = RwLock::new(naming_index::NamingIndex::build(naming_store::load_all(&db)?));
        let tables = tables::TableIndexes::load(&db)?;
        Ok(StateMachineStore {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                db: RwLock::new(Arc::new(db)),
                state: Mutex::new(state),
                hub,
                md5_index,
                naming,
                tables,
            }),
        })
    }

    /// The md5 of a stored config, from memory.
    pub fn config_md5(&self, key: &ConfigKey) -> Option<String> {
        let g = self.inner.md5_index.read().unwrap_or_else(|e| e.into_inner());
        g.normal.get(key).cloned()
    }

    /// The md5 a client at `ip` should hold: the beta version's when it serves that IP.
    pub fn config_md5_for(&self, key: &ConfigKey, ip: &str) -> Option<String> {
        let g = self.inner.md5_index.read().unwrap_or_else(|e| e.into_inner());
        match g.beta.get(key) {
            Some((md5, ips)) if command::beta_ip_matches(ips, ip) => Some(md5.clone()),
            _ => g.normal.get(key).cloned(),
        }
    }

    /// The log index of the last change to a Consul table (0: never changed).
    pub fn table_index(&self, table: tables::Table) -> u64 {
        self.inner.tables.get(table)
    }

    /// A watch of a Consul table's index (blocking queries wait on it).
    pub fn table_watch(&self, table: tables::Table) -> tokio::sync::watch::Receiver<u64> {
        self.inner.tables.watch(table)
    }

    /// Reads the in-memory registry.
    pub fn naming<R>(&self, f: impl FnOnce(&naming_index::NamingIndex) -> R) -> R {
        f(&self.inner.naming.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Brings the in-memory indexes up to date with an applied entry's changes, then tells the
    /// hub.
    pub(crate) fn publish_changes(&self, index: u64, changes: Vec<Change>) -> StoreResult<()> {
        for c in &changes {
            match c {
                Change::ConsulTable { table } => self.inner.tables.set(*table, index),
                Change::NamingInstances { .. } | Change::NamingService { .. } => {
                    self.inner.tables.set(tables::Table::Catalog, index)
                }
                Change::Reset => self.inner.tables.reload(&self.db())?,
                _ => {}
            }
        }
        if changes.iter().any(Change::is_reset) {
            let all = naming_index::NamingIndex::build(naming_store::load_all(&self.db())?);
            *self.inner.naming.write().unwrap_or_else(|e| e.into_inner()) = all;
        } else if changes.iter().any(|c| c.service_key().is_some()) {
            let mut g = self.inner.naming.write().unwrap_or_else(|e| e.into_inner());
            for c in &changes {
                g.apply(c);
            }
        }
        if changes.iter().any(|c| c.config_key().is_some() || c.is_reset()) {
            let rebuilt =
                if changes.iter().any(|c| matches!(c, Change::Reset)) { Some(md5_index_of(&self.db())?) } else { None };
            let mut g = self.inner.md5_index.write().unwrap_or_else(|e| e.into_inner());
            match rebuilt {
                Some(all) => *g = all,
                None => {
                    for c in &changes {
                        match c {
                            Change::ConfigUpdated { key, md5 } => {
                                g.normal.insert(key.clone(), md5.clone());
                            }
                            Change::ConfigRemoved { key } => {
                                g.normal.remove(key);
                            }
                            Change::BetaUpdated { key, md5, beta_ips } => {
                                g.beta.insert(key.clone(), (md5.clone(), beta_ips.clone()));
                            }
                            Change::BetaRemoved { key } => {
                                g.beta.remove(key);
                            }
                            // Tagged versions are read on request; listeners are only woken.
                            Change::TagUpdated { .. } | Change::TagRemoved { .. } => {}
                            Change::Reset
                            | Change::NamingInstances { .. }
                            | Change::NamingService { .. }
                            | Change::ConsulTable { .. } => {}
                        }
                    }
                }
            }
        }
        self.hub().publish(index, changes);
        Ok(())
    }

    /// A consistent handle for reading; never blocks on apply.
    pub fn db(&self) -> Arc<DB> {
        match self.inner.db.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn hub(&self) -> &ChangeHub {
        &self.inner.hub
    }

    pub fn applied_state(&self) -> AppliedState {
        match self.inner.state.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn cluster_id(&self) -> StoreResult<Option<String>> {
        let db = self.db();
        match db.get_cf(cf(&db, schema::CF_META)?, schema::META_CLUSTER_ID).map_err(io_err)? {
            Some(v) => Ok(Some(schema::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn set_state(&self, s: AppliedState) {
        match self.inner.state.lock() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    fn swap_db(&self, db: DB) -> Arc<DB> {
        let mut g = match self.inner.db.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        std::mem::replace(&mut *g, Arc::new(db))
    }

    /// Checksum of the domain data (not of node bookkeeping) with the applied index it was
    /// taken at, read from one RocksDB snapshot so the two agree.
    pub fn state_checksum(&self) -> StoreResult<StateChecksum> {
        let db = self.db();
        let snap = db.snapshot();
        let applied = match snap.get_cf(cf(&db, schema::CF_META)?, schema::META_LAST_APPLIED).map_err(io_err)? {
            Some(v) => schema::decode::<Option<LogId>>(&v)?.map(|l| l.index).unwrap_or(0),
            None => 0,
        };
        let mut h = crc32fast::Hasher::new();
        let mut count = 0u64;
        let mut configs = 0u64;
        for name in schema::DATA_CFS {
            let before = count;
            h.update(name.as_bytes());
            for item in snap.iterator_cf(cf(&db, name)?, rocksdb::IteratorMode::Start) {
                let (k, v) = item.map_err(io_err)?;
                h.update(&(k.len() as u32).to_be_bytes());
                h.update(&k);
                h.update(&(v.len() as u32).to_be_bytes());
                h.update(&v);
                count += 1;
            }
            if *name == schema::CF_CONFIG {
                configs = count - before;
            }
        }
        Ok(StateChecksum { applied, crc32: h.finalize(), records: count, configs })
    }
}
