//! Listener fan-out: how long after a publish every one of N gRPC listeners has its change
//! push. Listeners are spread over the given nodes; the publish goes to the first node, so on a
//! cluster most pushes come from nodes that learn the change through replication. [`Rounds`],
//! the timing and report, is shared with the subscriber fan-out (`naming_fanout`).

use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use super::nacos_grpc::SdkConn;
use super::Args;
use super::Target;

const DATA_ID: &str = "bench-fanout";

/// How long a round waits for every connection to be notified.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

async fn publish(t: &Target, content: &str) -> anyhow::Result<()> {
    let url = format!("http://{}{}/v1/cs/configs", t.addrs[0], t.context_path);
    let form = [("dataId", DATA_ID), ("group", "DEFAULT_GROUP"), ("content", content)];
    let body = t.client.post(url).form(&form).send().await?.text().await?;
    if body != "true" {
        bail!("publish answered {body}");
    }
    Ok(())
}

/// The number of connections and of rounds of a fan-out run (`--smoke`: 4 and 2).
pub fn size(a: &Args) -> (usize, usize) {
    if a.smoke {
        (4, 2)
    } else {
        (a.listeners.max(1), a.duration.max(1) as usize)
    }
}

pub async fn run(t: &Target, a: &Args) -> anyhow::Result<()> {
    let (listeners, rounds) = size(a);
    let first = format!("round-0-{}", t.value);
    publish(t, &first).await?;
    let md5 = format!("{:x}", md5::compute(&first));
    let started = Instant::now();
    let mut conns: Vec<SdkConn> = futures::stream::iter(0..listeners)
        .map(|i| {
            let addr = t.addrs[i % t.addrs.len()].clone();
            let md5 = md5.clone();
            async move {
                let mut c = SdkConn::connect(&addr, "config").await?;
                c.listen(DATA_ID, &md5).await?;
                anyhow::Ok(c)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("opening the listeners")?;
    let mut times = Rounds::new(started.elapsed());
    for round in 1..=rounds {
        let t0 = Instant::now();
        let waits = futures::future::join_all(conns.iter_mut().map(|c| async move {
            tokio::time::timeout(ROUND_TIMEOUT, c.next_change()).await.ok()?.ok()?;
            Some(t0.elapsed())
        }));
        let content = format!("round-{round}-{}", t.value);
        let (pushed, published) = tokio::join!(waits, publish(t, &content));
        published?;
        times.add(round, pushed)?;
    }
    times.report(a, t.addrs.len(), ["listener-fanout", "listener", "listen"])
}

/// The times of a fan-out run's rounds.
pub struct Rounds {
    /// Seconds to open every connection and listen or subscribe.
    setup_s: f64,
    /// Per round, the time until the last connection was notified.
    all_ms: Vec<f64>,
    /// Every connection's time to notification, over all rounds.
    each_ms: Vec<f64>,
}

impl Rounds {
    /// `setup`: the time it took to open every connection and listen or subscribe.
    pub fn new(setup: Duration) -> Rounds {
        Rounds { setup_s: setup.as_secs_f64(), all_ms: Vec::new(), each_ms: Vec::new() }
    }

    /// One round: when each connection was notified, `None` for those that were not in time.
    pub fn add(&mut self, round: usize, got: Vec<Option<Duration>>) -> anyhow::Result<()> {
        let n = got.len();
        let got: Vec<f64> = got.into_iter().flatten().map(|d| d.as_secs_f64() * 1e3).collect();
        if got.len() != n {
            let s = ROUND_TIMEOUT.as_secs();
            bail!("round {round}: {} of {n} connections were notified of the change within {s} s", got.len());
        }
        self.all_ms.push(got.iter().copied().fold(0.0, f64::max));
        self.each_ms.extend(got);
        Ok(())
    }

    /// Prints the summary and writes the JSON report. `names`: the workload, what a connection
    /// is (listener, subscriber) and what it does (listen, subscribe).
    pub fn report(mut self, a: &Args, nodes: usize, names: [&str; 3]) -> anyhow::Result<()> {
        let [workload, noun, verb] = names;
        let (count, rounds) = size(a);
        let in_order = self.all_ms.clone();
        self.each_ms.sort_by(f64::total_cmp);
        self.all_ms.sort_by(f64::total_cmp);
        let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
        let (each, all) = (&self.each_ms, &self.all_ms);
        let r = json!({
            "workload": workload,
            format!("{noun}s"): count,
            "nodes": nodes,
            "rounds": rounds,
            format!("connect_and_{verb}_s"): self.setup_s,
            "all_notified_ms": {"median": all[all.len() / 2], "max": pct(all, 1.0), "each_round": in_order},
            format!("per_{noun}_ms"): {"p50": pct(each, 0.5), "p99": pct(each, 0.99), "max": pct(each, 1.0)},
        });
        println!(
            "{workload}: {count} {noun}s on {nodes} node(s), {rounds} rounds: all notified in {:.1} ms (median round), \
             {:.1} ms (worst); per {noun} p50 {:.1} ms, p99 {:.1} ms; connect+{verb} {:.1} s",
            all[all.len() / 2],
            pct(all, 1.0),
            pct(each, 0.5),
            pct(each, 0.99),
            self.setup_s,
        );
        if let Some(path) = &a.json {
            std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
