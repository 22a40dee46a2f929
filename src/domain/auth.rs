//! Authentication and authorization shared by every protocol adapter: who is calling (a JWT
//! access token, or a user name and password) and whether they may touch a resource (Nacos
//! RBAC: `namespace:group:type/name` resources, `r`/`w` actions, `ROLE_ADMIN` for everything).
//!
//! Tokens are HS256 JWTs with the algorithm fixed here, never taken from the token, so `alg:
//! none` and algorithm-confusion tokens fail. A token names a user that must still exist (and
//! must not predate its last password change): deleting a user ends its sessions at once.
//! The replicated security state is small and read on every request, so a copy is kept in
//! memory and reloaded when the `Acl` table index moves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;
use std::time::Instant;

use jsonwebtoken::Algorithm;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::Header;
use jsonwebtoken::Validation;
use serde::Deserialize;
use serde::Serialize;

use super::auth_throttle::Throttle;
use super::config_admin::glob;
use super::DomainError;
use crate::raft::RaftNode;
use crate::settings::Settings;
use crate::state_machine::auth::AuthState;
use crate::state_machine::auth::ROLE_ADMIN;
use crate::state_machine::auth_store;
use crate::state_machine::tables::Table;

/// What a request or connection presents.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Token(String),
    Password {
        username: String,
        password: String,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    fn letter(self) -> &'static str {
        match self {
            Action::Read => "r",
            Action::Write => "w",
        }
    }
}

/// A Nacos resource: `namespace:group:kind/name`, `*` for an empty group or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    pub namespace: &'a str,
    pub group: &'a str,
    /// `config` or `naming`.
    pub kind: &'a str,
    pub name: &'a str,
}

impl Resource<'_> {
    pub fn joined(&self) -> String {
        let ns = if self.namespace.is_empty() { super::config::DEFAULT_NAMESPACE } else { self.namespace };
        let group = if self.group.is_empty() { "*" } else { self.group };
        let name = if self.name.is_empty() { "*" } else { self.name };
        format!("{ns}:{group}:{}/{name}", self.kind)
    }
}

/// What an operation needs; declared per HTTP route and per gRPC request type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Health, login, server checks: no identity needed.
    Open,
    /// Any logged-in user.
    Login,
    /// Permission on a resource.
    Resource(Resource<'a>, Action),
    /// Users, roles, permissions, namespaces, membership, snapshots: `ROLE_ADMIN` only.
    Admin,
}

/// The reply of a successful login (Nacos' bare JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginReply {
    pub access_token: String,
    /// Seconds; a JSON number (Go and Rust clients require it).
    pub token_ttl: u64,
    pub global_admin: bool,
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

/// The security state with its lookups prepared.
#[derive(Debug, Default)]
pub struct AuthView {
    index: u64,
    pub state: AuthState,
    roles: HashMap<String, Vec<String>>,
    /// role -> (resource pattern, action).
    permissions: HashMap<String, Vec<(String, String)>>,
}

impl AuthView {
    fn new(index: u64, state: AuthState) -> AuthView {
        let mut roles: HashMap<String, Vec<String>> = HashMap::new();
        for (u, r) in &state.bindings {
            roles.entry(u.clone()).or_default().push(r.clone());
        }
        let mut permissions: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (role, res, act) in &state.permissions {
            permissions.entry(role.clone()).or_default().push((res.clone(), act.clone()));
        }
        AuthView { index, state, roles, permissions }
    }

    pub fn roles_of(&self, user: &str) -> &[String] {
        self.roles.get(user).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.roles_of(user).iter().any(|r| r == ROLE_ADMIN)
    }

    pub fn admin_exists(&self) -> bool {
        self.state.bindings.iter().any(|(_, r)| r == ROLE_ADMIN)
    }

    /// Nacos' rule: some role of the user has a permission whose action contains the wanted
    /// letter and whose resource pattern (`*` = anything) matches the whole resource.
    pub fn allows(&self, user: &str, res: &Resource<'_>, action: Action) -> bool {
        let joined = res.joined();
        self.roles_of(user).iter().any(|role| {
            self.permissions.get(role).is_some_and(|ps| {
                ps.iter().any(|(pattern, act)| act.contains(action.letter()) && glob(pattern, &joined))
            })
        })
    }
}

/// bcrypt cost Nacos uses (Spring's `BCryptPasswordEncoder` default).
const BCRYPT_COST: u32 = 10;

/// Hashes in Nacos' format (`$2a$10$...`), off the async threads: bcrypt is slow on purpose.
pub async fn hash_password(password: String) -> Result<String, DomainError> {
    check_password(&password)?;
    tokio::task::spawn_blocking(move || bcrypt::hash_with_result(password, BCRYPT_COST))
        .await
        .map_err(|e| DomainError::Invalid(format!("hashing failed: {e}")))?
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| DomainError::Invalid(format!("hashing failed: {e}")))
}

pub fn check_password(password: &str) -> Result<(), DomainError> {
    // bcrypt reads 72 bytes at most; a longer password would be silently truncated.
    if password.is_empty() || password.len() > 72 {
        return Err(DomainError::Invalid("password must be 1-72 bytes".into()));
    }
    Ok(())
}

/// A hash of a random password nobody knows, checked for unknown users so a login for a
/// missing user costs as much as one with a wrong password (no user enumeration by timing).
static DECOY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn verify_password(password: String, hash: Option<String>) -> bool {
    let real = hash.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| {
            DECOY_HASH
                .get_or_init(|| bcrypt::hash(uuid::Uuid::new_v4().to_string(), BCRYPT_COST).unwrap_or_default())
                .clone()
        });
        bcrypt::verify(password, &hash).unwrap_or(false)
    })
    .await;
    real && ok.unwrap_or(false)
}

struct Inner {
    node: Arc<RaftNode>,
    enabled: bool,
    keys: Option<(EncodingKey, DecodingKey)>,
    ttl_secs: u64,
    view: RwLock<Arc<AuthView>>,
    throttle: Throttle,
}

#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

impl AuthService {
    /// Settings were validated at load: with auth on, the key is present and strong.
    pub fn new(node: Arc<RaftNode>, s: &Settings) -> Result<AuthService, String> {
        let keys = match &s.auth_secret_key {
            Some(k) => {
                let bytes = crate::settings::check_secret_key(k)?;
                Some((EncodingKey::from_secret(&bytes), DecodingKey::from_secret(&bytes)))
            }
            None if s.auth_enabled => return Err("auth is on but no secret key is set".into()),
            None => None,
        };
        let lock = Duration::from_secs(s.auth_login_lock_seconds);
        Ok(AuthService {
            inner: Arc::new(Inner {
                node,
                enabled: s.auth_enabled,
                keys,
                ttl_secs: s.auth_token_expire_seconds,
                view: RwLock::new(Arc::new(AuthView { index: u64::MAX, ..AuthView::default() })),
                throttle: Throttle::new(s.auth_login_max_failures, lock),
            }),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    pub(super) fn node(&self) -> &Arc<RaftNode> {
        &self.inner.node
    }

    /// The security state as of the last applied change (reloaded when it moved).
    pub fn view(&self) -> Result<Arc<AuthView>, DomainError> {
        let index = self.inner.node.sm.table_index(Table::Acl);
        {
            let v = self.inner.view.read().unwrap_or_else(|p| p.into_inner());
            if v.index == index {
                return Ok(v.clone());
            }
        }
        let fresh = Arc::new(AuthView::new(index, auth_store::load(&self.inner.node.sm.db())?));
        *self.inner.view.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    fn issue(&self, username: &str) -> Result<String, DomainError> {
        let Some((enc, _)) = &self.inner.keys else {
            return Ok("AUTH_DISABLED".into());
        };
        let iat = crate::now_ms() / 1000;
        let claims = Claims { sub: username.to_string(), iat, exp: iat + self.inner.ttl_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, enc)
            .map_err(|e| DomainError::Invalid(format!("cannot sign a token: {e}")))
    }

    /// A user from an access token: signature (HS256 only), expiry, and a user that still
    /// exists and has not changed its password since.
    pub fn verify_token(&self, token: &str) -> Result<Principal, DomainError> {
        let Some((_, dec)) = &self.inner.keys else {
            return Err(DomainError::Forbidden("token invalid!".into()));
        };
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, dec, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => DomainError::Forbidden("token expired!".into()),
            _ => DomainError::Forbidden("token invalid!".into()),
        })?;
        let view = self.view()?;
        let Some(user) = view.state.users.get(&data.claims.sub) else {
            return Err(DomainError::Forbidden("user not found!".into()));
        };
        if data.claims.iat < user.password_time_ms / 1000 {
            return Err(DomainError::Forbidden("token invalid! (the password changed since it was issued)".into()));
        }
        Ok(Principal { admin: view.is_admin(&data.claims.sub), username: data.claims.sub })
    }

    /// Checks a user name and password, throttling repeated failures per address and user.
    pub async fn check_password(&self, username: &str, password: &str, ip: IpAddr) -> Result<Principal, DomainError> {
        self.inner
            .throttle
            .check(ip, username, Instant::now())
            .map_err(|s| DomainError::Throttled { retry_after_secs: s })?;
        let view = self.view()?;
        let hash = view.state.users.get(username).map(|u| u.password_hash.clone());
        if !verify_password(password.to_string(), hash).await {
            self.inner.throttle.failed(ip, username, Instant::now());
            tracing::warn!(target: "audit", %ip, user = username, "login failed");
            return Err(DomainError::Forbidden("unknown user or wrong password!".into()));
        }
        self.inner.throttle.succeeded(ip, username);
        Ok(Principal { username: username.to_string(), admin: view.is_admin(username) })
    }

    /// `POST /v1/auth/login` and its aliases.
    pub async fn login(&self, username: &str, password: &str, ip: IpAddr) -> Result<LoginReply, DomainError> {
        if !self.enabled() {
            let token = self.issue(username)?;
            return Ok(LoginReply {
                access_token: token,
                token_ttl: self.inner.ttl_secs,
                global_admin: true,
                username: username.into(),
            });
        }
        let p = self.check_password(username, password, ip).await?;
        tracing::info!(target: "audit", %ip, user = username, "login");
        Ok(LoginReply {
            access_token: self.issue(&p.username)?,
            token_ttl: self.inner.ttl_secs,
            global_admin: p.admin,
            username: p.username,
        })
    }

    /// Who presents `creds`; `None` when nothing was presented.
    pub async fn authenticate(&self, creds: &Credentials, ip: IpAddr) -> Result<Option<Principal>, DomainError> {
        match creds {
            Credentials::None => Ok(None),
            Credentials::Token(t) => self.verify_token(t).map(Some),
            Credentials::Password { username, password } => self.check_password(username, password, ip).await.map(Some),
        }
    }

    /// Whether `who` may do what `need` says. With auth off, everything is allowed.
    pub fn authorize(&self, who: Option<&Principal>, need: &Need<'_>) -> Result<(), DomainError> {
        if !self.enabled() || matches!(need, Need::Open) {
            return Ok(());
        }
        let Some(p) = who else {
            return Err(DomainError::Forbidden("user not found! (log in and send an accessToken)".into()));
        };
        if p.admin {
            return Ok(());
        }
        let allowed = match need {
            Need::Open | Need::Login => true,
            Need::Admin => false,
            Need::Resource(res, action) => self.view()?.allows(&p.username, res, *action),
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("authorization failed! user {} has no permission", p.username)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_patterns_match_whole_resources() {
        assert!(glob("public:*:*", "public:DEFAULT_GROUP:config/a"));
        assert!(glob("*:*:*", "x:y:naming/z"));
        assert!(!glob("dev:*:*", "devx:G:config/a"), "no prefix match across the namespace");
        assert!(glob("dev:G:config/app-*", "dev:G:config/app-1"));
        assert!(!glob("dev:G:config/app-*", "dev:G:naming/app-1"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
        assert!(!glob("a*a", "a"), "the two ends may not overlap");
    }

    #[test]
    fn permissions_follow_roles_and_actions() {
        let state = AuthState {
            bindings: vec![("alice".into(), "dev".into())],
            permissions: vec![
                ("dev".into(), "dev:*:*".into(), "r".into()),
                ("dev".into(), "dev:G:config/own".into(), "rw".into()),
            ],
            ..AuthState::default()
        };
        let v = AuthView::new(1, state);
        let res = |group, name| Resource { namespace: "dev", group, kind: "config", name };
        assert!(v.allows("alice", &res("G", "x"), Action::Read));
        assert!(!v.allows("alice", &res("G", "x"), Action::Write));
        assert!(v.allows("alice", &res("G", "own"), Action::Write));
        assert!(!v.allows("bob", &res("G", "x"), Action::Read));
        let other = Resource { namespace: "prod", group: "G", kind: "config", name: "x" };
        assert!(!v.allows("alice", &other, Action::Read));
    }
}
