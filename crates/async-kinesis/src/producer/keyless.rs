//! Partition keys for items put without one.
//!
//! Items put without a key share one random key until the record they are aggregated into is
//! sealed (by size, by its linger or by a flush); then the next key is chosen. A fresh random
//! key alone spreads records over the shards only on average (a few hundred aggregates over
//! four shards still differ by tens of percent), so the next key is drawn until it routes to
//! the shard that has had the fewest keyless bytes, visiting shards in rotation on ties:
//! keyless traffic then spreads evenly. A shard whose backlog has reached a congestion mark
//! (others' traffic slows it down) is passed over while another is not.
//!
//! On a stream of many shards a random key rarely routes to the one wanted; after a few draws
//! the key goes with an explicit hash key drawn inside that shard's range instead, which
//! routes there surely (and which KPL readers check items against, as they do a key's hash).

use std::collections::HashMap;

use rand::Rng;

use crate::stream::shard_map::ShardMap;

/// Random keys tried per choice before an explicit hash key routes the last one (a shard owning
/// a sliver of the hash space, or one of hundreds, is rarely hit by chance).
const DRAWS: usize = 64;

/// The keys of the next keyless items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeylessKey {
    pub(crate) partition_key: String,
    /// Set when no drawn key routed to the shard wanted: a hash key inside its range.
    pub(crate) explicit_hash_key: Option<String>,
}

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

    /// Keys routing to the open shard that has had the fewest keyless bytes, among those whose
    /// `backlog` (bytes waiting for it) is below `congested` if any is.
    pub(crate) fn next(
        &mut self,
        map: &ShardMap,
        backlog: impl Fn(&str) -> usize,
        congested: usize,
        rng: &mut impl Rng,
    ) -> KeylessKey {
        let ranges = map.ranges();
        let mut key = KeylessKey {
            partition_key: random_key(rng),
            explicit_hash_key: None,
        };
        if ranges.is_empty() {
            return key;
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
        let wanted = &ranges[target];
        for _ in 1..DRAWS {
            if routes_to(map, &key.partition_key, wanted.shard_id()) {
                return key;
            }
            key.partition_key = random_key(rng);
        }
        if !routes_to(map, &key.partition_key, wanted.shard_id()) {
            let hash = rng.random_range(wanted.starting_hash_key()..=wanted.ending_hash_key());
            key.explicit_hash_key = Some(hash.to_string());
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

    fn shard_of(map: &ShardMap, key: &KeylessKey) -> String {
        map.route(&key.partition_key, key.explicit_hash_key.as_deref())
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
        assert_eq!(a.partition_key.len(), 32);
        assert_eq!(
            a.explicit_hash_key, None,
            "a key of two shards is found by drawing"
        );
        assert!(crate::processor::check_keys(&a.partition_key, None).is_ok());
    }

    #[test]
    fn hundreds_of_shards_each_get_their_turn_through_an_explicit_hash_key() {
        let map = map(500);
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut explicit = 0;
        for _ in 0..1_000 {
            let key = keys.next(&map, |_| 0, 1 << 20, &mut rng);
            if let Some(hash) = &key.explicit_hash_key {
                explicit += 1;
                assert!(
                    crate::processor::check_keys(&key.partition_key, Some(hash)).is_ok(),
                    "{key:?}"
                );
            }
            let shard = shard_of(&map, &key);
            keys.gave(&shard, 1_000);
            *counts.entry(shard).or_default() += 1;
        }
        // Every shard got exactly its two turns; most by an explicit hash key, since 64 draws
        // hit one shard of 500 only about one time in nine.
        assert_eq!(counts.len(), 500);
        assert!(counts.values().all(|&n| n == 2), "{counts:?}");
        assert!(explicit > 500, "{explicit} explicit hash keys");
    }

    #[test]
    fn an_explicit_hash_key_stays_inside_a_sliver_of_a_range() {
        // One shard owns three hash keys; the other all the rest.
        let map = ShardMap::new([
            ("shardId-000000000000".to_owned(), 0, 2),
            ("shardId-000000000001".to_owned(), 3, u128::MAX),
        ])
        .expect("map");
        let mut keys = KeylessKeys::default();
        let mut rng = rand::rng();
        for _ in 0..20 {
            let key = keys.next(&map, |_| 0, 1 << 20, &mut rng);
            let shard = shard_of(&map, &key);
            keys.gave(&shard, 1_000);
        }
        assert!(
            keys.given.values().all(|&bytes| bytes == 10_000),
            "{:?}",
            keys.given
        );
    }
}
