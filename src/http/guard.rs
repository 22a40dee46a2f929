//! Authentication and authorization of the Nacos HTTP API: one table from route to what it
//! needs ([`rule`]), applied by one middleware to every route under the context path before any
//! handler runs. A path missing from the table needs an administrator, so a route added later
//! cannot be reached by accident. No request header earns trust by itself (no `User-Agent:
//! Nacos-Server` bypass, no server-identity header): callers present a token or a password.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;

use super::AppState;
use crate::domain::auth::Action;
use crate::domain::auth::Credentials;
use crate::domain::auth::Need;
use crate::domain::auth::Resource;
use crate::domain::DomainError;

/// Header the guard sets to the authenticated user (config history `srcUser`, audit, "is this
/// me" checks). A client-sent header of that name is always removed first.
pub const PRINCIPAL_HEADER: &str = "x-batata-principal";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Open,
    Login,
    /// A config resource named by the request's parameters; reads need `r`, writes `w`.
    Config,
    /// A registry resource named by the request's parameters.
    Naming,
    Admin,
    /// Reads need a login, writes an administrator.
    ReadLoginWriteAdmin,
}

/// The rule of a path relative to the context path. Ordered: the first match wins.
pub fn rule(method: &Method, path: &str) -> Rule {
    let p = path.trim_end_matches('/');
    match p {
        "/v1/auth/login" | "/v1/auth/users/login" | "/v3/auth/user/login" => return Rule::Open,
        // First-run initialization: refused by the domain once an administrator exists.
        "/v1/auth/users/admin" | "/v3/auth/user/admin" => return Rule::Open,
        // Health probes and metrics (scrapers carry no Nacos token).
        "/v1/console/health/liveness" | "/v1/console/health/readiness" | "/v1/ns/operator/metrics" | "/metrics" => {
            return Rule::Open
        }
        "/v3/admin/core/state/liveness" | "/v3/admin/core/state/readiness" => return Rule::Open,
        // Leader, term and indexes only: what probes and `batata cluster status` poll.
        "/v1/core/raft/status" => return Rule::Open,
        // Changing one's own password (the handler checks it is one's own, or an admin's call).
        "/v1/auth/users" | "/v3/auth/user" if method == Method::PUT => return Rule::Login,
        // Membership and snapshots are guarded by the cluster secret (`admin_guard`).
        "/v1/core/raft/learner" | "/v1/core/raft/promote" | "/v1/core/raft/member" | "/v1/core/raft/snapshot" => {
            return Rule::Open
        }
        _ => {}
    }
    let has = |prefixes: &[&str]| prefixes.iter().any(|x| p.starts_with(x));
    if has(&["/v1/auth/", "/v3/auth/"]) {
        return Rule::Admin;
    }
    if has(&["/v1/cs/", "/v2/cs/", "/v3/client/cs/", "/v3/admin/cs/", "/v3/console/cs/", "/v3/cs/"]) {
        return Rule::Config;
    }
    if has(&["/v1/ns/", "/v2/ns/", "/v3/client/ns/", "/v3/admin/ns/", "/v3/console/ns/"]) {
        return Rule::Naming;
    }
    if has(&[
        "/v1/console/namespaces",
        "/v2/console/namespace",
        "/v3/admin/core/namespace",
        "/v3/console/core/namespace",
    ]) {
        return Rule::ReadLoginWriteAdmin;
    }
    if has(&["/v1/core/cluster/"]) {
        return Rule::Login;
    }
    Rule::Admin
}

fn is_read(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD)
}

fn first<'a>(p: &'a HashMap<String, String>, names: &[&str]) -> &'a str {
    names.iter().find_map(|n| p.get(*n).map(String::as_str).filter(|v| !v.is_empty())).unwrap_or("")
}

/// The resource a request names, from its query and form parameters.
fn resource<'a>(p: &'a HashMap<String, String>, kind: &'a str) -> Resource<'a> {
    let namespace = first(p, &["tenant", "namespaceId", "namespace"]);
    let mut group = first(p, &["group", "groupName"]);
    let mut name = first(p, &["dataId", "serviceName"]);
    if kind == "naming" {
        if let Some((g, n)) = name.split_once("@@") {
            (group, name) = (g, n);
        }
    }
    Resource { namespace, group, kind, name }
}

/// Credentials: `accessToken` (parameter or header), `Authorization: Bearer`, else
/// `username` + `password` parameters (Node.js clients send them on every call).
fn credentials(p: &HashMap<String, String>, headers: &HeaderMap) -> Credentials {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(t) = p.get("accessToken").map(|t| t.trim()).filter(|t| !t.is_empty()).or(header("accesstoken")) {
        return Credentials::Token(t.to_string());
    }
    if let Some(t) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return Credentials::Token(t.trim().to_string());
    }
    match (p.get("username"), p.get("password")) {
        (Some(u), Some(pw)) if !u.is_empty() => Credentials::Password { username: u.clone(), password: pw.clone() },
        _ => Credentials::None,
    }
}

/// v1 answers auth failures in plain text; v2/v3 in their JSON envelope.
fn denied(path: &str, e: DomainError) -> Response {
    if path.starts_with("/v2/") || path.starts_with("/v3/") {
        super::nacos_v2::v2_error(e)
    } else {
        super::nacos_error(e)
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The middleware. Reads a form body (within the body limit) to find the resource and the
/// credentials, and hands the request on with the same body.
pub async fn nacos_guard(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(PRINCIPAL_HEADER);
    if !st.auth.enabled() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let path = parts.uri.path().to_string();
    let rule = rule(&parts.method, &path);
    if rule == Rule::Open {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (bytes, body) = if is_form(&parts.headers) {
        match axum::body::to_bytes(body, st.max_body).await {
            Ok(b) => (b.clone(), Body::from(b)),
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
        }
    } else {
        (Default::default(), body)
    };
    let p = super::params(parts.uri.query(), &parts.headers, &bytes);
    let action = if is_read(&parts.method) { Action::Read } else { Action::Write };
    let need = match rule {
        Rule::Open => Need::Open,
        Rule::Login => Need::Login,
        Rule::Admin => Need::Admin,
        Rule::ReadLoginWriteAdmin if action == Action::Read => Need::Login,
        Rule::ReadLoginWriteAdmin => Need::Admin,
        Rule::Config => Need::Resource(resource(&p, "config"), action),
        Rule::Naming => Need::Resource(resource(&p, "naming"), action),
    };
    let who = match st.auth.authenticate(&credentials(&p, &parts.headers), peer.ip()).await {
        Ok(w) => w,
        Err(e) => return denied(&path, e),
    };
    if let Err(e) = st.auth.authorize(who.as_ref(), &need) {
        return denied(&path, e);
    }
    if let Some(w) = &who {
        if action == Action::Write {
            let target = match &need {
                Need::Resource(r, _) => r.joined(),
                _ => String::new(),
            };
            tracing::info!(target: "audit", %peer, user = %w.username, method = %parts.method, %path, resource = %target, "write");
        }
        if let Ok(v) = HeaderValue::from_str(&w.username) {
            parts.headers.insert(PRINCIPAL_HEADER, v);
        }
    }
    next.run(Request::from_parts(parts, body)).await
}
