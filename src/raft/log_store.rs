//! The Raft log and vote in one RocksDB instance (`<data-dir>/raft/`), so that vote and log
//! writes share one write-ahead log and can never be reordered on disk.
//!
//! Durability: `append` writes the batch without sync (entries are readable at once) and hands
//! the flush callback to a single flusher thread, which drains every pending callback, issues
//! one `flush_wal(true)` and then completes them in order. Concurrent appends therefore share
//! one fsync (group commit), and no append is acknowledged before it is on disk. `save_vote`
//! writes with sync, which also covers every earlier append in the same WAL.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::RaftLogStorage;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use rocksdb::ColumnFamilyDescriptor;
use rocksdb::Direction;
use rocksdb::IteratorMode;
use rocksdb::Options;
use rocksdb::WriteBatch;
use rocksdb::WriteOptions;
use rocksdb::DB;

use super::types::Entry;
use super::types::IOFlushed;
use super::types::LogId;
use super::types::LogState;
use super::types::TypeConfig;
use super::types::Vote;
use crate::state_machine::schema::decode;
use crate::state_machine::schema::encode;

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

/// Cap on the bytes one `limited_get_log_entries` returns, so an AppendEntries message stays
/// well under the gRPC message limit even with large entries.
const MAX_READ_BYTES: usize = 8 * 1024 * 1024;

/// Counters of the write path, exported on `/nacos/metrics`.
#[derive(Debug, Default)]
pub struct LogStoreStats {
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    pub appends: AtomicU64,
    pub entries_appended: AtomicU64,
    pub entries_synced: AtomicU64,
}

struct Flush {
    callback: IOFlushed,
    entries: u64,
}

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flusher: Arc<Flusher>,
    pub stats: Arc<LogStoreStats>,
}

/// The flusher thread's handle. When the last `LogStore` goes, the thread is stopped and
/// joined, so the database is closed by then: a process that exits right after dropping its
/// stores never races RocksDB's teardown against a flusher still holding the database.
struct Flusher {
    tx: Option<mpsc::Sender<Flush>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn idx_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_idx(key: &[u8]) -> io::Result<u64> {
    let arr: [u8; 8] = key.try_into().map_err(|_| io_err("corrupt log key"))?;
    Ok(u64::from_be_bytes(arr))
}

/// The write-ahead log total past which RocksDB flushes the column family pinning the oldest
/// log (see `LogStore::open`); the state machine's database uses it too.
pub(crate) const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;

impl LogStore {
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // The small `meta` family (vote, committed, purged) rarely fills its memtable, and a
        // memtable holding data pins every write-ahead log written since: a node restarted after
        // a million writes replayed 260 MB of them. Past this total RocksDB flushes the family
        // pinning the oldest log, so a restart replays at most this much.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        let cfs = [CF_LOGS, CF_META].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = Arc::new(DB::open_cf_descriptors(&opts, dir, cfs).map_err(io_err)?);
        let stats = Arc::new(LogStoreStats::default());
        let (tx, rx) = mpsc::channel::<Flush>();
        let fdb = db.clone();
        let fstats = stats.clone();
        let thread =
            std::thread::Builder::new().name("raft-log-flusher".into()).spawn(move || flusher_loop(fdb, rx, fstats))?;
        let flusher = Arc::new(Flusher { tx: Some(tx), thread: Some(thread) });
        Ok(LogStore { db, flusher, stats })
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| io_err(format!("missing column family {name}")))
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.db.get_cf(self.cf(CF_META)?, key).map_err(io_err)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// True when this node has never voted nor stored a log entry: a pristine node.
    pub fn is_pristine(&self) -> io::Result<bool> {
        let vote: Option<Vote> = self.get_meta(KEY_VOTE)?;
        let purged: Option<LogId> = self.get_meta(KEY_PURGED)?;
        let any_log = self.db.iterator_cf(self.cf(CF_LOGS)?, IteratorMode::Start).next().is_some();
        Ok(vote.is_none() && purged.is_none() && !any_log)
    }

    /// Offline restore support: make this (pristine) log look as if everything up to `last` had
    /// been applied and purged, with a committed vote of `last`'s leader.
    pub fn seed_from_snapshot(&self, last: &LogId, vote: &Vote) -> io::Result<()> {
        let mut b = WriteBatch::default();
        let meta = self.cf(CF_META)?;
        b.put_cf(meta, KEY_PURGED, encode(&Some(*last)));
        b.put_cf(meta, KEY_COMMITTED, encode(&Some(*last)));
        b.put_cf(meta, KEY_VOTE, encode(vote));
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(b, &wo).map_err(io_err)
    }
}

fn flusher_loop(db: Arc<DB>, rx: mpsc::Receiver<Flush>, stats: Arc<LogStoreStats>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let t = Instant::now();
        let res = db.flush_wal(true);
        stats.fsync_nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        let n: u64 = batch.iter().map(|f| f.entries).sum();
        stats.entries_synced.fetch_add(n, Ordering::Relaxed);
        for f in batch {
            let r = match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(io_err(format!("raft log fsync failed: {e}"))),
            };
            f.callback.io_completed(r);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        read_range(self, range, usize::MAX)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(KEY_VOTE)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry>, io::Error> {
        read_range(self, start..end, MAX_READ_BYTES)
    }
}

/// Reads a contiguous run of entries; a hole inside the range is corruption. Stops after
/// `max_bytes` but always returns at least one entry when one exists.
fn read_range<RB: RangeBounds<u64>>(store: &LogStore, range: RB, max_bytes: usize) -> io::Result<Vec<Entry>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let iter = store.db.iterator_cf(store.cf(CF_LOGS)?, IteratorMode::From(&idx_key(start), Direction::Forward));
    for item in iter {
        let (k, v) = item.map_err(io_err)?;
        let idx = key_idx(&k)?;
        if !range.contains(&idx) {
            break;
        }
        if let Some(prev) = out.last().map(|e: &Entry| e.log_id.index) {
            if idx != prev + 1 {
                return Err(io_err(format!("hole in raft log between {prev} and {idx}")));
            }
        }
        bytes += v.len();
        out.push(decode::<Entry>(&v)?);
        if bytes >= max_bytes {
            break;
        }
    }
    Ok(out)
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, io::Error> {
        let last_purged: Option<LogId> = self.get_meta::<Option<LogId>>(KEY_PURGED)?.flatten();
        let last = match self.db.iterator_cf(self.cf(CF_LOGS)?, IteratorMode::End).next() {
            Some(item) => {
                let (_, v) = item.map_err(io_err)?;
                Some(decode::<Entry>(&v)?.log_id)
            }
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let db = self.db.clone();
        let bytes = encode(vote);
        tokio::task::spawn_blocking(move || {
            let cf = db.cf_handle(CF_META).ok_or_else(|| io_err("missing meta cf"))?;
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            db.put_cf_opt(cf, KEY_VOTE, bytes, &wo).map_err(io_err)
        })
        .await
        .map_err(io_err)?
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // A hint for recovery: losing it only delays re-apply, so no sync.
        self.db.put_cf(self.cf(CF_META)?, KEY_COMMITTED, encode(&committed)).map_err(io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.cf(CF_LOGS)?;
        let mut batch = WriteBatch::default();
        let mut n = 0u64;
        for e in entries {
            batch.put_cf(cf, idx_key(e.log_id.index), encode(&e));
            n += 1;
        }
        self.db.write(batch).map_err(io_err)?;
        self.stats.appends.fetch_add(1, Ordering::Relaxed);
        self.stats.entries_appended.fetch_add(n, Ordering::Relaxed);
        let tx = self.flusher.tx.as_ref().ok_or_else(|| io_err("raft log flusher stopped"))?;
        tx.send(Flush { callback, entries: n }).map_err(|_| io_err("raft log flusher stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let mut b = WriteBatch::default();
        b.delete_range_cf(self.cf(CF_LOGS)?, idx_key(from), idx_key(u64::MAX));
        self.db.write(b).map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf(CF_META)?, KEY_PURGED, encode(&Some(log_id)));
        b.delete_range_cf(self.cf(CF_LOGS)?, idx_key(0), idx_key(log_id.index + 1));
        self.db.write(b).map_err(io_err)
    }
}
