//! Security regressions, one per known vulnerability class of Nacos, each against a real node
//! with auth on and each with a positive control, so it fails against the vulnerable behaviour
//! rather than passing because everything is refused: the `User-Agent: Nacos-Server` bypass
//! (CVE-2021-29441) and server-identity headers, tokens forged with the published default key,
//! `alg: none`, expired tokens, a deleted user's token, another namespace's configs over HTTP
//! and gRPC, raft RPCs on the cluster port without the secret, login brute force, and start-up
//! with no key or the default key.

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use common::sdk::Conn;
use common::Node;
use common::Ports;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::Header;
use serde_json::json;
use serde_json::Value;

async fn auth_node(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.enable_auth();
    n.start();
    common::wait_ready(&n).await;
    n
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// An HS256 token for `sub` signed with `key` (Base64, as in the settings; a key that is not
/// strict Base64, like Nacos' old default, is decoded as far as it goes, as lenient decoders do).
fn sign(key_b64: &str, sub: &str, exp: u64) -> String {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let key = b64.decode(key_b64).unwrap_or_else(|_| b64.decode(&key_b64[..key_b64.len() / 4 * 4]).unwrap());
    let claims = json!({"sub": sub, "iat": now() - 10, "exp": exp});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(&key)).unwrap()
}

async fn get_cfg(n: &Node, ns: &str, data_id: &str, token: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut q = vec![("dataId", data_id), ("group", "G"), ("tenant", ns)];
    if let Some(t) = token {
        q.push(("accessToken", t));
    }
    let mut rb = common::client().get(n.url("/nacos/v1/cs/configs")).query(&q);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn put_cfg(n: &Node, ns: &str, data_id: &str, token: &str, content: &str) -> u16 {
    // A claimed `src_user` is ignored when the caller is authenticated.
    let form = [
        ("dataId", data_id),
        ("group", "G"),
        ("tenant", ns),
        ("content", content),
        ("accessToken", token),
        ("src_user", "somebody-else"),
    ];
    common::client().post(n.url("/nacos/v1/cs/configs")).form(&form).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forged_bypass_and_stale_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = auth_node(dir.path()).await;
    let admin = common::admin_token(&n).await;
    assert_eq!(put_cfg(&n, "public", "secret.yaml", &admin, "db.password: hunter2").await, 200);
    // Positive control: a token signed with this cluster's key reads it.
    let good = sign(common::AUTH_KEY, "nacos", now() + 600);
    assert_eq!(get_cfg(&n, "public", "secret.yaml", Some(&good), &[]).await, (200, "db.password: hunter2".into()));

    // CVE-2021-29441 and its relatives: headers that once meant "another server" mean nothing.
    let (s, body) = get_cfg(&n, "public", "secret.yaml", None, &[("User-Agent", "Nacos-Server")]).await;
    assert_eq!(s, 403, "{body}");
    let (s, _) = get_cfg(&n, "public", "secret.yaml", None, &[("serverIdentity", "security")]).await;
    assert_eq!(s, 403);
    let r = common::client()
        .post(n.url("/nacos/v1/cs/configs"))
        .header("User-Agent", "Nacos-Server")
        .form(&[("dataId", "ua.yaml"), ("group", "G"), ("content", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(get_cfg(&n, "public", "ua.yaml", Some(&admin), &[]).await.0, 404, "nothing stored");

    // Signed with the key Nacos shipped and documented: refused.
    for published in [
        "SecretKey012345678901234567890123456789012345678901234567890123456789",
        "VGhpc0lzTXlDdXN0b21TZWNyZXRLZXkwMTIzNDU2Nzg=",
    ] {
        let forged = sign(published, "nacos", now() + 600);
        assert_eq!(get_cfg(&n, "public", "secret.yaml", Some(&forged), &[]).await.0, 403);
    }
    // `alg: none`, and the right key under another algorithm.
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none =
        format!("{}.{}.", b64(json!({"alg": "none", "typ": "JWT"})), b64(json!({"sub": "nacos", "exp": now() + 600})));
    assert_eq!(get_cfg(&n, "public", "secret.yaml", Some(&none), &[]).await.0, 403);
    let key = base64::engine::general_purpose::STANDARD.decode(common::AUTH_KEY).unwrap();
    let hs512 = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &json!({"sub": "nacos", "exp": now() + 600}),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_eq!(get_cfg(&n, "public", "secret.yaml", Some(&hs512), &[]).await.0, 403);
    // Expired a second ago: refused, no leeway.
    let expired = sign(common::AUTH_KEY, "nacos", now() - 1);
    let (s, body) = get_cfg(&n, "public", "secret.yaml", Some(&expired), &[]).await;
    assert_eq!((s, body.contains("expired")), (403, true), "{body}");

    // A deleted user's token stops working at once.
    assert_eq!(
        common::post_as(&n, &admin, "/nacos/v1/auth/users", &[("username", "bob"), ("password", "bob-pass-1")]).await.0,
        200
    );
    assert_eq!(
        common::post_as(&n, &admin, "/nacos/v1/auth/roles", &[("role", "reader"), ("username", "bob")]).await.0,
        200
    );
    let perm = [("role", "reader"), ("resource", "public:*:*"), ("action", "r")];
    assert_eq!(common::post_as(&n, &admin, "/nacos/v1/auth/permissions", &perm).await.0, 200);
    let bob = common::login(&n, "bob", "bob-pass-1").await;
    assert_eq!(get_cfg(&n, "public", "secret.yaml", Some(&bob), &[]).await.0, 200);
    let r = common::client()
        .delete(n.url("/nacos/v1/auth/users"))
        .query(&[("username", "bob"), ("accessToken", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, body) = get_cfg(&n, "public", "secret.yaml", Some(&bob), &[]).await;
    assert_eq!(s, 403, "a deleted user's token: {body}");
}

#[tokio::test]
async fn namespaces_are_isolated_over_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let n = auth_node(dir.path()).await;
    let admin = common::admin_token(&n).await;
    for ns in ["dev", "prod"] {
        let form = [("customNamespaceId", ns), ("namespaceName", ns), ("namespaceDesc", "")];
        assert_eq!(common::post_as(&n, &admin, "/nacos/v1/console/namespaces", &form).await.0, 200);
        assert_eq!(put_cfg(&n, ns, "app.yaml", &admin, &format!("env: {ns}")).await, 200);
    }
    assert_eq!(
        common::post_as(&n, &admin, "/nacos/v1/auth/users", &[("username", "alice"), ("password", "alice-pw-1")])
            .await
            .0,
        200
    );
    assert_eq!(
        common::post_as(&n, &admin, "/nacos/v1/auth/roles", &[("role", "dev-team"), ("username", "alice")]).await.0,
        200
    );
    let perm = [("role", "dev-team"), ("resource", "dev:*:*"), ("action", "rw")];
    assert_eq!(common::post_as(&n, &admin, "/nacos/v1/auth/permissions", &perm).await.0, 200);
    let alice = common::login(&n, "alice", "alice-pw-1").await;

    // HTTP: her namespace yes, the other no, and a refused write stores nothing.
    assert_eq!(get_cfg(&n, "dev", "app.yaml", Some(&alice), &[]).await, (200, "env: dev".into()));
    assert_eq!(put_cfg(&n, "dev", "app.yaml", &alice, "env: dev2").await, 200);
    assert_eq!(get_cfg(&n, "prod", "app.yaml", Some(&alice), &[]).await.0, 403);
    assert_eq!(put_cfg(&n, "prod", "app.yaml", &alice, "env: hacked").await, 403);
    assert_eq!(get_cfg(&n, "prod", "app.yaml", Some(&admin), &[]).await.1, "env: prod");
    // Nor may she manage users or namespaces.
    assert_eq!(
        common::post_as(&n, &alice, "/nacos/v1/auth/users", &[("username", "eve"), ("password", "x1")]).await.0,
        403
    );

    // gRPC: the same rules on the SDK port, token in the request headers.
    let mut c = Conn::open(&n, json!({"clientVersion": "raw", "tenant": "", "labels": {}})).await;
    let query = |ns: &str| json!({"dataId": "app.yaml", "group": "G", "tenant": ns, "headers": {}});
    let (kind, v) = c.call_registered("ConfigQueryRequest", query("dev")).await;
    assert_eq!((kind.as_str(), &v["errorCode"]), ("ConfigQueryResponse", &json!(403)), "no token: {v}");
    c.headers = HashMap::from([("accessToken".to_string(), alice.clone())]);
    let (_, v) = c.call("ConfigQueryRequest", query("dev")).await;
    assert_eq!(v["content"], "env: dev2", "{v}");
    let (kind, v) = c.call("ConfigQueryRequest", query("prod")).await;
    assert_eq!((kind.as_str(), &v["errorCode"], &v["resultCode"]), ("ConfigQueryResponse", &json!(403), &json!(500)));
    let publish =
        json!({"dataId": "app.yaml", "group": "G", "tenant": "prod", "content": "env: hacked", "additionMap": {}});
    let (_, v) = c.call("ConfigPublishRequest", publish).await;
    assert_eq!(v["errorCode"], 403, "{v}");
    assert_eq!(get_cfg(&n, "prod", "app.yaml", Some(&admin), &[]).await.1, "env: prod", "nothing stored");
    // A listen covering a forbidden config is refused as a whole.
    let listen = json!({"listen": true, "configListenContexts": [
        {"dataId": "app.yaml", "group": "G", "tenant": "dev", "md5": ""},
        {"dataId": "app.yaml", "group": "G", "tenant": "prod", "md5": ""}]});
    assert_eq!(c.call("ConfigBatchListenRequest", listen).await.1["errorCode"], 403);
    // Registry: writing a service in another namespace is refused too.
    let inst = json!({"namespace": "prod", "groupName": "DEFAULT_GROUP", "serviceName": "pay", "type": "registerInstance",
        "instance": {"ip": "10.0.0.1", "port": 80, "ephemeral": true, "healthy": true, "enabled": true, "weight": 1.0}});
    assert_eq!(c.call("InstanceRequest", inst).await.1["errorCode"], 403);

    // The history records who changed dev's config: the authenticated user, not a claimed one.
    let r = common::client()
        .get(n.url("/nacos/v1/cs/history"))
        .query(&[
            ("search", "accurate"),
            ("dataId", "app.yaml"),
            ("group", "G"),
            ("tenant", "dev"),
            ("accessToken", &admin),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let users: Vec<&str> = v["pageItems"].as_array().unwrap().iter().filter_map(|i| i["srcUser"].as_str()).collect();
    assert_eq!(users, ["alice", "nacos"], "newest first: alice's update, the admin's insert: {v}");
}

#[tokio::test]
async fn logins_as_clients_call_them_and_brute_force_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let n = auth_node(dir.path()).await;
    common::admin_token(&n).await;
    let c = common::client();
    // Java 3 (v3, query + form), Go (form), Python (query), Rust (v1/auth/login, query).
    for (path, query, form) in [
        ("/nacos/v3/auth/user/login", vec![("username", "nacos")], vec![("password", common::ADMIN_PASSWORD)]),
        ("/nacos/v1/auth/users/login", vec![], vec![("username", "nacos"), ("password", common::ADMIN_PASSWORD)]),
        ("/nacos/v1/auth/users/login", vec![("username", "nacos"), ("password", common::ADMIN_PASSWORD)], vec![]),
        ("/nacos/v1/auth/login", vec![("username", "nacos"), ("password", common::ADMIN_PASSWORD)], vec![]),
    ] {
        let r = c.post(n.url(path)).query(&query).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(v["accessToken"].is_string() && v["tokenTtl"].as_u64() == Some(18000), "{path}: {v}");
        assert_eq!((v["globalAdmin"].as_bool(), v["username"].as_str()), (Some(true), Some("nacos")));
        // The token works as a Bearer header too.
        let bearer = format!("Bearer {}", v["accessToken"].as_str().unwrap());
        let r = c.get(n.url("/nacos/v1/console/namespaces")).header("Authorization", bearer).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // The first-run endpoint is closed once an administrator exists.
    let r = c.post(n.url("/nacos/v3/auth/user/admin")).form(&[("password", "takeover-1")]).send().await.unwrap();
    assert_eq!(r.status(), 409);

    let login = |pw: &'static str| {
        let c = c.clone();
        let url = n.url("/nacos/v1/auth/login");
        async move { c.post(url).form(&[("username", "nacos"), ("password", pw)]).send().await.unwrap().status().as_u16() }
    };
    for _ in 0..5 {
        assert_eq!(login("wrong").await, 403);
    }
    // Locked: even the right password is refused for a while.
    assert_eq!(login(common::ADMIN_PASSWORD).await, 429);
}

#[tokio::test]
async fn cluster_port_refuses_rpcs_without_the_secret() {
    use batata::grpc::pb::cluster_service_client::ClusterServiceClient;
    use batata::grpc::pb::RaftPayload;
    let dir = tempfile::tempdir().unwrap();
    let n = auth_node(dir.path()).await;
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", n.ports.raft))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = ClusterServiceClient::new(ch);
    let vote = |secret: Option<&str>| {
        let mut req = tonic::Request::new(RaftPayload::default());
        if let Some(s) = secret {
            req.metadata_mut().insert("x-batata-cluster-secret", s.parse().unwrap());
        }
        req
    };
    for secret in [None, Some("wrong-secret-0123456789")] {
        let e = c.vote(vote(secret)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{secret:?}");
        let e = c.admin(vote(secret)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
    }
    // Positive control: with the secret the RPC is heard (and fails only on its empty payload).
    let e = c.vote(vote(Some(common::SECRET))).await.err();
    assert!(e.as_ref().is_none_or(|e| e.code() != tonic::Code::PermissionDenied), "{e:?}");
}

#[test]
fn auth_on_refuses_to_start_without_an_own_key() {
    let dir = tempfile::tempdir().unwrap();
    for key in [None, Some("SecretKey012345678901234567890123456789012345678901234567890123456789")] {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.current_dir(dir.path())
            .env("BATATA_AUTH_ENABLED", "true")
            .env("BATATA_DATA_DIR", dir.path().join("d"))
            .env_remove("BATATA_AUTH_SECRET_KEY");
        if let Some(k) = key {
            cmd.env("BATATA_AUTH_SECRET_KEY", k);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key:?}: started");
        assert!(err.contains("nacos.core.auth.plugin.nacos.token.secret.key"), "{key:?}: {err}");
    }
}
