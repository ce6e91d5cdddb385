//! Checkpoints and shard leases: one trait for every store.
//!
//! A consumer reads a shard only while it holds the shard's **lease** in a [`CheckpointStore`].
//! Claiming a lease returns a [`FencingToken`] and the shard's last [`Progress`]; every later write
//! (renew, checkpoint, mark SHARD_END, release) names the lease and succeeds only while the owner and
//! token still match, so a worker that lost its lease (paused, partitioned, taken over) can never
//! move a checkpoint written by the new owner. Checkpoints only move forward.
//!
//! # Where a shard started
//!
//! A shard read from `LATEST` or `AT_TIMESTAMP` has no fixed start: `LATEST` asked again later
//! starts later, and whatever was written in between would be skipped by the next owner if the
//! shard changed hands (or the consumer restarted) before its first checkpoint. So the first
//! reader of such a shard records where it started with [`CheckpointStore::record_start`]
//! (fenced like a checkpoint; the first recorded start wins), and every later claim answers
//! [`Progress::Started`] until the first checkpoint, so the next owner starts at the same point.
//!
//! Stores: [`MemoryStore`] (process-local, the default); with the `redis` feature `RedisStore`
//! (shared through Redis, single node or cluster); with the `dynamodb` feature `DynamoDbStore`
//! (a DynamoDB table shared by the workers of an application).
//!
//! # Why a boxed-future trait
//!
//! The consumer keeps its store as `Arc<dyn CheckpointStore>`: the store is chosen at run time
//! (from configuration), the consumer's type does not grow a parameter per store, and several
//! consumers can share one store. Native `async fn` in traits is not object safe, so the methods
//! return [`BoxFuture`]s; the allocation per call is negligible next to a network round trip and
//! checkpoints are debounced.

#[cfg(feature = "dynamodb")]
mod dynamodb;
mod error;
mod memory;
mod position;
#[cfg(feature = "redis")]
mod redis;
mod timing;
#[cfg(any(feature = "redis", feature = "dynamodb"))]
mod unreadable;

use crate::ids::ShardId;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "dynamodb")]
pub use dynamodb::{DynamoDbError, DynamoDbStore, DynamoDbStoreBuilder, ExpiryRefresh};
pub use error::CheckpointError;
pub use futures::future::BoxFuture;
pub use memory::MemoryStore;
pub use position::{Position, compare_sequence_numbers};
pub use timing::{LeaseTiming, LeaseTimingError};

/// Who holds a lease: by default the host name plus a random suffix (never the process id alone,
/// which repeats across containers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(Arc<str>);

impl WorkerId {
    /// A worker id of your choosing (e.g. a pod name). It must be unique among live workers.
    pub fn new(id: impl Into<String>) -> Self {
        Self(Arc::from(id.into()))
    }

    /// `<hostname>-<8 random hex digits>`.
    pub fn generate() -> Self {
        let suffix: u32 = rand::random();
        Self::new(format!("{}-{suffix:08x}", hostname()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hostname() -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    ["HOSTNAME", "COMPUTERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok())
        .or_else(|| from_file("/proc/sys/kernel/hostname"))
        .or_else(|| from_file("/etc/hostname"))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// A number that grows with every claim of a shard's lease. Writes carrying an older token are
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FencingToken(pub u64);

/// A held lease on one shard of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The stream's name.
    pub stream: Arc<str>,
    /// The shard's id.
    pub shard_id: ShardId,
    /// The holder.
    pub owner: WorkerId,
    /// The token of this claim.
    pub token: FencingToken,
}

/// How far a shard has been consumed, as recorded in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Nothing recorded yet: start from the consumer's iterator type.
    None,
    /// No checkpoint yet, but reading started here (see [`CheckpointStore::record_start`]):
    /// start here again, so nothing written since is skipped.
    Started(StartingPoint),
    /// Everything up to and including this position was processed.
    At(Position),
    /// The shard was read to its end and every record processed; never read it again.
    ShardEnd,
}

impl Progress {
    /// Whether a checkpoint (or SHARD_END) was recorded; a recorded start alone is not one.
    pub fn is_checkpointed(&self) -> bool {
        matches!(self, Self::At(_) | Self::ShardEnd)
    }
}

/// Where the first reader of a shard without a checkpoint started, as recorded in a store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartingPoint {
    /// From the first record that arrived at or after this time (`AT_TIMESTAMP`). Stores keep
    /// it to the nanosecond; times before the Unix epoch are kept as the epoch.
    AtTimestamp(SystemTime),
    /// From this record on, the record included (`AT_SEQUENCE_NUMBER`; a decimal sequence
    /// number).
    AtSequence(String),
}

impl StartingPoint {
    /// The time as stores write it: nanoseconds since the Unix epoch (0 for earlier times,
    /// which start no later).
    pub(crate) fn epoch_nanos(at: SystemTime) -> u128 {
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    }

    /// The time stores read back from nanoseconds since the Unix epoch; `None` when it does
    /// not fit a `SystemTime`.
    #[cfg(any(feature = "redis", feature = "dynamodb"))]
    pub(crate) fn from_epoch_nanos(nanos: u128) -> Option<SystemTime> {
        let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
        // The remainder is below 10^9 and fits.
        let subsec = u32::try_from(nanos % 1_000_000_000).ok()?;
        UNIX_EPOCH.checked_add(std::time::Duration::new(secs, subsec))
    }

    /// A sequence number stores accept: decimal digits only.
    pub(crate) fn is_valid_sequence(sequence: &str) -> bool {
        !sequence.is_empty() && sequence.bytes().all(|b| b.is_ascii_digit())
    }

    /// Refuses a start no store could read back (a sequence number that is not decimal).
    pub(crate) fn check(&self) -> Result<(), CheckpointError> {
        match self {
            Self::AtSequence(sequence) if !Self::is_valid_sequence(sequence) => {
                Err(CheckpointError::Store {
                    operation: "record_start",
                    source: format!("sequence number {sequence:?} is not a decimal number").into(),
                    retryable: false,
                })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for StartingPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtTimestamp(at) => write!(f, "at timestamp {}ns", Self::epoch_nanos(*at)),
            Self::AtSequence(sequence) => write!(f, "at sequence number {sequence}"),
        }
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The lease is ours.
    Acquired {
        /// The lease to pass to later writes.
        lease: Lease,
        /// Where to resume.
        progress: Progress,
    },
    /// Another live worker holds the lease.
    HeldBy {
        /// The holder.
        owner: WorkerId,
    },
    /// The shard was finished (SHARD_END recorded); there is nothing to claim.
    Finished,
}

/// One shard's entry in a store, for status and balancing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// The shard's id.
    pub shard_id: ShardId,
    /// The current holder, if the lease is held and not expired.
    pub owner: Option<WorkerId>,
    /// The token of the latest claim.
    pub token: FencingToken,
    /// The recorded progress.
    pub progress: Progress,
}

/// A lease and checkpoint store. See the [module docs](self) for the model.
///
/// Every method is cancel safe in the sense that dropping its future leaves the store consistent;
/// a write whose future was dropped may or may not have happened.
pub trait CheckpointStore: Send + Sync + fmt::Debug + 'static {
    /// The lease timing every worker of this store uses.
    fn timing(&self) -> LeaseTiming;

    /// Claims the lease of `shard_id` for `worker` for one session timeout: succeeds when the
    /// lease is free, expired, or already `worker`'s (re-claiming yields a new token).
    ///
    /// A lease counts as expired once it was not renewed for [`LeaseTiming::session_timeout`];
    /// stores that cannot read a shared clock (DynamoDB) judge that by watching the lease from
    /// this process, so a lease may look alive for up to one session timeout after this
    /// process first saw it.
    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>>;

    /// Extends a held lease by one session timeout.
    ///
    /// # Errors
    /// [`CheckpointError::NotOwned`] when the lease was lost.
    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// Records that everything up to `position` was processed. A position at or before the
    /// recorded one leaves the store unchanged (checkpoints only move forward).
    ///
    /// # Errors
    /// [`CheckpointError::NotOwned`] unless `lease` (owner and token) still holds the shard.
    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// Records where reading a shard that has no checkpoint started (the time of its first
    /// `LATEST` or `AT_TIMESTAMP` iterator request, or its first record), so that a later claim
    /// answers [`Progress::Started`] and its reader starts at the same point instead of
    /// skipping what was written meanwhile.
    ///
    /// Only the first start is kept: once the shard has a checkpoint, SHARD_END or a recorded
    /// start, the call succeeds and leaves the store unchanged. Later checkpoints take
    /// precedence over the start.
    ///
    /// # Errors
    /// [`CheckpointError::NotOwned`] unless `lease` (owner and token) still holds the shard,
    /// as for [`CheckpointStore::checkpoint`].
    fn record_start<'a>(
        &'a self,
        lease: &'a Lease,
        point: &'a StartingPoint,
    ) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// Records that the shard was read to its end and fully processed.
    ///
    /// # Errors
    /// As for [`CheckpointStore::checkpoint`].
    fn mark_shard_end<'a>(&'a self, lease: &'a Lease)
    -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// Gives the lease up, keeping the progress.
    ///
    /// # Errors
    /// [`CheckpointError::NotOwned`] when the lease is no longer `lease`'s.
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// The recorded progress of a shard, without claiming it.
    fn progress<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress, CheckpointError>>;

    /// Every shard entry of `stream`, sorted by shard id, for status and balancing.
    ///
    /// An entry that cannot be read (damaged, or written by something else) is left out, and
    /// a warning names its shard, so one bad entry does not stop the whole stream; calls about
    /// that shard itself fail with [`CheckpointError::UnreadableEntry`].
    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>>;

    /// Registers `worker` as a live member of the group reading `stream` for one session
    /// timeout (called every heartbeat).
    fn heartbeat<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// The workers whose registration has not expired, sorted.
    fn live_workers<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WorkerId>, CheckpointError>>;

    /// Removes `worker`'s registration (on shutdown), so the others rebalance at once.
    fn leave<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>>;

    /// Deletes everything stored for those of `shard_ids` (of `stream`) that are finished
    /// (SHARD_END recorded) and that no worker holds: checkpoint, lease, recorded start.
    /// Answers how many shards were deleted.
    ///
    /// Meant for shards that left the stream's shard listing (trimmed once the retention
    /// period passed after a reshard), whose entries would otherwise stay forever. Each shard
    /// is checked and deleted in one atomic step, so an entry that is unfinished, held, or
    /// changed meanwhile is left untouched, as are entries that cannot be read. Ids without an
    /// entry are ignored, so repeating the call is harmless. A lease counts as held until it
    /// expires as for [`claim`](Self::claim): a store that judges expiry by watching (DynamoDB)
    /// deletes an abandoned, unreleased lease only once it has watched it for a session
    /// timeout, i.e. on a later call.
    ///
    /// Only prune shards that can never be read again: a pruned shard claimed later starts
    /// from the consumer's iterator type, with fencing tokens from the beginning.
    ///
    /// The default deletes nothing and answers 0, which keeps every guarantee and only lets
    /// finished entries accumulate; the stores of this crate override it.
    fn prune_finished<'a>(
        &'a self,
        stream: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize, CheckpointError>> {
        let _ = (stream, shard_ids);
        Box::pin(async { Ok(0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn generated_worker_ids_are_unique_and_name_the_host() {
        let a = WorkerId::generate();
        let b = WorkerId::generate();
        assert_ne!(a, b);
        let host = hostname();
        assert!(a.as_str().starts_with(&host), "{a} vs {host}");
        assert_eq!(a.as_str().len(), host.len() + 9);
    }

    #[test]
    fn starting_times_round_trip_through_epoch_nanoseconds() {
        let at = UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
        let nanos = StartingPoint::epoch_nanos(at);
        assert_eq!(nanos, 1_764_000_000_123_456_789);
        assert_eq!(StartingPoint::from_epoch_nanos(nanos), Some(at));
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(StartingPoint::epoch_nanos(before), 0);
        assert_eq!(StartingPoint::from_epoch_nanos(u128::MAX), None);
        assert!(StartingPoint::is_valid_sequence("0042"));
        assert!(!StartingPoint::is_valid_sequence(""));
        assert!(!StartingPoint::is_valid_sequence("12a"));
        assert!(StartingPoint::AtSequence("12a".into()).check().is_err());
        assert!(StartingPoint::AtTimestamp(before).check().is_ok());
        assert!(
            !Progress::Started(StartingPoint::AtSequence("1".into())).is_checkpointed()
                && Progress::ShardEnd.is_checkpointed()
        );
    }
}
