//! Nacos logins and user, role and permission management: `/v1/auth/*` (plain replies) and
//! `/v3/auth/*` (the `{code,message,data}` envelope; the login reply is bare JSON on both, as
//! the Java client requires). Who may call what is declared in `guard`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::guard::PRINCIPAL_HEADER;
use super::nacos_error;
use super::nacos_v2::v2_error;
use super::params;
use super::AppState;
use crate::domain::auth_admin::page;
use crate::domain::DomainError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/users/login", post(login))
        .route("/v3/auth/user/login", post(login))
        .route("/v1/auth/users/admin", post(init_admin_v1))
        .route("/v3/auth/user/admin", post(init_admin_v3))
        .route("/v1/auth/users", get(users_v1).post(create_user_v1).put(update_user_v1).delete(delete_user_v1))
        .route("/v1/auth/users/search", get(search_users_v1))
        .route("/v3/auth/user", post(create_user_v3).put(update_user_v3).delete(delete_user_v3))
        .route("/v3/auth/user/list", get(users_v3))
        .route("/v3/auth/user/search", get(search_users_v3))
        .route("/v1/auth/roles", get(roles_v1).post(add_role_v1).delete(delete_role_v1))
        .route("/v1/auth/roles/search", get(search_roles_v1))
        .route("/v3/auth/role", post(add_role_v3).delete(delete_role_v3))
        .route("/v3/auth/role/list", get(roles_v3))
        .route("/v3/auth/role/search", get(search_roles_v3))
        .route("/v1/auth/permissions", get(perms_v1).post(add_perm_v1).delete(delete_perm_v1))
        .route("/v3/auth/permission", post(add_perm_v3).delete(delete_perm_v3))
        .route("/v3/auth/permission/list", get(perms_v3))
}

type Params = HashMap<String, String>;

fn param<'a>(p: &'a Params, k: &str) -> &'a str {
    p.get(k).map(String::as_str).unwrap_or("")
}

fn required<'a>(p: &'a Params, k: &str) -> Result<&'a str, DomainError> {
    p.get(k)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| DomainError::Invalid(format!("Required parameter '{k}' is not present")))
}

fn num(p: &Params, k: &str, default: usize) -> usize {
    p.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// v1 success: Nacos' `RestResult` with code 200.
fn v1(r: Result<Value, DomainError>) -> Response {
    match r {
        Ok(Value::String(m)) => Json(json!({"code": 200, "message": m, "data": null})).into_response(),
        Ok(v) => Json(v).into_response(),
        Err(e) => nacos_error(e),
    }
}

fn v3(r: Result<Value, DomainError>) -> Response {
    match r {
        Ok(v) => Json(json!({"code": 0, "message": "success", "data": v})).into_response(),
        Err(e) => v2_error(e),
    }
}

async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q.as_deref(), &headers, &body);
    let (user, password) = (param(&p, "username"), param(&p, "password"));
    if user.is_empty() {
        return nacos_error(DomainError::Invalid("username is required".into()));
    }
    match st.auth.login(user, password, peer.ip()).await {
        Ok(r) => {
            let mut resp = Json(&r).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", r.access_token)) {
                resp.headers_mut().insert(axum::http::header::AUTHORIZATION, v);
            }
            resp
        }
        Err(e @ DomainError::Throttled { retry_after_secs }) => {
            let mut resp = nacos_error(e);
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
        Err(e) => nacos_error(e),
    }
}

async fn init_admin(st: &AppState, q: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Value, DomainError> {
    let p = params(q, headers, body);
    let password = st.auth.init_admin(p.get("password").map(String::as_str)).await?;
    Ok(json!({"username": crate::state_machine::auth::ADMIN_USER, "password": password}))
}

async fn init_admin_v1(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    match init_admin(&st, q.as_deref(), &headers, &body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => nacos_error(e),
    }
}

async fn init_admin_v3(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    v3(init_admin(&st, q.as_deref(), &headers, &body).await)
}

/// Handlers below share one shape: parameters in, a JSON value or a message out.
macro_rules! handlers {
    ($($v1:ident, $v3:ident => $f:ident;)+) => {$(
        async fn $v1(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
            v1($f(&st, &params(q.as_deref(), &headers, &body), &headers).await)
        }
        async fn $v3(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
            v3($f(&st, &params(q.as_deref(), &headers, &body), &headers).await)
        }
    )+};
}

handlers! {
    users_v1, users_v3 => list_users;
    search_users_v1, search_users_v3 => search_users;
    create_user_v1, create_user_v3 => create_user;
    update_user_v1, update_user_v3 => update_user;
    delete_user_v1, delete_user_v3 => delete_user;
    roles_v1, roles_v3 => list_roles;
    search_roles_v1, search_roles_v3 => search_roles;
    add_role_v1, add_role_v3 => add_role;
    delete_role_v1, delete_role_v3 => delete_role;
    perms_v1, perms_v3 => list_perms;
    add_perm_v1, add_perm_v3 => add_perm;
    delete_perm_v1, delete_perm_v3 => delete_perm;
}

async fn list_users(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    let search = p.get("username").map(String::as_str).filter(|s| !s.is_empty());
    // Hashes never leave the server (Nacos returns them; nothing needs them).
    let users: Vec<Value> =
        st.auth.users(search)?.into_iter().map(|u| json!({"username": u, "password": ""})).collect();
    Ok(serde_json::to_value(page(users, num(p, "pageNo", 1), num(p, "pageSize", 100))).unwrap_or(Value::Null))
}

async fn search_users(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    Ok(json!(st.auth.users(Some(param(p, "username")))?))
}

async fn create_user(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    st.auth.create_user(required(p, "username")?, required(p, "password")?).await?;
    Ok(json!("create user ok!"))
}

/// Only an administrator may change another user's password.
async fn update_user(st: &AppState, p: &Params, headers: &HeaderMap) -> Result<Value, DomainError> {
    let user = required(p, "username")?;
    let caller = headers.get(PRINCIPAL_HEADER).and_then(|v| v.to_str().ok());
    if st.auth.enabled() && caller != Some(user) && !caller.is_some_and(|c| st.auth.view().is_ok_and(|v| v.is_admin(c)))
    {
        return Err(DomainError::Forbidden(
            "authorization failed! only an admin may change another user's password".into(),
        ));
    }
    st.auth.set_password(user, required(p, "newPassword")?).await?;
    Ok(json!("update user ok!"))
}

async fn delete_user(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    st.auth.delete_user(required(p, "username")?).await?;
    Ok(json!("delete user ok!"))
}

async fn list_roles(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    let opt = |k| p.get(k).map(String::as_str).filter(|s: &&str| !s.is_empty());
    let items: Vec<Value> = st
        .auth
        .roles(opt("username"), opt("role"))?
        .into_iter()
        .map(|(r, u)| json!({"role": r, "username": u}))
        .collect();
    Ok(serde_json::to_value(page(items, num(p, "pageNo", 1), num(p, "pageSize", 100))).unwrap_or(Value::Null))
}

async fn search_roles(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    let want = param(p, "role");
    let mut roles: Vec<String> =
        st.auth.roles(None, None)?.into_iter().map(|(r, _)| r).filter(|r| r.contains(want)).collect();
    roles.dedup();
    Ok(json!(roles))
}

async fn add_role(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    st.auth.bind_role(required(p, "role")?, required(p, "username")?).await?;
    Ok(json!("add role ok!"))
}

async fn delete_role(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    let user = p.get("username").map(String::as_str).filter(|s| !s.is_empty());
    st.auth.unbind_role(required(p, "role")?, user).await?;
    Ok(json!("delete role ok!"))
}

async fn list_perms(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    let role = p.get("role").map(String::as_str).filter(|s| !s.is_empty());
    let items: Vec<Value> = st
        .auth
        .permissions(role)?
        .into_iter()
        .map(|(r, res, a)| json!({"role": r, "resource": res, "action": a}))
        .collect();
    Ok(serde_json::to_value(page(items, num(p, "pageNo", 1), num(p, "pageSize", 100))).unwrap_or(Value::Null))
}

async fn add_perm(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    st.auth.add_permission(required(p, "role")?, required(p, "resource")?, required(p, "action")?).await?;
    Ok(json!("add permission ok!"))
}

async fn delete_perm(st: &AppState, p: &Params, _: &HeaderMap) -> Result<Value, DomainError> {
    st.auth.remove_permission(required(p, "role")?, required(p, "resource")?, required(p, "action")?).await?;
    Ok(json!("delete permission ok!"))
}
