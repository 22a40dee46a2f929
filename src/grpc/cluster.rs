//! Server side of the cluster port (9849). Every RPC must carry the shared cluster secret and,
//! when the sender names a target node, that target must be this node.

use std::sync::Arc;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use super::pb::cluster_service_server::ClusterService;
use super::pb::cluster_service_server::ClusterServiceServer;
use super::pb::RaftPayload;
use super::pb::SnapshotChunk;
use crate::raft::network::decode;
use crate::raft::network::encode;
use crate::raft::network::MAX_MESSAGE;
use crate::raft::network::SECRET_HEADER;
use crate::raft::network::TARGET_HEADER;
use crate::raft::rpc::AdminRequest;
use crate::raft::types::Snapshot;
use crate::raft::types::SnapshotMeta;
use crate::raft::types::TypeConfig;
use crate::raft::types::Vote;
use crate::raft::RaftNode;
use crate::state_machine::command::LogEntry;
use crate::state_machine::snapshot;
use crate::state_machine::snapshot::SnapshotFile;

pub struct ClusterRpc {
    node: Arc<RaftNode>,
    /// Empty: no secret configured, so every peer RPC is refused (a standalone node).
    secret: Arc<String>,
}

pub fn service(node: Arc<RaftNode>, secret: String) -> ClusterServiceServer<ClusterRpc> {
    ClusterServiceServer::new(ClusterRpc { node, secret: Arc::new(secret) })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Constant-time comparison, so the secret cannot be recovered by timing.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ClusterRpc {
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let given = req.metadata().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if self.secret.is_empty() || !secret_eq(given, self.secret.as_bytes()) {
            return Err(Status::permission_denied("cluster secret missing or wrong"));
        }
        if let Some(t) = req.metadata().get(TARGET_HEADER) {
            let me = self.node.id.to_string();
            if t.as_bytes() != me.as_bytes() {
                return Err(Status::failed_precondition(format!(
                    "this is node {me}, not node {}",
                    String::from_utf8_lossy(t.as_bytes())
                )));
            }
        }
        Ok(())
    }
}

fn reply<T: serde::Serialize>(v: &T) -> Result<Response<RaftPayload>, Status> {
    Ok(Response::new(RaftPayload { data: encode(v) }))
}

fn bad_request(e: String) -> Status {
    Status::invalid_argument(e)
}

#[tonic::async_trait]
impl ClusterService for ClusterRpc {
    async fn append_entries(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> =
            decode(&req.into_inner().data).map_err(bad_request)?;
        let res = self.node.raft.append_entries(rpc).await.map_err(|e| e.to_string());
        reply(&res)
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let rpc: openraft::raft::VoteRequest<TypeConfig> = decode(&req.into_inner().data).map_err(bad_request)?;
        let res = self.node.raft.vote(rpc).await.map_err(|e| e.to_string());
        reply(&res)
    }

    async fn transfer_leader(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let rpc: openraft::raft::TransferLeaderRequest<TypeConfig> =
            decode(&req.into_inner().data).map_err(bad_request)?;
        let res = self.node.raft.handle_transfer_leader(rpc).await.map_err(|e| e.to_string());
        reply(&res)
    }

    async fn install_snapshot(&self, req: Request<Streaming<SnapshotChunk>>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let mut stream = req.into_inner();
        let dir = snapshot::snapshots_dir(self.node.sm.root());
        let path = dir.join(format!("tmp-incoming-{}-{}.bsnap", std::process::id(), crate::now_nanos()));
        let result = self.receive(&mut stream, &path).await;
        let out = match result {
            Ok((vote, meta)) => {
                let snap = Snapshot { meta, snapshot: SnapshotFile { path: path.clone() } };
                self.node.raft.install_full_snapshot(vote, snap).await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&path).await;
        reply(&out)
    }

    async fn forward(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let entry: LogEntry = decode(&req.into_inner().data).map_err(bad_request)?;
        reply(&self.node.handle_forward(entry).await)
    }

    async fn read_index(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        reply(&self.node.handle_read_index().await)
    }

    async fn admin(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let r: AdminRequest = decode(&req.into_inner().data).map_err(bad_request)?;
        reply(&self.node.admin(r).await)
    }

    async fn lease(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.check(&req)?;
        let r: crate::raft::lease::LeaseReport = decode(&req.into_inner().data).map_err(bad_request)?;
        // A stale leader's table is not read by anyone; recording is harmless either way.
        self.node.leases.record(r);
        reply(&())
    }
}

impl ClusterRpc {
    /// Streams chunks to `path`, checking every chunk's crc and the whole file's checksum before
    /// openraft sees it: an install error inside openraft is fatal, so bad input stops here.
    async fn receive(
        &self,
        stream: &mut Streaming<SnapshotChunk>,
        path: &std::path::Path,
    ) -> Result<(Vote, SnapshotMeta), String> {
        let mut f = tokio::fs::File::create(path).await.map_err(|e| e.to_string())?;
        let mut header: Option<(Vote, SnapshotMeta)> = None;
        let mut total = crc32fast::Hasher::new();
        let mut done = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if header.is_none() {
                header = Some(decode(&chunk.header)?);
            }
            if crc32fast::hash(&chunk.data) != chunk.crc32 {
                return Err("snapshot chunk checksum mismatch".into());
            }
            total.update(&chunk.data);
            f.write_all(&chunk.data).await.map_err(|e| e.to_string())?;
            if chunk.done {
                if total.clone().finalize() != chunk.total_crc32 {
                    return Err("snapshot checksum mismatch".into());
                }
                done = true;
                break;
            }
        }
        if !done {
            return Err("snapshot stream ended early".into());
        }
        f.sync_all().await.map_err(|e| e.to_string())?;
        drop(f);
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || snapshot::verify_file(&p))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        header.ok_or_else(|| "snapshot stream without header".to_string())
    }
}
