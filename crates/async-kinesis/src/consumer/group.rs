//! The group view: every worker sharing the stream through the store, who holds which shard,
//! each shard's checkpoint, and the lag of the shards read here.

use crate::ids::ShardId;
use std::collections::BTreeMap;

use super::status::ConsumerStatus;
use crate::checkpoint::{CheckpointError, CheckpointStore, FencingToken, Progress, WorkerId};

/// A snapshot of the consumer group (see [`Consumer::group_status`](super::Consumer::group_status)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// This consumer's worker id.
    pub worker: WorkerId,
    /// The workers registered as live, sorted.
    pub workers: Vec<WorkerId>,
    /// Every shard the store knows of for the stream, by shard id.
    pub shards: Vec<GroupShard>,
}

/// One shard as the group sees it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupShard {
    /// The shard.
    pub shard_id: ShardId,
    /// The worker holding a live lease on it, if any.
    pub owner: Option<WorkerId>,
    /// The token of its latest claim (counts the claims so far).
    pub token: FencingToken,
    /// Its checkpoint.
    pub progress: Progress,
    /// Lag behind the tip as last reported to this consumer (only for shards it reads).
    pub millis_behind_latest: Option<i64>,
    /// Records of it read here and not yet acknowledged (only for shards it reads).
    pub unacked_records: Option<usize>,
}

impl GroupStatus {
    /// The number of shards each live worker holds (workers holding none included).
    pub fn leases_per_worker(&self) -> BTreeMap<WorkerId, usize> {
        let mut counts: BTreeMap<WorkerId, usize> =
            self.workers.iter().map(|w| (w.clone(), 0)).collect();
        for owner in self.shards.iter().filter_map(|s| s.owner.clone()) {
            *counts.entry(owner).or_default() += 1;
        }
        counts
    }
}

/// Reads the group from the store and adds what this consumer knows about its own shards.
pub(crate) async fn read(
    store: &dyn CheckpointStore,
    stream: &str,
    worker: &WorkerId,
    local: ConsumerStatus,
) -> Result<GroupStatus, CheckpointError> {
    let leases = store.list(stream).await?;
    let workers = store.live_workers(stream).await?;
    let local: BTreeMap<String, _> = local
        .shard_details
        .into_iter()
        .filter(|d| d.is_allocated)
        .map(|d| (d.shard_id.to_string(), d))
        .collect();
    let shards = leases
        .into_iter()
        .map(|lease| {
            let here = local.get(lease.shard_id.as_str());
            GroupShard {
                millis_behind_latest: here.and_then(|d| d.millis_behind_latest),
                unacked_records: here.map(|d| d.unacked_records),
                shard_id: lease.shard_id,
                owner: lease.owner,
                token: lease.token,
                progress: lease.progress,
            }
        })
        .collect();
    Ok(GroupStatus {
        worker: worker.clone(),
        workers,
        shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_per_worker_counts_idle_workers_too() {
        let shard = |id: &str, owner: Option<&str>| GroupShard {
            shard_id: id.into(),
            owner: owner.map(WorkerId::new),
            token: FencingToken(1),
            progress: Progress::None,
            millis_behind_latest: None,
            unacked_records: None,
        };
        let status = GroupStatus {
            worker: WorkerId::new("a"),
            workers: vec![WorkerId::new("a"), WorkerId::new("b")],
            shards: vec![
                shard("s0", Some("a")),
                shard("s1", Some("a")),
                shard("s2", None),
            ],
        };
        let counts = status.leases_per_worker();
        assert_eq!(counts[&WorkerId::new("a")], 2);
        assert_eq!(counts[&WorkerId::new("b")], 0);
        assert_eq!(counts.len(), 2);
    }
}
