//! Apply and reads of Consul KV, sessions and events. Every KV- or session-touching command
//! runs through one `KvTx` (`consul_txn`) and commits its pending writes into the batch, except
//! a failed transaction, whose writes are dropped; events are written directly.

use rocksdb::Direction;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::Change;
use super::consul::*;
use super::consul_txn::KvFail;
use super::consul_txn::KvTx;
use super::schema;
use super::tables;
use super::tables::Table;
use super::ApplyCtx;
use super::StoreResult;

/// Events kept (Consul's agent buffer holds the newest 256).
pub const MAX_EVENTS: usize = 256;

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &ConsulCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let mut tx = KvTx::new(db, *ctx);
    let applied = match cmd {
        ConsulCmd::KvSet { key, value, flags, op } => match tx.set(key, value, *flags, op)? {
            Ok(_) => Applied::Ok { index: ctx.index },
            Err(KvFail::False(_)) => Applied::CasMismatch,
            Err(KvFail::InvalidSession(reason)) => Applied::Rejected { reason },
        },
        ConsulCmd::KvDelete { key, op } => match op {
            KvDeleteOp::Single => {
                tx.delete(key, 0)?;
                Applied::Ok { index: ctx.index }
            }
            KvDeleteOp::Recurse => {
                for (k, _) in tx.list(key)? {
                    tx.delete(&k, 0)?;
                }
                Applied::Ok { index: ctx.index }
            }
            KvDeleteOp::Cas(index) => match tx.delete_cas(key, *index)? {
                true => Applied::Ok { index: ctx.index },
                false => Applied::CasMismatch,
            },
        },
        ConsulCmd::Txn { ops } => {
            let reply = tx.txn(ops)?;
            let failed = !reply.errors.is_empty();
            let applied = Applied::Consul(Box::new(ConsulReply::Txn(reply)));
            if failed {
                // All or nothing: the pending writes are dropped.
                return Ok((applied, vec![]));
            }
            applied
        }
        ConsulCmd::SessionCreate(s) => {
            if !valid_session_id(&s.id) {
                Applied::Rejected { reason: format!("invalid session id {:?}", s.id) }
            } else if tx.session(&s.id)?.is_some() {
                Applied::AlreadyExists
            } else {
                tx.put_session(SessionItem { create_index: ctx.index, modify_index: ctx.index, ..(**s).clone() });
                Applied::Ok { index: ctx.index }
            }
        }
        ConsulCmd::SessionDestroy { id } => match tx.invalidate(id)? {
            true => Applied::Ok { index: ctx.index },
            false => Applied::NotFound,
        },
        ConsulCmd::SessionExpire { ids } => {
            for id in ids {
                tx.invalidate(id)?;
            }
            Applied::Ok { index: ctx.index }
        }
        ConsulCmd::EventFire(e) => {
            fire_event(db, b, ctx, e)?;
            return Ok((Applied::Ok { index: ctx.index }, vec![Change::ConsulTable { table: Table::Events }]));
        }
    };
    let changes = tx.commit(b)?;
    Ok((applied, changes))
}

/// Session ids are proposer-drawn UUIDs; anything with the lock-record separator is not one.
pub(super) fn valid_session_id(id: &str) -> bool {
    !id.is_empty() && !id.as_bytes().contains(&schema::SEP)
}

fn fire_event(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, e: &EventItem) -> StoreResult<()> {
    let cf = super::cf(db, schema::CF_CONSUL_EVENT)?;
    let item = EventItem { ltime: ctx.index, ..e.clone() };
    b.put_cf(cf, schema::event_key(ctx.index), schema::encode(&item));
    let mut keys = Vec::new();
    for it in db.iterator_cf(cf, IteratorMode::Start) {
        keys.push(it.map_err(super::io_err)?.0);
    }
    // The new event is not in `keys` yet: keep MAX_EVENTS - 1 of the stored ones.
    let excess = (keys.len() + 1).saturating_sub(MAX_EVENTS);
    for k in keys.iter().take(excess) {
        b.delete_cf(cf, k);
    }
    tables::bump(db, b, Table::Events, ctx.index)
}

/// Evaluates a transaction against the current state without writing anything: read-only
/// transactions, and those refused before proposing, are served this way.
pub fn eval_txn(db: &DB, ops: &[TxnOp], time_ms: u64) -> StoreResult<TxnReply> {
    KvTx::new(db, ApplyCtx { index: 0, time_ms }).txn(ops)
}

pub fn kv_get(db: &DB, key: &str) -> StoreResult<Option<KvEntry>> {
    match db.get_pinned_cf(super::cf(db, schema::CF_KV)?, schema::kv_key(key)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

pub(super) fn kv_scan(db: &DB, prefix: &str, opts: rocksdb::ReadOptions) -> StoreResult<Vec<(String, KvEntry)>> {
    let cf = super::cf(db, schema::CF_KV)?;
    let mut out = Vec::new();
    for it in db.iterator_cf_opt(cf, opts, IteratorMode::From(prefix.as_bytes(), Direction::Forward)) {
        let (k, v) = it.map_err(super::io_err)?;
        if !k.starts_with(prefix.as_bytes()) {
            break;
        }
        out.push((String::from_utf8_lossy(&k).into_owned(), schema::decode(&v)?));
    }
    Ok(out)
}

/// Entries under `prefix` (byte prefix, key order) and the prefix's index: the highest
/// ModifyIndex among them and among the prefix's tombstones (0 when neither exists). Both come
/// from one RocksDB snapshot, so the index never covers a change the entries do not show.
pub fn kv_list(db: &DB, prefix: &str) -> StoreResult<(Vec<(String, KvEntry)>, u64)> {
    let snap = db.snapshot();
    let at_snapshot = || {
        let mut o = rocksdb::ReadOptions::default();
        o.set_snapshot(&snap);
        o
    };
    let entries = kv_scan(db, prefix, at_snapshot())?;
    let mut index = entries.iter().map(|(_, e)| e.modify_index).max().unwrap_or(0);
    let cf = super::cf(db, schema::CF_KV_TOMBSTONE)?;
    for it in db.iterator_cf_opt(cf, at_snapshot(), IteratorMode::From(prefix.as_bytes(), Direction::Forward)) {
        let (k, v) = it.map_err(super::io_err)?;
        if !k.starts_with(prefix.as_bytes()) {
            break;
        }
        index = index.max(schema::parse_kv_tombstone(&v).map(|t| t.0).unwrap_or(0));
    }
    Ok((entries, index))
}

pub fn session_get(db: &DB, id: &str) -> StoreResult<Option<SessionItem>> {
    if !valid_session_id(id) {
        return Ok(None);
    }
    match db.get_pinned_cf(super::cf(db, schema::CF_SESSION)?, schema::session_key(id)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every session, by id (lock records are skipped).
pub fn session_list(db: &DB) -> StoreResult<Vec<SessionItem>> {
    let mut out = Vec::new();
    for it in db.iterator_cf(super::cf(db, schema::CF_SESSION)?, IteratorMode::Start) {
        let (k, v) = it.map_err(super::io_err)?;
        if !k.contains(&schema::SEP) {
            out.push(schema::decode(&v)?);
        }
    }
    Ok(out)
}

/// Stored events, oldest first.
pub fn event_list(db: &DB) -> StoreResult<Vec<EventItem>> {
    let mut out = Vec::new();
    for it in db.iterator_cf(super::cf(db, schema::CF_CONSUL_EVENT)?, IteratorMode::Start) {
        out.push(schema::decode(&it.map_err(super::io_err)?.1)?);
    }
    Ok(out)
}
