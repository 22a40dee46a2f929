//! `/v1/event/fire/<name>` (PUT, and POST for Spring Cloud Consul) and `/v1/event/list`.
//!
//! Consul gossips events and each agent keeps the newest 256; here they go through Raft, so
//! every node lists the same ones. The list index is Consul's: the XOR of the halves of the
//! last event's id (1 when none), opaque and not monotonic, so a blocking list waits until it
//! differs from the one the client sent rather than until it grows.
//!
//! ACLs: firing needs event write on the name (checked by the gate); the list leaves out the
//! events the token may not read.

// Handler helpers return the reply to send (axum's `Response`) as their error: it is large,
// but only on a path that ends the request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::Extension;
use axum::extract::Path;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::put;
use axum::Json;
use axum::Router;
use base64::Engine;
use serde_json::json;
use serde_json::Value;

use super::blocking;
use super::blocking::QueryOpts;
use super::caller::Acl;
use super::error;
use super::kv::consul_error;
use super::ConsulQuery;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_kv;
use crate::domain::consul_kv::EventRequest;
use crate::http::AppState;
use crate::state_machine::consul::EventItem;
use crate::state_machine::tables::Table;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/event/fire/{*name}", put(fire).post(fire))
        .route("/v1/event/fire/", put(missing_name).post(missing_name))
        .route("/v1/event/list", get(list))
        .layer(axum::middleware::from_fn(super::method_not_allowed))
}

fn event_json(e: &EventItem) -> Value {
    let payload = (!e.payload.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&e.payload));
    json!({
        "ID": e.id,
        "Name": e.name,
        "Payload": payload,
        "NodeFilter": e.node_filter,
        "ServiceFilter": e.service_filter,
        "TagFilter": e.tag_filter,
        "Version": 1,
        "LTime": e.ltime,
    })
}

async fn missing_name() -> Response {
    error(StatusCode::BAD_REQUEST, "Missing name")
}

async fn fire(State(st): State<AppState>, Path(name): Path<String>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    if let Err(r) = super::check_enterprise_params(&q) {
        return r;
    }
    let filter = |n: &str| q.get(n).unwrap_or("").to_string();
    let req = EventRequest {
        name,
        payload: body.to_vec(),
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
    };
    match consul_kv::fire_event(&st.node, req).await {
        Ok(e) => Json(event_json(&e)).into_response(),
        Err(e) => consul_error(e),
    }
}

async fn list(State(st): State<AppState>, Extension(acl): Extension<Acl>, RawQuery(raw): RawQuery) -> Response {
    let q = ConsulQuery::parse(raw.as_deref());
    let opts = match QueryOpts::parse(&q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let name = q.get("name");
    // The blocking loop waits while the reported index is not above the client's: report one
    // above it as soon as the real index differs, and put the real one in the headers after.
    let res = blocking::run(&st, &opts, Table::Events, || {
        let events = consul_kv::list_events(&st.node, name).map_err(consul_error)?;
        let index = consul_kv::events_index(&events);
        let progress = if index == opts.index { opts.index } else { opts.index.saturating_add(1) };
        Ok(((events, index), progress))
    })
    .await;
    match res {
        Ok(((events, index), mut meta)) => {
            meta.index = index;
            let shown: Vec<Value> =
                events.iter().filter(|e| acl.allows(Kind::Event, &e.name, Perm::Read)).map(event_json).collect();
            let mut r = meta.json(&shown);
            acl.mark_filtered(&mut r, shown.len() < events.len());
            r
        }
        Err(r) => r,
    }
}
