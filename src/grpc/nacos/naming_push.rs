//! Subscribers of this node and the `NotifySubscriberRequest` pushes to them.
//!
//! Fed by the change hub: changes arriving within [`MERGE_WINDOW`] are merged, then each
//! subscriber of a changed service gets one push computed for *its* cluster filter, with a fresh
//! `lastRefTime`. A push is acknowledged by request id and retried with growing delays; a newer
//! push to the same subscriber supersedes an older one still retrying, so bursts never queue.

use std::collections::HashMap;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::error::TryRecvError;

use super::connections::Conn;
use super::connections::Connections;
use super::connections::PushError;
use crate::domain::naming_service::NamingService;
use crate::domain::naming_view::Selection;
use crate::state_machine::naming::ServiceKey;
use crate::state_machine::watch::ChangeEvent;
use crate::state_machine::watch::ChangeHub;

/// Changes this close together become one push.
const MERGE_WINDOW: Duration = Duration::from_millis(20);
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);
const PUSH_ATTEMPTS: u32 = 6;

#[derive(Default)]
struct Maps {
    /// service -> subscriber address -> its cluster filter, exactly as sent.
    by_service: HashMap<ServiceKey, HashMap<SocketAddr, String>>,
    by_conn: HashMap<SocketAddr, HashSet<ServiceKey>>,
}

/// Which of this node's connections subscribe to which services.
#[derive(Default)]
pub struct Subscribers {
    inner: Mutex<Maps>,
    /// Latest push generation per (subscriber, service): older retries give up.
    generations: Mutex<HashMap<(SocketAddr, ServiceKey), u64>>,
}

impl Subscribers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, addr: SocketAddr, key: ServiceKey, clusters: String) {
        let mut g = self.lock();
        g.by_conn.entry(addr).or_default().insert(key.clone());
        g.by_service.entry(key).or_default().insert(addr, clusters);
    }

    pub fn remove(&self, addr: SocketAddr, key: &ServiceKey) {
        let mut g = self.lock();
        if let Some(s) = g.by_conn.get_mut(&addr) {
            s.remove(key);
        }
        if let Some(m) = g.by_service.get_mut(key) {
            m.remove(&addr);
            if m.is_empty() {
                g.by_service.remove(key);
            }
        }
    }

    pub fn drop_conn(&self, addr: SocketAddr) {
        let mut g = self.lock();
        for key in g.by_conn.remove(&addr).unwrap_or_default() {
            if let Some(m) = g.by_service.get_mut(&key) {
                m.remove(&addr);
                if m.is_empty() {
                    g.by_service.remove(&key);
                }
            }
        }
    }

    pub fn of(&self, key: &ServiceKey) -> Vec<(SocketAddr, String)> {
        self.lock().by_service.get(key).map(|m| m.iter().map(|(a, c)| (*a, c.clone())).collect()).unwrap_or_default()
    }

    fn services(&self) -> Vec<ServiceKey> {
        self.lock().by_service.keys().cloned().collect()
    }

    /// Subscriptions held on this node (gauge).
    pub fn count(&self) -> usize {
        self.lock().by_service.values().map(HashMap::len).sum()
    }

    fn next_generation(&self, addr: SocketAddr, key: &ServiceKey) -> u64 {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.entry((addr, key.clone())).or_insert(0);
        *n += 1;
        *n
    }

    fn is_current(&self, addr: SocketAddr, key: &ServiceKey, generation: u64) -> bool {
        let g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        g.get(&(addr, key.clone())) == Some(&generation)
    }

    fn finish(&self, addr: SocketAddr, key: &ServiceKey, generation: u64) {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        if g.get(&(addr, key.clone())) == Some(&generation) {
            g.remove(&(addr, key.clone()));
        }
    }
}

/// Services touched by an event; `None` means everything (a reset).
fn touched(ev: &ChangeEvent, into: &mut HashSet<ServiceKey>) -> bool {
    for c in &ev.changes {
        if c.is_reset() {
            return false;
        }
        if let Some(k) = c.service_key() {
            into.insert(k.clone());
        }
    }
    true
}

/// Pushes every registry change to this node's subscribers. Runs for the life of the process.
pub async fn notify_subscribers(
    hub: ChangeHub,
    conns: Arc<Connections>,
    subs: Arc<Subscribers>,
    naming: NamingService,
) {
    let mut rx = hub.subscribe();
    loop {
        let mut dirty = HashSet::new();
        let mut everything = false;
        match rx.recv().await {
            Ok(ev) => everything |= !touched(&ev, &mut dirty),
            Err(RecvError::Lagged(_)) => everything = true,
            Err(RecvError::Closed) => return,
        }
        if !everything && dirty.is_empty() {
            continue;
        }
        tokio::time::sleep(MERGE_WINDOW).await;
        loop {
            match rx.try_recv() {
                Ok(ev) => everything |= !touched(&ev, &mut dirty),
                Err(TryRecvError::Lagged(_)) => everything = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        let services: Vec<ServiceKey> = if everything { subs.services() } else { dirty.into_iter().collect() };
        for key in services {
            for (addr, clusters) in subs.of(&key) {
                let Some(conn) = conns.get(&addr) else { continue };
                let generation = subs.next_generation(addr, &key);
                let p =
                    Push { conns: conns.clone(), subs: subs.clone(), naming: naming.clone(), conn, key: key.clone() };
                tokio::spawn(p.run(clusters, generation));
            }
        }
    }
}

struct Push {
    conns: Arc<Connections>,
    subs: Arc<Subscribers>,
    naming: NamingService,
    conn: Arc<Conn>,
    key: ServiceKey,
}

impl Push {
    async fn run(self, clusters: String, generation: u64) {
        let addr = self.conn.remote;
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=PUSH_ATTEMPTS {
            if !self.subs.is_current(addr, &self.key, generation) {
                return;
            }
            // Computed per attempt, so a retry carries the newest data.
            let sel = Selection { clusters: &clusters, healthy_only: false, grouped_name: false };
            let info = self.naming.query_now(&self.key, &sel);
            let body = json!({"serviceInfo": info, "module": "naming"});
            match self.conn.push(&self.conns.push_ids, "NotifySubscriberRequest", body, PUSH_TIMEOUT).await {
                Ok(()) => break,
                Err(PushError::NotWritable) if self.conns.get(&addr).is_none() => break,
                Err(e) => {
                    tracing::debug!(conn = %self.conn.id, service = %self.key.grouped(), attempt, "naming push failed: {e:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.subs.finish(addr, &self.key, generation);
    }
}
