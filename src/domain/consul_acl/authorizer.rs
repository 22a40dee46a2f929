//! Deciding one access with Consul's semantics: the rule governing a name is its exact rule,
//! else its longest prefix rule; when a token's policies set the same rule, deny beats write
//! beats list beats read; `write` grants read and list, `read` and `list` only themselves, and
//! `deny` stops the search. A name no rule covers falls to the default policy, which never grants
//! ACL management (Consul's allow-all is not management). Management is `acl = "write"`.
//!
//! A Nacos access token maps onto Nacos' own permissions: an administrator manages everything;
//! another user reaches services through its naming permissions in namespace `public` (group
//! `DEFAULT_GROUP`), reads nodes and the agent, and nothing else (KV, sessions, events,
//! operator): the Consul API gives a Nacos user no more than the Nacos API does.

use std::collections::HashMap;

use super::rules::Access;
use super::rules::Kind;
use super::rules::Rule;
use crate::domain::auth::Action;
use crate::domain::auth::AuthService;
use crate::domain::auth::Need;
use crate::domain::auth::Principal;
use crate::domain::auth::Resource;

/// A permission a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Read,
    List,
    Write,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::List => "list",
            Perm::Write => "write",
        }
    }
}

/// The rules of one kind.
#[derive(Debug, Clone, Default)]
struct Tree {
    exact: HashMap<String, Access>,
    /// Longest first, so the first match is the most specific.
    prefix: Vec<(String, Access)>,
}

impl Tree {
    fn add(&mut self, name: &str, prefix: bool, access: Access) {
        if !prefix {
            self.exact.entry(name.to_string()).and_modify(|a| *a = a.merge(access)).or_insert(access);
            return;
        }
        match self.prefix.iter_mut().find(|(p, _)| p == name) {
            Some((_, a)) => *a = a.merge(access),
            None => {
                self.prefix.push((name.to_string(), access));
                self.prefix.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            }
        }
    }

    fn longest_prefix(&self, name: &str) -> Option<Access> {
        self.prefix.iter().find(|(p, _)| name.starts_with(p.as_str())).map(|(_, a)| *a)
    }

    /// The rule governing `name`: its exact rule, else its longest prefix rule.
    fn lookup(&self, name: &str) -> Option<Access> {
        self.exact.get(name).copied().or_else(|| self.longest_prefix(name))
    }

    /// Every rule about names at or under `prefix`.
    fn within<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = Access> + 'a {
        let exact = self.exact.iter().filter(move |(n, _)| n.starts_with(prefix)).map(|(_, a)| *a);
        exact.chain(self.prefix.iter().filter(move |(n, _)| n.starts_with(prefix)).map(|(_, a)| *a))
    }
}

/// A token's policies, merged.
#[derive(Debug, Clone, Default)]
pub struct PolicyRules {
    trees: Vec<Tree>,
}

impl PolicyRules {
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> PolicyRules {
        let mut trees = vec![Tree::default(); Kind::ALL.len()];
        for r in rules {
            let name = if r.kind.named() { r.name.as_str() } else { "" };
            trees[r.kind.index()].add(name, r.prefix && r.kind.named(), r.access);
        }
        PolicyRules { trees }
    }

    fn tree(&self, kind: Kind) -> Option<&Tree> {
        self.trees.get(kind.index())
    }
}

/// Consul's `enforce`: what a rule's level decides for a wanted permission.
fn enforce(rule: Access, perm: Perm) -> bool {
    match rule {
        Access::Write => true,
        Access::List => perm == Perm::List,
        Access::Read => perm == Perm::Read,
        Access::Deny => false,
    }
}

/// What one caller may do.
pub enum Authorizer {
    /// ACLs are off.
    AllowAll,
    /// A Consul token (or the anonymous one): its policies, then the default policy.
    Rules { rules: PolicyRules, default_allow: bool },
    /// A Nacos access token.
    Nacos { principal: Principal, auth: AuthService },
}

impl Authorizer {
    pub fn allows(&self, kind: Kind, name: &str, perm: Perm) -> bool {
        match self {
            Authorizer::AllowAll => true,
            Authorizer::Rules { rules, default_allow } => {
                let name = if kind.named() { name } else { "" };
                match rules.tree(kind).and_then(|t| t.lookup(name)) {
                    Some(a) => enforce(a, perm),
                    None => *default_allow && kind != Kind::Acl,
                }
            }
            Authorizer::Nacos { principal, auth } => nacos_allows(principal, auth, kind, name, perm),
        }
    }

    /// A recursive key delete: the longest prefix rule covering `prefix` grants write (or none
    /// does and the default allows), and no rule at or under it withholds write.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        let Authorizer::Rules { rules, default_allow } = self else {
            return self.allows(Kind::Key, prefix, Perm::Write);
        };
        let Some(t) = rules.tree(Kind::Key) else { return *default_allow };
        if t.within(prefix).any(|a| a != Access::Write) {
            return false;
        }
        match t.longest_prefix(prefix) {
            Some(a) => a == Access::Write,
            None => *default_allow,
        }
    }

    /// `acl = "write"`: tokens, policies, snapshots, and anything without a rule of its own.
    pub fn is_management(&self) -> bool {
        self.allows(Kind::Acl, "", Perm::Write)
    }

    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Authorizer::Nacos { principal, .. } => Some(principal),
            _ => None,
        }
    }
}

/// The Nacos resource of a Consul service: namespace `public`, group `DEFAULT_GROUP`.
fn naming(p: &Principal, auth: &AuthService, service: &str, action: Action) -> bool {
    let res = Resource { namespace: "public", group: "DEFAULT_GROUP", kind: "naming", name: service };
    auth.authorize(Some(p), &Need::Resource(res, action)).is_ok()
}

fn nacos_allows(p: &Principal, auth: &AuthService, kind: Kind, name: &str, perm: Perm) -> bool {
    if p.admin {
        return true;
    }
    let action = if perm == Perm::Write { Action::Write } else { Action::Read };
    match kind {
        Kind::Service => naming(p, auth, name, action),
        // Every catalog answer carries node names: reading them is any user's. Writing a node
        // (a catalog registration that creates or changes one) needs write on every service.
        Kind::Node if perm != Perm::Write => true,
        Kind::Node => naming(p, auth, "", Action::Write),
        Kind::Agent => perm != Perm::Write,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::parse;
    use super::*;

    fn authz(text: &str, default_allow: bool) -> Authorizer {
        let rules = parse(text).unwrap();
        Authorizer::Rules { rules: PolicyRules::new(&rules), default_allow }
    }

    #[test]
    fn exact_beats_longest_prefix() {
        let a = authz(
            r#"key_prefix "" { policy = "read" }
               key_prefix "app/" { policy = "write" }
               key_prefix "app/secret/" { policy = "deny" }
               key "app/secret/open" { policy = "read" }"#,
            false,
        );
        assert!(a.allows(Kind::Key, "other", Perm::Read));
        assert!(!a.allows(Kind::Key, "other", Perm::Write));
        assert!(a.allows(Kind::Key, "app/x", Perm::Write));
        assert!(a.allows(Kind::Key, "app/x", Perm::Read), "write implies read");
        assert!(!a.allows(Kind::Key, "app/secret/x", Perm::Read));
        assert!(a.allows(Kind::Key, "app/secret/open", Perm::Read));
        assert!(!a.allows(Kind::Key, "app/secret/open", Perm::Write));
        assert!(!a.allows(Kind::Key, "other", Perm::List), "read does not grant list");
    }

    #[test]
    fn deny_wins_at_equal_specificity_across_policies() {
        let mut rules = parse(r#"service "web" { policy = "write" }"#).unwrap();
        rules.extend(parse(r#"service "web" { policy = "deny" }"#).unwrap());
        rules.extend(parse(r#"service_prefix "w" { policy = "read" }"#).unwrap());
        rules.extend(parse(r#"service_prefix "w" { policy = "write" }"#).unwrap());
        let a = Authorizer::Rules { rules: PolicyRules::new(&rules), default_allow: true };
        assert!(!a.allows(Kind::Service, "web", Perm::Read));
        assert!(a.allows(Kind::Service, "worker", Perm::Write), "write beats read at the same prefix");
    }

    #[test]
    fn default_policy_and_management() {
        let deny = authz(r#"node_prefix "" { policy = "read" }"#, false);
        assert!(!deny.allows(Kind::Key, "k", Perm::Read));
        assert!(deny.allows(Kind::Node, "n", Perm::Read));
        assert!(!deny.is_management());
        let allow = authz("", true);
        assert!(allow.allows(Kind::Key, "k", Perm::Write));
        assert!(allow.allows(Kind::Operator, "", Perm::Write));
        assert!(!allow.is_management(), "the default policy never grants ACL management");
        let mgmt = authz(crate::state_machine::auth::GLOBAL_MANAGEMENT_RULES, false);
        assert!(mgmt.is_management());
        assert!(mgmt.allows(Kind::Session, "any", Perm::Write));
        assert!(mgmt.key_write_prefix(""));
        assert!(mgmt.allows(Kind::Operator, "", Perm::Write));
    }

    #[test]
    fn recursive_delete_needs_write_on_everything_under() {
        let a = authz(
            r#"key_prefix "app/" { policy = "write" }
               key "app/keep" { policy = "read" }
               key_prefix "b/" { policy = "write" }"#,
            false,
        );
        assert!(!a.key_write_prefix("app/"), "a read-only key under the prefix");
        assert!(a.key_write_prefix("app/x/"));
        assert!(a.key_write_prefix("b/"));
        assert!(!a.key_write_prefix(""), "the root is not covered by a write rule");
        assert!(!a.key_write_prefix("c/"));
    }
}
