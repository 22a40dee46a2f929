//! The official Consul Go client (`github.com/hashicorp/consul/api`) against a node with auth
//! on: the `acl` scenario of `tests/compat/consul-go` bootstraps ACLs and works with a policy and
//! a token through the client's own ACL calls, and the full `consul` scenario runs with a Nacos
//! administrator's access token as its `CONSUL_HTTP_TOKEN`.

mod common;

use common::Node;
use common::Ports;

async fn auth_node(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.enable_auth();
    n.start();
    common::wait_ready(&n).await;
    n
}

/// Runs `tests/compat/consul-go/run.sh <scenario> <addr>` and fails with its output unless it
/// exits 0 with PASS lines and no FAIL line.
fn run_go(scenario: &str, node: &Node, prefix: &str, env: &[(&str, &str)]) {
    let script = format!("{}/tests/compat/consul-go/run.sh", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(scenario)
        .arg(node.ports.http_addr())
        .env("COMPAT_PREFIX", prefix)
        .env_remove("CONSUL_HTTP_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("run the scenario script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- consul-go {scenario} stdout ---\n{stdout}");
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("consul-go {scenario} failed ({}):\n{stdout}\n--- stderr (tail) ---\n{}", out.status, tail.join("\n"));
    }
    assert!(stdout.contains("PASS "), "consul-go {scenario} printed no PASS line:\n{stdout}");
    assert!(!stdout.contains("FAIL "), "consul-go {scenario} printed a FAIL line:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_go_acl_bootstrap_policy_and_token() {
    let root = tempfile::tempdir().unwrap();
    let n = auth_node(root.path()).await;
    let n = tokio::task::spawn_blocking(move || {
        run_go("acl", &n, "cgacl", &[]);
        n
    })
    .await
    .unwrap();
    drop(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_go_scenario_with_a_nacos_token() {
    let root = tempfile::tempdir().unwrap();
    let n = auth_node(root.path()).await;
    let admin = common::admin_token(&n).await;
    let n = tokio::task::spawn_blocking(move || {
        run_go("consul", &n, "cgnacos", &[("CONSUL_HTTP_TOKEN", admin.as_str())]);
        n
    })
    .await
    .unwrap();
    drop(n);
}
