//! The Nacos SDK protocol as the benchmark speaks it: a connection is a gRPC channel plus its
//! bi-stream with a `ConnectionSetupRequest` (the server refuses unary calls on an unregistered
//! connection), then unary requests: config queries, instance registrations, listens and
//! subscriptions. A reader task per connection acknowledges every server push as it arrives (so
//! an idle connection also answers the server's `ClientDetectionRequest`) and hands the pushes
//! to whoever times them: the listener and subscriber fan-out figures. [`Pool`] is the dispatch
//! of the closed- and open-loop gRPC workloads.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use batata::grpc::nacos::pb;
use futures::StreamExt;
use pb::bi_request_stream_client::BiRequestStreamClient;
use pb::request_client::RequestClient;
use serde_json::json;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::stats::Failure;
use super::stats::Kind;
use super::Workload;

fn payload(kind: &str, body: &Value) -> pb::Payload {
    pb::Payload {
        metadata: Some(pb::Metadata { r#type: kind.into(), client_ip: "127.0.0.1".into(), headers: HashMap::new() }),
        body: Some(pb::Any { type_url: String::new(), value: serde_json::to_vec(body).unwrap_or_default() }),
    }
}

fn body(p: &pb::Payload) -> Value {
    p.body.as_ref().and_then(|b| serde_json::from_slice(&b.value).ok()).unwrap_or(Value::Null)
}

fn kind(p: &pb::Payload) -> &str {
    p.metadata.as_ref().map(|m| m.r#type.as_str()).unwrap_or("")
}

/// A push as the reader task hands it on: its type and body, or why the stream ended.
type Push = Result<(String, Value), String>;

/// One registered SDK connection.
pub struct SdkConn {
    pub unary: RequestClient<Channel>,
    /// Pushes received so far, each already acknowledged.
    pushes: mpsc::UnboundedReceiver<Push>,
    /// Owns our side of the bi-stream; aborting it (on drop) closes the stream.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SdkConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// `host:port` of the HTTP API → the SDK port (+1000), as every Nacos client computes it.
pub fn sdk_addr(http_addr: &str) -> anyhow::Result<String> {
    let (host, port) = http_addr.rsplit_once(':').context("address must be host:port")?;
    let port: u16 = port.parse().context("bad port")?;
    Ok(format!("{host}:{}", port.checked_add(1000).context("port + 1000 overflows")?))
}

/// Reads the server's pushes: hands each on, then answers it with the matching response type and
/// its `requestId` (the server accepts any response type; only `resultCode` counts).
async fn read_pushes(
    mut stream: tonic::Streaming<pb::Payload>,
    out: mpsc::Sender<pb::Payload>,
    to: mpsc::UnboundedSender<Push>,
) {
    loop {
        let p = match stream.message().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(status) => {
                let _ = to.send(Err(format!("push stream failed: {status}")));
                return;
            }
        };
        let (kind, b) = (kind(&p).to_string(), body(&p));
        let ack = json!({"resultCode": 200, "errorCode": 0, "success": true, "requestId": b["requestId"]});
        let ack_kind = kind.replace("Request", "Response");
        let _ = to.send(Ok((kind, b)));
        if out.send(payload(&ack_kind, &ack)).await.is_err() {
            break;
        }
    }
    let _ = to.send(Err("push stream ended".into()));
}

/// Sends one unary request; its body, or an error unless it is a `want` with `resultCode` 200.
async fn ask(client: &mut RequestClient<Channel>, req: pb::Payload, want: &str) -> Result<Value, String> {
    let resp = client.request(req).await.map_err(|s| format!("gRPC {}", s.code()))?.into_inner();
    let b = body(&resp);
    if kind(&resp) == want && b.get("resultCode").and_then(Value::as_i64) == Some(200) {
        return Ok(b);
    }
    Err(format!("{} answered {}", kind(&resp), b.to_string().chars().take(200).collect::<String>()))
}

impl SdkConn {
    /// Opens and registers a connection; `module` is the `module` label Nacos SDKs send
    /// (`config` or `naming`).
    pub async fn connect(http_addr: &str, module: &str) -> anyhow::Result<SdkConn> {
        let uri = format!("http://{}", sdk_addr(http_addr)?);
        let channel = Channel::from_shared(uri)?.tcp_nodelay(true).connect().await.context("gRPC connect")?;
        let (out, rx) = mpsc::channel(64);
        let setup =
            json!({"clientVersion": "batata-bench", "tenant": "", "labels": {"source": "sdk", "module": module}});
        out.send(payload("ConnectionSetupRequest", &setup)).await.ok().context("bi-stream closed")?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let incoming = BiRequestStreamClient::new(channel.clone()).request_bi_stream(stream).await?.into_inner();
        let (to, pushes) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_pushes(incoming, out, to));
        let mut conn = SdkConn { unary: RequestClient::new(channel), pushes, reader };
        // The setup travels on the stream; wait until the server has registered it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let probe = payload("ConfigQueryRequest", &json!({"dataId": "-", "group": "-"}));
            let r = conn.unary.request(probe).await?;
            if r.get_ref().metadata.as_ref().is_some_and(|m| m.r#type != "ErrorResponse") {
                return Ok(conn);
            }
            if Instant::now() > deadline {
                bail!("the server never registered the connection");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One config read; an error unless the server answered it with success.
    pub async fn query(client: &mut RequestClient<Channel>, data_id: &str) -> Result<(), String> {
        let req = payload("ConfigQueryRequest", &json!({"dataId": data_id, "group": "DEFAULT_GROUP", "tenant": ""}));
        ask(client, req, "ConfigQueryResponse").await.map(|_| ())
    }

    /// Registers an ephemeral instance `ip:8080` of `service` (public, DEFAULT_GROUP) for this
    /// connection, replacing whatever it had registered there.
    pub async fn register(client: &mut RequestClient<Channel>, service: &str, ip: &str) -> Result<(), String> {
        let instance = json!({"ip": ip, "port": 8080, "weight": 1.0, "healthy": true, "enabled": true,
            "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}});
        let req = json!({"type": "registerInstance", "namespace": "public", "groupName": "DEFAULT_GROUP",
            "serviceName": service, "instance": instance});
        ask(client, payload("InstanceRequest", &req), "InstanceResponse").await.map(|_| ())
    }

    /// Registers ephemeral instances `ips:8080` of `service` for this connection in one
    /// `BatchInstanceRequest`, replacing what it had registered there.
    pub async fn register_batch(
        client: &mut RequestClient<Channel>,
        service: &str,
        ips: &[String],
    ) -> Result<(), String> {
        let instances: Vec<Value> = ips
            .iter()
            .map(|ip| {
                json!({"ip": ip, "port": 8080, "weight": 1.0, "healthy": true, "enabled": true,
                "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}})
            })
            .collect();
        let req = json!({"type": "batchRegisterInstance", "namespace": "public", "groupName": "DEFAULT_GROUP",
            "serviceName": service, "instances": instances});
        ask(client, payload("BatchInstanceRequest", &req), "BatchInstanceResponse").await.map(|_| ())
    }

    pub async fn listen(&mut self, data_id: &str, md5: &str) -> anyhow::Result<()> {
        let ctx = json!({"dataId": data_id, "group": "DEFAULT_GROUP", "tenant": "", "md5": md5});
        let req = payload("ConfigBatchListenRequest", &json!({"listen": true, "configListenContexts": [ctx]}));
        ask(&mut self.unary, req, "ConfigChangeBatchListenResponse").await.map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// Subscribes to `service` (public, DEFAULT_GROUP, all clusters).
    pub async fn subscribe(&mut self, service: &str) -> anyhow::Result<()> {
        let req = json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "serviceName": service,
            "subscribe": true, "clusters": ""});
        let req = payload("SubscribeServiceRequest", &req);
        ask(&mut self.unary, req, "SubscribeServiceResponse").await.map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// Waits for the next push of type `kind` whose body `wanted` accepts, skipping the others;
    /// returns its body.
    pub async fn next_push(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        while let Some(p) = self.pushes.recv().await {
            let (k, b) = p.map_err(anyhow::Error::msg)?;
            if k == kind && wanted(&b) {
                return Ok(b);
            }
        }
        bail!("push stream ended")
    }

    /// Waits for the next `ConfigChangeNotifyRequest`.
    pub async fn next_change(&mut self) -> anyhow::Result<()> {
        self.next_push("ConfigChangeNotifyRequest", |_| true).await.map(|_| ())
    }

    /// Forgets the pushes received so far, e.g. a late duplicate of an earlier round's.
    pub fn skip_received(&mut self) {
        while let Ok(Ok(_)) = self.pushes.try_recv() {}
    }
}

/// The SDK connections of a closed- or open-loop gRPC workload, and which request goes on which.
#[derive(Default)]
pub struct Pool {
    conns: Vec<RequestClient<Channel>>,
    /// Keeps the connections (and their streams) open.
    _open: Vec<SdkConn>,
    next: AtomicUsize,
}

impl Pool {
    /// grpc-config-get: SDK clients multiplex on few connections, up to 8 per node here, shared
    /// round-robin. grpc-instance-register: one connection per worker, each on the next node, as
    /// every registering application has its own (a connection holds one registration per
    /// service). Other workloads: none.
    pub async fn open(op: Workload, addrs: &[String], concurrency: u16) -> anyhow::Result<Pool> {
        let n = match op {
            Workload::GrpcConfigGet => addrs.len() * usize::from(concurrency).clamp(1, 8),
            Workload::GrpcInstanceRegister => usize::from(concurrency),
            _ => 0,
        };
        let module = if op == Workload::GrpcConfigGet { "config" } else { "naming" };
        let open: Vec<SdkConn> = futures::stream::iter(0..n)
            .map(|i| SdkConn::connect(&addrs[i % addrs.len()], module))
            .buffered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()
            .context("opening the SDK connections")?;
        let conns = open.iter().map(|c| c.unary.clone()).collect();
        Ok(Pool { conns, _open: open, next: AtomicUsize::new(0) })
    }

    /// One request of `op` by worker `worker` for key `key`.
    pub async fn call(&self, op: Workload, worker: usize, key: u64) -> Result<(), Failure> {
        let i = match op {
            Workload::GrpcInstanceRegister => worker,
            _ => self.next.fetch_add(1, Ordering::Relaxed),
        };
        let no_conn = || Failure { kind: Kind::Connect, detail: "no gRPC connection".into() };
        let mut c = self.conns.get(i % self.conns.len().max(1)).cloned().ok_or_else(no_conn)?;
        let sent = match op {
            Workload::GrpcConfigGet => SdkConn::query(&mut c, &format!("bench-{key}")).await,
            Workload::GrpcInstanceRegister => {
                // Unique per worker, so no two connections register the same address.
                let ip = format!("10.{}.{}.{}", (worker >> 8) & 255, worker & 255, key % 254 + 1);
                SdkConn::register(&mut c, &format!("bench-svc-{key}"), &ip).await
            }
            _ => Err(format!("{} is not a gRPC request workload", op.name())),
        };
        sent.map_err(|detail| Failure { kind: Kind::Status, detail })
    }
}
