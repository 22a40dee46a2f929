//! Subscriber fan-out: how long after a registration every one of N gRPC subscribers of the
//! service has a `NotifySubscriberRequest` showing it. Subscribers are spread over the given
//! nodes; the registering connection is on the first node, so on a cluster most pushes come from
//! nodes that learn the change through replication. Each round that connection registers the
//! other of two addresses (replacing its instance), so every round is a change.

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use super::fanout::size;
use super::fanout::Rounds;
use super::fanout::ROUND_TIMEOUT;
use super::nacos_grpc::SdkConn;
use super::Args;
use super::Target;

const SERVICE: &str = "bench-fanout-svc";
/// The registered instance's address in even and odd rounds.
const IPS: [&str; 2] = ["10.254.0.1", "10.254.0.2"];

/// Whether a push's `serviceInfo` lists an instance at `ip`.
fn shows(push: &Value, ip: &str) -> bool {
    push["serviceInfo"]["hosts"].as_array().is_some_and(|h| h.iter().any(|i| i["ip"] == ip))
}

/// Registers the instance at `ip` for the `owner` connection, replacing its previous one.
async fn register(owner: &SdkConn, ip: &str) -> anyhow::Result<()> {
    let mut unary = owner.unary.clone();
    SdkConn::register(&mut unary, SERVICE, ip).await.map_err(anyhow::Error::msg)
}

pub async fn run(t: &Target, a: &Args) -> anyhow::Result<()> {
    let (subscribers, rounds) = size(a);
    let owner = SdkConn::connect(&t.addrs[0], "naming").await.context("connecting the registering client")?;
    register(&owner, IPS[0]).await.context("registering the first instance")?;
    let started = Instant::now();
    let mut conns: Vec<SdkConn> = futures::stream::iter(0..subscribers)
        .map(|i| {
            let addr = t.addrs[i % t.addrs.len()].clone();
            async move {
                let mut c = SdkConn::connect(&addr, "naming").await?;
                c.subscribe(SERVICE).await?;
                anyhow::Ok(c)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("opening the subscribers")?;
    let mut times = Rounds::new(started.elapsed());
    for round in 1..=rounds {
        let ip = IPS[round % 2];
        // A push received before the round (the first registration reaching a node after the
        // subscription, a late retry) must not count as this round's.
        conns.iter_mut().for_each(SdkConn::skip_received);
        let t0 = Instant::now();
        let waits = futures::future::join_all(conns.iter_mut().map(|c| async move {
            let push = c.next_push("NotifySubscriberRequest", |b| shows(b, ip));
            tokio::time::timeout(ROUND_TIMEOUT, push).await.ok()?.ok()?;
            Some(t0.elapsed())
        }));
        let (pushed, registered) = tokio::join!(waits, register(&owner, ip));
        registered.with_context(|| format!("round {round}: registering {ip}"))?;
        times.add(round, pushed)?;
    }
    times.report(a, t.addrs.len(), ["naming-fanout", "subscriber", "subscribe"])
}
