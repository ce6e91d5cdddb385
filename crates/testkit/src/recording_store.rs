//! A store decorator that reports every successful checkpoint, so tests can check fencing from
//! outside the store: per shard, no checkpoint of an older claim lands after one of a newer claim.
//! It also counts the checkpoint calls that failed, so tests can see how hard a consumer pushes
//! a store that is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, Lease, LeaseInfo, LeaseTiming, Position,
    Progress, StartingPoint, WorkerId,
};

/// A checkpoint the store accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedCheckpoint {
    /// The shard.
    pub shard_id: String,
    /// The lease holder that wrote it.
    pub owner: String,
    /// The token of its claim.
    pub token: u64,
    /// The position written (`sequence` or `sequence/sub`).
    pub position: String,
    /// Wall-clock nanoseconds when the call started and when it returned.
    pub started_ns: u64,
    /// See `started_ns`.
    pub finished_ns: u64,
}

/// Receives each accepted checkpoint.
pub type CheckpointSink = Arc<dyn Fn(AcceptedCheckpoint) + Send + Sync>;

/// Wraps a store; every call goes through unchanged.
pub struct RecordingStore {
    inner: Arc<dyn CheckpointStore>,
    sink: CheckpointSink,
    failed_checkpoints: Arc<AtomicU64>,
}

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl RecordingStore {
    /// Reports `inner`'s accepted checkpoints to `sink`.
    pub fn new(inner: Arc<dyn CheckpointStore>, sink: CheckpointSink) -> Self {
        Self {
            inner,
            sink,
            failed_checkpoints: Arc::default(),
        }
    }

    /// Counts the checkpoint calls that returned an error (refused or failed); the handle stays
    /// valid after the store moved into a consumer.
    pub fn failed_checkpoints(&self) -> Arc<AtomicU64> {
        self.failed_checkpoints.clone()
    }
}

/// Nanoseconds since the Unix epoch (the one clock all processes of a test share).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl CheckpointStore for RecordingStore {
    fn timing(&self) -> LeaseTiming {
        self.inner.timing()
    }

    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>> {
        self.inner.claim(stream, shard_id, worker)
    }

    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.renew(lease)
    }

    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        Box::pin(async move {
            let started_ns = now_ns();
            let result = self.inner.checkpoint(lease, position).await;
            if result.is_ok() {
                (self.sink)(AcceptedCheckpoint {
                    shard_id: lease.shard_id.to_string(),
                    owner: lease.owner.to_string(),
                    token: lease.token.0,
                    position: position.to_string(),
                    started_ns,
                    finished_ns: now_ns(),
                });
            } else {
                self.failed_checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            result
        })
    }

    fn record_start<'a>(
        &'a self,
        lease: &'a Lease,
        point: &'a StartingPoint,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.record_start(lease, point)
    }

    fn mark_shard_end<'a>(
        &'a self,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.mark_shard_end(lease)
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.release(lease)
    }

    fn progress<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress, CheckpointError>> {
        self.inner.progress(stream, shard_id)
    }

    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>> {
        self.inner.list(stream)
    }

    fn heartbeat<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.heartbeat(stream, worker)
    }

    fn live_workers<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WorkerId>, CheckpointError>> {
        self.inner.live_workers(stream)
    }

    fn leave<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.inner.leave(stream, worker)
    }

    fn prune_finished<'a>(
        &'a self,
        stream: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize, CheckpointError>> {
        self.inner.prune_finished(stream, shard_ids)
    }
}
