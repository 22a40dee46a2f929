//! The one ACL gate of the Consul API. Every Consul route is reached through [`gate`]: it
//! resolves the token (`?token=`, then `X-Consul-Token`, then `Authorization: Bearer`), looks up
//! what the route needs in one table ([`classify`]), refuses the request when the token lacks
//! it, and hands the resolved [`Acl`] to the handler as a request extension, so list endpoints
//! filter their items and body-named writes check their resource the way Consul does. A route
//! missing from the table needs management, so a route added later is closed until declared.
//!
//! With ACLs off (Nacos auth off) every request passes with an allow-all `Acl` and `/v1/acl/*`
//! answer Consul's 401 `ACL support disabled`.

use axum::extract::Request;
use axum::extract::State;
use axum::http::header::HeaderValue;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::caller::denied_text;
use super::caller::Acl;
use super::error;
use super::ConsulQuery;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_acl::ConsulAcl;
use crate::domain::DomainError;
use crate::http::AppState;

/// What a route needs before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// No identity: the datacenter list, and the bootstrap (refused by the domain once done).
    Open,
    /// Any valid token; the handler decides (`/v1/acl/token/self`).
    Token,
    /// One permission, named by the path.
    Perm(Kind, String, Perm),
    /// Write on every key under a prefix (recursive delete).
    KeyWritePrefix(String),
    /// The handler checks each item: lists filter, writes check the resource their body or
    /// their target names.
    Items,
    /// ACL management (`acl = "write"`).
    Management,
}

/// Decodes `%XX` in a path segment as axum's `Path` does; `None` if not UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The table: what `method path` needs. `agent` is this server's node name (the agent's).
pub fn classify(method: &Method, path: &str, q: &ConsulQuery, agent: &str) -> Need {
    let Some(rest) = path.strip_prefix("/v1/") else { return Need::Management };
    let read = matches!(*method, Method::GET | Method::HEAD);
    let perm = |kind: Kind, name: &str, p: Perm| Need::Perm(kind, name.to_string(), p);
    let tail = |prefix: &str| rest.strip_prefix(prefix).and_then(decode);
    if let Some(key) = tail("kv/") {
        let export = super::kv_export::is_export(&key, q) && read;
        let import = super::kv_export::is_import(&key, q) && *method == Method::PUT;
        return match *method {
            _ if export || import => Need::Items,
            Method::GET | Method::HEAD if q.flag("recurse") || q.flag("keys") => Need::Items,
            Method::GET | Method::HEAD => perm(Kind::Key, &key, Perm::Read),
            Method::DELETE if q.flag("recurse") && !q.flag("cas") => Need::KeyWritePrefix(key),
            _ => perm(Kind::Key, &key, Perm::Write),
        };
    }
    if let Some(name) = tail("event/fire/") {
        return perm(Kind::Event, &name, Perm::Write);
    }
    if let Some(name) = tail("agent/health/service/name/") {
        return perm(Kind::Service, &name, Perm::Read);
    }
    match rest {
        "catalog/datacenters" | "acl/bootstrap" => return Need::Open,
        "acl/token/self" => return Need::Token,
        "agent/self" => return perm(Kind::Agent, agent, Perm::Read),
        "agent/maintenance" => return perm(Kind::Node, agent, Perm::Write),
        "operator/raft/configuration" => return perm(Kind::Operator, "", Perm::Read),
        _ => {}
    }
    if rest.starts_with("acl/") {
        return perm(Kind::Acl, "", if read { Perm::Read } else { Perm::Write });
    }
    const ITEMS: &[&str] = &[
        "txn",
        "session/",
        "event/list",
        "catalog/",
        "health/",
        "agent/members",
        "agent/services",
        "agent/checks",
        "agent/service/",
        "agent/check/",
        "agent/health/service/id/",
    ];
    if ITEMS.iter().any(|p| if p.ends_with('/') { rest.starts_with(p) } else { rest == *p }) {
        return Need::Items;
    }
    Need::Management
}

/// The token a request presents: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`.
pub fn token_of<'a>(q: &'a ConsulQuery, headers: &'a HeaderMap) -> Option<&'a str> {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    q.get("token")
        .filter(|t| !t.is_empty())
        .or_else(|| header("x-consul-token"))
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim))
}

fn forbidden(e: DomainError) -> Response {
    super::catalog::domain_error(e)
}

/// Runs the request through the table and on to `inner` (the Consul routes, state applied).
pub async fn gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let acl = &st.consul_acl;
    let default = if acl.default_allow() { "allow" } else { "deny" };
    let mut r = check(acl, st.node.id, req, next).await;
    r.headers_mut().insert("X-Consul-Default-ACL-Policy", HeaderValue::from_static(default));
    r
}

async fn check(acl: &ConsulAcl, node_id: u64, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !acl.enabled() {
        if path.starts_with("/v1/acl/") {
            return error(StatusCode::UNAUTHORIZED, "ACL support disabled");
        }
        let who = match acl.resolve(None) {
            Ok(w) => w,
            Err(e) => return forbidden(e),
        };
        req.extensions_mut().insert(Acl::new(who, None));
        return next.run(req).await;
    }
    let q = ConsulQuery::parse(req.uri().query());
    // This server's agent name, as `consul_view::server_node` names it.
    let agent = format!("batata-{node_id}");
    let need = classify(req.method(), &path, &q, &agent);
    let secret = if need == Need::Open { None } else { token_of(&q, req.headers()) };
    let who = match acl.resolve(secret) {
        Ok(w) => Acl::new(w, Some(acl.clone())),
        Err(e) => return forbidden(e),
    };
    let verdict = match &need {
        Need::Open | Need::Token | Need::Items => Ok(()),
        Need::Perm(kind, name, p) => who.check(*kind, name, *p),
        Need::KeyWritePrefix(prefix) if who.key_write_prefix(prefix) => Ok(()),
        Need::KeyWritePrefix(prefix) => Err(who.denied(Kind::Key, prefix, Perm::Write)),
        Need::Management => who.check(Kind::Acl, "", Perm::Write),
    };
    if let Err(r) = verdict {
        tracing::info!(target: "audit", accessor = %who.accessor(), method = %req.method(), %path, "consul: denied");
        return r;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) && secret.is_some() {
        tracing::info!(target: "audit", accessor = %who.accessor(), method = %req.method(), %path, "consul: write");
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// For a route served outside the Consul router that needs management with ACLs on
/// (`/v1/snapshot`).
pub async fn management_guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let acl = &st.consul_acl;
    if !acl.enabled() {
        return next.run(req).await;
    }
    let q = ConsulQuery::parse(req.uri().query());
    let who = match acl.resolve(token_of(&q, req.headers())) {
        Ok(w) => w,
        Err(e) => return forbidden(e),
    };
    if !who.authz.is_management() {
        return error(StatusCode::FORBIDDEN, denied_text(&who.accessor_id, Kind::Acl, "", Perm::Write));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path_q: &str) -> Need {
        let (path, query) = path_q.split_once('?').unwrap_or((path_q, ""));
        classify(&method, path, &ConsulQuery::parse(Some(query)), "batata-1")
    }

    #[test]
    fn the_table() {
        let key = |k: &str, p| Need::Perm(Kind::Key, k.into(), p);
        assert_eq!(need(Method::GET, "/v1/kv/app/x"), key("app/x", Perm::Read));
        assert_eq!(need(Method::GET, "/v1/kv/a%20b"), key("a b", Perm::Read));
        assert_eq!(need(Method::PUT, "/v1/kv/app/x?cas=0"), key("app/x", Perm::Write));
        assert_eq!(need(Method::GET, "/v1/kv/app/?recurse"), Need::Items);
        assert_eq!(need(Method::DELETE, "/v1/kv/app/?recurse"), Need::KeyWritePrefix("app/".into()));
        assert_eq!(need(Method::DELETE, "/v1/kv/app/x"), key("app/x", Perm::Write));
        assert_eq!(need(Method::GET, "/v1/kv/export?namespaceId=dev"), Need::Items);
        assert_eq!(need(Method::GET, "/v1/kv/export?raw"), key("export", Perm::Read));
        assert_eq!(need(Method::PUT, "/v1/kv/import"), Need::Items);
        assert_eq!(need(Method::PUT, "/v1/event/fire/deploy"), Need::Perm(Kind::Event, "deploy".into(), Perm::Write));
        assert_eq!(need(Method::GET, "/v1/agent/self"), Need::Perm(Kind::Agent, "batata-1".into(), Perm::Read));
        assert_eq!(need(Method::PUT, "/v1/agent/service/register"), Need::Items);
        assert_eq!(need(Method::GET, "/v1/catalog/services"), Need::Items);
        assert_eq!(need(Method::GET, "/v1/catalog/datacenters"), Need::Open);
        assert_eq!(need(Method::PUT, "/v1/acl/bootstrap"), Need::Open);
        assert_eq!(need(Method::GET, "/v1/acl/token/self"), Need::Token);
        assert_eq!(need(Method::GET, "/v1/acl/tokens"), Need::Perm(Kind::Acl, String::new(), Perm::Read));
        assert_eq!(need(Method::PUT, "/v1/acl/policy"), Need::Perm(Kind::Acl, String::new(), Perm::Write));
        assert_eq!(
            need(Method::GET, "/v1/operator/raft/configuration"),
            Need::Perm(Kind::Operator, String::new(), Perm::Read)
        );
        assert_eq!(need(Method::GET, "/v1/txn"), Need::Items);
        assert_eq!(need(Method::PUT, "/v1/agent/reload"), Need::Management);
        assert_eq!(need(Method::GET, "/v1/snapshot"), Need::Management);
        assert_eq!(need(Method::GET, "/v1/unknown"), Need::Management);
        assert_eq!(need(Method::GET, "/v1/agent/servicesX"), Need::Management);
    }

    #[test]
    fn token_sources_in_order() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer b"));
        let q = ConsulQuery::parse(None);
        assert_eq!(token_of(&q, &h), Some("b"));
        h.insert("x-consul-token", HeaderValue::from_static("h"));
        assert_eq!(token_of(&q, &h), Some("h"));
        let q = ConsulQuery::parse(Some("token=q"));
        assert_eq!(token_of(&q, &h), Some("q"));
    }

    #[test]
    fn denied_texts() {
        assert_eq!(
            denied_text("abc", Kind::Key, "other/x", Perm::Write),
            "Permission denied: token with AccessorID 'abc' lacks permission 'key:write' on \"other/x\""
        );
        assert_eq!(
            denied_text("abc", Kind::Operator, "", Perm::Read),
            "Permission denied: token with AccessorID 'abc' lacks permission 'operator:read'"
        );
        assert_eq!(decode("a%2Fb%zz"), Some("a/b%zz".into()));
    }
}
