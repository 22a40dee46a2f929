//! The harness of the pure apply tests: a fresh state-machine database fed one entry at a time,
//! the n-th at log index n and leader time 1000·n ms, with the in-memory registry index updated
//! from each entry's changes as the real store does. Each test module adds its own helpers in an
//! `impl TestSm` block of its own, named after its domain (`consul`, `naming`, `catalog`, `auth`).

use openraft::impls::leader_id_adv::LeaderId;
use openraft::EntryPayload;

use super::apply::apply_entry;
use super::command::Applied;
use super::command::Change;
use super::command::Command;
use super::command::LogEntry;
use super::naming_index::NamingIndex;
use super::AppliedState;
use crate::raft::types::Entry;
use crate::raft::types::LogId;

pub(super) struct TestSm {
    _dir: tempfile::TempDir,
    pub db: rocksdb::DB,
    pub st: AppliedState,
    pub index: u64,
    pub mem: NamingIndex,
}

impl TestSm {
    pub fn new() -> TestSm {
        let dir = tempfile::tempdir().unwrap();
        let db = super::open_db(&dir.path().join("sm")).unwrap();
        TestSm { _dir: dir, db, st: AppliedState::default(), index: 0, mem: NamingIndex::default() }
    }

    /// Applies `cmd` as the next entry.
    pub fn entry(&mut self, cmd: Command) -> (Applied, Vec<Change>) {
        self.index += 1;
        let e = Entry {
            log_id: LogId::new(LeaderId { term: 1, node_id: 1 }, self.index),
            payload: EntryPayload::Normal(LogEntry { time_ms: 1000 * self.index, request_id: None, cmd }),
        };
        let (a, changes) = apply_entry(&self.db, &e, &mut self.st).unwrap();
        for c in &changes {
            self.mem.apply(c);
        }
        (a, changes)
    }
}
