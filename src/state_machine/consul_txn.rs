//! One command's Consul KV and session reads and writes ([`KvTx`]), and transactions over the
//! KV verbs (`/v1/txn`).
//!
//! Reads see the command's own pending writes, and nothing reaches the batch until
//! [`KvTx::commit`]. That gives transactions their all-or-nothing rule for free (a failed
//! transaction is simply not committed; a read-only evaluation never is) and lets a session
//! invalidation release or delete many keys in one entry. Writes stamp the log index as
//! ModifyIndex, leave tombstones on delete, keep lock records per session, and bump the table
//! indexes of what they changed. Transaction operations run in order, each seeing the earlier
//! ones' writes, and every failure is reported with its position.

use std::collections::BTreeMap;

use rocksdb::Direction;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Change;
use super::consul::*;
use super::consul_store::kv_get;
use super::consul_store::kv_scan;
use super::consul_store::session_get;
use super::consul_store::valid_session_id;
use super::schema;
use super::tables;
use super::tables::Table;
use super::ApplyCtx;
use super::StoreResult;

type OpResult = Result<Vec<(String, KvEntry)>, String>;

/// Why a KV write did not happen: `False` answers `false` over HTTP, `InvalidSession` is an
/// error (500); both carry the transaction error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KvFail {
    False(String),
    InvalidSession(String),
}

impl KvFail {
    pub(super) fn text(self) -> String {
        match self {
            KvFail::False(s) | KvFail::InvalidSession(s) => s,
        }
    }
}

/// One command's KV and session reads and writes, see the module doc.
pub(super) struct KvTx<'a> {
    db: &'a DB,
    ctx: ApplyCtx,
    /// Pending entries; `None`: deleted.
    kv: BTreeMap<String, Option<KvEntry>>,
    /// Pending tombstones (delete index, lock-delay deadline); `None`: removed (key re-created).
    tombstones: BTreeMap<String, Option<(u64, u64)>>,
    /// Pending lock records (session, key) -> held.
    locks: BTreeMap<(String, String), bool>,
    sessions: BTreeMap<String, Option<SessionItem>>,
}

impl<'a> KvTx<'a> {
    pub(super) fn new(db: &'a DB, ctx: ApplyCtx) -> KvTx<'a> {
        KvTx {
            db,
            ctx,
            kv: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            locks: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }

    pub(super) fn get(&self, key: &str) -> StoreResult<Option<KvEntry>> {
        match self.kv.get(key) {
            Some(e) => Ok(e.clone()),
            None => kv_get(self.db, key),
        }
    }

    /// (delete index, lock-delay deadline) of the key's tombstone, if it has one.
    fn tombstone(&self, key: &str) -> StoreResult<Option<(u64, u64)>> {
        if let Some(t) = self.tombstones.get(key) {
            return Ok(*t);
        }
        let cf = super::cf(self.db, schema::CF_KV_TOMBSTONE)?;
        let v = self.db.get_pinned_cf(cf, schema::kv_key(key)).map_err(super::io_err)?;
        Ok(v.and_then(|v| schema::parse_kv_tombstone(&v)))
    }

    /// The lock-delay deadline of `key`: the entry's, or its tombstone's when it is absent.
    fn delay_of(&self, key: &str, entry: Option<&KvEntry>) -> StoreResult<u64> {
        match entry {
            Some(e) => Ok(e.lock_delay_until_ms),
            None => Ok(self.tombstone(key)?.map(|t| t.1).unwrap_or(0)),
        }
    }

    /// Entries under `prefix` as this command leaves them, in key order.
    pub(super) fn list(&self, prefix: &str) -> StoreResult<Vec<(String, KvEntry)>> {
        let mut all: BTreeMap<String, KvEntry> = kv_scan(self.db, prefix, Default::default())?.into_iter().collect();
        for (k, e) in self.kv.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)) {
            match e {
                Some(e) => all.insert(k.clone(), e.clone()),
                None => all.remove(k),
            };
        }
        Ok(all.into_iter().collect())
    }

    pub(super) fn put_session(&mut self, s: SessionItem) {
        self.sessions.insert(s.id.clone(), Some(s));
    }

    pub(super) fn session(&self, id: &str) -> StoreResult<Option<SessionItem>> {
        match self.sessions.get(id) {
            Some(s) => Ok(s.clone()),
            None => session_get(self.db, id),
        }
    }

    /// Writes `key` with the given content; ModifyIndex is the entry's unless nothing changes
    /// (Consul skips such writes). The lock-delay deadline is kept, raised to `delay_until`.
    fn write(
        &mut self,
        key: &str,
        value: &[u8],
        flags: u64,
        session: Option<String>,
        lock_index: u64,
        delay_until: u64,
    ) -> StoreResult<KvEntry> {
        let old = self.get(key)?;
        let old_delay = self.delay_of(key, old.as_ref())?;
        let idx = self.ctx.index;
        let e = KvEntry {
            value: value.to_vec(),
            flags,
            session,
            lock_index,
            create_index: old.as_ref().map(|o| o.create_index).unwrap_or(idx),
            modify_index: idx,
            lock_delay_until_ms: old_delay.max(delay_until),
        };
        if let Some(o) = &old {
            if o.same_content(&e) && o.lock_delay_until_ms == e.lock_delay_until_ms {
                return Ok(o.clone());
            }
        }
        let old_session = old.as_ref().and_then(|o| o.session.clone());
        if old_session != e.session {
            if let Some(s) = old_session {
                self.locks.insert((s, key.to_string()), false);
            }
            if let Some(s) = &e.session {
                self.locks.insert((s.clone(), key.to_string()), true);
            }
        }
        // A re-created key's tombstone goes: its new ModifyIndex is higher anyway.
        if old.is_none() && self.tombstone(key)?.is_some() {
            self.tombstones.insert(key.to_string(), None);
        }
        self.kv.insert(key.to_string(), Some(e.clone()));
        Ok(e)
    }

    /// Deletes `key` (a no-op when absent), leaving a tombstone that keeps its lock-delay.
    pub(super) fn delete(&mut self, key: &str, delay_until: u64) -> StoreResult<bool> {
        let Some(old) = self.get(key)? else { return Ok(false) };
        if let Some(s) = old.session {
            self.locks.insert((s, key.to_string()), false);
        }
        let delay = old.lock_delay_until_ms.max(delay_until);
        let delay = if delay > self.ctx.time_ms { delay } else { 0 };
        self.kv.insert(key.to_string(), None);
        self.tombstones.insert(key.to_string(), Some((self.ctx.index, delay)));
        Ok(true)
    }

    /// Consul's quirk: a CAS delete of a missing key succeeds.
    pub(super) fn delete_cas(&mut self, key: &str, index: u64) -> StoreResult<bool> {
        match self.get(key)? {
            None => Ok(true),
            Some(e) if e.modify_index == index => self.delete(key, 0),
            Some(_) => Ok(false),
        }
    }

    pub(super) fn set(
        &mut self,
        key: &str,
        value: &[u8],
        flags: u64,
        op: &KvSetOp,
    ) -> StoreResult<Result<KvEntry, KvFail>> {
        let old = self.get(key)?;
        let (session, lock_index) = old.as_ref().map(|o| (o.session.clone(), o.lock_index)).unwrap_or((None, 0));
        match op {
            KvSetOp::Plain => {}
            KvSetOp::Cas(index) => {
                let fresh = match &old {
                    None => *index == 0,
                    Some(o) => *index != 0 && o.modify_index == *index,
                };
                if !fresh {
                    return Ok(Err(KvFail::False(format!("failed to set key {key:?}, index is stale"))));
                }
            }
            KvSetOp::Acquire(s) => {
                if self.delay_of(key, old.as_ref())? > self.ctx.time_ms {
                    return Ok(Err(KvFail::False(format!("failed to lock key {key:?} due to lock delay"))));
                }
                if !valid_session_id(s) || self.session(s)?.is_none() {
                    return Ok(Err(KvFail::InvalidSession(format!("invalid session {s:?}"))));
                }
                let lock_index = match session.as_deref() {
                    Some(h) if h == s => lock_index,
                    Some(_) => {
                        return Ok(Err(KvFail::False(format!("failed to lock key {key:?}, lock is already held"))))
                    }
                    None => lock_index + 1,
                };
                return self.write(key, value, flags, Some(s.clone()), lock_index, 0).map(Ok);
            }
            KvSetOp::Release(s) => {
                if session.as_deref() != Some(s.as_str()) {
                    let what = format!("failed to unlock key {key:?}, lock isn't held, or is held by another session");
                    return Ok(Err(KvFail::False(what)));
                }
                return self.write(key, value, flags, None, lock_index, 0).map(Ok);
            }
        }
        self.write(key, value, flags, session, lock_index, 0).map(Ok)
    }

    /// Invalidates a session: its keys are released or deleted (per Behavior) and enter its
    /// lock-delay. Returns whether the session existed.
    pub(super) fn invalidate(&mut self, id: &str) -> StoreResult<bool> {
        if !valid_session_id(id) {
            return Ok(false);
        }
        let Some(s) = self.session(id)? else { return Ok(false) };
        let delay_until = if s.lock_delay_ns > 0 { self.ctx.time_ms + s.lock_delay_ns / 1_000_000 } else { 0 };
        for key in self.session_keys(id)? {
            self.locks.insert((id.to_string(), key.clone()), false);
            let Some(e) = self.get(&key)? else { continue };
            if e.session.as_deref() != Some(id) {
                continue;
            }
            match s.behavior {
                Behavior::Release => {
                    self.write(&key, &e.value, e.flags, None, e.lock_index, delay_until)?;
                }
                Behavior::Delete => {
                    self.delete(&key, delay_until)?;
                }
            }
        }
        self.sessions.insert(id.to_string(), None);
        Ok(true)
    }

    /// Keys session `id` holds, as this command leaves them.
    fn session_keys(&self, id: &str) -> StoreResult<Vec<String>> {
        let prefix = schema::session_lock_prefix(id);
        let cf = super::cf(self.db, schema::CF_SESSION)?;
        let mut keys = std::collections::BTreeSet::new();
        for it in self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, _) = it.map_err(super::io_err)?;
            if !k.starts_with(&prefix) {
                break;
            }
            keys.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        for ((s, k), held) in &self.locks {
            if s == id {
                if *held {
                    keys.insert(k.clone());
                } else {
                    keys.remove(k);
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// Writes the pending records into `b`, bumps the changed tables, returns the changes.
    pub(super) fn commit(self, b: &mut WriteBatch) -> StoreResult<Vec<Change>> {
        let db = self.db;
        let (kv_cf, tomb_cf, sess_cf) = (
            super::cf(db, schema::CF_KV)?,
            super::cf(db, schema::CF_KV_TOMBSTONE)?,
            super::cf(db, schema::CF_SESSION)?,
        );
        let mut changes = Vec::new();
        for (k, e) in &self.kv {
            match e {
                Some(e) => b.put_cf(kv_cf, schema::kv_key(k), schema::encode(e)),
                None => b.delete_cf(kv_cf, schema::kv_key(k)),
            }
        }
        for (k, t) in &self.tombstones {
            match t {
                Some((index, delay)) => {
                    b.put_cf(tomb_cf, schema::kv_key(k), schema::kv_tombstone_value(*index, *delay))
                }
                None => b.delete_cf(tomb_cf, schema::kv_key(k)),
            }
        }
        if !self.kv.is_empty() {
            tables::bump(db, b, Table::Kv, self.ctx.index)?;
            changes.push(Change::ConsulTable { table: Table::Kv });
        }
        for ((s, k), held) in &self.locks {
            match held {
                true => b.put_cf(sess_cf, schema::session_lock_key(s, k), []),
                false => b.delete_cf(sess_cf, schema::session_lock_key(s, k)),
            }
        }
        for (id, s) in &self.sessions {
            match s {
                Some(s) => b.put_cf(sess_cf, schema::session_key(id), schema::encode(s)),
                None => b.delete_cf(sess_cf, schema::session_key(id)),
            }
        }
        if !self.sessions.is_empty() {
            tables::bump(db, b, Table::Sessions, self.ctx.index)?;
            changes.push(Change::ConsulTable { table: Table::Sessions });
        }
        Ok(changes)
    }
}

impl KvTx<'_> {
    /// Evaluates every operation in order (each sees the earlier ones' writes) and reports every
    /// failure; the caller commits only when there is none.
    pub(super) fn txn(&mut self, ops: &[TxnOp]) -> StoreResult<TxnReply> {
        let mut reply = TxnReply::default();
        for (i, op) in ops.iter().enumerate() {
            match self.txn_op(op)? {
                Ok(entries) => {
                    for (key, mut entry) in entries {
                        if !op.verb.returns_value() {
                            entry.value.clear();
                        }
                        reply.results.push(TxnResult { key, entry });
                    }
                }
                Err(what) => reply.errors.push(TxnError { op_index: i, what }),
            }
        }
        if !reply.errors.is_empty() {
            reply.results.clear();
        }
        Ok(reply)
    }

    fn txn_op(&mut self, op: &TxnOp) -> StoreResult<OpResult> {
        let key = op.key.as_str();
        let one = |e: KvEntry| Ok(vec![(key.to_string(), e)]);
        let set = |tx: &mut Self, kop: KvSetOp| -> StoreResult<OpResult> {
            Ok(match tx.set(key, &op.value, op.flags, &kop)? {
                Ok(e) => one(e),
                Err(f) => Err(f.text()),
            })
        };
        Ok(match op.verb {
            TxnVerb::Set => set(self, KvSetOp::Plain)?,
            TxnVerb::Cas => set(self, KvSetOp::Cas(op.index))?,
            TxnVerb::Lock => set(self, KvSetOp::Acquire(op.session.clone()))?,
            TxnVerb::Unlock => set(self, KvSetOp::Release(op.session.clone()))?,
            TxnVerb::Get => match self.get(key)? {
                Some(e) => one(e),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            TxnVerb::GetOrEmpty => one(self.get(key)?.unwrap_or_default()),
            TxnVerb::GetTree => Ok(self.list(key)?),
            TxnVerb::CheckIndex => match self.get(key)? {
                None => Err(format!("failed to check index, key {key:?} doesn't exist")),
                Some(e) if e.modify_index != op.index => Err(format!(
                    "failed index check for key {key:?}, current modify index {} != {}",
                    e.modify_index, op.index
                )),
                Some(e) => one(e),
            },
            TxnVerb::CheckSession => match self.get(key)? {
                None => Err(format!("failed to check session, key {key:?} doesn't exist")),
                Some(e) if e.session.as_deref().unwrap_or("") != op.session => Err(format!(
                    "failed session check for key {key:?}, current session {:?} != {:?}",
                    e.session.as_deref().unwrap_or(""),
                    op.session
                )),
                Some(e) => one(e),
            },
            TxnVerb::CheckNotExists => match self.get(key)? {
                Some(_) => Err(format!("key {key:?} exists")),
                None => Ok(vec![]),
            },
            TxnVerb::Delete => {
                self.delete(key, 0)?;
                Ok(vec![])
            }
            TxnVerb::DeleteTree => {
                for (k, _) in self.list(key)? {
                    self.delete(&k, 0)?;
                }
                Ok(vec![])
            }
            TxnVerb::DeleteCas => match self.delete_cas(key, op.index)? {
                true => Ok(vec![]),
                false => Err(format!("failed to delete key {key:?}, index is stale")),
            },
        })
    }
}
