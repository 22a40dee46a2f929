//! Black-box tests of Consul ACLs on a real node: with Nacos auth on, the Consul API needs a
//! token (a Consul ACL token or a Nacos access token) and enforces Consul's rules; with auth off
//! the ACL endpoints answer 401 and everything else is open. Each test is written to fail
//! against a permissive server: the refused write is also checked not to have been stored.

mod common;

use common::client;
use common::Node;
use common::Ports;
use reqwest::Method;
use serde_json::json;
use serde_json::Value;

async fn start(root: &std::path::Path, auth: bool, env: &[(&str, &str)]) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    if auth {
        n.enable_auth();
    }
    for (k, v) in env {
        n.set_env(k, v);
    }
    n.start();
    common::wait_ready(&n).await;
    n
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request with `token` as `X-Consul-Token`.
async fn call(n: &Node, method: Method, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut rb = client().request(method, n.url(path)).body(body.to_string());
    if let Some(t) = token {
        rb = rb.header("X-Consul-Token", t);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Reply { status, headers, text: r.text().await.unwrap() }
}

async fn get(n: &Node, path: &str, token: Option<&str>) -> Reply {
    call(n, Method::GET, path, token, "").await
}

async fn put(n: &Node, path: &str, token: Option<&str>, body: &str) -> Reply {
    call(n, Method::PUT, path, token, body).await
}

fn assert_denied(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text);
    assert!(r.text.starts_with("Permission denied"), "{what}: {}", r.text);
}

/// Bootstraps and returns the management token's SecretID.
async fn bootstrap(n: &Node) -> String {
    let r = put(n, "/v1/acl/bootstrap", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["SecretID"].as_str().unwrap().to_string()
}

/// A policy with `rules` and a token linked to it by name; returns the token's SecretID.
async fn token_with(n: &Node, mgmt: &str, name: &str, rules: &str) -> String {
    let p = put(n, "/v1/acl/policy", Some(mgmt), &json!({"Name": name, "Rules": rules}).to_string()).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let t = put(n, "/v1/acl/token", Some(mgmt), &json!({"Policies": [{"Name": name}]}).to_string()).await;
    assert_eq!(t.status, 200, "{}", t.text);
    t.json()["SecretID"].as_str().unwrap().to_string()
}

fn register_body(name: &str) -> String {
    json!({"Name": name, "ID": format!("{name}-1"), "Port": 8080}).to_string()
}

#[tokio::test]
async fn acl_off_answers_401_and_leaves_the_api_open() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), false, &[]).await;
    for (m, p) in
        [(Method::PUT, "/v1/acl/bootstrap"), (Method::GET, "/v1/acl/tokens"), (Method::GET, "/v1/acl/policies")]
    {
        let r = call(&n, m, p, None, "").await;
        assert_eq!((r.status, r.text.as_str()), (401, "ACL support disabled"), "{p}");
    }
    let r = put(&n, "/v1/kv/open", None, "v").await;
    assert_eq!((r.status, r.text.as_str()), (200, "true"));
    assert_eq!(r.header("x-consul-default-acl-policy"), Some("allow"));
}

#[tokio::test]
async fn anonymous_requests_are_denied_and_bootstrap_happens_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let r = get(&n, "/v1/kv/app/x", None).await;
    assert_denied(&r, "anonymous KV read");
    assert!(r.text.contains("'00000000-0000-0000-0000-000000000002'"), "{}", r.text);
    assert_eq!(r.header("x-consul-default-acl-policy"), Some("deny"));
    assert_denied(&put(&n, "/v1/kv/app/x", None, "v").await, "anonymous KV write");
    let reg = json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": 80}}).to_string();
    assert_denied(&put(&n, "/v1/catalog/register", None, &reg).await, "anonymous catalog register");
    assert_denied(&put(&n, "/v1/agent/service/register", None, &register_body("web")).await, "agent register");
    assert_denied(&get(&n, "/v1/acl/tokens", None).await, "anonymous ACL list");
    // A list is filtered, not refused: nothing to see.
    let r = get(&n, "/v1/catalog/services", None).await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    // Unknown tokens are Consul's 403 `ACL not found`; the datacenter list and status stay open.
    let r = get(&n, "/v1/kv/app/x", Some("6a1253d2-1785-24fd-91c2-f8e78c745511")).await;
    assert_eq!((r.status, r.text.as_str()), (403, "ACL not found"));
    assert_eq!(get(&n, "/v1/catalog/datacenters", None).await.status, 200);
    assert_eq!(get(&n, "/v1/status/leader", None).await.status, 200);

    let r = put(&n, "/v1/acl/bootstrap", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.json();
    let secret = t["SecretID"].as_str().unwrap().to_string();
    assert_eq!(t["ID"], t["SecretID"]);
    assert_eq!(t["Policies"], json!([{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}]));
    assert_eq!(t["Description"], "Bootstrap Token (Global Management)");
    assert!(t["CreateTime"].as_str().unwrap().ends_with('Z'), "{t}");
    let again = put(&n, "/v1/acl/bootstrap", None, "").await;
    assert_eq!(again.status, 403, "{}", again.text);
    let reset = format!("Permission denied: ACL bootstrap no longer allowed (reset index: {})", t["CreateIndex"]);
    assert_eq!(again.text, reset);

    // The management token does everything, by any of the three ways of presenting it.
    assert_eq!(put(&n, "/v1/kv/app/x", Some(&secret), "v").await.text, "true");
    assert_eq!(get(&n, &format!("/v1/kv/app/x?raw&token={secret}"), None).await.text, "v");
    let r = client().get(n.url("/v1/kv/app/x?raw")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "v");
    let me = get(&n, "/v1/acl/token/self", Some(&secret)).await;
    assert_eq!(me.json()["AccessorID"], t["AccessorID"]);
}

#[tokio::test]
async fn key_prefix_token_writes_its_prefix_only_and_lists_are_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let mgmt = bootstrap(&n).await;
    let app = token_with(&n, &mgmt, "app-writer", r#"key_prefix "app/" { policy = "write" }"#).await;
    assert_eq!(put(&n, "/v1/kv/app/x", Some(&app), "mine").await.text, "true");
    let r = put(&n, "/v1/kv/other/x", Some(&app), "intruder").await;
    assert_denied(&r, "write outside the prefix");
    assert!(r.text.ends_with("lacks permission 'key:write' on \"other/x\""), "{}", r.text);
    assert_eq!(get(&n, "/v1/kv/other/x", Some(&mgmt)).await.status, 404, "the refused write stored nothing");

    assert_eq!(put(&n, "/v1/kv/other/y", Some(&mgmt), "theirs").await.text, "true");
    assert_denied(&get(&n, "/v1/kv/other/y", Some(&app)).await, "read outside the prefix");
    let r = get(&n, "/v1/kv/?recurse", Some(&app)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.json();
    let keys: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["app/x"]);
    assert_eq!(r.header("x-consul-results-filtered-by-acls"), Some("true"));
    assert_eq!(get(&n, "/v1/kv/?keys", Some(&app)).await.json(), json!(["app/x"]));
    assert_eq!(get(&n, "/v1/kv/other/?recurse", Some(&app)).await.status, 404, "everything filtered is a miss");

    // A recursive delete needs write on everything under it; transactions are vetted per op.
    assert_denied(&call(&n, Method::DELETE, "/v1/kv/?recurse", Some(&app), "").await, "recursive delete of the root");
    let txn = json!([{"KV": {"Verb": "set", "Key": "app/t", "Value": "eA=="}}, {"KV": {"Verb": "set", "Key": "other/t", "Value": "eA=="}}]);
    let r = put(&n, "/v1/txn", Some(&app), &txn.to_string()).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["Errors"][0]["OpIndex"], 1);
    assert_eq!(get(&n, "/v1/kv/app/t", Some(&mgmt)).await.status, 404, "the refused transaction stored nothing");
    assert_eq!(get(&n, "/v1/kv/other/y", Some(&mgmt)).await.status, 200);
    // The token is no manager: ACL endpoints and management-only routes are closed to it.
    assert_denied(&get(&n, "/v1/acl/tokens", Some(&app)).await, "token list");
    assert_denied(&get(&n, "/v1/operator/raft/configuration", Some(&app)).await, "operator read");
}

#[tokio::test]
async fn service_rules_govern_registration_and_catalog_reads() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let mgmt = bootstrap(&n).await;
    let reader = token_with(
        &n,
        &mgmt,
        "reader",
        "service_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }",
    )
    .await;
    let web = token_with(&n, &mgmt, "web-writer", r#"service "web" { policy = "write" }"#).await;
    assert_denied(
        &put(&n, "/v1/agent/service/register", Some(&reader), &register_body("web")).await,
        "read-only register",
    );
    assert_denied(&put(&n, "/v1/agent/service/register", Some(&web), &register_body("db")).await, "another service");
    let r = put(&n, "/v1/agent/service/register", Some(&web), &register_body("web")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(put(&n, "/v1/agent/service/register", Some(&mgmt), &register_body("db")).await.status, 200);
    let services = get(&n, "/v1/catalog/services", Some(&reader)).await.json();
    assert!(services.get("web").is_some() && services.get("db").is_some(), "{services}");
    // The writer may not read other services (and no node): `db` and the nodes are left out.
    let r = get(&n, "/v1/catalog/services", Some(&web)).await;
    assert_eq!(r.json(), json!({"web": []}));
    assert_eq!(r.header("x-consul-results-filtered-by-acls"), Some("true"));
    assert_eq!(get(&n, "/v1/catalog/nodes", Some(&web)).await.json(), json!([]));
    assert_eq!(get(&n, "/v1/health/service/db", Some(&reader)).await.json().as_array().unwrap().len(), 1);
    assert_eq!(get(&n, "/v1/health/service/db", Some(&web)).await.json(), json!([]));
    assert_denied(&call(&n, Method::PUT, "/v1/agent/service/deregister/db-1", Some(&web), "").await, "deregister db");
    assert_eq!(get(&n, "/v1/agent/services", Some(&mgmt)).await.json().as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn nacos_tokens_work_as_consul_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let admin = common::admin_token(&n).await;
    // The Nacos administrator manages everything.
    assert_eq!(put(&n, "/v1/kv/a", Some(&admin), "v").await.text, "true");
    assert_eq!(get(&n, "/v1/acl/policies", Some(&admin)).await.status, 200);
    let r = get(&n, "/v1/kv/a", Some(&format!("{admin}x"))).await;
    assert_eq!((r.status, r.text.as_str()), (403, "ACL not found"), "a tampered JWT");
    let r = get(&n, "/v1/kv/a", Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJuYWNvcyJ9.")).await;
    assert_eq!((r.status, r.text.as_str()), (403, "ACL not found"), "alg none");

    // A Nacos user reaches the services its naming permissions cover, and no KV.
    let form = |path: &str, f: &[(&str, &str)]| {
        client().post(n.url(path)).query(&[("accessToken", admin.as_str())]).form(f).send()
    };
    assert_eq!(
        form("/nacos/v1/auth/users", &[("username", "svc"), ("password", "svc-pass-1")]).await.unwrap().status(),
        200
    );
    assert_eq!(form("/nacos/v1/auth/roles", &[("role", "web-role"), ("username", "svc")]).await.unwrap().status(), 200);
    let perm = [("role", "web-role"), ("resource", "public:DEFAULT_GROUP:naming/web"), ("action", "rw")];
    assert_eq!(form("/nacos/v1/auth/permissions", &perm).await.unwrap().status(), 200);
    let user = common::login(&n, "svc", "svc-pass-1").await;
    assert_eq!(put(&n, "/v1/agent/service/register", Some(&user), &register_body("web")).await.status, 200);
    assert_denied(&put(&n, "/v1/agent/service/register", Some(&user), &register_body("db")).await, "db");
    assert_denied(&put(&n, "/v1/kv/b", Some(&user), "v").await, "KV by a Nacos user");
    assert_eq!(get(&n, "/v1/kv/b", Some(&admin)).await.status, 404);
}

#[tokio::test]
async fn default_allow_lets_anonymous_in_but_not_manage() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[("BATATA_CONSUL_ACL_DEFAULT_POLICY", "allow")]).await;
    let r = put(&n, "/v1/kv/open", None, "v").await;
    assert_eq!((r.status, r.text.as_str()), (200, "true"));
    assert_eq!(r.header("x-consul-default-acl-policy"), Some("allow"));
    assert_eq!(get(&n, "/v1/kv/open?raw", None).await.text, "v");
    assert_denied(&get(&n, "/v1/acl/tokens", None).await, "the default policy is no management");
    // Explicit rules still bind under allow.
    let mgmt = bootstrap(&n).await;
    let t = token_with(&n, &mgmt, "no-secrets", r#"key_prefix "secret/" { policy = "deny" }"#).await;
    assert_denied(&put(&n, "/v1/kv/secret/x", Some(&t), "v").await, "denied prefix");
    assert_eq!(put(&n, "/v1/kv/free/x", Some(&t), "v").await.text, "true");
}

#[tokio::test]
async fn policy_and_token_crud_in_consuls_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let mgmt = bootstrap(&n).await;
    let m = Some(mgmt.as_str());
    let body = json!({"Name": "ops", "Description": "d", "Rules": r#"{"operator": "read"}"#}).to_string();
    let p = put(&n, "/v1/acl/policy", m, &body).await.json();
    let id = p["ID"].as_str().unwrap().to_string();
    assert_eq!((p["Name"].as_str(), p["Rules"].as_str()), (Some("ops"), Some(r#"{"operator": "read"}"#)));
    assert_eq!(get(&n, "/v1/acl/policy/name/ops", m).await.json()["ID"], p["ID"]);
    assert_eq!(put(&n, "/v1/acl/policy", m, &body).await.status, 400, "names are unique");
    let bad = json!({"Name": "x", "Rules": r#"key "a" { policy = "writ" }"#}).to_string();
    assert_eq!(put(&n, "/v1/acl/policy", m, &bad).await.status, 400, "bad rules");
    assert_eq!(put(&n, "/v1/acl/policy", m, &json!({"Name": "bad name!"}).to_string()).await.status, 400);
    let upd = json!({"Name": "ops", "Rules": r#"operator = "write""#}).to_string();
    let p2 = put(&n, &format!("/v1/acl/policy/{id}"), m, &upd).await.json();
    assert!(p2["ModifyIndex"].as_u64() > p["ModifyIndex"].as_u64(), "{p2}");
    let names: Vec<Value> =
        get(&n, "/v1/acl/policies", m).await.json().as_array().unwrap().iter().map(|p| p["Name"].clone()).collect();
    assert_eq!(names, [json!("global-management"), json!("ops")]);

    let t =
        put(&n, "/v1/acl/token", m, &json!({"Description": "t", "Policies": [{"ID": id}]}).to_string()).await.json();
    let (acc, sec) = (t["AccessorID"].as_str().unwrap().to_string(), t["SecretID"].as_str().unwrap().to_string());
    assert_eq!(t["Policies"], json!([{"ID": id, "Name": "ops"}]));
    assert_eq!(get(&n, "/v1/operator/raft/configuration", Some(&sec)).await.status, 200, "the policy applies");
    let own = get(&n, &format!("/v1/acl/token/{acc}"), m).await.json();
    assert_eq!(own["SecretID"], sec);
    let c = put(&n, &format!("/v1/acl/token/{acc}/clone"), m, r#"{"Description": "copy"}"#).await.json();
    assert_ne!(c["AccessorID"], t["AccessorID"]);
    assert_eq!((c["Description"].as_str(), &c["Policies"]), (Some("copy"), &t["Policies"]));
    let u = put(&n, &format!("/v1/acl/token/{acc}"), m, r#"{"Description": "none", "Policies": []}"#).await.json();
    assert_eq!((u["SecretID"].as_str(), u["Policies"].clone()), (Some(sec.as_str()), json!([])));
    assert_denied(&get(&n, "/v1/operator/raft/configuration", Some(&sec)).await, "the token lost its policy");
    assert_eq!(get(&n, "/v1/acl/tokens", m).await.json().as_array().unwrap().len(), 3);
    let unsupported = json!({"ServiceIdentities": [{"ServiceName": "web"}]}).to_string();
    assert_eq!(put(&n, "/v1/acl/token", m, &unsupported).await.status, 400);
    assert_eq!(call(&n, Method::DELETE, &format!("/v1/acl/token/{acc}"), m, "").await.text, "true");
    let r = get(&n, "/v1/kv/x", Some(&sec)).await;
    assert_eq!((r.status, r.text.as_str()), (403, "ACL not found"), "a deleted token");
    assert_eq!(call(&n, Method::DELETE, &format!("/v1/acl/policy/{id}"), m, "").await.text, "true");
    assert_eq!(get(&n, &format!("/v1/acl/policy/{id}"), m).await.status, 403);
}

#[tokio::test]
async fn the_consul_config_export_needs_the_nacos_export_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let admin = common::admin_token(&n).await;
    let r = client()
        .post(n.url("/nacos/v1/cs/configs"))
        .query(&[("accessToken", admin.as_str())])
        .form(&[("dataId", "db.yaml"), ("group", "DEFAULT_GROUP"), ("content", "password: hunter2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&n, "/v1/kv/export?namespaceId=public", None).await.status, 403);
    let mgmt = bootstrap(&n).await;
    let kv = token_with(&n, &mgmt, "kv-all", r#"key_prefix "" { policy = "write" }"#).await;
    assert_denied(&get(&n, "/v1/kv/export?namespaceId=public", Some(&kv)).await, "a KV token is no config reader");
    let import = json!([{"Key": "public/DEFAULT_GROUP/db.yaml", "Value": "cGFzc3dvcmQ6IHB3bmVk"}]).to_string();
    assert_denied(&put(&n, "/v1/kv/import?policy=OVERWRITE", Some(&kv), &import).await, "import");
    for token in [&admin, &mgmt] {
        let r = get(&n, "/v1/kv/export?namespaceId=public", Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()[0]["Key"], "public/DEFAULT_GROUP/db.yaml");
    }
    let r = client()
        .get(n.url("/nacos/v1/cs/configs"))
        .query(&[("accessToken", admin.as_str()), ("dataId", "db.yaml"), ("group", "DEFAULT_GROUP")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "password: hunter2", "the refused import changed nothing");
}

/// Both requests carry the cluster secret (the snapshot's own guard): only the token differs.
#[tokio::test]
async fn snapshot_needs_a_management_token() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), true, &[]).await;
    let mgmt = bootstrap(&n).await;
    let kv = token_with(&n, &mgmt, "kv-all", r#"key_prefix "" { policy = "write" }"#).await;
    let snapshot = |token: &str| {
        client()
            .get(n.url("/v1/snapshot"))
            .header("X-Batata-Cluster-Secret", common::SECRET)
            .header("X-Consul-Token", token)
            .send()
    };
    assert_eq!(snapshot(&kv).await.unwrap().status(), 403);
    assert_eq!(snapshot(&mgmt).await.unwrap().status(), 200);
}
