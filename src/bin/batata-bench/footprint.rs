//! `footprint-load`: fills a server with `--keys` configs (HTTP publishes) and `--instances`
//! registry instances (gRPC batch registrations, 100 per service, spread over `--concurrency`
//! SDK connections), then holds the connections open for `--duration` seconds, so the script can
//! read the server's memory with everything loaded. The hold matters: ephemeral instances live
//! as long as the connection that registered them. Prints one JSON line when loaded.

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use super::nacos_grpc::SdkConn;
use super::Args;
use super::Target;
use super::Workload;

/// Instances per service (one batch registration each).
const PER_SERVICE: u64 = 100;

/// The `i`-th instance address: distinct for up to 2^24 instances.
fn ip(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

pub async fn run(t: &Target, a: &Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    super::populate(t, Workload::ConfigPublish, a.keys, 64).await?;
    let configs_secs = t0.elapsed().as_secs_f64();
    let conns: Vec<SdkConn> = futures::stream::iter(0..usize::from(a.concurrency))
        .map(|i| SdkConn::connect(&t.addrs[i % t.addrs.len()], "naming"))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("opening the SDK connections")?;
    let t1 = Instant::now();
    let services = a.instances.div_ceil(PER_SERVICE);
    let registered: Vec<Result<u64, String>> = futures::stream::iter(0..services)
        .map(|s| {
            let mut unary = conns[(s % conns.len() as u64) as usize].unary.clone();
            let first = s * PER_SERVICE;
            let ips: Vec<String> = (first..(first + PER_SERVICE).min(a.instances)).map(ip).collect();
            async move {
                SdkConn::register_batch(&mut unary, &format!("footprint-svc-{s}"), &ips).await?;
                Ok(ips.len() as u64)
            }
        })
        .buffer_unordered(usize::from(a.concurrency).max(1))
        .collect()
        .await;
    let mut instances = 0;
    for r in registered {
        instances += r.map_err(anyhow::Error::msg).context("a batch registration failed")?;
    }
    let line = json!({"configs": a.keys, "configs_secs": configs_secs, "instances": instances,
        "services": services, "instances_secs": t1.elapsed().as_secs_f64(), "hold_secs": a.duration});
    println!("{line}");
    if let Some(path) = &a.json {
        std::fs::write(path, format!("{line}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    tokio::time::sleep(std::time::Duration::from_secs(a.duration)).await;
    drop(conns);
    Ok(())
}
