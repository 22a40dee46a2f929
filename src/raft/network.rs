//! Client side of the cluster port (9849): openraft's `RaftNetworkV2` over tonic, plus the
//! application RPCs (write forwarding, read-index, admin) that followers send to the leader.
//!
//! Raft messages travel as postcard bytes inside a protobuf envelope, so the wire follows the
//! same serde layout as the log on disk. Channels are created lazily once per peer and reused;
//! heartbeats and snapshots get channels of their own so a large transfer never delays them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::AnyError;
use openraft::RaftNetworkFactory;
use openraft::RaftNetworkV2;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use super::types::NodeId;
use super::types::Peer;
use super::types::Snapshot;
use super::types::TypeConfig;
use super::types::Vote;
use crate::grpc::pb::cluster_service_client::ClusterServiceClient;
use crate::grpc::pb::RaftPayload;
use crate::grpc::pb::SnapshotChunk;

/// Metadata header carrying the shared cluster secret on every cluster RPC.
pub const SECRET_HEADER: &str = "x-batata-cluster-secret";
/// Metadata header naming the node the sender meant to reach; the receiver rejects mismatches
/// (a reused address must not deliver votes to the wrong node).
pub const TARGET_HEADER: &str = "x-batata-target-node";
/// gRPC message limit on the cluster port, well above tonic's 4 MiB default: AppendEntries
/// batches are capped at 8 MiB of entries by the log reader.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

/// Floors under openraft's per-RPC TTLs: a heartbeat TTL suits a LAN leader, not a learner in
/// another datacenter or a loaded CI machine.
const MIN_RPC_TIMEOUT: Duration = Duration::from_millis(1000);
const MIN_CHUNK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Purpose {
    Replicate,
    Heartbeat,
    Snapshot,
    App,
}

/// Cached channels to peers, keyed by (address, purpose).
#[derive(Clone)]
pub struct PeerClients {
    secret: Arc<String>,
    channels: Arc<Mutex<HashMap<(String, Purpose), Channel>>>,
    /// Peer address -> address to dial instead (`nacos.cluster.peer-routes`).
    routes: Arc<HashMap<String, String>>,
}

/// Parses `addr=>via,addr2=>via2`.
pub fn parse_routes(spec: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = pair.split_once("=>").ok_or_else(|| format!("peer route {pair:?} is not addr=>via"))?;
        out.insert(from.trim().to_string(), to.trim().to_string());
    }
    Ok(out)
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    postcard::from_bytes(b).map_err(|e| format!("undecodable cluster message: {e}"))
}

impl PeerClients {
    pub fn new(secret: String) -> PeerClients {
        PeerClients::with_routes(secret, HashMap::new())
    }

    pub fn with_routes(secret: String, routes: HashMap<String, String>) -> PeerClients {
        PeerClients {
            secret: Arc::new(secret),
            channels: Arc::new(Mutex::new(HashMap::new())),
            routes: Arc::new(routes),
        }
    }

    pub fn client(&self, addr: &str, purpose: Purpose) -> Result<ClusterServiceClient<Channel>, String> {
        let key = (addr.to_string(), purpose);
        let mut map = self.channels.lock().map_err(|_| "peer channel table poisoned".to_string())?;
        let ch = match map.get(&key) {
            Some(c) => c.clone(),
            None => {
                let dial = self.routes.get(addr).map(String::as_str).unwrap_or(addr);
                let ep = Endpoint::from_shared(format!("http://{dial}"))
                    .map_err(|e| format!("bad peer address {addr}: {e}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(Duration::from_secs(20))
                    .http2_adaptive_window(true);
                let c = ep.connect_lazy();
                map.insert(key, c.clone());
                c
            }
        };
        Ok(ClusterServiceClient::new(ch).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE))
    }

    pub fn request<T>(&self, msg: T, target: Option<NodeId>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Ok(v) = self.secret.parse() {
            r.metadata_mut().insert(SECRET_HEADER, v);
        }
        if let Some(t) = target {
            if let Ok(v) = t.to_string().parse() {
                r.metadata_mut().insert(TARGET_HEADER, v);
            }
        }
        r
    }
}

/// Builds per-peer network clients for openraft. Never for this node itself.
pub struct NetworkFactory {
    pub self_id: NodeId,
    pub clients: PeerClients,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Peer) -> PeerNetwork {
        self.make(target, node, Purpose::Replicate)
    }

    async fn new_heartbeat_client(&mut self, target: NodeId, node: &Peer) -> PeerNetwork {
        self.make(target, node, Purpose::Heartbeat)
    }

    async fn new_snapshot_client(&mut self, target: NodeId, node: &Peer) -> PeerNetwork {
        self.make(target, node, Purpose::Snapshot)
    }
}

impl NetworkFactory {
    fn make(&self, target: NodeId, node: &Peer, purpose: Purpose) -> PeerNetwork {
        debug_assert_ne!(target, self.self_id, "openraft must never connect a node to itself");
        PeerNetwork { target, addr: node.raft_addr.clone(), purpose, clients: self.clients.clone() }
    }
}

pub struct PeerNetwork {
    target: NodeId,
    addr: String,
    purpose: Purpose,
    clients: PeerClients,
}

fn unreachable<E: std::fmt::Display>(e: E) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error(e.to_string())))
}

fn network_err<E: std::fmt::Display>(e: E) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(&AnyError::error(e.to_string())))
}

/// Maps a transport status: connection-level failures become `Unreachable` so openraft backs
/// off instead of retrying hot.
fn status_err(s: tonic::Status) -> RPCError<TypeConfig> {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => unreachable(s.message()),
        _ => network_err(format!("{}: {}", s.code(), s.message())),
    }
}

impl PeerNetwork {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        kind: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let mut c = self.clients.client(&self.addr, self.purpose).map_err(unreachable)?;
        let r = self.clients.request(RaftPayload { data: encode(req) }, Some(self.target));
        let fut = async {
            match kind {
                "append" => c.append_entries(r).await,
                "transfer_leader" => c.transfer_leader(r).await,
                _ => c.vote(r).await,
            }
        };
        let resp = tokio::time::timeout(ttl.max(MIN_RPC_TIMEOUT), fut)
            .await
            .map_err(|_| unreachable(format!("{kind} to node {} timed out", self.target)))?
            .map_err(status_err)?;
        let res: Result<Resp, String> = decode(&resp.into_inner().data).map_err(network_err)?;
        res.map_err(network_err)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerNetwork {
    type SnapshotData = crate::state_machine::snapshot::SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("append", &rpc, option.soft_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("vote", &rpc, option.soft_ttl()).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("transfer_leader", &req, option.soft_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let chunk_timeout = option.soft_ttl().max(MIN_CHUNK_TIMEOUT);
        let header = encode(&(vote, snapshot.meta.clone()));
        let path = snapshot.snapshot.path.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<SnapshotChunk>(4);
        let reader = tokio::spawn(async move {
            let mut f = tokio::fs::File::open(&path).await.map_err(|e| e.to_string())?;
            let mut total = crc32fast::Hasher::new();
            let mut first = true;
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                let mut n = 0;
                while n < buf.len() {
                    let r = f.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
                    if r == 0 {
                        break;
                    }
                    n += r;
                }
                buf.truncate(n);
                total.update(&buf);
                let done = n < SNAPSHOT_CHUNK;
                let chunk = SnapshotChunk {
                    header: if first { header.clone() } else { Vec::new() },
                    crc32: crc32fast::hash(&buf),
                    data: buf,
                    total_crc32: if done { total.clone().finalize() } else { 0 },
                    done,
                };
                first = false;
                if tokio::time::timeout(chunk_timeout, tx.send(chunk)).await.is_err() {
                    return Err("snapshot chunk send timed out".to_string());
                }
                if done {
                    return Ok::<(), String>(());
                }
            }
        });
        let mut c = self
            .clients
            .client(&self.addr, Purpose::Snapshot)
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&AnyError::error(e))))?;
        let req = self.clients.request(tokio_stream::wrappers::ReceiverStream::new(rx), Some(self.target));
        let send = c.install_snapshot(req);
        let resp = tokio::select! {
            closed = cancel => {
                reader.abort();
                return Err(StreamingError::Closed(closed));
            }
            r = send => r,
        };
        let resp = resp.map_err(|s| StreamingError::Network(NetworkError::new(&AnyError::error(s.to_string()))))?;
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StreamingError::Network(NetworkError::new(&AnyError::error(e)))),
            Err(e) => return Err(StreamingError::Network(NetworkError::new(&AnyError::error(e.to_string())))),
        }
        let res: Result<SnapshotResponse<TypeConfig>, String> = decode(&resp.into_inner().data)
            .map_err(|e| StreamingError::Network(NetworkError::new(&AnyError::error(e))))?;
        res.map_err(|e| StreamingError::Network(NetworkError::new(&AnyError::error(e))))
    }
}
