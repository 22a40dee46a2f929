//! Black-box tests of a single real `batata` process.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_survives_kill9_and_starts_without_config_file() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    // An election timeout longer than `wait_ready`'s patience: a restarted standalone node must
    // resume as leader from its stored vote (openraft's leader restore) rather than wait for it.
    n.set_env("BATATA_RAFT_ELECTION_TIMEOUT_MIN_MS", "120000");
    n.set_env("BATATA_RAFT_ELECTION_TIMEOUT_MAX_MS", "180000");
    assert!(!n.dir.join("conf").exists(), "the test must run without a config file");
    n.start();
    wait_ready(&n).await;
    publish_ok(&n, "app.yaml", "a: 1").await;
    assert_eq!(get_config(&n, "app.yaml", false).await.as_deref(), Some("a: 1"));
    assert_eq!(get_config(&n, "app.yaml", true).await.as_deref(), Some("a: 1"));
    publish_ok(&n, "app.yaml", "a: 2").await;
    n.kill9();
    n.start();
    wait_ready(&n).await;
    assert_eq!(get_config(&n, "app.yaml", false).await.as_deref(), Some("a: 2"));
    // Delete, then it is gone, also after a restart.
    let r = client().delete(n.url("/nacos/v1/cs/configs?dataId=app.yaml&group=DEFAULT_GROUP")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    assert_eq!(get_config(&n, "app.yaml", false).await, None);
    assert_eq!(n.stop(), Some(0), "SIGTERM must exit 0");
    n.start();
    wait_ready(&n).await;
    assert_eq!(get_config(&n, "app.yaml", false).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_bad_input_is_refused_and_nothing_stored() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.set_env("BATATA_CONFIG_MAX_CONTENT_BYTES", "1024");
    n.set_env("BATATA_MAX_BODY_BYTES", "65536");
    n.start();
    wait_ready(&n).await;
    let c = client();
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("group", "g".into()), ("content", "x".into())],
        vec![("dataId", "bad/id".into()), ("content", "x".into())],
        vec![("dataId", "ok".into()), ("group", "bad group".into()), ("content", "x".into())],
        vec![("dataId", "ok".into())],
        vec![("dataId", "big".into()), ("content", "x".repeat(2048))],
    ];
    for form in cases {
        let r = c.post(n.url("/nacos/v1/cs/configs")).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
        assert!(!r.text().await.unwrap().is_empty());
    }
    assert_eq!(checksum(&n).await.map(|c| c.2), Some(0), "nothing may be stored");
    // CAS: a stale md5 is refused, the right one accepted.
    publish_ok(&n, "cas", "v1").await;
    let r = c
        .post(n.url("/nacos/v1/cs/configs"))
        .header("casMd5", "0000")
        .form(&[("dataId", "cas"), ("content", "v2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "false");
    assert_eq!(get_config(&n, "cas", false).await.as_deref(), Some("v1"));
    let md5 = format!("{:x}", md5::compute(b"v1"));
    let r = c
        .post(n.url("/nacos/v1/cs/configs"))
        .header("casMd5", md5)
        .form(&[("dataId", "cas"), ("content", "v2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    assert_eq!(get_config(&n, "cas", false).await.as_deref(), Some("v2"));
    // Oversized body: 413 from the body limit, nothing stored.
    let r = c
        .post(n.url("/nacos/v1/cs/configs"))
        .form(&[("dataId", "huge"), ("content", &"y".repeat(100_000))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(get_config(&n, "huge", false).await, None);
    n.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_get_put_and_cli_roundtrip() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.start();
    wait_ready(&n).await;
    for i in 0..20 {
        publish_ok(&n, &format!("cfg{i}"), &format!("value {i}")).await;
    }
    // Consul KV and the registry are in the snapshot too.
    let put = client().put(n.url("/v1/kv/snap/key")).body("kv-before").send().await.unwrap();
    assert_eq!(put.text().await.unwrap(), "true");
    let reg = "/nacos/v1/ns/instance?serviceName=snap-svc&ip=10.1.1.1&port=80&ephemeral=false";
    assert_eq!(client().post(n.url(reg)).send().await.unwrap().status().as_u16(), 200);
    let before = checksum(&n).await.unwrap();
    // CLI save + inspect.
    let file = root.path().join("s.bsnap");
    // Operator endpoints demand the cluster secret.
    let r = client().get(n.url("/v1/snapshot")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client()
        .post(n.url("/nacos/v1/core/raft/learner?httpAddr=127.0.0.1:1&raftAddr=127.0.0.1:2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client()
        .get(n.url("/v1/snapshot"))
        .header("X-Batata-Cluster-Secret", "wrong-secret-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let out = std::process::Command::new(bin())
        .env("BATATA_CLUSTER_SECRET", SECRET)
        .args(["snapshot", "save", "--addr", &n.ports.http_addr(), "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(bin()).args(["snapshot", "inspect"]).arg(&file).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checksum"], "ok");
    assert_eq!(v["records_per_column_family"]["config"], 20);
    // A corrupted file is refused.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = root.path().join("bad.bsnap");
    std::fs::write(&bad, &bytes).unwrap();
    let out = std::process::Command::new(bin()).args(["snapshot", "inspect"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let r =
        client().put(n.url("/v1/snapshot")).header("X-Batata-Cluster-Secret", SECRET).body(bytes).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Wipe some data, then PUT the snapshot back.
    for i in 0..10 {
        client().delete(n.url(&format!("/nacos/v1/cs/configs?dataId=cfg{i}"))).send().await.unwrap();
    }
    publish_ok(&n, "extra", "x").await;
    client().delete(n.url("/v1/kv/snap/key")).send().await.unwrap();
    client().delete(n.url(reg)).send().await.unwrap();
    let snap = std::fs::read(&file).unwrap();
    let r =
        client().put(n.url("/v1/snapshot")).header("X-Batata-Cluster-Secret", SECRET).body(snap).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let after = checksum(&n).await.unwrap();
    assert_eq!((after.1, after.2), (before.1, before.2), "restored state must equal the snapshot");
    assert_eq!(get_config(&n, "extra", false).await, None);
    assert_eq!(get_config(&n, "cfg3", false).await.as_deref(), Some("value 3"));
    let kv = client().get(n.url("/v1/kv/snap/key?raw")).send().await.unwrap();
    assert_eq!(kv.text().await.unwrap(), "kv-before");
    let list: serde_json::Value = client()
        .get(n.url("/nacos/v1/ns/instance/list?serviceName=snap-svc"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["hosts"][0]["ip"], "10.1.1.1", "{list}");
}

#[test]
fn bad_settings_exit_nonzero_naming_file_line_and_key() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("bad.yml");
    std::fs::write(&conf, "nacos:\n  server:\n    main:\n      port: abc\n").unwrap();
    let out = std::process::Command::new(bin()).arg("--config").arg(&conf).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:4") && err.contains("nacos.server.main.port"), "{err}");

    let cc = root.path().join("cluster.conf");
    std::fs::write(&cc, "# members\n127.0.0.1:8848\nnot-an-address\n").unwrap();
    // Auth is on by default; these checks are about other settings.
    let out = std::process::Command::new(bin())
        .env("BATATA_AUTH_ENABLED", "false")
        .env("BATATA_CLUSTER_LOOKUP_TYPE", "file")
        .env("BATATA_CLUSTER_CONF", &cc)
        .env("BATATA_CLUSTER_SECRET", SECRET)
        .env("BATATA_DATA_DIR", root.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.conf:3"), "{err}");

    let out = std::process::Command::new(bin())
        .env("BATATA_AUTH_ENABLED", "false")
        .env("BATATA_CLUSTER_LOOKUP_TYPE", "file")
        .env("BATATA_CLUSTER_MEMBERS", "127.0.0.1:8848")
        .env("BATATA_CLUSTER_CONF", root.path().join("none.conf"))
        .env("BATATA_DATA_DIR", root.path().join("d"))
        .env_remove("BATATA_CLUSTER_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nacos.cluster.secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_history_records_every_publish_and_delete() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.start();
    wait_ready(&n).await;
    publish_ok(&n, "h", "v1").await;
    publish_ok(&n, "h", "v2").await;
    client().delete(n.url("/nacos/v1/cs/configs?dataId=h&group=DEFAULT_GROUP")).send().await.unwrap();
    let page: serde_json::Value = client()
        .get(n.url("/nacos/v1/cs/history?search=accurate&dataId=h&group=DEFAULT_GROUP&pageNo=1&pageSize=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["pageNumber"], 1);
    assert_eq!(page["pagesAvailable"], 1);
    let items = page["pageItems"].as_array().unwrap();
    let ops: Vec<&str> = items.iter().map(|i| i["opType"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["D", "U", "I"], "newest first");
    let md5 = |s: &str| format!("{:x}", md5::compute(s));
    assert_eq!(items[0]["md5"].as_str(), Some(md5("v2").as_str()), "a delete records the deleted content");
    assert_eq!(items[1]["md5"].as_str(), Some(md5("v1").as_str()), "an update records the previous content");
    assert!(items[0]["createdTime"].as_str().unwrap().ends_with("+0000"));
    let id = items[1]["id"].as_str().unwrap().to_string();
    let detail: serde_json::Value = client()
        .get(n.url(&format!("/nacos/v1/cs/history?nid={id}&dataId=h&group=DEFAULT_GROUP")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["content"], "v1");
    assert_eq!(detail["dataId"], "h");
    let newest = items[0]["id"].as_str().unwrap();
    let prev: serde_json::Value = client()
        .get(n.url(&format!("/nacos/v1/cs/history/previous?id={newest}&dataId=h&group=DEFAULT_GROUP")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prev["id"].as_str(), Some(id.as_str()));
    let r = client().get(n.url("/nacos/v1/cs/history?nid=999999")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client().get(n.url("/nacos/v1/cs/history?search=accurate&group=DEFAULT_GROUP")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "dataId is required");
}

/// The benchmark harness must not rot: a tiny run of each Nacos workload against a real node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_harness_smoke() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.start();
    wait_ready(&n).await;
    for workload in
        ["config-publish", "config-get", "grpc-config-get", "grpc-instance-register", "consul-kv-put", "consul-kv-get"]
    {
        let json = root.path().join(format!("{workload}.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_batata-bench"))
            .args(["--workload", workload, "--addr", &n.ports.http_addr(), "--concurrency", "4", "--smoke", "--json"])
            .arg(&json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{workload}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert!(v["ok"].as_u64().unwrap() > 0, "{v}");
        assert_eq!(v["errors"]["total"], 0, "{v}");
    }
    for (workload, count) in
        [("listener-fanout", "listeners"), ("naming-fanout", "subscribers"), ("consul-watch-fanout", "watchers")]
    {
        let json = root.path().join(format!("{workload}.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_batata-bench"))
            .args(["--workload", workload, "--addr", &n.ports.http_addr(), "--smoke", "--json"])
            .arg(&json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{workload}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!((&v[count], &v["rounds"]), (&4.into(), &2.into()), "{v}");
        assert!(v["all_notified_ms"]["max"].as_f64().unwrap() > 0.0, "{v}");
    }
    let json = root.path().join("footprint.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_batata-bench"))
        .args([
            "--workload",
            "footprint-load",
            "--addr",
            &n.ports.http_addr(),
            "--concurrency",
            "2",
            "--smoke",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "footprint-load: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((&v["configs"], &v["instances"], &v["services"]), (&10.into(), &200.into(), &2.into()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_crud_in_nacos_shapes() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.start();
    wait_ready(&n).await;
    let c = client();
    let url = n.url("/nacos/v1/console/namespaces");
    let text = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    let r = c.post(&url).form(&[("customNamespaceId", "dev"), ("namespaceName", "Dev"), ("namespaceDesc", "d")]);
    assert_eq!(text(r.send().await.unwrap()).await, (200, "true".into()));
    // The same id again: false, nothing changed.
    let r = c.post(&url).form(&[("customNamespaceId", "dev"), ("namespaceName", "Other")]);
    assert_eq!(text(r.send().await.unwrap()).await, (200, "false".into()));
    // Bad input: 400, nothing stored.
    for form in [vec![("customNamespaceId", "bad id"), ("namespaceName", "x")], vec![("customNamespaceId", "x2")]] {
        let r = c.post(&url).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{form:?}");
    }
    // A generated id when none is given.
    let r = c.post(&url).form(&[("namespaceName", "Generated")]);
    assert_eq!(text(r.send().await.unwrap()).await, (200, "true".into()));
    // A config in `dev` counts there.
    let r = c.post(n.url("/nacos/v1/cs/configs")).form(&[("dataId", "a"), ("content", "1"), ("tenant", "dev")]);
    assert_eq!(text(r.send().await.unwrap()).await, (200, "true".into()));
    let v: serde_json::Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 200);
    assert!(v["message"].is_null());
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        data[0],
        serde_json::json!({"namespace": "public", "namespaceShowName": "public", "namespaceDesc": "Default Namespace",
                           "quota": 200, "configCount": 0, "type": 0})
    );
    let dev = data.iter().find(|d| d["namespace"] == "dev").unwrap();
    assert_eq!(
        dev,
        &serde_json::json!({"namespace": "dev", "namespaceShowName": "Dev", "namespaceDesc": "d",
                            "quota": 200, "configCount": 1, "type": 1})
    );
    let generated = data.iter().find(|d| d["namespaceShowName"] == "Generated").unwrap();
    assert_eq!(generated["namespace"].as_str().unwrap().len(), 36, "a UUID-shaped id");
    let exists = |id: &str| c.get(format!("{url}?checkNamespaceIdExist=true&customNamespaceId={id}")).send();
    assert_eq!(exists("dev").await.unwrap().text().await.unwrap(), "true");
    assert_eq!(exists("nope").await.unwrap().text().await.unwrap(), "false");
    let r = c.put(&url).form(&[("namespace", "dev"), ("namespaceShowName", "Development"), ("namespaceDesc", "dd")]);
    assert_eq!(text(r.send().await.unwrap()).await, (200, "true".into()));
    let one: serde_json::Value =
        c.get(format!("{url}?show=all&namespaceId=dev")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["namespaceShowName"], "Development");
    assert_eq!(one["namespaceDesc"], "dd");
    let r = c.put(&url).form(&[("namespace", "missing"), ("namespaceShowName", "x")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = c.delete(format!("{url}?namespaceId=dev")).send().await.unwrap();
    assert_eq!(text(r).await, (200, "true".into()));
    assert_eq!(exists("dev").await.unwrap().text().await.unwrap(), "false");
    let r = c.delete(format!("{url}?namespaceId=public")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "public is built in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_v2_envelope_and_error_codes() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
    n.start();
    wait_ready(&n).await;
    let c = client();
    let url = n.url("/nacos/v2/cs/config");
    let json =
        |r: reqwest::Response| async move { (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()) };
    let (st, v) = json(c.get(format!("{url}?dataId=v2&group=G")).send().await.unwrap()).await;
    assert_eq!(
        (st, v),
        (404, serde_json::json!({"code": 20004, "message": "resource not found", "data": "config data not exist"}))
    );
    let (st, v) = json(c.post(&url).form(&[("group", "G"), ("content", "x")]).send().await.unwrap()).await;
    assert_eq!(st, 400);
    assert_eq!(v["code"], 10000);
    assert_eq!(v["data"], "Required parameter 'dataId' type String is not present");
    let (st, v) =
        json(c.post(&url).form(&[("dataId", "bad/id"), ("group", "G"), ("content", "x")]).send().await.unwrap()).await;
    assert_eq!((st, v["code"].clone()), (400, serde_json::json!(20002)));
    let (st, v) = json(
        c.post(&url)
            .form(&[("dataId", "v2"), ("group", "G"), ("content", "hello"), ("namespaceId", "public")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, v), (200, serde_json::json!({"code": 0, "message": "success", "data": true})));
    let (st, v) = json(c.get(format!("{url}?dataId=v2&group=G")).send().await.unwrap()).await;
    assert_eq!((st, v), (200, serde_json::json!({"code": 0, "message": "success", "data": "hello"})));
    // The same config through v1 (no tenant = public).
    assert_eq!(
        c.get(n.url("/nacos/v1/cs/configs?dataId=v2&group=G")).send().await.unwrap().text().await.unwrap(),
        "hello"
    );
    let (st, v) = json(
        c.post(&url)
            .header("casMd5", "stale")
            .form(&[("dataId", "v2"), ("group", "G"), ("content", "y")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, v["code"].clone()), (409, serde_json::json!(20005)));
    let (st, v) = json(c.delete(format!("{url}?dataId=v2&group=G")).send().await.unwrap()).await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!(true)));
    let (st, _) = json(c.get(format!("{url}?dataId=v2&group=G")).send().await.unwrap()).await;
    assert_eq!(st, 404);
}
