//! Listener fan-out: how long after a publish every one of N gRPC listeners has its change
//! push. Listeners are spread over the given nodes; the publish goes to the first node, so on a
//! cluster most pushes come from nodes that learn the change through replication.

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

async fn publish(t: &Target, content: &str) -> anyhow::Result<()> {
    let url = format!("http://{}{}/v1/cs/configs", t.addrs[0], t.context_path);
    let form = [("dataId", DATA_ID), ("group", "DEFAULT_GROUP"), ("content", content)];
    let body = t.client.post(url).form(&form).send().await?.text().await?;
    if body != "true" {
        bail!("publish answered {body}");
    }
    Ok(())
}

pub async fn run(t: &Target, a: &Args) -> anyhow::Result<()> {
    let listeners = if a.smoke { 4 } else { a.listeners.max(1) };
    let rounds = if a.smoke { 2 } else { a.duration.max(1) as usize };
    let first = format!("round-0-{}", t.value);
    publish(t, &first).await?;
    let md5 = format!("{:x}", md5::compute(&first));
    let started = Instant::now();
    let mut conns: Vec<SdkConn> = futures::stream::iter(0..listeners)
        .map(|i| {
            let addr = t.addrs[i % t.addrs.len()].clone();
            let md5 = md5.clone();
            async move {
                let mut c = SdkConn::connect(&addr).await?;
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
    let setup_s = started.elapsed().as_secs_f64();
    let mut all_ms = Vec::new();
    let mut per_listener_ms: Vec<f64> = Vec::new();
    for round in 1..=rounds {
        let t0 = Instant::now();
        let waits = futures::future::join_all(conns.iter_mut().map(|c| async move {
            tokio::time::timeout(Duration::from_secs(60), c.next_change()).await.ok()?.ok()?;
            Some(t0.elapsed())
        }));
        let content = format!("round-{round}-{}", t.value);
        let (pushed, published) = tokio::join!(waits, publish(t, &content));
        published?;
        let got: Vec<Duration> = pushed.into_iter().flatten().collect();
        if got.len() != listeners {
            bail!("round {round}: {} of {listeners} listeners got the change within 60 s", got.len());
        }
        let max = got.iter().max().copied().unwrap_or_default();
        all_ms.push(max.as_secs_f64() * 1e3);
        per_listener_ms.extend(got.iter().map(|d| d.as_secs_f64() * 1e3));
    }
    per_listener_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| per_listener_ms[((per_listener_ms.len() - 1) as f64 * p) as usize];
    let mut sorted_all = all_ms.clone();
    sorted_all.sort_by(f64::total_cmp);
    let r = json!({
        "workload": "listener-fanout",
        "listeners": listeners,
        "nodes": t.addrs.len(),
        "rounds": rounds,
        "connect_and_listen_s": setup_s,
        "all_notified_ms": {"median": sorted_all[sorted_all.len() / 2], "max": sorted_all[sorted_all.len() - 1]},
        "per_listener_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
    });
    println!(
        "listener-fanout: {listeners} listeners on {} node(s), {rounds} rounds: all notified in {:.1} ms (median round), \
         {:.1} ms (worst); per listener p50 {:.1} ms, p99 {:.1} ms; connect+listen {setup_s:.1} s",
        t.addrs.len(),
        r["all_notified_ms"]["median"].as_f64().unwrap_or(0.0),
        r["all_notified_ms"]["max"].as_f64().unwrap_or(0.0),
        pct(0.5),
        pct(0.99),
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
