//! Black-box tests of the Consul agent, catalog and health APIs on a real node: TTL checks and
//! their expiry, catalog registrations, the server's own node, blocking queries, HTTP and TCP
//! checks run by the leader, `?filter=`, refused input, and the one registry shared with Nacos.

mod common;

use std::time::Duration;
use std::time::Instant;

use common::client;
use common::eventually;
use common::Node;
use common::Ports;
use serde_json::json;
use serde_json::Value;

async fn start(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.start();
    common::wait_ready(&n).await;
    n
}

async fn put(n: &Node, path: &str, body: Value) -> (u16, String) {
    let r = client().put(n.url(path)).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn put_ok(n: &Node, path: &str, body: Value) {
    let (s, text) = put(n, path, body.clone()).await;
    assert_eq!(s, 200, "PUT {path} {body}: {text}");
}

/// Status, `X-Consul-Index` (0 when absent) and the JSON body.
async fn get(n: &Node, path: &str) -> (u16, u64, Value) {
    let r = client().get(n.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let index =
        r.headers().get("X-Consul-Index").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let text = r.text().await.unwrap();
    (status, index, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get_ok(n: &Node, path: &str) -> Value {
    let (s, _, v) = get(n, path).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// Service IDs of a `/health/service` reply.
fn health_ids(v: &Value) -> Vec<String> {
    arr(v).iter().map(|e| e["Service"]["ID"].as_str().unwrap_or("").to_string()).collect()
}

async fn check_status(n: &Node, service: &str, check: &str) -> String {
    let v = get_ok(n, &format!("/v1/health/checks/{service}")).await;
    arr(&v)
        .iter()
        .find(|c| c["CheckID"] == check)
        .map(|c| c["Status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// The Nacos view of a service's hosts (with Nacos' protection threshold: when none is
/// healthy, all are listed as healthy).
async fn nacos_hosts(n: &Node, service: &str) -> Vec<Value> {
    let v = get_ok(n, &format!("/nacos/v1/ns/instance/list?serviceName={service}")).await;
    arr(&v["hosts"])
}

/// `healthy` of one instance as Nacos stores it (v1 instance detail).
async fn nacos_healthy(n: &Node, service: &str, ip: &str, port: u16) -> Value {
    get_ok(n, &format!("/nacos/v1/ns/instance?serviceName={service}&ip={ip}&port={port}")).await["healthy"].clone()
}

#[tokio::test]
async fn agent_service_with_a_ttl_check_is_one_registry_instance() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let def = json!({"Name": "web", "ID": "web-1", "Address": "10.1.2.3", "Port": 8080, "Tags": ["v1", "primary"],
                     "Meta": {"env": "prod"}, "Check": {"TTL": "2s"}, "Checks": null, "Weights": {"Passing": 3, "Warning": 1}});
    put_ok(&n, "/v1/agent/service/register", def.clone()).await;
    assert_eq!(check_status(&n, "web", "service:web-1").await, "critical", "a new check starts critical");
    assert!(arr(&get_ok(&n, "/v1/health/service/web?passing=1").await).is_empty());
    // passing=false must not filter (Spring sends it).
    assert_eq!(health_ids(&get_ok(&n, "/v1/health/service/web?passing=false").await), vec!["web-1"]);
    let hosts = nacos_hosts(&n, "web").await;
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!((&hosts[0]["ip"], &hosts[0]["port"]), (&json!("10.1.2.3"), &json!(8080)));
    assert_eq!(nacos_healthy(&n, "web", "10.1.2.3", 8080).await, false);
    assert_eq!(hosts[0]["metadata"]["env"], "prod");

    put_ok(&n, "/v1/agent/check/pass/service:web-1?note=ok", json!(null)).await;
    let healthy = get_ok(&n, "/v1/health/service/WEB?passing=1").await;
    assert_eq!(health_ids(&healthy), vec!["web-1"], "names are case-insensitive");
    let e = &arr(&healthy)[0];
    assert_eq!((&e["Service"]["Port"], &e["Service"]["Address"]), (&json!(8080), &json!("10.1.2.3")));
    assert_eq!(e["Service"]["Tags"], json!(["v1", "primary"]));
    assert_eq!(e["Service"]["Weights"], json!({"Passing": 3, "Warning": 1}));
    let check_ids: Vec<&str> = e["Checks"].as_array().unwrap().iter().map(|c| c["CheckID"].as_str().unwrap()).collect();
    assert_eq!(check_ids, vec!["serfHealth", "service:web-1"], "node checks first");
    assert_eq!(e["Checks"][1]["Output"], "ok");
    assert_eq!(nacos_healthy(&n, "web", "10.1.2.3", 8080).await, true, "Nacos sees the Consul check's result");
    let agent = get_ok(&n, "/v1/agent/services").await;
    assert_eq!(agent["web-1"]["Meta"], json!({"env": "prod"}));
    let one = client().get(n.url("/v1/agent/service/web-1")).send().await.unwrap();
    let hash = one.headers().get("X-Consul-ContentHash").unwrap().to_str().unwrap().to_string();
    assert_eq!(one.json::<Value>().await.unwrap()["ContentHash"], hash.as_str());
    // Hash blocking: an unchanged service holds the query for the wait, then answers the same hash.
    let t0 = Instant::now();
    let r = client().get(n.url(&format!("/v1/agent/service/web-1?hash={hash}&wait=1s"))).send().await.unwrap();
    assert_eq!(r.headers()["X-Consul-ContentHash"].to_str().unwrap(), hash);
    assert!(t0.elapsed() >= Duration::from_millis(900), "returned early: {:?}", t0.elapsed());
    assert_eq!(get(&n, "/v1/agent/service/nope").await.0, 404);
    assert_eq!(get_ok(&n, "/v1/agent/checks").await["service:web-1"]["Status"], "passing");

    // Re-registering keeps the check's status (Spring re-registers on restart).
    put_ok(&n, "/v1/agent/service/register", def.clone()).await;
    assert_eq!(check_status(&n, "web", "service:web-1").await, "passing");
    put_ok(&n, "/v1/agent/check/fail/service:web-1", json!(null)).await;
    assert!(arr(&get_ok(&n, "/v1/health/service/web?passing=true").await).is_empty());
    assert_eq!(nacos_healthy(&n, "web", "10.1.2.3", 8080).await, false);
    put_ok(&n, "/v1/agent/check/update/service:web-1", json!({"Status": "passing", "Output": "fine"})).await;
    assert_eq!(check_status(&n, "web", "service:web-1").await, "passing");

    // No update for longer than the TTL: the leader turns it critical.
    let t0 = Instant::now();
    eventually(15, "TTL expiry", || async {
        (check_status(&n, "web", "service:web-1").await == "critical").then_some(())
    })
    .await;
    assert!(t0.elapsed() >= Duration::from_millis(1500), "expired too early: {:?}", t0.elapsed());
    let c = get_ok(&n, "/v1/health/checks/web").await;
    assert!(c[0]["Output"].as_str().unwrap().starts_with("TTL expired"), "{c}");

    // Unknown or non-TTL checks: Consul's 500 and text.
    let (s, text) = put(&n, "/v1/agent/check/pass/nope", json!(null)).await;
    assert_eq!((s, text.as_str()), (500, "CheckID \"nope\" does not have associated TTL"));
    let (s, text) = put(&n, "/v1/agent/check/update/service:web-1", json!({"Status": "bogus"})).await;
    assert_eq!((s, text.as_str()), (400, "Invalid check status: 'bogus'"));

    put_ok(&n, "/v1/agent/service/deregister/web-1", json!(null)).await;
    assert!(arr(&get_ok(&n, "/v1/health/service/web").await).is_empty());
    assert!(arr(&get_ok(&n, "/v1/health/checks/web").await).is_empty());
    assert_eq!(get_ok(&n, "/v1/agent/services").await, json!({}));
    assert!(nacos_hosts(&n, "web").await.is_empty());
}

#[tokio::test]
async fn catalog_registrations_and_the_servers_own_node() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let me = get_ok(&n, "/v1/agent/self").await["Config"]["NodeName"].as_str().unwrap().to_string();
    let nodes = get_ok(&n, "/v1/catalog/nodes").await;
    assert_eq!(arr(&nodes).len(), 1);
    assert_eq!(nodes[0]["Node"], me.as_str());
    let svcs = get_ok(&n, "/v1/catalog/services").await;
    assert_eq!(svcs, json!({"consul": []}));
    let consul = get_ok(&n, "/v1/catalog/service/consul").await;
    assert_eq!((&consul[0]["ServicePort"], &consul[0]["Node"]), (&json!(8300), &json!(me.as_str())));
    let checks = get_ok(&n, &format!("/v1/health/node/{me}")).await;
    assert_eq!((&checks[0]["CheckID"], &checks[0]["Status"]), (&json!("serfHealth"), &json!("passing")));

    let reg = json!({"Node": "ext-1", "Address": "192.168.0.10", "NodeMeta": {"rack": "r1"},
        "Service": {"Service": "redis", "ID": "redis-1", "Port": 6379, "Tags": ["primary"], "Weights": {"Passing": 0, "Warning": 0}},
        "Checks": [{"CheckID": "redis-alive", "Name": "alive", "Status": "passing", "ServiceID": "redis-1"},
                   {"CheckID": "ext-ping", "Name": "ping", "Status": "warning"}]});
    let (s, body) = put(&n, "/v1/catalog/register", reg).await;
    assert_eq!((s, body.as_str()), (200, "true"));
    let svcs = get_ok(&n, "/v1/catalog/services").await;
    assert_eq!(svcs, json!({"consul": [], "redis": ["primary"]}));
    let redis = get_ok(&n, "/v1/catalog/service/REDIS?tag=PRIMARY").await;
    assert_eq!(arr(&redis).len(), 1);
    let r = &redis[0];
    assert_eq!(
        (&r["Node"], &r["Address"], &r["ServiceAddress"]),
        (&json!("ext-1"), &json!("192.168.0.10"), &json!("192.168.0.10"))
    );
    assert_eq!(r["ServiceWeights"], json!({"Passing": 1, "Warning": 1}), "invalid catalog weights become 1/1");
    assert!(arr(&get_ok(&n, "/v1/catalog/service/redis?tag=primary&tag=other").await).is_empty(), "tags are ANDed");
    let health = get_ok(&n, "/v1/health/service/redis").await;
    assert_eq!(health[0]["Node"]["ID"], r["ID"], "the same node ids as /catalog/service");
    let ids: Vec<&str> =
        health[0]["Checks"].as_array().unwrap().iter().map(|c| c["CheckID"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["ext-ping", "redis-alive"]);
    assert!(arr(&get_ok(&n, "/v1/health/service/redis?passing").await).is_empty(), "a warning is not passing");
    assert_eq!(arr(&get_ok(&n, "/v1/health/state/warning").await).len(), 1);
    assert_eq!(arr(&get_ok(&n, "/v1/health/state/any").await).len(), 3, "serfHealth and the two");
    assert_eq!(arr(&get_ok(&n, "/v1/catalog/nodes?node-meta=rack:r1").await).len(), 1);
    let node = get_ok(&n, "/v1/catalog/node/EXT-1").await;
    assert_eq!((&node["Node"]["Meta"]["rack"], &node["Services"]["redis-1"]["Port"]), (&json!("r1"), &json!(6379)));
    let ns = get_ok(&n, "/v1/catalog/node-services/ext-1").await;
    assert_eq!(ns["Services"][0]["ID"], "redis-1");
    assert_eq!(get_ok(&n, "/v1/catalog/node/nobody").await, Value::Null);

    let (s, body) = put(&n, "/v1/catalog/deregister", json!({"Node": "ext-1", "ServiceID": "redis-1"})).await;
    assert_eq!((s, body.as_str()), (200, "true"));
    assert!(arr(&get_ok(&n, "/v1/catalog/service/redis").await).is_empty());
    assert_eq!(arr(&get_ok(&n, "/v1/health/node/ext-1").await).len(), 1, "the node check stays");
    put(&n, "/v1/catalog/deregister", json!({"Node": "ext-1"})).await;
    assert_eq!(get_ok(&n, "/v1/catalog/node/ext-1").await, Value::Null);
    assert_eq!(arr(&get_ok(&n, "/v1/catalog/nodes").await).len(), 1);
}

#[tokio::test]
async fn a_blocking_query_wakes_on_a_registration_and_times_out_with_the_same_index() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let (_, index, _) = get(&n, "/v1/catalog/services").await;
    assert!(index > 0, "X-Consul-Index is never 0");
    let t0 = Instant::now();
    let (_, same, _) = get(&n, &format!("/v1/catalog/services?index={index}&wait=1s")).await;
    assert_eq!(same, index);
    assert!(t0.elapsed() >= Duration::from_millis(900), "returned early: {:?}", t0.elapsed());

    let url = n.url(&format!("/v1/catalog/services?index={index}&wait=30s"));
    let waiter = tokio::spawn(async move {
        let r = client().get(url).send().await.unwrap();
        let idx: u64 = r.headers()["X-Consul-Index"].to_str().unwrap().parse().unwrap();
        (Instant::now(), idx, r.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the query did not block");
    let registered = Instant::now();
    put_ok(&n, "/v1/agent/service/register", json!({"Name": "late", "Port": 1})).await;
    let (woke, new_index, body) = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
    assert!(new_index > index);
    assert!(woke.duration_since(registered) < Duration::from_secs(5));
    assert_eq!(body["late"], json!([]));
}

/// A tiny HTTP server answering every request with `status`, which the test can change.
async fn http_server(status: std::sync::Arc<std::sync::atomic::AtomicU16>) -> u16 {
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let code = status.load(std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_leader_runs_http_and_tcp_checks() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let code = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
    let port = http_server(code.clone()).await;
    let def = json!({"Name": "app", "ID": "app-1", "Port": port,
        "Checks": [{"HTTP": format!("http://127.0.0.1:{port}/health"), "Interval": "1s"},
                   {"TCP": format!("127.0.0.1:{port}"), "Interval": "1s", "Timeout": "1s"}]});
    put_ok(&n, "/v1/agent/service/register", def).await;
    eventually(15, "HTTP and TCP checks passing", || async {
        let ok = check_status(&n, "app", "service:app-1:1").await == "passing"
            && check_status(&n, "app", "service:app-1:2").await == "passing";
        ok.then_some(())
    })
    .await;
    assert_eq!(arr(&get_ok(&n, "/v1/health/service/app?passing").await).len(), 1);
    let c = get_ok(&n, "/v1/agent/checks").await;
    assert_eq!((&c["service:app-1:1"]["Type"], &c["service:app-1:1"]["Interval"]), (&json!("http"), &json!("1s")));
    assert_eq!(c["service:app-1:2"]["Definition"]["TCP"], format!("127.0.0.1:{port}"));
    code.store(429, std::sync::atomic::Ordering::Relaxed);
    eventually(15, "429 is a warning", || async {
        (check_status(&n, "app", "service:app-1:1").await == "warning").then_some(())
    })
    .await;
    code.store(500, std::sync::atomic::Ordering::Relaxed);
    eventually(15, "500 is critical", || async {
        (check_status(&n, "app", "service:app-1:1").await == "critical").then_some(())
    })
    .await;
    // The agent's health endpoint answers with the aggregate as the status code.
    let r = client().get(n.url("/v1/agent/health/service/id/app-1?format=text")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (503, "critical".to_string()));
    // A TCP check on a closed port.
    let closed = common::free_port();
    put_ok(
        &n,
        "/v1/agent/check/register",
        json!({"Name": "closed", "TCP": format!("127.0.0.1:{closed}"), "Interval": "1s", "Status": "passing"}),
    )
    .await;
    eventually(15, "closed port is critical", || async {
        let c = get_ok(&n, "/v1/agent/checks").await;
        (c["closed"]["Status"] == "critical").then_some(())
    })
    .await;
}

#[tokio::test]
async fn filters_select_elements() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    for (id, env, tags, port) in
        [("f1", "prod", json!(["a", "b"]), 1), ("f2", "dev", json!(["b"]), 2), ("f3", "prod", json!([]), 3)]
    {
        let def = json!({"Name": "svc", "ID": id, "Port": port, "Tags": tags, "Meta": {"env": env}});
        put_ok(&n, "/v1/agent/service/register", def).await;
    }
    let ids =
        |v: &Value, key: &str| -> Vec<String> { arr(v).iter().map(|e| e[key].as_str().unwrap().to_string()).collect() };
    let q = |f: &str| format!("/v1/catalog/service/svc?filter={}", urlencode(f));
    assert_eq!(ids(&get_ok(&n, &q("ServiceMeta.env == prod")).await, "ServiceID"), vec!["f1", "f3"]);
    assert_eq!(ids(&get_ok(&n, &q("b in ServiceTags and not (ServicePort == 1)")).await, "ServiceID"), vec!["f2"]);
    assert_eq!(
        ids(&get_ok(&n, &q("ServiceTags is empty or ServiceID matches \"^f1$\"")).await, "ServiceID"),
        vec!["f1", "f3"]
    );
    assert_eq!(ids(&get_ok(&n, &q("ServiceID != f1 and ServiceMeta.env contains ro")).await, "ServiceID"), vec!["f3"]);
    let h = get_ok(&n, &format!("/v1/health/service/svc?filter={}", urlencode("Service.Meta.env == dev"))).await;
    assert_eq!(health_ids(&h), vec!["f2"]);
    let agent = get_ok(&n, &format!("/v1/agent/services?filter={}", urlencode("a not in Tags"))).await;
    let mut keys: Vec<&String> = agent.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["f2", "f3"]);
    let (s, _, body) = get(&n, &q("ServiceMeta.env ==")).await;
    assert_eq!(s, 500);
    assert!(body.as_str().unwrap().starts_with("Failed to create boolean expression evaluator: "), "{body}");
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_nacos_instance_is_a_consul_service() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let form = [("serviceName", "orders"), ("ip", "10.9.8.7"), ("port", "9000"), ("metadata", "{\"zone\":\"a\"}")];
    let r = client().post(n.url("/nacos/v1/ns/instance")).form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    let svcs = get_ok(&n, "/v1/catalog/services").await;
    assert_eq!(svcs["orders"], json!([]));
    let c = get_ok(&n, "/v1/catalog/service/orders").await;
    assert_eq!(arr(&c).len(), 1);
    assert_eq!(
        (&c[0]["ServiceAddress"], &c[0]["ServicePort"], &c[0]["Node"]),
        (&json!("10.9.8.7"), &json!(9000), &json!("nacos-10.9.8.7"))
    );
    assert_eq!(c[0]["ServiceMeta"]["zone"], "a");
    let h = get_ok(&n, "/v1/health/service/orders?passing=1").await;
    assert_eq!(arr(&h).len(), 1);
    assert_eq!(h[0]["Node"]["ID"], c[0]["ID"]);
    assert_eq!(h[0]["Checks"][0]["CheckID"], format!("nacos:{}", c[0]["ServiceID"].as_str().unwrap()));
    assert!(arr(&get_ok(&n, "/v1/catalog/nodes").await).iter().any(|x| x["Node"] == "nacos-10.9.8.7"));
    // Disabled on the Nacos side: Consul's passing filter drops it.
    let form = [("serviceName", "orders"), ("ip", "10.9.8.7"), ("port", "9000"), ("enabled", "false")];
    let r = client().put(n.url("/nacos/v1/ns/instance")).form(&form).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(arr(&get_ok(&n, "/v1/health/service/orders?passing=1").await).is_empty());
    assert_eq!(arr(&get_ok(&n, "/v1/health/service/orders").await).len(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let cases = [
        (json!({"Port": 80}), "Missing service name"),
        (json!({"Name": "x", "Address": "0.0.0.0"}), "Invalid service address"),
        (json!({"Name": "x", "Check": {"TTL": "5s", "Status": "bogus"}}), "Status for checks must"),
        (json!({"Name": "x", "Check": {"HTTP": "http://127.0.0.1:1/"}}), "Invalid check: Interval must be > 0"),
        (json!({"Name": "x", "Check": {"Name": "no kind"}}), "Invalid check: TTL must be > 0"),
        (json!({"Name": "x", "Meta": {"consul-x": "1"}}), "Invalid Service Meta"),
        (json!({"Name": "x", "Weights": {"Passing": 0, "Warning": 1}}), "Invalid Weights"),
        (json!({"Name": "x", "Check": {"TTL": "soon"}}), "Request decode failed"),
        (json!({"Name": "x", "Check": {"Args": ["/bin/true"], "Interval": "1s"}}), "Scripts are disabled"),
    ];
    for (body, msg) in cases {
        let (s, text) = put(&n, "/v1/agent/service/register", body.clone()).await;
        assert_eq!(s, 400, "{body}: {text}");
        assert!(text.contains(msg), "{body}: {text}");
    }
    let r = client().put(n.url("/v1/agent/service/register")).body("{not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = client().post(n.url("/v1/agent/service/register")).json(&json!({"Name": "x"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("PUT"));
    assert_eq!(r.text().await.unwrap(), "method POST not allowed");
    assert_eq!(client().put(n.url("/v1/catalog/services")).send().await.unwrap().status().as_u16(), 405);
    let (s, text) = put(&n, "/v1/catalog/register", json!({"Address": "1.2.3.4"})).await;
    assert_eq!((s, text.as_str()), (400, "Must provide node"));
    let (s, text) = put(&n, "/v1/agent/check/register", json!({"Name": "c", "TTL": "5s", "ServiceID": "ghost"})).await;
    assert_eq!((s, text.as_str()), (404, "ServiceID \"ghost\" does not exist"));
    let (s, _) = put(&n, "/v1/agent/service/maintenance/ghost?enable=true", json!(null)).await;
    assert_eq!(s, 404);
    let (s, text) = put(&n, "/v1/agent/maintenance?enable=maybe", json!(null)).await;
    assert_eq!((s, text.as_str()), (400, "Invalid value for enable"));
    assert_eq!(get(&n, "/v1/health/service/x?passing=maybe").await.0, 400);
    assert_eq!(get_ok(&n, "/v1/agent/services").await, json!({}));
    assert_eq!(get_ok(&n, "/v1/agent/checks").await, json!({}));
    assert_eq!(get_ok(&n, "/v1/catalog/services").await, json!({"consul": []}));
}

#[tokio::test]
async fn maintenance_mode_takes_a_service_out_of_passing() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    put_ok(&n, "/v1/agent/service/register", json!({"Name": "m", "ID": "m1", "Port": 1})).await;
    assert_eq!(arr(&get_ok(&n, "/v1/health/service/m?passing").await).len(), 1, "no checks: passing");
    put_ok(&n, "/v1/agent/service/maintenance/m1?enable=true&reason=deploy", json!(null)).await;
    let h = get_ok(&n, "/v1/health/service/m").await;
    let c = arr(&h[0]["Checks"]).into_iter().find(|c| c["CheckID"] == "_service_maintenance:m1").unwrap();
    assert_eq!((&c["Status"], &c["Notes"]), (&json!("critical"), &json!("deploy")));
    assert!(arr(&get_ok(&n, "/v1/health/service/m?passing").await).is_empty());
    assert_eq!(nacos_healthy(&n, "m", "127.0.0.1", 1).await, false);
    let r = client().get(n.url("/v1/agent/health/service/name/m")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()[0]["AggregatedStatus"], "maintenance");
    put_ok(&n, "/v1/agent/service/maintenance/m1?enable=false", json!(null)).await;
    assert_eq!(arr(&get_ok(&n, "/v1/health/service/m?passing").await).len(), 1);
    put_ok(&n, "/v1/agent/maintenance?enable=True", json!(null)).await;
    assert!(arr(&get_ok(&n, "/v1/health/service/m?passing").await).is_empty(), "node maintenance covers its services");
    put_ok(&n, "/v1/agent/maintenance?enable=false", json!(null)).await;
    assert_eq!(nacos_healthy(&n, "m", "127.0.0.1", 1).await, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_registrations_and_ttl_keep_alives_reach_the_leader() {
    let root = tempfile::tempdir().unwrap();
    let nodes = common::start_cluster(root.path(), 3).await;
    let leader = eventually(30, "a leader", || async { common::leader_of(&nodes[0]).await }).await;
    let mut names = Vec::new();
    for n in &nodes {
        names.push(get_ok(n, "/v1/agent/self").await["Config"]["NodeName"].as_str().unwrap().to_string());
    }
    let f = names.iter().position(|x| *x != format!("batata-{leader}")).unwrap();
    let other = &nodes[(f + 1) % 3];
    let def = json!({"Name": "fsvc", "ID": "fsvc-1", "Port": 1, "Check": {"TTL": "3s", "Status": "passing"}});
    put_ok(&nodes[f], "/v1/agent/service/register", def).await;
    let c = get_ok(other, "/v1/catalog/service/fsvc").await;
    assert_eq!(c[0]["Node"], names[f].as_str(), "an agent registration belongs to the node that took it");
    assert_eq!(arr(&get_ok(other, "/v1/catalog/nodes").await).len(), 3, "every server is a node");
    assert_eq!(get_ok(other, "/v1/catalog/service/consul").await.as_array().map(Vec::len), Some(3));
    // Keep-alives sent to the follower keep the check passing past its TTL.
    for _ in 0..7 {
        put_ok(&nodes[f], "/v1/agent/check/pass/service:fsvc-1", json!(null)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(check_status(other, "fsvc", "service:fsvc-1").await, "passing");
    }
    eventually(20, "TTL expiry once the follower's keep-alives stop", || async {
        (check_status(other, "fsvc", "service:fsvc-1").await == "critical").then_some(())
    })
    .await;
    put_ok(&nodes[f], "/v1/agent/check/pass/service:fsvc-1", json!(null)).await;
    assert_eq!(check_status(other, "fsvc", "service:fsvc-1").await, "passing");
}
