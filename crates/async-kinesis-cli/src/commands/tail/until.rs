//! `--until TIME`: which records to print and when everything before TIME was read. Pure: the
//! shards' state and the current time are passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// After TIME, at-the-tip shards are trusted only this much later: an empty read just before
/// TIME may have missed records that arrived right before it (a reader pauses up to 2 s
/// after an empty read).
const FETCH_MARGIN: Duration = Duration::from_secs(3);

/// One shard's state, from the consumer's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardFacts {
    pub(crate) shard_id: String,
    /// Finished or stopped: nothing more will come of it.
    pub(crate) done: bool,
    /// Being read at its tip.
    pub(crate) at_tip: bool,
}

/// The end of a `tail --until`.
#[derive(Debug)]
pub(crate) struct Until {
    at: SystemTime,
    /// Shards that delivered a record after `at`: the rest of them is not wanted.
    past: BTreeSet<String>,
}

impl Until {
    pub(crate) fn new(at: SystemTime) -> Self {
        Self {
            at,
            past: BTreeSet::new(),
        }
    }

    /// Whether to print a record of `shard` that arrived at `arrival`. A later one marks the
    /// shard as past the end (records of a shard arrive in order).
    pub(crate) fn admits(&mut self, shard: &str, arrival: Option<SystemTime>) -> bool {
        match arrival {
            Some(at) if at > self.at => {
                self.past.insert(shard.to_owned());
                false
            }
            _ => true,
        }
    }

    /// Whether every record before the end was read: each shard is done, past the end (or a
    /// descendant of one), or at its tip once TIME has passed.
    pub(crate) fn reached(
        &self,
        shards: &[ShardFacts],
        parents: &BTreeMap<String, Vec<String>>,
        now: SystemTime,
    ) -> bool {
        let settled = now >= self.at + FETCH_MARGIN;
        !shards.is_empty()
            && shards.iter().all(|shard| {
                shard.done || self.is_past(&shard.shard_id, parents, 0) || (settled && shard.at_tip)
            })
    }

    fn is_past(&self, shard: &str, parents: &BTreeMap<String, Vec<String>>, depth: usize) -> bool {
        // Lineages are short; the depth bound only guards against a malformed cycle.
        self.past.contains(shard)
            || (depth < 64
                && parents
                    .get(shard)
                    .is_some_and(|ps| ps.iter().any(|p| self.is_past(p, parents, depth + 1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, done: bool, at_tip: bool) -> ShardFacts {
        ShardFacts {
            shard_id: id.into(),
            done,
            at_tip,
        }
    }

    #[test]
    fn later_records_end_their_shard_and_its_children() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut until = Until::new(t);
        assert!(until.admits("p", Some(t)));
        assert!(until.admits("p", None));
        let parents = BTreeMap::from([("c".to_owned(), vec!["p".to_owned()])]);
        let shards = [facts("p", false, false), facts("c", false, false)];
        assert!(!until.reached(&shards, &parents, t));
        assert!(!until.admits("p", Some(t + Duration::from_millis(1))));
        assert!(until.reached(&shards, &parents, t));
    }

    #[test]
    fn shards_at_the_tip_count_only_after_the_end_has_passed() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let until = Until::new(t);
        let shards = [facts("a", false, true), facts("b", true, false)];
        let none = BTreeMap::new();
        assert!(!until.reached(&shards, &none, t));
        assert!(!until.reached(&shards, &none, t + Duration::from_secs(2)));
        assert!(until.reached(&shards, &none, t + FETCH_MARGIN));
        assert!(!until.reached(&[], &none, t + FETCH_MARGIN));
    }
}
