//! The system under test and the nemesis: real `batata` processes whose every peer link runs
//! through the fault-injecting proxy, and the faults applied to them.

use std::time::Duration;

use serde_json::Value;

use super::common;
use super::common::Node;
use super::common::Ports;
use super::proxy::Proxy;

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub ids: Vec<u64>,
    pub proxy: Proxy,
    paused: Vec<bool>,
}

/// A fault, applied for a while and then healed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    IsolateLeader,
    IsolateFollower,
    /// A snapshot is built on a node, which is killed right after.
    CrashAfterSnapshot,
    /// A follower is removed from the membership, then added back as a learner and promoted.
    Membership,
    /// The leader and enough others to stay a minority are cut from the majority.
    MinorityWithLeader,
    /// Two halves that only one node (the bridge) connects: every node still sees a majority
    /// through it, but the halves cannot talk directly (5 nodes).
    Bridge,
}

pub const ALL_FAULTS: [Fault; 8] = [
    Fault::KillLeader,
    Fault::IsolateFollower,
    Fault::PauseLeader,
    Fault::Membership,
    Fault::IsolateLeader,
    Fault::KillFollower,
    Fault::CrashAfterSnapshot,
    Fault::PauseFollower,
];

fn signal(node: &Node, sig: &str) {
    if let Some(c) = &node.child {
        let _ = std::process::Command::new("kill").arg(sig).arg(c.id().to_string()).status();
    }
}

fn admin(n: &Node, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    common::client()
        .request(method, n.url(path))
        .header("X-Batata-Cluster-Secret", common::SECRET)
        .timeout(Duration::from_secs(10))
}

impl Cluster {
    /// Starts `n` nodes; `extra_env` goes to every node (e.g. a seeded bug).
    pub async fn start(root: &std::path::Path, n: usize, extra_env: &[(&str, &str)]) -> Cluster {
        let ports: Vec<Ports> = (0..n).map(|_| Ports::new()).collect();
        let proxy = Proxy::default();
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let mut routes = Vec::new();
            for (j, q) in ports.iter().enumerate().filter(|(j, _)| *j != i) {
                let via = proxy.add_link(i, j, q.raft).await;
                routes.push(format!("127.0.0.1:{}=>127.0.0.1:{via}", q.raft));
            }
            let mut node = Node::new(root, &format!("n{i}"), p.clone(), &ports);
            node.set_env("BATATA_NACOS_CLUSTER_PEER_ROUTES", &routes.join(","));
            node.set_env("RUST_LOG", "warn,batata=info");
            for (k, v) in extra_env {
                node.set_env(k, v);
            }
            node.start();
            nodes.push(node);
        }
        for node in &nodes {
            common::wait_ready(node).await;
        }
        let mut ids = Vec::new();
        for node in &nodes {
            let s = common::status(node).await.expect("status");
            ids.push(s["node_id"].as_u64().expect("node_id"));
        }
        Cluster { paused: vec![false; n], nodes, ids, proxy }
    }

    /// The index of the leader as a majority of reachable nodes sees it.
    pub async fn leader(&self) -> Option<usize> {
        for (i, n) in self.nodes.iter().enumerate() {
            if self.paused[i] || n.child.is_none() {
                continue;
            }
            if let Some(id) = common::leader_of(n).await {
                if let Some(at) = self.ids.iter().position(|x| *x == id) {
                    if common::leader_of(&self.nodes[at]).await == Some(id) {
                        return Some(at);
                    }
                }
            }
        }
        None
    }

    async fn leader_or_any(&self) -> usize {
        for _ in 0..50 {
            if let Some(l) = self.leader().await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        0
    }

    fn follower_of(&self, leader: usize, salt: usize) -> usize {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != leader).collect();
        others[salt % others.len()]
    }

    /// Applies `fault` for `hold`, then heals it. Returns what was done, for the log.
    pub async fn inject(&mut self, fault: Fault, hold: Duration, salt: usize) -> Value {
        let leader = self.leader_or_any().await;
        let follower = self.follower_of(leader, salt);
        let target = match fault {
            Fault::KillLeader | Fault::PauseLeader | Fault::IsolateLeader => leader,
            Fault::CrashAfterSnapshot => salt % self.nodes.len(),
            _ => follower,
        };
        let n = self.nodes.len();
        match fault {
            Fault::KillLeader | Fault::KillFollower => {
                self.nodes[target].kill9();
                tokio::time::sleep(hold).await;
                self.nodes[target].start();
            }
            Fault::PauseLeader | Fault::PauseFollower => {
                signal(&self.nodes[target], "-STOP");
                self.paused[target] = true;
                tokio::time::sleep(hold).await;
                signal(&self.nodes[target], "-CONT");
                self.paused[target] = false;
            }
            Fault::IsolateLeader | Fault::IsolateFollower => {
                self.proxy.partition(&[target], n);
                tokio::time::sleep(hold).await;
                self.proxy.heal();
            }
            Fault::MinorityWithLeader => {
                let mut group = vec![leader];
                // A minority: (n - 1) / 2 nodes, the leader among them.
                group.extend((0..n).filter(|i| *i != leader).take((n - 1) / 2 - 1));
                self.proxy.partition(&group, n);
                tokio::time::sleep(hold).await;
                self.proxy.heal();
                return serde_json::json!({"fault": fault, "minority": group, "leader": leader});
            }
            Fault::Bridge => {
                // The bridge is a follower; the leader sits in one half.
                let bridge = follower;
                let others: Vec<usize> = (0..n).filter(|i| *i != bridge).collect();
                let (a, b) = others.split_at(others.len() / 2);
                for &x in a {
                    for &y in b {
                        self.proxy.cut(x, y);
                        self.proxy.cut(y, x);
                    }
                }
                tokio::time::sleep(hold).await;
                self.proxy.heal();
                return serde_json::json!({"fault": fault, "bridge": bridge, "halves": [a, b], "leader": leader});
            }
            Fault::CrashAfterSnapshot => {
                let _ = admin(&self.nodes[target], reqwest::Method::POST, "/nacos/v1/core/raft/snapshot").send().await;
                self.nodes[target].kill9();
                tokio::time::sleep(hold).await;
                self.nodes[target].start();
            }
            Fault::Membership => {
                let id = self.ids[target];
                let p = self.nodes[target].ports.clone();
                let via = &self.nodes[leader];
                let removed =
                    admin(via, reqwest::Method::DELETE, &format!("/nacos/v1/core/raft/member?id={id}")).send().await;
                tokio::time::sleep(hold / 2).await;
                let learner = format!(
                    "/nacos/v1/core/raft/learner?id={id}&httpAddr=127.0.0.1:{}&raftAddr=127.0.0.1:{}",
                    p.http, p.raft
                );
                let added = admin(via, reqwest::Method::POST, &learner).send().await;
                tokio::time::sleep(hold / 2).await;
                let promoted =
                    admin(via, reqwest::Method::POST, &format!("/nacos/v1/core/raft/promote?id={id}")).send().await;
                let ok = |r: &reqwest::Result<reqwest::Response>| r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                return serde_json::json!({"fault": fault, "target": target, "leader": leader,
                    "remove": ok(&removed), "add": ok(&added), "promote": ok(&promoted)});
            }
        }
        serde_json::json!({"fault": fault, "target": target, "leader": leader})
    }

    /// Undoes every fault: heals links, resumes paused nodes, restarts dead ones, and waits for
    /// a leader and for every node to be ready.
    pub async fn heal_all(&mut self) {
        self.proxy.heal();
        for i in 0..self.nodes.len() {
            if self.paused[i] {
                signal(&self.nodes[i], "-CONT");
                self.paused[i] = false;
            }
            if self.nodes[i].child.is_none() {
                self.nodes[i].start();
            }
        }
        for n in &self.nodes {
            common::wait_ready(n).await;
        }
    }

    /// Makes sure every node is a voter again (a membership fault may have been cut short).
    pub async fn ensure_voters(&self) {
        let leader = self.leader_or_any().await;
        for (i, id) in self.ids.iter().enumerate() {
            let s = common::status(&self.nodes[leader]).await.unwrap_or_default();
            let member =
                s["members"].as_array().and_then(|m| m.iter().find(|m| m["id"].as_u64() == Some(*id)).cloned());
            let voter = member.as_ref().and_then(|m| m["voter"].as_bool()).unwrap_or(false);
            if member.is_none() {
                let p = &self.nodes[i].ports;
                let path = format!(
                    "/nacos/v1/core/raft/learner?id={id}&httpAddr=127.0.0.1:{}&raftAddr=127.0.0.1:{}",
                    p.http, p.raft
                );
                let _ = admin(&self.nodes[leader], reqwest::Method::POST, &path).send().await;
            }
            if !voter {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ =
                    admin(&self.nodes[leader], reqwest::Method::POST, &format!("/nacos/v1/core/raft/promote?id={id}"))
                        .send()
                        .await;
            }
        }
    }
}
