//! Replicated security state: Nacos users, role bindings and permissions (RBAC), and Consul ACL
//! policies and tokens. Everything here changes rarely and is read on every request, so the
//! domain keeps a copy in memory, refreshed when the `Acl` table index moves.
//!
//! Secrets are never derived in apply: password hashes (bcrypt, salted at random) and token ids
//! are computed by the proposer and carried in the entry, so every replica stores the same bytes.

use serde::Deserialize;
use serde::Serialize;

/// Nacos' global administrator role.
pub const ROLE_ADMIN: &str = "ROLE_ADMIN";
/// The first administrator's user name, as in Nacos.
pub const ADMIN_USER: &str = "nacos";
/// Consul's built-in policy granting everything.
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_NAME: &str = "global-management";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserItem {
    /// bcrypt (`$2a$`/`$2b$`), as Nacos stores it.
    pub password_hash: String,
    pub create_time_ms: u64,
    /// Leader time of the last password change: tokens issued before it stop working.
    pub password_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclPolicy {
    pub id: String,
    pub name: String,
    pub description: String,
    /// HCL or JSON rules, kept as given (Consul echoes them back).
    pub rules: String,
    pub datacenters: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclToken {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    /// Policy ids.
    pub policies: Vec<String>,
    pub local: bool,
    pub create_time_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Every security mutation. Replies: `Ok`, `AlreadyExists`, `NotFound`, or `Rejected` with the
/// reason (checked against replicated state, so every replica agrees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthCmd {
    CreateUser {
        username: String,
        password_hash: String,
    },
    SetPassword {
        username: String,
        password_hash: String,
    },
    /// Removes the user and its role bindings.
    DeleteUser {
        username: String,
    },
    /// Creates `nacos` with `ROLE_ADMIN` unless some user already holds `ROLE_ADMIN`
    /// (`AlreadyExists`): the first-run admin initialization, safe to race.
    InitAdmin {
        password_hash: String,
    },
    BindRole {
        role: String,
        username: String,
    },
    /// `username: None` removes the role from everyone and drops its permissions.
    UnbindRole {
        role: String,
        username: Option<String>,
    },
    AddPermission {
        role: String,
        resource: String,
        action: String,
    },
    RemovePermission {
        role: String,
        resource: String,
        action: String,
    },
    /// Consul `PUT /v1/acl/bootstrap`: once per cluster; creates `global-management` and a
    /// token linked to it.
    AclBootstrap {
        accessor_id: String,
        secret_id: String,
    },
    /// Create (`create`, `AlreadyExists` on a taken id) or update (`NotFound` if absent) a
    /// policy; names are unique.
    AclPolicyPut {
        policy: AclPolicy,
        create: bool,
    },
    AclPolicyDelete {
        id: String,
    },
    /// Create or update a token; its policies must exist and its secret be unique.
    AclTokenPut {
        token: AclToken,
        create: bool,
    },
    AclTokenDelete {
        accessor_id: String,
    },
}

impl AuthCmd {
    pub fn name(&self) -> &'static str {
        match self {
            AuthCmd::CreateUser { .. } => "auth.create_user",
            AuthCmd::SetPassword { .. } => "auth.set_password",
            AuthCmd::DeleteUser { .. } => "auth.delete_user",
            AuthCmd::InitAdmin { .. } => "auth.init_admin",
            AuthCmd::BindRole { .. } => "auth.bind_role",
            AuthCmd::UnbindRole { .. } => "auth.unbind_role",
            AuthCmd::AddPermission { .. } => "auth.add_permission",
            AuthCmd::RemovePermission { .. } => "auth.remove_permission",
            AuthCmd::AclBootstrap { .. } => "acl.bootstrap",
            AuthCmd::AclPolicyPut { .. } => "acl.policy_put",
            AuthCmd::AclPolicyDelete { .. } => "acl.policy_delete",
            AuthCmd::AclTokenPut { .. } => "acl.token_put",
            AuthCmd::AclTokenDelete { .. } => "acl.token_delete",
        }
    }
}

/// The whole security state, as the domain caches it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthState {
    pub users: std::collections::BTreeMap<String, UserItem>,
    /// (username, role).
    pub bindings: Vec<(String, String)>,
    /// (role, resource, action).
    pub permissions: Vec<(String, String, String)>,
    pub policies: Vec<AclPolicy>,
    pub tokens: Vec<AclToken>,
    /// Log index of the Consul ACL bootstrap, if done.
    pub acl_bootstrap_index: Option<u64>,
}

/// The rules of Consul's `global-management` policy.
pub const GLOBAL_MANAGEMENT_RULES: &str = r#"acl = "write"
agent_prefix "" { policy = "write" }
event_prefix "" { policy = "write" }
key_prefix "" { policy = "write" }
keyring = "write"
node_prefix "" { policy = "write" }
operator = "write"
query_prefix "" { policy = "write" }
service_prefix "" { policy = "write" }
session_prefix "" { policy = "write" }
"#;
