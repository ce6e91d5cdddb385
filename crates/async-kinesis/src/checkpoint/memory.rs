//! The process-local store: leases and checkpoints in a map, with real fencing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use super::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, FencingToken, Lease, LeaseInfo,
    LeaseTiming, Position, Progress, StartingPoint, WorkerId,
};

/// Leases and checkpoints in this process's memory (the default store).
///
/// Clones share the same map, so a consumer restarted in the same process with a clone resumes
/// from the checkpoints of the previous one. Nothing survives the process. Leases expire on the
/// tokio clock; fencing works as in the shared stores.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    timing: LeaseTiming,
}

#[derive(Debug, Default)]
struct State {
    /// (stream, shard id) → entry.
    entries: HashMap<(String, String), Entry>,
    /// (stream, worker) → registration expiry.
    workers: HashMap<(String, WorkerId), Instant>,
}

#[derive(Debug, Clone)]
struct Entry {
    owner: Option<WorkerId>,
    token: u64,
    expires: Instant,
    /// The checkpoint: `None`, `At` or `ShardEnd` (never `Started`).
    progress: Progress,
    /// Where reading started, recorded before the first checkpoint.
    start: Option<StartingPoint>,
}

impl Entry {
    /// The progress a reader resumes from: the checkpoint, else the recorded start.
    fn reported(&self) -> Progress {
        match (&self.progress, &self.start) {
            (Progress::None, Some(start)) => Progress::Started(start.clone()),
            (progress, _) => progress.clone(),
        }
    }
}

impl MemoryStore {
    /// An empty store with the default [`LeaseTiming`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose leases live `timing.session_timeout()`.
    pub fn with_timing(timing: LeaseTiming) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave an entry half-written (each write is one
        // assignment), so a poisoned map is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ttl(&self) -> Duration {
        self.timing.session_timeout()
    }

    fn claim_now(
        &self,
        stream: &str,
        shard_id: &str,
        worker: &WorkerId,
    ) -> Result<Claim, CheckpointError> {
        let now = Instant::now();
        let ttl = self.ttl();
        let mut state = self.lock();
        let entry = state
            .entries
            .entry((stream.to_owned(), shard_id.to_owned()))
            .or_insert(Entry {
                owner: None,
                token: 0,
                expires: now,
                progress: Progress::None,
                start: None,
            });
        if entry.progress == Progress::ShardEnd {
            return Ok(Claim::Finished);
        }
        match &entry.owner {
            Some(owner) if owner != worker && entry.expires > now => Ok(Claim::HeldBy {
                owner: owner.clone(),
            }),
            _ => {
                let Some(token) = entry.token.checked_add(1) else {
                    return Err(CheckpointError::TokenExhausted {
                        shard_id: shard_id.into(),
                        token: entry.token,
                    });
                };
                entry.owner = Some(worker.clone());
                entry.token = token;
                entry.expires = now + ttl;
                Ok(Claim::Acquired {
                    lease: Lease {
                        stream: stream.into(),
                        shard_id: shard_id.into(),
                        owner: worker.clone(),
                        token: FencingToken(entry.token),
                    },
                    progress: entry.reported(),
                })
            }
        }
    }

    /// Removes the entries of `shard_ids` that are finished and not held by a live lease.
    fn prune_now(&self, stream: &str, shard_ids: &[String]) -> usize {
        let now = Instant::now();
        let mut state = self.lock();
        let mut pruned = 0;
        for shard_id in shard_ids {
            let key = (stream.to_owned(), shard_id.clone());
            let prunable = state.entries.get(&key).is_some_and(|entry| {
                entry.progress == Progress::ShardEnd
                    && !(entry.owner.is_some() && entry.expires > now)
            });
            if prunable {
                state.entries.remove(&key);
                pruned += 1;
            }
        }
        pruned
    }

    /// Runs `write` on the lease's entry if the lease still holds it.
    fn with_lease(
        &self,
        lease: &Lease,
        write: impl FnOnce(&mut Entry),
    ) -> Result<(), CheckpointError> {
        let mut state = self.lock();
        let key = (lease.stream.to_string(), lease.shard_id.to_string());
        let Some(entry) = state.entries.get_mut(&key) else {
            return Err(CheckpointError::UnknownShard {
                shard_id: lease.shard_id.clone(),
            });
        };
        // An expired lease nobody re-claimed still holds: no other worker has written since.
        if entry.owner.as_ref() != Some(&lease.owner) || entry.token != lease.token.0 {
            return Err(CheckpointError::NotOwned {
                shard_id: lease.shard_id.clone(),
                worker: lease.owner.clone(),
                owner: entry.owner.clone(),
            });
        }
        write(entry);
        Ok(())
    }
}

impl CheckpointStore for MemoryStore {
    fn timing(&self) -> LeaseTiming {
        self.timing
    }

    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>> {
        let claim = self.claim_now(stream, shard_id, worker);
        async move { claim }.boxed()
    }

    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let expires = Instant::now() + self.ttl();
        let result = self.with_lease(lease, |entry| entry.expires = expires);
        async move { result }.boxed()
    }

    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        if let Err(err) = position.check("checkpoint") {
            return async move { Err(err) }.boxed();
        }
        let result = self.with_lease(lease, |entry| match &entry.progress {
            Progress::ShardEnd => {}
            Progress::At(current) if current >= position => {}
            _ => entry.progress = Progress::At(position.clone()),
        });
        async move { result }.boxed()
    }

    fn record_start<'a>(
        &'a self,
        lease: &'a Lease,
        point: &'a StartingPoint,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let result = point.check().and_then(|()| {
            self.with_lease(lease, |entry| {
                if entry.progress == Progress::None && entry.start.is_none() {
                    entry.start = Some(point.clone());
                }
            })
        });
        async move { result }.boxed()
    }

    fn mark_shard_end<'a>(
        &'a self,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let result = self.with_lease(lease, |entry| entry.progress = Progress::ShardEnd);
        async move { result }.boxed()
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let result = self.with_lease(lease, |entry| entry.owner = None);
        async move { result }.boxed()
    }

    fn progress<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress, CheckpointError>> {
        let progress = self
            .lock()
            .entries
            .get(&(stream.to_owned(), shard_id.to_owned()))
            .map_or(Progress::None, Entry::reported);
        async move { Ok(progress) }.boxed()
    }

    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>> {
        let now = Instant::now();
        let mut leases: Vec<LeaseInfo> = self
            .lock()
            .entries
            .iter()
            .filter(|((s, _), _)| s == stream)
            .map(|((_, shard_id), entry)| LeaseInfo {
                shard_id: shard_id.clone().into(),
                owner: entry.owner.clone().filter(|_| entry.expires > now),
                token: FencingToken(entry.token),
                progress: entry.reported(),
            })
            .collect();
        leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        async move { Ok(leases) }.boxed()
    }

    fn heartbeat<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let expires = Instant::now() + self.ttl();
        self.lock()
            .workers
            .insert((stream.to_owned(), worker.clone()), expires);
        async { Ok(()) }.boxed()
    }

    fn live_workers<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WorkerId>, CheckpointError>> {
        let now = Instant::now();
        let mut state = self.lock();
        state.workers.retain(|_, expires| *expires > now);
        let mut live: Vec<WorkerId> = state
            .workers
            .keys()
            .filter(|(s, _)| s == stream)
            .map(|(_, worker)| worker.clone())
            .collect();
        live.sort();
        async move { Ok(live) }.boxed()
    }

    fn leave<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        self.lock()
            .workers
            .remove(&(stream.to_owned(), worker.clone()));
        async { Ok(()) }.boxed()
    }

    fn prune_finished<'a>(
        &'a self,
        stream: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize, CheckpointError>> {
        let pruned = self.prune_now(stream, shard_ids);
        async move { Ok(pruned) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_at_its_maximum_is_refused_not_wrapped() {
        let store = MemoryStore::new();
        let worker = WorkerId::new("a");
        let Ok(Claim::Acquired { lease, .. }) = store.claim("s", "shard-0", &worker).await else {
            panic!("first claim");
        };
        store.release(&lease).await.expect("release");
        store
            .lock()
            .entries
            .get_mut(&("s".to_owned(), "shard-0".to_owned()))
            .expect("entry")
            .token = u64::MAX;
        match store.claim("s", "shard-0", &worker).await {
            Err(CheckpointError::TokenExhausted { shard_id, token }) => {
                assert_eq!((shard_id.as_str(), token), ("shard-0", u64::MAX));
            }
            other => panic!("expected TokenExhausted, got {other:?}"),
        }
        let listed = store.list("s").await.expect("list");
        assert_eq!((listed[0].token.0, &listed[0].owner), (u64::MAX, &None));
    }
}
