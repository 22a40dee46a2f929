//! Clients and their history. Register workload: reads (`consistency=linearizable`), writes and
//! CASes (`casMd5`) on Nacos configs, every written value unique; set workload: each add
//! creates its own config. Every operation is recorded as an invoke and a completion with
//! monotonic times: `ok`, `fail` (certainly not applied: refused before sending, or a 4xx) or
//! `info` (unknown: a timeout, a reset after sending, a 5xx), after which the worker continues
//! under a new process id, as in Jepsen.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use serde_json::json;

use super::checker::Input;
use super::checker::Op;
use super::checker::Output;

pub const GROUP: &str = "JEPSEN";

/// Everything the workers share.
pub struct Shared {
    pub start: Instant,
    pub http: Vec<String>,
    pub client: reqwest::Client,
    pub stop: AtomicBool,
    next_value: AtomicU64,
    next_proc: AtomicU64,
    next_id: AtomicU64,
    /// The keys of the current cycle (rotated so each key's history stays small).
    pub keys: Mutex<Vec<String>>,
    /// Last value seen per key, for choosing a CAS's expected value.
    last: Mutex<HashMap<String, String>>,
    pub ops: Mutex<Vec<(String, Op)>>,
    /// JSON lines: every invoke and completion.
    pub log: Mutex<Vec<serde_json::Value>>,
    pub set_attempted: Mutex<HashSet<String>>,
    pub set_acked: Mutex<HashSet<String>>,
}

impl Shared {
    pub fn new(http: Vec<String>) -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            http,
            client: reqwest::Client::builder().timeout(Duration::from_millis(2500)).build().expect("client"),
            stop: AtomicBool::new(false),
            next_value: AtomicU64::new(0),
            next_proc: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            keys: Mutex::new(Vec::new()),
            last: Mutex::new(HashMap::new()),
            ops: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            set_attempted: Mutex::new(HashSet::new()),
            set_acked: Mutex::new(HashSet::new()),
        })
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// How a request ended.
enum Outcome {
    Ok(u16, String),
    Fail,
    Info,
}

async fn send(rb: reqwest::RequestBuilder) -> Outcome {
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text().await {
                Ok(body) if status < 500 => Outcome::Ok(status, body),
                _ => Outcome::Info,
            }
        }
        // Refused before anything was sent: the request cannot have taken effect.
        Err(e) if e.is_connect() => Outcome::Fail,
        Err(_) => Outcome::Info,
    }
}

/// Tiny deterministic generator per worker.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One register-workload client; runs until `stop`.
pub async fn register_worker(sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut proc = sh.next_proc.fetch_add(1, Ordering::Relaxed);
    while !sh.stop.load(Ordering::Relaxed) {
        let keys = sh.keys.lock().unwrap().clone();
        if keys.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let key = keys[rng.below(keys.len())].clone();
        let node = rng.below(sh.http.len());
        let base = format!("http://{}/nacos/v1/cs/configs", sh.http[node]);
        let expect = sh.last.lock().unwrap().get(&key).cloned();
        let input = match (rng.below(10), expect) {
            (0..=3, _) => Input::Read,
            (4..=6, Some(e)) => {
                Input::Cas { expect: e, new: format!("v{}", sh.next_value.fetch_add(1, Ordering::Relaxed)) }
            }
            _ => Input::Write(format!("v{}", sh.next_value.fetch_add(1, Ordering::Relaxed))),
        };
        let id = sh.next_id.fetch_add(1, Ordering::Relaxed) as usize;
        let call_ns = sh.now_ns();
        sh.log.lock().unwrap().push(json!({"id": id, "t_ns": call_ns, "proc": proc, "node": node, "type": "invoke",
            "key": key, "input": format!("{input:?}")}));
        let outcome = match &input {
            Input::Read => {
                let url = format!("{base}?dataId={key}&group={GROUP}&consistency=linearizable");
                send(sh.client.get(url)).await
            }
            Input::Write(v) => {
                send(sh.client.post(&base).form(&[("dataId", key.as_str()), ("group", GROUP), ("content", v)])).await
            }
            Input::Cas { expect, new } => {
                let md5 = format!("{:x}", md5::compute(expect.as_bytes()));
                let form = [("dataId", key.as_str()), ("group", GROUP), ("content", new.as_str())];
                send(sh.client.post(&base).header("casMd5", md5).form(&form)).await
            }
        };
        let output = match (&input, outcome) {
            (Input::Read, Outcome::Ok(200, body)) => Some(Output::Read(Some(body))),
            (Input::Read, Outcome::Ok(404, _)) => Some(Output::Read(None)),
            (Input::Read, _) => None,
            (_, Outcome::Ok(200, b)) if b.trim() == "true" => Some(Output::Done),
            (Input::Cas { .. }, Outcome::Ok(200, b)) if b.trim() == "false" => Some(Output::CasFailed),
            (_, Outcome::Ok(_, _)) | (_, Outcome::Fail) => None,
            (_, Outcome::Info) => Some(Output::Unknown),
        };
        let ret_ns = if output == Some(Output::Unknown) { u64::MAX } else { sh.now_ns() };
        sh.log.lock().unwrap().push(json!({"id": id, "t_ns": sh.now_ns(), "proc": proc, "node": node,
            "type": match &output { Some(Output::Unknown) => "info", Some(_) => "ok", None => "fail" },
            "key": key, "output": format!("{output:?}")}));
        match &output {
            Some(Output::Read(Some(v))) => {
                sh.last.lock().unwrap().insert(key.clone(), v.clone());
            }
            Some(Output::Done) => {
                let v = match &input {
                    Input::Write(v) | Input::Cas { new: v, .. } => v.clone(),
                    Input::Read => String::new(),
                };
                sh.last.lock().unwrap().insert(key.clone(), v);
            }
            _ => {}
        }
        if let Some(output) = output {
            sh.ops.lock().unwrap().push((key, Op { id, proc, call_ns, ret_ns, input, output }));
            if ret_ns == u64::MAX {
                // A process whose op is indeterminate never issues another one.
                proc = sh.next_proc.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The set workload: every add is its own config.
pub async fn set_worker(sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut n = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        let element = format!("jls-{seed}-{n}");
        n += 1;
        let node = rng.below(sh.http.len());
        let url = format!("http://{}/nacos/v1/cs/configs", sh.http[node]);
        sh.set_attempted.lock().unwrap().insert(element.clone());
        let form = [("dataId", element.as_str()), ("group", GROUP), ("content", "x")];
        if let Outcome::Ok(200, b) = send(sh.client.post(url).form(&form)).await {
            if b.trim() == "true" {
                sh.set_acked.lock().unwrap().insert(element);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which elements of the set a node holds (local reads, after convergence).
pub async fn set_present(sh: &Shared, node: &str) -> HashSet<String> {
    let attempted: Vec<String> = sh.set_attempted.lock().unwrap().iter().cloned().collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let mut present = HashSet::new();
    for e in attempted {
        let url = format!("http://{node}/nacos/v1/cs/configs?dataId={e}&group={GROUP}");
        for _ in 0..3 {
            match client.get(&url).send().await {
                Ok(r) if r.status().as_u16() == 200 => {
                    present.insert(e.clone());
                    break;
                }
                Ok(r) if r.status().as_u16() == 404 => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    present
}

pub const REGISTRY_SERVICE: &str = "jl-svc";

/// The registry workload: persistent instances registered and deregistered through random
/// nodes. Only the final state is checked (every node's view equals the store).
pub async fn registry_worker(sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    while !sh.stop.load(Ordering::Relaxed) {
        let node = rng.below(sh.http.len());
        let port = (20_000 + rng.below(16)).to_string();
        let url = format!("http://{}/nacos/v1/ns/instance", sh.http[node]);
        let form =
            [("serviceName", REGISTRY_SERVICE), ("ip", "127.0.0.1"), ("port", port.as_str()), ("ephemeral", "false")];
        let rb = if rng.below(3) == 0 { sh.client.delete(&url).query(&form) } else { sh.client.post(&url).form(&form) };
        let _ = send(rb).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The registry's instances (`ip:port`) as one node serves them (`consistency` as given).
pub async fn registry_view(node: &str, linearizable: bool) -> Option<Vec<String>> {
    let c = if linearizable { "&consistency=linearizable" } else { "" };
    let url = format!("http://{node}/nacos/v1/ns/instance/list?serviceName={REGISTRY_SERVICE}{c}");
    let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    let mut out: Vec<String> =
        v["hosts"].as_array()?.iter().map(|h| format!("{}:{}", h["ip"].as_str().unwrap_or(""), h["port"])).collect();
    out.sort();
    Some(out)
}
