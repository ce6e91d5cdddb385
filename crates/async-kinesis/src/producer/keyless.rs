//! Partition keys for items put without one.
//!
//! Items put without a key share one random key until the record they are aggregated into is
//! sealed (by size, by its linger or by a flush); then the next key is chosen. A fresh random
//! key alone spreads records over the shards only on average (a few hundred aggregates over
//! four shards still differ by tens of percent), so the next key is drawn until it routes to
//! the shard that has had the fewest keyless bytes, visiting shards in rotation on ties:
//! keyless traffic then spreads evenly. A shard whose backlog has reached a congestion mark
//! (others' traffic slows it down) is passed over while another is not.

use std::collections::HashMap;

use rand::Rng;

use crate::shard_map::ShardMap;

/// Random keys tried per choice before settling for one that routes elsewhere (a shard owning
/// a sliver of the hash space is rarely hit by chance).
const DRAWS: usize = 64;

/// Chooses keys for keyless records. Pure apart from the random numbers passed in.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeylessKeys {
    /// Where the next search for the least-loaded shard starts.
    cursor: usize,
    /// Keyless bytes given to each shard since the shard map last changed.
    given: HashMap<String, u64>,
}

impl KeylessKeys {
    /// `bytes` of keyless items went to `shard_id`.
    pub(crate) fn gave(&mut self, shard_id: &str, bytes: usize) {
        match self.given.get_mut(shard_id) {
            Some(given) => *given += bytes as u64,
            None => {
                self.given.insert(shard_id.to_owned(), bytes as u64);
            }
        }
    }

    /// The shard map changed: the balance starts over, so new shards are not flooded to catch
    /// up with old ones.
    pub(crate) fn restart(&mut self) {
        self.given.clear();
    }

    /// A random key routing to the open shard that has had the fewest keyless bytes, among
    /// those whose `backlog` (bytes waiting for it) is below `congested` if any is.
    pub(crate) fn next(
        &mut self,
        map: &ShardMap,
        backlog: impl Fn(&str) -> usize,
        congested: usize,
        rng: &mut impl Rng,
    ) -> String {
        let ranges = map.ranges();
        if ranges.is_empty() {
            return random_key(rng);
        }
        let start = self.cursor % ranges.len();
        let target = (0..ranges.len())
            .map(|step| (start + step) % ranges.len())
            .min_by_key(|&index| {
                let shard = ranges[index].shard_id();
                let given = self.given.get(shard).copied().unwrap_or(0);
                (backlog(shard) >= congested, given)
            })
            .unwrap_or(start);
        self.cursor = target + 1;
        let wanted = ranges[target].shard_id();
        let mut key = random_key(rng);
        for _ in 1..DRAWS {
            if routes_to(map, &key, wanted) {
                break;
            }
            key = random_key(rng);
        }
        key
    }
}

fn routes_to(map: &ShardMap, key: &str, shard_id: &str) -> bool {
    matches!(map.route(key, None), Ok(Some(range)) if range.shard_id() == shard_id)
}

/// 32 random hexadecimal digits.
pub(crate) fn random_key(rng: &mut impl Rng) -> String {
    format!("{:032x}", rng.random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// `shards` shards splitting the hash key space evenly.
    fn map(shards: u128) -> ShardMap {
        let width = u128::MAX / shards;
        ShardMap::new((0..shards).map(|i| {
            let end = if i + 1 == shards {
                u128::MAX
            } else {
                (i + 1) * width - 1
            };
            (format!("shardId-{i:012}"), i * width, end)
        }))
        .expect("map")
    }

    fn shard_of(map: &ShardMap, key: &str) -> String {
        map.route(key, None)
            .expect("valid key")
            .expect("routed")
            .shard_id()
            .to_owned()
    }

    #[test]
    fn equal_backlogs_spread_keys_evenly() {
        let map = map(4);
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..400 {
            let key = keys.next(&map, |_| 0, 1 << 20, &mut rng);
            let shard = shard_of(&map, &key);
            keys.gave(&shard, 1_000);
            *counts.entry(shard).or_default() += 1;
        }
        assert_eq!(counts.len(), 4);
        // 64 draws at 1/4 each miss with probability (3/4)^64 ≈ 1e-8: exactly 100 each.
        assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    }

    #[test]
    fn the_least_loaded_shard_gets_the_next_key() {
        let map = map(4);
        let busy: Vec<String> = map.ranges()[..3]
            .iter()
            .map(|r| r.shard_id().to_owned())
            .collect();
        let idle = map.ranges()[3].shard_id().to_owned();
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        for _ in 0..20 {
            let key = keys.next(
                &map,
                |shard| {
                    if busy.iter().any(|b| b == shard) {
                        1 << 20
                    } else {
                        0
                    }
                },
                1 << 20,
                &mut rng,
            );
            assert_eq!(shard_of(&map, &key), idle);
        }
    }

    #[test]
    fn the_shard_that_had_the_fewest_keyless_bytes_is_next() {
        let map = map(4);
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        let shards: Vec<String> = map
            .ranges()
            .iter()
            .map(|r| r.shard_id().to_owned())
            .collect();
        // Uneven aggregates (as a KPL record that started with items already buffered):
        // the byte totals still even out.
        let mut given: HashMap<String, u64> = HashMap::new();
        for round in 0..1_000u64 {
            let key = keys.next(&map, |_| 0, 1 << 20, &mut rng);
            let shard = shard_of(&map, &key);
            let bytes = 10_000 + (round * 7_919) % 60_000;
            keys.gave(&shard, bytes as usize);
            *given.entry(shard).or_default() += bytes;
        }
        let mean = given.values().sum::<u64>() as f64 / 4.0;
        for shard in &shards {
            let off = (given[shard] as f64 - mean).abs() / mean;
            assert!(off < 0.01, "{shard}: {off}");
        }
        keys.restart();
        assert!(keys.given.is_empty());
    }

    #[test]
    fn keys_are_fresh_and_valid() {
        let map = map(2);
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        let a = keys.next(&map, |_| 0, 1 << 20, &mut rng);
        let b = keys.next(&map, |_| 0, 1 << 20, &mut rng);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(crate::processor::check_keys(&a, None).is_ok());
    }
}
