//! The Redis store (feature `redis`); [`RedisStore`] documents its behaviour and key layout.

mod builder;
mod connection;
mod keys;
mod progress;
mod scripts;

use std::fmt;
use std::sync::Arc;

use redis::Value;

pub use builder::RedisStoreBuilder;
use connection::Link;
use keys::GroupKeys;
use progress::progress_of;
use scripts::{BadReply, ClaimReply, Listed, ListedEntry, SCRIPTS, WriteReply};

use super::unreadable::Skipped;
use super::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, FencingToken, Lease, LeaseInfo,
    LeaseTiming, Position, Progress, StartingPoint, WorkerId,
};

/// Shards per prune script: bounds how long one script holds the server.
const PRUNE_BATCH: usize = 100;

/// Leases and checkpoints in Redis, shared by every worker (process) of an application; one
/// Redis server or a Redis Cluster.
///
/// Every write is one Lua script that checks the lease's owner **and** fencing token and makes
/// the change in the same atomic step, so a worker that lost its lease can never move a
/// checkpoint. Leases expire by Redis's own key expiry and worker registrations by the server's
/// clock (`TIME`): no two hosts' clocks are ever compared. Checkpoints never expire.
///
/// Cheap to clone: clones share one connection. Requires Redis 5 or later (or a compatible server
/// that runs Lua scripts).
///
/// ```no_run
/// use std::time::Duration;
/// use async_kinesis::checkpoint::{CheckpointStore, RedisStore};
///
/// # async fn demo() -> Result<(), async_kinesis::checkpoint::CheckpointError> {
/// let store = RedisStore::builder("billing") // the application (consumer group) name
///     .url("rediss://:password@redis.internal:6379/0")
///     .session_timeout(Duration::from_secs(60))
///     .heartbeat_frequency(Duration::from_secs(15))
///     .connect()
///     .await?;
/// for lease in store.list("orders").await? {
///     println!("{}: {:?} at {:?}", lease.shard_id, lease.owner, lease.progress);
/// }
/// # Ok(()) }
/// ```
///
/// # Key layout
///
/// The keys are an on-the-wire format that operators may inspect and that every version of this
/// store reads the same way. For application `<app>` reading stream `<stream>`, with `%`, `:`,
/// `{` and `}` in either name percent-encoded (`%25`, `%3A`, `%7B`, `%7D`):
///
/// | key | type | expires | holds |
/// | --- | --- | --- | --- |
/// | `async-kinesis:{<app>:<stream>}:shard:<shard id>` | hash | never | `owner` (absent when released), `token` (grows by one per claim, kept across releases), `sequence` and `sub_sequence` (the checkpoint; no `sub_sequence` for a whole record), `ended` (`1` after SHARD_END), `start_timestamp_ns` or `start_sequence` (where reading started before the first checkpoint, see below) |
/// | `async-kinesis:{<app>:<stream>}:lease:<shard id>` | string: the owner | one session timeout after the last claim or renewal (`PX`) | exists while the lease is live |
/// | `async-kinesis:{<app>:<stream>}:shards` | sorted set, all scores 0 | never | every shard id with an entry, in id order |
/// | `async-kinesis:{<app>:<stream>}:workers` | sorted set | with its last member | live workers, scored by registration expiry (server time, ms since the epoch) |
///
/// A shard's start ([`CheckpointStore::record_start`]) is one field: `start_timestamp_ns`, the
/// `AT_TIMESTAMP` in whole nanoseconds since the Unix epoch (decimal), or `start_sequence`, the
/// first record's sequence number. It is written only while the entry has no `sequence`,
/// `ended` or start field, and stays after the first checkpoint, which takes precedence. A
/// reader that does not know the fields (an older version of this store) sees no progress and
/// starts from its iterator type, as it did before.
///
/// The braces are a cluster hash tag: all keys of one application and stream live in one slot,
/// so each script runs on one node and reads one node's clock.
///
/// Every script checks a shard's entry before acting on it: a key that is not a hash, a
/// missing `token`, or a field that is not what the store writes (a token or sub-sequence that
/// is no 64-bit unsigned number, a sequence number that is not decimal, `ended` other than
/// `1`, ...) makes the entry unreadable. Calls about that shard then fail with
/// [`CheckpointError::UnreadableEntry`] and change nothing, `list` leaves it out with a
/// warning, and [`CheckpointStore::prune_finished`] leaves it alone. Claims refuse with
/// [`CheckpointError::TokenExhausted`] once the token reaches `2^63 - 1`, where Redis's
/// integers end. [`CheckpointStore::prune_finished`] deletes a finished shard's hash and its
/// index member in one script, when its lease key is gone.
///
/// A lease whose lease key expired but that nobody claimed since still accepts writes from its
/// holder (nobody else can have written), as in every store; `list` reports its owner as none.
///
/// The Python library's keys (`pyredis-<name>-<shard>`) are neither read nor written: a group
/// moving over from it starts each shard from the consumer's iterator type.
///
/// # Replicas and failover
///
/// Redis replicates asynchronously, so a failover can lose the last writes the old primary
/// acknowledged. This store keeps its guarantees to "duplicates, never loss" then: a lost
/// checkpoint makes the next owner re-read from the one before; a lost claim or renewal can let a
/// second worker claim the shard while the first still reads it, for at most one heartbeat — the
/// first worker's next write finds another owner, is refused, and it gives the lease up (every
/// write checks the owner as well as the token, so a re-issued token number fences too). The
/// tests kill the master of a group's slot on a cluster with replicas: calls fail retryably
/// for the ~2–3 s the promotion takes (node timeout 1 s), then the same store goes on with the
/// lease, checkpoint and fencing intact.
///
/// # Failures
///
/// Calls fail with [`CheckpointError::Store`], naming the operation and the password-redacted
/// address. Lost connections, timeouts, a server still loading its data and cluster
/// reconfigurations are retryable; refused credentials and script errors are not.
///
/// No call hangs: each is bounded by the builder's connection and response timeouts. The
/// single-node connection reconnects by itself, after a server restart too: a call that finds
/// the connection gone is repeated once on a new one (release only when the first attempt
/// cannot have reached the server, since a repeated release would report the lease as lost),
/// and scripts the server no longer knows are loaded again.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    app: String,
    link: Link,
    cluster: bool,
    timing: LeaseTiming,
    /// The session timeout in whole milliseconds (at least 1), as `PX` and scores take it.
    ttl_ms: u64,
}

impl RedisStore {
    /// Configures a store for application `app`: the consumer group whose workers share leases
    /// and checkpoints (the Python library's checkpointer `name`).
    pub fn builder(app: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(app.into())
    }

    fn new(app: String, link: Link, cluster: bool, timing: LeaseTiming) -> Self {
        let ttl_ms = u64::try_from(timing.session_timeout().as_micros().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            inner: Arc::new(Inner {
                app,
                link,
                cluster,
                timing,
                ttl_ms,
            }),
        }
    }

    /// The application (consumer group) name.
    pub fn app(&self) -> &str {
        &self.inner.app
    }

    fn keys(&self, stream: &str) -> GroupKeys {
        GroupKeys::new(&self.inner.app, stream)
    }

    /// Runs a script; see [`Link::call`] for `repeatable`.
    async fn run_script(
        &self,
        operation: &'static str,
        repeatable: bool,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Vec<Value>, CheckpointError> {
        self.inner
            .link
            .call(operation, repeatable, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await
    }

    /// Runs a fenced write script for `lease` and maps its refusals.
    async fn write(
        &self,
        operation: &'static str,
        repeatable: bool,
        lease: &Lease,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<(), CheckpointError> {
        let reply = self.run_script(operation, repeatable, invocation).await?;
        match WriteReply::parse(&reply).map_err(|bad| self.bad_reply(operation, bad))? {
            WriteReply::Done => Ok(()),
            WriteReply::NotOwned { owner } => Err(CheckpointError::NotOwned {
                shard_id: lease.shard_id.clone(),
                worker: lease.owner.clone(),
                owner: owner.map(WorkerId::new),
            }),
            WriteReply::UnknownShard => Err(CheckpointError::UnknownShard {
                shard_id: lease.shard_id.clone(),
            }),
            WriteReply::Unreadable { detail } => Err(unreadable(&lease.shard_id, detail)),
        }
    }

    /// Reads the entries of `shard_ids` with one `list` script: a consistent snapshot.
    async fn read_entries(
        &self,
        operation: &'static str,
        keys: &GroupKeys,
        shard_ids: &[String],
    ) -> Result<Vec<Listed>, CheckpointError> {
        // Every key a script touches is named, as a cluster requires.
        let mut invocation = SCRIPTS.list.prepare_invoke();
        for shard_id in shard_ids {
            invocation
                .key(keys.shard(shard_id))
                .key(keys.lease(shard_id));
        }
        let reply = self.run_script(operation, true, &invocation).await?;
        ListedEntry::parse_all(&reply, shard_ids.len())
            .map_err(|bad| self.bad_reply(operation, bad))
    }

    fn bad_reply(&self, operation: &'static str, bad: BadReply) -> CheckpointError {
        self.inner.link.failure(operation, bad)
    }
}

fn unreadable(shard_id: &str, detail: String) -> CheckpointError {
    CheckpointError::UnreadableEntry {
        shard_id: shard_id.into(),
        detail,
    }
}

impl CheckpointStore for RedisStore {
    fn timing(&self) -> LeaseTiming {
        self.inner.timing
    }

    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(stream);
            let mut invocation = SCRIPTS.claim.prepare_invoke();
            invocation
                .key(keys.shard(shard_id))
                .key(keys.lease(shard_id))
                .key(keys.shards())
                .arg(shard_id)
                .arg(worker.as_str())
                .arg(self.inner.ttl_ms);
            // A second run re-claims for the same worker: a newer token of the same lease, and
            // the unseen first one is fenced.
            let reply = self.run_script("claim", true, &invocation).await?;
            let parsed = ClaimReply::parse(&reply).map_err(|bad| self.bad_reply("claim", bad))?;
            Ok(match parsed {
                ClaimReply::Finished => Claim::Finished,
                ClaimReply::Unreadable { detail } => return Err(unreadable(shard_id, detail)),
                ClaimReply::Exhausted { token } => {
                    return Err(CheckpointError::TokenExhausted {
                        shard_id: shard_id.into(),
                        token,
                    });
                }
                ClaimReply::HeldBy { owner } => Claim::HeldBy {
                    owner: WorkerId::new(owner),
                },
                ClaimReply::Acquired { token, progress } => Claim::Acquired {
                    lease: Lease {
                        stream: stream.into(),
                        shard_id: shard_id.into(),
                        owner: worker.clone(),
                        token: FencingToken(token),
                    },
                    // The script checked the fields; only a value out of range gets here.
                    progress: progress_of(progress)
                        .map_err(|detail| unreadable(shard_id, detail))?,
                },
            })
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(&lease.stream);
            let mut invocation = SCRIPTS.renew.prepare_invoke();
            invocation
                .key(keys.shard(&lease.shard_id))
                .key(keys.lease(&lease.shard_id))
                .arg(lease.owner.as_str())
                .arg(lease.token.0)
                .arg(self.inner.ttl_ms);
            self.write("renew", true, lease, &invocation).await
        })
    }

    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            position.check("checkpoint")?;
            let keys = self.keys(&lease.stream);
            let sub_sequence = position
                .sub_sequence
                .map_or_else(String::new, |sub| sub.to_string());
            let mut invocation = SCRIPTS.checkpoint.prepare_invoke();
            invocation
                .key(keys.shard(&lease.shard_id))
                .arg(lease.owner.as_str())
                .arg(lease.token.0)
                .arg(&*position.sequence_number)
                .arg(sub_sequence);
            self.write("checkpoint", true, lease, &invocation).await
        })
    }

    fn record_start<'a>(
        &'a self,
        lease: &'a Lease,
        point: &'a StartingPoint,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            point.check()?;
            let keys = self.keys(&lease.stream);
            let (kind, value) = match point {
                StartingPoint::AtTimestamp(at) => {
                    ("timestamp", StartingPoint::epoch_nanos(*at).to_string())
                }
                StartingPoint::AtSequence(sequence) => ("sequence", sequence.clone()),
            };
            let mut invocation = SCRIPTS.record_start.prepare_invoke();
            invocation
                .key(keys.shard(&lease.shard_id))
                .arg(lease.owner.as_str())
                .arg(lease.token.0)
                .arg(kind)
                .arg(value);
            // A second run finds the start recorded and changes nothing.
            self.write("record_start", true, lease, &invocation).await
        })
    }

    fn mark_shard_end<'a>(
        &'a self,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(&lease.stream);
            let mut invocation = SCRIPTS.mark_shard_end.prepare_invoke();
            invocation
                .key(keys.shard(&lease.shard_id))
                .arg(lease.owner.as_str())
                .arg(lease.token.0);
            self.write("mark_shard_end", true, lease, &invocation).await
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(&lease.stream);
            let mut invocation = SCRIPTS.release.prepare_invoke();
            invocation
                .key(keys.shard(&lease.shard_id))
                .key(keys.lease(&lease.shard_id))
                .arg(lease.owner.as_str())
                .arg(lease.token.0);
            // A second run after a first that released would report the lease as not owned.
            self.write("release", false, lease, &invocation).await
        })
    }

    fn progress<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress, CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(stream);
            let shard = [shard_id.to_owned()];
            let mut entries = self.read_entries("progress", &keys, &shard).await?;
            // One shard asked, one entry answered (checked by `read_entries`).
            let entry = entries
                .pop()
                .ok_or_else(|| self.bad_reply("progress", BadReply::new("no entry".to_owned())))?;
            entry
                .and_then(|entry| progress_of(entry.progress))
                .map_err(|detail| unreadable(shard_id, detail))
        })
    }

    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(stream);
            let index = keys.shards();
            let index = &index;
            let shard_ids: Vec<String> = self
                .inner
                .link
                .call("list", true, |mut connection| async move {
                    redis::cmd("ZRANGE")
                        .arg(index)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            if shard_ids.is_empty() {
                return Ok(Vec::new());
            }
            let entries = self.read_entries("list", &keys, &shard_ids).await?;
            let mut leases = Vec::with_capacity(shard_ids.len());
            let mut skipped = Skipped::default();
            for (shard_id, entry) in shard_ids.into_iter().zip(entries) {
                let read = entry.and_then(|entry| {
                    Ok(LeaseInfo {
                        owner: entry.live_owner.map(WorkerId::new),
                        token: FencingToken(entry.token),
                        progress: progress_of(entry.progress)?,
                        shard_id: shard_id.clone().into(),
                    })
                });
                match read {
                    Ok(lease) => leases.push(lease),
                    Err(detail) => skipped.skip(unreadable(&shard_id, detail))?,
                }
            }
            skipped.warn("redis", stream);
            leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
            Ok(leases)
        })
    }

    fn heartbeat<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let mut invocation = SCRIPTS.heartbeat.prepare_invoke();
            invocation
                .key(self.keys(stream).workers())
                .arg(worker.as_str())
                .arg(self.inner.ttl_ms);
            self.run_script("heartbeat", true, &invocation)
                .await
                .map(drop)
        })
    }

    fn live_workers<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WorkerId>, CheckpointError>> {
        Box::pin(async move {
            let mut invocation = SCRIPTS.live_workers.prepare_invoke();
            invocation.key(self.keys(stream).workers());
            let reply = self.run_script("live_workers", true, &invocation).await?;
            let mut live = reply
                .iter()
                .map(|value| {
                    scripts::text(value)?
                        .map(WorkerId::new)
                        .ok_or_else(|| BadReply::new(format!("worker {value:?}")))
                })
                .collect::<Result<Vec<_>, BadReply>>()
                .map_err(|bad| self.bad_reply("live_workers", bad))?;
            live.sort();
            Ok(live)
        })
    }

    fn leave<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let registry = self.keys(stream).workers();
            let registry = &registry;
            self.inner
                .link
                .call("leave", true, |mut connection| async move {
                    redis::cmd("ZREM")
                        .arg(registry)
                        .arg(worker.as_str())
                        .query_async::<i64>(&mut connection)
                        .await
                })
                .await
                .map(drop)
        })
    }

    fn prune_finished<'a>(
        &'a self,
        stream: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize, CheckpointError>> {
        Box::pin(async move {
            let keys = self.keys(stream);
            let mut pruned = 0;
            let mut unreadable = Vec::new();
            for batch in shard_ids.chunks(PRUNE_BATCH) {
                let mut invocation = SCRIPTS.prune.prepare_invoke();
                for shard_id in batch {
                    invocation
                        .key(keys.shard(shard_id))
                        .key(keys.lease(shard_id))
                        .arg(shard_id);
                }
                invocation.key(keys.shards());
                // A second run finds the deleted entries gone and deletes nothing more.
                let reply = self.run_script("prune_finished", true, &invocation).await?;
                let (deleted, left) = scripts::parse_prune(&reply)
                    .map_err(|bad| self.bad_reply("prune_finished", bad))?;
                pruned += deleted;
                unreadable.extend(left);
            }
            if !unreadable.is_empty() {
                tracing::warn!(
                    store = "redis",
                    stream,
                    shards = ?unreadable,
                    "left unreadable checkpoint entries unpruned (repair or delete them)"
                );
            }
            Ok(pruned)
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("app", &self.inner.app)
            .field("address", &self.inner.link.address)
            .field("cluster", &self.inner.cluster)
            .field("timing", &self.inner.timing)
            .finish_non_exhaustive()
    }
}
