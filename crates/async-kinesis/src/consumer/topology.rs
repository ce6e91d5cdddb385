//! Shard lineage: which shard may be read once which have ended. Pure; no I/O.
//!
//! A child shard (from a split or a merge) may be read only after **all** of its parents have been
//! read to their end, so records of one partition key come out in the order they were written. A
//! parent that no longer appears in the shard list (trimmed after the retention period) cannot be
//! read any more and does not block its children.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::stream::shard::Shard;

/// Parent/child relations among the known shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Topology {
    /// Every known shard id → its parents (zero, one, or two).
    parents: HashMap<String, Vec<String>>,
    /// Parent id → its children, for the known children.
    children: BTreeMap<String, BTreeSet<String>>,
}

impl Topology {
    /// The topology of `shards`.
    pub(crate) fn build<'a>(shards: impl IntoIterator<Item = &'a Shard>) -> Self {
        let mut topology = Self::default();
        for shard in shards {
            let parents: Vec<String> = shard.parents().map(str::to_owned).collect();
            for parent in &parents {
                topology
                    .children
                    .entry(parent.clone())
                    .or_default()
                    .insert(shard.shard_id.to_string());
            }
            topology.parents.insert(shard.shard_id.to_string(), parents);
        }
        topology
    }

    /// Whether `shard_id` is known.
    pub(crate) fn contains(&self, shard_id: &str) -> bool {
        self.parents.contains_key(shard_id)
    }

    /// The parents that still keep `shard_id` from being read: known parents that have not ended.
    /// Empty means the shard may be read now.
    pub(crate) fn blocking_parents<'a>(
        &'a self,
        shard_id: &str,
        ended: impl Fn(&str) -> bool,
    ) -> Vec<&'a str> {
        self.parents
            .get(shard_id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            // A parent missing from the shard list expired with the retention period.
            .filter(|parent| self.contains(parent) && !ended(parent))
            .collect()
    }

    /// Whether `shard_id` may be read now.
    pub(crate) fn can_start(&self, shard_id: &str, ended: impl Fn(&str) -> bool) -> bool {
        self.blocking_parents(shard_id, ended).is_empty()
    }

    /// The parents of `shard_id`, known or not.
    pub(crate) fn parents_of(&self, shard_id: &str) -> &[String] {
        self.parents.get(shard_id).map_or(&[], Vec::as_slice)
    }

    /// Whether a known shard is the parent of a known shard.
    pub(crate) fn is_parent(&self, shard_id: &str) -> bool {
        self.contains(shard_id) && self.children.contains_key(shard_id)
    }

    /// Whether `shard_id` has parents.
    pub(crate) fn is_child(&self, shard_id: &str) -> bool {
        !self.parents_of(shard_id).is_empty()
    }

    /// Parent ids referenced by known shards but themselves unknown (expired).
    pub(crate) fn expired_parents(&self) -> BTreeSet<&str> {
        self.children
            .keys()
            .map(String::as_str)
            .filter(|parent| !self.contains(parent))
            .collect()
    }

    /// Known parents (referenced and present).
    pub(crate) fn present_parents(&self) -> impl Iterator<Item = &str> {
        self.children
            .keys()
            .map(String::as_str)
            .filter(|parent| self.contains(parent))
    }

    /// Number of known shards that have parents.
    pub(crate) fn child_count(&self) -> usize {
        self.parents.values().filter(|p| !p.is_empty()).count()
    }

    /// Parent → children, for status.
    pub(crate) fn parent_child_map(&self) -> BTreeMap<String, Vec<String>> {
        self.children
            .iter()
            .map(|(parent, children)| (parent.clone(), children.iter().cloned().collect()))
            .collect()
    }

    /// Child → parents, for status.
    pub(crate) fn child_parent_map(&self) -> BTreeMap<String, Vec<String>> {
        self.parents
            .iter()
            .filter(|(_, parents)| !parents.is_empty())
            .map(|(child, parents)| (child.clone(), parents.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shard(id: &str, parent: Option<&str>, adjacent: Option<&str>) -> Shard {
        Shard {
            shard_id: id.into(),
            parent_shard_id: parent.map(Into::into),
            adjacent_parent_shard_id: adjacent.map(Into::into),
            starting_hash_key: 0,
            ending_hash_key: u128::MAX,
            starting_sequence_number: "1".into(),
            ending_sequence_number: None,
        }
    }

    fn ended(set: &[&str]) -> impl Fn(&str) -> bool {
        let set: HashSet<String> = set.iter().map(|s| (*s).to_owned()).collect();
        move |id| set.contains(id)
    }

    #[test]
    fn shards_without_parents_start_at_once() {
        let t = Topology::build(&[shard("a", None, None), shard("b", None, None)]);
        assert!(t.can_start("a", ended(&[])));
        assert!(t.can_start("b", ended(&[])));
        assert!(!t.is_parent("a") && !t.is_child("a"));
    }

    #[test]
    fn a_split_child_waits_for_its_parent() {
        let shards = [
            shard("p", None, None),
            shard("c1", Some("p"), None),
            shard("c2", Some("p"), None),
        ];
        let t = Topology::build(&shards);
        assert_eq!(t.blocking_parents("c1", ended(&[])), ["p"]);
        assert!(!t.can_start("c2", ended(&[])));
        assert!(t.can_start("c1", ended(&["p"])));
        assert!(t.can_start("c2", ended(&["p"])));
        assert_eq!(
            t.parent_child_map().get("p"),
            Some(&vec!["c1".to_owned(), "c2".to_owned()])
        );
        assert!(t.is_parent("p") && t.is_child("c1"));
    }

    #[test]
    fn a_merge_child_waits_for_both_parents() {
        let shards = [
            shard("p1", None, None),
            shard("p2", None, None),
            shard("m", Some("p1"), Some("p2")),
        ];
        let t = Topology::build(&shards);
        // Every combination of ended parents: only both ended lets the child start.
        for (done, expect) in [
            (vec![], false),
            (vec!["p1"], false),
            (vec!["p2"], false),
            (vec!["p1", "p2"], true),
        ] {
            assert_eq!(t.can_start("m", ended(&done)), expect, "{done:?}");
        }
        assert_eq!(t.blocking_parents("m", ended(&["p1"])), ["p2"]);
        assert_eq!(
            t.child_parent_map().get("m"),
            Some(&vec!["p1".to_owned(), "p2".to_owned()])
        );
    }

    #[test]
    fn expired_parents_do_not_block() {
        // p1 is gone from the list (trimmed); p2 is still there.
        let shards = [shard("p2", None, None), shard("m", Some("p1"), Some("p2"))];
        let t = Topology::build(&shards);
        assert_eq!(t.blocking_parents("m", ended(&[])), ["p2"]);
        assert!(t.can_start("m", ended(&["p2"])));
        assert_eq!(t.expired_parents().into_iter().collect::<Vec<_>>(), ["p1"]);
        assert_eq!(t.present_parents().collect::<Vec<_>>(), ["p2"]);
        // Both expired: the child starts at once.
        let t = Topology::build(&[shard("m", Some("p1"), Some("p2"))]);
        assert!(t.can_start("m", ended(&[])));
    }

    #[test]
    fn generations_chain() {
        // 2 → 4 → 2 (UpdateShardCount): grandchildren wait for their own parents only.
        let shards = [
            shard("a", None, None),
            shard("b", None, None),
            shard("a1", Some("a"), None),
            shard("a2", Some("a"), None),
            shard("b1", Some("b"), None),
            shard("b2", Some("b"), None),
            shard("x", Some("a1"), Some("a2")),
            shard("y", Some("b1"), Some("b2")),
        ];
        let t = Topology::build(&shards);
        assert!(!t.can_start("x", ended(&["a"])));
        assert!(!t.can_start("x", ended(&["a", "a1"])));
        assert!(t.can_start("x", ended(&["a1", "a2"])));
        assert!(!t.can_start("y", ended(&["a1", "a2", "b1"])));
        assert_eq!(t.child_count(), 6);
        assert_eq!(t.present_parents().count(), 6);
        assert!(t.expired_parents().is_empty());
        assert_eq!(t.parent_child_map().len(), 6);
    }

    #[test]
    fn unknown_shards_have_no_parents() {
        let t = Topology::build(&[]);
        assert!(t.can_start("z", ended(&[])));
        assert!(t.parents_of("z").is_empty());
        assert!(!t.contains("z"));
    }
}
