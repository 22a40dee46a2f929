//! The registry on a 3-node cluster when a node dies: an SDK whose node is killed re-registers
//! through another node, and the instances of clients that cannot come back (they knew only the
//! dead node) are expired by the leader once the grace period has passed: no ghosts.

mod common;

use std::time::Duration;

use common::Node;
use nacos_sdk::api::naming::NamingService;

const SVC: &str = "ghost-svc";

/// SDK connections a node holds, from its metrics.
async fn connections(n: &Node) -> Option<u64> {
    let m = common::client().get(n.url("/nacos/metrics")).send().await.ok()?.text().await.ok()?;
    m.lines()
        .find_map(|l| l.strip_prefix("batata_sdk_connections "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

async fn ips(c: &NamingService) -> Option<Vec<String>> {
    let mut v: Vec<String> =
        c.get_all_instances(SVC.into(), None, vec![], false).await.ok()?.iter().map(|i| i.ip().to_string()).collect();
    v.sort();
    Some(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_connection_node_leaves_no_ghost() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes =
        common::start_cluster_with(root.path(), 3, &[("BATATA_NACOS_NAMING_CONNECTION_GRACE_MS", "3000")]).await;
    let all: Vec<String> = nodes.iter().map(|n| n.ports.http_addr()).collect();

    // A may use any node; find the one it connected to (X).
    let a = common::rust_naming_client(&all.join(","), &root.path().join("a")).await;
    a.register_instance(SVC.into(), None, common::sdk_instance("10.0.0.1")).await.unwrap();
    let x = common::eventually(10, "A's connection shows on one node", || async {
        let mut held = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if connections(n).await? > 0 {
                held.push(i);
            }
        }
        (held.len() == 1).then(|| held[0])
    })
    .await;
    let y = (x + 1) % 3;

    // B knows only X: it cannot re-register anywhere once X is gone.
    let b = common::rust_naming_client(&all[x], &root.path().join("b")).await;
    b.register_instance(SVC.into(), None, common::sdk_instance("10.0.0.9")).await.unwrap();
    let watcher = common::rust_naming_client(&all[y], &root.path().join("w")).await;
    common::eventually(10, "both instances are listed through Y", || async {
        (ips(&watcher).await? == ["10.0.0.1", "10.0.0.9"]).then_some(())
    })
    .await;

    nodes[x].kill9();
    // A fails over and re-registers; B's instance is expired after the grace period, by the
    // old leader or, if X led, by the new one once it has re-armed every lease.
    common::eventually(40, "only A's instance remains", || async {
        (ips(&watcher).await? == ["10.0.0.1"]).then_some(())
    })
    .await;
    // And it stays so: A's instance is owned by its new connection, not expired with X's.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ips(&watcher).await.unwrap(), vec!["10.0.0.1".to_string()]);
    drop(b);
}
