//! Black-box tests of the Nacos naming HTTP API (v1, v2, v3) on a real node: registration and
//! queries across versions, HTTP beats and their expiry, persistent instances with TCP checks,
//! refused input, service CRUD and the protection threshold.

mod common;

use std::time::Duration;
use std::time::Instant;

use common::client;
use common::Node;
use common::Ports;
use serde_json::json;
use serde_json::Value;

const INSTANCE: &str = "/nacos/v1/ns/instance";
const LIST: &str = "/nacos/v1/ns/instance/list";
const BEAT: &str = "/nacos/v1/ns/instance/beat";
const SERVICE: &str = "/nacos/v1/ns/service";

async fn start(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.set_env("BATATA_NACOS_NAMING_HEALTH_CHECK_INTERVAL_MS", "500");
    n.start();
    common::wait_ready(&n).await;
    n
}

/// Sends `form` as an urlencoded body; returns status and body text.
async fn send(n: &Node, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = client().request(method, n.url(path)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(n: &Node, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = client().get(n.url(path)).query(query).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn ok(n: &Node, method: reqwest::Method, path: &str, form: &[(&str, &str)]) {
    let (s, body) = send(n, method.clone(), path, form).await;
    assert_eq!((s, body.as_str()), (200, "ok"), "{method} {path} {form:?}");
}

/// `data` of a successful v2/v3 reply.
async fn v2(n: &Node, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
    let (s, body) = send(n, method.clone(), path, form).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({s}): {body}"));
    assert_eq!((s, &v["code"]), (200, &json!(0)), "{method} {path} {form:?}: {v}");
    v["data"].clone()
}

/// The v1 instance detail, `None` on 404.
async fn detail(n: &Node, svc: &str, ip: &str, port: &str) -> Option<Value> {
    let (s, v) = get(n, INSTANCE, &[("serviceName", svc), ("ip", ip), ("port", port)]).await;
    match s {
        200 => Some(v),
        404 => None,
        _ => panic!("detail: {s} {v}"),
    }
}

async fn hosts(n: &Node, query: &[(&str, &str)]) -> Vec<Value> {
    let (s, v) = get(n, LIST, query).await;
    assert_eq!(s, 200, "{v}");
    v["hosts"].as_array().cloned().unwrap_or_else(|| panic!("hosts is not an array: {v}"))
}

fn ids(hosts: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = hosts.iter().map(|h| h["instanceId"].as_str().unwrap_or("").to_string()).collect();
    ids.sort();
    ids
}

async fn beat(n: &Node, form: &[(&str, &str)]) -> Value {
    let (s, body) = send(n, reqwest::Method::PUT, BEAT, form).await;
    assert_eq!(s, 200, "beat {form:?}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn register_query_and_deregister_across_versions() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let form = [
        ("serviceName", "svc"),
        ("ip", "10.0.0.1"),
        ("port", "8080"),
        ("weight", "2.5"),
        ("metadata", r#"{"version":"1"}"#),
    ];
    ok(&n, Method::POST, INSTANCE, &form).await;

    let (s, v) = get(&n, LIST, &[("serviceName", "svc"), ("consistency", "linearizable")]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["name"], &v["groupName"], &v["clusters"]),
        (&json!("DEFAULT_GROUP@@svc"), &json!("DEFAULT_GROUP"), &json!(""))
    );
    let h = &v["hosts"][0];
    let first = ids(std::slice::from_ref(h));
    assert_eq!(h["instanceId"], "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@svc", "{v}");
    assert_eq!(
        (&h["weight"], &h["metadata"], &h["serviceName"]),
        (&json!(2.5), &json!({"version": "1"}), &json!("DEFAULT_GROUP@@svc"))
    );
    assert_eq!(
        (&h["healthy"], &h["enabled"], &h["ephemeral"], &h["clusterName"]),
        (&json!(true), &json!(true), &json!(true), &json!("DEFAULT"))
    );

    // v2 (grouped name too) and the v3 client list (bare instances) agree.
    let d = v2(&n, Method::GET, "/nacos/v2/ns/instance/list?serviceName=svc", &[]).await;
    assert_eq!((&d["name"], ids(d["hosts"].as_array().unwrap())), (&json!("DEFAULT_GROUP@@svc"), first.clone()));
    let d = v2(&n, Method::GET, "/nacos/v3/client/ns/instance/list?serviceName=svc&groupName=DEFAULT_GROUP", &[]).await;
    assert_eq!(ids(d.as_array().unwrap()), first.clone());

    // A second instance through v2 in another group, a third through the v3 admin API.
    let g2 = [("serviceName", "svc2"), ("groupName", "G2"), ("ip", "10.0.0.2"), ("port", "81"), ("clusterName", "c1")];
    assert_eq!(v2(&n, Method::POST, "/nacos/v2/ns/instance", &g2).await, "ok");
    let admin = [("serviceName", "svc"), ("ip", "10.0.0.3"), ("port", "82"), ("enabled", "false")];
    assert_eq!(v2(&n, Method::POST, "/nacos/v3/admin/ns/instance", &admin).await, json!("ok"));
    let d = v2(&n, Method::GET, "/nacos/v3/admin/ns/instance?serviceName=svc&ip=10.0.0.3&port=82", &[]).await;
    assert_eq!((&d["enabled"], &d["serviceName"]), (&json!(false), &json!("DEFAULT_GROUP@@svc")), "{d}");
    // Disabled instances: in the admin list, not in what clients get.
    let d = v2(&n, Method::GET, "/nacos/v3/admin/ns/instance/list?serviceName=svc", &[]).await;
    assert_eq!(d.as_array().unwrap().len(), 2, "{d}");
    assert_eq!(hosts(&n, &[("serviceName", "svc")]).await.len(), 1);
    // An ephemeral service takes no persistent instance.
    let pers = [("serviceName", "svc"), ("ip", "10.0.0.4"), ("port", "83"), ("ephemeral", "false")];
    let (s, body) = send(&n, Method::POST, INSTANCE, &pers).await;
    assert!(s == 400 && body.contains("persistent"), "{s} {body}");
    assert_eq!(ids(&hosts(&n, &[("serviceName", "svc2"), ("groupName", "G2")]).await), ["10.0.0.2#81#c1#G2@@svc2"]);
    assert_eq!(hosts(&n, &[("serviceName", "G2@@svc2"), ("clusters", "other")]).await.len(), 0, "cluster filter");

    // Service lists per version.
    let (_, v) = get(&n, "/nacos/v1/ns/service/list", &[("pageNo", "1"), ("pageSize", "10")]).await;
    assert_eq!(v, json!({"count": 1, "doms": ["svc"]}));
    let d = v2(&n, Method::GET, "/nacos/v2/ns/service/list?groupName=G2", &[]).await;
    assert_eq!(d, json!({"count": 1, "services": ["svc2"]}));
    let d = v2(&n, Method::GET, "/nacos/v3/admin/ns/service/list?namespaceId=public", &[]).await;
    assert_eq!(d["totalCount"], 2, "{d}");
    assert_eq!((&d["pageItems"][0]["name"], &d["pageItems"][0]["ipCount"]), (&json!("svc"), &json!(2)));

    // v1 detail and update (parameters left out keep their values).
    let d = detail(&n, "svc", "10.0.0.1", "8080").await.unwrap();
    assert_eq!(
        d,
        json!({"service": "DEFAULT_GROUP@@svc", "ip": "10.0.0.1", "port": 8080, "clusterName": "DEFAULT",
               "weight": 2.5, "healthy": true, "enabled": true, "ephemeral": true,
               "instanceId": "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@svc", "metadata": {"version": "1"}})
    );
    ok(&n, Method::PUT, INSTANCE, &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "8080"), ("weight", "5")])
        .await;
    let d = detail(&n, "svc", "10.0.0.1", "8080").await.unwrap();
    assert_eq!((&d["weight"], &d["metadata"]), (&json!(5.0), &json!({"version": "1"})));
    let (s, _) = send(&n, Method::PUT, INSTANCE, &[("serviceName", "svc"), ("ip", "10.9.9.9"), ("port", "1")]).await;
    assert_eq!(s, 404, "update of an absent instance");
    let (s, v) = get(&n, "/nacos/v2/ns/instance", &[("serviceName", "svc"), ("ip", "10.9.9.9"), ("port", "1")]).await;
    assert_eq!((s, &v["code"]), (404, &json!(21003)));

    // The v3 client heartbeat: known instance fine, unknown one 21003.
    let hb = [("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "8080"), ("heartBeat", "true")];
    assert_eq!(v2(&n, Method::POST, "/nacos/v3/client/ns/instance", &hb).await, "ok");
    let hb = [("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "8080"), ("heartBeat", "true")];
    let (s, body) = send(&n, Method::POST, "/nacos/v3/client/ns/instance", &hb).await;
    assert_eq!((s, serde_json::from_str::<Value>(&body).unwrap()["code"].clone()), (404, json!(21003)));

    // Metrics probe.
    let (_, v) = get(&n, "/nacos/v1/ns/operator/metrics", &[]).await;
    assert_eq!(v, json!({"status": "UP"}));
    let (_, v) = get(&n, "/nacos/v1/ns/operator/metrics", &[("onlyStatus", "false")]).await;
    assert_eq!((&v["serviceCount"], &v["instanceCount"]), (&json!(2), &json!(3)), "{v}");

    // Deregister per version (v1 with query parameters, as Java 1.x sends DELETE).
    let r = client().delete(n.url("/nacos/v1/ns/instance?serviceName=svc&ip=10.0.0.1&port=8080")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    assert!(detail(&n, "svc", "10.0.0.1", "8080").await.is_none());
    assert_eq!(v2(&n, Method::DELETE, "/nacos/v2/ns/instance", &g2).await, "ok");
    assert_eq!(v2(&n, Method::DELETE, "/nacos/v3/admin/ns/instance", &admin).await, "ok");
    assert!(hosts(&n, &[("serviceName", "svc")]).await.is_empty());
    assert!(hosts(&n, &[("serviceName", "svc2"), ("groupName", "G2")]).await.is_empty());
    // Deregistering what is not there is fine, as in Nacos.
    ok(&n, Method::DELETE, INSTANCE, &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "8080")]).await;
}

#[tokio::test]
async fn beats_keep_an_instance_alive_and_their_absence_expires_it() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let meta = r#"{"preserved.heart.beat.interval":"500","preserved.heart.beat.timeout":"2000","preserved.ip.delete.timeout":"4000"}"#;
    let inst = [("serviceName", "beaty"), ("ip", "10.1.0.1"), ("port", "9000")];
    let mut reg = inst.to_vec();
    reg.push(("metadata", meta));
    ok(&n, Method::POST, INSTANCE, &reg).await;
    let (_, v) = get(&n, LIST, &[("serviceName", "beaty")]).await;
    assert_eq!(
        (&v["hosts"][0]["instanceHeartBeatTimeOut"], &v["hosts"][0]["ipDeleteTimeout"]),
        (&json!(2000), &json!(4000))
    );

    // Beating every 500 ms for 3 s, past the 2 s timeout: stays healthy.
    for _ in 0..6 {
        let b = beat(&n, &inst).await;
        assert_eq!(b, json!({"clientBeatInterval": 500, "code": 10200, "lightBeatEnabled": true}));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(detail(&n, "beaty", "10.1.0.1", "9000").await.unwrap()["healthy"], true);

    // Silence: unhealthy after the 2 s timeout (not before), still listed in the detail.
    let silent = Instant::now();
    beat(&n, &inst).await;
    common::eventually(8, "unhealthy without beats", || async {
        let d = detail(&n, "beaty", "10.1.0.1", "9000").await?;
        (d["healthy"] == false).then_some(())
    })
    .await;
    assert!(silent.elapsed() >= Duration::from_millis(1900), "unhealthy after {:?}", silent.elapsed());

    // A beat (v2 this time) brings it back.
    let beaten = Instant::now();
    let d = v2(&n, Method::PUT, "/nacos/v2/ns/instance/beat", &inst).await;
    assert_eq!(d["code"], 10200);
    common::eventually(4, "healthy again after a beat", || async {
        let d = detail(&n, "beaty", "10.1.0.1", "9000").await?;
        (d["healthy"] == true).then_some(())
    })
    .await;

    // Silence again: removed after the 4 s delete timeout.
    common::eventually(10, "removed without beats", || async {
        detail(&n, "beaty", "10.1.0.1", "9000").await.is_none().then_some(())
    })
    .await;
    assert!(beaten.elapsed() >= Duration::from_millis(3900), "removed after {:?}", beaten.elapsed());

    // Unknown instance: without a beat body the client must register again (20404); with one
    // (light beats off, ip/port only in the JSON) it is registered from the beat.
    let b = beat(&n, &inst).await;
    assert_eq!(b["code"], 20404);
    assert!(hosts(&n, &[("serviceName", "beaty")]).await.is_empty());
    let body = r#"{"ip":"10.1.0.2","port":9001,"cluster":"c1","weight":3.0,"serviceName":"DEFAULT_GROUP@@beaty","metadata":{"k":"v"},"scheduled":true,"period":5000,"stopped":false}"#;
    let b = beat(&n, &[("serviceName", "beaty"), ("beat", body)]).await;
    assert_eq!(b["code"], 10200);
    let h = hosts(&n, &[("serviceName", "beaty")]).await;
    assert_eq!(ids(&h), ["10.1.0.2#9001#c1#DEFAULT_GROUP@@beaty"]);
    assert_eq!((&h[0]["weight"], &h[0]["metadata"]["k"], &h[0]["ephemeral"]), (&json!(3.0), &json!("v"), &json!(true)));
    // A beat describing an invalid instance registers nothing.
    let bad = r#"{"ip":"10.1.0.3","port":70000}"#;
    let (s, _) = send(&n, Method::PUT, BEAT, &[("serviceName", "beaty"), ("beat", bad)]).await;
    assert_eq!(s, 400);
    assert_eq!(hosts(&n, &[("serviceName", "beaty")]).await.len(), 1);
}

#[tokio::test]
async fn persistent_instance_follows_its_tcp_check() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // Never accepted: the kernel completes the checks' handshakes (a few, far below the backlog).
    let form = [("serviceName", "pers"), ("ip", "127.0.0.1"), ("port", port.as_str()), ("ephemeral", "false")];
    ok(&n, Method::POST, INSTANCE, &form).await;
    let d = detail(&n, "pers", "127.0.0.1", &port).await.unwrap();
    assert_eq!((&d["ephemeral"], &d["healthy"]), (&json!(false), &json!(true)));

    // No beats, but the port answers: healthy well past the beat timeouts' scale of checks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(detail(&n, "pers", "127.0.0.1", &port).await.unwrap()["healthy"], true);
    // The operator health endpoint refuses ephemeral instances but accepts persistent ones.
    ok(&n, Method::POST, INSTANCE, &[("serviceName", "eph"), ("ip", "10.2.0.1"), ("port", "1")]).await;
    let (s, _) = send(
        &n,
        Method::PUT,
        "/nacos/v1/ns/health/instance",
        &[("serviceName", "eph"), ("ip", "10.2.0.1"), ("port", "1"), ("healthy", "false")],
    )
    .await;
    assert_eq!(s, 400, "health of an ephemeral instance cannot be set");

    // The port closes: unhealthy after three failed checks.
    drop(listener);
    common::eventually(15, "unhealthy once the port is closed", || async {
        let d = detail(&n, "pers", "127.0.0.1", &port).await?;
        (d["healthy"] == false).then_some(())
    })
    .await;
    // It stays registered: persistent instances are only removed by a deregistration.
    assert_eq!(hosts(&n, &[("serviceName", "pers")]).await.len(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_and_stores_nothing() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let huge = format!(r#"{{"k":"{}"}}"#, "v".repeat(70_000));
    // (parameters overriding a valid registration, v2 error code, part of the v1 message)
    type Case<'a> = (Vec<(&'a str, &'a str)>, i64, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("port", "70000")], 20002, "range"),
        (vec![("port", "-1")], 20002, "range"),
        (vec![("port", "eighty")], 20002, "port must be a number"),
        (vec![("ip", "1.2.3.999")], 20002, "ip"),
        (vec![("weight", "-1")], 20002, "weight"),
        (vec![("clusterName", "a_b")], 20002, "cluster"),
        (vec![("metadata", huge.as_str())], 20002, "metadata"),
        (vec![("metadata", "{broken")], 20002, "metadata"),
        (vec![("namespaceId", "no-such-ns")], 22001, "Namespace"),
        (vec![("serviceName", "@@x")], 20002, "serviceName"),
        (vec![("ephemeral", "maybe")], 20002, "ephemeral"),
    ];
    for (over, v2_code, says) in &cases {
        let mut form: Vec<(&str, &str)> = vec![("serviceName", "svc"), ("ip", "10.3.0.1"), ("port", "80")];
        for (k, v) in over {
            form.retain(|(fk, _)| fk != k);
            form.push((k, v));
        }
        let (s, body) = send(&n, Method::POST, INSTANCE, &form).await;
        assert_eq!(s, 400, "v1 {over:?}: {body}");
        assert!(body.contains(says), "v1 {over:?}: {body}");
        let (s, body) = send(&n, Method::POST, "/nacos/v2/ns/instance", &form).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((s, &v["code"]), (400, &json!(v2_code)), "v2 {over:?}: {v}");
        let (s, body) = send(&n, Method::POST, "/nacos/v3/admin/ns/instance", &form).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((s, &v["code"]), (400, &json!(v2_code)), "v3 {over:?}: {v}");
    }
    // Missing parameters: 400, and v2's "parameter missing".
    for missing in ["ip", "port", "serviceName"] {
        let mut form = vec![("serviceName", "svc"), ("ip", "10.3.0.1"), ("port", "80")];
        form.retain(|(k, _)| *k != missing);
        let (s, body) = send(&n, Method::POST, INSTANCE, &form).await;
        assert!(s == 400 && body.contains(missing), "v1 without {missing}: {s} {body}");
        let (s, body) = send(&n, Method::POST, "/nacos/v2/ns/instance", &form).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((s, &v["code"]), (400, &json!(10000)), "v2 without {missing}: {v}");
    }
    // Services refuse bad settings too.
    for (k, v) in [("protectThreshold", "1.5"), ("protectThreshold", "x"), ("selector", r#"{"type":"magic"}"#)] {
        let (s, body) = send(&n, Method::POST, SERVICE, &[("serviceName", "svc"), (k, v)]).await;
        assert_eq!(s, 400, "service {k}={v}: {body}");
    }

    // Nothing was stored anywhere.
    assert!(hosts(&n, &[("serviceName", "svc")]).await.is_empty());
    assert!(hosts(&n, &[("serviceName", "svc"), ("namespaceId", "no-such-ns")]).await.is_empty());
    let (_, v) = get(&n, "/nacos/v1/ns/service/list", &[("pageNo", "1"), ("pageSize", "10")]).await;
    assert_eq!(v, json!({"count": 0, "doms": []}));
    let d = v2(&n, Method::GET, "/nacos/v3/admin/ns/service/list", &[]).await;
    assert_eq!(d["totalCount"], 0, "{d}");

    // Once the namespace exists, the same registration is accepted, and kept apart from public.
    let ns = [("customNamespaceId", "no-such-ns"), ("namespaceName", "later")];
    let (s, body) = send(&n, Method::POST, "/nacos/v1/console/namespaces", &ns).await;
    assert_eq!((s, body.as_str()), (200, "true"));
    let form = [("serviceName", "svc"), ("ip", "10.3.0.1"), ("port", "80"), ("namespaceId", "no-such-ns")];
    ok(&n, Method::POST, INSTANCE, &form).await;
    assert_eq!(hosts(&n, &[("serviceName", "svc"), ("namespaceId", "no-such-ns")]).await.len(), 1);
    assert!(hosts(&n, &[("serviceName", "svc")]).await.is_empty());
}

#[tokio::test]
async fn service_crud_and_protection_threshold() {
    use reqwest::Method;
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let svc = [("serviceName", "s1")];

    // Create, read, update.
    ok(
        &n,
        Method::POST,
        SERVICE,
        &[("serviceName", "s1"), ("protectThreshold", "0.5"), ("metadata", r#"{"team":"a"}"#)],
    )
    .await;
    let (s, v) = get(&n, SERVICE, &svc).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"namespaceId": "public", "groupName": "DEFAULT_GROUP", "name": "s1", "protectThreshold": 0.5,
               "metadata": {"team": "a"}, "selector": {"type": "none"}, "clusters": []})
    );
    let (s, _) = send(&n, Method::POST, SERVICE, &svc).await;
    assert!(s >= 400, "creating an existing service fails: {s}");
    ok(
        &n,
        Method::PUT,
        SERVICE,
        &[("serviceName", "s1"), ("metadata", "team=b"), ("selector", r#"{"type":"label","expression":"x"}"#)],
    )
    .await;
    let (_, v) = get(&n, SERVICE, &svc).await;
    assert_eq!(
        (&v["protectThreshold"], &v["metadata"], &v["selector"]["type"]),
        (&json!(0.5), &json!({"team": "b"}), &json!("label"))
    );
    let d = v2(&n, Method::GET, "/nacos/v2/ns/service?serviceName=s1", &[]).await;
    assert_eq!(
        (&d["serviceName"], &d["protectThreshold"], &d["metadata"]["team"]),
        (&json!("s1"), &json!(0.5), &json!("b"))
    );
    assert_eq!(
        v2(&n, Method::PUT, "/nacos/v3/admin/ns/service", &[("serviceName", "s1"), ("protectThreshold", "0.6")]).await,
        "ok"
    );
    let d = v2(&n, Method::GET, "/nacos/v3/console/ns/service?serviceName=s1", &[]).await;
    assert_eq!(d["protectThreshold"], 0.6);

    // Two persistent instances in a cluster checked by nobody (NONE): health is the operator's.
    let cluster = [
        ("serviceName", "s1"),
        ("clusterName", "DEFAULT"),
        ("healthChecker", r#"{"type":"NONE"}"#),
        ("checkPort", "1"),
        ("useInstancePort4Check", "false"),
    ];
    ok(&n, Method::PUT, "/nacos/v1/ns/cluster", &cluster).await;
    let (s, _) = send(
        &n,
        Method::PUT,
        "/nacos/v1/ns/cluster",
        &[("serviceName", "s1"), ("clusterName", "DEFAULT"), ("healthChecker", r#"{"type":"PING"}"#)],
    )
    .await;
    assert_eq!(s, 400, "unknown checker type");
    let (_, v) = get(&n, SERVICE, &svc).await;
    assert_eq!(
        (&v["clusters"][0]["name"], &v["clusters"][0]["healthChecker"]),
        (&json!("DEFAULT"), &json!({"type": "NONE"})),
        "{v}"
    );
    for port in ["1", "2"] {
        ok(
            &n,
            Method::POST,
            INSTANCE,
            &[("serviceName", "s1"), ("ip", "127.0.0.1"), ("port", port), ("ephemeral", "false")],
        )
        .await;
    }
    let down = [("serviceName", "s1"), ("ip", "127.0.0.1"), ("port", "2"), ("healthy", "false")];
    ok(&n, Method::PUT, "/nacos/v1/ns/health/instance", &down).await;
    assert_eq!(detail(&n, "s1", "127.0.0.1", "2").await.unwrap()["healthy"], false);

    // 1 of 2 healthy (0.5) is under the 0.6 threshold: every instance, marked healthy.
    let (_, v) = get(&n, LIST, &[("serviceName", "s1"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], true, "{v}");
    assert_eq!(v["hosts"].as_array().unwrap().len(), 2);
    assert!(v["hosts"].as_array().unwrap().iter().all(|h| h["healthy"] == true));
    // Threshold 0.4: the unhealthy one is left out.
    ok(&n, Method::PUT, SERVICE, &[("serviceName", "s1"), ("protectThreshold", "0.4")]).await;
    let (_, v) = get(&n, LIST, &[("serviceName", "s1"), ("healthyOnly", "true")]).await;
    assert_eq!(
        (&v["reachProtectionThreshold"], ids(v["hosts"].as_array().unwrap())),
        (&json!(false), vec!["127.0.0.1#1#DEFAULT#DEFAULT_GROUP@@s1".to_string()])
    );
    // Health set through v2 as well; the NONE checker leaves it alone.
    assert_eq!(
        v2(
            &n,
            Method::PUT,
            "/nacos/v2/ns/health/instance",
            &[("serviceName", "s1"), ("ip", "127.0.0.1"), ("port", "2"), ("healthy", "true")]
        )
        .await,
        "ok"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hosts(&n, &[("serviceName", "s1"), ("healthyOnly", "true")]).await.len(), 2);

    // A service with instances cannot be deleted.
    let (s, body) = send(&n, Method::DELETE, SERVICE, &svc).await;
    assert_eq!(s, 400);
    assert!(body.contains("not empty"), "{body}");
    let (s, body) = send(&n, Method::DELETE, "/nacos/v2/ns/service", &svc).await;
    assert_eq!(s, 400, "{body}");
    for port in ["1", "2"] {
        ok(&n, Method::DELETE, INSTANCE, &[("serviceName", "s1"), ("ip", "127.0.0.1"), ("port", port)]).await;
    }
    ok(&n, Method::DELETE, SERVICE, &svc).await;

    // Gone: v1 answers 400 (as Nacos), v2 21008, and updates fail too.
    let (s, _) = get(&n, SERVICE, &svc).await;
    assert_eq!(s, 400);
    let (s, v) = get(&n, "/nacos/v2/ns/service", &svc).await;
    assert_eq!((s, &v["code"]), (404, &json!(21008)));
    let (s, _) = send(&n, Method::PUT, SERVICE, &[("serviceName", "s1"), ("protectThreshold", "0.1")]).await;
    assert_eq!(s, 400);
    let (s, _) = send(&n, Method::PUT, "/nacos/v1/ns/cluster", &cluster).await;
    assert_eq!(s, 400, "cluster of a missing service");
    let (s, _) = send(&n, Method::DELETE, SERVICE, &svc).await;
    assert_eq!(s, 400);

    // Created through v2 and removed through v3 console.
    assert_eq!(v2(&n, Method::POST, "/nacos/v2/ns/service", &[("serviceName", "s2"), ("groupName", "G")]).await, "ok");
    let d = v2(&n, Method::GET, "/nacos/v3/console/ns/service/list?groupNameParam=G", &[]).await;
    assert_eq!((&d["totalCount"], &d["pageItems"][0]["name"]), (&json!(1), &json!("s2")), "{d}");
    assert_eq!(
        v2(&n, Method::DELETE, "/nacos/v3/console/ns/service", &[("serviceName", "s2"), ("groupName", "G")]).await,
        "ok"
    );
    let (_, v) = get(&n, "/nacos/v1/ns/service/list", &[("groupName", "G")]).await;
    assert_eq!(v["count"], 0);
}
