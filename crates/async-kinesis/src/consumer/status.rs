//! What the consumer is doing, shard by shard: the seed's `get_shard_status()` plus lag and
//! checkpoints.

use crate::ids::{SequenceNumber, ShardId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::time::Instant;

use super::topology::Topology;
use crate::checkpoint::Position;
use crate::stream::shard::Shard;

/// A snapshot of the consumer's shards (see [`Consumer::shard_status`](super::Consumer::shard_status)).
///
/// The fields are those of the Python library's `get_shard_status()`; serialize it with serde for
/// the same JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ConsumerStatus {
    /// Shards known (listed or announced as children).
    pub total_shards: usize,
    /// Known shards not closed.
    pub active_shards: usize,
    /// Known shards closed (read to their end, or closed when listed).
    pub closed_shards: usize,
    /// Shards this consumer is reading now.
    pub allocated_shards: usize,
    /// Known shards that are parents of known shards.
    pub parent_shards: usize,
    /// Known shards that have parents.
    pub child_shards: usize,
    /// Parents read to their end.
    pub exhausted_parents: usize,
    /// Parents referenced by children but gone from the shard list (past retention).
    pub expired_parents: usize,
    /// Whether some parent with known children has not been read to its end yet.
    pub resharding_in_progress: bool,
    /// Parent/child maps.
    pub topology: TopologyStatus,
    /// One entry per known shard, by shard id.
    pub shard_details: Vec<ShardDetail>,
}

/// Lineage of the known shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopologyStatus {
    /// Parent → children.
    pub parent_child_map: BTreeMap<String, Vec<String>>,
    /// Child → parents (two for a merge).
    pub child_parent_map: BTreeMap<String, Vec<String>>,
}

/// One shard's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ShardDetail {
    /// The shard.
    pub shard_id: ShardId,
    /// This consumer holds its lease and reads it.
    pub is_allocated: bool,
    /// Closed: read to its end here, or listed with an ending sequence number.
    pub is_closed: bool,
    /// The reader holds a shard iterator.
    pub has_iterator: bool,
    /// Starting and (once closed) ending sequence numbers, as listed.
    pub sequence_range: SequenceRange,
    /// The first parent.
    pub parent_shard_id: Option<ShardId>,
    /// The second parent of a merge.
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// A parent of a known shard.
    pub is_parent: bool,
    /// Has parents.
    pub is_child: bool,
    /// No parent keeps it from being read.
    pub can_allocate: bool,
    /// Read to its end and fully checkpointed (here or by another worker).
    pub is_finished: bool,
    /// Stopped by an error (see the stream's error items).
    pub is_stopped: bool,
    /// GetRecords outcomes.
    pub stats: ShardStats,
    /// Lag behind the tip of the shard, as the last GetRecords reported.
    pub millis_behind_latest: Option<i64>,
    /// The last GetRecords call returned no records at 0 ms behind the tip: everything written
    /// to the shard before that call has been queued for the user.
    pub at_tip: bool,
    /// Records read and not yet acknowledged (queued or with the user).
    pub unacked_records: usize,
    /// How long ago the oldest record not acknowledged was read, in milliseconds.
    pub oldest_unacked_age_ms: Option<u64>,
    /// Reading waits for acknowledgements (`max_unacked_records` are unacknowledged).
    pub waiting_for_acks: bool,
    /// Sequence number of the last record read.
    pub last_read: Option<String>,
    /// The last checkpoint written (`sequence` or `sequence/sub-sequence`).
    pub last_checkpoint: Option<String>,
    /// How the shard is read here (polling until a reader starts).
    pub read_mode: ReadMode,
}

/// How a shard's records are fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReadMode {
    /// GetRecords calls.
    #[default]
    Polling,
    /// Enhanced fan-out: pushed over a SubscribeToShard subscription.
    FanOut,
}

impl ShardDetail {
    /// Nothing more of this shard is coming for now: it was read to its end and finished, it
    /// stopped after an error (reported as an error item), or it is being read at its tip.
    pub fn is_read_up(&self) -> bool {
        self.is_finished || self.is_stopped || (self.is_allocated && self.at_tip)
    }
}

/// Sequence numbers bounding a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SequenceRange {
    /// The shard's first sequence number (empty when only known as a child).
    pub starting_sequence_number: SequenceNumber,
    /// The shard's last one, once closed.
    pub ending_sequence_number: Option<SequenceNumber>,
}

/// Calls of one shard: GetRecords calls, or SubscribeToShard events over fan-out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShardStats {
    /// Calls throttled.
    pub throttled: u64,
    /// Calls that succeeded.
    pub success: u64,
}

/// Live per-shard facts, updated by readers and the supervisor.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardRuntime {
    pub(crate) allocated: bool,
    pub(crate) has_iterator: bool,
    pub(crate) closed: bool,
    pub(crate) finished: bool,
    pub(crate) stopped: bool,
    pub(crate) throttled: u64,
    pub(crate) success: u64,
    pub(crate) millis_behind_latest: Option<i64>,
    pub(crate) at_tip: bool,
    pub(crate) unacked: usize,
    pub(crate) oldest_unacked_since: Option<Instant>,
    pub(crate) waiting_for_acks: bool,
    pub(crate) last_read: Option<Arc<str>>,
    pub(crate) last_checkpoint: Option<Position>,
    pub(crate) read_mode: ReadMode,
}

#[derive(Debug, Default)]
struct Board {
    shards: BTreeMap<String, Shard>,
    topology: Topology,
    runtime: BTreeMap<String, ShardRuntime>,
}

/// The shared board the status is read from.
#[derive(Debug, Default)]
pub(crate) struct StatusBoard {
    board: Mutex<Board>,
}

impl StatusBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        // Updates are plain field writes; a poisoned board is still readable.
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates one shard's runtime facts.
    pub(crate) fn shard(&self, shard_id: &str, update: impl FnOnce(&mut ShardRuntime)) {
        let mut board = self.lock();
        update(board.runtime.entry(shard_id.to_owned()).or_default());
    }

    /// Forgets the runtime facts of shards gone from the listing.
    pub(crate) fn forget(&self, shard_ids: &[String]) {
        if shard_ids.is_empty() {
            return;
        }
        let mut board = self.lock();
        for shard_id in shard_ids {
            board.runtime.remove(shard_id);
        }
    }

    /// Replaces the known shards and their topology.
    pub(crate) fn set_shards(&self, shards: &BTreeMap<String, Shard>, topology: &Topology) {
        let mut board = self.lock();
        board.shards = shards.clone();
        board.topology = topology.clone();
    }

    /// A snapshot in the seed's shape.
    pub(crate) fn snapshot(&self) -> ConsumerStatus {
        let board = self.lock();
        let now = Instant::now();
        let default = ShardRuntime::default();
        let runtime = |id: &str| board.runtime.get(id).unwrap_or(&default);
        let ended = |id: &str| {
            let r = runtime(id);
            r.closed || r.finished
        };
        let shard_details: Vec<ShardDetail> = board
            .shards
            .values()
            .map(|shard| {
                let r = runtime(&shard.shard_id);
                ShardDetail {
                    shard_id: shard.shard_id.clone(),
                    is_allocated: r.allocated,
                    is_closed: r.closed || !shard.is_open(),
                    has_iterator: r.has_iterator,
                    sequence_range: SequenceRange {
                        starting_sequence_number: shard.starting_sequence_number.clone(),
                        ending_sequence_number: shard.ending_sequence_number.clone(),
                    },
                    parent_shard_id: shard.parent_shard_id.clone(),
                    adjacent_parent_shard_id: shard.adjacent_parent_shard_id.clone(),
                    is_parent: board.topology.is_parent(&shard.shard_id),
                    is_child: board.topology.is_child(&shard.shard_id),
                    can_allocate: board.topology.can_start(&shard.shard_id, ended),
                    is_finished: r.finished,
                    is_stopped: r.stopped,
                    stats: ShardStats {
                        throttled: r.throttled,
                        success: r.success,
                    },
                    millis_behind_latest: r.millis_behind_latest,
                    at_tip: r.at_tip,
                    unacked_records: r.unacked,
                    oldest_unacked_age_ms: r.oldest_unacked_since.map(|at| {
                        u64::try_from(now.saturating_duration_since(at).as_millis())
                            .unwrap_or(u64::MAX)
                    }),
                    waiting_for_acks: r.waiting_for_acks,
                    last_read: r.last_read.as_deref().map(str::to_owned),
                    last_checkpoint: r.last_checkpoint.as_ref().map(Position::to_string),
                    read_mode: r.read_mode,
                }
            })
            .collect();
        let parents: Vec<&str> = board.topology.present_parents().collect();
        let exhausted = parents.iter().filter(|p| ended(p)).count();
        ConsumerStatus {
            total_shards: shard_details.len(),
            active_shards: shard_details.iter().filter(|s| !s.is_closed).count(),
            closed_shards: shard_details.iter().filter(|s| s.is_closed).count(),
            allocated_shards: shard_details.iter().filter(|s| s.is_allocated).count(),
            parent_shards: parents.len(),
            child_shards: board.topology.child_count(),
            exhausted_parents: exhausted,
            expired_parents: board.topology.expired_parents().len(),
            resharding_in_progress: exhausted < parents.len(),
            topology: TopologyStatus {
                parent_child_map: board.topology.parent_child_map(),
                child_parent_map: board.topology.child_parent_map(),
            },
            shard_details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, closed: bool) -> Shard {
        Shard {
            shard_id: id.into(),
            parent_shard_id: parent.map(Into::into),
            adjacent_parent_shard_id: None,
            starting_hash_key: 0,
            ending_hash_key: 1,
            starting_sequence_number: "1".into(),
            ending_sequence_number: closed.then(|| "9".into()),
        }
    }

    #[test]
    fn a_split_in_progress_and_after() {
        let board = StatusBoard::default();
        let shards: BTreeMap<String, Shard> = [
            shard("p", None, true),
            shard("c1", Some("p"), false),
            shard("c2", Some("p"), false),
            shard("o", Some("gone"), false),
        ]
        .into_iter()
        .map(|s| (s.shard_id.to_string(), s))
        .collect();
        let topology = Topology::build(shards.values());
        board.set_shards(&shards, &topology);
        board.shard("p", |s| {
            s.allocated = true;
            s.has_iterator = true;
            s.success = 3;
            s.throttled = 1;
            s.last_checkpoint = Some(Position::within("5", 2));
        });
        let status = board.snapshot();
        assert_eq!(status.total_shards, 4);
        assert_eq!(status.closed_shards, 1);
        assert_eq!(status.active_shards, 3);
        assert_eq!(status.allocated_shards, 1);
        assert_eq!(status.parent_shards, 1);
        assert_eq!(status.child_shards, 3);
        assert_eq!(status.expired_parents, 1);
        // Closed as listed, but not read to its end yet: its children wait.
        assert_eq!(status.exhausted_parents, 0);
        assert!(status.resharding_in_progress);
        assert!(!status.shard_details[0].can_allocate);
        board.shard("p", |s| s.closed = true);
        let status = board.snapshot();
        assert_eq!(status.exhausted_parents, 1);
        assert!(!status.resharding_in_progress);
        let p = &status.shard_details[3];
        assert_eq!(p.shard_id, "p");
        assert_eq!(
            p.stats,
            ShardStats {
                throttled: 1,
                success: 3
            }
        );
        assert_eq!(p.last_checkpoint.as_deref(), Some("5/2"));
        assert!(p.is_parent && !p.is_child);
        assert_eq!(
            status.topology.parent_child_map.get("p"),
            Some(&vec!["c1".to_owned(), "c2".to_owned()])
        );
        let json = serde_json::to_value(&status).expect("serializable");
        assert_eq!(json["shard_details"][0]["shard_id"], "c1");
        assert_eq!(json["shard_details"][0]["can_allocate"], true);
    }

    #[test]
    fn an_open_parent_with_children_means_resharding_in_progress() {
        let board = StatusBoard::default();
        let shards: BTreeMap<String, Shard> =
            [shard("p", None, false), shard("c", Some("p"), false)]
                .into_iter()
                .map(|s| (s.shard_id.to_string(), s))
                .collect();
        board.set_shards(&shards, &Topology::build(shards.values()));
        let status = board.snapshot();
        assert!(status.resharding_in_progress);
        assert!(!status.shard_details[0].can_allocate); // c waits for p
    }
}
