//! Pure apply tests of the Consul catalog commands: registrations become registry instances
//! (seen by the Nacos side through the same changes), check statuses drive `healthy` in the
//! same apply, and refused commands write nothing.

use std::collections::BTreeMap;

use super::catalog::*;
use super::catalog_store;
use super::command::*;
use super::naming::*;
use super::naming_store;
use super::tables;

use super::test_sm::TestSm as Sm;

impl Sm {
    fn catalog(&mut self, cmd: CatalogCmd) -> (Applied, Vec<Change>) {
        self.entry(Command::Catalog(cmd))
    }

    /// Instances of a service from RocksDB (checked against the memory index): id -> healthy.
    fn instances(&self, name: &str) -> BTreeMap<String, InstanceItem> {
        let stored = naming_store::load_all(&self.db).unwrap();
        let k = key(name);
        let from_db: BTreeMap<String, InstanceItem> =
            stored.get(&k).map(|(_, l)| l.iter().map(|i| (i.id.clone(), i.clone())).collect()).unwrap_or_default();
        let from_mem = self.mem.service(&k).map(|v| v.instances.clone()).unwrap_or_default();
        assert_eq!(from_db, from_mem, "memory index diverged from RocksDB");
        from_db
    }

    fn healthy(&self, name: &str, id: &str) -> bool {
        self.instances(name).get(id).unwrap_or_else(|| panic!("no instance {id}")).healthy
    }

    fn check(&self, node: &str, id: &str) -> Option<CheckItem> {
        catalog_store::get_check(&self.db, node, id).unwrap()
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey { namespace: "public".into(), group: "DEFAULT_GROUP".into(), name: name.into() }
}

fn node(name: &str) -> NodeItem {
    NodeItem { name: name.into(), address: "10.0.0.1".into(), ..Default::default() }
}

fn service(node: &str, name: &str, id: &str) -> ServiceReg {
    ServiceReg {
        key: key(name),
        service_id: id.into(),
        instance: InstanceItem {
            id: id.into(),
            ip: "10.0.0.1".into(),
            port: 8080,
            weight: 1.0,
            healthy: false,
            enabled: true,
            ephemeral: true,
            cluster: "DEFAULT".into(),
            metadata: BTreeMap::from([(META_TAGS.to_string(), "[\"v1\"]".to_string())]),
            owner: Owner::Consul { node: node.to_lowercase() },
            register_time_ms: 0,
        },
    }
}

fn check(id: &str, service_id: &str, status: &str) -> CheckItem {
    CheckItem {
        id: id.into(),
        name: id.into(),
        status: status.into(),
        service_id: service_id.into(),
        check_type: "ttl".into(),
        def: CheckDef { ttl_ms: 2000, ..Default::default() },
        ..Default::default()
    }
}

fn register(n: &str, svc: Option<ServiceReg>, checks: Vec<CheckItem>, keep: bool, replace: bool) -> CatalogCmd {
    CatalogCmd::Register(Box::new(Registration {
        node: node(n),
        skip_node_update: false,
        service: svc,
        checks,
        keep_status: keep,
        replace_checks: replace,
    }))
}

fn status(n: &str, id: &str, s: &str) -> CatalogCmd {
    CatalogCmd::SetStatus {
        items: vec![StatusUpdate { node: n.into(), check_id: id.into(), status: s.into(), output: String::new() }],
    }
}

#[test]
fn check_status_drives_the_registry_instance_in_the_same_apply() {
    let mut sm = Sm::new();
    let (a, changes) = sm.catalog(register(
        "N1",
        Some(service("N1", "web", "web1")),
        vec![check("service:web1", "web1", CRITICAL)],
        true,
        false,
    ));
    assert_eq!(a, Applied::Ok { index: 1 });
    assert!(changes.iter().any(|c| matches!(c, Change::NamingInstances { service, .. } if service.name == "web")));
    assert!(changes.contains(&Change::ConsulTable { table: tables::Table::Catalog }));
    assert!(!sm.healthy("web", "web1"), "a critical check makes the instance unhealthy");
    let c = sm.check("n1", "service:web1").unwrap();
    assert_eq!((c.node.as_str(), c.service_name.as_str(), c.create_index), ("N1", "web", 1));

    let (_, changes) = sm.catalog(status("N1", "service:web1", PASSING));
    assert!(sm.healthy("web", "web1"));
    assert!(changes.iter().any(|c| matches!(c, Change::NamingInstances { .. })), "Nacos subscribers are told");
    // An unchanged status writes nothing.
    assert_eq!(sm.catalog(status("n1", "service:web1", PASSING)).0, Applied::None);
    sm.catalog(status("N1", "service:web1", WARNING));
    assert!(sm.healthy("web", "web1"), "warning counts as healthy");
    // Only the check moved: the catalog index still moves.
    let (_, changes) = sm.catalog(status("N1", "service:web1", CRITICAL));
    assert!(!sm.healthy("web", "web1"));
    assert!(changes.contains(&Change::ConsulTable { table: tables::Table::Catalog }));
    assert_eq!(sm.check("N1", "service:web1").unwrap().modify_index, sm.index);
    // Unknown checks are skipped.
    assert_eq!(sm.catalog(status("N1", "nope", PASSING)).0, Applied::None);
}

#[test]
fn reregistration_keeps_status_and_replace_drops_other_checks() {
    let mut sm = Sm::new();
    let both = vec![check("a", "web1", CRITICAL), check("b", "web1", CRITICAL)];
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), both, true, false));
    sm.catalog(status("N1", "a", PASSING));
    sm.catalog(status("N1", "b", PASSING));
    assert!(sm.healthy("web", "web1"));
    // Agent re-registration: existing checks keep their status.
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), vec![check("a", "web1", CRITICAL)], true, false));
    assert_eq!(sm.check("N1", "a").unwrap().status, PASSING);
    assert!(sm.check("N1", "b").is_some(), "kept without replace-existing-checks");
    assert!(sm.healthy("web", "web1"));
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), vec![check("a", "web1", CRITICAL)], true, true));
    assert!(sm.check("N1", "b").is_none(), "dropped with replace-existing-checks");
    // Catalog semantics: the given status wins.
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), vec![check("a", "web1", CRITICAL)], false, false));
    assert!(!sm.healthy("web", "web1"));
}

#[test]
fn node_checks_cover_every_instance_of_the_node() {
    let mut sm = Sm::new();
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), vec![], true, false));
    sm.catalog(register("N1", Some(service("N1", "api", "api1")), vec![], true, false));
    assert!(sm.healthy("web", "web1") && sm.healthy("api", "api1"), "no check: healthy");
    sm.catalog(register("N1", None, vec![check("_node_maintenance", "", CRITICAL)], false, false));
    assert!(!sm.healthy("web", "web1") && !sm.healthy("api", "api1"));
    sm.catalog(CatalogCmd::Deregister {
        node: "n1".into(),
        service_id: None,
        check_id: Some("_node_maintenance".into()),
    });
    assert!(sm.healthy("web", "web1") && sm.healthy("api", "api1"));
}

#[test]
fn one_service_id_on_two_nodes_gives_two_instances() {
    let mut sm = Sm::new();
    sm.catalog(register("N1", Some(service("N1", "web", "web")), vec![], true, false));
    sm.catalog(register("N2", Some(service("N2", "web", "web")), vec![check("c", "web", CRITICAL)], true, false));
    let ids: Vec<String> = sm.instances("web").into_keys().collect();
    assert_eq!(ids, vec!["web".to_string(), "web@n2".to_string()]);
    let scoped = &sm.instances("web")["web@n2"];
    assert_eq!(scoped.metadata.get(META_ID).map(String::as_str), Some("web"));
    assert_eq!(catalog_store::service_id_of(scoped), "web");
    assert!(sm.healthy("web", "web") && !sm.healthy("web", "web@n2"), "each follows its own node's checks");
    // Re-registering finds the scoped instance again.
    sm.catalog(register("N2", Some(service("N2", "web", "web")), vec![], true, false));
    assert_eq!(sm.instances("web").len(), 2);
    sm.catalog(CatalogCmd::Deregister { node: "N1".into(), service_id: Some("web".into()), check_id: None });
    let ids: Vec<String> = sm.instances("web").into_keys().collect();
    assert_eq!(ids, vec!["web@n2".to_string()]);
}

#[test]
fn refused_registrations_write_nothing() {
    let mut sm = Sm::new();
    let (a, changes) = sm.catalog(register("N1", None, vec![check("c", "ghost", CRITICAL)], true, false));
    assert!(matches!(a, Applied::Rejected { ref reason } if reason.contains("\"ghost\" does not exist")), "{a:?}");
    assert!(changes.is_empty());
    assert!(sm.check("N1", "c").is_none() && catalog_store::get_node(&sm.db, "N1").unwrap().is_none());
    // A Nacos persistent service refuses Consul's (ephemeral) instances.
    let mut p = service("x", "db", "p1").instance;
    p.ephemeral = false;
    sm.entry(Command::Naming(NamingCmd::Register {
        service: key("db"),
        owner: Owner::Persistent,
        instances: vec![p],
        replace_owned: false,
    }));
    let (a, _) =
        sm.catalog(register("N1", Some(service("N1", "db", "db1")), vec![check("c", "db1", PASSING)], true, false));
    assert!(matches!(a, Applied::Rejected { .. }), "{a:?}");
    assert!(sm.check("N1", "c").is_none());
    assert_eq!(sm.instances("db").len(), 1);
    assert_eq!(sm.st.last_applied.map(|l| l.index), Some(sm.index));
}

#[test]
fn deregistering_a_node_takes_its_services_and_checks() {
    let mut sm = Sm::new();
    sm.catalog(register("N1", Some(service("N1", "web", "web1")), vec![check("c", "web1", PASSING)], true, false));
    sm.catalog(register("N1", None, vec![check("n", "", PASSING)], true, false));
    sm.catalog(register("N2", Some(service("N2", "web", "web2")), vec![], true, false));
    let (a, _) = sm.catalog(CatalogCmd::Deregister { node: "n1".into(), service_id: None, check_id: None });
    assert_eq!(a, Applied::Ok { index: sm.index });
    let ids: Vec<String> = sm.instances("web").into_keys().collect();
    assert_eq!(ids, vec!["web2".to_string()]);
    assert!(catalog_store::checks(&sm.db, Some("N1")).unwrap().is_empty());
    assert!(catalog_store::get_node(&sm.db, "N1").unwrap().is_none());
    assert_eq!(catalog_store::nodes(&sm.db).unwrap().len(), 1);
    // Deregistering what is not there changes nothing.
    assert_eq!(
        sm.catalog(CatalogCmd::Deregister { node: "n1".into(), service_id: None, check_id: None }).0,
        Applied::None
    );
}

#[test]
fn renaming_a_service_moves_its_instance() {
    let mut sm = Sm::new();
    sm.catalog(register("N1", Some(service("N1", "web", "x1")), vec![check("c", "x1", PASSING)], true, false));
    sm.catalog(register("N1", Some(service("N1", "api", "x1")), vec![], true, false));
    assert!(sm.instances("web").is_empty());
    assert_eq!(sm.instances("api").len(), 1);
    assert_eq!(sm.check("N1", "c").unwrap().service_name, "api");
    // The node record keeps its create index, and is written again only when it changed.
    let n = catalog_store::get_node(&sm.db, "n1").unwrap().unwrap();
    assert_eq!((n.create_index, n.modify_index), (1, 1));
}
