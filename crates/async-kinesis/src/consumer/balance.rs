//! Fair shares of a stream's shards among the live workers of a group.
//!
//! Every worker computes the same split from the same facts (the live workers, sorted, and the
//! number of shards that can be read now), so the group converges without talking: each worker
//! claims free leases up to its share and hands leases above it off.

use crate::checkpoint::WorkerId;

/// How many shards `me` should hold: `available` split evenly among the live workers, one more
/// for each of the first `available % workers` workers in id order. `me` counts as live even
/// when its own registration is missing from `live` (e.g. its last heartbeat failed).
pub(crate) fn fair_share(me: &WorkerId, live: &[WorkerId], available: usize) -> usize {
    let mut workers: Vec<&WorkerId> = live.iter().collect();
    if !workers.contains(&me) {
        workers.push(me);
    }
    workers.sort();
    workers.dedup();
    let rank = workers.iter().position(|w| *w == me).unwrap_or(0);
    let (each, extra) = (available / workers.len(), available % workers.len());
    each + usize::from(rank < extra)
}

/// The leases to hand off so that `held` comes down to `target`: the last ones in shard order,
/// so repeated calls pick the same shards.
pub(crate) fn to_shed(held: &[String], target: usize) -> Vec<String> {
    let mut held = held.to_vec();
    held.sort();
    held.split_off(target.min(held.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(ids: &[&str]) -> Vec<WorkerId> {
        ids.iter().map(|id| WorkerId::new(*id)).collect()
    }

    #[test]
    fn sixteen_shards_split_five_five_six_with_the_extra_to_the_first_worker() {
        let live = workers(&["c", "a", "b"]);
        let shares: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|me| fair_share(&WorkerId::new(*me), &live, 16))
            .collect();
        assert_eq!(shares, [6, 5, 5]);
        assert_eq!(shares.iter().sum::<usize>(), 16);
    }

    #[test]
    fn every_split_covers_every_shard_exactly() {
        for n in 1..8 {
            let live: Vec<WorkerId> = (0..n).map(|i| WorkerId::new(format!("w{i}"))).collect();
            for available in 0..40 {
                let total: usize = live.iter().map(|me| fair_share(me, &live, available)).sum();
                assert_eq!(total, available, "{n} workers, {available} shards");
                let shares: Vec<usize> = live
                    .iter()
                    .map(|me| fair_share(me, &live, available))
                    .collect();
                let (min, max) = (shares.iter().min(), shares.iter().max());
                assert!(
                    max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                    "{shares:?}"
                );
            }
        }
    }

    #[test]
    fn a_worker_missing_from_the_registry_still_counts_itself() {
        let live = workers(&["b"]);
        assert_eq!(fair_share(&WorkerId::new("a"), &live, 4), 2);
        assert_eq!(fair_share(&WorkerId::new("a"), &[], 4), 4);
        assert_eq!(fair_share(&WorkerId::new("a"), &workers(&["a", "a"]), 4), 4);
    }

    #[test]
    fn the_highest_shards_are_shed_down_to_the_target() {
        let held: Vec<String> = ["s3", "s1", "s2"].iter().map(|s| s.to_string()).collect();
        assert_eq!(to_shed(&held, 1), ["s2", "s3"]);
        assert!(to_shed(&held, 3).is_empty());
        assert!(to_shed(&held, 9).is_empty());
        assert_eq!(to_shed(&held, 0).len(), 3);
    }
}
