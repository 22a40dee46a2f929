//! The Nacos SDK protocol as the benchmark speaks it: a connection is a gRPC channel plus its
//! bi-stream with a `ConnectionSetupRequest` (the server refuses unary calls on an unregistered
//! connection), then unary `ConfigQueryRequest`s, or a `ConfigBatchListenRequest` whose change
//! pushes are timed for the listener fan-out figure.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use anyhow::Context;
use batata::grpc::nacos::pb;
use pb::bi_request_stream_client::BiRequestStreamClient;
use pb::request_client::RequestClient;
use serde_json::json;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

fn payload(kind: &str, body: &Value) -> pb::Payload {
    pb::Payload {
        metadata: Some(pb::Metadata { r#type: kind.into(), client_ip: "127.0.0.1".into(), headers: HashMap::new() }),
        body: Some(pb::Any { type_url: String::new(), value: serde_json::to_vec(body).unwrap_or_default() }),
    }
}

fn body(p: &pb::Payload) -> Value {
    p.body.as_ref().and_then(|b| serde_json::from_slice(&b.value).ok()).unwrap_or(Value::Null)
}

/// One registered SDK connection.
pub struct SdkConn {
    pub unary: RequestClient<Channel>,
    /// Our side of the bi-stream: acknowledgements go here. Dropping it closes the stream.
    out: mpsc::Sender<pb::Payload>,
    pub pushes: tonic::Streaming<pb::Payload>,
}

/// `host:port` of the HTTP API → the SDK port (+1000), as every Nacos client computes it.
pub fn sdk_addr(http_addr: &str) -> anyhow::Result<String> {
    let (host, port) = http_addr.rsplit_once(':').context("address must be host:port")?;
    let port: u16 = port.parse().context("bad port")?;
    Ok(format!("{host}:{}", port.checked_add(1000).context("port + 1000 overflows")?))
}

impl SdkConn {
    pub async fn connect(http_addr: &str) -> anyhow::Result<SdkConn> {
        let uri = format!("http://{}", sdk_addr(http_addr)?);
        let channel = Channel::from_shared(uri)?.tcp_nodelay(true).connect().await.context("gRPC connect")?;
        let (out, rx) = mpsc::channel(64);
        let setup =
            json!({"clientVersion": "batata-bench", "tenant": "", "labels": {"source": "sdk", "module": "config"}});
        out.send(payload("ConnectionSetupRequest", &setup)).await.ok().context("bi-stream closed")?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let pushes = BiRequestStreamClient::new(channel.clone()).request_bi_stream(stream).await?.into_inner();
        let mut unary = RequestClient::new(channel);
        // The setup travels on the stream; wait until the server has registered it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = unary.request(payload("ConfigQueryRequest", &json!({"dataId": "-", "group": "-"}))).await?;
            if r.get_ref().metadata.as_ref().is_some_and(|m| m.r#type != "ErrorResponse") {
                break;
            }
            if Instant::now() > deadline {
                bail!("the server never registered the connection");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(SdkConn { unary, out, pushes })
    }

    /// One config read; an error unless the server answered it with success.
    pub async fn query(client: &mut RequestClient<Channel>, data_id: &str) -> Result<(), String> {
        let req = payload("ConfigQueryRequest", &json!({"dataId": data_id, "group": "DEFAULT_GROUP", "tenant": ""}));
        let resp = client.request(req).await.map_err(|s| format!("gRPC {}", s.code()))?.into_inner();
        let b = body(&resp);
        match b.get("resultCode").and_then(Value::as_i64) {
            Some(200) => Ok(()),
            _ => Err(format!("ConfigQuery answered {}", b.to_string().chars().take(200).collect::<String>())),
        }
    }

    pub async fn listen(&mut self, data_id: &str, md5: &str) -> anyhow::Result<()> {
        let ctx = json!({"dataId": data_id, "group": "DEFAULT_GROUP", "tenant": "", "md5": md5});
        let req = payload("ConfigBatchListenRequest", &json!({"listen": true, "configListenContexts": [ctx]}));
        let b = body(self.unary.request(req).await?.get_ref());
        if b["resultCode"] != 200 {
            bail!("listen refused: {b}");
        }
        Ok(())
    }

    /// Waits for the next `ConfigChangeNotifyRequest` and acknowledges it.
    pub async fn next_change(&mut self) -> anyhow::Result<()> {
        while let Some(p) = self.pushes.message().await? {
            let kind = p.metadata.as_ref().map(|m| m.r#type.as_str()).unwrap_or("");
            let id = body(&p).get("requestId").cloned().unwrap_or(Value::Null);
            let ack = json!({"resultCode": 200, "errorCode": 0, "success": true, "requestId": id});
            let ack_kind = kind.replace("Request", "Response");
            let _ = self.out.send(payload(&ack_kind, &ack)).await;
            if kind == "ConfigChangeNotifyRequest" {
                return Ok(());
            }
        }
        bail!("push stream ended")
    }
}
