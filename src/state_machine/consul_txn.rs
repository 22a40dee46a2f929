//! Consul transactions over the KV verbs (`/v1/txn`, §3.2 of the Consul API notes): every
//! operation is evaluated in order against one [`KvTx`], each seeing the earlier ones' writes,
//! and every failure is reported with its position. Whether anything is written is the caller's
//! decision (apply commits only a transaction without errors; a read-only evaluation never does).

use super::consul::KvEntry;
use super::consul::KvSetOp;
use super::consul::TxnError;
use super::consul::TxnOp;
use super::consul::TxnReply;
use super::consul::TxnResult;
use super::consul::TxnVerb;
use super::consul_store::KvTx;
use super::StoreResult;

type OpResult = Result<Vec<(String, KvEntry)>, String>;

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
