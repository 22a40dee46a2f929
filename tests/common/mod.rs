//! Test harness: real `batata` processes on loopback, each with its own data dir and ports.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;

pub mod sdk;

pub const SECRET: &str = "test-cluster-secret-0123456789";
/// Token signing key of nodes started with [`Node::enable_auth`] (Base64 of 32 bytes).
pub const AUTH_KEY: &str = "dGVzdC1vbmx5LWp3dC1rZXktMDEyMzQ1Njc4OWFiY2Q=";
/// Password of the `nacos` administrator of nodes started with [`Node::enable_auth`].
pub const ADMIN_PASSWORD: &str = "test-admin-pass-9f3e";

/// Ports are taken below Linux's ephemeral range (32768+): a port picked there and released
/// until the node binds it can meanwhile become the source port of some outgoing connection (a
/// peer dialing, an SDK client), and the node then fails to start. HTTP ports come from the even
/// thousands of 10000-19999 (their SDK port, +1000, from the odd ones), other ports from
/// 21000-31999; each test process starts at a pid-derived offset.
static NEXT_HTTP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);
static NEXT_OTHER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

fn next(counter: &std::sync::atomic::AtomicU32) -> u32 {
    use std::sync::atomic::Ordering::Relaxed;
    let _ = counter.compare_exchange(u32::MAX, std::process::id().wrapping_mul(397) % 5000, Relaxed, Relaxed);
    counter.fetch_add(1, Relaxed)
}

fn bindable(port: u32) -> bool {
    TcpListener::bind(("127.0.0.1", port as u16)).is_ok()
}

pub fn free_port() -> u16 {
    loop {
        let port = 21_000 + next(&NEXT_OTHER) % 11_000;
        if bindable(port) {
            return port as u16;
        }
    }
}

/// An HTTP port whose SDK port (+1000) is free too.
fn free_http_port() -> u16 {
    loop {
        let k = next(&NEXT_HTTP) % 5000;
        let http = 10_000 + (k / 1000) * 2000 + k % 1000;
        if bindable(http) && bindable(http + 1000) {
            return http as u16;
        }
    }
}

#[derive(Clone, Debug)]
pub struct Ports {
    pub http: u16,
    pub raft: u16,
    pub sdk: u16,
}

impl Ports {
    /// SDK clients compute the gRPC port as the HTTP port + 1000, so both must be free.
    pub fn new() -> Ports {
        let http = free_http_port();
        Ports { http, raft: free_port(), sdk: http + 1000 }
    }
    pub fn all_http(ports: &[Ports]) -> String {
        ports.iter().map(Ports::http_addr).collect::<Vec<_>>().join(",")
    }
    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http)
    }
}

pub struct Node {
    pub ports: Ports,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub log: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_batata")
}

impl Node {
    /// A node; `members` empty means standalone.
    pub fn new(root: &std::path::Path, name: &str, ports: Ports, members: &[Ports]) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut env = vec![
            ("BATATA_SERVER_PORT".to_string(), ports.http.to_string()),
            ("BATATA_CLUSTER_PORT".to_string(), ports.raft.to_string()),
            ("BATATA_SDK_PORT".to_string(), ports.sdk.to_string()),
            ("BATATA_CONSUL_PORT".to_string(), "0".to_string()),
            ("BATATA_DEPLOYMENT_TYPE".to_string(), "server".to_string()),
            ("BATATA_DATA_DIR".to_string(), dir.join("data").display().to_string()),
            ("BATATA_SERVER_IP".to_string(), "127.0.0.1".to_string()),
            ("BATATA_BIND_ADDRESS".to_string(), "127.0.0.1".to_string()),
            ("BATATA_CLUSTER_BIND_ADDRESS".to_string(), "127.0.0.1".to_string()),
            ("BATATA_CLUSTER_SECRET".to_string(), SECRET.to_string()),
            // Auth is on by default; tests that exercise it call `enable_auth`.
            ("BATATA_AUTH_ENABLED".to_string(), "false".to_string()),
            ("RUST_LOG".to_string(), "info,openraft=warn".to_string()),
        ];
        if !members.is_empty() {
            let conf = dir.join("cluster.conf");
            let text: String = members
                .iter()
                .map(|m| format!("127.0.0.1:{} raft_port={}\n", m.http, m.raft))
                .collect::<Vec<_>>()
                .join("");
            std::fs::write(&conf, format!("# test cluster\n{text}")).unwrap();
            env.push(("BATATA_CLUSTER_LOOKUP_TYPE".to_string(), "file".to_string()));
            env.push(("BATATA_CLUSTER_CONF".to_string(), conf.display().to_string()));
        }
        let log = dir.join("node.log");
        Node { ports, dir, env, child: None, log }
    }

    /// Auth on, with the test key and the `nacos` administrator's password ([`ADMIN_PASSWORD`]).
    pub fn enable_auth(&mut self) {
        self.set_env("BATATA_AUTH_ENABLED", "true");
        self.set_env("BATATA_AUTH_SECRET_KEY", AUTH_KEY);
        self.set_env("BATATA_ADMIN_PASSWORD", ADMIN_PASSWORD);
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = Command::new(bin());
        cmd.current_dir(&self.dir).stdout(Stdio::null()).stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn batata"));
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe_sigterm(c.id());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.ports.http, path)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Logs in as `user` (v1 login) and returns the access token.
pub async fn login(node: &Node, user: &str, password: &str) -> String {
    let r = client()
        .post(node.url("/nacos/v1/auth/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login of {user}");
    let v: Value = r.json().await.unwrap();
    v["accessToken"].as_str().unwrap().to_string()
}

/// `POST path` with a form, authenticated by `token` (`accessToken` parameter): status and body.
pub async fn post_as(node: &Node, token: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = client().post(node.url(path)).query(&[("accessToken", token)]).form(form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The administrator's token, once the node created it from `BATATA_ADMIN_PASSWORD`.
pub async fn admin_token(node: &Node) -> String {
    eventually(30, "the admin user exists", || async {
        let r = client()
            .post(node.url("/nacos/v1/auth/login"))
            .form(&[("username", "nacos"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["accessToken"].as_str().map(str::to_string)
    })
    .await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

pub async fn status(node: &Node) -> Option<Value> {
    let r = client().get(node.url("/nacos/v1/core/raft/status")).timeout(Duration::from_secs(3)).send().await.ok()?;
    r.json().await.ok()
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_ready(node: &Node) {
    let what = format!("node {} ready (log: {})", node.ports.http, node.log.display());
    eventually(60, &what, || async {
        let r = client()
            .get(node.url("/nacos/v1/console/health/readiness"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// The node id of the current leader as seen by `node`.
pub async fn leader_of(node: &Node) -> Option<u64> {
    status(node).await?.get("leader")?.as_u64()
}

pub async fn publish(node: &Node, data_id: &str, content: &str) -> reqwest::Response {
    client()
        .post(node.url("/nacos/v1/cs/configs"))
        .form(&[("dataId", data_id), ("group", "DEFAULT_GROUP"), ("content", content)])
        .send()
        .await
        .unwrap()
}

pub async fn publish_ok(node: &Node, data_id: &str, content: &str) {
    let r = publish(node, data_id, content).await;
    let st = r.status();
    let body = r.text().await.unwrap();
    assert!(st.is_success() && body == "true", "publish {data_id} failed: {st} {body}");
}

/// Reads a config; `None` on 404.
pub async fn get_config(node: &Node, data_id: &str, consistent: bool) -> Option<String> {
    let mut url = node.url(&format!("/nacos/v1/cs/configs?dataId={data_id}&group=DEFAULT_GROUP"));
    if consistent {
        url.push_str("&consistent");
    }
    let r = client().get(url).send().await.unwrap();
    match r.status().as_u16() {
        200 => Some(r.text().await.unwrap()),
        404 => None,
        s => panic!("get {data_id}: unexpected status {s}: {}", r.text().await.unwrap_or_default()),
    }
}

/// (applied index, crc32 of all domain data, number of configs) of a node.
pub async fn checksum(node: &Node) -> Option<(u64, u64, u64)> {
    let r = client()
        .get(node.url("/nacos/v1/core/raft/status?checksum"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let s: Value = r.json().await.ok()?;
    let c = s.get("checksum")?;
    Some((c["applied"].as_u64()?, c["crc32"].as_u64()?, c["configs"].as_u64()?))
}

/// Waits until every running node reports the same data checksum at the same applied index.
pub async fn converge(nodes: &[&Node]) -> (u64, u64) {
    eventually(60, "checksums converge", || async {
        let mut sums = Vec::new();
        for n in nodes {
            sums.push(checksum(n).await?);
        }
        let first = sums[0];
        sums.iter().all(|s| s.0 == first.0 && s.1 == first.1).then_some((first.1, first.2))
    })
    .await
}

/// Starts an n-node cluster from one cluster.conf and waits until all are ready.
pub async fn start_cluster(root: &std::path::Path, n: usize) -> Vec<Node> {
    start_cluster_with(root, n, &[]).await
}

/// [`start_cluster`] with extra environment (settings) on every node.
pub async fn start_cluster_with(root: &std::path::Path, n: usize, env: &[(&str, &str)]) -> Vec<Node> {
    let ports: Vec<Ports> = (0..n).map(|_| Ports::new()).collect();
    let mut nodes: Vec<Node> =
        ports.iter().enumerate().map(|(i, p)| Node::new(root, &format!("n{i}"), p.clone(), &ports)).collect();
    for n in nodes.iter_mut() {
        for (k, v) in env {
            n.set_env(k, v);
        }
        n.start();
    }
    for n in &nodes {
        wait_ready(n).await;
    }
    nodes
}

/// The official Rust Nacos naming client (`nacos-sdk`, unmodified) on `addrs` (comma-separated),
/// namespace public, with its own cache directory.
pub async fn rust_naming_client(addrs: &str, cache: &std::path::Path) -> nacos_sdk::api::naming::NamingService {
    let props = nacos_sdk::api::props::ClientProps::new()
        .server_addr(addrs)
        .namespace("")
        .app_name("batata-tests")
        .env_first(false)
        .load_cache_at_start(false)
        .cache_dir(cache);
    nacos_sdk::api::naming::NamingServiceBuilder::new(props).build().await.expect("build the Rust naming client")
}

/// An ephemeral instance at `ip:8080` with metadata `v=1`, as the SDK tests register it.
pub fn sdk_instance(ip: &str) -> nacos_sdk::api::naming::ServiceInstance {
    nacos_sdk::api::naming::ServiceInstance {
        ip: ip.into(),
        port: 8080,
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral: true,
        metadata: std::collections::HashMap::from([("v".to_string(), "1".to_string())]),
        ..Default::default()
    }
}
