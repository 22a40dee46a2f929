//! Managing users, role bindings and permissions (Nacos' `/v1/auth/*` and `/v3/auth/*`), and the
//! first administrator. Hashes are computed here, before proposing, so apply stays
//! deterministic; every rule Nacos enforces on these calls is checked before anything is stored.

use super::auth::hash_password;
use super::auth::AuthService;
use super::DomainError;
use crate::state_machine::auth::AuthCmd;
use crate::state_machine::auth::ADMIN_USER;
use crate::state_machine::auth::ROLE_ADMIN;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;

/// A random password from a v4 UUID (already a dependency): 32 hex digits, 122 random bits.
fn random_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const MAX_NAME: usize = 128;

fn check_name(what: &str, v: &str) -> Result<(), DomainError> {
    if v.trim().is_empty() || v.len() > MAX_NAME || v.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!("{what} must be 1-{MAX_NAME} printable characters")));
    }
    Ok(())
}

/// A page of a list, Nacos' shape.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub total_count: usize,
    pub page_number: usize,
    pub pages_available: usize,
    pub page_items: Vec<T>,
}

pub fn page<T>(items: Vec<T>, page_no: usize, page_size: usize) -> Page<T> {
    let size = page_size.clamp(1, 1000);
    let no = page_no.max(1);
    let total = items.len();
    Page {
        total_count: total,
        page_number: no,
        pages_available: total.div_ceil(size),
        page_items: items.into_iter().skip((no - 1) * size).take(size).collect(),
    }
}

fn reply(a: Applied, what: &str) -> Result<(), DomainError> {
    match a {
        Applied::Ok { .. } => Ok(()),
        Applied::AlreadyExists => Err(DomainError::Conflict(format!("{what} already exist!"))),
        Applied::NotFound => Err(DomainError::NotFound(format!("{what} not found!"))),
        Applied::Rejected { reason } => Err(DomainError::Invalid(reason)),
        other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
    }
}

impl AuthService {
    async fn propose(&self, cmd: AuthCmd, what: &str) -> Result<(), DomainError> {
        reply(self.node().write(Command::Auth(cmd)).await?, what)
    }

    pub async fn create_user(&self, username: &str, password: &str) -> Result<(), DomainError> {
        check_name("username", username)?;
        let password_hash = hash_password(password.to_string()).await?;
        self.propose(AuthCmd::CreateUser { username: username.into(), password_hash }, &format!("user '{username}'"))
            .await
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), DomainError> {
        let password_hash = hash_password(password.to_string()).await?;
        self.propose(AuthCmd::SetPassword { username: username.into(), password_hash }, &format!("user {username}"))
            .await
    }

    /// Administrators cannot be deleted (Nacos' rule): the cluster would lose its last admin.
    pub async fn delete_user(&self, username: &str) -> Result<(), DomainError> {
        if self.view()?.is_admin(username) {
            return Err(DomainError::Invalid(format!("cannot delete admin: {username}")));
        }
        self.propose(AuthCmd::DeleteUser { username: username.into() }, &format!("user {username}")).await
    }

    pub fn users(&self, search: Option<&str>) -> Result<Vec<String>, DomainError> {
        let v = self.view()?;
        Ok(v.state.users.keys().filter(|u| search.is_none_or(|s| u.contains(s))).cloned().collect())
    }

    /// Binding `ROLE_ADMIN` is refused, as in Nacos: administrators are made at first run only.
    pub async fn bind_role(&self, role: &str, username: &str) -> Result<(), DomainError> {
        check_name("role", role)?;
        if role == ROLE_ADMIN {
            return Err(DomainError::Invalid(format!("role '{ROLE_ADMIN}' is not permitted to create!")));
        }
        self.propose(
            AuthCmd::BindRole { role: role.into(), username: username.into() },
            &format!("role {role} of {username}"),
        )
        .await
    }

    pub async fn unbind_role(&self, role: &str, username: Option<&str>) -> Result<(), DomainError> {
        if role == ROLE_ADMIN {
            return Err(DomainError::Invalid(format!("role '{ROLE_ADMIN}' cannot be removed")));
        }
        let cmd = AuthCmd::UnbindRole { role: role.into(), username: username.map(str::to_string) };
        self.propose(cmd, &format!("role {role}")).await
    }

    /// (role, username) bindings, optionally of one user or one role.
    pub fn roles(&self, username: Option<&str>, role: Option<&str>) -> Result<Vec<(String, String)>, DomainError> {
        let v = self.view()?;
        Ok(v.state
            .bindings
            .iter()
            .filter(|(u, r)| username.is_none_or(|x| x == u) && role.is_none_or(|x| x == r))
            .map(|(u, r)| (r.clone(), u.clone()))
            .collect())
    }

    pub async fn add_permission(&self, role: &str, resource: &str, action: &str) -> Result<(), DomainError> {
        check_name("resource", resource)?;
        if !matches!(action, "r" | "w" | "rw") {
            return Err(DomainError::Invalid(format!("action must be r, w or rw, got {action:?}")));
        }
        if !self.view()?.state.bindings.iter().any(|(_, r)| r == role) {
            return Err(DomainError::NotFound(format!("role {role} not found!")));
        }
        let cmd = AuthCmd::AddPermission { role: role.into(), resource: resource.into(), action: action.into() };
        self.propose(cmd, &format!("permission {role} {resource} {action}")).await
    }

    pub async fn remove_permission(&self, role: &str, resource: &str, action: &str) -> Result<(), DomainError> {
        let cmd = AuthCmd::RemovePermission { role: role.into(), resource: resource.into(), action: action.into() };
        self.propose(cmd, &format!("permission {role} {resource} {action}")).await
    }

    /// (role, resource, action), optionally of one role.
    pub fn permissions(&self, role: Option<&str>) -> Result<Vec<(String, String, String)>, DomainError> {
        let v = self.view()?;
        Ok(v.state.permissions.iter().filter(|(r, _, _)| role.is_none_or(|x| x == r)).cloned().collect())
    }

    /// The Nacos 3 first-run initialization: creates `nacos` as administrator with the given or
    /// a random password, once. Returns the password; `Conflict` when an admin exists.
    pub async fn init_admin(&self, password: Option<&str>) -> Result<String, DomainError> {
        if self.view()?.admin_exists() {
            return Err(DomainError::Conflict("admin user exists".into()));
        }
        let password = password.filter(|p| !p.is_empty()).map(str::to_string).unwrap_or_else(random_password);
        let password_hash = hash_password(password.clone()).await?;
        match self.node().write(Command::Auth(AuthCmd::InitAdmin { password_hash })).await? {
            Applied::Ok { .. } => {
                tracing::info!(target: "audit", user = ADMIN_USER, "first administrator created");
                Ok(password)
            }
            Applied::AlreadyExists => Err(DomainError::Conflict("admin user exists".into())),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    /// At start: creates the administrator from `BATATA_ADMIN_PASSWORD` once the cluster can
    /// take writes, unless one exists. Every node may try; apply lets exactly one win.
    pub async fn ensure_admin(&self, password: String) {
        for attempt in 0u32.. {
            match self.view() {
                Ok(v) if v.admin_exists() => return,
                _ => {}
            }
            match self.init_admin(Some(&password)).await {
                Ok(_) | Err(DomainError::Conflict(_)) => return,
                Err(DomainError::Invalid(m)) => {
                    tracing::error!("BATATA_ADMIN_PASSWORD: {m}");
                    return;
                }
                Err(e) if attempt % 20 == 0 => tracing::info!("admin initialization waits for the cluster: {e}"),
                Err(_) => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
