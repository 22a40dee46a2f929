//! Blocking-query wake-up: N Consul watchers hold `GET /v1/kv/<key>?index=I&wait=60s` spread over
//! the given nodes; each round writes the key through the first node and times until every
//! watcher's query has returned with a higher index. Each watcher uses its own HTTP connection,
//! as independent clients (Prometheus, Traefik, Spring) do.

use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use futures::StreamExt;
use tokio::time::Instant;

use super::fanout::size;
use super::fanout::Rounds;
use super::fanout::ROUND_TIMEOUT;
use super::Args;
use super::Target;

const KEY: &str = "bench-watch";

fn index_of(r: &reqwest::Response) -> Option<u64> {
    r.headers().get("X-Consul-Index")?.to_str().ok()?.parse().ok()
}

async fn put(t: &Target, value: &str) -> anyhow::Result<()> {
    let url = format!("http://{}/v1/kv/{KEY}", t.addrs[0]);
    let r = t.client.put(url).body(value.to_string()).send().await?;
    if r.text().await? != "true" {
        bail!("KV PUT was not acknowledged");
    }
    Ok(())
}

struct Watcher {
    client: reqwest::Client,
    url: String,
    index: u64,
}

impl Watcher {
    /// Blocks until the key's index moves past the one this watcher holds.
    async fn next(&mut self) -> anyhow::Result<()> {
        loop {
            let r = self.client.get(format!("{}?index={}&wait=60s", self.url, self.index)).send().await?;
            let idx = index_of(&r).context("no X-Consul-Index")?;
            let _ = r.bytes().await?;
            if idx > self.index {
                self.index = idx;
                return Ok(());
            }
        }
    }
}

pub async fn run(t: &Target, a: &Args) -> anyhow::Result<()> {
    let (watchers, rounds) = size(a);
    put(t, "round-0").await?;
    let started = Instant::now();
    let mut ws: Vec<Watcher> = futures::stream::iter(0..watchers)
        .map(|i| {
            let addr = t.addrs[i % t.addrs.len()].clone();
            async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(90)).build()?;
                let url = format!("http://{addr}/v1/kv/{KEY}");
                let r = client.get(&url).send().await?;
                let index = index_of(&r).context("no X-Consul-Index")?;
                let _ = r.bytes().await?;
                anyhow::Ok(Watcher { client, url, index })
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("opening the watchers")?;
    let mut times = Rounds::new(started.elapsed());
    for round in 1..=rounds {
        // Let every watcher's blocking query reach its server before the write.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        let waits = futures::future::join_all(ws.iter_mut().map(|w| async move {
            tokio::time::timeout(ROUND_TIMEOUT, w.next()).await.ok()?.ok()?;
            Some(t0.elapsed())
        }));
        let value = format!("round-{round}");
        let (woken, written) = tokio::join!(waits, put(t, &value));
        written?;
        times.add(round, woken)?;
    }
    times.report(a, t.addrs.len(), ["consul-watch-fanout", "watcher", "watch"])
}
