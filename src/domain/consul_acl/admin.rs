//! The `/v1/acl/*` operations: bootstrap, policies and tokens. Everything a reply or a replica
//! needs is decided here before proposing (random v4 UUIDs for new ids and secrets, policy
//! names resolved to ids, rules parsed), so apply stays deterministic; apply re-checks what
//! depends on replicated state (unique names and secrets, existing policies, one bootstrap).

use std::time::Duration;
use std::time::Instant;

use super::ConsulAcl;
use super::ANONYMOUS_ID;
use crate::domain::DomainError;
use crate::state_machine::auth::AclPolicy;
use crate::state_machine::auth::AclToken;
use crate::state_machine::auth::AuthCmd;
use crate::state_machine::auth::GLOBAL_MANAGEMENT_ID;
use crate::state_machine::auth::GLOBAL_MANAGEMENT_NAME;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;

/// A policy as a create or update names it.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// The body's `ID`; on update it must match the path's.
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
}

/// A token's policy, by `ID` or `Name`.
#[derive(Debug, Clone, Default)]
pub struct PolicyLink {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TokenInput {
    pub accessor_id: Option<String>,
    pub secret_id: Option<String>,
    pub description: String,
    pub policies: Vec<PolicyLink>,
    pub local: bool,
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Consul's policy names: 1-128 of letters, digits, `-` and `_`.
fn check_policy_name(name: &str) -> Result<(), DomainError> {
    let ok = (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("Invalid Policy: invalid Name {name:?}: only alphanumerics, '-' and '_' (1-128)")))
    }
}

fn check_uuid(what: &str, v: &str) -> Result<(), DomainError> {
    uuid::Uuid::parse_str(v).map(|_| ()).map_err(|_| invalid(format!("Invalid Token: {what} is not a valid UUID")))
}

impl ConsulAcl {
    /// Proposes `cmd`; on success waits until this node has applied it, so a read that follows
    /// (the reply, the client's next request here) sees it.
    async fn propose(&self, cmd: AuthCmd) -> Result<(), DomainError> {
        let node = self.auth().node();
        match node.write(Command::Auth(cmd)).await? {
            Applied::Ok { index } => {
                node.wait_applied(index, Instant::now() + Duration::from_secs(5)).await?;
                Ok(())
            }
            Applied::NotFound => Err(super::not_found()),
            Applied::AlreadyExists => Err(invalid("Invalid request: the ID is already in use")),
            Applied::Rejected { reason } => Err(invalid(reason)),
            other => Err(invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    /// `PUT /v1/acl/bootstrap`: once per cluster, a management token (with the caller's
    /// `BootstrapSecret` as its secret if given).
    pub async fn bootstrap(&self, secret: Option<String>) -> Result<AclToken, DomainError> {
        let secret_id = secret.filter(|s| !s.is_empty()).unwrap_or_else(new_uuid);
        check_uuid("SecretID", &secret_id)?;
        let accessor_id = new_uuid();
        match self.propose(AuthCmd::AclBootstrap { accessor_id: accessor_id.clone(), secret_id }).await {
            Err(DomainError::Invalid(reason)) => Err(DomainError::Forbidden(format!("Permission denied: {reason}"))),
            Err(e) => Err(e),
            Ok(()) => self.token(&accessor_id),
        }
    }

    pub fn policies(&self) -> Result<Vec<AclPolicy>, DomainError> {
        let mut v = self.compiled()?.view.state.policies.clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub fn policy(&self, id: &str) -> Result<AclPolicy, DomainError> {
        self.policies()?.into_iter().find(|p| p.id == id).ok_or_else(super::not_found)
    }

    pub fn policy_by_name(&self, name: &str) -> Result<AclPolicy, DomainError> {
        self.policies()?.into_iter().find(|p| p.name == name).ok_or_else(super::not_found)
    }

    /// Create (`id: None`) or update a policy; returns it as stored.
    pub async fn put_policy(&self, id: Option<&str>, input: PolicyInput) -> Result<AclPolicy, DomainError> {
        check_policy_name(&input.name)?;
        super::rules::parse(&input.rules).map_err(|e| invalid(format!("Invalid Policy: {e}")))?;
        let (id, create) = match (id, input.id.as_deref().filter(|s| !s.is_empty())) {
            (Some(path), Some(body)) if path != body => {
                return Err(invalid("Policy ID in URL and payload do not match"));
            }
            (Some(path), _) => (path.to_string(), false),
            (None, Some(_)) => return Err(invalid("Cannot specify an ID in policy creation")),
            (None, None) => (new_uuid(), true),
        };
        if id == GLOBAL_MANAGEMENT_ID && input.name != GLOBAL_MANAGEMENT_NAME {
            return Err(invalid("Changing the Name for the builtin global-management policy is not permitted"));
        }
        let policy = AclPolicy {
            id: id.clone(),
            name: input.name,
            description: input.description,
            rules: input.rules,
            datacenters: input.datacenters,
            create_index: 0,
            modify_index: 0,
        };
        self.propose(AuthCmd::AclPolicyPut { policy, create }).await?;
        self.policy(&id)
    }

    pub async fn delete_policy(&self, id: &str) -> Result<(), DomainError> {
        self.propose(AuthCmd::AclPolicyDelete { id: id.to_string() }).await
    }

    pub fn tokens(&self) -> Result<Vec<AclToken>, DomainError> {
        let mut v = self.compiled()?.view.state.tokens.clone();
        v.sort_by(|a, b| a.create_index.cmp(&b.create_index).then_with(|| a.accessor_id.cmp(&b.accessor_id)));
        Ok(v)
    }

    pub fn token(&self, accessor: &str) -> Result<AclToken, DomainError> {
        let c = self.compiled()?;
        c.by_accessor.get(accessor).and_then(|i| c.token(*i)).cloned().ok_or_else(super::not_found)
    }

    /// (ID, Name) of each policy id that still exists, for a token's `Policies`.
    pub fn policy_links(&self, ids: &[String]) -> Result<Vec<(String, String)>, DomainError> {
        let c = self.compiled()?;
        let names = &c.view.state.policies;
        Ok(ids
            .iter()
            .filter_map(|id| names.iter().find(|p| &p.id == id).map(|p| (p.id.clone(), p.name.clone())))
            .collect())
    }

    /// Policy links to ids: each names an existing policy, by ID or by Name.
    fn resolve_links(&self, links: &[PolicyLink]) -> Result<Vec<String>, DomainError> {
        let policies = self.policies()?;
        let mut out: Vec<String> = Vec::new();
        for l in links {
            let found = match (l.id.as_deref().filter(|s| !s.is_empty()), l.name.as_deref().filter(|s| !s.is_empty())) {
                (Some(id), _) => policies.iter().find(|p| p.id == id).ok_or_else(|| format!("ID {id:?}")),
                (None, Some(name)) => policies.iter().find(|p| p.name == name).ok_or_else(|| format!("name {name:?}")),
                (None, None) => return Err(invalid("Invalid Token: a policy link needs an ID or a Name")),
            };
            let p = found.map_err(|what| invalid(format!("No such ACL policy with {what}")))?;
            if !out.contains(&p.id) {
                out.push(p.id.clone());
            }
        }
        Ok(out)
    }

    /// Create (`accessor: None`) or update a token; returns it as stored. An update replaces
    /// the description and policies and keeps the secret (a different one is refused). The
    /// anonymous token exists once an operator updates it (to give anonymous requests rules).
    pub async fn put_token(&self, accessor: Option<&str>, input: TokenInput) -> Result<AclToken, DomainError> {
        let policies = self.resolve_links(&input.policies)?;
        let body_accessor = input.accessor_id.as_deref().filter(|s| !s.is_empty());
        let body_secret = input.secret_id.as_deref().filter(|s| !s.is_empty());
        let (token, create) = match accessor {
            None => {
                let accessor_id = body_accessor.map(str::to_string).unwrap_or_else(new_uuid);
                let secret_id = body_secret.map(str::to_string).unwrap_or_else(new_uuid);
                check_uuid("AccessorID", &accessor_id)?;
                check_uuid("SecretID", &secret_id)?;
                let t = AclToken {
                    accessor_id,
                    secret_id,
                    description: input.description,
                    policies,
                    local: input.local,
                    create_time_ms: 0,
                    create_index: 0,
                    modify_index: 0,
                };
                (t, true)
            }
            Some(path) => {
                if body_accessor.is_some_and(|b| b != path) {
                    return Err(invalid("Token AccessorID in URL and payload do not match"));
                }
                let old = match self.token(path) {
                    Err(DomainError::Forbidden(_)) if path == ANONYMOUS_ID => None,
                    other => Some(other?),
                };
                let secret_id = match &old {
                    Some(o) => body_secret.unwrap_or(&o.secret_id).to_string(),
                    None => "anonymous".to_string(),
                };
                let t = AclToken {
                    accessor_id: path.to_string(),
                    secret_id,
                    description: input.description,
                    policies,
                    local: old.as_ref().map(|o| o.local).unwrap_or(false),
                    create_time_ms: 0,
                    create_index: 0,
                    modify_index: 0,
                };
                (t, old.is_none())
            }
        };
        let accessor_id = token.accessor_id.clone();
        self.propose(AuthCmd::AclTokenPut { token, create }).await?;
        self.token(&accessor_id)
    }

    /// `PUT /v1/acl/token/<id>/clone`: a new token with the same policies.
    pub async fn clone_token(&self, accessor: &str, description: Option<String>) -> Result<AclToken, DomainError> {
        let old = self.token(accessor)?;
        let links = old.policies.iter().map(|id| PolicyLink { id: Some(id.clone()), name: None }).collect();
        let input = TokenInput {
            description: description.filter(|d| !d.is_empty()).unwrap_or(old.description),
            policies: links,
            local: old.local,
            ..TokenInput::default()
        };
        self.put_token(None, input).await
    }

    pub async fn delete_token(&self, accessor: &str) -> Result<(), DomainError> {
        self.propose(AuthCmd::AclTokenDelete { accessor_id: accessor.to_string() }).await
    }
}
