//! The fault-injecting proxy: one TCP forwarder per directed link between nodes (node i dials
//! node j's cluster port through `link(i, j)`, via `nacos.cluster.peer-routes`). Cutting a link
//! black-holes it: open connections are dropped and new ones are accepted but never forwarded,
//! so the sender sees timeouts, as behind a real partition, not fast refusals.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;

use tokio::net::TcpListener;
use tokio::net::TcpStream;

struct Link {
    cut: AtomicBool,
    /// Bumped on every cut: connections opened before it end themselves.
    epoch: AtomicU64,
}

/// Directed link (from, to) -> its forwarder.
type Links = HashMap<(usize, usize), Arc<Link>>;

#[derive(Clone, Default)]
pub struct Proxy {
    links: Arc<Mutex<Links>>,
}

impl Proxy {
    /// Starts the forwarder `from -> to` (to `127.0.0.1:target`) and returns its port.
    pub async fn add_link(&self, from: usize, to: usize, target: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy link");
        let port = listener.local_addr().expect("proxy addr").port();
        let link = Arc::new(Link { cut: AtomicBool::new(false), epoch: AtomicU64::new(0) });
        self.links.lock().unwrap().insert((from, to), link.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let link = link.clone();
                tokio::spawn(async move {
                    let epoch = link.epoch.load(Ordering::SeqCst);
                    if link.cut.load(Ordering::SeqCst) {
                        // Black hole: hold the socket, forward nothing, until the link heals
                        // and then some.
                        while link.cut.load(Ordering::SeqCst) {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        drop(inbound);
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let pump = async {
                        tokio::select! {
                            _ = tokio::io::copy(&mut ri, &mut wo) => {}
                            _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        }
                    };
                    let watch = async {
                        while link.epoch.load(Ordering::SeqCst) == epoch {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        _ = pump => {}
                        _ = watch => {}
                    }
                });
            }
        });
        port
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&self, from: usize, to: usize) {
        if let Some(l) = self.links.lock().unwrap().get(&(from, to)) {
            l.cut.store(true, Ordering::SeqCst);
            l.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Isolates `group` from every other node (both directions).
    pub fn partition(&self, group: &[usize], n: usize) {
        for &a in group {
            for b in (0..n).filter(|b| !group.contains(b)) {
                self.cut(a, b);
                self.cut(b, a);
            }
        }
    }

    /// Heals every link.
    pub fn heal(&self) {
        for l in self.links.lock().unwrap().values() {
            l.cut.store(false, Ordering::SeqCst);
        }
    }
}
