//! The connection registry of the SDK port. A Nacos client's identity is its TCP connection:
//! the unary calls and the bi-stream it opens share one peer address, so the registry is keyed
//! by that address. A connection exists from its `ConnectionSetupRequest` until its bi-stream
//! ends (client close, TCP loss, failed detection or exhausted push retries).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use super::pb;
use super::wire;

/// Outbound queue depth per connection; a client that stops reading makes pushes fail (and be
/// retried) instead of growing memory.
const OUTBOUND_QUEUE: usize = 256;

pub type Outbound = mpsc::Sender<Result<pb::Payload, tonic::Status>>;

/// One registered SDK connection.
pub struct Conn {
    pub id: String,
    pub remote: SocketAddr,
    /// The client's self-reported IP (payload metadata), as Nacos records it.
    pub client_ip: String,
    pub version: String,
    pub app_name: String,
    /// The namespace (`tenant`) the client declared at setup.
    pub namespace: String,
    pub labels: HashMap<String, String>,
    out: Outbound,
    last_active_ms: AtomicU64,
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Dropped (sent) when the connection is unregistered, to end its stream.
    closer: Mutex<Option<oneshot::Sender<()>>>,
}

/// Why a push did not complete.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The outbound queue is full or the stream is gone.
    NotWritable,
    /// No acknowledgement within the timeout.
    NoAck,
    /// The client answered with a failure.
    Refused(String),
}

impl Conn {
    pub fn touch(&self) {
        self.last_active_ms.store(crate::now_ms(), Ordering::Relaxed);
    }

    pub fn idle_for_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_active_ms.load(Ordering::Relaxed))
    }

    /// Sends without waiting for an answer (SetupAck).
    pub fn send(&self, p: pb::Payload) -> bool {
        self.out.try_send(Ok(p)).is_ok()
    }

    /// Pushes `kind` with a fresh request id and waits for the client's answer on the stream.
    pub async fn push(&self, ids: &AtomicU64, kind: &str, body: Value, timeout: Duration) -> Result<(), PushError> {
        self.ask(ids, kind, body, timeout).await.map(|_| ())
    }

    /// Like [`Conn::push`], returning the client's answer.
    pub async fn ask(
        &self,
        ids: &AtomicU64,
        kind: &str,
        mut body: Value,
        timeout: Duration,
    ) -> Result<Value, PushError> {
        let id = ids.fetch_add(1, Ordering::Relaxed).to_string();
        if let Value::Object(m) = &mut body {
            m.insert("requestId".into(), Value::String(id.clone()));
            m.entry("headers").or_insert_with(|| Value::Object(Default::default()));
        }
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id.clone(), tx);
        if !self.send(wire::payload(kind, &body)) {
            self.lock_pending().remove(&id);
            return Err(PushError::NotWritable);
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        self.lock_pending().remove(&id);
        match answer {
            Ok(Ok(v)) => {
                // Any response type is accepted (Python acks config pushes with a naming
                // response); only a failure code counts.
                let code = v.get("resultCode").and_then(Value::as_i64).unwrap_or(200);
                if code == 200 {
                    self.touch();
                    Ok(v)
                } else {
                    Err(PushError::Refused(v.get("message").and_then(Value::as_str).unwrap_or("").to_string()))
                }
            }
            _ => Err(PushError::NoAck),
        }
    }

    /// Completes the push waiting for `request_id`; false when none is.
    pub fn acknowledge(&self, request_id: &str, body: Value) -> bool {
        match self.lock_pending().remove(request_id) {
            Some(tx) => tx.send(body).is_ok(),
            None => false,
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the connection's stream; the client sees it close and reconnects.
    pub fn close(&self) {
        if let Some(tx) = self.closer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

/// What a new connection brings with it, from its `ConnectionSetupRequest`.
pub struct Setup {
    pub remote: SocketAddr,
    pub client_ip: String,
    pub version: String,
    pub app_name: String,
    pub namespace: String,
    pub labels: HashMap<String, String>,
}

/// Called when a connection goes away, so each module drops what the connection owned.
pub type CloseHook = Box<dyn Fn(&Conn) + Send + Sync>;

#[derive(Default)]
pub struct Connections {
    by_addr: Mutex<HashMap<SocketAddr, Arc<Conn>>>,
    hooks: Mutex<Vec<CloseHook>>,
    /// Push request ids: a node-wide counter, as in Nacos.
    pub push_ids: AtomicU64,
}

impl Connections {
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections { push_ids: AtomicU64::new(1), ..Default::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Conn>>> {
        self.by_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn on_close(&self, hook: CloseHook) {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
    }

    /// The outbound channel of a bi-stream, created when the stream opens (before setup).
    pub fn outbound() -> (Outbound, mpsc::Receiver<Result<pb::Payload, tonic::Status>>) {
        mpsc::channel(OUTBOUND_QUEUE)
    }

    /// Registers a connection; a previous one from the same address (impossible while its TCP
    /// connection lives) is replaced and cleaned up.
    pub fn register(&self, s: Setup, out: Outbound, closer: oneshot::Sender<()>) -> Arc<Conn> {
        let now = crate::now_ms();
        let conn = Arc::new(Conn {
            id: connection_id(now, s.remote),
            remote: s.remote,
            client_ip: s.client_ip,
            version: s.version,
            app_name: s.app_name,
            namespace: s.namespace,
            labels: s.labels,
            out,
            last_active_ms: AtomicU64::new(now),
            pending: Mutex::new(HashMap::new()),
            closer: Mutex::new(Some(closer)),
        });
        let old = self.lock().insert(s.remote, conn.clone());
        if let Some(old) = old {
            self.run_hooks(&old);
        }
        tracing::debug!(id = %conn.id, version = %conn.version, "sdk connection registered");
        conn
    }

    /// Removes the connection if `conn` is still the one registered at its address.
    pub fn unregister(&self, conn: &Arc<Conn>) {
        let removed = {
            let mut map = self.lock();
            match map.get(&conn.remote) {
                Some(c) if Arc::ptr_eq(c, conn) => map.remove(&conn.remote),
                _ => None,
            }
        };
        if let Some(c) = removed {
            c.close();
            self.run_hooks(&c);
            tracing::debug!(id = %c.id, "sdk connection unregistered");
        }
    }

    fn run_hooks(&self, conn: &Conn) {
        for h in self.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h(conn);
        }
    }

    pub fn get(&self, remote: &SocketAddr) -> Option<Arc<Conn>> {
        self.lock().get(remote).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<Conn>> {
        self.lock().values().find(|c| c.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Conn>> {
        self.lock().values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// Nacos' connection id shape: `<millis>_<ip>_<port>`.
pub fn connection_id(now_ms: u64, remote: SocketAddr) -> String {
    format!("{now_ms}_{}_{}", remote.ip(), remote.port())
}

/// Idle connections get a `ClientDetectionRequest`; one that does not answer is unregistered
/// (its stream closed, its listeners and instances dropped). Runs on every node for the
/// connections that node holds.
pub async fn detect_idle(conns: Arc<Connections>) {
    const IDLE_MS: u64 = 20_000;
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    loop {
        tick.tick().await;
        let now = crate::now_ms();
        for c in conns.all() {
            if c.idle_for_ms(now) < IDLE_MS {
                continue;
            }
            // Counted as activity so one detection is in flight at a time.
            c.touch();
            let conns = conns.clone();
            tokio::spawn(async move {
                let body = serde_json::json!({"module": "internal"});
                match c.push(&conns.push_ids, "ClientDetectionRequest", body, Duration::from_secs(5)).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::info!(id = %c.id, error = ?e, "sdk connection failed client detection; closing");
                        conns.unregister(&c);
                    }
                }
            });
        }
    }
}
