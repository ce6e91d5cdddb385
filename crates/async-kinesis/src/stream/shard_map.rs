//! Hash-key routing: which shard of a stream owns a record.
//!
//! Kinesis routes a record by a 128-bit hash key: the MD5 digest of the partition key's UTF-8 bytes read
//! as a big-endian unsigned integer, or the record's `ExplicitHashKey` (a decimal string in
//! `0 ..= 2^128 - 1`) when one is given. Each open shard owns the inclusive range
//! `[StartingHashKey, EndingHashKey]`; the open shards of a stream cover the whole key space without
//! overlap once resharding has finished.
//!
//! This module is pure: it does no I/O. Build a [`ShardMap`] from the open shards returned by
//! ListShards and ask it where a key goes.
//!
//! ```
//! use async_kinesis::stream::shard_map::{ShardMap, hash_key_for_partition_key};
//!
//! let half = u128::MAX / 2;
//! let map = ShardMap::new([
//!     ("shardId-000000000001", 0, half),
//!     ("shardId-000000000002", half + 1, u128::MAX),
//! ])?;
//! let shard = map.route("user-42", None)?.expect("two shards cover the whole key space");
//! assert!(shard.contains(hash_key_for_partition_key("user-42")));
//! assert_eq!(map.route("ignored", Some("0"))?.map(|s| s.shard_id()), Some("shardId-000000000001"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use md5::{Digest, Md5};

use crate::stream::shard::Shard;

pub use crate::stream::limits::MAX_HASH_KEY;

/// The hash key Kinesis derives from a partition key: MD5 of its UTF-8 bytes as a big-endian `u128`.
pub fn hash_key_for_partition_key(partition_key: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// Parses a hash key written as Kinesis writes it: decimal digits, no sign, no leading zeros
/// (`0` itself is allowed), at most `2^128 - 1`.
///
/// This is the format of `ExplicitHashKey` on PutRecord(s) and of the hash key ranges that ListShards
/// returns.
///
/// # Errors
///
/// [`HashKeyError`] when the text is empty, has a character that is not an ASCII digit, has a
/// leading zero, or is larger than `2^128 - 1`.
pub fn parse_hash_key(text: &str) -> Result<u128, HashKeyError> {
    let invalid = |reason| HashKeyError {
        value: text.to_owned(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid(HashKeyErrorReason::Empty));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(HashKeyErrorReason::NotDecimal));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(invalid(HashKeyErrorReason::LeadingZero));
    }
    // Only digits remain, so the only way `parse` can fail is overflow.
    text.parse::<u128>()
        .map_err(|_| invalid(HashKeyErrorReason::TooLarge))
}

/// A hash key that is not a decimal integer in `0 ..= 2^128 - 1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash key {value:?}: {reason}")]
pub struct HashKeyError {
    value: String,
    reason: HashKeyErrorReason,
}

impl HashKeyError {
    /// The text that failed to parse.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Why it failed.
    pub fn reason(&self) -> HashKeyErrorReason {
        self.reason
    }
}

/// Why a hash key failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashKeyErrorReason {
    /// The text is empty.
    #[error("it is empty")]
    Empty,
    /// The text has a character other than `0`–`9`.
    #[error("it must contain only the decimal digits 0-9")]
    NotDecimal,
    /// The text has a leading zero (Kinesis accepts `0` but not `007`).
    #[error("it must not have leading zeros")]
    LeadingZero,
    /// The value is larger than `2^128 - 1`.
    #[error("it is larger than 2^128 - 1")]
    TooLarge,
}

/// A shard and the inclusive range of hash keys it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRange {
    shard_id: String,
    starting_hash_key: u128,
    ending_hash_key: u128,
}

impl ShardRange {
    /// The shard id, e.g. `shardId-000000000000`.
    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// The first hash key the shard owns.
    pub fn starting_hash_key(&self) -> u128 {
        self.starting_hash_key
    }

    /// The last hash key the shard owns (inclusive).
    pub fn ending_hash_key(&self) -> u128 {
        self.ending_hash_key
    }

    /// Whether the shard owns `hash_key`.
    pub fn contains(&self, hash_key: u128) -> bool {
        (self.starting_hash_key..=self.ending_hash_key).contains(&hash_key)
    }
}

/// A shard map that cannot be built from the given ranges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardMapError {
    /// A shard's starting hash key is greater than its ending hash key.
    #[error(
        "shard {shard_id} has starting hash key {starting_hash_key} > ending hash key {ending_hash_key}"
    )]
    InvertedRange {
        /// The shard.
        shard_id: String,
        /// Its starting hash key.
        starting_hash_key: u128,
        /// Its ending hash key.
        ending_hash_key: u128,
    },
    /// Two shards own some of the same hash keys (e.g. a closed parent was passed with its children).
    #[error("shards {first} and {second} overlap; pass only the open shards")]
    Overlap {
        /// The shard whose range starts first.
        first: String,
        /// The shard whose range starts inside `first`'s range.
        second: String,
    },
}

/// Which open shard owns which hash keys.
///
/// Ranges are kept sorted by starting hash key, so a lookup is a binary search. Gaps are allowed (a
/// map read in the middle of resharding may have one); a key in a gap has no shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMap {
    ranges: Vec<ShardRange>,
}

impl ShardMap {
    /// Builds a map from `(shard_id, starting_hash_key, ending_hash_key)` of the **open** shards.
    ///
    /// # Errors
    ///
    /// [`ShardMapError::InvertedRange`] when a range ends before it starts and
    /// [`ShardMapError::Overlap`] when two ranges share a hash key.
    pub fn new<I, S>(shards: I) -> Result<Self, ShardMapError>
    where
        I: IntoIterator<Item = (S, u128, u128)>,
        S: Into<String>,
    {
        let mut ranges = shards
            .into_iter()
            .map(
                |(shard_id, starting_hash_key, ending_hash_key)| ShardRange {
                    shard_id: shard_id.into(),
                    starting_hash_key,
                    ending_hash_key,
                },
            )
            .collect::<Vec<_>>();
        if let Some(bad) = ranges
            .iter()
            .find(|r| r.starting_hash_key > r.ending_hash_key)
        {
            return Err(ShardMapError::InvertedRange {
                shard_id: bad.shard_id.clone(),
                starting_hash_key: bad.starting_hash_key,
                ending_hash_key: bad.ending_hash_key,
            });
        }
        ranges.sort_by_key(|r| r.starting_hash_key);
        if let Some(pair) = ranges
            .windows(2)
            .find(|pair| pair[1].starting_hash_key <= pair[0].ending_hash_key)
        {
            return Err(ShardMapError::Overlap {
                first: pair[0].shard_id.clone(),
                second: pair[1].shard_id.clone(),
            });
        }
        Ok(Self { ranges })
    }

    /// The map of the open shards among `shards`, e.g. all shards from
    /// [`StreamClient::list_shards`](crate::StreamClient::list_shards).
    ///
    /// # Errors
    /// [`ShardMapError`] when the open shards' ranges overlap or are inverted.
    pub fn from_open_shards<'a>(
        shards: impl IntoIterator<Item = &'a Shard>,
    ) -> Result<Self, ShardMapError> {
        Self::new(
            shards
                .into_iter()
                .filter(|shard| shard.is_open())
                .map(|shard| {
                    (
                        shard.shard_id.clone(),
                        shard.starting_hash_key,
                        shard.ending_hash_key,
                    )
                }),
        )
    }

    /// The shard that owns `hash_key`, or `None` when the key falls in a gap.
    pub fn shard_for_hash_key(&self, hash_key: u128) -> Option<&ShardRange> {
        // Index of the first range starting after the key; the owner, if any, is the one before it.
        let after = self
            .ranges
            .partition_point(|r| r.starting_hash_key <= hash_key);
        let candidate = self.ranges.get(after.checked_sub(1)?)?;
        candidate.contains(hash_key).then_some(candidate)
    }

    /// The shard that owns the hash key of `partition_key`.
    pub fn shard_for_partition_key(&self, partition_key: &str) -> Option<&ShardRange> {
        self.shard_for_hash_key(hash_key_for_partition_key(partition_key))
    }

    /// Routes a record as Kinesis does: by `explicit_hash_key` when given, else by the partition key.
    ///
    /// # Errors
    ///
    /// [`HashKeyError`] when `explicit_hash_key` is not a valid hash key.
    pub fn route(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
    ) -> Result<Option<&ShardRange>, HashKeyError> {
        let hash_key = match explicit_hash_key {
            Some(text) => parse_hash_key(text)?,
            None => hash_key_for_partition_key(partition_key),
        };
        Ok(self.shard_for_hash_key(hash_key))
    }

    /// The ranges, sorted by starting hash key.
    pub fn ranges(&self) -> &[ShardRange] {
        &self.ranges
    }

    /// The number of shards in the map.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the map has no shards.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_TEXT: &str = "340282366920938463463374607431768211455";

    fn two_halves() -> ShardMap {
        let half = MAX_HASH_KEY / 2;
        ShardMap::new([("a", 0, half), ("b", half + 1, MAX_HASH_KEY)]).expect("valid map")
    }

    #[test]
    fn partition_key_hash_is_md5_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e, md5("a") = 0cc175b9c0f1b6a831c399e269772661.
        assert_eq!(
            hash_key_for_partition_key(""),
            0xd41d8cd98f00b204e9800998ecf8427e
        );
        assert_eq!(
            hash_key_for_partition_key("a"),
            0x0cc175b9c0f1b6a831c399e269772661
        );
        // Non-ASCII keys hash their UTF-8 bytes: md5("é") = md5([0xc3, 0xa9]).
        let digest: [u8; 16] = Md5::digest([0xc3u8, 0xa9]).into();
        assert_eq!(hash_key_for_partition_key("é"), u128::from_be_bytes(digest));
    }

    #[test]
    fn parses_hash_key_edges() {
        assert_eq!(parse_hash_key("0"), Ok(0));
        assert_eq!(parse_hash_key("1"), Ok(1));
        assert_eq!(parse_hash_key(MAX_TEXT), Ok(MAX_HASH_KEY));
        assert_eq!(
            parse_hash_key("170141183460469231731687303715884105728"),
            Ok(1u128 << 127)
        );
    }

    #[test]
    fn rejects_bad_hash_keys_with_reason() {
        let cases = [
            ("", HashKeyErrorReason::Empty),
            ("-1", HashKeyErrorReason::NotDecimal),
            ("+1", HashKeyErrorReason::NotDecimal),
            (" 1", HashKeyErrorReason::NotDecimal),
            ("1.5", HashKeyErrorReason::NotDecimal),
            ("0x10", HashKeyErrorReason::NotDecimal),
            ("١", HashKeyErrorReason::NotDecimal),
            ("00", HashKeyErrorReason::LeadingZero),
            ("0123", HashKeyErrorReason::LeadingZero),
            (
                "340282366920938463463374607431768211456",
                HashKeyErrorReason::TooLarge,
            ),
            (
                "1000000000000000000000000000000000000000",
                HashKeyErrorReason::TooLarge,
            ),
        ];
        for (text, reason) in cases {
            let err = parse_hash_key(text).expect_err(text);
            assert_eq!(err.reason(), reason, "{text:?}");
            assert_eq!(err.value(), text);
            assert!(err.to_string().contains("invalid hash key"), "{err}");
        }
    }

    #[test]
    fn single_shard_owns_every_key() {
        let map = ShardMap::new([("only", 0, MAX_HASH_KEY)]).expect("valid map");
        for key in [0, 1, MAX_HASH_KEY / 2, MAX_HASH_KEY - 1, MAX_HASH_KEY] {
            assert_eq!(
                map.shard_for_hash_key(key).map(ShardRange::shard_id),
                Some("only")
            );
        }
        assert_eq!(map.len(), 1);
        assert!(!map.is_empty());
    }

    #[test]
    fn boundaries_belong_to_the_right_shard() {
        let map = two_halves();
        let half = MAX_HASH_KEY / 2;
        let owner = |k| map.shard_for_hash_key(k).map(ShardRange::shard_id);
        assert_eq!(owner(0), Some("a"));
        assert_eq!(owner(half), Some("a"));
        assert_eq!(owner(half + 1), Some("b"));
        assert_eq!(owner(MAX_HASH_KEY), Some("b"));
    }

    #[test]
    fn keys_in_gaps_have_no_shard() {
        let map = ShardMap::new([("low", 10, 20), ("high", 30, 40)]).expect("valid map");
        let owner = |k| map.shard_for_hash_key(k).map(ShardRange::shard_id);
        assert_eq!(owner(0), None);
        assert_eq!(owner(9), None);
        assert_eq!(owner(10), Some("low"));
        assert_eq!(owner(20), Some("low"));
        assert_eq!(owner(21), None);
        assert_eq!(owner(29), None);
        assert_eq!(owner(30), Some("high"));
        assert_eq!(owner(40), Some("high"));
        assert_eq!(owner(41), None);
        assert_eq!(owner(MAX_HASH_KEY), None);
    }

    #[test]
    fn empty_map_routes_nothing() {
        let map = ShardMap::new(Vec::<(String, u128, u128)>::new()).expect("valid map");
        assert!(map.is_empty());
        assert_eq!(map.shard_for_hash_key(0), None);
        assert_eq!(map.shard_for_partition_key("k"), None);
    }

    #[test]
    fn input_order_does_not_matter() {
        let map = ShardMap::new([("c", 200, 300), ("a", 0, 99), ("b", 100, 199)]).expect("valid");
        let ids: Vec<_> = map.ranges().iter().map(ShardRange::shard_id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            map.shard_for_hash_key(150).map(ShardRange::shard_id),
            Some("b")
        );
    }

    #[test]
    fn single_key_ranges_work() {
        let map = ShardMap::new([("x", 5, 5), ("y", 6, 6)]).expect("valid map");
        assert_eq!(
            map.shard_for_hash_key(5).map(ShardRange::shard_id),
            Some("x")
        );
        assert_eq!(
            map.shard_for_hash_key(6).map(ShardRange::shard_id),
            Some("y")
        );
        assert_eq!(map.shard_for_hash_key(4), None);
        assert_eq!(map.shard_for_hash_key(7), None);
    }

    #[test]
    fn rejects_inverted_and_overlapping_ranges() {
        assert_eq!(
            ShardMap::new([("bad", 10, 9)]),
            Err(ShardMapError::InvertedRange {
                shard_id: "bad".into(),
                starting_hash_key: 10,
                ending_hash_key: 9
            })
        );
        assert_eq!(
            ShardMap::new([("child", 50, 100), ("parent", 0, 100)]),
            Err(ShardMapError::Overlap {
                first: "parent".into(),
                second: "child".into()
            })
        );
        // Touching ranges overlap by one key.
        assert!(matches!(
            ShardMap::new([("a", 0, 10), ("b", 10, 20)]),
            Err(ShardMapError::Overlap { .. })
        ));
    }

    #[test]
    fn routes_by_explicit_hash_key_first() {
        let map = two_halves();
        let by_pk = map.shard_for_partition_key("a").map(ShardRange::shard_id);
        // md5("a") starts with 0x0c, so it lies in the lower half.
        assert_eq!(by_pk, Some("a"));
        let routed = map.route("a", Some(MAX_TEXT)).expect("valid key");
        assert_eq!(routed.map(ShardRange::shard_id), Some("b"));
        let routed = map.route("a", None).expect("no explicit key");
        assert_eq!(routed.map(ShardRange::shard_id), Some("a"));
        let err = map.route("a", Some("nope")).expect_err("invalid key");
        assert_eq!(err.reason(), HashKeyErrorReason::NotDecimal);
    }

    #[test]
    fn many_even_shards_agree_with_linear_scan() {
        let n = 7u128;
        let width = MAX_HASH_KEY / n;
        let shards: Vec<_> = (0..n)
            .map(|i| {
                let end = if i == n - 1 {
                    MAX_HASH_KEY
                } else {
                    (i + 1) * width - 1
                };
                (format!("s{i}"), i * width, end)
            })
            .collect();
        let map = ShardMap::new(shards.clone()).expect("valid map");
        for pk in (0..500).map(|i| format!("key-{i}")) {
            let h = hash_key_for_partition_key(&pk);
            let linear = shards
                .iter()
                .find(|(_, s, e)| (*s..=*e).contains(&h))
                .map(|(id, _, _)| id.as_str());
            assert_eq!(map.shard_for_hash_key(h).map(ShardRange::shard_id), linear);
        }
    }

    #[test]
    fn from_open_shards_skips_closed_parents() {
        let shard = |id: &str, start: u128, end: u128, closed: bool| Shard {
            shard_id: id.into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            starting_hash_key: start,
            ending_hash_key: end,
            starting_sequence_number: "1".into(),
            ending_sequence_number: closed.then(|| "2".into()),
        };
        let half = MAX_HASH_KEY / 2;
        let shards = [
            shard("parent", 0, MAX_HASH_KEY, true),
            shard("left", 0, half, false),
            shard("right", half + 1, MAX_HASH_KEY, false),
        ];
        let map = ShardMap::from_open_shards(&shards).expect("children cover the space");
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.shard_for_hash_key(0).map(ShardRange::shard_id),
            Some("left")
        );
        assert_eq!(
            map.shard_for_hash_key(MAX_HASH_KEY)
                .map(ShardRange::shard_id),
            Some("right")
        );
    }
}
