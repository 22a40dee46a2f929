//! SDK compatibility: the official, unmodified Nacos clients of four languages against real
//! `batata` processes, standalone and as a 3-node cluster. The Rust client runs in-process; the
//! Go, Python and Java clients run the scenario programs under `tests/compat/<lang>/` (the
//! contract they follow is in `tests/compat/README.md`), which assert by themselves and exit
//! non-zero on the first failed step. The same harness runs the Consul clients (Go `consul/api`,
//! Python `py-consul`) against the Consul HTTP API, and the Java Nacos client against services
//! registered through it (one registry for both protocols). With auth on, the Go, Python and
//! Java clients log in through their own username/password options (`lang_auth`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Node;
use common::Ports;
use nacos_sdk::api::config::ConfigChangeListener;
use nacos_sdk::api::config::ConfigResponse;
use nacos_sdk::api::config::ConfigService;
use nacos_sdk::api::config::ConfigServiceBuilder;
use nacos_sdk::api::naming::NamingChangeEvent;
use nacos_sdk::api::naming::NamingEventListener;
use nacos_sdk::api::naming::ServiceInstance;
use nacos_sdk::api::props::ClientProps;
use tokio::sync::mpsc;

async fn standalone(root: &std::path::Path) -> Vec<Node> {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.start();
    common::wait_ready(&n).await;
    vec![n]
}

fn addrs(nodes: &[Node]) -> String {
    Ports::all_http(&nodes.iter().map(|n| n.ports.clone()).collect::<Vec<_>>())
}

/// Runs `tests/compat/<lang>/run.sh <scenario> <servers>` (with `env` added to its environment)
/// and fails with its output unless it exits 0.
fn run_scenario(lang: &str, scenario: &str, nodes: &[Node], prefix: &str, env: &[(&str, &str)]) {
    let script = format!("{}/tests/compat/{lang}/run.sh", env!("CARGO_MANIFEST_DIR"));
    let t0 = std::time::Instant::now();
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(scenario)
        .arg(addrs(nodes))
        .env("COMPAT_PREFIX", prefix)
        .envs(env.iter().copied())
        .output()
        .expect("run the scenario script");
    println!("--- {lang} {scenario} took {:.1} s", t0.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {lang} {scenario} stdout ---\n{stdout}");
    if !out.status.success() {
        let tail: String =
            stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("{lang} {scenario} scenario failed ({}):\n{stdout}\n--- stderr (tail) ---\n{tail}", out.status);
    }
    assert!(stdout.contains("PASS "), "{lang} {scenario} printed no PASS line:\n{stdout}");
    assert!(!stdout.contains("FAIL "), "{lang} {scenario} printed a FAIL line:\n{stdout}");
}

async fn lang_scenario(lang: &str, scenario: &str, cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let prefix = format!("{lang}{}{}", &scenario[..1], if cluster { "c" } else { "s" });
    let (lang, scenario) = (lang.to_string(), scenario.to_string());
    let nodes = tokio::task::spawn_blocking(move || {
        run_scenario(&lang, &scenario, &nodes, &prefix, &[]);
        nodes
    })
    .await
    .unwrap();
    drop(nodes);
}

#[tokio::test]
async fn go_sdk_config_standalone() {
    lang_scenario("go", "config", false).await;
}

#[tokio::test]
async fn go_sdk_config_cluster() {
    lang_scenario("go", "config", true).await;
}

#[tokio::test]
async fn python_sdk_config_standalone() {
    lang_scenario("python", "config", false).await;
}

#[tokio::test]
async fn python_sdk_config_cluster() {
    lang_scenario("python", "config", true).await;
}

#[tokio::test]
async fn java_sdk_config_standalone() {
    lang_scenario("java", "config", false).await;
}

#[tokio::test]
async fn java_sdk_config_cluster() {
    lang_scenario("java", "config", true).await;
}

#[tokio::test]
async fn go_sdk_naming_standalone() {
    lang_scenario("go", "naming", false).await;
}

#[tokio::test]
async fn go_sdk_naming_cluster() {
    lang_scenario("go", "naming", true).await;
}

#[tokio::test]
async fn python_sdk_naming_standalone() {
    lang_scenario("python", "naming", false).await;
}

#[tokio::test]
async fn python_sdk_naming_cluster() {
    lang_scenario("python", "naming", true).await;
}

#[tokio::test]
async fn java_sdk_naming_standalone() {
    lang_scenario("java", "naming", false).await;
}

#[tokio::test]
async fn java_sdk_naming_cluster() {
    lang_scenario("java", "naming", true).await;
}

// ---- auth on: the clients' own username/password login ----

/// Has `public:*:*` rw: runs the `config` and `naming` scenarios.
const RW_USER: (&str, &str) = ("compat-rw", "compat-rw-pass-1");
/// Has rw on namespace `<prefix>-own` only: runs the `auth_denied` scenario.
const OTHER_USER: (&str, &str) = ("compat-other", "compat-other-pass-1");

async fn admin_post(node: &Node, token: &str, path: &str, form: &[(&str, &str)]) {
    let (st, body) = common::post_as(node, token, path, form).await;
    assert!((200..300).contains(&st), "POST {path} {form:?}: {st} {body}");
}

/// `GET path?query` with the administrator's token: (status, body).
async fn admin_get(node: &Node, token: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
    let r = common::client().get(node.url(path)).query(query).query(&[("accessToken", token)]).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The scenarios with `nacos.core.auth.enabled` on, through the official clients' own
/// username/password options (`NACOS_USERNAME` / `NACOS_PASSWORD`): `config` and `naming` as a
/// user with `public:*:*` rw, then `auth_denied` as a user whose only permission is rw on
/// namespace `<prefix>-own` (its own namespace works, public is refused). Afterwards the
/// administrator checks that the refused publish stored nothing.
async fn lang_auth(lang: &str, cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster {
        let env = [
            ("BATATA_AUTH_ENABLED", "true"),
            ("BATATA_AUTH_SECRET_KEY", common::AUTH_KEY),
            ("BATATA_ADMIN_PASSWORD", common::ADMIN_PASSWORD),
        ];
        common::start_cluster_with(root.path(), 3, &env).await
    } else {
        let mut n = Node::new(root.path(), "solo", Ports::new(), &[]);
        n.enable_auth();
        n.start();
        common::wait_ready(&n).await;
        vec![n]
    };
    let prefix = format!("{lang}a{}", if cluster { "c" } else { "s" });
    let own = format!("{prefix}-own");
    let secret_id = format!("{prefix}-secret.properties");
    let n0 = &nodes[0];
    let admin = common::admin_token(n0).await;

    // Auth is really on: no token, no read.
    let (st, body) = {
        let r = common::client()
            .get(n0.url("/nacos/v1/cs/configs"))
            .query(&[("dataId", secret_id.as_str()), ("group", "DEFAULT_GROUP")])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    assert_eq!(st, 403, "a read without a token: {body}");

    for (user, password) in [RW_USER, OTHER_USER] {
        admin_post(n0, &admin, "/nacos/v1/auth/users", &[("username", user), ("password", password)]).await;
    }
    admin_post(n0, &admin, "/nacos/v1/auth/roles", &[("role", "compat-rw-role"), ("username", RW_USER.0)]).await;
    let perm = [("role", "compat-rw-role"), ("resource", "public:*:*"), ("action", "rw")];
    admin_post(n0, &admin, "/nacos/v1/auth/permissions", &perm).await;
    admin_post(n0, &admin, "/nacos/v1/auth/roles", &[("role", "compat-other-role"), ("username", OTHER_USER.0)]).await;
    let own_res = format!("{own}:*:*");
    let perm = [("role", "compat-other-role"), ("resource", own_res.as_str()), ("action", "rw")];
    admin_post(n0, &admin, "/nacos/v1/auth/permissions", &perm).await;
    let ns = [("customNamespaceId", own.as_str()), ("namespaceName", own.as_str()), ("namespaceDesc", "")];
    admin_post(n0, &admin, "/nacos/v1/console/namespaces", &ns).await;
    // What auth_denied's denied_get must not be able to read.
    let secret = [("dataId", secret_id.as_str()), ("group", "DEFAULT_GROUP"), ("content", "secret=1")];
    admin_post(n0, &admin, "/nacos/v1/cs/configs", &secret).await;
    // Every node has applied all of the above (it was written last) before any client logs in.
    for n in &nodes {
        common::eventually(30, "every node serves the secret config", || async {
            let q = [("dataId", secret_id.as_str()), ("group", "DEFAULT_GROUP")];
            (admin_get(n, &admin, "/nacos/v1/cs/configs", &q).await == (200, "secret=1".to_string())).then_some(())
        })
        .await;
        common::login(n, RW_USER.0, RW_USER.1).await;
        common::login(n, OTHER_USER.0, OTHER_USER.1).await;
    }

    let (lang2, prefix2) = (lang.to_string(), prefix.clone());
    let nodes = tokio::task::spawn_blocking(move || {
        let rw = [("NACOS_USERNAME", RW_USER.0), ("NACOS_PASSWORD", RW_USER.1)];
        run_scenario(&lang2, "config", &nodes, &prefix2, &rw);
        run_scenario(&lang2, "naming", &nodes, &prefix2, &rw);
        let other = [("NACOS_USERNAME", OTHER_USER.0), ("NACOS_PASSWORD", OTHER_USER.1)];
        run_scenario(&lang2, "auth_denied", &nodes, &prefix2, &other);
        nodes
    })
    .await
    .unwrap();

    // The refused publish left nothing; the allowed one in the user's own namespace is there.
    // (Instances are ephemeral: gone with their client either way, so not checked here.)
    let n0 = &nodes[0];
    let denied_id = format!("{prefix}-denied.properties");
    let (st, body) =
        admin_get(n0, &admin, "/nacos/v1/cs/configs", &[("dataId", denied_id.as_str()), ("group", "DEFAULT_GROUP")])
            .await;
    assert_eq!(st, 404, "the refused publish of {denied_id} stored something: {body}");
    let own_id = format!("{prefix}-own.properties");
    let q = [("dataId", own_id.as_str()), ("group", "DEFAULT_GROUP"), ("tenant", own.as_str())];
    assert_eq!(admin_get(n0, &admin, "/nacos/v1/cs/configs", &q).await, (200, "own=1".to_string()));
    drop(nodes);
}

#[tokio::test]
async fn go_sdk_auth_standalone() {
    lang_auth("go", false).await;
}

#[tokio::test]
async fn go_sdk_auth_cluster() {
    lang_auth("go", true).await;
}

#[tokio::test]
async fn python_sdk_auth_standalone() {
    lang_auth("python", false).await;
}

#[tokio::test]
async fn python_sdk_auth_cluster() {
    lang_auth("python", true).await;
}

#[tokio::test]
async fn java_sdk_auth_standalone() {
    lang_auth("java", false).await;
}

#[tokio::test]
async fn java_sdk_auth_cluster() {
    lang_auth("java", true).await;
}

// ---- the Consul API, through the Consul clients of Go and Python ----

/// The `consul` scenario of `tests/compat/<lang>/` (`consul-go`, `consul-python`). For its
/// `nacos_visible` step an instance of `<prefix>-nacos-svc` (10.0.0.9:8080, metadata v=1) and a
/// disabled one of `<prefix>-nacos-off` are registered first by the in-process Rust Nacos client
/// on the first node, which stays connected (its instances are ephemeral) until the scenario has
/// finished.
async fn consul_scenario(lang: &str, cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let prefix = format!("{}{}", lang.replace("consul-", "c"), if cluster { "c" } else { "s" });
    let nacos_svc = format!("{prefix}-nacos-svc");
    let nacos = common::rust_naming_client(&nodes[0].ports.http_addr(), &root.path().join("ncache")).await;
    nacos
        .register_instance(nacos_svc.clone(), None, common::sdk_instance("10.0.0.9"))
        .await
        .expect("register the Nacos instance");
    // A disabled instance (another service: one instance per service per connection) must be a
    // critical one to Consul.
    let off_svc = format!("{prefix}-nacos-off");
    let off = ServiceInstance { enabled: false, ..common::sdk_instance("10.0.0.10") };
    nacos.register_instance(off_svc.clone(), None, off).await.expect("register the disabled Nacos instance");
    let lang = lang.to_string();
    let nodes = tokio::task::spawn_blocking(move || {
        let env = [
            ("COMPAT_NACOS_SERVICE", nacos_svc.as_str()),
            ("COMPAT_NACOS_INSTANCE", "10.0.0.9:8080"),
            ("COMPAT_NACOS_META", "v=1"),
            ("COMPAT_NACOS_DISABLED_SERVICE", off_svc.as_str()),
        ];
        run_scenario(&lang, "consul", &nodes, &prefix, &env);
        nodes
    })
    .await
    .unwrap();
    drop(nacos);
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_go_standalone() {
    consul_scenario("consul-go", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_go_cluster() {
    consul_scenario("consul-go", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_python_standalone() {
    consul_scenario("consul-python", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_python_cluster() {
    consul_scenario("consul-python", true).await;
}

/// Registered through the Consul agent API, seen (and pushed) by the Java Nacos client.
#[tokio::test]
async fn java_consul_cross_standalone() {
    lang_scenario("java", "consul_cross", false).await;
}

#[tokio::test]
async fn java_consul_cross_cluster() {
    lang_scenario("java", "consul_cross", true).await;
}

// ---- the Rust client, in-process ----

struct Forward(mpsc::UnboundedSender<String>);

impl ConfigChangeListener for Forward {
    fn notify(&self, r: ConfigResponse) {
        let _ = self.0.send(r.content().clone());
    }
}

async fn rust_client(addr: &str, namespace: &str, cache: &std::path::Path) -> ConfigService {
    let props = ClientProps::new()
        .server_addr(addr)
        .namespace(namespace)
        .app_name("batata-compat")
        .env_first(false)
        .load_cache_at_start(false)
        .cache_dir(cache);
    ConfigServiceBuilder::new(props).build().await.expect("build the Rust config client")
}

/// Reads until `want` (None = not found) or 5 s pass: a write through one node is applied on the
/// others asynchronously.
async fn read_until(c: &ConfigService, data_id: &str, group: &str, want: Option<&str>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = match c.get_config(data_id.into(), group.into()).await {
            Ok(r) => Some(r.content().clone()),
            Err(nacos_sdk::api::error::Error::ConfigNotFound(_)) => None,
            Err(e) => panic!("get_config {data_id}: {e}"),
        };
        if got.as_deref() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{data_id}: wanted {want:?}, still {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rust_config(cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let first = nodes[0].ports.http_addr();
    let last = nodes[nodes.len() - 1].ports.http_addr();
    let a = rust_client(&first, "", &root.path().join("cache-a")).await;
    let b = rust_client(&last, "public", &root.path().join("cache-b")).await;
    let (g, id) = ("DEFAULT_GROUP", "rust-app.properties");

    // publish_get, and "" and "public" are one namespace.
    assert!(a.publish_config(id.into(), g.into(), "k=v1".into(), Some("properties".into())).await.unwrap());
    read_until(&a, id, g, Some("k=v1")).await;
    read_until(&b, id, g, Some("k=v1")).await;

    // listen_push across nodes.
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.add_listener(id.into(), g.into(), Arc::new(Forward(tx))).await.unwrap();
    // The Rust client sends its listen request from a background task after add_listener
    // returns; publish only once B's node holds the listener, or the push has nobody to reach.
    let b_node = &nodes[nodes.len() - 1];
    common::eventually(10, "B's node holds the config listener", || async {
        let m = common::client().get(b_node.url("/nacos/metrics")).send().await.ok()?.text().await.ok()?;
        m.lines().any(|l| l.starts_with("batata_sdk_config_listeners ") && !l.ends_with(" 0")).then_some(())
    })
    .await;
    assert!(a.publish_config(id.into(), g.into(), "k=v2".into(), None).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(c) = rx.recv().await {
            if c == "k=v2" {
                return;
            }
        }
    })
    .await
    .expect("listener on the other node got k=v2 within 10 s");

    // cas: a wrong md5 is refused, the right one wins.
    let md5 = format!("{:x}", md5::compute("k=v2"));
    assert!(a.publish_config_cas(id.into(), g.into(), "k=v3".into(), None, "0".repeat(32)).await.is_err_or_false());
    read_until(&b, id, g, Some("k=v2")).await;
    assert!(a.publish_config_cas(id.into(), g.into(), "k=v3".into(), None, md5).await.unwrap());
    read_until(&b, id, g, Some("k=v3")).await;

    // remove. Read through a client on the other node that does not listen to the key: the
    // Rust client (0.8.3) answers get_config from its listener cache and keeps the last content
    // of a deleted config there.
    assert!(a.remove_config(id.into(), g.into()).await.unwrap());
    let c = rust_client(&last, "", &root.path().join("cache-c")).await;
    read_until(&c, id, g, None).await;
    read_until(&a, id, g, None).await;
}

trait ErrOrFalse {
    fn is_err_or_false(&self) -> bool;
}

impl<E> ErrOrFalse for Result<bool, E> {
    fn is_err_or_false(&self) -> bool {
        !matches!(self, Ok(true))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_config_standalone() {
    rust_config(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_config_cluster() {
    rust_config(true).await;
}

// ---- the Rust naming client, in-process ----

struct Pushes(mpsc::UnboundedSender<Vec<String>>);

impl NamingEventListener for Pushes {
    fn event(&self, e: Arc<NamingChangeEvent>) {
        let mut ips: Vec<String> = e.instances.iter().flatten().map(|i| format!("{}:{}", i.ip(), i.port())).collect();
        ips.sort();
        let _ = self.0.send(ips);
    }
}

/// Waits for a push whose instance list is `want`.
async fn push_of(rx: &mut mpsc::UnboundedReceiver<Vec<String>>, want: &[&str], what: &str) {
    let res = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ips) = rx.recv().await {
            if ips == want {
                return;
            }
        }
    })
    .await;
    assert!(res.is_ok(), "{what}: no push of {want:?} within 10 s");
}

/// The naming scenario of `tests/compat/README.md` with the `nacos-sdk` crate: A (and A2) on
/// the first node, B on the last.
async fn rust_naming(cluster: bool) {
    let root = tempfile::tempdir().unwrap();
    let nodes = if cluster { common::start_cluster(root.path(), 3).await } else { standalone(root.path()).await };
    let first = nodes[0].ports.http_addr();
    let last = nodes[nodes.len() - 1].ports.http_addr();
    let a = common::rust_naming_client(&first, &root.path().join("ncache-a")).await;
    let a2 = common::rust_naming_client(&first, &root.path().join("ncache-a2")).await;
    let b = common::rust_naming_client(&last, &root.path().join("ncache-b")).await;
    let svc = if cluster { "rust-svc-c" } else { "rust-svc-s" };

    // register_list: B (another node) lists exactly A's instance.
    a.register_instance(svc.into(), None, common::sdk_instance("10.0.0.1")).await.unwrap();
    common::eventually(10, "B lists A's instance", || async {
        let l = b.get_all_instances(svc.into(), None, vec![], false).await.ok()?;
        (l.len() == 1 && l[0].ip() == "10.0.0.1" && l[0].metadata().get("v").map(String::as_str) == Some("1"))
            .then_some(())
    })
    .await;

    // subscribe_push: a second instance (from A2: one instance per service per connection)
    // reaches B's listener.
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.subscribe(svc.into(), None, vec![], Arc::new(Pushes(tx))).await.unwrap();
    a2.register_instance(svc.into(), None, common::sdk_instance("10.0.0.2")).await.unwrap();
    push_of(&mut rx, &["10.0.0.1:8080", "10.0.0.2:8080"], "subscribe_push").await;

    // deregister.
    a.deregister_instance(svc.into(), None, common::sdk_instance("10.0.0.1")).await.unwrap();
    push_of(&mut rx, &["10.0.0.2:8080"], "deregister").await;
    let healthy = b.select_instances(svc.into(), None, vec![], false, true).await.unwrap();
    assert_eq!(healthy.iter().map(|i| i.ip().to_string()).collect::<Vec<_>>(), vec!["10.0.0.2"]);

    // service_list.
    let (names, count) = b.get_service_list(1, 100, None).await.unwrap();
    assert!(count >= 1 && names.iter().any(|n| n == svc), "service list {names:?} lacks {svc}");
    // close_drops_ephemeral is left to the Go, Python and Java scenarios: nacos-sdk 0.8.3 has
    // no shutdown, and dropping a client leaves its background tasks and connection running.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_naming_standalone() {
    rust_naming(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_naming_cluster() {
    rust_naming(true).await;
}
