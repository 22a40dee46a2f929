//! Wiring: open storage, start Raft and the servers, found or join the cluster, and shut down
//! gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, hand leadership
//! over, stop Raft, exit 0).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogStorage;
use openraft::SnapshotPolicy;
use tokio::sync::watch;

use crate::domain::config::ConfigService;
use crate::http::AppState;
use crate::raft::log_store::LogStore;
use crate::raft::membership;
use crate::raft::network::NetworkFactory;
use crate::raft::network::PeerClients;
use crate::raft::types::Peer;
use crate::raft::types::Raft;
use crate::raft::RaftNode;
use crate::settings::DeploymentType;
use crate::settings::LookupType;
use crate::settings::NodeRole;
use crate::settings::Settings;
use crate::state_machine::StateMachineStore;

fn raft_config(s: &Settings) -> anyhow::Result<openraft::Config> {
    let c = openraft::Config {
        cluster_name: "batata".into(),
        heartbeat_interval: s.raft.heartbeat_interval_ms,
        election_timeout_min: s.raft.election_timeout_min_ms,
        election_timeout_max: s.raft.election_timeout_max_ms,
        install_snapshot_timeout: s.raft.install_snapshot_timeout_ms,
        api_batch_linger_ms: s.raft.api_batch_linger_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(s.raft.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: s.raft.max_in_snapshot_log_to_keep,
        purge_batch_size: 256,
        ..Default::default()
    };
    Ok(c.validate()?)
}

/// Resolves this node's identity and peers from the settings.
struct Topology {
    me: Peer,
    /// Voters listed in cluster.conf (empty when standalone).
    members: BTreeMap<u64, Peer>,
    secret: String,
}

fn topology(s: &Settings) -> anyhow::Result<Topology> {
    let dc = &s.datacenter;
    let peer = |http: String, raft: String| Peer {
        raft_addr: raft,
        http_addr: http,
        datacenter: dc.local.clone(),
        region: dc.region.clone(),
        zone: dc.zone.clone(),
    };
    let host =
        if s.advertise_host.contains(':') { format!("[{}]", s.advertise_host) } else { s.advertise_host.clone() };
    let me = peer(format!("{host}:{}", s.server_port), format!("{host}:{}", s.cluster_port));
    let mut members = BTreeMap::new();
    if s.lookup_type == LookupType::File {
        for m in s.members()? {
            let mut p = peer(m.http_addr(), m.raft_addr());
            if p.http_addr != me.http_addr {
                // Other members' locality is learned from their own membership records later.
                p.datacenter = String::new();
                p.region = String::new();
                p.zone = String::new();
            }
            members.insert(membership::node_id_for(&p.http_addr), p);
        }
    }
    let secret = s.cluster_secret.clone().unwrap_or_default();
    if s.lookup_type == LookupType::File && secret.is_empty() {
        bail!(
            "nacos.cluster.secret (env BATATA_CLUSTER_SECRET) must be set when cluster.member.lookup.type is file: \
             peers on the cluster port authenticate with it"
        );
    }
    Ok(Topology { me, members, secret })
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    if settings.deployment_type == DeploymentType::Console {
        bail!("deployment.type=console (a console-only process without the server) is not supported yet; use all or server");
    }
    let topo = topology(&settings)?;
    let data_dir = settings.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let node_id = membership::load_or_store_node_id(&data_dir, membership::node_id_for(&topo.me.http_addr))?;

    // The two databases open side by side: on a fresh data dir each creation is a series of
    // manifest fsyncs (one per column family), the larger part of start-up.
    let (log, sm) = std::thread::scope(|s| {
        let sm = s.spawn(|| StateMachineStore::open(&data_dir));
        let log = LogStore::open(&data_dir.join("raft"));
        (log, sm.join())
    });
    let log = log.context("opening the raft log")?;
    let sm = match sm {
        Ok(sm) => sm.context("opening the state machine")?,
        Err(_) => bail!("opening the state machine panicked"),
    };
    let ready_index = log.clone().read_committed().await?.map(|l| l.index).unwrap_or(0);
    let routes = crate::raft::network::parse_routes(&settings.cluster_peer_routes)
        .map_err(|e| anyhow::anyhow!("nacos.cluster.peer-routes: {e}"))?;
    let clients = PeerClients::with_routes(topo.secret.clone(), routes);
    let network = NetworkFactory { self_id: node_id, clients: clients.clone() };
    let raft = Raft::new(node_id, Arc::new(raft_config(&settings)?), network, log.clone(), sm.clone()).await?;
    let mut node = RaftNode::new(raft, node_id, sm, log, clients);
    if settings.debug_skip_read_index {
        tracing::error!(
            "debug.fault.skip-read-index is set: linearizable reads are NOT linearizable (test-only seeded bug)"
        );
        node.skip_read_index = true;
    }
    let node = Arc::new(node);
    tracing::info!(node_id, http = %topo.me.http_addr, raft = %topo.me.raft_addr, "raft node started");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // Cluster port.
    let cluster_addr = settings.cluster_bind_addr();
    let cluster_listener = tokio::net::TcpListener::bind(cluster_addr)
        .await
        .with_context(|| format!("cannot bind the cluster port {cluster_addr}"))?;
    let svc = crate::grpc::cluster::service(node.clone(), topo.secret.clone());
    // Peers keep their channels open for good, so this server is not drained gracefully: it
    // runs until Raft has stopped and is then aborted.
    let cluster_server = tokio::spawn(async move {
        let incoming = nodelay_incoming(cluster_listener);
        let _ =
            tonic::transport::Server::builder().tcp_nodelay(true).add_service(svc).serve_with_incoming(incoming).await;
    });

    // Found or join the cluster.
    match settings.lookup_type {
        LookupType::Standalone => membership::bootstrap_standalone(&node, topo.me.clone()).await?,
        LookupType::File => {
            if topo.members.contains_key(&membership::node_id_for(&topo.me.http_addr)) {
                tokio::spawn(membership::bootstrap_members(node.clone(), topo.members.clone()));
            } else if settings.datacenter.role == NodeRole::Learner {
                tokio::spawn(membership::join_as_learner(
                    node.clone(),
                    topo.me.clone(),
                    topo.members.values().cloned().collect(),
                ));
            } else {
                bail!(
                    "this node ({}) is not listed in the cluster members ({}); list it, or set datacenter.role=learner to join as a learner",
                    topo.me.http_addr,
                    settings.cluster_conf_path.display()
                );
            }
        }
    }
    tokio::spawn(membership::ensure_cluster_id(node.clone()));
    tokio::spawn(crate::domain::snapshot::apply_pending_restore(node.clone(), data_dir.clone()));
    let retention = Duration::from_secs(settings.config_history_retention_days * 86_400);
    tokio::spawn(crate::domain::config::history_retention(node.clone(), retention));

    let auth = crate::domain::auth::AuthService::new(node.clone(), &settings).map_err(anyhow::Error::msg)?;
    if settings.auth_enabled {
        if let Some(pw) = settings.auth_admin_password.clone() {
            tokio::spawn({
                let auth = auth.clone();
                async move { auth.ensure_admin(pw).await }
            });
        }
    } else {
        tracing::warn!(
            "authentication is OFF (nacos.core.auth.enabled: false): every client may read and write everything"
        );
    }

    // Nacos SDK port (gRPC).
    let sdk = crate::grpc::nacos::SdkServer::new(
        node.clone(),
        ConfigService::new(node.clone(), settings.config_max_content_bytes),
        auth.clone(),
        ready_index,
        settings.sdk_max_connections,
    );
    sdk.spawn_tasks();
    tokio::spawn(crate::domain::naming_liveness::run(
        node.clone(),
        sdk.connection_ids(),
        crate::domain::naming_liveness::Timing {
            connection_grace: Duration::from_millis(settings.naming_connection_grace_ms),
            empty_service: Duration::from_millis(settings.naming_empty_service_clean_ms),
        },
    ));
    tokio::spawn(crate::domain::naming_health::run(
        node.clone(),
        Duration::from_millis(settings.naming_health_check_interval_ms),
    ));
    tokio::spawn(crate::domain::consul_checks::run(node.clone()));
    tokio::spawn(crate::domain::consul_session::run(node.clone()));
    let sdk_addr = settings.sdk_bind_addr();
    let sdk_listener = tokio::net::TcpListener::bind(sdk_addr)
        .await
        .with_context(|| format!("cannot bind the SDK port {sdk_addr}"))?;
    let (unary, bistream) = sdk.services();
    let mut sdk_stop = stop_rx.clone();
    // Clients keep their connections (and push streams) open for good: on shutdown the server
    // stops accepting and the remaining streams end with the process.
    let sdk_server = tokio::spawn(async move {
        let incoming = nodelay_incoming(sdk_listener);
        let _ = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(unary)
            .add_service(bistream)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = sdk_stop.wait_for(|s| *s).await;
            })
            .await;
    });

    // HTTP servers.
    let state = AppState::new(crate::http::Shared {
        node: node.clone(),
        config: ConfigService::new(node.clone(), settings.config_max_content_bytes),
        namespaces: crate::domain::namespace::NamespaceService::new(node.clone()),
        ready_index,
        data_dir: data_dir.clone(),
        cluster_secret: Arc::new(topo.secret.clone()),
        sdk_conns: sdk.conns.clone(),
        sdk_config_listeners: sdk.config_listeners.clone(),
        naming: sdk.naming.service.clone(),
        sdk_naming: sdk.naming.clone(),
        auth: auth.clone(),
        consul_acl: crate::domain::consul_acl::ConsulAcl::new(
            auth.clone(),
            settings.consul_acl_default_policy == crate::settings::AclDefault::Allow,
        ),
        max_body: settings.max_body_bytes,
    });
    let router = crate::http::router(state, &settings.context_path);
    let mut addrs = vec![settings.http_bind_addr()];
    if let Some(c) = settings.consul_bind_addr() {
        addrs.push(c);
    }
    if settings.deployment_type == DeploymentType::All {
        addrs.push(settings.console_bind_addr());
    }
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot bind {addr}"))?;
        let r = router.clone();
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, r.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    tracing::info!(port = settings.server_port, "batata is serving");

    wait_for_signal().await;
    tracing::info!("shutting down: no new requests; finishing in-flight ones");
    sdk.reset_all(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);
    hand_over_leadership(&node).await;
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    let _ = tokio::time::timeout(grace, futures::future::join_all(tasks)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), node.raft.shutdown()).await;
    cluster_server.abort();
    sdk_server.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Accepted connections with Nagle's algorithm off. tonic's `tcp_nodelay` applies only to
/// listeners it binds itself, not to an incoming stream handed to it; without this a reply
/// written as several HTTP/2 frames waits for the peer's delayed ACK (~40 ms per request).
fn nodelay_incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// If this node leads, transfer leadership to the most caught-up voter so writes pause for a
/// heartbeat rather than an election timeout.
async fn hand_over_leadership(node: &RaftNode) {
    if !node.raft.is_leader() {
        return;
    }
    let st = node.status();
    let target =
        st.members.iter().filter(|m| m.voter && m.id != node.id).max_by_key(|m| m.matched.unwrap_or(0)).map(|m| m.id);
    let Some(to) = target else { return };
    if node.raft.trigger().transfer_leader(to).await.is_err() {
        return;
    }
    let mut m = node.raft.metrics();
    let _ = tokio::time::timeout(Duration::from_secs(3), m.wait_until(|m| m.current_leader != Some(node.id))).await;
}
