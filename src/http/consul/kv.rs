//! `/v1/kv/<key>`: GET (one key, `recurse`, `keys` with `separator`, `raw`; blocking on the
//! KV table), PUT (`flags`, `cas`, `acquire`, `release`) and DELETE (`recurse`, `cas`).
//!
//! Index rules (Consul's): a present key reports its ModifyIndex; a list reports the highest
//! index among its entries and the tombstones under its prefix; a miss reports the KV table's
//! index. Misses are 404 with the same headers, so a client can block on a key that does not
//! exist yet. The table index is read before the data, so a reply never claims an index whose
//! change it does not show.
//!
//! ACLs: the gate checks single-key reads and every write; `recurse` and `keys` lists leave out
//! the keys the token may not read (Consul's per-key filtering), so a prefix read never fails.

// Handler helpers return the reply to send (axum's `Response`) as their error: it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::Extension;
use axum::extract::Path;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use base64::Engine;
use futures::StreamExt;
use serde::Serialize;

use super::blocking;
use super::blocking::QueryOpts;
use super::caller::Acl;
use super::error;
use super::kv_export;
use super::ConsulQuery;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_kv;
use crate::domain::consul_kv::ConsulError;
use crate::http::AppState;
use crate::raft::WriteError;
use crate::state_machine::consul::KvDeleteOp;
use crate::state_machine::consul::KvEntry;
use crate::state_machine::consul::KvSetOp;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/kv/", get(get_root).put(put_root).delete(delete_root))
        .route("/v1/kv/{*key}", get(get_key).put(put_key).delete(delete_key))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

/// Consul's status for each domain error.
pub(super) fn consul_error(e: ConsulError) -> Response {
    let status = match &e {
        ConsulError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ConsulError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ConsulError::NotFound(_) => StatusCode::NOT_FOUND,
        ConsulError::Cluster(WriteError::NoLeader) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader");
        }
        ConsulError::Refused(_) | ConsulError::Cluster(_) | ConsulError::Storage(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, e.to_string())
}

/// Consul's DirEntry: Value is base64 or null (empty), Session only when a lock is held.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DirEntry<'a> {
    lock_index: u64,
    key: &'a str,
    flags: u64,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    create_index: u64,
    modify_index: u64,
}

pub(super) fn dir_entry<'a>(key: &'a str, e: &'a KvEntry) -> DirEntry<'a> {
    DirEntry {
        lock_index: e.lock_index,
        key,
        flags: e.flags,
        value: (!e.value.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&e.value)),
        session: e.session.as_deref(),
        create_index: e.create_index,
        modify_index: e.modify_index,
    }
}

/// Reads a request body up to `limit` bytes, also when it is chunked (no Content-Length):
/// `Err(Some(n))` when the declared length is over, `Err(None)` when the stream went over.
pub(super) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Option<usize>> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if let Some(n) = declared.filter(|n: &usize| *n > limit) {
        return Err(Some(n));
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        // A broken upload is as good as an oversized one: nothing is stored.
        let chunk = chunk.map_err(|_| None)?;
        if out.len() + chunk.len() > limit {
            return Err(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn parse_u64(q: &ConsulQuery, name: &str) -> Result<Option<u64>, Response> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => {
            v.parse().map(Some).map_err(|_| error(StatusCode::BAD_REQUEST, format!("Invalid {name} value {v:?}")))
        }
    }
}

/// Consul's `Conflicting flags` check: at most one of `names` may be given.
fn conflicting(q: &ConsulQuery, raw: Option<&str>, names: &[&str]) -> Result<(), Response> {
    if names.iter().filter(|n| q.flag(n)).count() > 1 {
        return Err(error(StatusCode::BAD_REQUEST, format!("Conflicting flags: {}", raw.unwrap_or(""))));
    }
    Ok(())
}

/// What one GET found.
enum Found {
    One(Option<(String, KvEntry)>),
    List(Vec<(String, KvEntry)>),
}

async fn get_root(st: State<AppState>, acl: Extension<Acl>, q: RawQuery) -> Response {
    kv_get(st, acl, String::new(), q).await
}

async fn get_key(st: State<AppState>, acl: Extension<Acl>, Path(key): Path<String>, q: RawQuery) -> Response {
    kv_get(st, acl, key, q).await
}

async fn kv_get(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    key: String,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    if kv_export::is_export(&key, &q) {
        return kv_export::export(&st, &acl, &q).await;
    }
    match kv_read(&st, &acl, &key, &q).await {
        Ok(r) | Err(r) => r,
    }
}

async fn kv_read(st: &AppState, acl: &Acl, key: &str, q: &ConsulQuery) -> Result<Response, Response> {
    let opts = QueryOpts::parse(q)?;
    consul_kv::validate_key(key).map_err(consul_error)?;
    let (recurse, keys) = (q.flag("recurse"), q.flag("keys"));
    if key.is_empty() && !recurse && !keys {
        return Err(error(StatusCode::BAD_REQUEST, "Missing key name"));
    }
    let node = &st.node;
    // `keys` lists names: a `list` rule is enough for them.
    let visible = |k: &str| acl.allows(Kind::Key, k, Perm::Read) || (keys && acl.allows(Kind::Key, k, Perm::List));
    let mut filtered = false;
    let (found, meta) = blocking::run(st, &opts, Table::Kv, || {
        let table = node.sm.table_index(Table::Kv);
        if recurse || keys {
            let (mut entries, index) = consul_kv::list(node, key).map_err(consul_error)?;
            let all = entries.len();
            entries.retain(|(k, _)| visible(k));
            filtered = entries.len() < all;
            Ok((Found::List(entries), if index == 0 { table } else { index }))
        } else {
            match consul_kv::get(node, key).map_err(consul_error)? {
                Some(e) => {
                    let index = e.modify_index;
                    Ok((Found::One(Some((key.to_string(), e))), index))
                }
                None => Ok((Found::One(None), table)),
            }
        }
    })
    .await?;
    let mut r = match found {
        Found::One(None) => meta.empty(StatusCode::NOT_FOUND),
        Found::One(Some((_, e))) if q.flag("raw") => {
            let mut r = e.value.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
            h.insert("X-Content-Type-Options", header::HeaderValue::from_static("nosniff"));
            h.insert("Content-Security-Policy", header::HeaderValue::from_static("sandbox"));
            h.extend(meta.headers());
            r
        }
        Found::One(Some((k, e))) => meta.json(&[dir_entry(&k, &e)]),
        Found::List(entries) if keys => {
            let sep = q.get("separator").or_else(|| q.get("seperator")).unwrap_or("");
            let list = consul_kv::keys_view(&entries, key, sep);
            if list.is_empty() && !key.is_empty() {
                meta.empty(StatusCode::NOT_FOUND)
            } else {
                meta.json(&list)
            }
        }
        Found::List(entries) if entries.is_empty() => meta.empty(StatusCode::NOT_FOUND),
        Found::List(entries) => meta.json(&entries.iter().map(|(k, e)| dir_entry(k, e)).collect::<Vec<_>>()),
    };
    acl.mark_filtered(&mut r, filtered);
    Ok(r)
}

async fn put_root(st: State<AppState>, acl: Extension<Acl>, q: RawQuery, headers: HeaderMap, body: Body) -> Response {
    kv_put(st, acl, String::new(), q, headers, body).await
}

async fn put_key(
    st: State<AppState>,
    acl: Extension<Acl>,
    Path(key): Path<String>,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    kv_put(st, acl, key, q, headers, body).await
}

async fn kv_put(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    key: String,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    if kv_export::is_import(&key, &q) {
        return kv_export::import(&st, &acl, &q, &headers, body).await;
    }
    match kv_write(&st, key, &q, raw.as_deref(), &headers, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn kv_write(
    st: &AppState,
    key: String,
    q: &ConsulQuery,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    super::check_enterprise_params(q)?;
    if key.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "Missing key name"));
    }
    conflicting(q, raw, &["cas", "acquire", "release"])?;
    consul_kv::validate_key(&key).map_err(consul_error)?;
    let flags = parse_u64(q, "flags")?.unwrap_or(0);
    let op = if let Some(cas) = parse_u64(q, "cas")? {
        KvSetOp::Cas(cas)
    } else if let Some(s) = q.get("acquire") {
        KvSetOp::Acquire(s.to_string())
    } else if let Some(s) = q.get("release") {
        KvSetOp::Release(s.to_string())
    } else {
        KvSetOp::Plain
    };
    let value = read_body(headers, body, consul_kv::MAX_VALUE_BYTES)
        .await
        .map_err(|n| consul_error(consul_kv::value_too_large(n)))?;
    let ok = consul_kv::put(&st.node, key, value, flags, op).await.map_err(consul_error)?;
    Ok(Json(ok).into_response())
}

async fn delete_root(st: State<AppState>, q: RawQuery) -> Response {
    kv_delete(st, String::new(), q).await
}

async fn delete_key(st: State<AppState>, Path(key): Path<String>, q: RawQuery) -> Response {
    kv_delete(st, key, q).await
}

async fn kv_delete(State(st): State<AppState>, key: String, RawQuery(raw): RawQuery) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    let run = async {
        super::check_enterprise_params(&q)?;
        conflicting(&q, raw.as_deref(), &["recurse", "cas"])?;
        let op = match parse_u64(&q, "cas")? {
            Some(cas) => KvDeleteOp::Cas(cas),
            None if q.flag("recurse") => KvDeleteOp::Recurse,
            None => KvDeleteOp::Single,
        };
        let ok = consul_kv::delete(&st.node, key, op).await.map_err(consul_error)?;
        Ok::<Response, Response>(Json(ok).into_response())
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}
