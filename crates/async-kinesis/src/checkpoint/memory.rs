//! The process-local store: leases and checkpoints in a map, with real fencing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use super::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, FencingToken, Lease, LeaseInfo, Position,
    Progress, WorkerId,
};

/// Leases and checkpoints in this process's memory (the default store).
///
/// Clones share the same map, so a consumer restarted in the same process with a clone resumes
/// from the checkpoints of the previous one. Nothing survives the process. Leases expire on the
/// tokio clock; fencing works as in the shared stores.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<HashMap<(String, String), Entry>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    owner: Option<WorkerId>,
    token: u64,
    expires: Instant,
    progress: Progress,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Entry>> {
        // A panic while holding this lock cannot leave an entry half-written (each write is one
        // assignment), so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim_now(&self, stream: &str, shard_id: &str, worker: &WorkerId, ttl: Duration) -> Claim {
        let now = Instant::now();
        let mut entries = self.lock();
        let entry = entries
            .entry((stream.to_owned(), shard_id.to_owned()))
            .or_insert(Entry {
                owner: None,
                token: 0,
                expires: now,
                progress: Progress::None,
            });
        if entry.progress == Progress::ShardEnd {
            return Claim::Finished;
        }
        match &entry.owner {
            Some(owner) if owner != worker && entry.expires > now => Claim::HeldBy {
                owner: owner.clone(),
            },
            _ => {
                entry.owner = Some(worker.clone());
                entry.token += 1;
                entry.expires = now + ttl;
                Claim::Acquired {
                    lease: Lease {
                        stream: stream.into(),
                        shard_id: shard_id.into(),
                        owner: worker.clone(),
                        token: FencingToken(entry.token),
                    },
                    progress: entry.progress.clone(),
                }
            }
        }
    }

    /// Runs `write` on the lease's entry if the lease still holds it.
    fn with_lease(
        &self,
        lease: &Lease,
        write: impl FnOnce(&mut Entry),
    ) -> Result<(), CheckpointError> {
        let mut entries = self.lock();
        let key = (lease.stream.to_string(), lease.shard_id.to_string());
        let Some(entry) = entries.get_mut(&key) else {
            return Err(CheckpointError::UnknownShard {
                shard_id: lease.shard_id.to_string(),
            });
        };
        // An expired lease nobody re-claimed still holds: no other worker has written since.
        if entry.owner.as_ref() != Some(&lease.owner) || entry.token != lease.token.0 {
            return Err(CheckpointError::NotOwned {
                shard_id: lease.shard_id.to_string(),
                worker: lease.owner.clone(),
                owner: entry.owner.clone(),
            });
        }
        write(entry);
        Ok(())
    }
}

impl CheckpointStore for MemoryStore {
    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>> {
        let claim = self.claim_now(stream, shard_id, worker, ttl);
        async move { Ok(claim) }.boxed()
    }

    fn renew<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let result = self.with_lease(lease, |entry| entry.expires = Instant::now() + ttl);
        async move { result }.boxed()
    }

    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let result = self.with_lease(lease, |entry| match &entry.progress {
            Progress::ShardEnd => {}
            Progress::At(current) if current >= position => {}
            _ => entry.progress = Progress::At(position.clone()),
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
            .get(&(stream.to_owned(), shard_id.to_owned()))
            .map_or(Progress::None, |entry| entry.progress.clone());
        async move { Ok(progress) }.boxed()
    }

    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>> {
        let now = Instant::now();
        let mut leases: Vec<LeaseInfo> = self
            .lock()
            .iter()
            .filter(|((s, _), _)| s == stream)
            .map(|((_, shard_id), entry)| LeaseInfo {
                shard_id: shard_id.clone(),
                owner: entry.owner.clone().filter(|_| entry.expires > now),
                token: FencingToken(entry.token),
                progress: entry.progress.clone(),
            })
            .collect();
        leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        async move { Ok(leases) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    async fn acquire(store: &MemoryStore, shard: &str, worker: &WorkerId) -> (Lease, Progress) {
        match store.claim("s", shard, worker, TTL).await.expect("claim") {
            Claim::Acquired { lease, progress } => (lease, progress),
            other => panic!("expected the lease, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn claim_checkpoint_and_resume() {
        let store = MemoryStore::new();
        let a = WorkerId::new("a");
        let (lease, progress) = acquire(&store, "shard-0", &a).await;
        assert_eq!(progress, Progress::None);
        assert_eq!(lease.token, FencingToken(1));
        store
            .checkpoint(&lease, &Position::after("10"))
            .await
            .expect("owner writes");
        store.release(&lease).await.expect("release");
        let (lease2, progress) = acquire(&store, "shard-0", &WorkerId::new("b")).await;
        assert_eq!(progress, Progress::At(Position::after("10")));
        assert_eq!(lease2.token, FencingToken(2));
    }

    #[tokio::test]
    async fn checkpoints_only_move_forward() {
        let store = MemoryStore::new();
        let (lease, _) = acquire(&store, "shard-0", &WorkerId::new("a")).await;
        for position in [
            Position::within("20", 3),
            Position::after("9"),
            Position::within("20", 1),
        ] {
            store.checkpoint(&lease, &position).await.expect("write");
        }
        assert_eq!(
            store.progress("s", "shard-0").await.expect("read"),
            Progress::At(Position::within("20", 3))
        );
        store
            .checkpoint(&lease, &Position::after("20"))
            .await
            .expect("write");
        assert_eq!(
            store.progress("s", "shard-0").await.expect("read"),
            Progress::At(Position::after("20"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_lease_is_not_taken_and_an_expired_one_is_fenced() {
        let store = MemoryStore::new();
        let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
        let (old, _) = acquire(&store, "shard-0", &a).await;
        assert_eq!(
            store.claim("s", "shard-0", &b, TTL).await.expect("claim"),
            Claim::HeldBy { owner: a.clone() }
        );
        tokio::time::advance(TTL + Duration::from_millis(1)).await;
        let (new, _) = acquire(&store, "shard-0", &b).await;
        assert!(new.token > old.token);
        // The old holder can no longer write, renew, finish or release.
        let position = Position::after("5");
        for result in [
            store.checkpoint(&old, &position).await,
            store.renew(&old, TTL).await,
            store.mark_shard_end(&old).await,
            store.release(&old).await,
        ] {
            match result {
                Err(CheckpointError::NotOwned { owner, worker, .. }) => {
                    assert_eq!(owner, Some(b.clone()));
                    assert_eq!(worker, a);
                }
                other => panic!("expected NotOwned, got {other:?}"),
            }
        }
        store.checkpoint(&new, &position).await.expect("new owner");
    }

    #[tokio::test]
    async fn a_checkpoint_without_a_lease_is_refused() {
        let store = MemoryStore::new();
        let forged = Lease {
            stream: "s".into(),
            shard_id: "shard-9".into(),
            owner: WorkerId::new("a"),
            token: FencingToken(1),
        };
        let err = store
            .checkpoint(&forged, &Position::after("1"))
            .await
            .expect_err("no entry");
        assert!(matches!(err, CheckpointError::UnknownShard { .. }), "{err}");
        let (lease, _) = acquire(&store, "shard-9", &WorkerId::new("b")).await;
        store.release(&lease).await.expect("release");
        let err = store
            .checkpoint(&lease, &Position::after("1"))
            .await
            .expect_err("released");
        assert!(
            matches!(err, CheckpointError::NotOwned { owner: None, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_finished_shard_cannot_be_claimed_and_is_listed() {
        let store = MemoryStore::new();
        let a = WorkerId::new("a");
        let (lease, _) = acquire(&store, "shard-0", &a).await;
        store.mark_shard_end(&lease).await.expect("end");
        // Later checkpoints cannot move an ended shard back.
        store
            .checkpoint(&lease, &Position::after("99"))
            .await
            .expect("no-op");
        store.release(&lease).await.expect("release");
        assert_eq!(
            store.claim("s", "shard-0", &a, TTL).await.expect("claim"),
            Claim::Finished
        );
        let (_other, _) = acquire(&store, "shard-1", &a).await;
        let listed = store.list("s").await.expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].progress, Progress::ShardEnd);
        assert_eq!(listed[0].owner, None);
        assert_eq!(listed[1].owner, Some(a));
        assert!(store.list("other").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn reclaiming_by_the_same_worker_fences_its_previous_claim() {
        let store = MemoryStore::new();
        let a = WorkerId::new("a");
        let (first, _) = acquire(&store, "shard-0", &a).await;
        let (second, _) = acquire(&store, "shard-0", &a).await;
        assert!(second.token > first.token);
        assert!(
            store
                .checkpoint(&first, &Position::after("1"))
                .await
                .is_err()
        );
        store
            .checkpoint(&second, &Position::after("1"))
            .await
            .expect("current claim");
    }
}
