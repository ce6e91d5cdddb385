//! A Redis Cluster of private `redis-server` processes (see [`crate::redis_server`]): masters
//! only, or one replica per master for failover tests. The helpers block while the cluster forms
//! or fails over (seconds); call them from multi-threaded tokio tests or from plain threads.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::{PATIENCE, RedisServer, send};

/// A Redis Cluster of private servers, every slot assigned.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` cluster-enabled servers (at least 3, as `redis-cli --cluster create`
    /// requires), no replicas, joins them with the slots spread evenly, and waits until every
    /// node reports `cluster_state:ok`. Takes a few seconds.
    ///
    /// # Panics
    /// When fewer than 3 masters are asked for, or the cluster does not form.
    pub fn spawn(masters: usize) -> Self {
        Self::form(masters, 0, Duration::from_secs(5))
    }

    /// Like [`spawn`](Self::spawn), with one replica per master and a `node_timeout` (the time
    /// after which an unreachable master is failed over to its replica, so keep it short).
    ///
    /// # Panics
    /// When fewer than 3 masters are asked for, or the cluster does not form.
    pub fn spawn_with_replicas(masters: usize, node_timeout: Duration) -> Self {
        Self::form(masters, 1, node_timeout)
    }

    fn form(masters: usize, replicas: usize, node_timeout: Duration) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let timeout_ms = node_timeout.as_millis().to_string();
        let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                RedisServer::spawn(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &timeout_ms,
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli (installed with redis-server)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        let deadline = Instant::now() + PATIENCE;
        // Every node ok, and (with replicas) every replica attached and in sync.
        while !cluster.nodes.iter().all(|node| {
            send(node.port(), "CLUSTER INFO").contains("cluster_state:ok")
                && !send(node.port(), "INFO replication").contains("master_link_status:down")
        }) || cluster.replica_urls().len() < masters * replicas
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach state ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Index in [`nodes_mut`](Self::nodes_mut) of the master that serves `key`'s slot now, as
    /// the first live node sees it.
    ///
    /// # Panics
    /// When no live node knows a master for the slot.
    pub fn master_of(&self, key: &str) -> usize {
        self.serving_master(key)
            .unwrap_or_else(|| panic!("no master serves the slot of {key}"))
    }

    /// Waits until a master other than node `old` serves `key`'s slot (a failover done) and
    /// returns its index.
    ///
    /// # Panics
    /// When no other master took the slot over within 15 s.
    pub fn await_failover(&self, key: &str, old: usize) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.serving_master(key) {
                Some(new) if new != old => return new,
                _ => {
                    assert!(Instant::now() < deadline, "no failover of {key}'s slot");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    fn serving_master(&self, key: &str) -> Option<usize> {
        let live = self.nodes.iter().find(|node| node.is_running())?;
        let slot: u16 = send(live.port(), &format!("CLUSTER KEYSLOT {key}"))
            .trim()
            .trim_start_matches(':')
            .parse()
            .ok()?;
        let nodes = send(live.port(), "CLUSTER NODES");
        // <id> <ip:port@cport> <flags> <master id> <ping> <pong> <epoch> <link> <slots...>
        let port = nodes
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields.len() > 8)
            .filter(|fields| fields[2].contains("master") && !fields[2].contains("fail"))
            .find(|fields| fields[8..].iter().any(|range| slot_in(range, slot)))
            .and_then(|fields| fields[1].split(['@', ':']).nth(1)?.parse::<u16>().ok())?;
        self.nodes.iter().position(|node| node.port() == port)
    }

    /// The nodes' URLs (`redis://127.0.0.1:<port>`): any of them is a seed.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The URLs of the nodes that are replicas now: seeds that outlive the death of any master.
    pub fn replica_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| send(node.port(), "INFO replication").contains("role:slave"))
            .map(RedisServer::url)
            .collect()
    }

    /// The nodes, to stop or inspect one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }
}

/// Whether a `CLUSTER NODES` slot field (`5461` or `0-5460`) holds `slot`.
fn slot_in(range: &str, slot: u16) -> bool {
    let (low, high) = range.split_once('-').unwrap_or((range, range));
    matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(low), Ok(high)) if (low..=high).contains(&slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_fields_of_cluster_nodes_are_read_as_ranges() {
        assert!(slot_in("0-5460", 0));
        assert!(slot_in("0-5460", 5460));
        assert!(!slot_in("0-5460", 5461));
        assert!(slot_in("12182", 12182));
        assert!(!slot_in("12182", 12183));
        // Slots being migrated are listed as [slot->-node]: not served here.
        assert!(!slot_in(
            "[93->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]",
            93
        ));
    }
}
