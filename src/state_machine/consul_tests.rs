//! Pure apply tests of the Consul commands: KV writes and their indexes, tombstones, locks and
//! lock-delay, session invalidation, all-or-nothing transactions and the event buffer.

use super::command::*;
use super::consul::*;
use super::consul_store;
use super::tables::Table;

use super::test_sm::TestSm as Sm;

impl Sm {
    fn consul(&mut self, cmd: ConsulCmd) -> (Applied, Vec<Change>) {
        self.entry(Command::Consul(cmd))
    }

    fn kv(&self, key: &str) -> Option<KvEntry> {
        consul_store::kv_get(&self.db, key).unwrap()
    }

    fn kv_put(&mut self, key: &str, value: &str, op: KvSetOp) -> Applied {
        self.consul(ConsulCmd::KvSet { key: key.into(), value: value.as_bytes().to_vec(), flags: 0, op }).0
    }

    fn session(&mut self, id: &str, behavior: Behavior, lock_delay_s: u64) {
        let s = SessionItem {
            id: id.into(),
            behavior,
            lock_delay_ns: lock_delay_s * 1_000_000_000,
            node_checks: vec!["serfHealth".into()],
            ..Default::default()
        };
        assert_eq!(self.consul(ConsulCmd::SessionCreate(Box::new(s))).0, Applied::Ok { index: self.index });
    }

    fn txn(&mut self, ops: Vec<TxnOp>) -> TxnReply {
        match self.consul(ConsulCmd::Txn { ops }).0 {
            Applied::Consul(r) => match *r {
                ConsulReply::Txn(t) => t,
            },
            other => panic!("not a txn reply: {other:?}"),
        }
    }
}

fn op(verb: TxnVerb, key: &str, value: &str, index: u64) -> TxnOp {
    TxnOp { verb, key: key.into(), value: value.as_bytes().to_vec(), flags: 0, index, session: String::new() }
}

fn kv_changed(changes: &[Change]) -> bool {
    changes.contains(&Change::ConsulTable { table: Table::Kv })
}

#[test]
fn put_stamps_indexes_and_an_identical_put_changes_nothing() {
    let mut sm = Sm::new();
    sm.kv_put("a", "1", KvSetOp::Plain);
    sm.kv_put("a", "2", KvSetOp::Plain);
    let e = sm.kv("a").unwrap();
    assert_eq!((e.create_index, e.modify_index, e.value.as_slice()), (1, 2, b"2".as_slice()));
    let (a, changes) =
        sm.consul(ConsulCmd::KvSet { key: "a".into(), value: b"2".to_vec(), flags: 0, op: KvSetOp::Plain });
    assert_eq!(a, Applied::Ok { index: 3 });
    assert!(changes.is_empty(), "an idempotent PUT must not wake watchers: {changes:?}");
    assert_eq!(sm.kv("a").unwrap().modify_index, 2);
    sm.consul(ConsulCmd::KvSet { key: "a".into(), value: b"2".to_vec(), flags: u64::MAX, op: KvSetOp::Plain });
    assert_eq!(sm.kv("a").unwrap().flags, u64::MAX);
}

#[test]
fn cas_creates_only_when_absent_and_updates_only_at_the_index() {
    let mut sm = Sm::new();
    assert_eq!(sm.kv_put("k", "x", KvSetOp::Cas(0)), Applied::Ok { index: 1 });
    assert_eq!(sm.kv_put("k", "y", KvSetOp::Cas(0)), Applied::CasMismatch);
    assert_eq!(sm.kv_put("k", "y", KvSetOp::Cas(7)), Applied::CasMismatch);
    assert_eq!(sm.kv_put("k", "y", KvSetOp::Cas(1)), Applied::Ok { index: 4 });
    assert_eq!(sm.kv_put("missing", "y", KvSetOp::Cas(4)), Applied::CasMismatch);
    assert!(sm.kv("missing").is_none());
    // Delete-cas: stale index refused; a missing key "succeeds" (Consul's quirk).
    let del = |index| ConsulCmd::KvDelete { key: "k".into(), op: KvDeleteOp::Cas(index) };
    assert_eq!(sm.consul(del(1)).0, Applied::CasMismatch);
    assert_eq!(sm.consul(del(4)).0, Applied::Ok { index: 7 });
    assert!(sm.kv("k").is_none());
    assert_eq!(sm.consul(del(4)).0, Applied::Ok { index: 8 });
}

#[test]
fn deletes_leave_tombstones_so_a_prefix_index_rises() {
    let mut sm = Sm::new();
    sm.kv_put("app/a", "1", KvSetOp::Plain);
    sm.kv_put("app/b", "1", KvSetOp::Plain);
    sm.kv_put("other", "1", KvSetOp::Plain);
    assert_eq!(consul_store::kv_list(&sm.db, "app/").unwrap().1, 2);
    let (_, changes) = sm.consul(ConsulCmd::KvDelete { key: "app/b".into(), op: KvDeleteOp::Single });
    assert!(kv_changed(&changes));
    let (entries, index) = consul_store::kv_list(&sm.db, "app/").unwrap();
    assert_eq!((entries.len(), index), (1, 4), "the delete must raise the prefix index");
    // Deleting what does not exist changes nothing.
    let (_, changes) = sm.consul(ConsulCmd::KvDelete { key: "app/zzz".into(), op: KvDeleteOp::Single });
    assert!(changes.is_empty());
    sm.consul(ConsulCmd::KvDelete { key: "app/".into(), op: KvDeleteOp::Recurse });
    let (entries, index) = consul_store::kv_list(&sm.db, "app/").unwrap();
    assert_eq!((entries.len(), index), (0, 6));
    assert!(sm.kv("other").is_some(), "recurse deletes only the prefix");
    // Re-creating a key: the index keeps rising.
    sm.kv_put("app/a", "2", KvSetOp::Plain);
    assert_eq!(consul_store::kv_list(&sm.db, "app/").unwrap().1, 7);
}

#[test]
fn acquire_and_release_follow_consuls_lock_rules() {
    let mut sm = Sm::new();
    assert!(
        matches!(sm.kv_put("lock", "v", KvSetOp::Acquire("nope".into())), Applied::Rejected { ref reason } if reason == "invalid session \"nope\"")
    );
    assert!(sm.kv("lock").is_none(), "a refused acquire stores nothing");
    sm.session("s1", Behavior::Release, 0);
    sm.session("s2", Behavior::Release, 0);
    assert_eq!(sm.kv_put("lock", "v1", KvSetOp::Acquire("s1".into())), Applied::Ok { index: 4 });
    let e = sm.kv("lock").unwrap();
    assert_eq!((e.session.as_deref(), e.lock_index), (Some("s1"), 1));
    // Re-acquire by the holder updates the value, not the lock index.
    sm.kv_put("lock", "v2", KvSetOp::Acquire("s1".into()));
    assert_eq!((sm.kv("lock").unwrap().lock_index, sm.kv("lock").unwrap().value), (1, b"v2".to_vec()));
    assert_eq!(sm.kv_put("lock", "x", KvSetOp::Acquire("s2".into())), Applied::CasMismatch);
    assert_eq!(sm.kv_put("lock", "x", KvSetOp::Release("s2".into())), Applied::CasMismatch);
    // A plain PUT keeps the (advisory) lock.
    sm.kv_put("lock", "v3", KvSetOp::Plain);
    assert_eq!(sm.kv("lock").unwrap().session.as_deref(), Some("s1"));
    // Release writes the body and keeps the lock index; no lock-delay after a release.
    assert_eq!(sm.kv_put("lock", "", KvSetOp::Release("s1".into())), Applied::Ok { index: 9 });
    let e = sm.kv("lock").unwrap();
    assert_eq!((e.session, e.lock_index, e.value.is_empty()), (None, 1, true));
    assert_eq!(sm.kv_put("lock", "x", KvSetOp::Acquire("s2".into())), Applied::Ok { index: 10 });
    assert_eq!(sm.kv("lock").unwrap().lock_index, 2);
}

#[test]
fn invalidation_releases_with_lock_delay_or_deletes() {
    let mut sm = Sm::new();
    sm.session("rel", Behavior::Release, 5);
    sm.session("del", Behavior::Delete, 5);
    sm.session("other", Behavior::Release, 0);
    sm.kv_put("a", "1", KvSetOp::Acquire("rel".into()));
    sm.kv_put("b", "1", KvSetOp::Acquire("del".into()));
    // Destroyed at index 6, time 6000 ms: lock-delay until 11000 ms.
    let (_, changes) = sm.consul(ConsulCmd::SessionDestroy { id: "rel".into() });
    assert!(kv_changed(&changes) && changes.contains(&Change::ConsulTable { table: Table::Sessions }));
    let a = sm.kv("a").unwrap();
    assert_eq!((a.session, a.value, a.modify_index), (None, b"1".to_vec(), 6));
    assert!(consul_store::session_get(&sm.db, "rel").unwrap().is_none());
    sm.consul(ConsulCmd::SessionExpire { ids: vec!["del".into(), "unknown".into()] });
    assert!(sm.kv("b").is_none(), "Behavior=delete deletes the held key");
    assert_eq!(consul_store::kv_list(&sm.db, "b").unwrap().1, 7);
    // Indexes 8..=10 run before 11000 ms: acquisitions fail, on the deleted key too.
    assert_eq!(sm.kv_put("a", "x", KvSetOp::Acquire("other".into())), Applied::CasMismatch);
    assert_eq!(sm.kv_put("b", "x", KvSetOp::Acquire("other".into())), Applied::CasMismatch);
    let r = sm.txn(vec![TxnOp { session: "other".into(), ..op(TxnVerb::Lock, "a", "x", 0) }]);
    assert_eq!(r.errors[0].what, "failed to lock key \"a\" due to lock delay");
    sm.kv_put("unrelated", "x", KvSetOp::Plain);
    assert_eq!(sm.kv_put("a", "x", KvSetOp::Acquire("other".into())), Applied::Ok { index: 12 });
    assert_eq!(sm.kv_put("b", "x", KvSetOp::Acquire("other".into())), Applied::Ok { index: 13 });
    assert_eq!(sm.consul(ConsulCmd::SessionDestroy { id: "rel".into() }).0, Applied::NotFound);
}

#[test]
fn a_failed_transaction_reports_every_error_and_writes_nothing() {
    let mut sm = Sm::new();
    sm.kv_put("x", "1", KvSetOp::Plain);
    let r = sm.txn(vec![
        op(TxnVerb::Set, "new", "v", 0),
        op(TxnVerb::Cas, "x", "v", 99),
        op(TxnVerb::Get, "missing", "", 0),
        op(TxnVerb::CheckNotExists, "new", "", 0),
    ]);
    assert!(r.results.is_empty());
    let errs: Vec<(usize, &str)> = r.errors.iter().map(|e| (e.op_index, e.what.as_str())).collect();
    assert_eq!(
        errs,
        vec![
            (1, "failed to set key \"x\", index is stale"),
            (2, "key \"missing\" doesn't exist"),
            (3, "key \"new\" exists"),
        ]
    );
    assert!(sm.kv("new").is_none(), "nothing of a failed transaction is written");
    assert_eq!(sm.kv("x").unwrap().modify_index, 1);
}

#[test]
fn a_transaction_applies_at_one_index_with_values_only_on_gets() {
    let mut sm = Sm::new();
    sm.kv_put("t/a", "1", KvSetOp::Plain);
    let r = sm.txn(vec![
        op(TxnVerb::Set, "t/b", "2", 0),
        op(TxnVerb::CheckIndex, "t/a", "", 1),
        op(TxnVerb::GetTree, "t/", "", 0),
        op(TxnVerb::Delete, "t/a", "", 0),
        op(TxnVerb::GetOrEmpty, "t/a", "", 0),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let got: Vec<(&str, &[u8], u64)> =
        r.results.iter().map(|x| (x.key.as_str(), x.entry.value.as_slice(), x.entry.modify_index)).collect();
    assert_eq!(
        got,
        vec![
            ("t/b", b"".as_slice(), 2),
            ("t/a", b"".as_slice(), 1),
            ("t/a", b"1".as_slice(), 1),
            ("t/b", b"2".as_slice(), 2),
            ("t/a", b"".as_slice(), 0),
        ]
    );
    assert!(sm.kv("t/a").is_none() && sm.kv("t/b").is_some());
    // A read-only evaluation writes nothing.
    let dry = consul_store::eval_txn(&sm.db, &[op(TxnVerb::Set, "t/c", "3", 0)], 0).unwrap();
    assert!(dry.errors.is_empty() && sm.kv("t/c").is_none());
}

#[test]
fn the_event_buffer_keeps_the_newest_256() {
    let mut sm = Sm::new();
    for i in 0..260 {
        let e = EventItem { id: format!("id-{i}"), name: "deploy".into(), ..Default::default() };
        let (_, changes) = sm.consul(ConsulCmd::EventFire(Box::new(e)));
        assert_eq!(changes, vec![Change::ConsulTable { table: Table::Events }]);
    }
    let list = consul_store::event_list(&sm.db).unwrap();
    assert_eq!(list.len(), 256);
    assert_eq!((list[0].id.as_str(), list[255].id.as_str(), list[255].ltime), ("id-4", "id-259", 260));
}

#[test]
fn sessions_are_listed_without_their_lock_records() {
    let mut sm = Sm::new();
    sm.session("s1", Behavior::Release, 0);
    assert_eq!(
        sm.consul(ConsulCmd::SessionCreate(Box::new(SessionItem { id: "s1".into(), ..Default::default() }))).0,
        Applied::AlreadyExists
    );
    sm.kv_put("k", "v", KvSetOp::Acquire("s1".into()));
    let list = consul_store::session_list(&sm.db).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id.as_str(), list[0].create_index), ("s1", 1));
    assert!(consul_store::session_get(&sm.db, "s1\0k").unwrap().is_none());
}
