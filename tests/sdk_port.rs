//! The Nacos SDK gRPC port on the wire, field by field, with a raw client: what every SDK
//! relies on (server check, unregistered and unknown requests, SetupAck after ability
//! negotiation, typed failures, tenant echo) and the connection limit.

mod common;

use std::time::Duration;

use common::sdk::payload;
use common::sdk::Conn;
use common::Node;
use common::Ports;
use serde_json::json;
use serde_json::Value;

async fn start(root: &std::path::Path, max_conns: Option<&str>) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    if let Some(m) = max_conns {
        n.set_env("BATATA_SDK_MAX_CONNECTIONS", m);
    }
    n.start();
    common::wait_ready(&n).await;
    n
}

#[tokio::test]
async fn handshake_errors_and_config_flow_on_the_wire() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path(), None).await;
    // No setup yet: server check and health check are answered, anything else is 301.
    let mut c = Conn::open(&n, json!({"clientVersion": "raw", "tenant": "", "labels": {}})).await;
    let (kind, b) = c.call("ServerCheckRequest", json!({"headers": {}, "module": "internal"})).await;
    assert_eq!(kind, "ServerCheckResponse");
    assert_eq!((&b["resultCode"], &b["errorCode"], &b["success"]), (&json!(200), &json!(0), &json!(true)));
    assert!(b["connectionId"].as_str().unwrap().contains("_127.0.0.1_"), "{b}");
    assert_eq!(b["supportAbilityNegotiation"], true);
    let (kind, _) = c.call("HealthCheckRequest", json!({})).await;
    assert_eq!(kind, "HealthCheckResponse");

    let (kind, b) = c.call_registered("NoSuchRequest", json!({})).await;
    assert_eq!((kind.as_str(), &b["errorCode"]), ("ErrorResponse", &json!(302)));

    // Typed failures: not found is ConfigQueryResponse 500/300 with lastModified and beta.
    let q = json!({"dataId": "wire.txt", "group": "DEFAULT_GROUP", "tenant": ""});
    let (kind, b) = c.call("ConfigQueryRequest", q.clone()).await;
    assert_eq!(kind, "ConfigQueryResponse");
    assert_eq!((&b["resultCode"], &b["errorCode"], &b["success"]), (&json!(500), &json!(300), &json!(false)));
    assert_eq!((&b["lastModified"], &b["beta"]), (&json!(0), &json!(false)));
    let (_, b) = c.call("ConfigPublishRequest", json!({"dataId": "bad id!", "group": "G", "content": "x"})).await;
    assert_eq!((&b["resultCode"], &b["errorCode"]), (&json!(500), &json!(400)), "{b}");

    // Listen with tenant "" (echoed as ""), then publish blank addition keys (as Go sends them):
    // a normal publish, pushed to the listener without a tenant key.
    let ctx = json!({"dataId": "wire.txt", "group": "DEFAULT_GROUP", "tenant": "", "md5": "x"});
    let (kind, b) = c.call("ConfigBatchListenRequest", json!({"listen": true, "configListenContexts": [ctx]})).await;
    assert_eq!(kind, "ConfigChangeBatchListenResponse");
    assert_eq!(b["changedConfigs"], json!([{"dataId": "wire.txt", "group": "DEFAULT_GROUP", "tenant": ""}]));
    let blank = json!({"tag": "", "betaIps": "", "type": "", "appName": "", "config_tags": "", "src_user": ""});
    let publish = json!({"dataId": "wire.txt", "group": "DEFAULT_GROUP", "tenant": "public", "content": "v1",
        "casMd5": "", "additionMap": blank});
    let (kind, b) = c.call("ConfigPublishRequest", publish).await;
    assert_eq!((kind.as_str(), &b["success"]), ("ConfigPublishResponse", &json!(true)), "{b}");
    let (kind, push) = c.next_push().await.expect("a change push");
    assert_eq!(kind, "ConfigChangeNotifyRequest");
    assert_eq!((&push["dataId"], push.get("tenant")), (&json!("wire.txt"), None), "{push}");
    let id = push["requestId"].as_str().expect("push requestId is a string").to_string();
    c.out.send(payload("ConfigChangeNotifyResponse", json!({"resultCode": 200, "requestId": id}))).await.unwrap();
    let (_, b) = c.call("ConfigQueryRequest", q).await;
    assert_eq!(
        (&b["content"], &b["md5"], &b["contentType"]),
        (&json!("v1"), &json!(format!("{:x}", md5::compute("v1"))), &json!("text"))
    );
    assert!(b.get("tag").is_none(), "tag must be omitted (Go and Python read it as a bool)");

    // A wrong casMd5 is a typed failure and changes nothing.
    let cas = json!({"dataId": "wire.txt", "group": "DEFAULT_GROUP", "content": "v2", "casMd5": "0"});
    let (_, b) = c.call("ConfigPublishRequest", cas).await;
    assert_eq!((&b["resultCode"], &b["success"]), (&json!(500), &json!(false)));
    assert_ne!(b["errorCode"], json!(0));
}

#[tokio::test]
async fn setup_ack_only_after_ability_negotiation_and_connection_limit() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path(), Some("1")).await;
    let mut java = Conn::open(
        &n,
        json!({"clientVersion": "Nacos-Java-Client:v3", "tenant": "public", "labels": {},
        "abilityTable": {"fuzzyWatch": true}}),
    )
    .await;
    let (kind, b) = java.next_push().await.expect("a SetupAck");
    assert_eq!(kind, "SetupAckRequest");
    assert!(b["abilityTable"].is_object(), "{b}");
    let (kind, _) = java.call_registered("ConfigQueryRequest", json!({"dataId": "a", "group": "G"})).await;
    assert_eq!(kind, "ConfigQueryResponse");

    // The limit is one connection: a second one stays unregistered and its stream ends.
    let mut go = Conn::open(&n, json!({"clientVersion": "Nacos-Go-Client:v2.3.5", "tenant": "", "labels": {}})).await;
    assert!(go.next_push().await.is_none(), "no SetupAck without abilityTable, and the refused stream ends");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (kind, b) = go.call("ConfigQueryRequest", json!({"dataId": "a", "group": "G"})).await;
    assert_eq!((kind.as_str(), &b["errorCode"]), ("ErrorResponse", &json!(301)));
}

#[tokio::test]
async fn beta_version_served_only_to_listed_ips_over_grpc_and_http() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path(), None).await;
    let c = common::client();
    let url = n.url("/nacos/v1/cs/configs");
    let form = [("dataId", "beta.txt"), ("group", "DEFAULT_GROUP"), ("content", "normal")];
    assert_eq!(c.post(&url).form(&form).send().await.unwrap().text().await.unwrap(), "true");

    // The raw gRPC client reports 10.9.8.7 as its IP; it listens with the normal md5.
    let mut grpc = Conn::open(&n, json!({"clientVersion": "raw", "tenant": "", "labels": {}})).await;
    let normal_md5 = format!("{:x}", md5::compute("normal"));
    let ctx = json!({"dataId": "beta.txt", "group": "DEFAULT_GROUP", "tenant": "", "md5": normal_md5});
    let (_, b) =
        grpc.call_registered("ConfigBatchListenRequest", json!({"listen": true, "configListenContexts": [ctx]})).await;
    assert_eq!(b["changedConfigs"], json!([]), "{b}");

    // Beta for 10.9.8.7 only (header, as the v1 API takes it): the listener is told, and its
    // query gets the beta with beta=true; an HTTP reader from 127.0.0.1 still gets the normal one.
    let form = [("dataId", "beta.txt"), ("group", "DEFAULT_GROUP"), ("content", "beta")];
    let r = c.post(&url).header("betaIps", "10.9.8.7,10.0.0.1").form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    let (kind, _) = grpc.next_push().await.expect("the beta IP's listener is notified");
    assert_eq!(kind, "ConfigChangeNotifyRequest");
    let q = json!({"dataId": "beta.txt", "group": "DEFAULT_GROUP"});
    let (_, b) = grpc.call("ConfigQueryRequest", q.clone()).await;
    assert_eq!((&b["content"], &b["beta"], &b["isBeta"]), (&json!("beta"), &json!(true), &json!(true)), "{b}");
    let plain = c.get(format!("{url}?dataId=beta.txt&group=DEFAULT_GROUP")).send().await.unwrap();
    assert!(plain.headers().get("isBeta").is_none());
    assert_eq!(plain.text().await.unwrap(), "normal");
    let info: Value = c
        .get(format!("{url}?beta=true&dataId=beta.txt&group=DEFAULT_GROUP"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&info["data"]["content"], &info["data"]["betaIps"]),
        (&json!("beta"), &json!("10.9.8.7,10.0.0.1")),
        "{info}"
    );

    // A beta for 127.0.0.1 reaches the HTTP reader; a bad IP list is refused and stores nothing.
    let r = c.post(&url).header("betaIps", "127.0.0.1").form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    let beta_read = c.get(format!("{url}?dataId=beta.txt&group=DEFAULT_GROUP")).send().await.unwrap();
    assert_eq!(beta_read.headers()["isBeta"], "true");
    assert_eq!(beta_read.text().await.unwrap(), "beta");
    let r = c.post(&url).header("betaIps", "not-an-ip").form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Stopping the beta: everyone reads the normal version again.
    let stop: Value = c
        .delete(format!("{url}?beta=true&dataId=beta.txt&group=DEFAULT_GROUP"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stop["data"], true, "{stop}");
    assert_eq!(
        c.get(format!("{url}?dataId=beta.txt&group=DEFAULT_GROUP")).send().await.unwrap().text().await.unwrap(),
        "normal"
    );
    let (_, b) = grpc.call("ConfigQueryRequest", q).await;
    assert_eq!((&b["content"], &b["beta"]), (&json!("normal"), &json!(false)));
}

#[tokio::test]
async fn client_config_metrics_are_asked_over_the_push_stream() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path(), None).await;
    let mut c = Conn::open(&n, json!({"clientVersion": "raw", "tenant": "", "labels": {}})).await;
    c.call_registered("ConfigQueryRequest", json!({"dataId": "m", "group": "G"})).await;
    let url = n.url("/nacos/v3/admin/cs/metrics/ip?ip=10.9.8.7&dataId=m&groupName=G");
    let http =
        tokio::spawn(async move { common::client().get(url).send().await.unwrap().json::<Value>().await.unwrap() });
    let (kind, push) = c.next_push().await.expect("a metrics request");
    assert_eq!(kind, "ClientConfigMetricRequest");
    assert_eq!(push["metricsKeys"][0], json!({"type": "cacheData", "key": "m+G+public"}), "{push}");
    let answer = json!({"resultCode": 200, "requestId": push["requestId"], "metrics": {"m+G+public": "abc"}});
    c.out.send(payload("ClientConfigMetricResponse", answer)).await.unwrap();
    let v = http.await.unwrap();
    assert_eq!(v["data"], json!({"m+G+public": "abc"}), "{v}");
    let r = common::client().get(n.url("/nacos/v1/cs/metrics/ip")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "ip is required");
}

#[tokio::test]
async fn tagged_versions_over_grpc_and_http() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path(), None).await;
    let mut c = Conn::open(&n, json!({"clientVersion": "raw", "tenant": "", "labels": {}})).await;
    let publish = |content: &str, tag: &str| json!({"dataId": "tagged.txt", "group": "DEFAULT_GROUP", "content": content, "additionMap": {"tag": tag, "betaIps": ""}});
    let (_, b) = c.call_registered("ConfigPublishRequest", publish("normal", "")).await;
    assert_eq!(b["success"], true, "{b}");
    let (_, b) = c.call("ConfigPublishRequest", publish("for-canary", "canary")).await;
    assert_eq!(b["success"], true, "{b}");
    let q = |tag: &str| json!({"dataId": "tagged.txt", "group": "DEFAULT_GROUP", "tag": tag});
    assert_eq!(c.call("ConfigQueryRequest", q("")).await.1["content"], "normal");
    assert_eq!(c.call("ConfigQueryRequest", q("canary")).await.1["content"], "for-canary");
    let (_, b) = c.call("ConfigQueryRequest", q("other")).await;
    assert_eq!((&b["resultCode"], &b["errorCode"]), (&json!(500), &json!(300)), "an unknown tag is not found: {b}");
    let (_, b) = c.call("ConfigPublishRequest", publish("x", "far-too-long-a-tag-name")).await;
    assert_eq!(b["errorCode"], 400, "{b}");

    // HTTP v1 and v2 read the same tagged version; v1 removes it with `tag`.
    let http = common::client();
    let v1 = n.url("/nacos/v1/cs/configs?dataId=tagged.txt&group=DEFAULT_GROUP");
    assert_eq!(http.get(format!("{v1}&tag=canary")).send().await.unwrap().text().await.unwrap(), "for-canary");
    let v2: Value = http
        .get(n.url("/nacos/v2/cs/config?dataId=tagged.txt&group=DEFAULT_GROUP&tag=canary"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["data"], "for-canary");
    assert_eq!(http.delete(format!("{v1}&tag=canary")).send().await.unwrap().text().await.unwrap(), "true");
    assert_eq!(http.get(format!("{v1}&tag=canary")).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(http.get(&v1).send().await.unwrap().text().await.unwrap(), "normal", "the normal version is untouched");
}
