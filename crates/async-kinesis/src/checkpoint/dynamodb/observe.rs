//! Lease and registration expiry judged by watching counters on this process's monotonic clock,
//! never by comparing timestamps written by other hosts.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::item::Version;
use crate::checkpoint::Progress;

/// (partition key, sort key) of an item.
type ItemKey = (String, String);

/// When this process first saw each item's current [`Version`].
#[derive(Debug)]
pub(super) struct Observer {
    session_timeout: Duration,
    seen: Mutex<HashMap<ItemKey, Seen>>,
}

#[derive(Debug)]
struct Seen {
    version: Version,
    since: Instant,
}

impl Observer {
    pub(super) fn new(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            seen: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ItemKey, Seen>> {
        // Every update is one insert or removal: a panic elsewhere cannot leave it half-done.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the item holds `version` at `now`, and says whether it has held it for a whole
    /// session timeout of this process's watching (a version seen for the first time is live).
    pub(super) fn expired(
        &self,
        group: &str,
        sort_key: &str,
        version: Version,
        now: Instant,
    ) -> bool {
        let mut seen = self.lock();
        let entry = seen
            .entry((group.to_owned(), sort_key.to_owned()))
            .or_insert_with(|| Seen {
                version: version.clone(),
                since: now,
            });
        if entry.version != version {
            *entry = Seen {
                version,
                since: now,
            };
        }
        now.saturating_duration_since(entry.since) >= self.session_timeout
    }

    /// Records `version`, written by this process at `now`.
    pub(super) fn wrote(&self, group: &str, sort_key: &str, version: Version, now: Instant) {
        self.lock().insert(
            (group.to_owned(), sort_key.to_owned()),
            Seen {
                version,
                since: now,
            },
        );
    }

    /// Forgets an item that is gone.
    pub(super) fn forget(&self, group: &str, sort_key: &str) {
        self.lock().remove(&(group.to_owned(), sort_key.to_owned()));
    }

    /// Forgets the items of `group` within `scope` (by sort key) that are not in `present`.
    pub(super) fn retain(
        &self,
        group: &str,
        scope: impl Fn(&str) -> bool,
        present: &HashSet<String>,
    ) {
        self.lock()
            .retain(|(g, key), _| g != group || !scope(key) || present.contains(key));
    }

    /// Forgets everything (the table was created again).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

/// The progress this process last read or wrote per lease, so that a checkpoint can usually be
/// one conditional write instead of a read and a write.
#[derive(Debug, Default)]
pub(super) struct LastProgress {
    known: Mutex<HashMap<ItemKey, (u64, Progress)>>,
}

impl LastProgress {
    fn lock(&self) -> MutexGuard<'_, HashMap<ItemKey, (u64, Progress)>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The progress last seen under fencing token `token`.
    pub(super) fn get(&self, group: &str, shard_id: &str, token: u64) -> Option<Progress> {
        self.lock()
            .get(&(group.to_owned(), shard_id.to_owned()))
            .filter(|(known_token, _)| *known_token == token)
            .map(|(_, progress)| progress.clone())
    }

    /// Remembers `progress` under `token`.
    pub(super) fn set(&self, group: &str, shard_id: &str, token: u64, progress: Progress) {
        self.lock()
            .insert((group.to_owned(), shard_id.to_owned()), (token, progress));
    }

    /// Forgets the leases of `group` whose items a listing no longer found (pruned by any
    /// worker), so the map holds no more than the group's shards.
    pub(super) fn retain(&self, group: &str, present: &HashSet<String>) {
        self.lock()
            .retain(|(g, shard_id), _| g != group || present.contains(shard_id));
    }

    /// Forgets a lease whose item is gone.
    pub(super) fn forget(&self, group: &str, shard_id: &str) {
        self.lock().remove(&(group.to_owned(), shard_id.to_owned()));
    }

    /// Forgets everything (the table was created again).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::item::{LeaseItem, WorkerItem};
    use super::*;
    use crate::checkpoint::WorkerId;

    fn version(owner: &str, token: u64, beat: u64) -> Version {
        LeaseItem {
            owner: Some(WorkerId::new(owner)),
            token,
            beat,
            progress: Progress::None,
        }
        .version()
    }

    #[test]
    fn a_version_expires_after_a_session_of_silence_only() {
        let observer = Observer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let later = |secs| t0 + Duration::from_secs(secs);
        assert!(!observer.expired("g", "s", version("a", 1, 1), t0), "new");
        assert!(!observer.expired("g", "s", version("a", 1, 1), later(59)));
        // A renewal restarts the watch.
        assert!(!observer.expired("g", "s", version("a", 1, 2), later(59)));
        assert!(!observer.expired("g", "s", version("a", 1, 2), later(118)));
        assert!(observer.expired("g", "s", version("a", 1, 2), later(119)));
        // So does a new owner with the same counter values.
        assert!(!observer.expired("g", "s", version("b", 1, 2), later(200)));
        // Another item is watched on its own.
        assert!(!observer.expired("g", "t", version("a", 1, 2), later(200)));
        // Writing resets the watch.
        observer.wrote("g", "s", version("b", 1, 2), later(300));
        assert!(!observer.expired("g", "s", version("b", 1, 2), later(359)));
        observer.forget("g", "s");
        assert!(!observer.expired("g", "s", version("b", 1, 2), later(1_000)));
    }

    #[test]
    fn retain_drops_vanished_items_of_one_group() {
        let observer = Observer::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let worker = |id: &str| {
            WorkerItem {
                worker: WorkerId::new(id),
                beat: 1,
            }
            .version()
        };
        observer.expired("g", "worker#a", worker("a"), t0);
        observer.expired("g", "worker#b", worker("b"), t0);
        observer.expired("g", "shard-0", version("a", 1, 1), t0);
        observer.expired("h", "worker#a", worker("a"), t0);
        let present = HashSet::from(["worker#b".to_owned()]);
        observer.retain("g", |key| key.starts_with("worker#"), &present);
        let later = t0 + Duration::from_secs(5);
        // Still watched since t0: expired.
        assert!(observer.expired("g", "worker#b", worker("b"), later));
        assert!(observer.expired("g", "shard-0", version("a", 1, 1), later));
        assert!(observer.expired("h", "worker#a", worker("a"), later));
        // Forgotten: seen anew.
        assert!(!observer.expired("g", "worker#a", worker("a"), later));
    }

    #[test]
    fn last_progress_is_per_token() {
        let last = LastProgress::default();
        last.set("g", "s", 2, Progress::ShardEnd);
        assert_eq!(last.get("g", "s", 2), Some(Progress::ShardEnd));
        assert_eq!(last.get("g", "s", 3), None);
        last.forget("g", "s");
        assert_eq!(last.get("g", "s", 2), None);
        last.set("g", "s", 2, Progress::ShardEnd);
        last.clear();
        assert_eq!(last.get("g", "s", 2), None);
    }

    #[test]
    fn last_progress_keeps_only_the_shards_a_listing_found() {
        let last = LastProgress::default();
        last.set("g", "kept", 1, Progress::ShardEnd);
        last.set("g", "pruned", 1, Progress::ShardEnd);
        last.set("other", "pruned", 1, Progress::ShardEnd);
        last.retain("g", &HashSet::from(["kept".to_owned()]));
        assert_eq!(last.get("g", "kept", 1), Some(Progress::ShardEnd));
        assert_eq!(last.get("g", "pruned", 1), None);
        assert_eq!(
            last.get("other", "pruned", 1),
            Some(Progress::ShardEnd),
            "another group's listing decides for it"
        );
    }
}
