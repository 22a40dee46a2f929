//! Operator subcommands. They talk to a node over its HTTP port, like curl would.

use std::path::PathBuf;

use anyhow::bail;
use anyhow::Context;
use clap::Subcommand;

use batata::domain::snapshot::pending_restore_path;
use batata::state_machine::schema;
use batata::state_machine::snapshot;

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Save a snapshot of a live cluster (`GET /v1/snapshot`).
    Save {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        out: PathBuf,
        /// Allow a follower to answer without a read-index round.
        #[arg(long)]
        stale: bool,
    },
    /// Prepare a fresh data dir to restore a snapshot when its node starts.
    Restore {
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Verify a snapshot file and print its header.
    Inspect { file: PathBuf },
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Members, roles, leader, term, commit and applied index.
    Status {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value = "/nacos")]
        context_path: String,
    },
    /// Add a node as a learner (it replicates but does not vote).
    AddLearner {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        http_addr: String,
        #[arg(long)]
        raft_addr: String,
        #[arg(long)]
        id: Option<u64>,
        #[arg(long, default_value = "/nacos")]
        context_path: String,
    },
    /// Promote a learner to voter.
    Promote {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        id: u64,
        #[arg(long, default_value = "/nacos")]
        context_path: String,
    },
    /// Remove a node from the cluster.
    Remove {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        id: u64,
        #[arg(long, default_value = "/nacos")]
        context_path: String,
    },
}

/// Operator requests carry the cluster secret from `BATATA_CLUSTER_SECRET` when it is set.
fn client() -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(secret) = std::env::var("BATATA_CLUSTER_SECRET") {
        if !secret.is_empty() {
            headers.insert(
                batata::http::ADMIN_SECRET_HEADER,
                secret.parse().context("BATATA_CLUSTER_SECRET is not a valid header value")?,
            );
        }
    }
    Ok(reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).default_headers(headers).build()?)
}

async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        bail!("{status}: {body}");
    }
    Ok(resp)
}

pub async fn snapshot(cmd: SnapshotCmd) -> anyhow::Result<()> {
    match cmd {
        SnapshotCmd::Save { addr, out, stale } => {
            let url = format!("http://{addr}/v1/snapshot{}", if stale { "?stale" } else { "" });
            let bytes = check(client()?.get(url).send().await?).await?.bytes().await?;
            let tmp = out.with_extension("partial");
            std::fs::write(&tmp, &bytes)?;
            snapshot::verify_file(&tmp).context("the node sent an invalid snapshot")?;
            std::fs::rename(&tmp, &out)?;
            let h = snapshot::read_header(&out)?;
            println!(
                "saved {} ({} bytes, last log index {})",
                out.display(),
                bytes.len(),
                h.meta.last_log_id.map(|l| l.index).unwrap_or(0)
            );
            Ok(())
        }
        SnapshotCmd::Restore { input, data_dir } => {
            snapshot::verify_file(&input).with_context(|| format!("{} is not a valid snapshot", input.display()))?;
            if data_dir.join("raft").exists() {
                bail!(
                    "{} already holds a node's data; restore into a fresh data dir (a running cluster takes PUT /v1/snapshot)",
                    data_dir.display()
                );
            }
            let dest = pending_restore_path(&data_dir);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&input, &dest)?;
            println!(
                "restore prepared: the node using {} applies it when its cluster has a leader",
                data_dir.display()
            );
            Ok(())
        }
        SnapshotCmd::Inspect { file } => {
            let mut per_cf = vec![0u64; schema::ALL_CFS.len()];
            let (h, n) = snapshot::read_records(&file, |cf, _, _| {
                if let Some(c) = per_cf.get_mut(cf as usize) {
                    *c += 1;
                }
                Ok(())
            })?;
            let cfs: serde_json::Map<String, serde_json::Value> =
                schema::ALL_CFS.iter().zip(per_cf).map(|(n, c)| (n.to_string(), c.into())).collect();
            let out = serde_json::json!({
                "format_version": 1,
                "checksum": "ok",
                "cluster_id": h.cluster_id,
                "last_log_index": h.meta.last_log_id.as_ref().map(|l| l.index),
                "last_log_term": h.meta.last_log_id.as_ref().map(|l| l.leader_id.term),
                "membership": h.meta.last_membership.membership().nodes().map(|(id, p)| serde_json::json!({"id": id, "http": p.http_addr, "raft": p.raft_addr})).collect::<Vec<_>>(),
                "created_ms": h.created_ms,
                "records": n,
                "records_per_column_family": cfs,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

pub async fn cluster(cmd: ClusterCmd) -> anyhow::Result<()> {
    let c = client()?;
    let (resp, print_json) = match cmd {
        ClusterCmd::Status { addr, context_path } => {
            (c.get(format!("http://{addr}{context_path}/v1/core/raft/status")).send().await?, true)
        }
        ClusterCmd::AddLearner { addr, http_addr, raft_addr, id, context_path } => {
            let mut q = vec![("httpAddr", http_addr), ("raftAddr", raft_addr)];
            if let Some(id) = id {
                q.push(("id", id.to_string()));
            }
            (c.post(format!("http://{addr}{context_path}/v1/core/raft/learner")).query(&q).send().await?, false)
        }
        ClusterCmd::Promote { addr, id, context_path } => (
            c.post(format!("http://{addr}{context_path}/v1/core/raft/promote")).query(&[("id", id)]).send().await?,
            false,
        ),
        ClusterCmd::Remove { addr, id, context_path } => (
            c.delete(format!("http://{addr}{context_path}/v1/core/raft/member")).query(&[("id", id)]).send().await?,
            false,
        ),
    };
    let text = check(resp).await?.text().await?;
    if print_json {
        let v: serde_json::Value = serde_json::from_str(&text)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{text}");
    }
    Ok(())
}
