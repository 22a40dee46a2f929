//! Apply and reads of the security state (`auth` and `acl` families, see `schema`).

use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::DB;

use super::auth::AclPolicy;
use super::auth::AclToken;
use super::auth::AuthCmd;
use super::auth::AuthState;
use super::auth::UserItem;
use super::auth::ADMIN_USER;
use super::auth::GLOBAL_MANAGEMENT_ID;
use super::auth::GLOBAL_MANAGEMENT_NAME;
use super::auth::GLOBAL_MANAGEMENT_RULES;
use super::auth::ROLE_ADMIN;
use super::command::Applied;
use super::command::Change;
use super::schema;
use super::schema::auth_key;
use super::schema::AuthKey;
use super::tables;
use super::tables::Table;
use super::ApplyCtx;
use super::StoreResult;

/// Reads the whole security state (small: users, roles, policies and tokens).
pub fn load(db: &DB) -> StoreResult<AuthState> {
    let mut st = AuthState::default();
    for item in db.iterator_cf(super::cf(db, schema::CF_AUTH)?, IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        match schema::parse_auth_key(&k) {
            Some(AuthKey::User(u)) => {
                st.users.insert(u, schema::decode(&v)?);
            }
            Some(AuthKey::Binding(u, r)) => st.bindings.push((u, r)),
            Some(AuthKey::Permission(role, res, act)) => st.permissions.push((role, res, act)),
            Some(AuthKey::Policy(_)) => st.policies.push(schema::decode(&v)?),
            Some(AuthKey::Token(_)) => st.tokens.push(schema::decode(&v)?),
            Some(AuthKey::AclBootstrap) => st.acl_bootstrap_index = Some(schema::decode(&v)?),
            None => {}
        }
    }
    Ok(st)
}

fn get<T: serde::de::DeserializeOwned>(db: &DB, key: &AuthKey) -> StoreResult<Option<T>> {
    match db.get_pinned_cf(super::cf(db, schema::CF_AUTH)?, auth_key(key)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

fn exists(db: &DB, key: &AuthKey) -> StoreResult<bool> {
    Ok(db.get_pinned_cf(super::cf(db, schema::CF_AUTH)?, auth_key(key)).map_err(super::io_err)?.is_some())
}

/// Keys under `prefix` (raw `auth` keys).
fn keys_with_prefix(db: &DB, prefix: &[u8]) -> StoreResult<Vec<Box<[u8]>>> {
    let cf = super::cf(db, schema::CF_AUTH)?;
    let mut out = Vec::new();
    for item in db.iterator_cf(cf, IteratorMode::From(prefix, rocksdb::Direction::Forward)) {
        let (k, _) = item.map_err(super::io_err)?;
        if !k.starts_with(prefix) {
            break;
        }
        out.push(k);
    }
    Ok(out)
}

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &AuthCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let applied = apply_cmd(db, b, ctx, cmd)?;
    if !matches!(applied, Applied::Ok { .. }) {
        return Ok((applied, vec![]));
    }
    tables::bump(db, b, Table::Acl, ctx.index)?;
    Ok((applied, vec![Change::ConsulTable { table: Table::Acl }]))
}

fn rejected(reason: impl Into<String>) -> Applied {
    Applied::Rejected { reason: reason.into() }
}

fn apply_cmd(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &AuthCmd) -> StoreResult<Applied> {
    let cf = super::cf(db, schema::CF_AUTH)?;
    let ok = Applied::Ok { index: ctx.index };
    let user_item =
        |hash: &str| UserItem { password_hash: hash.to_string(), create_time_ms: ctx.time_ms, password_time_ms: 0 };
    match cmd {
        AuthCmd::CreateUser { username, password_hash } => {
            let key = AuthKey::User(username.clone());
            if exists(db, &key)? {
                return Ok(Applied::AlreadyExists);
            }
            b.put_cf(cf, auth_key(&key), schema::encode(&user_item(password_hash)));
        }
        AuthCmd::SetPassword { username, password_hash } => {
            let key = AuthKey::User(username.clone());
            let Some(mut user) = get::<UserItem>(db, &key)? else { return Ok(Applied::NotFound) };
            user.password_hash = password_hash.clone();
            user.password_time_ms = ctx.time_ms;
            b.put_cf(cf, auth_key(&key), schema::encode(&user));
        }
        AuthCmd::DeleteUser { username } => {
            let key = AuthKey::User(username.clone());
            if !exists(db, &key)? {
                return Ok(Applied::NotFound);
            }
            b.delete_cf(cf, auth_key(&key));
            for k in keys_with_prefix(db, &schema::binding_prefix(username))? {
                b.delete_cf(cf, k);
            }
        }
        AuthCmd::InitAdmin { password_hash } => {
            let st = load(db)?;
            if st.bindings.iter().any(|(_, r)| r == ROLE_ADMIN) {
                return Ok(Applied::AlreadyExists);
            }
            let mut user = user_item(password_hash);
            if let Some(old) = st.users.get(ADMIN_USER) {
                user.create_time_ms = old.create_time_ms;
                user.password_time_ms = ctx.time_ms;
            }
            b.put_cf(cf, auth_key(&AuthKey::User(ADMIN_USER.into())), schema::encode(&user));
            b.put_cf(cf, auth_key(&AuthKey::Binding(ADMIN_USER.into(), ROLE_ADMIN.into())), []);
        }
        AuthCmd::BindRole { role, username } => {
            if !exists(db, &AuthKey::User(username.clone()))? {
                return Ok(Applied::NotFound);
            }
            let key = AuthKey::Binding(username.clone(), role.clone());
            if exists(db, &key)? {
                return Ok(Applied::AlreadyExists);
            }
            b.put_cf(cf, auth_key(&key), []);
        }
        AuthCmd::UnbindRole { role, username: Some(username) } => {
            let key = AuthKey::Binding(username.clone(), role.clone());
            if !exists(db, &key)? {
                return Ok(Applied::NotFound);
            }
            b.delete_cf(cf, auth_key(&key));
        }
        AuthCmd::UnbindRole { role, username: None } => {
            let st = load(db)?;
            let mut found = false;
            for (u, r) in st.bindings.iter().filter(|(_, r)| r == role) {
                found = true;
                b.delete_cf(cf, auth_key(&AuthKey::Binding(u.clone(), r.clone())));
            }
            for k in keys_with_prefix(db, &schema::permission_prefix(role))? {
                found = true;
                b.delete_cf(cf, k);
            }
            if !found {
                return Ok(Applied::NotFound);
            }
        }
        AuthCmd::AddPermission { role, resource, action } => {
            let key = AuthKey::Permission(role.clone(), resource.clone(), action.clone());
            if exists(db, &key)? {
                return Ok(Applied::AlreadyExists);
            }
            b.put_cf(cf, auth_key(&key), []);
        }
        AuthCmd::RemovePermission { role, resource, action } => {
            let key = AuthKey::Permission(role.clone(), resource.clone(), action.clone());
            if !exists(db, &key)? {
                return Ok(Applied::NotFound);
            }
            b.delete_cf(cf, auth_key(&key));
        }
        AuthCmd::AclBootstrap { accessor_id, secret_id } => {
            if let Some(at) = get::<u64>(db, &AuthKey::AclBootstrap)? {
                return Ok(rejected(format!("ACL bootstrap no longer allowed (reset index: {at})")));
            }
            let policy = AclPolicy {
                id: GLOBAL_MANAGEMENT_ID.into(),
                name: GLOBAL_MANAGEMENT_NAME.into(),
                description: "Builtin Policy that grants unlimited access".into(),
                rules: GLOBAL_MANAGEMENT_RULES.into(),
                datacenters: vec![],
                create_index: ctx.index,
                modify_index: ctx.index,
            };
            let token = AclToken {
                accessor_id: accessor_id.clone(),
                secret_id: secret_id.clone(),
                description: "Bootstrap Token (Global Management)".into(),
                policies: vec![GLOBAL_MANAGEMENT_ID.into()],
                local: false,
                create_time_ms: ctx.time_ms,
                create_index: ctx.index,
                modify_index: ctx.index,
            };
            b.put_cf(cf, auth_key(&AuthKey::Policy(policy.id.clone())), schema::encode(&policy));
            b.put_cf(cf, auth_key(&AuthKey::Token(token.accessor_id.clone())), schema::encode(&token));
            b.put_cf(cf, auth_key(&AuthKey::AclBootstrap), schema::encode(&ctx.index));
        }
        AuthCmd::AclPolicyPut { policy, create } => {
            let key = AuthKey::Policy(policy.id.clone());
            let old = get::<AclPolicy>(db, &key)?;
            let st = load(db)?;
            if st.policies.iter().any(|p| p.name == policy.name && p.id != policy.id) {
                return Ok(rejected(format!("Invalid Policy: A Policy with Name {:?} already exists", policy.name)));
            }
            let mut p = policy.clone();
            match (create, old) {
                (true, Some(_)) => return Ok(Applied::AlreadyExists),
                (false, None) => return Ok(Applied::NotFound),
                (true, None) => p.create_index = ctx.index,
                (false, Some(old)) => {
                    if old.id == GLOBAL_MANAGEMENT_ID && old.rules != p.rules {
                        return Ok(rejected(
                            "Changing the Rules for the builtin global-management policy is not permitted",
                        ));
                    }
                    p.create_index = old.create_index;
                }
            }
            p.modify_index = ctx.index;
            b.put_cf(cf, auth_key(&key), schema::encode(&p));
        }
        AuthCmd::AclPolicyDelete { id } => {
            if id == GLOBAL_MANAGEMENT_ID {
                return Ok(rejected("Delete operation not permitted on the builtin global-management policy"));
            }
            let key = AuthKey::Policy(id.clone());
            if !exists(db, &key)? {
                return Ok(Applied::NotFound);
            }
            b.delete_cf(cf, auth_key(&key));
        }
        AuthCmd::AclTokenPut { token, create } => {
            let key = AuthKey::Token(token.accessor_id.clone());
            let old = get::<AclToken>(db, &key)?;
            let st = load(db)?;
            if st.tokens.iter().any(|t| t.secret_id == token.secret_id && t.accessor_id != token.accessor_id) {
                return Ok(rejected("Invalid Token: SecretID is already in use"));
            }
            if let Some(missing) = token.policies.iter().find(|id| !st.policies.iter().any(|p| &p.id == *id)) {
                return Ok(rejected(format!("cannot find policy {missing}")));
            }
            let mut t = token.clone();
            match (create, old) {
                (true, Some(_)) => return Ok(Applied::AlreadyExists),
                (false, None) => return Ok(Applied::NotFound),
                (true, None) => {
                    t.create_index = ctx.index;
                    t.create_time_ms = ctx.time_ms;
                }
                (false, Some(old)) => {
                    if old.secret_id != t.secret_id {
                        return Ok(rejected("Cannot modify the SecretID of a token"));
                    }
                    t.create_index = old.create_index;
                    t.create_time_ms = old.create_time_ms;
                }
            }
            t.modify_index = ctx.index;
            b.put_cf(cf, auth_key(&key), schema::encode(&t));
        }
        AuthCmd::AclTokenDelete { accessor_id } => {
            let key = AuthKey::Token(accessor_id.clone());
            if !exists(db, &key)? {
                return Ok(Applied::NotFound);
            }
            b.delete_cf(cf, auth_key(&key));
        }
    }
    Ok(ok)
}
