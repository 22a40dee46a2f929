//! Thin glue between openraft's `RaftStateMachine` / `RaftSnapshotBuilder` and the store.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::StreamExt;
use openraft::storage::RaftStateMachine;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use rocksdb::checkpoint::Checkpoint;

use super::apply::apply_entry;
use super::command::Change;
use super::io_err;
use super::snapshot;
use super::snapshot::SnapshotFile;
use super::snapshot::SnapshotHeader;
use super::AppliedState;
use super::StateMachineStore;
use crate::raft::types::EntryResponder;
use crate::raft::types::LogId;
use crate::raft::types::Snapshot;
use crate::raft::types::SnapshotMeta;
use crate::raft::types::StoredMembership;
use crate::raft::types::TypeConfig;

/// A snapshot in the making: a checkpoint taken on the state-machine worker (so it matches
/// `meta` exactly) that `build_snapshot` turns into a snapshot file off the worker.
pub struct SnapshotBuilder {
    store: StateMachineStore,
    checkpoint: PathBuf,
    meta: SnapshotMeta,
    cluster_id: String,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let root = self.store.root().to_path_buf();
        let checkpoint = self.checkpoint.clone();
        let header = SnapshotHeader {
            cluster_id: self.cluster_id.clone(),
            meta: self.meta.clone(),
            created_ms: crate::now_ms(),
        };
        let path = tokio::task::spawn_blocking(move || -> io::Result<PathBuf> {
            let dir = snapshot::snapshots_dir(&root);
            let name = snapshot::snapshot_file_name(&header.meta);
            let tmp = dir.join(format!("tmp-{name}"));
            {
                let db = rocksdb::DB::open_cf_for_read_only(
                    &rocksdb::Options::default(),
                    &checkpoint,
                    super::schema::ALL_CFS,
                    false,
                )
                .map_err(io_err)?;
                snapshot::write_snapshot_file(&db, &header, &tmp)?;
            }
            let _ = fs::remove_dir_all(&checkpoint);
            let dest = dir.join(name);
            fs::rename(&tmp, &dest)?;
            snapshot::sync_dir(&dir)?;
            snapshot::remove_other_snapshots(&root, &dest)?;
            Ok(dest)
        })
        .await
        .map_err(io_err)??;
        tracing::info!(path = %path.display(), last = ?self.meta.last_log_id, "snapshot built");
        Ok(Snapshot { meta: self.meta.clone(), snapshot: SnapshotFile { path } })
    }
}

impl StateMachineStore {
    fn make_builder(&self) -> io::Result<SnapshotBuilder> {
        let st = self.applied_state();
        let dir = snapshot::snapshots_dir(self.root());
        let ckpt = dir.join(format!(
            "tmp-ckpt-{}-{}",
            st.last_applied.as_ref().map(|l| l.index).unwrap_or(0),
            crate::now_ms()
        ));
        let db = self.db();
        Checkpoint::new(&db).and_then(|c| c.create_checkpoint(&ckpt)).map_err(io_err)?;
        Ok(SnapshotBuilder {
            store: self.clone(),
            checkpoint: ckpt,
            meta: SnapshotMeta { last_log_id: st.last_applied, last_membership: st.membership },
            cluster_id: self.cluster_id()?.unwrap_or_default(),
        })
    }

    /// Replaces the whole state with a verified snapshot file: load into a new generation,
    /// switch `sm/CURRENT` durably, then swap the handle readers use.
    pub(crate) fn install_from_file(&self, meta: &SnapshotMeta, file: &std::path::Path) -> io::Result<()> {
        let root = self.root().to_path_buf();
        let (gen_name, gen_dir) = snapshot::next_generation(&root)?;
        let db = snapshot::load_into_new_db(file, &gen_dir)?;
        snapshot::set_current_generation(&root, &gen_name)?;
        let old = self.swap_db(db);
        retire_db(old);
        // Keep the installed file as the current snapshot.
        let dest = snapshot::snapshots_dir(&root).join(snapshot::snapshot_file_name(meta));
        if file != dest {
            fs::copy(file, &dest)?;
            fs::File::open(&dest)?.sync_all()?;
            snapshot::sync_dir(&snapshot::snapshots_dir(&root))?;
        }
        snapshot::remove_other_snapshots(&root, &dest)?;
        self.set_state(AppliedState { last_applied: meta.last_log_id, membership: meta.last_membership.clone() });
        let idx = meta.last_log_id.as_ref().map(|l| l.index).unwrap_or(0);
        self.publish_changes(idx, vec![Change::Reset])?;
        Ok(())
    }
}

/// Drops a replaced database once its last reader is done, then deletes its directory.
fn retire_db(old: Arc<rocksdb::DB>) {
    std::thread::spawn(move || {
        let mut old = old;
        loop {
            match Arc::try_unwrap(old) {
                Ok(db) => {
                    let path = db.path().to_path_buf();
                    drop(db);
                    let _ = fs::remove_dir_all(path);
                    return;
                }
                Err(still_shared) => {
                    old = still_shared;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    });
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let s = StateMachineStore::applied_state(self);
        Ok((s.last_applied, s.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder, io::Error>> + Unpin + OptionalSend,
    {
        // The cached applied state is read only by calls that openraft serializes with apply
        // (snapshot builder, install, applied_state), so it is stored once per call instead of
        // cloned per entry; the durable copy is written with every entry's batch.
        let db = self.db();
        let mut state = StateMachineStore::applied_state(self);
        let mut result = Ok(());
        while let Some(item) = entries.next().await {
            let (entry, responder) = match item {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let index = entry.log_id.index;
            let (applied, changes) = match apply_entry(&db, &entry, &mut state) {
                Ok(x) => x,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if let Err(e) = self.publish_changes(index, changes) {
                result = Err(e);
                break;
            }
            if let Some(r) = responder {
                r.send(applied);
            }
        }
        self.set_state(state);
        result
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        match self.make_builder() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot checkpoint the state machine for a snapshot");
                None
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // openraft 0.10 calls `try_create_snapshot_builder`; this legacy entry point is only
        // reached if that changes, and a checkpoint failure here is a broken disk.
        match self.make_builder() {
            Ok(b) => b,
            Err(e) => panic!("cannot checkpoint the state machine: {e}"),
        }
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotFile) -> Result<(), io::Error> {
        let this = self.clone();
        let meta2 = meta.clone();
        tokio::task::spawn_blocking(move || this.install_from_file(&meta2, &snapshot.path)).await.map_err(io_err)??;
        tracing::info!(last = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let root = self.root().to_path_buf();
        let Some(path) = snapshot::newest_snapshot(&root)? else { return Ok(None) };
        let header = snapshot::read_header(&path)?;
        Ok(Some(Snapshot { meta: header.meta, snapshot: SnapshotFile { path } }))
    }
}

impl StateMachineStore {
    /// A snapshot file of the current state for disaster recovery (`GET /v1/snapshot`). Taken
    /// from a checkpoint, whose `sm_meta` is read from the checkpoint itself: every apply writes
    /// data and meta in one batch, so any checkpoint is self-consistent.
    pub fn export_snapshot(&self) -> io::Result<(tempfile::TempPath, u64)> {
        let dir = snapshot::snapshots_dir(self.root());
        let ckpt = dir.join(format!("tmp-export-{}", crate::now_nanos()));
        let db = self.db();
        Checkpoint::new(&db).and_then(|c| c.create_checkpoint(&ckpt)).map_err(io_err)?;
        let res = (|| {
            let ro =
                rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), &ckpt, super::schema::ALL_CFS, false)
                    .map_err(io_err)?;
            let st = super::read_applied_state(&ro)?;
            let cluster_id = match ro
                .get_cf(super::cf(&ro, super::schema::CF_META)?, super::schema::META_CLUSTER_ID)
                .map_err(io_err)?
            {
                Some(v) => super::schema::decode(&v)?,
                None => String::new(),
            };
            let index = st.last_applied.as_ref().map(|l| l.index).unwrap_or(0);
            let header = SnapshotHeader {
                cluster_id,
                meta: SnapshotMeta { last_log_id: st.last_applied, last_membership: st.membership },
                created_ms: crate::now_ms(),
            };
            let tmp = tempfile::Builder::new().prefix("tmp-export-file-").tempfile_in(&dir)?.into_temp_path();
            snapshot::write_snapshot_file(&ro, &header, &tmp)?;
            Ok((tmp, index))
        })();
        let _ = fs::remove_dir_all(&ckpt);
        res
    }
}
