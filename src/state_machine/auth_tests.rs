//! Pure apply tests of the security state: users, bindings, permissions, the race-safe first
//! admin, Consul ACL bootstrap-once and token/policy invariants. Refused commands write nothing.

use super::auth::*;
use super::auth_store;
use super::command::*;
use super::tables;

use super::test_sm::TestSm as Sm;

impl Sm {
    fn auth(&mut self, cmd: AuthCmd) -> Applied {
        let (a, changes) = self.entry(Command::Auth(cmd));
        let bumped = changes.contains(&Change::ConsulTable { table: tables::Table::Acl });
        assert_eq!(bumped, matches!(a, Applied::Ok { .. }), "only a successful command moves the Acl index: {a:?}");
        a
    }

    fn auth_state(&self) -> AuthState {
        auth_store::load(&self.db).unwrap()
    }
}

fn user(name: &str) -> AuthCmd {
    AuthCmd::CreateUser { username: name.into(), password_hash: format!("hash-{name}") }
}

#[test]
fn users_roles_and_permissions() {
    let mut sm = Sm::new();
    assert!(matches!(sm.auth(user("alice")), Applied::Ok { .. }));
    assert_eq!(sm.auth(user("alice")), Applied::AlreadyExists);
    let bind = AuthCmd::BindRole { role: "dev".into(), username: "alice".into() };
    assert!(matches!(sm.auth(bind.clone()), Applied::Ok { .. }));
    assert_eq!(sm.auth(bind), Applied::AlreadyExists);
    assert_eq!(sm.auth(AuthCmd::BindRole { role: "dev".into(), username: "ghost".into() }), Applied::NotFound);
    let perm = AuthCmd::AddPermission { role: "dev".into(), resource: "ns1:*:*".into(), action: "rw".into() };
    assert!(matches!(sm.auth(perm), Applied::Ok { .. }));
    let st = sm.auth_state();
    assert_eq!(st.bindings, vec![("alice".to_string(), "dev".to_string())]);
    assert_eq!(st.permissions, vec![("dev".into(), "ns1:*:*".into(), "rw".into())]);

    let set = AuthCmd::SetPassword { username: "alice".into(), password_hash: "h2".into() };
    assert!(matches!(sm.auth(set), Applied::Ok { .. }));
    let alice = sm.auth_state().users["alice"].clone();
    assert_eq!((alice.password_hash.as_str(), alice.password_time_ms, alice.create_time_ms), ("h2", 7000, 1000));

    // Deleting a user drops its bindings; deleting a role drops its permissions.
    assert!(matches!(sm.auth(AuthCmd::DeleteUser { username: "alice".into() }), Applied::Ok { .. }));
    assert!(sm.auth_state().bindings.is_empty() && sm.auth_state().users.is_empty());
    assert_eq!(sm.auth(AuthCmd::DeleteUser { username: "alice".into() }), Applied::NotFound);
    assert!(matches!(sm.auth(AuthCmd::UnbindRole { role: "dev".into(), username: None }), Applied::Ok { .. }));
    assert!(sm.auth_state().permissions.is_empty());
}

#[test]
fn first_admin_is_created_once() {
    let mut sm = Sm::new();
    assert!(matches!(sm.auth(AuthCmd::InitAdmin { password_hash: "a".into() }), Applied::Ok { .. }));
    // A second initializer (another node, the HTTP endpoint) loses the race and changes nothing.
    assert_eq!(sm.auth(AuthCmd::InitAdmin { password_hash: "b".into() }), Applied::AlreadyExists);
    let st = sm.auth_state();
    assert_eq!(st.users[ADMIN_USER].password_hash, "a");
    assert_eq!(st.bindings, vec![(ADMIN_USER.to_string(), ROLE_ADMIN.to_string())]);
}

fn policy(id: &str, name: &str) -> AclPolicy {
    AclPolicy {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        rules: r#"key_prefix "" { policy = "read" }"#.into(),
        datacenters: vec![],
        create_index: 0,
        modify_index: 0,
    }
}

fn token(accessor: &str, secret: &str, policies: &[&str]) -> AclToken {
    AclToken {
        accessor_id: accessor.into(),
        secret_id: secret.into(),
        description: String::new(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
        local: false,
        create_time_ms: 0,
        create_index: 0,
        modify_index: 0,
    }
}

#[test]
fn acl_bootstrap_once_and_token_invariants() {
    let mut sm = Sm::new();
    let boot = AuthCmd::AclBootstrap { accessor_id: "acc".into(), secret_id: "sec".into() };
    assert!(matches!(sm.auth(boot.clone()), Applied::Ok { .. }));
    match sm.auth(boot) {
        Applied::Rejected { reason } => assert!(reason.contains("no longer allowed (reset index: 1)"), "{reason}"),
        other => panic!("second bootstrap: {other:?}"),
    }
    let st = sm.auth_state();
    assert_eq!(st.acl_bootstrap_index, Some(1));
    assert_eq!(st.tokens[0].policies, vec![GLOBAL_MANAGEMENT_ID.to_string()]);
    assert!(matches!(sm.auth(AuthCmd::AclPolicyDelete { id: GLOBAL_MANAGEMENT_ID.into() }), Applied::Rejected { .. }));

    assert!(matches!(sm.auth(AuthCmd::AclPolicyPut { policy: policy("p1", "ro"), create: true }), Applied::Ok { .. }));
    // Names are unique; a token's policies must exist; secrets are unique; secrets never change.
    assert!(matches!(
        sm.auth(AuthCmd::AclPolicyPut { policy: policy("p2", "ro"), create: true }),
        Applied::Rejected { .. }
    ));
    let bad = AuthCmd::AclTokenPut { token: token("t1", "s1", &["nope"]), create: true };
    assert!(matches!(sm.auth(bad), Applied::Rejected { .. }));
    let dup = AuthCmd::AclTokenPut { token: token("t1", "sec", &["p1"]), create: true };
    assert!(matches!(sm.auth(dup), Applied::Rejected { .. }));
    assert!(matches!(
        sm.auth(AuthCmd::AclTokenPut { token: token("t1", "s1", &["p1"]), create: true }),
        Applied::Ok { .. }
    ));
    let moved = AuthCmd::AclTokenPut { token: token("t1", "s2", &["p1"]), create: false };
    assert!(matches!(sm.auth(moved), Applied::Rejected { .. }));
    let before = sm.auth_state();
    assert_eq!(before.tokens.len(), 2);
    assert_eq!(before.policies.len(), 2);
    assert!(matches!(sm.auth(AuthCmd::AclTokenDelete { accessor_id: "t1".into() }), Applied::Ok { .. }));
    assert_eq!(sm.auth(AuthCmd::AclTokenDelete { accessor_id: "t1".into() }), Applied::NotFound);
    assert_eq!(sm.auth_state().tokens.len(), 1);
}
