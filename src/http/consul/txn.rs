//! `PUT /v1/txn`: Consul transactions over the KV verbs. Limits are checked before anything is
//! proposed (body 512 KiB, 128 operations, 512 KiB per value: 413). A transaction that only
//! reads, or that cannot succeed because an operation is unknown or unsupported, is evaluated
//! on this node like a read (consistency modes honoured, no `X-Consul-Index`); any other goes
//! through Raft as one entry. 200 `{"Results":[...],"Errors":null}` on success, 409
//! `{"Results":null,"Errors":[...]}` with every failure otherwise.
//!
//! ACLs, as Consul checks them before running anything: `check-index` and `check-session` need
//! key read, `delete-tree` write on every key under its prefix, other changes (and
//! `check-not-exists`) key write; a denied operation fails the transaction with a 409 naming
//! it. Gets are filtered on the way out: results for keys the token may not read are left out.

// Handler helpers return the reply to send (axum's `Response`) as their error: it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::Extension;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::put;
use axum::Json;
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::blocking;
use super::blocking::QueryOpts;
use super::caller::Acl;
use super::error;
use super::kv::consul_error;
use super::kv::dir_entry;
use super::kv::read_body;
use super::ConsulQuery;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_kv;
use crate::domain::consul_kv::TxnItem;
use crate::http::AppState;
use crate::state_machine::consul::TxnOp;
use crate::state_machine::consul::TxnReply;
use crate::state_machine::consul::TxnVerb;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/txn", put(txn)).layer(axum::middleware::from_fn(super::method_not_allowed))
}

/// One KV operation as sent (normalized keys: `Verb`, `Key`, `Value`, `Flags`, `Index`,
/// `Session`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct KvBody {
    verb: String,
    key: String,
    value: Option<String>,
    flags: u64,
    index: u64,
    session: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpBody {
    kv: Option<KvBody>,
    node: Option<Value>,
    service: Option<Value>,
    check: Option<Value>,
}

fn bad(msg: String) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

fn too_large(msg: String) -> Response {
    error(StatusCode::PAYLOAD_TOO_LARGE, msg)
}

/// Turns the body into operations, refusing bad input and limits with Consul's status codes.
fn parse(body: &[u8]) -> Result<Vec<TxnItem>, Response> {
    let parsed = serde_json::from_slice::<Value>(body)
        .and_then(|v| serde_json::from_value::<Vec<OpBody>>(super::normalize_keys(v, &[])));
    let ops = parsed.map_err(|e| bad(format!("Failed to parse body: {e}")))?;
    if ops.len() > consul_kv::MAX_TXN_OPS {
        let msg = format!("Transaction contains too many operations ({} > {})", ops.len(), consul_kv::MAX_TXN_OPS);
        return Err(too_large(msg));
    }
    let mut items = Vec::with_capacity(ops.len());
    for op in ops {
        let Some(kv) = op.kv else {
            let what = match (op.node.is_some(), op.service.is_some(), op.check.is_some()) {
                (true, _, _) => "Node",
                (_, true, _) => "Service",
                (_, _, true) => "Check",
                _ => "",
            };
            items.push(Err(if what.is_empty() {
                "operation has no KV, Node, Service or Check member".to_string()
            } else {
                format!("{what} operations in transactions are not supported by this server")
            }));
            continue;
        };
        let value = match &kv.value {
            None => Vec::new(),
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| bad(format!("Failed to parse body: illegal base64 value for key {:?}: {e}", kv.key)))?,
        };
        if value.len() > consul_kv::MAX_VALUE_BYTES {
            let msg = format!(
                "Value for key {:?} is too large ({} > {} bytes)",
                kv.key,
                value.len(),
                consul_kv::MAX_VALUE_BYTES
            );
            return Err(too_large(msg));
        }
        consul_kv::validate_key(&kv.key).map_err(consul_error)?;
        let Some(verb) = TxnVerb::parse(&kv.verb) else {
            items.push(Err(format!("unknown KV verb {:?}", kv.verb)));
            continue;
        };
        if kv.key.is_empty() && !verb.takes_prefix() {
            return Err(bad("Missing key name".into()));
        }
        items.push(Ok(TxnOp { verb, key: kv.key, value, flags: kv.flags, index: kv.index, session: kv.session }));
    }
    Ok(items)
}

/// Consul's pre-check: one error per operation the token may not run.
fn denied(acl: &Acl, items: &[TxnItem]) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, op) in items.iter().enumerate() {
        let Ok(op) = op else { continue };
        let (ok, perm) = match op.verb {
            TxnVerb::Get | TxnVerb::GetOrEmpty | TxnVerb::GetTree => (true, Perm::Read),
            TxnVerb::CheckIndex | TxnVerb::CheckSession => (acl.allows(Kind::Key, &op.key, Perm::Read), Perm::Read),
            TxnVerb::DeleteTree => (acl.key_write_prefix(&op.key), Perm::Write),
            _ => (acl.allows(Kind::Key, &op.key, Perm::Write), Perm::Write),
        };
        if !ok {
            let what = super::caller::denied_text(&acl.identity().accessor_id, Kind::Key, &op.key, perm);
            out.push(json!({"OpIndex": i, "What": what}));
        }
    }
    out
}

/// Leaves out the results of keys the token may not read.
fn visible(acl: &Acl, mut r: TxnReply) -> TxnReply {
    r.results.retain(|x| acl.allows(Kind::Key, &x.key, Perm::Read));
    r
}

fn reply_json(r: &TxnReply) -> Response {
    if r.errors.is_empty() {
        let results: Vec<Value> = r.results.iter().map(|x| json!({"KV": dir_entry(&x.key, &x.entry)})).collect();
        Json(json!({"Results": results, "Errors": null})).into_response()
    } else {
        let errors: Vec<Value> = r.errors.iter().map(|e| json!({"OpIndex": e.op_index, "What": e.what})).collect();
        (StatusCode::CONFLICT, Json(json!({"Results": null, "Errors": errors}))).into_response()
    }
}

async fn txn(
    State(st): State<AppState>,
    Extension(acl): Extension<Acl>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    let run = async {
        let opts = QueryOpts::parse(&q)?;
        let max = consul_kv::MAX_TXN_BODY_BYTES;
        let body = read_body(&headers, body, max)
            .await
            .map_err(|_| too_large(format!("Request body too large, max size: {max} bytes")))?;
        let items = parse(&body)?;
        let refused = denied(&acl, &items);
        if !refused.is_empty() {
            return Ok((StatusCode::CONFLICT, Json(json!({"Results": null, "Errors": refused}))).into_response());
        }
        if consul_kv::txn_is_read(&items) {
            let once = QueryOpts { index: 0, ..opts };
            let (reply, meta) = blocking::run(&st, &once, Table::Kv, || {
                Ok((consul_kv::txn_read(&st.node, &items).map_err(consul_error)?, 0))
            })
            .await?;
            let mut r = reply_json(&visible(&acl, reply));
            let mut h = meta.headers();
            h.remove("X-Consul-Index");
            r.headers_mut().extend(h);
            return Ok(r);
        }
        let ops: Vec<TxnOp> = items.into_iter().filter_map(Result::ok).collect();
        let reply = consul_kv::txn_write(&st.node, ops).await.map_err(consul_error)?;
        Ok::<Response, Response>(reply_json(&visible(&acl, reply)))
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}
