//! `batata-bench`: a load generator for Batata's Nacos config API (HTTP and the SDK gRPC port)
//! and registry (gRPC), with etcd's v3 JSON gateway as a baseline so both systems can be
//! measured by the same client.
//!
//! Two modes:
//! - **closed loop** (default): `--concurrency` workers each send the next request as soon as the
//!   previous one is answered. This measures the throughput the server sustains with that many
//!   requests outstanding.
//! - **open loop** (`--rate R`): requests are scheduled at R per second in total, spread evenly
//!   over the workers, whatever the server's speed. Latency is measured from the *scheduled* send
//!   time, not the actual one. A client that waits for each answer sends nothing while the server
//!   stalls, so a stall shows up in one sample only ("coordinated omission"); real clients keep
//!   arriving, and every request due during the stall waits for it. Measuring from the schedule
//!   charges that wait to each of them.
//!
//! Requests that start (or are scheduled, in open loop) during the warm-up are discarded: that
//! period covers connection set-up and cold caches. Only successful requests give latency
//! samples; failures are counted by kind. Samples go into a log-linear histogram per worker,
//! and the histograms are merged at the end, so workers share nothing on the hot path except
//! the round-robin address counter.

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use clap::Parser;
use clap::ValueEnum;
use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use tokio::time::Instant;

mod consul_fanout;
mod fanout;
mod footprint;
mod nacos_grpc;
mod naming_fanout;
mod stats;
use stats::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Nacos `POST /v1/cs/configs`; each acknowledged write is Raft-committed.
    ConfigPublish,
    /// Nacos `GET /v1/cs/configs` over a key space published beforehand.
    ConfigGet,
    /// etcd `POST /v3/kv/put` (JSON gateway).
    EtcdPut,
    /// etcd `POST /v3/kv/range` over a key space written beforehand.
    EtcdGet,
    /// Nacos `ConfigQueryRequest` over the SDK gRPC port (HTTP port + 1000), on a few shared
    /// HTTP/2 connections as SDK clients use them.
    GrpcConfigGet,
    /// `--listeners` gRPC connections each listen to one config; each round publishes it and
    /// times until every listener has its change push (`--duration` rounds).
    ListenerFanout,
    /// Nacos `InstanceRequest` registrations over the SDK gRPC port, one connection per worker;
    /// each acknowledged registration is Raft-committed.
    GrpcInstanceRegister,
    /// `--listeners` gRPC connections each subscribe to one service; each round changes its
    /// instance and times until every subscriber has the push (`--duration` rounds).
    NamingFanout,
    /// Consul `PUT /v1/kv/<key>`; each acknowledged write is Raft-committed.
    ConsulKvPut,
    /// Consul `GET /v1/kv/<key>` over a key space written beforehand.
    ConsulKvGet,
    /// `--listeners` Consul blocking queries on one key; each round writes it and times until
    /// every query has returned (`--duration` rounds).
    ConsulWatchFanout,
    /// Loads `--keys` configs and `--instances` instances, then holds them `--duration` seconds
    /// (the footprint figures are read meanwhile).
    FootprintLoad,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::ConfigPublish => "config-publish",
            Workload::ConfigGet => "config-get",
            Workload::EtcdPut => "etcd-put",
            Workload::EtcdGet => "etcd-get",
            Workload::GrpcConfigGet => "grpc-config-get",
            Workload::ListenerFanout => "listener-fanout",
            Workload::GrpcInstanceRegister => "grpc-instance-register",
            Workload::NamingFanout => "naming-fanout",
            Workload::ConsulKvPut => "consul-kv-put",
            Workload::ConsulKvGet => "consul-kv-get",
            Workload::ConsulWatchFanout => "consul-watch-fanout",
            Workload::FootprintLoad => "footprint-load",
        }
    }

    /// The write that creates the keys a read workload reads, so reads never hit missing keys.
    fn populate_with(self) -> Option<Workload> {
        match self {
            Workload::ConfigGet | Workload::GrpcConfigGet => Some(Workload::ConfigPublish),
            Workload::EtcdGet => Some(Workload::EtcdPut),
            Workload::ConsulKvGet => Some(Workload::ConsulKvPut),
            Workload::ConsulKvPut | Workload::ConsulWatchFanout => None,
            Workload::ConfigPublish
            | Workload::EtcdPut
            | Workload::ListenerFanout
            | Workload::GrpcInstanceRegister
            | Workload::NamingFanout
            | Workload::FootprintLoad => None,
        }
    }

    fn default_addr(self) -> &'static str {
        match self {
            Workload::EtcdPut | Workload::EtcdGet => "127.0.0.1:2379",
            _ => "127.0.0.1:8848",
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "batata-bench", about = "Load generator for Batata (Nacos config and registry) and etcd")]
struct Args {
    #[arg(long, value_enum)]
    workload: Workload,
    /// Server host:port; repeat it to spread requests round-robin (e.g. over every cluster node).
    /// Default: 127.0.0.1:8848 for config-*, 127.0.0.1:2379 for etcd-*.
    #[arg(long = "addr", value_name = "HOST:PORT")]
    addrs: Vec<String>,
    /// Number of workers (each keeps at most one request outstanding).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Seconds of load whose results are discarded.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Size in bytes of each written value.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    value_size: u64,
    /// Number of distinct keys (bench-0 .. bench-N-1), picked uniformly at random.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Open loop: total requests per second to schedule (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Also write the results as a JSON object to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Nacos context path of the server.
    #[arg(long, default_value = "/nacos")]
    context_path: String,
    /// listener-fanout / naming-fanout: number of listening / subscribing gRPC connections.
    #[arg(long, default_value_t = 1000)]
    listeners: usize,
    /// An access token sent with every HTTP request (as the `accessToken` header for the Nacos
    /// API and `X-Consul-Token` for the Consul API), to measure with auth on. gRPC workloads do
    /// not send it.
    #[arg(long)]
    token: Option<String>,
    /// footprint-load: registry instances to register.
    #[arg(long, default_value_t = 100_000)]
    instances: u64,
    /// Quick sanity run for tests: duration 1 s, no warm-up, 10 keys. Any error fails the run.
    #[arg(long)]
    smoke: bool,
}

/// Standard base64 (RFC 4648, with padding), as etcd's JSON gateway wants keys and values.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of k bytes gives k + 1 digits; '=' pads them to 4.
        for i in 0..4 {
            let digit = ALPHABET[(n >> (18 - 6 * i)) as usize & 63];
            out.push(if i <= chunk.len() { char::from(digit) } else { '=' });
        }
    }
    out
}

/// SplitMix64: a tiny, good-enough generator for picking keys without a crate or shared state.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Everything a worker needs to build and send requests, shared by all workers.
struct Target {
    client: reqwest::Client,
    addrs: Vec<String>,
    context_path: String,
    /// The value written by every put, `value-size` ASCII characters (no escaping needed).
    value: String,
    value_b64: String,
    next_addr: AtomicUsize,
    /// The SDK connections of the gRPC request workloads (grpc-*).
    grpc: nacos_grpc::Pool,
}

impl Target {
    fn request(&self, op: Workload, key: u64) -> reqwest::RequestBuilder {
        let i = self.next_addr.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        let (addr, ctx) = (&self.addrs[i], &self.context_path);
        let (c, form, json) = (&self.client, "application/x-www-form-urlencoded", "application/json");
        let etcd_key = base64(format!("bench-{key}").as_bytes());
        let config = format!("dataId=bench-{key}&group=DEFAULT_GROUP");
        match op {
            Workload::ConfigPublish => c
                .post(format!("http://{addr}{ctx}/v1/cs/configs"))
                .header(CONTENT_TYPE, form)
                .body(format!("{config}&content={}", self.value)),
            Workload::ConfigGet => c.get(format!("http://{addr}{ctx}/v1/cs/configs?{config}")),
            Workload::EtcdPut => c
                .post(format!("http://{addr}/v3/kv/put"))
                .header(CONTENT_TYPE, json)
                .body(format!(r#"{{"key":"{etcd_key}","value":"{}"}}"#, self.value_b64)),
            Workload::EtcdGet => c
                .post(format!("http://{addr}/v3/kv/range"))
                .header(CONTENT_TYPE, json)
                .body(format!(r#"{{"key":"{etcd_key}"}}"#)),
            Workload::ConsulKvPut => c.put(format!("http://{addr}/v1/kv/bench-{key}")).body(self.value.clone()),
            Workload::ConsulKvGet => c.get(format!("http://{addr}/v1/kv/bench-{key}")),
            // Not HTTP: answered in `call` (or by the fan-out modules).
            _ => c.get(format!("http://{addr}/")),
        }
    }

    /// Sends one request of worker `worker` and reads the whole body (so the connection goes
    /// back to the pool).
    async fn call(&self, op: Workload, worker: usize, key: u64) -> Result<(), Failure> {
        if matches!(op, Workload::GrpcConfigGet | Workload::GrpcInstanceRegister) {
            return self.grpc.call(op, worker, key).await;
        }
        let resp = self.request(op, key).send().await.map_err(Failure::from_reqwest)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(Failure::from_reqwest)?;
        let text = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        if status != reqwest::StatusCode::OK {
            return Err(Failure { kind: Kind::Status, detail: format!("HTTP {status}: {}", text()) });
        }
        if matches!(op, Workload::ConfigPublish | Workload::ConsulKvPut) && body.as_ref() != b"true" {
            return Err(Failure { kind: Kind::BadBody, detail: format!("publish answered {:?}", text()) });
        }
        Ok(())
    }
}

/// What the workers share about the run. It starts with the warm-up; requests started (or
/// due, in open loop) from `measure_from` until `end` are measured.
#[derive(Clone, Copy)]
struct Plan {
    op: Workload,
    keys: u64,
    measure_from: Instant,
    end: Instant,
}

async fn closed_worker(t: Arc<Target>, id: u64, p: Plan) -> Stats {
    let (mut rng, mut st) = (SplitMix64(id), Stats::default());
    loop {
        let sent = Instant::now();
        if sent >= p.end {
            return st;
        }
        let result = t.call(p.op, id as usize, rng.next() % p.keys).await;
        if sent >= p.measure_from {
            st.record(result, sent.elapsed());
        }
    }
}

/// Sends one request per `every`, starting at `due`. When behind schedule it sends at once,
/// still charging latency from the schedule, until the window closes.
async fn open_worker(t: Arc<Target>, id: u64, p: Plan, mut due: Instant, every: Duration) -> Stats {
    let (mut rng, mut st) = (SplitMix64(id), Stats::default());
    while due < p.end {
        tokio::time::sleep_until(due).await;
        let sent = Instant::now();
        if sent >= p.end {
            break;
        }
        let result = t.call(p.op, id as usize, rng.next() % p.keys).await;
        if due >= p.measure_from {
            st.record(result, due.elapsed());
            st.send_lag.record(sent - due);
        }
        due += every;
    }
    while due < p.end {
        st.unsent += u64::from(due >= p.measure_from);
        due += every;
    }
    st
}

/// Writes every key once so read workloads measure hits, not misses.
async fn populate(t: &Target, op: Workload, keys: u64, parallel: usize) -> anyhow::Result<()> {
    let failures: Vec<Failure> = futures::stream::iter(0..keys)
        .map(|k| t.call(op, 0, k))
        .buffer_unordered(parallel)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    if let Some(f) = failures.first() {
        let n = failures.len();
        bail!("pre-populating {keys} keys with {}: {n} failed, first: {}", op.name(), f.detail);
    }
    Ok(())
}

async fn run(t: Arc<Target>, a: &Args) -> anyhow::Result<Stats> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup);
    let end = measure_from + Duration::from_secs(a.duration);
    let p = Plan { op: a.workload, keys: a.keys, measure_from, end };
    let workers = u64::from(a.concurrency);
    let secs = |s: f64| Duration::try_from_secs_f64(s).context("--rate is out of range");
    let mut handles = Vec::new();
    for id in 0..workers {
        let t = t.clone();
        handles.push(match a.rate {
            None => tokio::spawn(closed_worker(t, id, p)),
            // Worker i sends at i/R, i/R + C/R, ...: together, one request every 1/R.
            Some(rate) => {
                let (phase, every) = (secs(id as f64 / rate)?, secs(workers as f64 / rate)?);
                tokio::spawn(open_worker(t, id, p, start + phase, every))
            }
        });
    }
    let mut total = Stats::default();
    for h in handles {
        total.merge(h.await.context("a worker task panicked")?);
    }
    Ok(total)
}

/// The JSON report; the human-readable table is printed from it so the two always agree.
fn report(a: &Args, st: &Stats) -> serde_json::Value {
    let h = &st.latency;
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut errors: serde_json::Map<_, _> =
        KIND_NAMES.iter().zip(st.errors).map(|(name, n)| (name.to_string(), json!(n))).collect();
    errors.insert("total".into(), json!(st.error_total()));
    json!({
        "workload": a.workload.name(),
        "mode": if a.rate.is_some() { "open" } else { "closed" },
        "target_rate_rps": a.rate,
        "concurrency": a.concurrency,
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "value_size": a.value_size,
        "keys": a.keys,
        "ok": h.total,
        "errors": errors,
        "unsent": st.unsent,
        "throughput_rps": h.total as f64 / a.duration as f64,
        "latency_ms": {
            "p50": ms(h.quantile(0.5)),
            "p90": ms(h.quantile(0.9)),
            "p99": ms(h.quantile(0.99)),
            "p999": ms(h.quantile(0.999)),
            "max": ms(h.max_ns),
            "mean": ms(h.mean()),
        },
        "send_lag_ms": a.rate.map(|_| json!({
            "p50": ms(st.send_lag.quantile(0.5)),
            "p99": ms(st.send_lag.quantile(0.99)),
        })),
        "addrs": a.addrs,
    })
}

fn print_report(r: &serde_json::Value, first_error: Option<&str>) {
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let mode = match r["target_rate_rps"].as_f64() {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => "closed loop".to_string(),
    };
    let addrs: Vec<_> = r["addrs"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let cols = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max"), ("mean", "mean")];
    let head: String = cols.iter().map(|(c, _)| format!("{c:>10}")).collect();
    let vals: String = cols.iter().map(|(_, k)| format!("{:>10.3}", num(&r["latency_ms"][k]))).collect();
    let rows = [
        ("workload", format!("{} ({mode}, {} workers)", r["workload"].as_str().unwrap_or("?"), r["concurrency"])),
        ("addrs", addrs.join(", ")),
        ("measured", format!("{} s (after {} s of warm-up, discarded)", r["duration_s"], r["warmup_s"])),
        ("ok", r["ok"].to_string()),
        ("errors", r["errors"].to_string()),
        ("throughput", format!("{:.1} req/s", num(&r["throughput_rps"]))),
        ("latency ms", head),
        ("", vals),
    ];
    for (label, value) in rows {
        println!("{label:<12}{value}");
    }
    if !r["send_lag_ms"].is_null() {
        println!("{:<12}{} (generator lateness vs. schedule)", "send lag ms", r["send_lag_ms"]);
    }
    if r["unsent"].as_u64().unwrap_or(0) > 0 {
        println!("WARNING: {} requests due were never sent: raise --concurrency", r["unsent"]);
    }
    if let Some(e) = first_error {
        println!("first error: {e}");
    }
}

/// Checks the arguments, applies `--smoke`, and builds the shared request target.
fn setup(a: &mut Args) -> anyhow::Result<Target> {
    if a.smoke {
        (a.duration, a.warmup, a.keys, a.instances) = (1, 0, 10, a.instances.min(200));
    }
    if let Some(r) = a.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rate must be a positive number of requests per second, got {r}");
    }
    if a.addrs.is_empty() {
        a.addrs.push(a.workload.default_addr().to_string());
    }
    // Accept a pasted URL; only plain http is supported.
    for addr in &mut a.addrs {
        *addr = addr.trim_start_matches("http://").trim_end_matches('/').to_string();
    }
    let context_path = a.context_path.trim_end_matches('/').to_string();
    if !(context_path.is_empty() || context_path.starts_with('/')) {
        bail!("--context-path must start with '/', got {:?}", a.context_path);
    }
    let size = usize::try_from(a.value_size).context("--value-size is too large")?;
    let value: String = "abcdefghijklmnopqrstuvwxyz0123456789".chars().cycle().take(size).collect();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = &a.token {
        let v = reqwest::header::HeaderValue::from_str(t).context("--token is not a valid header value")?;
        headers.insert("accessToken", v.clone());
        headers.insert("X-Consul-Token", v);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(usize::from(a.concurrency))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let value_b64 = base64(value.as_bytes());
    let (addrs, next_addr) = (a.addrs.clone(), AtomicUsize::new(0));
    let grpc = nacos_grpc::Pool::default();
    Ok(Target { client, addrs, context_path, value, value_b64, next_addr, grpc })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut a = Args::parse();
    let mut target = setup(&mut a)?;
    match a.workload {
        Workload::ListenerFanout => return fanout::run(&target, &a).await,
        Workload::NamingFanout => return naming_fanout::run(&target, &a).await,
        Workload::ConsulWatchFanout => return consul_fanout::run(&target, &a).await,
        Workload::FootprintLoad => return footprint::run(&target, &a).await,
        _ => target.grpc = nacos_grpc::Pool::open(a.workload, &a.addrs, a.concurrency).await?,
    }
    let target = Arc::new(target);
    if let Some(op) = a.workload.populate_with() {
        let parallel = usize::from(a.concurrency).clamp(16, 256);
        populate(&target, op, a.keys, parallel).await?;
    }
    let st = run(target, &a).await?;
    let r = report(&a, &st);
    print_report(&r, st.first_error.as_deref());
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&r)? + "\n";
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if st.latency.total == 0 {
        bail!("no request succeeded");
    }
    if a.smoke && st.error_total() > 0 {
        bail!("smoke run had {} failed requests", st.error_total());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")];
        for (input, want) in cases.into_iter().chain([("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]) {
            assert_eq!(base64(input.as_bytes()), want, "input {input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn buckets_tile_the_range_with_under_one_percent_width() {
        let mut next = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = Histogram::bounds(i);
            assert_eq!(lo, next, "bucket {i} starts where the previous one ended");
            assert_eq!((Histogram::index(lo), Histogram::index(hi)), (i, i));
            assert!((hi - lo) as f64 <= lo as f64 / 128.0, "bucket {i} is too wide");
            next = hi + 1;
        }
        assert_eq!(next, MAX_NS + 1);
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_known_data_are_within_one_percent() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.total, 10_000);
        for (q, want_us) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = h.quantile(q) as f64 / 1e3;
            assert!((got - want_us).abs() / want_us < 0.01, "q{q}: got {got} µs, want {want_us}");
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.max_ns, 10_000_000);
        assert_eq!(h.mean(), 5_000_500);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }

    #[test]
    fn merged_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut all) = (Histogram::default(), Histogram::default(), Histogram::default());
        for i in 0..5_000u64 {
            let d = Duration::from_nanos(i * i * 37 + 90);
            if i % 3 == 0 { &mut a } else { &mut b }.record(d);
            all.record(d);
        }
        a.merge(&b);
        assert_eq!(a.counts, all.counts);
        assert_eq!((a.total, a.max_ns, a.mean()), (all.total, all.max_ns, all.mean()));
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn stats_count_failures_by_kind() {
        let mut s = Stats::default();
        s.record(Ok(()), Duration::from_millis(1));
        s.record(Err(Failure { kind: Kind::Timeout, detail: "t".into() }), Duration::ZERO);
        s.record(Err(Failure { kind: Kind::Status, detail: "s".into() }), Duration::ZERO);
        let mut other = Stats::default();
        other.record(Err(Failure { kind: Kind::Timeout, detail: "t2".into() }), Duration::ZERO);
        s.merge(other);
        assert_eq!(s.errors, [1, 0, 2, 0, 0]);
        assert_eq!((s.latency.total, s.error_total()), (1, 3));
        assert_eq!(s.first_error.as_deref(), Some("t"));
    }
}
