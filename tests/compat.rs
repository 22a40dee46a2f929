//! SDK compatibility: the official, unmodified Nacos clients of four languages against real
//! `batata` processes, standalone and as a 3-node cluster. The Rust client runs in-process; the
//! Go, Python and Java clients run the scenario programs under `tests/compat/<lang>/` (the
//! contract they follow is in `tests/compat/README.md`), which assert by themselves and exit
//! non-zero on the first failed step.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Node;
use common::Ports;
use nacos_sdk::api::config::ConfigChangeListener;
use nacos_sdk::api::config::ConfigResponse;
use nacos_sdk::api::config::ConfigService;
use nacos_sdk::api::config::ConfigServiceBuilder;
use nacos_sdk::api::props::ClientProps;
use tokio::sync::mpsc;

async fn standalone(root: &std::path::Path) -> Vec<Node> {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.start();
    common::wait_ready(&n).await;
    vec![n]
}

fn addrs(nodes: &[Node]) -> String {
    Ports::all_http(&nodes.iter().map(|n| n.ports.clone()).collect::<Vec<_>>())
}

/// Runs `tests/compat/<lang>/run.sh <scenario> <servers>` and fails with its output unless it
/// exits 0.
fn run_scenario(lang: &str, scenario: &str, nodes: &[Node], prefix: &str) {
    let script = format!("{}/tests/compat/{lang}/run.sh", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(scenario)
        .arg(addrs(nodes))
        .env("COMPAT_PREFIX", prefix)
        .output()
        .expect("run the scenario script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {lang} {scenario} stdout ---\n{stdout}");
    if !out.status.success() {
        let tail: String =
            stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("{lang} {scenario} scenario failed ({}):\n{stdout}\n--- stderr (tail) ---\n{tail}", out.status);
    }
    assert!(stdout.contains("PASS "), "{lang} {scenario} printed no PASS line:\n{stdout}");
    assert!(!stdout.contains("FAIL "), "{lang} {scenario} printed a FAIL line:\n{stdout}");
}

async fn lang_config(lang: &str, cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let prefix = format!("{lang}{}", if cluster { "c" } else { "s" });
    let lang = lang.to_string();
    let nodes = tokio::task::spawn_blocking(move || {
        run_scenario(&lang, "config", &nodes, &prefix);
        nodes
    })
    .await
    .unwrap();
    drop(nodes);
}

#[tokio::test]
async fn go_sdk_config_standalone() {
    lang_config("go", false).await;
}

#[tokio::test]
async fn go_sdk_config_cluster() {
    lang_config("go", true).await;
}

#[tokio::test]
async fn python_sdk_config_standalone() {
    lang_config("python", false).await;
}

#[tokio::test]
async fn python_sdk_config_cluster() {
    lang_config("python", true).await;
}

#[tokio::test]
async fn java_sdk_config_standalone() {
    lang_config("java", false).await;
}

#[tokio::test]
async fn java_sdk_config_cluster() {
    lang_config("java", true).await;
}

// ---- the Rust client, in-process ----

struct Forward(mpsc::UnboundedSender<String>);

impl ConfigChangeListener for Forward {
    fn notify(&self, r: ConfigResponse) {
        let _ = self.0.send(r.content().clone());
    }
}

async fn rust_client(addr: &str, namespace: &str, cache: &std::path::Path) -> ConfigService {
    let props = ClientProps::new()
        .server_addr(addr)
        .namespace(namespace)
        .app_name("batata-compat")
        .env_first(false)
        .load_cache_at_start(false)
        .cache_dir(cache);
    ConfigServiceBuilder::new(props).build().await.expect("build the Rust config client")
}

/// Reads until `want` (None = not found) or 5 s pass: a write through one node is applied on the
/// others asynchronously.
async fn read_until(c: &ConfigService, data_id: &str, group: &str, want: Option<&str>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = match c.get_config(data_id.into(), group.into()).await {
            Ok(r) => Some(r.content().clone()),
            Err(nacos_sdk::api::error::Error::ConfigNotFound(_)) => None,
            Err(e) => panic!("get_config {data_id}: {e}"),
        };
        if got.as_deref() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{data_id}: wanted {want:?}, still {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rust_config(cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let first = nodes[0].ports.http_addr();
    let last = nodes[nodes.len() - 1].ports.http_addr();
    let a = rust_client(&first, "", &root.path().join("cache-a")).await;
    let b = rust_client(&last, "public", &root.path().join("cache-b")).await;
    let (g, id) = ("DEFAULT_GROUP", "rust-app.properties");

    // publish_get, and "" and "public" are one namespace.
    assert!(a.publish_config(id.into(), g.into(), "k=v1".into(), Some("properties".into())).await.unwrap());
    read_until(&a, id, g, Some("k=v1")).await;
    read_until(&b, id, g, Some("k=v1")).await;

    // listen_push across nodes.
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.add_listener(id.into(), g.into(), Arc::new(Forward(tx))).await.unwrap();
    // The Rust client sends its listen request from a background task after add_listener
    // returns; publish only once B's node holds the listener, or the push has nobody to reach.
    let b_node = &nodes[nodes.len() - 1];
    common::eventually(10, "B's node holds the config listener", || async {
        let m = common::client().get(b_node.url("/nacos/metrics")).send().await.ok()?.text().await.ok()?;
        m.lines().any(|l| l.starts_with("batata_sdk_config_listeners ") && !l.ends_with(" 0")).then_some(())
    })
    .await;
    assert!(a.publish_config(id.into(), g.into(), "k=v2".into(), None).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(c) = rx.recv().await {
            if c == "k=v2" {
                return;
            }
        }
    })
    .await
    .expect("listener on the other node got k=v2 within 10 s");

    // cas: a wrong md5 is refused, the right one wins.
    let md5 = format!("{:x}", md5::compute("k=v2"));
    assert!(a.publish_config_cas(id.into(), g.into(), "k=v3".into(), None, "0".repeat(32)).await.is_err_or_false());
    read_until(&b, id, g, Some("k=v2")).await;
    assert!(a.publish_config_cas(id.into(), g.into(), "k=v3".into(), None, md5).await.unwrap());
    read_until(&b, id, g, Some("k=v3")).await;

    // remove. Read through a client on the other node that does not listen to the key: the
    // Rust client (0.8.3) answers get_config from its listener cache and keeps the last content
    // of a deleted config there.
    assert!(a.remove_config(id.into(), g.into()).await.unwrap());
    let c = rust_client(&last, "", &root.path().join("cache-c")).await;
    read_until(&c, id, g, None).await;
    read_until(&a, id, g, None).await;
}

trait ErrOrFalse {
    fn is_err_or_false(&self) -> bool;
}

impl<E> ErrOrFalse for Result<bool, E> {
    fn is_err_or_false(&self) -> bool {
        !matches!(self, Ok(true))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_config_standalone() {
    rust_config(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_config_cluster() {
    rust_config(true).await;
}
