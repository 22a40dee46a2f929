//! Black-box tests of the Consul KV, transaction, session, event and config export/import API on
//! a real node: CRUD and listings, CAS, u64 flags, index rules (404s carry X-Consul-Index, never
//! 0, rising on deletes), blocking queries, refused input (Consul's status, nothing stored),
//! locks with lock-delay and Behavior, TTL expiry, transactions and the Consul-format export and
//! import of Nacos configs.
//!
//! `session_ttl_expires_at_twice_the_ttl` waits for a 10 s session to lapse (Consul expires at
//! 2 × TTL): it takes about 25 s.

mod common;

use std::time::Duration;
use std::time::Instant;

use common::client;
use common::Node;
use common::Ports;
use reqwest::Method;
use serde_json::json;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

async fn start(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.start();
    common::wait_ready(&n).await;
    n
}

struct Reply {
    status: u16,
    index: Option<u64>,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }
}

async fn call(n: &Node, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Reply {
    let r = client().request(method, n.url(path)).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let index = headers.get("x-consul-index").map(|v| v.to_str().unwrap().parse().unwrap());
    Reply { status, index, headers, text: r.text().await.unwrap() }
}

async fn get(n: &Node, path: &str) -> Reply {
    call(n, Method::GET, path, "").await
}

async fn put(n: &Node, path: &str, body: &str) -> Reply {
    call(n, Method::PUT, path, body.to_string()).await
}

/// PUT that must answer 200 with `true` or `false`.
async fn put_bool(n: &Node, path: &str, body: &str) -> bool {
    let r = put(n, path, body).await;
    assert_eq!(r.status, 200, "PUT {path}: {}", r.text);
    r.json().as_bool().unwrap_or_else(|| panic!("PUT {path}: not a boolean: {}", r.text))
}

/// Sends bytes as they are (paths a URL library would normalize, chunked bodies); returns the
/// status and the body.
async fn raw(n: &Node, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", n.ports.http)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_else(|| panic!("not base64: {v}")));
    String::from_utf8(b.unwrap()).unwrap()
}

/// A DirEntry's decoded value.
fn value_of(entry: &Value) -> String {
    b64(&entry["Value"])
}

#[tokio::test]
async fn kv_crud_listings_and_index_rules() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    // A miss on a fresh store: 404 with an index header, never 0.
    let r = get(&n, "/v1/kv/app/missing").await;
    assert_eq!((r.status, r.text.as_str()), (404, ""));
    assert!(r.index.unwrap() >= 1);
    assert!(put_bool(&n, "/v1/kv/app/a?flags=18446744073709551615", "hello").await);
    assert!(put_bool(&n, "/v1/kv/app/sub/x", "").await);
    assert!(put_bool(&n, "/v1/kv/app/sub/y", "y").await);
    assert!(put_bool(&n, "/v1/kv/apple", "z").await);
    let r = get(&n, "/v1/kv/app/a").await;
    let e = &r.json()[0];
    assert_eq!((e["Key"].as_str(), value_of(e).as_str()), (Some("app/a"), "hello"));
    assert_eq!(e["Flags"].as_u64(), Some(u64::MAX), "flags are a full u64");
    assert!(e.get("Session").is_none(), "Session is omitted when unlocked");
    assert_eq!(r.index, e["ModifyIndex"].as_u64());
    // An update resets flags, keeps CreateIndex.
    assert!(put_bool(&n, "/v1/kv/app/a", "v2").await);
    let e2 = get(&n, "/v1/kv/app/a").await.json()[0].clone();
    assert_eq!((e2["Flags"].as_u64(), &e2["CreateIndex"]), (Some(0), &e["CreateIndex"]));
    // recurse: byte prefix, key order, null for an empty value.
    let list = get(&n, "/v1/kv/app?recurse").await.json();
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["app/a", "app/sub/x", "app/sub/y", "apple"]);
    assert_eq!(list[1]["Value"], Value::Null);
    assert_eq!(get(&n, "/v1/kv/app/?keys&separator=/").await.json(), json!(["app/a", "app/sub/"]));
    assert_eq!(get(&n, "/v1/kv/app/?keys&seperator=/").await.json(), json!(["app/a", "app/sub/"]));
    assert_eq!(get(&n, "/v1/kv/app/?keys").await.json(), json!(["app/a", "app/sub/x", "app/sub/y"]));
    assert_eq!(get(&n, "/v1/kv/nothing/?recurse").await.status, 404);
    assert_eq!(get(&n, "/v1/kv/nothing/?keys").await.status, 404);
    assert_eq!(get(&n, "/v1/kv/").await.status, 400, "no key without recurse/keys");
    // raw: the bytes, as text/plain with the XSS headers.
    let r = get(&n, "/v1/kv/app/a?raw").await;
    assert_eq!((r.status, r.text.as_str()), (200, "v2"));
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    // Deleting the newest key of a prefix raises the prefix's index (tombstones).
    let before = get(&n, "/v1/kv/app/sub/?recurse").await.index.unwrap();
    assert!(call(&n, Method::DELETE, "/v1/kv/app/sub/y", "").await.json().as_bool().unwrap());
    let after = get(&n, "/v1/kv/app/sub/?recurse").await;
    assert_eq!(after.json().as_array().unwrap().len(), 1);
    assert!(after.index.unwrap() > before, "delete must raise the list index: {before} -> {:?}", after.index);
    // recurse delete, then the prefix is a 404 whose index still covers the deletes.
    assert!(call(&n, Method::DELETE, "/v1/kv/app/?recurse", "").await.json().as_bool().unwrap());
    let r = get(&n, "/v1/kv/app/?recurse").await;
    assert_eq!(r.status, 404);
    assert!(r.index.unwrap() > after.index.unwrap());
    assert_eq!(get(&n, "/v1/kv/apple").await.status, 200, "a recursive delete is prefix-bound");
    // An idempotent PUT keeps the ModifyIndex.
    assert!(put_bool(&n, "/v1/kv/same", "x").await);
    let i1 = get(&n, "/v1/kv/same").await.index;
    assert!(put_bool(&n, "/v1/kv/same", "x").await);
    assert_eq!(get(&n, "/v1/kv/same").await.index, i1);
}

#[tokio::test]
async fn cas_puts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    assert!(put_bool(&n, "/v1/kv/c?cas=0", "1").await, "cas=0 creates an absent key");
    assert!(!put_bool(&n, "/v1/kv/c?cas=0", "2").await, "cas=0 never overwrites");
    let idx = get(&n, "/v1/kv/c").await.json()[0]["ModifyIndex"].as_u64().unwrap();
    assert!(!put_bool(&n, &format!("/v1/kv/c?cas={}", idx + 100), "2").await);
    assert!(put_bool(&n, &format!("/v1/kv/c?cas={idx}"), "2").await);
    assert_eq!(value_of(&get(&n, "/v1/kv/c").await.json()[0]), "2");
    let r = call(&n, Method::DELETE, &format!("/v1/kv/c?cas={idx}"), "").await;
    assert_eq!(r.json(), json!(false), "stale delete-cas");
    let idx = get(&n, "/v1/kv/c").await.json()[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(call(&n, Method::DELETE, &format!("/v1/kv/c?cas={idx}"), "").await.json(), json!(true));
    assert_eq!(get(&n, "/v1/kv/c").await.status, 404);
}

#[tokio::test]
async fn blocking_queries_wake_on_change_and_time_out_with_the_same_index() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    assert!(put_bool(&n, "/v1/kv/w/k", "1").await);
    let idx = get(&n, "/v1/kv/w/k").await.index.unwrap();
    // Times out after ~1 s with the same index.
    let t = Instant::now();
    let r = get(&n, &format!("/v1/kv/w/k?index={idx}&wait=1s")).await;
    let took = t.elapsed();
    assert_eq!((r.status, r.index), (200, Some(idx)));
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "took {took:?}");
    // Wakes on a change made while it waits.
    let url = n.url(&format!("/v1/kv/w/k?index={idx}&wait=30s"));
    let waiter = tokio::spawn(async move { client().get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the blocking query returned before any change");
    assert!(put_bool(&n, "/v1/kv/w/k", "2").await);
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("not woken").unwrap();
    let new_idx: u64 = r.headers()["x-consul-index"].to_str().unwrap().parse().unwrap();
    assert!(new_idx > idx);
    let body: Value = r.json().await.unwrap();
    assert_eq!(value_of(&body[0]), "2");
    // A blocking list wakes when its last key is deleted (the tombstone raises its index).
    let list_idx = get(&n, "/v1/kv/w/?recurse").await.index.unwrap();
    let url = n.url(&format!("/v1/kv/w/?recurse&index={list_idx}&wait=30s"));
    let waiter = tokio::spawn(async move { client().get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    call(&n, Method::DELETE, "/v1/kv/w/k", "").await;
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("list not woken").unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["x-consul-index"].to_str().unwrap().parse::<u64>().unwrap() > list_idx);
}

#[tokio::test]
async fn bad_input_gets_consuls_status_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    let r = get(&n, "/v1/kv/x?stale&consistent").await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("Cannot specify ?stale with ?consistent"), "{}", r.text);
    // `..` segments, sent exactly as written (a URL library would resolve them).
    let req = "PUT /v1/kv/a/../b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
    assert_eq!(raw(&n, req.as_bytes()).await.0, 400);
    assert_eq!(put(&n, "/v1/kv/a/..%2Fb", "x").await.status, 400);
    assert_eq!(get(&n, "/v1/kv/?recurse").await.status, 404, "nothing was stored");
    // 512 KiB is accepted; one byte more is 413, with and without Content-Length.
    let max = "v".repeat(512 * 1024);
    assert!(put_bool(&n, "/v1/kv/big", &max).await);
    let over = format!("{max}v");
    let r = put(&n, "/v1/kv/big2", &over).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("too large"), "{}", r.text);
    let mut chunked =
        b"PUT /v1/kv/big3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for part in over.as_bytes().chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(&n, &chunked).await.0, 413);
    assert_eq!(get(&n, "/v1/kv/big2").await.status, 404);
    assert_eq!(get(&n, "/v1/kv/big3").await.status, 404);
    // Conflicting flags, bad numbers, wrong method.
    let r = put(&n, "/v1/kv/k?cas=0&acquire=s", "x").await;
    assert_eq!((r.status, r.text.as_str()), (400, "Conflicting flags: cas=0&acquire=s"));
    assert_eq!(call(&n, Method::DELETE, "/v1/kv/k?recurse&cas=1", "").await.status, 400);
    assert_eq!(put(&n, "/v1/kv/k?flags=-1", "x").await.status, 400);
    assert_eq!(put(&n, "/v1/kv/", "x").await.status, 400);
    let r = call(&n, Method::POST, "/v1/kv/k", "x").await;
    assert_eq!((r.status, r.text.as_str()), (405, "method POST not allowed"));
    assert!(r.headers["allow"].to_str().unwrap().contains("PUT"));
    assert_eq!(get(&n, "/v1/txn").await.status, 405);
    assert_eq!(get(&n, "/v1/session/create").await.status, 405);
    assert_eq!(get(&n, "/v1/kv/k").await.status, 404, "nothing was stored");
}

async fn session(n: &Node, body: Value) -> String {
    let r = put(n, "/v1/session/create", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["ID"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sessions_and_locks() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    // Defaults: LockDelay 15 s in ns, release, serfHealth, this agent's node.
    let s1 = session(&n, json!({"Name": "one"})).await;
    let r = get(&n, &format!("/v1/session/info/{s1}")).await;
    let info = &r.json()[0];
    assert_eq!((info["LockDelay"].as_u64(), info["Behavior"].as_str()), (Some(15_000_000_000), Some("release")));
    assert_eq!((&info["NodeChecks"], info["TTL"].as_str()), (&json!(["serfHealth"]), Some("")));
    assert!(r.index.unwrap() >= 1);
    let node = info["Node"].as_str().unwrap().to_string();
    // py-consul style lowercase keys; lock delay in seconds below 1000.
    let s2 = session(&n, json!({"name": "two", "lockdelay": 2, "ttl": "30s"})).await;
    assert_eq!(get(&n, &format!("/v1/session/info/{s2}")).await.json()[0]["LockDelay"], json!(2_000_000_000u64));
    assert_eq!(get(&n, "/v1/session/list").await.json().as_array().unwrap().len(), 2);
    assert_eq!(get(&n, &format!("/v1/session/node/{node}")).await.json().as_array().unwrap().len(), 2);
    assert_eq!(get(&n, "/v1/session/info/unknown").await.json(), json!([]));
    assert_eq!(put(&n, &format!("/v1/session/renew/{s2}"), "").await.json()[0]["ID"], json!(s2));
    let r = put(&n, "/v1/session/renew/unknown", "").await;
    assert_eq!((r.status, r.text.as_str()), (404, "Session id 'unknown' not found"));
    let r = put(&n, "/v1/session/create", r#"{"TTL": "5s"}"#).await;
    assert_eq!(r.status, 500, "TTL below 10 s: {}", r.text);
    assert_eq!(put(&n, "/v1/session/create", r#"{"Behavior": "keep"}"#).await.status, 500);
    // Acquire: unknown session is 500, held by another is false, re-acquire keeps LockIndex.
    let r = put(&n, "/v1/kv/lock?acquire=nope", "x").await;
    assert_eq!((r.status, r.text.as_str()), (500, "invalid session \"nope\""));
    assert!(put_bool(&n, &format!("/v1/kv/lock?acquire={s2}"), "held").await);
    assert!(!put_bool(&n, &format!("/v1/kv/lock?acquire={s1}"), "x").await);
    assert!(!put_bool(&n, &format!("/v1/kv/lock?release={s1}"), "x").await);
    assert!(put_bool(&n, &format!("/v1/kv/lock?acquire={s2}"), "again").await);
    let e = get(&n, "/v1/kv/lock").await.json()[0].clone();
    assert_eq!((e["Session"].as_str(), e["LockIndex"].as_u64()), (Some(s2.as_str()), Some(1)));
    // Destroying the holder releases the key and starts its 2 s lock-delay.
    assert_eq!(put(&n, &format!("/v1/session/destroy/{s2}"), "").await.json(), json!(true));
    let e = get(&n, "/v1/kv/lock").await.json()[0].clone();
    assert!(e.get("Session").is_none() && value_of(&e) == "again");
    assert!(!put_bool(&n, &format!("/v1/kv/lock?acquire={s1}"), "mine").await, "acquire during lock-delay");
    let t = Instant::now();
    while !put_bool(&n, &format!("/v1/kv/lock?acquire={s1}"), "mine").await {
        assert!(t.elapsed() < Duration::from_secs(5), "lock-delay never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&n, "/v1/kv/lock").await.json()[0]["LockIndex"], json!(2));
    // Release writes the body, no lock-delay: another session acquires at once.
    assert!(put_bool(&n, &format!("/v1/kv/lock?release={s1}"), "free").await);
    assert_eq!(value_of(&get(&n, "/v1/kv/lock").await.json()[0]), "free");
    let s3 = session(&n, json!({"Behavior": "delete", "LockDelay": "0s"})).await;
    assert!(put_bool(&n, &format!("/v1/kv/lock?acquire={s3}"), "eph").await);
    assert!(put_bool(&n, &format!("/v1/kv/eph?acquire={s3}"), "eph").await);
    // Behavior=delete: the held keys go with the session.
    assert_eq!(put(&n, &format!("/v1/session/destroy/{s3}"), "").await.json(), json!(true));
    assert_eq!(get(&n, "/v1/kv/lock").await.status, 404);
    assert_eq!(get(&n, "/v1/kv/eph").await.status, 404);
    assert_eq!(put(&n, &format!("/v1/session/destroy/{s3}"), "").await.json(), json!(true), "idempotent");
    assert_eq!(get(&n, "/v1/session/list").await.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_critical_check_invalidates_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    let r = put(&n, "/v1/session/create", r#"{"Checks": ["serfHealth", "nope"]}"#).await;
    assert_eq!((r.status, r.text.as_str()), (500, "Missing check 'nope' registration"));
    let r = put(&n, "/v1/session/create", r#"{"Node": "no-such-node"}"#).await;
    assert_eq!((r.status, r.text.as_str()), (500, "Missing node registration"));
    assert_eq!(put(&n, "/v1/agent/check/register", r#"{"Name": "c1", "TTL": "60s"}"#).await.status, 200);
    // A TTL check starts critical: no session may rest on it yet.
    let r = put(&n, "/v1/session/create", r#"{"Checks": ["serfHealth", "c1"]}"#).await;
    assert_eq!((r.status, r.text.as_str()), (500, "Check 'c1' is in critical state"));
    assert_eq!(get(&n, "/v1/session/list").await.json(), json!([]), "nothing was stored");
    assert_eq!(put(&n, "/v1/agent/check/pass/c1", "").await.status, 200);
    let s = session(&n, json!({"Checks": ["serfHealth", "c1"], "LockDelay": "0s"})).await;
    let other = session(&n, json!({})).await;
    assert!(put_bool(&n, &format!("/v1/kv/guarded?acquire={s}"), "v").await);
    // Warning does not invalidate; critical does, on the leader's next tick.
    assert_eq!(put(&n, "/v1/agent/check/warn/c1", "").await.status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(get(&n, &format!("/v1/session/info/{s}")).await.json()[0]["ID"], json!(s));
    assert_eq!(put(&n, "/v1/agent/check/fail/c1", "").await.status, 200);
    common::eventually(10, "the session on a critical check is invalidated", || async {
        (get(&n, &format!("/v1/session/info/{s}")).await.json() == json!([])).then_some(())
    })
    .await;
    assert!(get(&n, "/v1/kv/guarded").await.json()[0].get("Session").is_none());
    assert_eq!(get(&n, &format!("/v1/session/info/{other}")).await.json()[0]["ID"], json!(other));
}

#[tokio::test]
async fn session_ttl_expires_at_twice_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    let lapsing = session(&n, json!({"TTL": "10s", "LockDelay": "0s"})).await;
    let renewed = session(&n, json!({"TTL": "10s"})).await;
    assert!(put_bool(&n, &format!("/v1/kv/ttl?acquire={lapsing}"), "v").await);
    let t = Instant::now();
    loop {
        assert_eq!(put(&n, &format!("/v1/session/renew/{renewed}"), "").await.status, 200);
        let gone = get(&n, &format!("/v1/session/info/{lapsing}")).await.json() == json!([]);
        if gone {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(35), "a 10 s session outlived 35 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Consul's timer is 2 × TTL (the session was created just before `t`).
    assert!(t.elapsed() >= Duration::from_secs(19), "expired after {:?}, before 2 x TTL", t.elapsed());
    let e = get(&n, "/v1/kv/ttl").await.json()[0].clone();
    assert!(e.get("Session").is_none(), "the expired session's lock is released: {e}");
    assert_eq!(get(&n, &format!("/v1/session/info/{renewed}")).await.json()[0]["ID"], json!(renewed));
    assert_eq!(put(&n, &format!("/v1/session/renew/{lapsing}"), "").await.status, 404);
}

#[tokio::test]
async fn transactions() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    assert!(put_bool(&n, "/v1/kv/t/x", "x").await);
    let ok = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": "YQ==", "Flags": 7}},
        {"KV": {"Verb": "get", "Key": "t/x"}},
        {"KV": {"Verb": "get-tree", "Key": "t/"}},
        {"KV": {"Verb": "delete", "Key": "t/none"}},
    ]);
    let r = put(&n, "/v1/txn", &ok.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["Errors"], Value::Null);
    let res = v["Results"].as_array().unwrap();
    assert_eq!(res.len(), 4, "set + get + 2 from get-tree, nothing for delete: {v}");
    assert_eq!((&res[0]["KV"]["Value"], &res[0]["KV"]["Flags"]), (&Value::Null, &json!(7)));
    assert_eq!(value_of(&res[1]["KV"]), "x");
    assert_eq!(value_of(&res[2]["KV"]), "a");
    // Every failure is reported; nothing is written.
    let bad = json!([
        {"KV": {"Verb": "set", "Key": "t/new", "Value": "Yg=="}},
        {"KV": {"Verb": "cas", "Key": "t/x", "Value": "Yg==", "Index": 999999}},
        {"KV": {"Verb": "check-not-exists", "Key": "t/a"}},
    ]);
    let r = put(&n, "/v1/txn", &bad.to_string()).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let v = r.json();
    assert_eq!(v["Results"], Value::Null);
    let idx: Vec<u64> = v["Errors"].as_array().unwrap().iter().map(|e| e["OpIndex"].as_u64().unwrap()).collect();
    assert_eq!(idx, vec![1, 2]);
    assert_eq!(v["Errors"][0]["What"], json!("failed to set key \"t/x\", index is stale"));
    assert_eq!(get(&n, "/v1/kv/t/new").await.status, 404);
    // A read-only transaction is a read: no X-Consul-Index.
    let r = put(&n, "/v1/txn", &json!([{"KV": {"Verb": "get", "Key": "t/a"}}]).to_string()).await;
    assert_eq!(r.status, 200);
    assert!(r.index.is_none() && r.headers.contains_key("x-consul-knownleader"));
    // 128 operations pass, 129 are 413.
    let ops =
        |k: usize| Value::Array((0..k).map(|i| json!({"KV": {"Verb": "set", "Key": format!("m/{i}")}})).collect());
    assert_eq!(put(&n, "/v1/txn", &ops(128).to_string()).await.status, 200);
    let r = put(&n, "/v1/txn", &ops(129).to_string()).await;
    assert_eq!((r.status, r.text.as_str()), (413, "Transaction contains too many operations (129 > 128)"));
    let r = put(&n, "/v1/txn", &json!([{"KV": {"Verb": "set", "Key": "a/../b"}}]).to_string()).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn events_fire_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    let r = get(&n, "/v1/event/list").await;
    assert_eq!((r.json(), r.index), (json!([]), Some(1)));
    let e1 = put(&n, "/v1/event/fire/deploy?node=web.*", "v1").await.json();
    assert_eq!(
        (e1["Name"].as_str(), e1["NodeFilter"].as_str(), b64(&e1["Payload"]).as_str()),
        (Some("deploy"), Some("web.*"), "v1")
    );
    // Spring Cloud Consul fires with POST.
    let e2 = call(&n, Method::POST, "/v1/event/fire/other", "").await.json();
    assert_eq!(e2["Payload"], Value::Null);
    let r = get(&n, "/v1/event/list").await;
    let list = r.json();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["ID"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![e1["ID"].as_str().unwrap(), e2["ID"].as_str().unwrap()]);
    let id = uuid_halves_xor(e2["ID"].as_str().unwrap());
    assert_eq!(r.index, Some(id), "index = XOR of the last event id's halves");
    let r = get(&n, "/v1/event/list?name=deploy").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // A blocking list wakes on a new event.
    let url = n.url(&format!("/v1/event/list?index={id}&wait=30s"));
    let waiter = tokio::spawn(async move { client().get(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished());
    put(&n, "/v1/event/fire/third", "").await;
    let r = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("not woken").unwrap();
    assert_eq!(r.json::<Value>().await.unwrap().as_array().unwrap().len(), 3);
    assert_eq!(put(&n, "/v1/event/fire/_reserved", "").await.status, 400);
    assert_eq!(put(&n, "/v1/event/fire/big", &"x".repeat(600)).await.status, 500);
    assert_eq!(get(&n, "/v1/event/list").await.json().as_array().unwrap().len(), 3);
}

fn uuid_halves_xor(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let v = u128::from_str_radix(&hex, 16).unwrap();
    ((v >> 64) as u64) ^ (v as u64)
}

#[tokio::test]
async fn nacos_configs_round_trip_through_the_consul_export_format() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path()).await;
    common::publish_ok(&n, "app.yaml", "server:\n  port: 8080").await;
    common::publish_ok(&n, "db.properties", "host=localhost").await;
    let exported = get(&n, "/v1/kv/export?namespaceId=public").await.json();
    let keys: Vec<&str> = exported.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["public/DEFAULT_GROUP/app.yaml", "public/DEFAULT_GROUP/db.properties"]);
    assert_eq!(value_of(&exported[0]), "server:\n  port: 8080");
    assert_eq!(exported[0]["Flags"], json!(0));
    let one = get(&n, "/v1/kv/export?prefix=public/DEFAULT_GROUP/db").await.json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    // Into another namespace (namespaceId overrides the keys'), then back with SKIP.
    let r = put(&n, "/v1/kv/import?namespaceId=dev", &exported.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["successCount"], json!(2), "{}", r.text);
    let dev = get(&n, "/v1/kv/export?namespaceId=dev").await.json();
    assert_eq!(dev.as_array().unwrap().len(), 2);
    assert_eq!(value_of(&dev[1]), "host=localhost");
    let r = put(&n, "/v1/kv/import", &exported.to_string()).await.json();
    assert_eq!((&r["data"]["successCount"], &r["data"]["skipCount"]), (&json!(0), &json!(2)), "{r}");
    // Bad entries are reported, good ones imported.
    let mixed = json!([{"Key": "nope", "Value": "eA=="}, {"Key": "public/G/x.txt", "Flags": 0, "Value": "eA=="}]);
    let r = put(&n, "/v1/kv/import?policy=OVERWRITE", &mixed.to_string()).await.json();
    assert_eq!((&r["data"]["successCount"], &r["data"]["failCount"]), (&json!(1), &json!(1)), "{r}");
    assert_eq!(common::get_config(&n, "db.properties", false).await.as_deref(), Some("host=localhost"));
    // Other parameters make `export` an ordinary KV key.
    assert!(put_bool(&n, "/v1/kv/export?flags=1", "kv").await);
    assert_eq!(get(&n, "/v1/kv/export?raw").await.text, "kv");
}
