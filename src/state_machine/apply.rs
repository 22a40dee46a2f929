//! The one apply dispatch: a committed entry in, one RocksDB write batch out. The applied log id
//! and membership go into the same batch as the data, so a crash can never separate them.

use openraft::EntryPayload;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::DB;
use serde::Deserialize;
use serde::Serialize;

use super::cf;
use super::command::Applied;
use super::command::Change;
use super::command::Command;
use super::command::LogEntry;
use super::command::SysCmd;
use super::config_store;
use super::io_err;
use super::namespace_store;
use super::schema;
use super::AppliedState;
use super::ApplyCtx;
use super::StoreResult;
use crate::raft::types::Entry;
use crate::raft::types::StoredMembership;

/// What the dedup table remembers of an applied request.
#[derive(Debug, Serialize, Deserialize)]
struct DedupRecord {
    index: u64,
    applied: Applied,
}

/// Applies one entry: returns the reply and the changes, having written the batch.
pub fn apply_entry(db: &DB, entry: &Entry, state: &mut AppliedState) -> StoreResult<(Applied, Vec<Change>)> {
    let index = entry.log_id.index;
    let mut b = WriteBatch::default();
    let (applied, changes) = match &entry.payload {
        EntryPayload::Blank => (Applied::None, vec![]),
        EntryPayload::Membership(m) => {
            state.membership = StoredMembership::new(Some(entry.log_id), m.clone());
            (Applied::None, vec![])
        }
        EntryPayload::Normal(le) => apply_normal(db, &mut b, index, le)?,
    };
    state.last_applied = Some(entry.log_id);
    let meta = cf(db, schema::CF_META)?;
    b.put_cf(meta, schema::META_LAST_APPLIED, schema::encode(&state.last_applied));
    b.put_cf(meta, schema::META_MEMBERSHIP, schema::encode(&state.membership));
    let changes_cf = cf(db, schema::CF_CHANGES)?;
    for (seq, c) in changes.iter().enumerate() {
        b.put_cf(changes_cf, schema::change_key(index, seq as u32), schema::encode(c));
    }
    if index.is_multiple_of(schema::TRIM_EVERY) {
        trim(db, &mut b, index)?;
    }
    db.write(b).map_err(io_err)?;
    Ok((applied, changes))
}

fn apply_normal(db: &DB, b: &mut WriteBatch, index: u64, le: &LogEntry) -> StoreResult<(Applied, Vec<Change>)> {
    let dedup = cf(db, schema::CF_DEDUP)?;
    if let Some(rid) = le.request_id {
        if let Some(v) = db.get_pinned_cf(dedup, rid.to_be_bytes()).map_err(io_err)? {
            // A retry of a request that was already applied: same reply, no second effect.
            let rec: DedupRecord = schema::decode(&v)?;
            return Ok((rec.applied, vec![]));
        }
    }
    let ctx = ApplyCtx { index, time_ms: le.time_ms };
    let (applied, changes) = match &le.cmd {
        Command::Sys(s) => apply_sys(db, b, &ctx, s)?,
        Command::Config(c) => config_store::apply(db, b, &ctx, c)?,
        Command::Namespace(c) => namespace_store::apply(db, b, &ctx, c)?,
        Command::Naming(c) => super::naming_store::apply(db, b, &ctx, c)?,
        Command::Consul(c) => super::consul_store::apply(db, b, &ctx, c)?,
        Command::Catalog(c) => super::catalog_store::apply(db, b, &ctx, c)?,
        Command::Auth(c) => super::auth_store::apply(db, b, &ctx, c)?,
    };
    if let Some(rid) = le.request_id {
        let rec = DedupRecord { index, applied: applied.clone() };
        b.put_cf(dedup, rid.to_be_bytes(), schema::encode(&rec));
        b.put_cf(cf(db, schema::CF_DEDUP_IDX)?, schema::dedup_idx_key(index, rid), []);
    }
    Ok((applied, changes))
}

fn apply_sys(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &SysCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let meta = cf(db, schema::CF_META)?;
    match cmd {
        SysCmd::InitCluster { cluster_id } => {
            if db.get_pinned_cf(meta, schema::META_CLUSTER_ID).map_err(io_err)?.is_none() {
                b.put_cf(meta, schema::META_CLUSTER_ID, schema::encode(cluster_id));
            }
            Ok((Applied::Ok { index: ctx.index }, vec![]))
        }
        SysCmd::Restore { records, .. } => {
            for name in schema::DATA_CFS {
                let h = cf(db, name)?;
                for item in db.iterator_cf(h, IteratorMode::Start) {
                    let (k, _) = item.map_err(io_err)?;
                    b.delete_cf(h, k);
                }
            }
            for (cf_id, k, v) in records {
                let Some(name) = schema::ALL_CFS.get(*cf_id as usize) else { continue };
                if schema::DATA_CFS.contains(name) {
                    b.put_cf(cf(db, name)?, k, v);
                }
            }
            Ok((Applied::Ok { index: ctx.index }, vec![Change::Reset]))
        }
        SysCmd::PurgeHistory { before_ms } => {
            config_store::purge_history(db, b, *before_ms)?;
            Ok((Applied::Ok { index: ctx.index }, vec![]))
        }
    }
}

/// Expires dedup records and change records that fell out of their windows. Runs at fixed log
/// positions, reading only replicated state, so every replica trims identically.
fn trim(db: &DB, b: &mut WriteBatch, index: u64) -> StoreResult<()> {
    if index > schema::DEDUP_WINDOW {
        let upto = index - schema::DEDUP_WINDOW;
        let idx_cf = cf(db, schema::CF_DEDUP_IDX)?;
        let dedup = cf(db, schema::CF_DEDUP)?;
        for item in db.iterator_cf(idx_cf, IteratorMode::Start) {
            let (k, _) = item.map_err(io_err)?;
            if k.len() != 24 || k[..8] >= upto.to_be_bytes()[..] {
                break;
            }
            b.delete_cf(dedup, &k[8..]);
            b.delete_cf(idx_cf, &k);
        }
    }
    if index > schema::CHANGES_WINDOW {
        let upto = index - schema::CHANGES_WINDOW;
        b.delete_range_cf(cf(db, schema::CF_CHANGES)?, schema::change_key(0, 0), schema::change_key(upto, 0));
        b.put_cf(cf(db, schema::CF_META)?, schema::META_CHANGES_TRIMMED, schema::encode(&upto));
    }
    Ok(())
}

/// Change records from `from_index` on, for an asynchronous consumer resuming from its cursor.
/// Returns `None` when `from_index` has already been trimmed (the consumer must resync).
pub fn changes_since(db: &DB, from_index: u64, limit: usize) -> StoreResult<Option<Vec<(u64, Change)>>> {
    let h = cf(db, schema::CF_CHANGES)?;
    let trimmed: u64 = match db.get_pinned_cf(cf(db, schema::CF_META)?, schema::META_CHANGES_TRIMMED).map_err(io_err)? {
        Some(v) => schema::decode(&v)?,
        None => 0,
    };
    if from_index < trimmed {
        return Ok(None);
    }
    let mut out = Vec::new();
    let start = schema::change_key(from_index, 0);
    for item in db.iterator_cf(h, IteratorMode::From(&start, rocksdb::Direction::Forward)) {
        let (k, v) = item.map_err(io_err)?;
        let idx = u64::from_be_bytes(k[..8].try_into().map_err(io_err)?);
        out.push((idx, schema::decode(&v)?));
        if out.len() >= limit {
            break;
        }
    }
    Ok(Some(out))
}
