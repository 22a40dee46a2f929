//! A raw client of the Nacos SDK port (gRPC `Payload`s), for tests that check the wire.

use std::collections::HashMap;
use std::time::Duration;

use batata::grpc::nacos::pb;
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::Node;

pub fn payload(kind: &str, body: Value) -> pb::Payload {
    payload_with(kind, body, HashMap::new())
}

/// A payload with request headers (where SDKs put `accessToken`).
pub fn payload_with(kind: &str, body: Value, headers: HashMap<String, String>) -> pb::Payload {
    pb::Payload {
        metadata: Some(pb::Metadata { r#type: kind.into(), client_ip: "10.9.8.7".into(), headers }),
        body: Some(pb::Any { type_url: String::new(), value: serde_json::to_vec(&body).unwrap() }),
    }
}

pub fn parts(p: &pb::Payload) -> (String, Value) {
    let kind = p.metadata.as_ref().map(|m| m.r#type.clone()).unwrap_or_default();
    (kind, serde_json::from_slice(&p.body.as_ref().unwrap().value).unwrap())
}

pub struct Conn {
    pub unary: pb::request_client::RequestClient<Channel>,
    pub out: mpsc::Sender<pb::Payload>,
    pub pushes: tonic::Streaming<pb::Payload>,
    /// Sent with every unary call.
    pub headers: HashMap<String, String>,
}

impl Conn {
    pub async fn open(n: &Node, setup: Value) -> Conn {
        let ch = Channel::from_shared(format!("http://127.0.0.1:{}", n.ports.sdk)).unwrap().connect().await.unwrap();
        let (out, rx) = mpsc::channel(16);
        out.send(payload("ConnectionSetupRequest", setup)).await.unwrap();
        let pushes = pb::bi_request_stream_client::BiRequestStreamClient::new(ch.clone())
            .request_bi_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Conn { unary: pb::request_client::RequestClient::new(ch), out, pushes, headers: HashMap::new() }
    }

    pub async fn call(&mut self, kind: &str, body: Value) -> (String, Value) {
        let p = payload_with(kind, body, self.headers.clone());
        parts(&self.unary.request(p).await.unwrap().into_inner())
    }

    /// Calls until the server has processed the setup (it travels on the stream).
    pub async fn call_registered(&mut self, kind: &str, body: Value) -> (String, Value) {
        for _ in 0..200 {
            let r = self.call(kind, body.clone()).await;
            if r.0 != "ErrorResponse" || r.1["errorCode"] != 301 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the connection was never registered");
    }

    pub async fn next_push(&mut self) -> Option<(String, Value)> {
        match tokio::time::timeout(Duration::from_secs(5), self.pushes.message()).await {
            Ok(Ok(Some(p))) => Some(parts(&p)),
            _ => None,
        }
    }
}
