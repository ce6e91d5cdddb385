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
mod memory;
mod position;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "dynamodb")]
pub use dynamodb::{DynamoDbError, DynamoDbStore, DynamoDbStoreBuilder};
pub use futures::future::BoxFuture;
pub use memory::MemoryStore;
pub use position::{Position, compare_sequence_numbers};

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
    pub shard_id: Arc<str>,
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
        UNIX_EPOCH.checked_add(Duration::new(secs, subsec))
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
    pub shard_id: String,
    /// The current holder, if the lease is held and not expired.
    pub owner: Option<WorkerId>,
    /// The token of the latest claim.
    pub token: FencingToken,
    /// The recorded progress.
    pub progress: Progress,
}

/// A store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The caller does not hold the shard's lease (never claimed, released, or claimed by
    /// another worker since): the write was refused.
    #[error("shard {shard_id} is not owned by {worker} (current owner: {})", owner_text(.owner))]
    NotOwned {
        /// The shard.
        shard_id: String,
        /// The worker that tried to write.
        worker: WorkerId,
        /// Who holds it now, if anyone.
        owner: Option<WorkerId>,
    },
    /// The lease could not be renewed within its session timeout (the store was unreachable or
    /// failing), so another worker may hold it now: this worker stopped reading the shard.
    #[error("the lease of shard {shard_id} held by {worker} expired before it could be renewed")]
    LeaseExpired {
        /// The shard.
        shard_id: String,
        /// The worker that held it.
        worker: WorkerId,
    },
    /// The store holds no entry for the shard.
    #[error("shard {shard_id} has no lease in the store")]
    UnknownShard {
        /// The shard.
        shard_id: String,
    },
    /// The store itself failed (network, server error).
    #[error("checkpoint store failed during {operation}")]
    Store {
        /// The operation attempted.
        operation: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
        /// Whether repeating the call can succeed.
        retryable: bool,
    },
}

fn owner_text(owner: &Option<WorkerId>) -> String {
    owner
        .as_ref()
        .map_or_else(|| "none".to_owned(), WorkerId::to_string)
}

impl CheckpointError {
    /// Whether repeating the call later can succeed. Ownership errors never do.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Store {
                retryable: true,
                ..
            }
        )
    }
}

/// How long a lease and a worker's registration live without renewal, and how often they are
/// renewed. The store carries it, so every worker sharing a store agrees on it.
///
/// Always valid: built only by [`LeaseTiming::new`] (or the default), which refuses a heartbeat
/// under a millisecond, a session timeout over a day, and a heartbeat that does not fit three
/// times into the session timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    session_timeout: Duration,
    heartbeat_frequency: Duration,
}

/// Why a [`LeaseTiming`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseTimingError {
    /// A heartbeat under a millisecond would renew without pause.
    #[error("heartbeat_frequency must be at least 1 ms")]
    ZeroHeartbeat,
    /// A session timeout over a day: a lease of a worker that died would block its shard for
    /// longer than any stream's default retention (and deadlines that far out overflow).
    #[error("session_timeout ({session_timeout:?}) must be at most one day")]
    SessionTooLong {
        /// The session timeout asked for.
        session_timeout: Duration,
    },
    /// One late or failed renewal would lose the lease.
    #[error(
        "session_timeout ({session_timeout:?}) must be at least three times heartbeat_frequency \
         ({heartbeat_frequency:?})"
    )]
    HeartbeatTooSlow {
        /// The session timeout asked for.
        session_timeout: Duration,
        /// The heartbeat asked for.
        heartbeat_frequency: Duration,
    },
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(60),
            heartbeat_frequency: Duration::from_secs(15),
        }
    }
}

impl LeaseTiming {
    const MIN_HEARTBEAT: Duration = Duration::from_millis(1);
    const MAX_SESSION: Duration = Duration::from_secs(24 * 60 * 60);

    /// Both durations, checked: a heartbeat of at least 1 ms that fits at least three times
    /// into a session timeout of at most a day. A lease is given up when it would expire
    /// before the next renewal, so three heartbeats per session are what lets one late or
    /// failed renewal pass without losing it. `const`, so a fixed timing can be checked at
    /// compile time.
    ///
    /// # Errors
    /// [`LeaseTimingError`] naming the problem.
    pub const fn new(
        session_timeout: Duration,
        heartbeat_frequency: Duration,
    ) -> Result<Self, LeaseTimingError> {
        if heartbeat_frequency.as_nanos() < Self::MIN_HEARTBEAT.as_nanos() {
            return Err(LeaseTimingError::ZeroHeartbeat);
        }
        if session_timeout.as_nanos() > Self::MAX_SESSION.as_nanos() {
            return Err(LeaseTimingError::SessionTooLong { session_timeout });
        }
        let fits = match heartbeat_frequency.checked_mul(3) {
            Some(thrice) => thrice.as_nanos() <= session_timeout.as_nanos(),
            None => false,
        };
        if !fits {
            return Err(LeaseTimingError::HeartbeatTooSlow {
                session_timeout,
                heartbeat_frequency,
            });
        }
        Ok(Self {
            session_timeout,
            heartbeat_frequency,
        })
    }

    /// A lease (and a worker's registration) not renewed for this long may be taken over
    /// (the Python library's `session_timeout`; default 60 s).
    pub const fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// How often a worker renews its leases and registration and rebalances (the Python
    /// library's `heartbeat_frequency`; default 15 s).
    pub const fn heartbeat_frequency(&self) -> Duration {
        self.heartbeat_frequency
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_zero_or_inverted_heartbeat_is_refused() {
        let s = Duration::from_secs;
        assert_eq!(
            LeaseTiming::new(s(60), Duration::ZERO),
            Err(LeaseTimingError::ZeroHeartbeat)
        );
        assert_eq!(
            LeaseTiming::new(s(60), Duration::from_micros(999)),
            Err(LeaseTimingError::ZeroHeartbeat)
        );
        for session in [s(86_401), Duration::MAX] {
            assert_eq!(
                LeaseTiming::new(session, s(1)),
                Err(LeaseTimingError::SessionTooLong {
                    session_timeout: session
                })
            );
        }
        LeaseTiming::new(s(86_400), s(1)).expect("a day is the longest session");
        LeaseTiming::new(Duration::from_millis(3), Duration::from_millis(1))
            .expect("1 ms is the shortest heartbeat");
        for (session, heartbeat) in [
            (s(10), s(20)),
            (s(10), s(5)),
            (s(10), Duration::from_millis(3_334)),
            (s(1), Duration::MAX),
        ] {
            assert!(
                matches!(
                    LeaseTiming::new(session, heartbeat),
                    Err(LeaseTimingError::HeartbeatTooSlow { .. })
                ),
                "{session:?} / {heartbeat:?}"
            );
        }
        let timing = LeaseTiming::new(s(15), s(5)).expect("exactly three times fits");
        assert_eq!(
            (timing.session_timeout(), timing.heartbeat_frequency()),
            (s(15), s(5))
        );
        let default = LeaseTiming::default();
        assert_eq!(
            LeaseTiming::new(default.session_timeout(), default.heartbeat_frequency()),
            Ok(default)
        );
        assert!(
            LeaseTimingError::HeartbeatTooSlow {
                session_timeout: s(10),
                heartbeat_frequency: s(6)
            }
            .to_string()
            .contains("at least three times")
        );
    }

    #[test]
    fn only_store_failures_can_be_retryable() {
        let not_owned = CheckpointError::NotOwned {
            shard_id: "s".into(),
            worker: WorkerId::new("w"),
            owner: None,
        };
        assert!(!not_owned.is_retryable());
        assert!(not_owned.to_string().contains("current owner: none"));
        let store = CheckpointError::Store {
            operation: "checkpoint",
            source: "timeout".into(),
            retryable: true,
        };
        assert!(store.is_retryable());
    }
}
