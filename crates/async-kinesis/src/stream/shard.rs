//! A shard as ListShards / DescribeStream describe it: hash key range, lineage, sequence range.

use crate::error::Error;
use crate::ids::{SequenceNumber, ShardId};
use crate::stream::shard_map::parse_hash_key;

/// One shard of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shard {
    /// The shard's id, e.g. `shardId-000000000000`.
    pub shard_id: ShardId,
    /// The shard this one was split from or merged into, if any.
    pub parent_shard_id: Option<ShardId>,
    /// The second parent of a merge, if any.
    pub adjacent_parent_shard_id: Option<ShardId>,
    /// Lowest hash key the shard owns.
    pub starting_hash_key: u128,
    /// Highest hash key the shard owns (inclusive).
    pub ending_hash_key: u128,
    /// Sequence number of the shard's first record.
    pub starting_sequence_number: SequenceNumber,
    /// Sequence number of the shard's last record, once the shard is closed.
    pub ending_sequence_number: Option<SequenceNumber>,
}

impl Shard {
    /// Whether the shard still accepts records (it has no ending sequence number).
    pub fn is_open(&self) -> bool {
        self.ending_sequence_number.is_none()
    }

    /// The shard's parents: none, one (split), or two (merge).
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(self.adjacent_parent_shard_id.iter())
            .map(ShardId::as_str)
    }

    /// Whether `hash_key` falls in this shard's hash key range.
    pub fn owns_hash_key(&self, hash_key: u128) -> bool {
        (self.starting_hash_key..=self.ending_hash_key).contains(&hash_key)
    }

    /// Converts the SDK's shard, rejecting malformed hash key ranges.
    pub(crate) fn from_sdk(
        operation: &'static str,
        shard: &aws_sdk_kinesis::types::Shard,
    ) -> Result<Self, Error> {
        let malformed = |detail: String| Error::MalformedResponse { operation, detail };
        let range = shard.hash_key_range().ok_or_else(|| {
            malformed(format!("shard {} has no hash key range", shard.shard_id()))
        })?;
        let parse = |key: &str| {
            parse_hash_key(key).map_err(|e| malformed(format!("shard {}: {e}", shard.shard_id())))
        };
        let starting_hash_key = parse(range.starting_hash_key())?;
        let ending_hash_key = parse(range.ending_hash_key())?;
        if starting_hash_key > ending_hash_key {
            return Err(malformed(format!(
                "shard {} has an empty hash key range",
                shard.shard_id()
            )));
        }
        let sequence = shard.sequence_number_range();
        Ok(Self {
            shard_id: shard.shard_id().into(),
            parent_shard_id: shard.parent_shard_id().map(ShardId::from),
            adjacent_parent_shard_id: shard.adjacent_parent_shard_id().map(ShardId::from),
            starting_hash_key,
            ending_hash_key,
            starting_sequence_number: sequence
                .map_or("", |range| range.starting_sequence_number())
                .into(),
            ending_sequence_number: sequence
                .and_then(|range| range.ending_sequence_number())
                .map(SequenceNumber::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::{HashKeyRange, SequenceNumberRange, Shard as SdkShard};

    fn sdk_shard(start: &str, end: &str, ending_seq: Option<&str>) -> SdkShard {
        SdkShard::builder()
            .shard_id("shardId-000000000002")
            .parent_shard_id("shardId-000000000000")
            .adjacent_parent_shard_id("shardId-000000000001")
            .hash_key_range(
                HashKeyRange::builder()
                    .starting_hash_key(start)
                    .ending_hash_key(end)
                    .build()
                    .expect("both keys set"),
            )
            .sequence_number_range(
                SequenceNumberRange::builder()
                    .starting_sequence_number("49590")
                    .set_ending_sequence_number(ending_seq.map(str::to_owned))
                    .build()
                    .expect("start set"),
            )
            .build()
            .expect("shard id set")
    }

    #[test]
    fn converts_a_merged_shard() {
        let max = u128::MAX.to_string();
        let shard = Shard::from_sdk("ListShards", &sdk_shard("0", &max, None)).expect("valid");
        assert_eq!(shard.starting_hash_key, 0);
        assert_eq!(shard.ending_hash_key, u128::MAX);
        assert!(shard.is_open());
        assert_eq!(
            shard.parents().collect::<Vec<_>>(),
            ["shardId-000000000000", "shardId-000000000001"]
        );
        assert!(shard.owns_hash_key(0) && shard.owns_hash_key(u128::MAX));
    }

    #[test]
    fn a_shard_with_an_ending_sequence_is_closed() {
        let shard =
            Shard::from_sdk("ListShards", &sdk_shard("0", "10", Some("49599"))).expect("ok");
        assert!(!shard.is_open());
        assert!(shard.owns_hash_key(10) && !shard.owns_hash_key(11));
    }

    #[test]
    fn malformed_hash_keys_are_errors() {
        for (start, end) in [
            ("x", "1"),
            ("0", "340282366920938463463374607431768211456"),
            ("5", "4"),
        ] {
            let err = Shard::from_sdk("ListShards", &sdk_shard(start, end, None)).expect_err("bad");
            assert!(
                matches!(err, Error::MalformedResponse { .. }),
                "{start}..{end}: {err}"
            );
        }
    }
}
