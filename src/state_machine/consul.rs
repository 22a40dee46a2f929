//! Consul KV, sessions, transactions and events: the replicated records and the commands.
//! Variants and fields are append-only (postcard encodes positions).
//!
//! Everything apply needs that depends on a clock or on chance is in the command: session and
//! event ids are drawn by the proposer, lock-delay deadlines come from the entry's leader-stamped
//! `time_ms`, and session expiry is decided by the leader and proposed as [`ConsulCmd::SessionExpire`].

use serde::Deserialize;
use serde::Serialize;

/// A stored KV entry (Consul's DirEntry without its key, which is the record's key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// Empty means `null` (Consul stores an empty body as nil).
    pub value: Vec<u8>,
    pub flags: u64,
    /// The session holding the lock, if any.
    pub session: Option<String>,
    /// Successful new acquisitions.
    pub lock_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Leader time (ms) until which `acquire` fails: set when a session holding the key was
    /// invalidated (lock-delay); 0 when none. Not part of the entry's identity for idempotence.
    pub lock_delay_until_ms: u64,
}

impl KvEntry {
    /// Whether a write would leave the entry as it is (Consul skips such writes: no new index).
    pub fn same_content(&self, other: &KvEntry) -> bool {
        self.value == other.value
            && self.flags == other.flags
            && self.session == other.session
            && self.lock_index == other.lock_index
    }
}

/// What happens to the keys a session holds when it is invalidated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Behavior {
    #[default]
    Release,
    Delete,
}

impl Behavior {
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Release => "release",
            Behavior::Delete => "delete",
        }
    }
}

/// A stored Consul session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionItem {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay_ns: u64,
    pub behavior: Behavior,
    /// As supplied (`"30s"`), empty when the session has no TTL.
    pub ttl: String,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A stored user event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventItem {
    pub id: String,
    pub name: String,
    /// Empty means `null`.
    pub payload: Vec<u8>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    /// The log index it was fired at (Consul's Lamport time plays the same role).
    pub ltime: u64,
}

/// How a KV PUT writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvSetOp {
    Plain,
    /// 0: only if absent; N: only if the entry's ModifyIndex is N.
    Cas(u64),
    Acquire(String),
    Release(String),
}

/// How a KV DELETE deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvDeleteOp {
    Single,
    Recurse,
    Cas(u64),
}

/// The KV verbs of a transaction (Consul's `api.KVOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteTree,
    DeleteCas,
}

impl TxnVerb {
    /// Consul's spelling; `None` for a verb Consul does not know.
    pub fn parse(s: &str) -> Option<TxnVerb> {
        Some(match s {
            "set" => TxnVerb::Set,
            "cas" => TxnVerb::Cas,
            "lock" => TxnVerb::Lock,
            "unlock" => TxnVerb::Unlock,
            "get" => TxnVerb::Get,
            "get-or-empty" => TxnVerb::GetOrEmpty,
            "get-tree" => TxnVerb::GetTree,
            "check-index" => TxnVerb::CheckIndex,
            "check-session" => TxnVerb::CheckSession,
            "check-not-exists" => TxnVerb::CheckNotExists,
            "delete" => TxnVerb::Delete,
            "delete-tree" => TxnVerb::DeleteTree,
            "delete-cas" => TxnVerb::DeleteCas,
            _ => return None,
        })
    }

    /// Whether the verb may change state (a transaction of only reads is served as a read).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            TxnVerb::Set
                | TxnVerb::Cas
                | TxnVerb::Lock
                | TxnVerb::Unlock
                | TxnVerb::Delete
                | TxnVerb::DeleteTree
                | TxnVerb::DeleteCas
        )
    }

    /// Whether the verb's results carry the value (only the reads do).
    pub fn returns_value(self) -> bool {
        matches!(self, TxnVerb::Get | TxnVerb::GetOrEmpty | TxnVerb::GetTree)
    }

    /// Whether an empty key is a legitimate argument (a prefix covering every key).
    pub fn takes_prefix(self) -> bool {
        matches!(self, TxnVerb::GetTree | TxnVerb::DeleteTree)
    }
}

/// One KV operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnOp {
    pub verb: TxnVerb,
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    /// ModifyIndex for the cas-style verbs.
    pub index: u64,
    pub session: String,
}

/// One result of a transaction: an entry and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    pub key: String,
    pub entry: KvEntry,
}

/// One failed operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// A transaction's outcome: results when every operation succeeded (and was written), errors
/// otherwise (and nothing was written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnReply {
    pub results: Vec<TxnResult>,
    pub errors: Vec<TxnError>,
}

/// Replies of Consul commands that carry more than `Applied`'s plain variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsulReply {
    Txn(TxnReply),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsulCmd {
    KvSet {
        key: String,
        value: Vec<u8>,
        flags: u64,
        op: KvSetOp,
    },
    KvDelete {
        key: String,
        op: KvDeleteOp,
    },
    /// All-or-nothing: every operation is evaluated, and nothing is written when one fails.
    Txn {
        ops: Vec<TxnOp>,
    },
    /// `session.id` is drawn by the proposer; the indexes are stamped by apply.
    SessionCreate(Box<SessionItem>),
    SessionDestroy {
        id: String,
    },
    /// Sessions whose TTL lapsed, decided by the leader.
    SessionExpire {
        ids: Vec<String>,
    },
    /// `event.id` is drawn by the proposer; `ltime` is stamped by apply.
    EventFire(Box<EventItem>),
}

impl ConsulCmd {
    pub fn name(&self) -> &'static str {
        match self {
            ConsulCmd::KvSet { .. } => "consul.kv_set",
            ConsulCmd::KvDelete { .. } => "consul.kv_delete",
            ConsulCmd::Txn { .. } => "consul.txn",
            ConsulCmd::SessionCreate(_) => "consul.session_create",
            ConsulCmd::SessionDestroy { .. } => "consul.session_destroy",
            ConsulCmd::SessionExpire { .. } => "consul.session_expire",
            ConsulCmd::EventFire(_) => "consul.event_fire",
        }
    }
}
