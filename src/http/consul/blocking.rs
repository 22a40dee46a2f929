//! Consul's blocking queries and read consistency.
//!
//! `?index=N&wait=D` holds a read until the endpoint's index exceeds N or the wait (default
//! 5 min, capped at 10 min, plus up to wait/16 of jitter) runs out, then answers with the current
//! data and index either way. A wait sleeps on the watch of the table it reads
//! (`state_machine::tables`) and re-runs the query only when that table changed, so idle
//! watchers are not even woken by other writes.
//!
//! Modes: `?stale` reads this node's state; `?consistent` confirms leadership through a quorum
//! (read-index) first, on every round; the default reads on the leader, and on a follower after
//! catching up with the leader's commit index (Consul forwards default reads to the leader).

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use tokio::time::Instant;

use super::error;
use super::ConsulQuery;
use crate::http::AppState;
use crate::state_machine::tables::Table;

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Default,
    Stale,
    Consistent,
}

impl Mode {
    fn header(self) -> &'static str {
        match self {
            Mode::Default => "leader",
            Mode::Stale => "stale",
            Mode::Consistent => "consistent",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QueryOpts {
    /// 0: do not block.
    pub index: u64,
    pub wait: Duration,
    pub mode: Mode,
}

impl QueryOpts {
    /// Reads `index`, `wait`, `stale`, `consistent` (and refuses the Enterprise-only params).
    pub fn parse(q: &ConsulQuery) -> Result<QueryOpts, Response> {
        super::check_enterprise_params(q)?;
        let index = match q.get("index") {
            None | Some("") => 0,
            // Spring's ConfigWatch sends -1 when it has no index yet: treat it as none.
            Some(v) if v.starts_with('-') && v[1..].chars().all(|c| c.is_ascii_digit()) => 0,
            Some(v) => v.parse::<u64>().map_err(|_| error(StatusCode::BAD_REQUEST, "Invalid index"))?,
        };
        let wait = match q.get("wait") {
            None | Some("") => DEFAULT_WAIT,
            Some(v) => {
                super::parse_go_duration(v).ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid wait time"))?
            }
        };
        let wait = if wait.is_zero() { DEFAULT_WAIT } else { wait.min(MAX_WAIT) };
        let (stale, consistent) = (q.flag("stale"), q.flag("consistent"));
        let mode = match (stale, consistent) {
            (true, true) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Cannot specify ?stale with ?consistent, conflicting semantics.",
                ))
            }
            (true, false) => Mode::Stale,
            (false, true) => Mode::Consistent,
            (false, false) => Mode::Default,
        };
        Ok(QueryOpts { index, wait, mode })
    }
}

/// What a read reports in its headers.
#[derive(Debug, Clone, Copy)]
pub struct QueryMeta {
    pub index: u64,
    pub known_leader: bool,
    pub mode: Mode,
}

impl QueryMeta {
    /// `X-Consul-Index` (never 0), `X-Consul-KnownLeader`, `X-Consul-LastContact` and
    /// `X-Consul-Effective-Consistency`.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Consul-Index", HeaderValue::from(self.index.max(1)));
        h.insert("X-Consul-KnownLeader", HeaderValue::from_static(if self.known_leader { "true" } else { "false" }));
        h.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
        h.insert("X-Consul-Effective-Consistency", HeaderValue::from_static(self.mode.header()));
        h
    }

    /// A JSON reply with these headers.
    pub fn json(&self, body: &impl serde::Serialize) -> Response {
        let mut r = axum::Json(body).into_response();
        r.headers_mut().extend(self.headers());
        r
    }

    /// A reply of `status` with these headers and an empty body (KV misses).
    pub fn empty(&self, status: StatusCode) -> Response {
        let mut r = status.into_response();
        r.headers_mut().extend(self.headers());
        r
    }
}

async fn read_barrier(st: &AppState, mode: Mode) -> Result<(), Response> {
    let needed = match mode {
        Mode::Stale => false,
        Mode::Consistent => true,
        Mode::Default => !st.node.raft.is_leader(),
    };
    if needed {
        st.node.linearizable_barrier().await.map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok(())
}

/// Up to wait/16 of jitter, so watchers that started together do not return together.
fn jitter(wait: Duration) -> Duration {
    let spread = (wait.as_nanos() / 16) as u64;
    if spread == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos((crate::now_nanos() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % spread)
}

/// Runs `query` (returning its result and its index) under `opts`: once when not blocking,
/// else until the index exceeds `opts.index` or the wait runs out. `table` is what the query
/// reads: the query re-runs only after it changed.
pub async fn run<T>(
    st: &AppState,
    opts: &QueryOpts,
    table: Table,
    mut query: impl FnMut() -> Result<(T, u64), Response>,
) -> Result<(T, QueryMeta), Response> {
    let sm = &st.node.sm;
    let deadline = Instant::now() + opts.wait + jitter(opts.wait);
    let mut table_index = sm.table_watch(table);
    loop {
        read_barrier(st, opts.mode).await?;
        // Marks the current index seen: a change from here on wakes the wait below.
        table_index.borrow_and_update();
        let (value, index) = query()?;
        let index = index.max(1);
        if opts.index == 0 || index > opts.index || Instant::now() >= deadline {
            let known_leader = st.node.status().leader.is_some();
            return Ok((value, QueryMeta { index, known_leader, mode: opts.mode }));
        }
        // Wait for a change to the table (or the deadline), then run the query again.
        match tokio::time::timeout_at(deadline, table_index.changed()).await {
            Err(_) | Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "state machine stopped")),
        }
    }
}
