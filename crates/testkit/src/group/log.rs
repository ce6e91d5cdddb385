//! The events of every worker of a group, and what they show.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Event;

/// Events of all workers of a group, in arrival order. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct GroupLog {
    events: Arc<Mutex<Vec<Event>>>,
}

/// Delivery counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accounting {
    /// Items never delivered.
    pub lost: u64,
    /// Deliveries beyond the first of an item.
    pub duplicates: u64,
    /// All deliveries.
    pub delivered: u64,
}

impl GroupLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an event.
    pub fn push(&self, event: Event) {
        self.lock().push(event);
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Distinct items delivered so far (by key and number).
    pub fn distinct_items(&self) -> usize {
        let events = self.lock();
        let mut seen = std::collections::HashSet::new();
        for event in events.iter() {
            if let Event::Record { k, n, .. } = event {
                seen.insert((k.clone(), *n));
            }
        }
        seen.len()
    }

    /// Whether `worker` reported it was ready.
    pub fn is_ready(&self, worker: &str) -> bool {
        self.lock()
            .iter()
            .any(|e| matches!(e, Event::Ready { worker: w } if w == worker))
    }

    /// The error messages reported, with their workers.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Error { worker, message } => Some((worker.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }

    /// Counts each key's items `0..expected[key]`, and checks that the first deliveries of each
    /// key, ordered by time across all workers, come in order.
    ///
    /// # Panics
    /// On an item never put (unknown key or number) or a key delivered out of order.
    pub fn account(&self, expected: &BTreeMap<String, u64>) -> Accounting {
        let mut by_key: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        let events = self.lock();
        for event in events.iter() {
            if let Event::Record { k, n, t, .. } = event {
                by_key.entry(k).or_default().push((*t, *n));
            }
        }
        let mut accounting = Accounting::default();
        for (key, &count) in expected {
            let mut deliveries = by_key.remove(key.as_str()).unwrap_or_default();
            deliveries.sort_unstable();
            let mut seen = vec![false; usize::try_from(count).unwrap_or(usize::MAX)];
            let mut last_first = None;
            for (_, n) in deliveries {
                let slot = seen
                    .get_mut(usize::try_from(n).unwrap_or(usize::MAX))
                    .unwrap_or_else(|| panic!("key {key}: unexpected item {n}"));
                accounting.delivered += 1;
                if *slot {
                    accounting.duplicates += 1;
                    continue;
                }
                *slot = true;
                assert!(
                    last_first.is_none_or(|last| last < n),
                    "key {key}: item {n} first delivered after item {last_first:?}"
                );
                last_first = Some(n);
            }
            accounting.lost += seen.iter().filter(|s| !**s).count() as u64;
        }
        assert!(
            by_key.is_empty(),
            "items of unexpected keys: {:?}",
            by_key.keys()
        );
        accounting
    }

    /// Checks fencing as seen from outside the store: for every shard, no checkpoint of an
    /// older claim was accepted after a checkpoint of a newer claim had been accepted, and no
    /// token was used by two workers. Returns the number of checkpoints checked.
    ///
    /// # Errors
    /// Each violation, described.
    pub fn check_fencing(&self) -> Result<usize, Vec<String>> {
        self.check_fencing_between(0, u64::MAX)
    }

    /// [`GroupLog::check_fencing`] over the checkpoints started in `from..to` (wall-clock
    /// nanoseconds): a store that lost its data starts counting tokens again, so each of its
    /// lives is checked on its own.
    ///
    /// # Errors
    /// Each violation, described.
    pub fn check_fencing_between(&self, from: u64, to: u64) -> Result<usize, Vec<String>> {
        let mut by_shard: BTreeMap<&str, Vec<(u64, u64, u64, &str)>> = BTreeMap::new();
        let events = self.lock();
        for event in events.iter() {
            if let Event::Checkpoint {
                shard,
                owner,
                token,
                started,
                finished,
                ..
            } = event
                && (from..to).contains(started)
            {
                by_shard
                    .entry(shard)
                    .or_default()
                    .push((*started, *finished, *token, owner));
            }
        }
        let mut violations = Vec::new();
        let mut accepted = 0;
        for (shard, mut writes) in by_shard {
            accepted += writes.len();
            writes.sort_unstable();
            let mut owners: HashMap<u64, &str> = HashMap::new();
            let mut newest: Option<(u64, u64, &str)> = None; // (token, finished, owner)
            for (started, finished, token, owner) in writes {
                if let Some(other) = owners.insert(token, owner)
                    && other != owner
                {
                    violations.push(format!(
                        "{shard}: token {token} used by {other} and {owner}"
                    ));
                }
                if let Some((newer, newer_finished, newer_owner)) = newest
                    && token < newer
                    && started > newer_finished
                {
                    violations.push(format!(
                        "{shard}: {owner} (token {token}) checkpointed after {newer_owner} (token {newer})"
                    ));
                }
                if newest.is_none_or(|(t, ..)| token > t) {
                    newest = Some((token, finished, owner));
                }
            }
        }
        if violations.is_empty() {
            Ok(accepted)
        } else {
            Err(violations)
        }
    }
}

/// An error with its causes, on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
