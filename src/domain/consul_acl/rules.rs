//! Consul ACL rules as policies carry them, in HCL or JSON:
//!
//! ```hcl
//! key_prefix "app/" { policy = "write" }
//! service "web" { policy = "read" }
//! operator = "read"
//! ```
//!
//! Named resources (`key`, `service`, `node`, `session`, `agent`, `event`, `query`, each also as
//! `<kind>_prefix`) take a block per name; `operator`, `acl`, `keyring` (and `mesh`, `peering`,
//! parsed but never asked for) take a bare level. Levels are `read`, `write`, `deny`, and `list`
//! for keys. Unknown resource names are ignored, as Consul ignores them; a bad level is an error,
//! so a typo cannot silently grant or withhold what the author meant.

use serde_json::Map;
use serde_json::Value;

/// An access level a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Deny,
    Read,
    List,
    Write,
}

impl Access {
    fn parse(resource: &str, v: &str) -> Result<Access, String> {
        match v {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            "deny" => Ok(Access::Deny),
            "list" if resource == "key" => Ok(Access::List),
            _ => Err(format!("Invalid {resource} policy: {v:?}")),
        }
    }

    /// Consul's precedence when two policies of one token set the same rule: deny, then write,
    /// then list, then read.
    fn rank(self) -> u8 {
        match self {
            Access::Read => 0,
            Access::List => 1,
            Access::Write => 2,
            Access::Deny => 3,
        }
    }

    pub fn merge(self, other: Access) -> Access {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// A kind of resource. The first seven are named (exact and prefix rules); the others are a
/// single level each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Key,
    Service,
    Node,
    Session,
    Agent,
    Event,
    Query,
    Operator,
    Acl,
    Keyring,
    Mesh,
    Peering,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Key,
        Kind::Service,
        Kind::Node,
        Kind::Session,
        Kind::Agent,
        Kind::Event,
        Kind::Query,
        Kind::Operator,
        Kind::Acl,
        Kind::Keyring,
        Kind::Mesh,
        Kind::Peering,
    ];

    /// Consul's spelling, as in `lacks permission 'key:read'`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Service => "service",
            Kind::Node => "node",
            Kind::Session => "session",
            Kind::Agent => "agent",
            Kind::Event => "event",
            Kind::Query => "query",
            Kind::Operator => "operator",
            Kind::Acl => "acl",
            Kind::Keyring => "keyring",
            Kind::Mesh => "mesh",
            Kind::Peering => "peering",
        }
    }

    /// Whether rules of this kind name resources.
    pub fn named(self) -> bool {
        !matches!(self, Kind::Operator | Kind::Acl | Kind::Keyring | Kind::Mesh | Kind::Peering)
    }

    pub fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// `key` → (Key, exact), `key_prefix` → (Key, prefix); `None` for anything else.
    fn of_ident(ident: &str) -> Option<(Kind, bool)> {
        let (base, prefix) = match ident.strip_suffix("_prefix") {
            Some(b) => (b, true),
            None => (ident, false),
        };
        Kind::ALL.iter().copied().find(|k| k.named() && k.as_str() == base).map(|k| (k, prefix))
    }

    fn scoped(ident: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| !k.named() && k.as_str() == ident)
    }
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    /// Empty for single-level kinds.
    pub name: String,
    pub prefix: bool,
    pub access: Access,
}

fn bad(msg: impl std::fmt::Display) -> String {
    format!("Failed to parse ACL rules: {msg}")
}

/// Parses rules: JSON when the text is an object, HCL otherwise. Empty rules grant nothing.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let t = text.trim();
    let mut out = Vec::new();
    if t.is_empty() {
        return Ok(out);
    }
    if t.starts_with('{') {
        let v: Value = serde_json::from_str(t).map_err(bad)?;
        let Value::Object(top) = v else { return Err(bad("expected an object")) };
        from_json(&top, &mut out)?;
    } else {
        let body = hcl::parse(t).map_err(bad)?;
        from_hcl(&body, &mut out)?;
    }
    Ok(out)
}

fn push_named(out: &mut Vec<Rule>, kind: Kind, prefix: bool, name: &str, policy: Option<&str>) -> Result<(), String> {
    // A block without `policy` (e.g. only `intentions`) grants no access of its own.
    if let Some(p) = policy {
        let access = Access::parse(kind.as_str(), p)?;
        out.push(Rule { kind, name: name.to_string(), prefix, access });
    }
    Ok(())
}

/// `{"key_prefix": {"app/": {"policy": "write"}}, "operator": "read"}`; a named kind may also
/// hold a list of such objects (HCL's JSON form of repeated blocks).
fn from_json(top: &Map<String, Value>, out: &mut Vec<Rule>) -> Result<(), String> {
    for (ident, val) in top {
        if let Some(kind) = Kind::scoped(ident) {
            let Value::String(s) = val else { return Err(bad(format!("{ident} must be a string"))) };
            out.push(Rule { kind, name: String::new(), prefix: false, access: Access::parse(ident, s)? });
            continue;
        }
        let Some((kind, prefix)) = Kind::of_ident(ident) else { continue };
        let blocks: Vec<&Map<String, Value>> = match val {
            Value::Object(m) => vec![m],
            Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
            _ => return Err(bad(format!("{ident} must be an object of names"))),
        };
        for m in blocks {
            for (name, body) in m {
                let body = match body {
                    Value::Array(a) => a.first().unwrap_or(&Value::Null),
                    b => b,
                };
                let Value::Object(b) = body else { return Err(bad(format!("{ident} {name:?} must be an object"))) };
                let policy = match b.get("policy") {
                    None => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => return Err(bad(format!("{ident} {name:?}: policy must be a string"))),
                };
                push_named(out, kind, prefix, name, policy)?;
            }
        }
    }
    Ok(())
}

/// An HCL expression as JSON, for the attribute form `key = { "a" = { policy = "read" } }`.
fn expr_json(e: &hcl::Expression) -> Option<Value> {
    use hcl::Expression as E;
    Some(match e {
        E::Null => Value::Null,
        E::Bool(b) => Value::Bool(*b),
        E::String(s) => Value::String(s.clone()),
        E::Array(a) => Value::Array(a.iter().map(expr_json).collect::<Option<Vec<_>>>()?),
        E::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                let key = match k {
                    hcl::ObjectKey::Identifier(i) => i.as_str().to_string(),
                    hcl::ObjectKey::Expression(E::String(s)) => s.clone(),
                    _ => return None,
                };
                m.insert(key, expr_json(v)?);
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

fn from_hcl(body: &hcl::Body, out: &mut Vec<Rule>) -> Result<(), String> {
    for s in body.iter() {
        match s {
            hcl::Structure::Attribute(a) => {
                let ident = a.key();
                if Kind::scoped(ident).is_none() && Kind::of_ident(ident).is_none() {
                    continue;
                }
                let v = expr_json(a.expr()).ok_or_else(|| bad(format!("{ident}: unsupported expression")))?;
                let mut top = Map::new();
                top.insert(ident.to_string(), v);
                from_json(&top, out)?;
            }
            hcl::Structure::Block(b) => {
                let ident = b.identifier();
                let Some((kind, prefix)) = Kind::of_ident(ident) else { continue };
                let [label] = b.labels() else {
                    return Err(bad(format!("{ident} rules take exactly one name")));
                };
                let mut policy = None;
                for a in b.body().attributes().filter(|a| a.key() == "policy") {
                    match a.expr() {
                        hcl::Expression::String(s) => policy = Some(s.as_str()),
                        _ => return Err(bad(format!("{ident} {:?}: policy must be a string", label.as_str()))),
                    }
                }
                push_named(out, kind, prefix, label.as_str(), policy)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: Kind, name: &str, prefix: bool, access: Access) -> Rule {
        Rule { kind, name: name.into(), prefix, access }
    }

    #[test]
    fn hcl_rules() {
        let r = parse(
            r#"
            key_prefix "app/" { policy = "write" }
            key "app/secret" { policy = "deny" }
            service_prefix "" { policy = "read" }
            node "n1" { policy = "write" }
            service "web" { intentions = "read" }
            operator = "read"
            acl = "write"
            unknown_thing "x" { policy = "write" }
            "#,
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                rule(Kind::Key, "app/", true, Access::Write),
                rule(Kind::Key, "app/secret", false, Access::Deny),
                rule(Kind::Service, "", true, Access::Read),
                rule(Kind::Node, "n1", false, Access::Write),
                rule(Kind::Operator, "", false, Access::Read),
                rule(Kind::Acl, "", false, Access::Write),
            ]
        );
    }

    #[test]
    fn json_rules_and_the_attribute_form() {
        let mut r =
            parse(r#"{"key_prefix": {"a/": {"policy": "list"}}, "event": [{"deploy": {"policy": "write"}}], "keyring": "read"}"#)
                .unwrap();
        // JSON object order is not kept: compare in kind order.
        r.sort_by_key(|x| x.kind.index());
        assert_eq!(
            r,
            vec![
                rule(Kind::Key, "a/", true, Access::List),
                rule(Kind::Event, "deploy", false, Access::Write),
                rule(Kind::Keyring, "", false, Access::Read),
            ]
        );
        let r = parse(r#"session_prefix = { "" = { policy = "write" } }"#).unwrap();
        assert_eq!(r, vec![rule(Kind::Session, "", true, Access::Write)]);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(parse(r#"key "a" { policy = "writ" }"#).unwrap_err().contains("Invalid key policy"));
        assert!(parse(r#"service "a" { policy = "list" }"#).unwrap_err().contains("Invalid service policy"));
        assert!(parse(r#"operator = "all""#).is_err());
        assert!(parse("key_prefix {").is_err());
        assert!(parse(r#"{"key": 3}"#).is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn precedence_deny_write_list_read() {
        assert_eq!(Access::Read.merge(Access::Write), Access::Write);
        assert_eq!(Access::Write.merge(Access::Deny), Access::Deny);
        assert_eq!(Access::List.merge(Access::Read), Access::List);
    }
}
