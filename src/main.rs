//! `batata`: serve a node, or operate one (snapshots, cluster membership).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::Subcommand;

mod cli;

#[derive(Parser)]
#[command(name = "batata", version, about = "Nacos- and Consul-compatible config center and registry on Raft")]
struct Cli {
    /// Settings file (default: conf/application.yml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node (the default).
    Serve,
    /// Save, restore or inspect snapshots.
    #[command(subcommand)]
    Snapshot(cli::SnapshotCmd),
    /// Inspect and change cluster membership.
    #[command(subcommand)]
    Cluster(cli::ClusterCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        match cli.cmd.unwrap_or(Cmd::Serve) {
            Cmd::Serve => {
                let settings = batata::settings::load(cli.config.as_deref())?;
                batata::app::run(settings).await
            }
            Cmd::Snapshot(c) => cli::snapshot(c).await,
            Cmd::Cluster(c) => cli::cluster(c).await,
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
