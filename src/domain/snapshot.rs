//! Disaster recovery: export a point-in-time snapshot of a live node, and restore a snapshot's
//! data into a running cluster as one replicated `Sys::Restore` entry (every replica applies
//! the same records, so no node needs the file).

use std::io::Write;
use std::path::Path;
use std::path::PathBuf;

use super::DomainError;
use crate::raft::RaftNode;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::command::LogEntry;
use crate::state_machine::command::Record;
use crate::state_machine::command::SysCmd;
use crate::state_machine::schema;
use crate::state_machine::snapshot;

/// Writes a snapshot of the current local state to a temporary file; returns it and the
/// applied index it reflects.
pub async fn export(node: &RaftNode) -> Result<(tempfile::TempPath, u64), DomainError> {
    let sm = node.sm.clone();
    let res = tokio::task::spawn_blocking(move || sm.export_snapshot())
        .await
        .map_err(|e| DomainError::Storage(std::io::Error::other(e.to_string())))??;
    Ok(res)
}

/// Reads the data records of a verified snapshot file.
fn data_records(path: &Path) -> Result<(snapshot::SnapshotHeader, Vec<Record>), DomainError> {
    let mut records = Vec::new();
    let (header, _) = snapshot::read_records(path, |cf, k, v| {
        if schema::ALL_CFS.get(cf as usize).map(|n| schema::DATA_CFS.contains(n)).unwrap_or(false) {
            records.push((cf, k, v));
        }
        Ok(())
    })
    .map_err(|e| DomainError::Invalid(format!("not a valid batata snapshot: {e}")))?;
    Ok((header, records))
}

/// Restores a snapshot file's data into the running cluster. `request_id` lets several nodes
/// restore the same file with a single effect.
pub async fn restore_file(node: &RaftNode, path: &Path, request_id: Option<u128>) -> Result<u64, DomainError> {
    let p = path.to_path_buf();
    let (header, records) = tokio::task::spawn_blocking(move || data_records(&p))
        .await
        .map_err(|e| DomainError::Storage(std::io::Error::other(e.to_string())))??;
    let entry = LogEntry {
        time_ms: crate::now_ms(),
        request_id: Some(request_id.unwrap_or_else(|| node.next_request_id())),
        cmd: Command::Sys(SysCmd::Restore { source_cluster_id: header.cluster_id, records }),
    };
    match node.write_entry(entry).await? {
        Applied::Ok { index } => Ok(index),
        other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
    }
}

pub async fn restore_bytes(node: &RaftNode, bytes: &[u8]) -> Result<u64, DomainError> {
    let mut tmp = tempfile::NamedTempFile::new_in(snapshot::snapshots_dir(node.sm.root()))?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    restore_file(node, tmp.path(), None).await
}

/// Where `batata snapshot restore` leaves a snapshot for a node to restore when it starts.
pub fn pending_restore_path(data_dir: &Path) -> PathBuf {
    data_dir.join("restore").join("pending.bsnap")
}

/// Startup duty: if a restore is pending, apply it once a leader exists, then keep the file as
/// `restore/applied-<ms>.bsnap` so it is not applied again.
pub async fn apply_pending_restore(node: std::sync::Arc<RaftNode>, data_dir: PathBuf) {
    let path = pending_restore_path(&data_dir);
    if !path.exists() {
        return;
    }
    // Same file, same id: nodes that all got the file restore it once.
    let id = match snapshot::verify_file(&path) {
        Ok(len) => {
            let crc = std::fs::read(&path).map(|b| crc32fast::hash(&b)).unwrap_or(0);
            (0xB5u128 << 120) | ((crc as u128) << 64) | len as u128
        }
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "pending restore file is invalid; ignoring it");
            return;
        }
    };
    loop {
        match restore_file(&node, &path, Some(id)).await {
            Ok(index) => {
                tracing::info!(index, "restored the pending snapshot");
                let done = data_dir.join("restore").join(format!("applied-{}.bsnap", crate::now_ms()));
                let _ = std::fs::rename(&path, done);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "pending restore not applied yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
