//! What a Consul client asks a server about itself: `/v1/agent/self`, `/v1/agent/members`,
//! `/v1/catalog/datacenters` and `/v1/operator/raft/configuration`. The gate checks agent read
//! for `/agent/self` and operator read for the Raft configuration; members need node read.

use axum::extract::Extension;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde_json::json;

use super::caller::Acl;
use super::caller::Visible;
use super::AgentNode;
use super::ConsulQuery;
use super::DATACENTER;
use crate::http::AppState;

/// The Consul version this server answers as (clients gate features on it).
pub const CONSUL_VERSION: &str = "1.22.0";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/agent/members", get(members))
        .route("/v1/catalog/datacenters", get(datacenters))
        .route("/v1/operator/raft/configuration", get(raft_configuration))
}

/// Every top-level member is an object: the Go client decodes a map of maps. `Config.NodeName`
/// and `Config.Datacenter` are read by the Go client and Prometheus.
async fn agent_self(State(st): State<AppState>) -> Json<serde_json::Value> {
    let n = AgentNode::of(&st);
    let s = st.node.status();
    let leader = s.leader == Some(st.node.id);
    Json(json!({
        "Config": {"Datacenter": DATACENTER, "PrimaryDatacenter": DATACENTER, "NodeName": n.name, "NodeID": n.id,
                   "Revision": env!("CARGO_PKG_VERSION"), "Server": true, "Version": CONSUL_VERSION,
                   "BuildDate": "2026-01-01T00:00:00Z"},
        "DebugConfig": {},
        "Coord": {"Vec": [0, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5, "Adjustment": 0, "Height": 1e-05},
        "Member": member(&n),
        "Stats": {
            "agent": {"check_monitors": "0", "services": "0"},
            "consul": {"leader": leader.to_string(), "known_datacenters": "1", "server": "true",
                       "leader_addr": s.leader.map(|l| l.to_string()).unwrap_or_default()},
            "raft": {"applied_index": s.applied.unwrap_or(0).to_string(), "term": s.term.to_string(),
                     "last_log_index": s.last_log_index.unwrap_or(0).to_string(),
                     "commit_index": s.committed.unwrap_or(0).to_string(), "num_peers": s.members.len().saturating_sub(1).to_string()},
            "build": {"version": CONSUL_VERSION, "prerelease": "", "revision": env!("CARGO_PKG_VERSION")},
        },
        "Meta": {},
    }))
}

fn member(n: &AgentNode) -> serde_json::Value {
    json!({
        "Name": n.name, "Addr": n.address, "Port": 8301,
        "Tags": {"role": "consul", "dc": DATACENTER, "port": "8300", "id": n.id,
                 "build": format!("{CONSUL_VERSION}:batata"), "vsn": "2", "vsn_min": "2", "vsn_max": "3",
                 "raft_vsn": "3", "acls": "0", "bootstrap": "1"},
        "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

/// This node only: the other servers are Raft peers, listed by `/v1/status/peers`.
async fn members(State(st): State<AppState>, Extension(acl): Extension<Acl>) -> Response {
    let n = AgentNode::of(&st);
    let v = Visible::new(&acl);
    let list: Vec<serde_json::Value> = if v.node(&n.name) { vec![member(&n)] } else { vec![] };
    let mut r = Json(list).into_response();
    v.finish(&mut r);
    r
}

async fn datacenters() -> Json<serde_json::Value> {
    Json(json!([DATACENTER]))
}

async fn raft_configuration(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = ConsulQuery::parse(q.as_deref());
    let s = st.node.status();
    if s.leader.is_none() && !q.flag("stale") {
        return super::error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader");
    }
    let servers: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            json!({"ID": m.id.to_string(), "Node": format!("batata-{}", m.id), "Address": m.peer.raft_addr,
                   "Leader": s.leader == Some(m.id), "Voter": m.voter, "ProtocolVersion": "3"})
        })
        .collect();
    Json(json!({"Servers": servers, "Index": s.applied.unwrap_or(0)})).into_response()
}
