//! The Nacos SDK port (main port + 1000, default 9848): `/Request/request` for unary calls and
//! `/BiRequestStream/requestBiStream` for the connection's push stream. Handlers parse, call the
//! domain and shape the reply; they never touch storage.

pub mod config;
pub mod connections;
pub mod guard;
pub mod naming;
pub mod naming_push;
pub mod wire;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use futures::Stream;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;
use tonic::Status;
use tonic::Streaming;

use self::connections::Conn;
use self::connections::Connections;
use self::connections::Setup;
use self::wire::code;
use self::wire::Incoming;
use crate::domain::config::ConfigService;
use crate::raft::RaftNode;

/// Generated from `proto/nacos_grpc_service.proto` (no package, hence `_`; the rpc names are
/// the clients' lowercase ones, hence the naming allowance).
#[allow(clippy::all, non_camel_case_types)]
pub mod pb {
    tonic::include_proto!("_");
}

/// Clients send up to 10 MiB (Nacos' own inbound limit); tonic's default is 4 MiB.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024 + 64 * 1024;

/// What this server can do, told to clients that negotiate abilities. Only what is implemented
/// is advertised.
fn ability_table() -> Value {
    json!({"supportPersistentInstanceByGrpc": true, "fuzzyWatch": false, "lock": false, "mcp": false})
}

#[derive(Clone)]
pub struct SdkServer {
    pub node: Arc<RaftNode>,
    pub config: ConfigService,
    pub conns: Arc<Connections>,
    pub config_listeners: Arc<config::Listeners>,
    pub naming: Arc<naming::Naming>,
    pub auth: crate::domain::auth::AuthService,
    /// Commit index recovered at start; the node answers "starting" until it has applied it.
    pub ready_index: u64,
    pub max_connections: usize,
}

impl SdkServer {
    pub fn new(
        node: Arc<RaftNode>,
        config: ConfigService,
        auth: crate::domain::auth::AuthService,
        ready_index: u64,
        max_connections: usize,
    ) -> SdkServer {
        let conns = Connections::new();
        let config_listeners = Arc::new(config::Listeners::default());
        let l = config_listeners.clone();
        conns.on_close(Box::new(move |c: &Conn| l.drop_conn(c.remote)));
        let naming = Arc::new(naming::Naming::new(crate::domain::naming_service::NamingService::new(node.clone())));
        let n = naming.clone();
        conns.on_close(Box::new(move |c: &Conn| n.connection_closed(c)));
        SdkServer { node, config, conns, config_listeners, naming, auth, ready_index, max_connections }
    }

    /// Ids of the connections this node holds (the liveness loop reports them to the leader).
    pub fn connection_ids(&self) -> crate::domain::naming_liveness::LocalConns {
        let conns = self.conns.clone();
        Arc::new(move || conns.all().iter().map(|c| c.id.clone()).collect())
    }

    /// Background duties of this port: change pushes and idle-connection detection.
    pub fn spawn_tasks(&self) {
        tokio::spawn(config::notify_changes(
            self.node.sm.hub().clone(),
            self.conns.clone(),
            self.config_listeners.clone(),
        ));
        tokio::spawn(naming::notify_subscribers(
            self.node.sm.hub().clone(),
            self.conns.clone(),
            self.naming.subscribers.clone(),
            self.naming.service.clone(),
        ));
        tokio::spawn(naming::audit_published(self.naming.clone(), self.conns.clone()));
        tokio::spawn(connections::detect_idle(self.conns.clone()));
    }

    /// On shutdown: asks every client to reconnect elsewhere now (`ConnectResetRequest`), rather
    /// than notice the dead connection through its health checks seconds later. Python clients
    /// are left out: their handler of this push is broken in nacos-sdk-python 3.2.0, and they
    /// reconnect on the closed stream anyway. Rust clients ignore it.
    pub async fn reset_all(&self, wait: std::time::Duration) {
        let pushes = self.conns.all().into_iter().filter(|c| !c.version.starts_with("Nacos-Python-Client")).map(|c| {
            let conns = self.conns.clone();
            async move {
                let body = json!({"serverIp": null, "serverPort": null, "connectionId": c.id, "module": "internal"});
                let _ = c.push(&conns.push_ids, "ConnectResetRequest", body, wait).await;
            }
        });
        futures::future::join_all(pushes).await;
    }

    fn ready(&self) -> bool {
        let s = self.node.status();
        s.leader.is_some() && s.applied.unwrap_or(0) >= self.ready_index
    }

    pub fn services(
        &self,
    ) -> (pb::request_server::RequestServer<SdkServer>, pb::bi_request_stream_server::BiRequestStreamServer<SdkServer>)
    {
        let unary = pb::request_server::RequestServer::new(self.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let stream = pb::bi_request_stream_server::BiRequestStreamServer::new(self.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        (unary, stream)
    }

    /// Authenticates and authorizes `inc` by its type (see `guard`); on success, marks it with
    /// the caller's name for the config history and the audit log.
    async fn guard(&self, remote: SocketAddr, inc: &mut Incoming) -> Result<(), pb::Payload> {
        inc.headers.remove(guard::PRINCIPAL_HEADER);
        if !self.auth.enabled() {
            return Ok(());
        }
        let response = inc.kind.strip_suffix("Request").map(|k| format!("{k}Response")).unwrap_or_default();
        let fail = |e: crate::domain::DomainError| wire::fail(&response, code::NO_RIGHT, &e.to_string(), Value::Null);
        let who = self.auth.authenticate(&guard::credentials(inc), remote.ip()).await.map_err(fail)?;
        let mut writes = false;
        let list = match guard::needs(inc) {
            guard::Needs::One(n) => vec![n],
            guard::Needs::Many(v) => v,
        };
        for need in &list {
            self.auth.authorize(who.as_ref(), need).map_err(fail)?;
            if let crate::domain::auth::Need::Resource(res, crate::domain::auth::Action::Write) = need {
                writes = true;
                let user = who.as_ref().map_or("-", |p| p.username.as_str());
                tracing::info!(target: "audit", %remote, user, request = %inc.kind, resource = %res.joined(), "write");
            }
        }
        if let (Some(p), true) = (who, writes) {
            inc.headers.insert(guard::PRINCIPAL_HEADER.into(), p.username);
        }
        Ok(())
    }

    async fn dispatch(&self, remote: SocketAddr, mut inc: Incoming) -> pb::Payload {
        // These two are answered before any registration check: clients send them before (Java,
        // Go, Python) or concurrently with (Rust) their connection setup.
        match inc.kind.as_str() {
            "ServerCheckRequest" => {
                if !self.ready() {
                    return wire::error_response(code::SERVER_STARTING, "Server is starting,please try later.");
                }
                let id = connections::connection_id(crate::now_ms(), remote);
                return wire::ok("ServerCheckResponse", json!({"connectionId": id, "supportAbilityNegotiation": true}));
            }
            "HealthCheckRequest" => {
                if let Some(c) = self.conns.get(&remote) {
                    c.touch();
                }
                return wire::ok("HealthCheckResponse", Value::Null);
            }
            _ => {}
        }
        let Some(conn) = self.conns.get(&remote) else {
            return wire::error_response(code::UNREGISTERED, "Connection is unregistered.");
        };
        conn.touch();
        if let Err(denied) = self.guard(remote, &mut inc).await {
            return denied;
        }
        match inc.kind.as_str() {
            "ConfigQueryRequest" => config::query(&self.config, &inc, &conn).await,
            "ConfigPublishRequest" => config::publish(&self.config, &inc, &conn).await,
            "ConfigRemoveRequest" => config::remove(&self.config, &inc, &conn).await,
            "ConfigBatchListenRequest" => config::batch_listen(&self.config, &self.config_listeners, &inc, &conn),
            "InstanceRequest" => self.naming.instance(&inc, &conn).await,
            "BatchInstanceRequest" => self.naming.batch(&inc, &conn).await,
            "PersistentInstanceRequest" => self.naming.persistent(&inc).await,
            "ServiceQueryRequest" => self.naming.query(&inc).await,
            "SubscribeServiceRequest" => self.naming.subscribe(&inc, &conn),
            "ServiceListRequest" => self.naming.list(&inc),
            other => wire::error_response(code::NO_HANDLER, &format!("RequestHandler Not Found: {other}")),
        }
    }
}

#[tonic::async_trait]
impl pb::request_server::Request for SdkServer {
    async fn request(&self, req: tonic::Request<pb::Payload>) -> Result<tonic::Response<pb::Payload>, Status> {
        let Some(remote) = req.remote_addr() else {
            return Ok(tonic::Response::new(wire::error_response(code::BAD_GATEWAY, "no peer address")));
        };
        let inc = match Incoming::parse(req.into_inner()) {
            Ok(i) => i,
            Err(m) => return Ok(tonic::Response::new(wire::error_response(code::BAD_GATEWAY, &m))),
        };
        // A bug in one handler answers that request with an error; it never takes the node down.
        let reply = match AssertUnwindSafe(self.dispatch(remote, inc)).catch_unwind().await {
            Ok(p) => p,
            Err(_) => wire::error_response(code::SERVER_ERROR, "internal error"),
        };
        Ok(tonic::Response::new(reply))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SetupReq {
    client_version: Option<String>,
    tenant: Option<String>,
    labels: std::collections::HashMap<String, String>,
    ability_table: Option<Value>,
}

type PayloadStream = Pin<Box<dyn Stream<Item = Result<pb::Payload, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::bi_request_stream_server::BiRequestStream for SdkServer {
    #[allow(non_camel_case_types)]
    type requestBiStreamStream = PayloadStream;

    async fn request_bi_stream(
        &self,
        req: tonic::Request<Streaming<pb::Payload>>,
    ) -> Result<tonic::Response<Self::requestBiStreamStream>, Status> {
        let remote = req.remote_addr().ok_or_else(|| Status::failed_precondition("no peer address"))?;
        let mut inbound = req.into_inner();
        let (out, rx) = Connections::outbound();
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let conns = self.conns.clone();
        let max_connections = self.max_connections;
        tokio::spawn(async move {
            let mut close_tx = Some(close_tx);
            let mut conn: Option<Arc<Conn>> = None;
            while let Some(Ok(p)) = inbound.next().await {
                let inc = match Incoming::parse(p) {
                    Ok(i) => i,
                    Err(m) => {
                        tracing::debug!(%remote, "bad payload on the bi-stream: {m}");
                        continue;
                    }
                };
                if inc.kind == "ConnectionSetupRequest" {
                    let Some(closer) = close_tx.take() else { continue };
                    if conns.count() >= max_connections {
                        // Over the limit: the stream ends unregistered, so the client's calls get
                        // "unregistered" and it reconnects, to another node if it has one.
                        tracing::warn!(%remote, max_connections, "SDK connection refused: connection limit reached");
                        break;
                    }
                    let s: SetupReq = inc.decode().unwrap_or_default();
                    let app_name = s.labels.get("AppName").cloned().unwrap_or_else(|| "-".into());
                    let c = conns.register(
                        Setup {
                            remote,
                            client_ip: if inc.client_ip.is_empty() { remote.ip().to_string() } else { inc.client_ip },
                            version: s.client_version.unwrap_or_default(),
                            app_name,
                            namespace: s.tenant.unwrap_or_default(),
                            labels: s.labels,
                        },
                        out.clone(),
                        closer,
                    );
                    // Clients that negotiate abilities wait for this and drop the connection
                    // without it; the others do not know it.
                    if s.ability_table.is_some_and(|t| !t.is_null()) {
                        let ack = json!({"headers": {}, "abilityTable": ability_table(), "module": "internal"});
                        c.send(wire::payload("SetupAckRequest", &ack));
                    }
                    conn = Some(c);
                } else if let (Some(c), Some(id)) = (&conn, inc.request_id()) {
                    c.touch();
                    c.acknowledge(id, inc.body.clone());
                }
            }
            if let Some(c) = conn {
                conns.unregister(&c);
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).take_until(close_rx);
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}
