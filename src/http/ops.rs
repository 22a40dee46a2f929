//! Operations endpoints: health, cluster view, Raft status and membership administration,
//! Prometheus metrics, and Consul's `/v1/status/*`.

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::delete;
use axum::routing::get;
use axum::routing::post;
use axum::Json;
use axum::Router;
use serde_json::json;

use super::AppState;
use crate::raft::rpc::AdminRequest;
use crate::raft::types::Peer;
use crate::raft::WriteError;

pub fn nacos_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/console/health/liveness", get(liveness))
        .route("/v1/console/health/readiness", get(readiness))
        .route("/v1/core/cluster/nodes", get(cluster_nodes))
        .route("/v1/core/raft/status", get(raft_status))
        .route("/metrics", get(metrics))
}

/// Membership changes and snapshots: guarded by [`super::admin_guard`].
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/core/raft/learner", post(add_learner))
        .route("/v1/core/raft/promote", post(promote))
        .route("/v1/core/raft/member", delete(remove_member))
        .route("/v1/core/raft/snapshot", post(trigger_snapshot))
}

pub fn consul_routes() -> Router<AppState> {
    Router::new().route("/v1/status/leader", get(status_leader)).route("/v1/status/peers", get(status_peers))
}

async fn liveness() -> &'static str {
    "OK"
}

/// Ready once a leader is known and the node has applied what was committed when it started,
/// so a restarted node never serves state older than it served before.
pub fn is_ready(st: &AppState) -> bool {
    let s = st.node.status();
    s.leader.is_some() && s.applied.unwrap_or(0) >= st.ready_index
}

async fn readiness(State(st): State<AppState>) -> Response {
    if is_ready(&st) {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no leader yet or still recovering").into_response()
    }
}

fn host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

async fn cluster_nodes(State(st): State<AppState>) -> Json<serde_json::Value> {
    let s = st.node.status();
    let nodes: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            let (ip, port) = host_port(&m.peer.http_addr);
            let role = if Some(m.id) == s.leader {
                "LEADER"
            } else if m.voter {
                "FOLLOWER"
            } else {
                "LEARNER"
            };
            let me = m.id == s.node_id;
            json!({
                "ip": ip,
                "port": port,
                "address": m.peer.http_addr,
                "state": "UP",
                "failAccessCnt": 0,
                "abilities": {},
                "extendInfo": {
                    "nodeId": m.id.to_string(),
                    "raftAddress": m.peer.raft_addr,
                    "raftRole": role,
                    "term": if me { Some(s.term) } else { None },
                    "appliedIndex": if me { s.applied } else { None },
                    "matchedIndex": m.matched,
                    "datacenter": m.peer.datacenter,
                    "region": m.peer.region,
                    "zone": m.peer.zone,
                }
            })
        })
        .collect();
    Json(json!({"code": 200, "message": null, "data": nodes}))
}

/// `?checksum` adds a checksum of the domain data (it reads every record, so it is opt-in).
async fn raft_status(State(st): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    let s = st.node.status();
    let checksum = if p.contains_key("checksum") { st.node.sm.state_checksum().ok() } else { None };
    let mut v = serde_json::to_value(&s).unwrap_or_default();
    if let (Some(c), Some(obj)) = (checksum, v.as_object_mut()) {
        obj.insert("checksum".into(), json!(c));
    }
    if let Some(obj) = v.as_object_mut() {
        obj.insert("ready".into(), json!(is_ready(&st)));
    }
    Json(v).into_response()
}

fn admin_error(e: WriteError) -> Response {
    let code = match e {
        WriteError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, e.to_string()).into_response()
}

fn parse_id(p: &HashMap<String, String>) -> Option<u64> {
    p.get("id").and_then(|v| v.parse().ok())
}

fn id_required() -> Response {
    (StatusCode::BAD_REQUEST, "id (a node id) is required").into_response()
}

async fn run_admin(st: &AppState, req: AdminRequest) -> Response {
    match st.node.admin(req).await {
        Ok(_) => (StatusCode::OK, "true").into_response(),
        Err(e) => admin_error(e),
    }
}

/// `POST /v1/core/raft/learner?httpAddr=h:p&raftAddr=h:p[&id=N]`.
async fn add_learner(State(st): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    let (Some(http), Some(raft)) = (p.get("httpAddr"), p.get("raftAddr")) else {
        return (StatusCode::BAD_REQUEST, "httpAddr and raftAddr are required").into_response();
    };
    let id = match p.get("id") {
        Some(v) => match v.parse() {
            Ok(id) => id,
            Err(_) => return (StatusCode::BAD_REQUEST, "id must be a number").into_response(),
        },
        None => crate::raft::membership::node_id_for(http),
    };
    let peer = Peer {
        raft_addr: raft.clone(),
        http_addr: http.clone(),
        datacenter: p.get("datacenter").cloned().unwrap_or_default(),
        region: p.get("region").cloned().unwrap_or_default(),
        zone: p.get("zone").cloned().unwrap_or_default(),
    };
    run_admin(&st, AdminRequest::AddLearner { id, peer }).await
}

async fn promote(State(st): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    match parse_id(&p) {
        Some(id) => run_admin(&st, AdminRequest::Promote { id }).await,
        None => id_required(),
    }
}

async fn remove_member(State(st): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    match parse_id(&p) {
        Some(id) => run_admin(&st, AdminRequest::Remove { id }).await,
        None => id_required(),
    }
}

/// Builds a Raft snapshot on this node now (and purges the log behind it).
async fn trigger_snapshot(State(st): State<AppState>) -> Response {
    match st.node.raft.trigger().snapshot().await {
        Ok(()) => (StatusCode::OK, "true").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        crate::metrics::render(
            &st.node,
            crate::metrics::SdkGauges {
                connections: st.sdk_conns.count(),
                config_listeners: st.sdk_config_listeners.count(),
                naming_subscribers: st.sdk_naming.subscribers.count(),
            },
        ),
    )
        .into_response()
}

/// Consul: the leader's Raft address as a JSON string, `""` when none is known.
async fn status_leader(State(st): State<AppState>) -> Json<String> {
    Json(st.node.leader_peer().map(|(_, p)| p.raft_addr).unwrap_or_default())
}

/// Consul: the Raft addresses of the voters.
async fn status_peers(State(st): State<AppState>) -> Json<Vec<String>> {
    let s = st.node.status();
    Json(s.members.into_iter().filter(|m| m.voter).map(|m| m.peer.raft_addr).collect())
}
