//! The Consul HTTP API (`/v1/...`), served on the main port and on the dedicated Consul port.
//! Shared conventions live here: query parsing (presence flags, Go booleans and durations),
//! Go-style JSON bodies (case-insensitive keys, snake_case aliases, null = absent), plain-text
//! errors with Consul's status codes, and the agent's own identity. Every route is reached
//! through the ACL gate (`authz`).
//!
//! Handlers return axum's `Response` as their error (the reply Consul gives), which clippy finds
//! large; it is built once per failed request, so boxing would buy nothing.
#![allow(clippy::result_large_err)]

pub mod acl;
pub mod agent;
pub mod authz;
pub mod blocking;
pub mod caller;
pub mod catalog;
pub mod defs;
pub mod event;
pub mod filter;
pub mod health;
pub mod kv;
pub mod kv_export;
pub mod selfinfo;
pub mod session;
pub mod txn;
pub mod vet;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Router;
use serde_json::Map;
use serde_json::Value;

use super::AppState;

/// The Consul routes, every one behind the ACL gate (`authz::gate`), which runs before any
/// handler and hands the caller to them.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(acl::routes())
        .merge(selfinfo::routes())
        .merge(agent::routes())
        .merge(catalog::routes())
        .merge(health::routes())
        .merge(kv::routes())
        .merge(txn::routes())
        .merge(session::routes())
        .merge(event::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authz::gate))
}

/// The datacenter this server belongs to.
pub const DATACENTER: &str = "dc1";

/// Query parameters: the last value of each name, plus every value of repeatable ones (`tag`,
/// `node-meta`).
#[derive(Debug, Default, Clone)]
pub struct ConsulQuery {
    last: HashMap<String, String>,
    all: Vec<(String, String)>,
}

impl ConsulQuery {
    pub fn parse(raw: Option<&str>) -> ConsulQuery {
        let mut q = ConsulQuery::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            q.last.insert(k.to_string(), v.to_string());
            q.all.push((k.into_owned(), v.into_owned()));
        }
        q
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.last.get(name).map(String::as_str)
    }

    /// A presence flag (`?recurse`, `?raw`, `?stale`...): the value is ignored.
    pub fn flag(&self, name: &str) -> bool {
        self.last.contains_key(name)
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.all.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A Go `strconv.ParseBool` parameter (`passing`, `enable`): absent → `None`, an empty value
    /// counts as true, a bad value is an error naming the value.
    pub fn go_bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some("") => Ok(Some(true)),
            Some(v) => parse_go_bool(v).map(Some).ok_or_else(|| format!("invalid boolean {v:?} for ?{name}")),
        }
    }
}

pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub use crate::domain::go_duration::parse_go_duration;

/// Consul's 405 (`method X not allowed`, with `Allow`), and 200 with `Allow` for `OPTIONS`.
pub async fn method_not_allowed(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let r = next.run(req).await;
    if r.status() != StatusCode::METHOD_NOT_ALLOWED {
        return r;
    }
    let (mut parts, _) = r.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if method == axum::http::Method::OPTIONS {
        let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        parts.status = StatusCode::OK;
        if let Ok(v) = format!("OPTIONS,{allow}").parse() {
            parts.headers.insert(header::ALLOW, v);
        }
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    Response::from_parts(parts, axum::body::Body::from(format!("method {method} not allowed")))
}

/// A duration in a request body: a Go duration string or a number of nanoseconds.
pub fn body_duration(v: &Value) -> Option<Duration> {
    match v {
        Value::String(s) => parse_go_duration(s),
        Value::Number(n) => n.as_u64().map(Duration::from_nanos),
        _ => None,
    }
}

/// Consul's error shape: a status code and a plain-text message.
pub fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.into()).into_response()
}

/// Rewrites a Go-style JSON body so serde can read it with one spelling per field: object keys
/// are lowercased with `_` removed (`EnableTagOverride`, `enabletagoverride` and
/// `enable_tag_override` all become `enabletagoverride`), and `null` members are dropped (Go
/// reads null as absent). Objects under a key in `user_maps` (normalized spelling, e.g. `meta`)
/// hold user data: their keys are kept as sent.
pub fn normalize_keys(v: Value, user_maps: &[&str]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if v.is_null() {
                    continue;
                }
                let nk = k.to_ascii_lowercase().replace('_', "");
                let nv = if user_maps.contains(&nk.as_str()) { v } else { normalize_keys(v, user_maps) };
                out.insert(nk, nv);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| normalize_keys(x, user_maps)).collect()),
        other => other,
    }
}

/// Parses a Go-style JSON body into `T` (whose fields use the normalized spellings).
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8], user_maps: &[&str]) -> Result<T, Response> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Request decode failed: {e}")))?
    };
    serde_json::from_value(normalize_keys(v, user_maps))
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Request decode failed: {e}")))
}

/// `ns` and `partition` are Enterprise features: only empty or `default` is accepted.
pub fn check_enterprise_params(q: &ConsulQuery) -> Result<(), Response> {
    for p in ["ns", "partition"] {
        if let Some(v) = q.get(p) {
            if !v.is_empty() && v != "default" {
                let msg = format!("Invalid query parameter: {p:?} - Namespaces are a Consul Enterprise feature");
                return Err(error(StatusCode::BAD_REQUEST, msg));
            }
        }
    }
    if let Some(dc) = q.get("dc") {
        if !dc.is_empty() && dc != DATACENTER {
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter"));
        }
    }
    Ok(())
}

/// This server as a Consul agent: its node in the catalog.
#[derive(Debug, Clone)]
pub struct AgentNode {
    pub name: String,
    /// A UUID derived from the Raft node id (stable across restarts).
    pub id: String,
    pub address: String,
}

impl AgentNode {
    pub fn of(st: &AppState) -> AgentNode {
        let node = st.node.id;
        let hex = format!("{node:032x}");
        let id = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        let status = st.node.status();
        let address = status
            .members
            .iter()
            .find(|m| m.id == node)
            .and_then(|m| m.peer.http_addr.rsplit_once(':').map(|(h, _)| h.to_string()))
            .unwrap_or_else(|| "127.0.0.1".to_string());
        AgentNode { name: format!("batata-{node}"), id, address }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d("300000ms"), Some(Duration::from_secs(300)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("10"), None);
        assert_eq!(d("abc"), None);
        assert_eq!(d("-1s"), None);
        assert_eq!(body_duration(&serde_json::json!(1_000_000_000u64)), Some(Duration::from_secs(1)));
    }

    #[test]
    fn body_keys_are_normalized_but_user_maps_kept() {
        let v = serde_json::json!({"EnableTagOverride": true, "tagged_addresses": {"Lan": 1}, "Meta": {"Key_A": "x"}, "Check": null});
        let n = normalize_keys(v, &["meta"]);
        assert_eq!(
            n,
            serde_json::json!({"enabletagoverride": true, "taggedaddresses": {"lan": 1}, "meta": {"Key_A": "x"}})
        );
    }
}
