//! `/v1/acl/*`: bootstrap, tokens and policies, in Consul's JSON shapes. What each route needs
//! (`acl:read` / `acl:write`, nothing for the bootstrap, a valid token for `token/self`) is
//! declared in the gate's table (`authz::classify`); these handlers only shape the calls.
//!
//! A token's SecretID is shown to callers with `acl:write` and to the token itself; others see
//! `<hidden>`, as in Consul. Roles, service and node identities and expiring tokens are not
//! supported: a request using them is refused (400) rather than stored without them.

use axum::body::Bytes;
use axum::extract::Extension;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::put;
use axum::Json;
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::caller::Acl;
use super::catalog::domain_error;
use super::error;
use crate::domain::consul_acl::ConsulAcl;
use crate::domain::consul_acl::PolicyInput;
use crate::domain::consul_acl::PolicyLink;
use crate::domain::consul_acl::TokenInput;
use crate::domain::consul_acl::NOT_FOUND;
use crate::domain::DomainError;
use crate::http::AppState;
use crate::state_machine::auth::AclPolicy;
use crate::state_machine::auth::AclToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/acl/bootstrap", put(bootstrap))
        .route("/v1/acl/token", put(token_create))
        .route("/v1/acl/token/self", get(token_self))
        .route("/v1/acl/token/{id}", get(token_read).put(token_update).delete(token_delete))
        .route("/v1/acl/token/{id}/clone", put(token_clone))
        .route("/v1/acl/tokens", get(token_list))
        .route("/v1/acl/policy", put(policy_create))
        .route("/v1/acl/policy/{id}", get(policy_read).put(policy_update).delete(policy_delete))
        .route("/v1/acl/policy/name/{name}", get(policy_by_name))
        .route("/v1/acl/policies", get(policy_list))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

/// The gate hands every request with ACLs on the service; with ACLs off these routes answer
/// 401 before getting here.
fn svc(acl: &Acl) -> Result<&ConsulAcl, Response> {
    acl.service().ok_or_else(|| error(StatusCode::UNAUTHORIZED, "ACL support disabled"))
}

fn reply(r: Result<Value, Response>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// A date as RFC 3339 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (rem, days) = (secs % 86_400, (secs / 86_400) as i64);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Consul's `Hash`: a digest of the content that changes with it (base64 in JSON).
fn hash(parts: &[&str]) -> String {
    let digest = md5::compute(parts.join("\u{0}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.0)
}

fn token_json(s: &ConsulAcl, t: &AclToken, show_secret: bool) -> Result<Value, Response> {
    let links = s.policy_links(&t.policies).map_err(domain_error)?;
    let policies: Vec<Value> = links.iter().map(|(id, name)| json!({"ID": id, "Name": name})).collect();
    let local = if t.local { "1" } else { "0" };
    Ok(json!({
        "AccessorID": t.accessor_id,
        "SecretID": if show_secret { t.secret_id.as_str() } else { "<hidden>" },
        "Description": t.description,
        "Policies": policies,
        "Local": t.local,
        "CreateTime": rfc3339(t.create_time_ms),
        "Hash": hash(&[&t.description, &t.policies.join(","), local]),
        "CreateIndex": t.create_index,
        "ModifyIndex": t.modify_index,
    }))
}

fn policy_json(p: &AclPolicy, with_rules: bool) -> Value {
    let mut v = json!({
        "ID": p.id,
        "Name": p.name,
        "Description": p.description,
        "Datacenters": if p.datacenters.is_empty() { Value::Null } else { json!(p.datacenters) },
        "Hash": hash(&[&p.name, &p.description, &p.rules, &p.datacenters.join(",")]),
        "CreateIndex": p.create_index,
        "ModifyIndex": p.modify_index,
    });
    if with_rules {
        v["Rules"] = json!(p.rules);
    }
    v
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BootstrapBody {
    bootstrapsecret: Option<String>,
}

async fn bootstrap(Extension(acl): Extension<Acl>, body: Bytes) -> Response {
    reply(
        async {
            let s = svc(&acl)?;
            let b: BootstrapBody = super::decode_body(&body, &[])?;
            let t = s.bootstrap(b.bootstrapsecret).await.map_err(domain_error)?;
            let mut v = token_json(s, &t, true)?;
            // The legacy `ID` is the SecretID (older clients read it).
            v["ID"] = json!(t.secret_id);
            Ok(v)
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LinkBody {
    id: Option<String>,
    name: Option<String>,
}

/// A token body, normalized (`AccessorID`, `accessor_id`... read as `accessorid`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenBody {
    accessorid: Option<String>,
    secretid: Option<String>,
    description: Option<String>,
    policies: Option<Vec<LinkBody>>,
    local: Option<bool>,
    roles: Option<Vec<Value>>,
    serviceidentities: Option<Vec<Value>>,
    nodeidentities: Option<Vec<Value>>,
    templatedpolicies: Option<Vec<Value>>,
    expirationttl: Option<Value>,
    expirationtime: Option<Value>,
}

fn token_input(body: &[u8]) -> Result<TokenInput, Response> {
    let b: TokenBody = super::decode_body(body, &[])?;
    let used = |v: &Option<Vec<Value>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let zero = |v: &Value| match v {
        Value::Number(n) => n.as_u64() == Some(0),
        Value::String(s) => matches!(s.as_str(), "" | "0" | "0s"),
        _ => false,
    };
    let ttl = b.expirationttl.as_ref().is_some_and(|v| !zero(v)) || b.expirationtime.is_some();
    let unsupported = [
        ("Roles", used(&b.roles)),
        ("ServiceIdentities", used(&b.serviceidentities)),
        ("NodeIdentities", used(&b.nodeidentities)),
        ("TemplatedPolicies", used(&b.templatedpolicies)),
        ("ExpirationTTL/ExpirationTime", ttl),
    ];
    if let Some((what, _)) = unsupported.iter().find(|(_, u)| *u) {
        return Err(error(StatusCode::BAD_REQUEST, format!("Invalid Token: {what} are not supported by this server")));
    }
    Ok(TokenInput {
        accessor_id: b.accessorid,
        secret_id: b.secretid,
        description: b.description.unwrap_or_default(),
        policies: b.policies.unwrap_or_default().into_iter().map(|l| PolicyLink { id: l.id, name: l.name }).collect(),
        local: b.local.unwrap_or(false),
    })
}

async fn token_put(acl: &Acl, id: Option<&str>, body: &[u8]) -> Result<Value, Response> {
    let s = svc(acl)?;
    let input = token_input(body)?;
    let t = s.put_token(id, input).await.map_err(domain_error)?;
    token_json(s, &t, true)
}

async fn token_create(Extension(acl): Extension<Acl>, body: Bytes) -> Response {
    reply(token_put(&acl, None, &body).await)
}

async fn token_update(Extension(acl): Extension<Acl>, Path(id): Path<String>, body: Bytes) -> Response {
    reply(token_put(&acl, Some(&id), &body).await)
}

async fn token_read(Extension(acl): Extension<Acl>, Path(id): Path<String>) -> Response {
    reply(
        async {
            let s = svc(&acl)?;
            let t = s.token(&id).map_err(domain_error)?;
            token_json(s, &t, acl.is_management())
        }
        .await,
    )
}

/// The caller's own Consul token; a Nacos access token or no token has none here.
async fn token_self(Extension(acl): Extension<Acl>) -> Response {
    reply(
        async {
            let s = svc(&acl)?;
            let Some(t) = &acl.identity().token else {
                return Err(domain_error(DomainError::Forbidden(NOT_FOUND.into())));
            };
            token_json(s, t, true)
        }
        .await,
    )
}

async fn token_delete(Extension(acl): Extension<Acl>, Path(id): Path<String>) -> Response {
    reply(
        async {
            svc(&acl)?.delete_token(&id).await.map_err(domain_error)?;
            Ok(json!(true))
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CloneBody {
    description: Option<String>,
}

async fn token_clone(Extension(acl): Extension<Acl>, Path(id): Path<String>, body: Bytes) -> Response {
    reply(
        async {
            let s = svc(&acl)?;
            let b: CloneBody = super::decode_body(&body, &[])?;
            let t = s.clone_token(&id, b.description).await.map_err(domain_error)?;
            token_json(s, &t, true)
        }
        .await,
    )
}

async fn token_list(Extension(acl): Extension<Acl>) -> Response {
    reply((|| {
        let s = svc(&acl)?;
        let show = acl.is_management();
        let list = s.tokens().map_err(domain_error)?;
        Ok(Value::Array(list.iter().map(|t| token_json(s, t, show)).collect::<Result<_, _>>()?))
    })())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyBody {
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    rules: Option<String>,
    datacenters: Option<Vec<String>>,
}

async fn policy_put(acl: &Acl, id: Option<&str>, body: &[u8]) -> Result<Value, Response> {
    let s = svc(acl)?;
    let b: PolicyBody = super::decode_body(body, &[])?;
    let input = PolicyInput {
        id: b.id,
        name: b.name.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        rules: b.rules.unwrap_or_default(),
        datacenters: b.datacenters.unwrap_or_default(),
    };
    let p = s.put_policy(id, input).await.map_err(domain_error)?;
    Ok(policy_json(&p, true))
}

async fn policy_create(Extension(acl): Extension<Acl>, body: Bytes) -> Response {
    reply(policy_put(&acl, None, &body).await)
}

async fn policy_update(Extension(acl): Extension<Acl>, Path(id): Path<String>, body: Bytes) -> Response {
    reply(policy_put(&acl, Some(&id), &body).await)
}

async fn policy_read(Extension(acl): Extension<Acl>, Path(id): Path<String>) -> Response {
    reply(svc(&acl).and_then(|s| s.policy(&id).map_err(domain_error)).map(|p| policy_json(&p, true)))
}

async fn policy_by_name(Extension(acl): Extension<Acl>, Path(name): Path<String>) -> Response {
    reply(svc(&acl).and_then(|s| s.policy_by_name(&name).map_err(domain_error)).map(|p| policy_json(&p, true)))
}

async fn policy_delete(Extension(acl): Extension<Acl>, Path(id): Path<String>) -> Response {
    reply(
        async {
            svc(&acl)?.delete_policy(&id).await.map_err(domain_error)?;
            Ok(json!(true))
        }
        .await,
    )
}

async fn policy_list(Extension(acl): Extension<Acl>) -> Response {
    reply(
        svc(&acl)
            .and_then(|s| s.policies().map_err(domain_error))
            .map(|list| Value::Array(list.iter().map(|p| policy_json(p, false)).collect())),
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
    }
}
