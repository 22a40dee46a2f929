//! Black-box tests of 3- and 4-node clusters of real `batata` processes on loopback.

mod common;

use std::time::Duration;

use common::*;

fn index_of(nodes: &[Node], id: u64) -> usize {
    nodes
        .iter()
        .position(|n| {
            let p = std::fs::read_to_string(n.dir.join("data/node_id")).unwrap_or_default();
            p.trim().parse::<u64>().ok() == Some(id)
        })
        .expect("leader is one of the nodes")
}

/// The index of the leader all `alive` nodes agree on, which must itself be alive.
async fn leader_index(nodes: &[Node], alive: &[usize]) -> usize {
    eventually(30, "a leader among the live nodes", || async {
        let mut seen = None;
        for &i in alive {
            let l = leader_of(&nodes[i]).await?;
            if seen.is_some() && seen != Some(l) {
                return None;
            }
            seen = Some(l);
        }
        let idx = index_of(nodes, seen?);
        alive.contains(&idx).then_some(idx)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_failover_and_catch_up() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(root.path(), 3).await;
    // A write on any node is readable on all.
    for (i, n) in nodes.iter().enumerate() {
        publish_ok(n, &format!("from-{i}"), &format!("v{i}")).await;
    }
    for n in &nodes {
        for i in 0..3 {
            assert_eq!(get_config(n, &format!("from-{i}"), true).await, Some(format!("v{i}")));
        }
    }
    // Kill -9 the leader: a new one is elected and writes go on.
    let old = leader_index(&nodes, &[0, 1, 2]).await;
    nodes[old].kill9();
    let alive: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = leader_index(&nodes, &alive).await;
    assert_ne!(new, old);
    for k in 0..20 {
        publish_ok(&nodes[alive[k % 2]], &format!("after-{k}"), "x").await;
    }
    // The old leader restarts and catches up.
    nodes[old].start();
    wait_ready(&nodes[old]).await;
    assert_eq!(get_config(&nodes[old], "after-19", true).await.as_deref(), Some("x"));
    let refs: Vec<&Node> = nodes.iter().collect();
    let (_, records) = converge(&refs).await;
    assert_eq!(records, 23);
    // Operations views.
    let peers: Vec<String> = client().get(nodes[0].url("/v1/status/peers")).send().await.unwrap().json().await.unwrap();
    assert_eq!(peers.len(), 3);
    let leader: String = client().get(nodes[1].url("/v1/status/leader")).send().await.unwrap().json().await.unwrap();
    assert!(peers.contains(&leader), "{leader} in {peers:?}");
    let v: serde_json::Value =
        client().get(nodes[2].url("/nacos/v1/core/cluster/nodes")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["data"].as_array().map(|a| a.len()), Some(3));
    let metrics = client().get(nodes[0].url("/nacos/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("batata_raft_term") && metrics.contains("batata_raft_log_fsyncs_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizable_read_on_another_node_never_misses() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_cluster(root.path(), 3).await;
    for round in 0..1000 {
        let a = &nodes[round % 3];
        let b = &nodes[(round + 1) % 3];
        let value = format!("r{round}");
        publish_ok(a, "lin", &value).await;
        assert_eq!(get_config(b, "lin", true).await, Some(value), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_installs_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let ports: Vec<Ports> = (0..3).map(|_| Ports::new()).collect();
    let mut nodes: Vec<Node> =
        ports.iter().enumerate().map(|(i, p)| Node::new(root.path(), &format!("n{i}"), p.clone(), &ports)).collect();
    for n in nodes.iter_mut() {
        n.set_env("BATATA_RAFT_SNAPSHOT_LOGS_SINCE_LAST", "50");
        n.set_env("BATATA_RAFT_MAX_IN_SNAPSHOT_LOG_TO_KEEP", "0");
        n.start();
    }
    for n in &nodes {
        wait_ready(n).await;
    }
    let leader = leader_index(&nodes, &[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let stopped_at = status(&nodes[follower]).await.unwrap()["applied"].as_u64().unwrap_or(0);
    nodes[follower].kill9();
    for k in 0..300 {
        publish_ok(&nodes[leader], &format!("k{}", k % 120), &format!("v{k}")).await;
    }
    // The log the follower needs is gone from the leader.
    eventually(30, "leader purged past the follower", || async {
        let p = status(&nodes[leader]).await?["purged"].as_u64()?;
        (p > stopped_at + 1).then_some(())
    })
    .await;
    nodes[follower].start();
    wait_ready(&nodes[follower]).await;
    let refs: Vec<&Node> = vec![&nodes[leader], &nodes[follower], &nodes[other]];
    let (_, records) = converge(&refs).await;
    assert_eq!(records, 120);
    let snap = status(&nodes[follower]).await.unwrap()["snapshot"].as_u64().unwrap_or(0);
    assert!(snap > stopped_at, "the follower must have installed a snapshot ({snap} <= {stopped_at})");
    assert!(nodes[follower].log_text().contains("snapshot installed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_replicates_serves_reads_and_does_not_vote_and_restart_all_keeps_cluster() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(root.path(), 3).await;
    let voters: Vec<Ports> = nodes.iter().map(|n| n.ports.clone()).collect();
    publish_ok(&nodes[0], "before-learner", "1").await;
    // A 4th node in another datacenter joins as a learner.
    let mut learner = Node::new(root.path(), "learner", Ports::new(), &voters);
    learner.set_env("BATATA_NODE_ROLE", "learner");
    learner.set_env("BATATA_DATACENTER", "dc2");
    learner.start();
    wait_ready(&learner).await;
    publish_ok(&nodes[1], "after-learner", "2").await;
    assert_eq!(get_config(&learner, "after-learner", true).await.as_deref(), Some("2"));
    eventually(30, "learner has the data locally", || async {
        (get_config(&learner, "before-learner", false).await.as_deref() == Some("1")).then_some(())
    })
    .await;
    let st = status(&nodes[0]).await.unwrap();
    let members = st["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 4);
    assert_eq!(members.iter().filter(|m| m["voter"] == true).count(), 3);
    let cluster_id = st["cluster_id"].as_str().unwrap().to_string();
    // Two voters down (the leader among them): no leader, although the learner is up.
    let leader = leader_index(&nodes, &[0, 1, 2]).await;
    let survivor = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    nodes[leader].kill9();
    nodes[other].kill9();
    eventually(30, "no leader without a voter majority", || async {
        let s = status(&nodes[survivor]).await?;
        (s["leader"].is_null() && s["state"] != "Leader").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in [&nodes[survivor], &learner] {
        let s = status(n).await.unwrap();
        assert!(s["state"] != "Leader", "no node may lead without a majority: {s}");
    }
    assert!(status(&nodes[survivor]).await.unwrap()["leader"].is_null());
    let r = client()
        .post(learner.url("/nacos/v1/cs/configs"))
        .form(&[("dataId", "no-quorum"), ("content", "x")])
        .timeout(Duration::from_secs(25))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503, "a write without a quorum must fail");
    // All restarted at once: the same cluster comes back, not a new one.
    nodes[survivor].kill9();
    learner.kill9();
    for n in nodes.iter_mut() {
        n.start();
    }
    learner.start();
    for n in nodes.iter() {
        wait_ready(n).await;
    }
    wait_ready(&learner).await;
    for n in nodes.iter().chain(std::iter::once(&learner)) {
        let s = status(n).await.unwrap();
        assert_eq!(s["cluster_id"].as_str(), Some(cluster_id.as_str()));
        assert_eq!(get_config(n, "after-learner", true).await.as_deref(), Some("2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disaster_recovery_into_fresh_single_node_and_fresh_cluster() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(root.path(), 3).await;
    for k in 0..30 {
        publish_ok(&nodes[k % 3], &format!("dr{k}"), &format!("value-{k}")).await;
    }
    let (crc, records) = converge(&nodes.iter().collect::<Vec<_>>()).await;
    let file = root.path().join("dr.bsnap");
    let out = std::process::Command::new(bin())
        .env("BATATA_CLUSTER_SECRET", SECRET)
        .args(["snapshot", "save", "--addr", &nodes[1].ports.http_addr(), "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for n in nodes.iter_mut() {
        n.kill9();
        std::fs::remove_dir_all(n.dir.join("data")).unwrap();
    }
    // Fresh single node.
    let solo_root = root.path().join("solo");
    let mut solo = Node::new(&solo_root, "solo", Ports::new(), &[]);
    let restore = |data: std::path::PathBuf| {
        let out = std::process::Command::new(bin())
            .args(["snapshot", "restore", "--in"])
            .arg(&file)
            .arg("--data-dir")
            .arg(data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    restore(solo.dir.join("data"));
    solo.start();
    wait_ready(&solo).await;
    let got = eventually(30, "solo restored", || async {
        let c = checksum(&solo).await?;
        (c.2 == records).then_some(c)
    })
    .await;
    assert_eq!((got.1, got.2), (crc, records));
    // Fresh 3-node cluster: every node gets the file; it is applied once.
    let ports: Vec<Ports> = (0..3).map(|_| Ports::new()).collect();
    let fresh_root = root.path().join("fresh");
    let mut fresh: Vec<Node> =
        ports.iter().enumerate().map(|(i, p)| Node::new(&fresh_root, &format!("f{i}"), p.clone(), &ports)).collect();
    for n in fresh.iter_mut() {
        restore(n.dir.join("data"));
        n.start();
    }
    for n in &fresh {
        wait_ready(n).await;
    }
    let (crc2, records2) = eventually(60, "fresh cluster restored", || async {
        let mut sums = Vec::new();
        for n in &fresh {
            sums.push(checksum(n).await?);
        }
        let first = sums[0];
        (first.2 == records && sums.iter().all(|s| s.1 == first.1 && s.0 == first.0)).then_some((first.1, first.2))
    })
    .await;
    assert_eq!((crc2, records2), (crc, records));
    assert_eq!(get_config(&fresh[2], "dr7", true).await.as_deref(), Some("value-7"));
}

async fn listen(node: &Node, records: &str, timeout_ms: Option<u64>, no_hangup: bool) -> (u16, String) {
    let mut req = client().post(node.url("/nacos/v1/cs/configs/listener")).form(&[("Listening-Configs", records)]);
    if let Some(t) = timeout_ms {
        req = req.header("Long-Pulling-Timeout", t.to_string());
    }
    if no_hangup {
        req = req.header("Long-Pulling-Timeout-No-Hangup", "true");
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_listener_on_one_node_wakes_on_a_publish_through_another() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_cluster(root.path(), 3).await;
    publish_ok(&nodes[0], "lp", "v1").await;
    // Listeners compare against the local copy: let node B have it first.
    assert_eq!(get_config(&nodes[1], "lp", true).await.as_deref(), Some("v1"));
    let md5_v1 = format!("{:x}", md5::compute(b"v1"));
    let rec = format!("lp\u{2}DEFAULT_GROUP\u{2}{md5_v1}\u{1}");
    // Up to date: with no hang-up the answer is immediate and empty.
    assert_eq!(listen(&nodes[1], &rec, Some(30_000), true).await, (200, String::new()));
    // Stale md5: immediate answer naming the key, URL-encoded.
    let stale = "lp\u{2}DEFAULT_GROUP\u{2}\u{1}";
    assert_eq!(listen(&nodes[2], stale, Some(30_000), false).await, (200, "lp%02DEFAULT_GROUP%01\n".to_string()));
    // Held on node B, woken by a publish on node A.
    let b_url = nodes[1].url("/nacos/v1/cs/configs/listener");
    let rec2 = rec.clone();
    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = client()
            .post(b_url)
            .header("Long-Pulling-Timeout", "30000")
            .form(&[("Listening-Configs", rec2.as_str())])
            .send()
            .await
            .unwrap();
        (r.text().await.unwrap(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the listener must hold while nothing changed");
    let published = std::time::Instant::now();
    publish_ok(&nodes[0], "lp", "v2").await;
    let (body, _) = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("listener woke").unwrap();
    assert_eq!(body, "lp%02DEFAULT_GROUP%01\n");
    assert!(published.elapsed() < Duration::from_secs(1), "woken {:?} after the publish", published.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_hands_over_and_exits_zero() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(root.path(), 3).await;
    publish_ok(&nodes[0], "before", "1").await;
    let old = leader_index(&nodes, &[0, 1, 2]).await;
    let old_term = status(&nodes[old]).await.unwrap()["term"].as_u64().unwrap();
    assert_eq!(nodes[old].stop(), Some(0), "a leader stopped with SIGTERM exits 0");
    let alive: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = leader_index(&nodes, &alive).await;
    let st = status(&nodes[new]).await.unwrap();
    assert!(st["term"].as_u64().unwrap() > old_term);
    assert!(nodes[old].log_text().contains("stopped"));
    publish_ok(&nodes[new], "after", "2").await;
    assert_eq!(get_config(&nodes[alive[0]], "before", true).await.as_deref(), Some("1"));
}
