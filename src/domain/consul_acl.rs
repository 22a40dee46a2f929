//! Consul ACLs over the replicated security state: who a request is (a Consul token's secret, a
//! Nacos access token, or nobody: the anonymous token) and what it may do. ACLs are on exactly
//! when Nacos auth is on, so with auth on the Consul API is no side door into the store that the
//! Nacos API guards.
//!
//! Policies are parsed once per change of the security state, not per request: the compiled
//! form is kept beside the `AuthView` it came from and rebuilt when the view is another one
//! (`Arc::ptr_eq`), and each token's merged authorizer is built on first use and kept until then.

mod admin;
pub mod authorizer;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;

pub use admin::PolicyInput;
pub use admin::PolicyLink;
pub use admin::TokenInput;
use authorizer::Authorizer;
use authorizer::PolicyRules;
use rules::Rule;

use super::auth::Action;
use super::auth::AuthService;
use super::auth::AuthView;
use super::auth::Need;
use super::auth::Resource;
use super::DomainError;
use crate::state_machine::auth::AclToken;

/// The AccessorID Consul gives requests without a token.
pub const ANONYMOUS_ID: &str = "00000000-0000-0000-0000-000000000002";
/// Consul's text for a token it does not know (403).
pub const NOT_FOUND: &str = "ACL not found";

fn not_found() -> DomainError {
    DomainError::Forbidden(NOT_FOUND.into())
}

/// Who a request is, for the Consul API.
pub struct Identity {
    /// For `lacks permission` messages: a Consul token's AccessorID, `nacos:<user>`, or the
    /// anonymous token's.
    pub accessor_id: String,
    /// The Consul token presented (`/v1/acl/token/self`).
    pub token: Option<AclToken>,
    pub authz: Arc<Authorizer>,
    /// Some token was presented (filtered lists then say so in a header, as Consul does).
    pub presented: bool,
}

/// The security state with every policy parsed.
struct Compiled {
    view: Arc<AuthView>,
    rules: HashMap<String, Vec<Rule>>,
    by_secret: HashMap<String, usize>,
    by_accessor: HashMap<String, usize>,
    /// Merged authorizers by AccessorID, built on first use.
    authz: Mutex<HashMap<String, Arc<Authorizer>>>,
}

impl Compiled {
    fn new(view: Arc<AuthView>) -> Compiled {
        let mut rules = HashMap::new();
        for p in &view.state.policies {
            // Rules are checked when written; a policy that still fails (restored from elsewhere)
            // grants nothing rather than failing every request.
            let parsed = rules::parse(&p.rules).unwrap_or_else(|e| {
                tracing::warn!(policy = %p.name, "Consul ACL policy ignored: {e}");
                Vec::new()
            });
            rules.insert(p.id.clone(), parsed);
        }
        let tokens = &view.state.tokens;
        let by_secret = tokens.iter().enumerate().map(|(i, t)| (t.secret_id.clone(), i)).collect();
        let by_accessor = tokens.iter().enumerate().map(|(i, t)| (t.accessor_id.clone(), i)).collect();
        Compiled { view, rules, by_secret, by_accessor, authz: Mutex::new(HashMap::new()) }
    }

    fn token(&self, i: usize) -> Option<&AclToken> {
        self.view.state.tokens.get(i)
    }

    /// A token's policies merged; policies deleted since are skipped, as Consul skips them.
    fn authorizer(&self, accessor: &str, policies: &[String], default_allow: bool) -> Arc<Authorizer> {
        let mut cache = self.authz.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = cache.get(accessor) {
            return a.clone();
        }
        let all = policies.iter().filter_map(|id| self.rules.get(id)).flatten();
        let a = Arc::new(Authorizer::Rules { rules: PolicyRules::new(all), default_allow });
        cache.insert(accessor.to_string(), a.clone());
        a
    }
}

struct Inner {
    auth: AuthService,
    default_allow: bool,
    compiled: RwLock<Option<Arc<Compiled>>>,
}

/// The Consul ACL service: token resolution, authorization, and the `/v1/acl/*` operations.
#[derive(Clone)]
pub struct ConsulAcl {
    inner: Arc<Inner>,
}

impl ConsulAcl {
    pub fn new(auth: AuthService, default_allow: bool) -> ConsulAcl {
        ConsulAcl { inner: Arc::new(Inner { auth, default_allow, compiled: RwLock::new(None) }) }
    }

    /// ACLs are on exactly when Nacos auth is.
    pub fn enabled(&self) -> bool {
        self.inner.auth.enabled()
    }

    /// `consul.acl.default-policy` is `allow` (always true with ACLs off, as Consul reports).
    pub fn default_allow(&self) -> bool {
        !self.enabled() || self.inner.default_allow
    }

    fn auth(&self) -> &AuthService {
        &self.inner.auth
    }

    fn compiled(&self) -> Result<Arc<Compiled>, DomainError> {
        let view = self.inner.auth.view()?;
        {
            let c = self.inner.compiled.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = c.as_ref().filter(|c| Arc::ptr_eq(&c.view, &view)) {
                return Ok(c.clone());
            }
        }
        let fresh = Arc::new(Compiled::new(view));
        *self.inner.compiled.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Who presents `secret`: a Consul token's SecretID, else a Nacos access token; nothing is
    /// the anonymous token (its policies if an operator gave it some, else the default policy).
    /// Anything else is Consul's 403 `ACL not found`.
    pub fn resolve(&self, secret: Option<&str>) -> Result<Identity, DomainError> {
        let secret = secret.map(str::trim).filter(|s| !s.is_empty());
        if !self.enabled() {
            let authz = Arc::new(Authorizer::AllowAll);
            return Ok(Identity { accessor_id: ANONYMOUS_ID.into(), token: None, authz, presented: secret.is_some() });
        }
        let c = self.compiled()?;
        let default_allow = self.inner.default_allow;
        let Some(secret) = secret else {
            let token = c.by_accessor.get(ANONYMOUS_ID).and_then(|i| c.token(*i)).cloned();
            let policies = token.as_ref().map(|t| t.policies.clone()).unwrap_or_default();
            let authz = c.authorizer(ANONYMOUS_ID, &policies, default_allow);
            return Ok(Identity { accessor_id: ANONYMOUS_ID.into(), token, authz, presented: false });
        };
        if let Some(t) = c.by_secret.get(secret).and_then(|i| c.token(*i)) {
            let authz = c.authorizer(&t.accessor_id, &t.policies, default_allow);
            return Ok(Identity { accessor_id: t.accessor_id.clone(), token: Some(t.clone()), authz, presented: true });
        }
        match self.auth().verify_token(secret) {
            Ok(principal) => Ok(Identity {
                accessor_id: format!("nacos:{}", principal.username),
                token: None,
                authz: Arc::new(Authorizer::Nacos { principal, auth: self.auth().clone() }),
                presented: true,
            }),
            Err(DomainError::Forbidden(_)) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// The Nacos configs in Consul's export format are Nacos data: a Nacos user needs the Nacos
    /// config permission on the namespace (as the Nacos export does), a Consul token management.
    pub fn config_allowed(&self, who: &Identity, namespace: &str, write: bool) -> bool {
        match who.authz.as_ref() {
            Authorizer::AllowAll => true,
            Authorizer::Nacos { principal, auth } => {
                let res = Resource { namespace, group: "", kind: "config", name: "" };
                let action = if write { Action::Write } else { Action::Read };
                auth.authorize(Some(principal), &Need::Resource(res, action)).is_ok()
            }
            Authorizer::Rules { .. } => who.authz.is_management(),
        }
    }
}
