//! Pure apply tests of the registry commands: entries in, records, replies and changes out, and
//! the in-memory index kept equal to what RocksDB holds.

use std::collections::BTreeMap;

use super::command::*;
use super::naming::*;
use super::naming_store;

use super::test_sm::TestSm as Sm;

impl Sm {
    fn naming(&mut self, cmd: NamingCmd) -> (Applied, Vec<Change>) {
        self.entry(Command::Naming(cmd))
    }

    /// Instance ids of a service, from RocksDB, checked against the in-memory index.
    fn ids(&self, s: &ServiceKey) -> Vec<String> {
        let stored = naming_store::load_all(&self.db).unwrap();
        let from_db: Vec<String> =
            stored.get(s).map(|(_, l)| l.iter().map(|i| i.id.clone()).collect()).unwrap_or_default();
        let from_mem: Vec<String> =
            self.mem.service(s).map(|v| v.instances.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(from_db, from_mem, "memory index diverged from RocksDB");
        assert_eq!(stored.contains_key(s), self.mem.service(s).is_some(), "service presence diverged");
        from_db
    }
}

fn svc(name: &str) -> ServiceKey {
    ServiceKey { namespace: "public".into(), group: "DEFAULT_GROUP".into(), name: name.into() }
}

fn conn(c: &str) -> Owner {
    Owner::Conn { node: 1, conn: c.into() }
}

fn inst(ip: &str, ephemeral: bool) -> InstanceItem {
    InstanceItem {
        id: format!("{ip}#8080#DEFAULT#DEFAULT_GROUP@@s"),
        ip: ip.into(),
        port: 8080,
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral,
        cluster: "DEFAULT".into(),
        metadata: BTreeMap::new(),
        owner: Owner::Beat,
        register_time_ms: 0,
    }
}

fn register(s: &ServiceKey, owner: Owner, ips: &[&str], replace: bool) -> NamingCmd {
    let ephemeral = owner != Owner::Persistent;
    NamingCmd::Register {
        service: s.clone(),
        owner,
        instances: ips.iter().map(|ip| inst(ip, ephemeral)).collect(),
        replace_owned: replace,
    }
}

#[test]
fn a_connection_holds_one_publish_record_per_service_and_batch_replaces_it() {
    let mut sm = Sm::new();
    let s = svc("s");
    sm.naming(register(&s, conn("c1"), &["10.0.0.1"], true));
    // A second register on the same connection replaces the first.
    sm.naming(register(&s, conn("c1"), &["10.0.0.2"], true));
    assert_eq!(sm.ids(&s), vec!["10.0.0.2#8080#DEFAULT#DEFAULT_GROUP@@s"]);
    // Another connection adds its own; a batch replaces c1's set with exactly the batch.
    sm.naming(register(&s, conn("c2"), &["10.0.0.3"], true));
    sm.naming(register(&s, conn("c1"), &["10.0.0.4", "10.0.0.5"], true));
    assert_eq!(sm.ids(&s).len(), 3);
    // Deregister ignores the address: it removes what the connection had.
    sm.naming(NamingCmd::DeregisterOwned { service: s.clone(), owner: conn("c1") });
    assert_eq!(sm.ids(&s), vec!["10.0.0.3#8080#DEFAULT#DEFAULT_GROUP@@s"]);
}

#[test]
fn expiring_an_owner_removes_everything_it_registered_across_services() {
    let mut sm = Sm::new();
    let (a, b) = (svc("a"), svc("b"));
    sm.naming(register(&a, conn("c1"), &["10.0.0.1"], true));
    sm.naming(register(&b, conn("c1"), &["10.0.0.1"], true));
    sm.naming(register(&b, conn("c2"), &["10.0.0.2"], true));
    let (applied, changes) = sm.naming(NamingCmd::ExpireOwners { owners: vec![conn("c1"), conn("gone")] });
    assert_eq!(applied, Applied::Ok { index: 4 });
    assert_eq!(changes.iter().filter(|c| matches!(c, Change::NamingInstances { .. })).count(), 2);
    assert!(sm.ids(&a).is_empty());
    assert_eq!(sm.ids(&b), vec!["10.0.0.2#8080#DEFAULT#DEFAULT_GROUP@@s"]);
    // The emptied service outlives its last instance until the leader's cleanup.
    assert!(sm.mem.service(&a).is_some());
    sm.naming(NamingCmd::RemoveEmptyServices { keys: vec![a.clone(), b.clone()] });
    assert!(sm.mem.service(&a).is_none() && sm.mem.service(&b).is_some());
    sm.ids(&a);
}

#[test]
fn re_registration_by_a_new_owner_survives_the_old_owners_expiry() {
    let mut sm = Sm::new();
    let s = svc("s");
    sm.naming(register(&s, conn("old"), &["10.0.0.1"], true));
    // The client reconnected elsewhere and registered the same instance again.
    sm.naming(register(&s, Owner::Conn { node: 2, conn: "new".into() }, &["10.0.0.1"], true));
    sm.naming(NamingCmd::ExpireOwners { owners: vec![conn("old")] });
    assert_eq!(sm.ids(&s).len(), 1);
    let owner = sm.mem.service(&s).unwrap().instances.values().next().unwrap().owner.clone();
    assert_eq!(owner, Owner::Conn { node: 2, conn: "new".into() });
}

#[test]
fn ephemeral_and_persistent_do_not_mix_in_one_service() {
    let mut sm = Sm::new();
    let s = svc("s");
    sm.naming(register(&s, Owner::Persistent, &["10.0.0.1"], false));
    let (a, changes) = sm.naming(register(&s, conn("c"), &["10.0.0.2"], true));
    assert!(matches!(a, Applied::Rejected { ref reason } if reason.contains("is persistent service")), "{a:?}");
    assert!(changes.is_empty());
    assert_eq!(sm.ids(&s).len(), 1);
    // Once empty, the service may change kind.
    sm.naming(NamingCmd::Remove { items: vec![(s.clone(), "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@s".into())] });
    let (a, _) = sm.naming(register(&s, conn("c"), &["10.0.0.2"], true));
    assert_eq!(a, Applied::Ok { index: 4 });
    assert!(sm.mem.service(&s).unwrap().item.ephemeral);
}

#[test]
fn health_transitions_and_updates_keep_owner_and_registration_time() {
    let mut sm = Sm::new();
    let s = svc("s");
    sm.naming(register(&s, Owner::Beat, &["10.0.0.1"], false));
    let id = "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@s".to_string();
    let (_, changes) = sm.naming(NamingCmd::SetHealth { items: vec![(s.clone(), id.clone(), false)] });
    assert_eq!(changes.len(), 1);
    // Setting the state it already has changes nothing.
    let (_, changes) = sm.naming(NamingCmd::SetHealth { items: vec![(s.clone(), id.clone(), false)] });
    assert!(changes.is_empty());
    let mut upd = inst("10.0.0.1", true);
    upd.weight = 3.0;
    upd.owner = Owner::Persistent;
    sm.naming(NamingCmd::UpdateInstance { service: s.clone(), instance: upd });
    let i = sm.mem.service(&s).unwrap().instances[&id].clone();
    assert_eq!((i.weight, i.owner, i.register_time_ms), (3.0, Owner::Beat, 1000));
    let (a, _) = sm.naming(NamingCmd::UpdateInstance { service: s.clone(), instance: inst("10.9.9.9", true) });
    assert_eq!(a, Applied::NotFound);
}

#[test]
fn service_api_rules() {
    let mut sm = Sm::new();
    let s = svc("s");
    let spec = ServiceSpec { protect_threshold: 0.5, ..Default::default() };
    let create = |m| NamingCmd::UpsertService { key: s.clone(), spec: spec.clone(), mode: m };
    assert_eq!(sm.naming(create(UpsertMode::Update)).0, Applied::NotFound);
    assert_eq!(sm.naming(create(UpsertMode::Create)).0, Applied::Ok { index: 2 });
    assert_eq!(sm.naming(create(UpsertMode::Create)).0, Applied::AlreadyExists);
    sm.naming(register(&s, Owner::Persistent, &["10.0.0.1"], false));
    let (a, _) = sm.naming(NamingCmd::RemoveService { key: s.clone() });
    assert!(matches!(a, Applied::Rejected { .. }));
    // An explicit service is never cleaned up for being empty.
    sm.naming(NamingCmd::Remove { items: vec![(s.clone(), "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@s".into())] });
    sm.naming(NamingCmd::RemoveEmptyServices { keys: vec![s.clone()] });
    assert_eq!(sm.mem.service(&s).unwrap().item.spec.protect_threshold, 0.5);
    assert_eq!(sm.naming(NamingCmd::RemoveService { key: s.clone() }).0, Applied::Ok { index: 8 });
    assert!(sm.mem.service(&s).is_none());
    sm.ids(&s);
}
