//! Pure apply tests: committed entries in, state and replies out, on a throwaway RocksDB.

use openraft::impls::leader_id_adv::LeaderId;
use openraft::EntryPayload;

use super::apply::apply_entry;
use super::apply::changes_since;
use super::command::*;
use super::config_store;
use super::schema;
use super::AppliedState;
use crate::raft::types::Entry;
use crate::raft::types::LogId;

fn db() -> (tempfile::TempDir, rocksdb::DB) {
    let dir = tempfile::tempdir().unwrap();
    let db = super::open_db(&dir.path().join("sm")).unwrap();
    (dir, db)
}

fn key(d: &str) -> ConfigKey {
    ConfigKey { namespace: "public".into(), group: "DEFAULT_GROUP".into(), data_id: d.into() }
}

fn publish(d: &str, content: &str, cas: Option<&str>) -> Command {
    Command::Config(ConfigCmd::Publish(Box::new(ConfigPublish {
        key: key(d),
        content: content.into(),
        md5: format!("{:x}", md5::compute(content)),
        meta: ConfigMeta { config_type: "text".into(), src_ip: "10.0.0.1".into(), ..Default::default() },
        cas_md5: cas.map(str::to_string),
    })))
}

fn entry(index: u64, time_ms: u64, request_id: Option<u128>, cmd: Command) -> Entry {
    Entry {
        log_id: LogId::new(LeaderId { term: 1, node_id: 1 }, index),
        payload: EntryPayload::Normal(LogEntry { time_ms, request_id, cmd }),
    }
}

#[test]
fn publish_stamps_leader_time_and_index_and_records_applied_id_in_the_same_batch() {
    let (_d, db) = db();
    let mut st = AppliedState::default();
    let (a, changes) = apply_entry(&db, &entry(1, 1000, Some(7), publish("a", "x", None)), &mut st).unwrap();
    assert_eq!(a, Applied::Ok { index: 1 });
    assert_eq!(changes.len(), 1);
    let item = config_store::get(&db, &key("a")).unwrap().unwrap();
    assert_eq!((item.create_time_ms, item.modify_time_ms, item.create_index, item.modify_index), (1000, 1000, 1, 1));
    apply_entry(&db, &entry(2, 2000, Some(8), publish("a", "y", None)), &mut st).unwrap();
    let item = config_store::get(&db, &key("a")).unwrap().unwrap();
    assert_eq!((item.create_time_ms, item.modify_time_ms, item.modify_index), (1000, 2000, 2));
    let stored = super::read_applied_state(&db).unwrap();
    assert_eq!(stored.last_applied.map(|l| l.index), Some(2));
}

#[test]
fn cas_mismatch_and_remove_of_missing_are_values_and_write_nothing() {
    let (_d, db) = db();
    let mut st = AppliedState::default();
    apply_entry(&db, &entry(1, 1, None, publish("a", "x", None)), &mut st).unwrap();
    let (a, changes) = apply_entry(&db, &entry(2, 2, None, publish("a", "z", Some("bad"))), &mut st).unwrap();
    assert_eq!(a, Applied::CasMismatch);
    assert!(changes.is_empty());
    assert_eq!(config_store::get(&db, &key("a")).unwrap().unwrap().content, "x");
    let good = format!("{:x}", md5::compute("x"));
    let (a, _) = apply_entry(&db, &entry(3, 3, None, publish("a", "z", Some(&good))), &mut st).unwrap();
    assert_eq!(a, Applied::Ok { index: 3 });
    let rm = Command::Config(ConfigCmd::Remove { key: key("nope"), src_user: String::new(), src_ip: String::new() });
    let (a, _) = apply_entry(&db, &entry(4, 4, None, rm), &mut st).unwrap();
    assert_eq!(a, Applied::NotFound);
}

#[test]
fn a_retried_request_is_applied_once_and_gets_the_first_reply() {
    let (_d, db) = db();
    let mut st = AppliedState::default();
    let (first, _) = apply_entry(&db, &entry(1, 1, Some(42), publish("a", "x", None)), &mut st).unwrap();
    apply_entry(&db, &entry(2, 2, None, publish("a", "changed", None)), &mut st).unwrap();
    // The retry of request 42 arrives later with the same content: no effect, same reply.
    let (again, changes) = apply_entry(&db, &entry(3, 3, Some(42), publish("a", "x", None)), &mut st).unwrap();
    assert_eq!(again, first);
    assert!(changes.is_empty());
    assert_eq!(config_store::get(&db, &key("a")).unwrap().unwrap().content, "changed");
}

#[test]
fn restore_replaces_data_and_change_log_resumes_from_a_cursor() {
    let (_d, db) = db();
    let mut st = AppliedState::default();
    apply_entry(&db, &entry(1, 1, None, publish("a", "x", None)), &mut st).unwrap();
    apply_entry(&db, &entry(2, 2, None, publish("b", "y", None)), &mut st).unwrap();
    let cf_id = schema::ALL_CFS.iter().position(|n| *n == schema::CF_CONFIG).unwrap() as u8;
    let kept = config_store::get(&db, &key("b")).unwrap().unwrap();
    let records = vec![(cf_id, schema::config_key("public", "DEFAULT_GROUP", "b"), schema::encode(&kept))];
    let restore = Command::Sys(SysCmd::Restore { source_cluster_id: "c".into(), records });
    let (_, changes) = apply_entry(&db, &entry(3, 3, None, restore), &mut st).unwrap();
    assert_eq!(changes, vec![Change::Reset]);
    assert!(config_store::get(&db, &key("a")).unwrap().is_none());
    assert_eq!(config_store::get(&db, &key("b")).unwrap().unwrap().content, "y");
    let all = changes_since(&db, 0, 100).unwrap().unwrap();
    assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2, 3]);
    let tail = changes_since(&db, 2, 100).unwrap().unwrap();
    assert_eq!(tail.len(), 2);
}

#[test]
fn replicas_applying_the_same_entries_reach_the_same_bytes() {
    let (_d1, a) = db();
    let (_d2, b) = db();
    let entries: Vec<Entry> = (1..=50)
        .map(|i| entry(i, 1000 + i, Some(i as u128), publish(&format!("k{}", i % 7), &format!("v{i}"), None)))
        .collect();
    for db in [&a, &b] {
        let mut st = AppliedState::default();
        for e in &entries {
            apply_entry(db, e, &mut st).unwrap();
        }
    }
    type Kv = (Box<[u8]>, Box<[u8]>);
    let dump = |db: &rocksdb::DB| -> Vec<Kv> {
        schema::ALL_CFS
            .iter()
            .flat_map(|n| db.iterator_cf(db.cf_handle(n).unwrap(), rocksdb::IteratorMode::Start).map(|r| r.unwrap()))
            .collect()
    };
    assert_eq!(dump(&a), dump(&b));
}

#[test]
fn md5_index_follows_applied_changes_and_rebuilds_on_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::StateMachineStore::open(dir.path()).unwrap();
    let db = store.db();
    let mut st = AppliedState::default();
    let (_, changes) = apply_entry(&db, &entry(1, 10, None, publish("a", "x", None)), &mut st).unwrap();
    store.publish_changes(1, changes).unwrap();
    assert_eq!(store.config_md5(&key("a")), Some(format!("{:x}", md5::compute("x"))));
    let remove = Command::Config(ConfigCmd::Remove { key: key("a"), src_user: String::new(), src_ip: String::new() });
    let (_, changes) = apply_entry(&db, &entry(2, 11, None, remove), &mut st).unwrap();
    store.publish_changes(2, changes).unwrap();
    assert_eq!(store.config_md5(&key("a")), None);
    // Written behind the index's back (as a restore does), then a Reset: the index is rebuilt.
    let (_, _) = apply_entry(&db, &entry(3, 12, None, publish("b", "y", None)), &mut st).unwrap();
    assert_eq!(store.config_md5(&key("b")), None);
    store.publish_changes(3, vec![Change::Reset]).unwrap();
    assert_eq!(store.config_md5(&key("b")), Some(format!("{:x}", md5::compute("y"))));
    drop(db);
    drop(store);
    let reopened = super::StateMachineStore::open(dir.path()).unwrap();
    // Built when the store opens, from the md5 prefix of each stored config alone.
    assert_eq!(reopened.config_md5(&key("b")), Some(format!("{:x}", md5::compute("y"))));
    assert_eq!(reopened.config_md5(&key("a")), None);
}

#[test]
fn beta_versions_live_beside_the_config_and_steer_the_md5_a_client_sees() {
    let dir = tempfile::tempdir().unwrap();
    let store = super::StateMachineStore::open(dir.path()).unwrap();
    let db = store.db();
    let mut st = AppliedState::default();
    let (_, ch) = apply_entry(&db, &entry(1, 10, None, publish("a", "normal", None)), &mut st).unwrap();
    store.publish_changes(1, ch).unwrap();
    let Command::Config(ConfigCmd::Publish(p)) = publish("a", "beta", None) else { unreachable!() };
    let beta = Command::Config(ConfigCmd::PublishBeta { publish: p, beta_ips: "10.0.0.9".into() });
    let (applied, ch) = apply_entry(&db, &entry(2, 11, None, beta), &mut st).unwrap();
    assert_eq!(applied, Applied::Ok { index: 2 });
    store.publish_changes(2, ch).unwrap();
    let (n, b) = (format!("{:x}", md5::compute("normal")), format!("{:x}", md5::compute("beta")));
    assert_eq!(
        config_store::get(&db, &key("a")).unwrap().unwrap().content,
        "normal",
        "the normal version is untouched"
    );
    assert_eq!(store.config_md5_for(&key("a"), "10.0.0.9"), Some(b.clone()));
    assert_eq!(store.config_md5_for(&key("a"), "10.0.0.8"), Some(n.clone()));
    assert_eq!(store.config_md5(&key("a")), Some(n.clone()));
    let stop = Command::Config(ConfigCmd::RemoveBeta { key: key("a") });
    let (_, ch) = apply_entry(&db, &entry(3, 12, None, stop.clone()), &mut st).unwrap();
    store.publish_changes(3, ch).unwrap();
    assert_eq!(store.config_md5_for(&key("a"), "10.0.0.9"), Some(n));
    assert!(config_store::get_beta(&db, &key("a")).unwrap().is_none());
    let (again, _) = apply_entry(&db, &entry(4, 13, None, stop), &mut st).unwrap();
    assert_eq!(again, Applied::NotFound);
}
