//! The leader's Consul check loop, once a second while this node leads (followers would only
//! disagree with it):
//!
//! - TTL checks: every update is a keep-alive in the lease table (`LeaseKey::Check`, reported
//!   by followers like beats); one not kept alive within its TTL turns `critical` with Output
//!   `TTL expired (last output before timeout follows): ...`.
//! - HTTP and TCP checks of agent services run every `Interval`: HTTP 2xx is passing, 429
//!   warning, anything else critical; a TCP connect is passing. No retries in a row, as in
//!   Consul's defaults.
//! - `DeregisterCriticalServiceAfter`: a service whose check stayed critical that long (at
//!   least a minute, as in Consul) is deregistered.
//!
//! Only transitions are proposed (`CatalogCmd::SetStatus`, batched), never unchanged results.
//! A new leader starts with empty tables and arms every TTL afresh, like every lease.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use tokio::sync::mpsc;

use super::consul_defs::truncate;
use crate::raft::lease::LeaseKey;
use crate::raft::lease::Leases;
use crate::raft::RaftNode;
use crate::state_machine::catalog::*;
use crate::state_machine::catalog_store;
use crate::state_machine::command::Command;

const TICK: Duration = Duration::from_secs(1);
/// Consul's floor for `DeregisterCriticalServiceAfter`.
pub const MIN_DEREGISTER_AFTER: Duration = Duration::from_secs(60);

/// The lease of a TTL check: node (lowercased) and check id.
pub fn ttl_lease(node: &str, check: &str) -> LeaseKey {
    LeaseKey::Check(format!("{}\0{}", node.to_lowercase(), check))
}

type Key = (String, String);

fn key(c: &CheckItem) -> Key {
    (c.node.to_lowercase(), c.id.clone())
}

/// TTL checks that lapsed (leader), and the leases still in use.
pub fn ttl_expiries(checks: &[CheckItem], leases: &Leases, now: Instant) -> (Vec<StatusUpdate>, HashSet<LeaseKey>) {
    let mut out = Vec::new();
    let mut live = HashSet::new();
    for c in checks.iter().filter(|c| c.check_type == "ttl" && c.def.ttl_ms > 0) {
        let lk = ttl_lease(&c.node, &c.id);
        let silent = now.saturating_duration_since(leases.seen(&lk, now));
        if silent > Duration::from_millis(c.def.ttl_ms) && c.status != CRITICAL {
            let output = truncate(&format!("TTL expired (last output before timeout follows): {}", c.output));
            out.push(StatusUpdate { node: c.node.clone(), check_id: c.id.clone(), status: CRITICAL.into(), output });
        }
        live.insert(lk);
    }
    (out, live)
}

/// Services to deregister: a check with `DeregisterCriticalServiceAfter` critical for that long
/// (`since`: when each was first seen critical; kept up to date here).
pub fn reap(checks: &[CheckItem], since: &mut HashMap<Key, Instant>, now: Instant, floor: Duration) -> Vec<Key> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for c in checks.iter().filter(|c| c.def.deregister_critical_after_ms > 0 && !c.service_id.is_empty()) {
        if c.status != CRITICAL {
            continue;
        }
        let k = key(c);
        let t = *since.entry(k.clone()).or_insert(now);
        seen.insert(k);
        let after = Duration::from_millis(c.def.deregister_critical_after_ms).max(floor);
        if now.saturating_duration_since(t) > after {
            out.push((c.node.clone(), c.service_id.clone()));
        }
    }
    since.retain(|k, _| seen.contains(k));
    out.sort();
    out.dedup();
    out
}

/// The result of running one check.
struct Outcome {
    key: Key,
    node: String,
    term: u64,
    status: &'static str,
    output: String,
}

async fn run_check(http: reqwest::Client, c: CheckItem) -> (&'static str, String) {
    let timeout = Duration::from_millis(c.def.timeout_ms.max(1));
    if c.check_type == "tcp" {
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&c.def.tcp)).await {
            Ok(Ok(_)) => (PASSING, format!("TCP connect {}: Success", c.def.tcp)),
            Ok(Err(e)) => (CRITICAL, format!("dial tcp {}: {e}", c.def.tcp)),
            Err(_) => (CRITICAL, format!("dial tcp {}: i/o timeout", c.def.tcp)),
        };
    }
    let method = if c.def.method.is_empty() { "GET" } else { c.def.method.as_str() };
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = http.request(m, &c.def.http).timeout(timeout).header("User-Agent", "Consul Health Check");
    for (k, vs) in &c.def.header {
        for v in vs {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !c.def.body.is_empty() {
        req = req.body(c.def.body.clone());
    }
    match req.send().await {
        Ok(r) => {
            let code = r.status();
            let body = r.text().await.unwrap_or_default();
            let status = match code.as_u16() {
                200..=299 => PASSING,
                429 => WARNING,
                _ => CRITICAL,
            };
            (status, truncate(&format!("HTTP {method} {}: {code} Output: {body}", c.def.http)))
        }
        Err(e) => (CRITICAL, truncate(&format!("{method} {:?}: {e}", c.def.http))),
    }
}

/// Runs for the life of the process.
pub async fn run(node: Arc<RaftNode>) {
    let http = reqwest::Client::builder().build().unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let mut due: HashMap<Key, Instant> = HashMap::new();
    let mut inflight: HashSet<Key> = HashSet::new();
    let mut critical_since: HashMap<Key, Instant> = HashMap::new();
    let mut my_term = 0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !node.raft.is_leader() {
            due.clear();
            critical_since.clear();
            continue;
        }
        let term = node.status().term;
        if term != my_term {
            my_term = term;
            due.clear();
            critical_since.clear();
        }
        node.leases.begin_term(term);
        let checks = match catalog_store::checks(&node.sm.db(), None) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading Consul checks: {e}");
                continue;
            }
        };
        let now = Instant::now();
        let (mut updates, live) = ttl_expiries(&checks, &node.leases, now);
        node.leases.retain_keys(|k| !matches!(k, LeaseKey::Check(_)) || live.contains(k));
        // Results of the HTTP/TCP checks that finished since the last tick.
        let current: HashMap<Key, &CheckItem> = checks.iter().map(|c| (key(c), c)).collect();
        while let Ok(o) = rx.try_recv() {
            inflight.remove(&o.key);
            match current.get(&o.key) {
                Some(c) if o.term == my_term && c.status != o.status => updates.push(StatusUpdate {
                    node: o.node,
                    check_id: o.key.1.clone(),
                    status: o.status.into(),
                    output: o.output,
                }),
                _ => {}
            }
        }
        for c in checks.iter().filter(|c| matches!(c.check_type.as_str(), "http" | "tcp")) {
            let k = key(c);
            if inflight.contains(&k) || due.get(&k).is_some_and(|t| *t > now) {
                continue;
            }
            due.insert(k.clone(), now + Duration::from_millis(c.def.interval_ms.max(1000)));
            inflight.insert(k.clone());
            let (tx, http, c) = (tx.clone(), http.clone(), c.clone());
            tokio::spawn(async move {
                let node = c.node.clone();
                let (status, output) = run_check(http, c).await;
                let _ = tx.send(Outcome { key: k, node, term, status, output });
            });
        }
        due.retain(|k, _| current.contains_key(k));
        let reaped = reap(&checks, &mut critical_since, now, MIN_DEREGISTER_AFTER);
        if !updates.is_empty() {
            if let Err(e) = node.write(Command::Catalog(CatalogCmd::SetStatus { items: updates })).await {
                tracing::warn!("Consul check transitions not committed (checked again): {e}");
            }
        }
        for (n, sid) in reaped {
            tracing::info!(node = %n, service = %sid, "deregistering a service critical past DeregisterCriticalServiceAfter");
            let cmd = CatalogCmd::Deregister { node: n, service_id: Some(sid), check_id: None };
            if let Err(e) = node.write(Command::Catalog(cmd)).await {
                tracing::warn!("deregistration not committed (retried): {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, ttl_ms: u64, status: &str) -> CheckItem {
        CheckItem {
            node: "N".into(),
            id: id.into(),
            status: status.into(),
            service_id: "web".into(),
            check_type: "ttl".into(),
            def: CheckDef { ttl_ms, deregister_critical_after_ms: 1000, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn ttl_lapses_once_and_only_when_not_kept_alive() {
        let leases = Leases::default();
        let t0 = Instant::now();
        let checks = vec![check("a", 2000, PASSING), check("b", 2000, CRITICAL)];
        // First sight arms the leases.
        assert!(ttl_expiries(&checks, &leases, t0).0.is_empty());
        let (u, live) = ttl_expiries(&checks, &leases, t0 + Duration::from_secs(3));
        assert_eq!(u.len(), 1, "only the passing one turns critical");
        assert_eq!((u[0].check_id.as_str(), u[0].status.as_str()), ("a", CRITICAL));
        assert!(u[0].output.starts_with("TTL expired"));
        assert!(live.contains(&ttl_lease("n", "a")), "lease keys are case-insensitive on the node");
        leases.record(crate::raft::lease::LeaseReport { node: 1, conns: None, keys: vec![ttl_lease("N", "a")] });
        assert!(ttl_expiries(&checks, &leases, Instant::now() + Duration::from_millis(500)).0.is_empty());
    }

    #[test]
    fn reaping_waits_for_the_floor_and_forgets_recovered_checks() {
        let mut since = HashMap::new();
        let t0 = Instant::now();
        let crit = vec![check("a", 0, CRITICAL)];
        assert!(reap(&crit, &mut since, t0, Duration::from_secs(60)).is_empty());
        assert!(reap(&crit, &mut since, t0 + Duration::from_secs(30), Duration::from_secs(60)).is_empty());
        let r = reap(&crit, &mut since, t0 + Duration::from_secs(61), Duration::from_secs(60));
        assert_eq!(r, vec![("N".to_string(), "web".to_string())]);
        // Passing in between restarts the clock.
        reap(&[check("a", 0, PASSING)], &mut since, t0 + Duration::from_secs(62), Duration::from_secs(60));
        assert!(reap(&crit, &mut since, t0 + Duration::from_secs(63), Duration::from_secs(60)).is_empty());
    }
}
