//! The records that cross the processor boundary, size limits and key validation.

use super::error::RejectReason;
use crate::invalid_config::InvalidConfig;
use crate::partition_key::{PartitionKeyError, check_partition_key};
use bytes::Bytes;
use std::sync::Arc;

/// Default maximum size of one Kinesis record, data plus partition key: 1 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = crate::stream::limits::DEFAULT_MAX_RECORD_BYTES;
/// Largest maximum record size a stream can be raised to: 10 MiB.
pub const MAX_RECORD_SIZE_LIMIT: usize = crate::stream::limits::MAX_RECORD_BYTES_CEILING;
/// Most characters allowed in a partition key, counted in UTF-16 code units as the service
/// counts them (a character outside the Basic Multilingual Plane counts twice).
pub const MAX_PARTITION_KEY_CHARS: usize = crate::stream::limits::PARTITION_KEY_MAX_CHARS;

/// Checks a maximum record size against what Kinesis allows.
pub(crate) fn check_max_record_size(size: usize) -> Result<usize, InvalidConfig> {
    if size == 0 || size > MAX_RECORD_SIZE_LIMIT {
        return Err(InvalidConfig::new(
            "with_max_record_size",
            format!("{size} is outside 1..={MAX_RECORD_SIZE_LIMIT}"),
        ));
    }
    Ok(size)
}

/// Checks a partition key (1–256 UTF-16 code units, as the service counts them; see
/// [`check_partition_key`]) and an explicit hash key (0..=2^128−1, written as Kinesis writes
/// it).
pub(crate) fn check_keys(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
) -> Result<(), RejectReason> {
    match check_partition_key(partition_key) {
        Ok(()) => {}
        Err(PartitionKeyError::Empty) => return Err(RejectReason::EmptyPartitionKey),
        Err(PartitionKeyError::TooLong { utf16_units }) => {
            return Err(RejectReason::PartitionKeyTooLong { chars: utf16_units });
        }
    }
    if let Some(ehk) = explicit_hash_key
        && crate::stream::shard_map::parse_hash_key(ehk).is_err()
    {
        return Err(RejectReason::InvalidExplicitHashKey(ehk.to_owned()));
    }
    Ok(())
}

/// A Kinesis record produced by an aggregator, ready for PutRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutgoingRecord<Tag> {
    /// The record's data blob.
    pub data: Bytes,
    /// The record's partition key.
    pub partition_key: String,
    /// The record's explicit hash key, if any.
    pub explicit_hash_key: Option<String>,
    /// The tags of the user items inside the record, in order.
    pub tags: Vec<Tag>,
}

impl<Tag> OutgoingRecord<Tag> {
    /// Bytes the record counts against the Kinesis limits: data plus partition key.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// One item read from a Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded<T> {
    /// Position of the item inside its Kinesis record. For KPL aggregates this is the KCL
    /// sub-sequence number; a record holding a single item yields 0.
    pub sub_sequence: u64,
    /// The item's own partition key (KPL) or the record's partition key.
    pub partition_key: Arc<str>,
    /// The item's explicit hash key, when the format carries one.
    pub explicit_hash_key: Option<Arc<str>>,
    /// The decoded item.
    pub item: T,
}

/// The undecoded bytes of one item, as split out of a record by an aggregator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// Position of the item inside its Kinesis record.
    pub sub_sequence: u64,
    /// The item's partition key.
    pub partition_key: Arc<str>,
    /// The item's explicit hash key, if any.
    pub explicit_hash_key: Option<Arc<str>>,
    /// The item's serialized bytes (a slice of the record's data, not a copy).
    pub data: Bytes,
}

impl Frame {
    /// A frame for an item at `sub_sequence` with the record's key.
    pub fn new(sub_sequence: u64, partition_key: Arc<str>, data: Bytes) -> Self {
        Self {
            sub_sequence,
            partition_key,
            explicit_hash_key: None,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kinesis_rules() {
        assert_eq!(check_keys("", None), Err(RejectReason::EmptyPartitionKey));
        assert_eq!(check_keys("k", None), Ok(()));
        // 256 multi-byte characters are allowed, 257 are not.
        let ok = "é".repeat(256);
        assert_eq!(check_keys(&ok, None), Ok(()));
        let long = "é".repeat(257);
        assert_eq!(
            check_keys(&long, None),
            Err(RejectReason::PartitionKeyTooLong { chars: 257 })
        );
        // The service counts UTF-16 code units: 129 emoji are 258 of them.
        let emoji = "\u{1F600}".repeat(129);
        assert_eq!(
            check_keys(&emoji, None),
            Err(RejectReason::PartitionKeyTooLong { chars: 258 })
        );
        assert_eq!(check_keys(&"\u{1F600}".repeat(128), None), Ok(()));
        let max = u128::MAX.to_string();
        assert_eq!(check_keys("k", Some(&max)), Ok(()));
        assert_eq!(check_keys("k", Some("0")), Ok(()));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            "x",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(
                check_keys("k", Some(bad)),
                Err(RejectReason::InvalidExplicitHashKey(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn max_record_size_range() {
        assert!(check_max_record_size(0).is_err());
        assert!(check_max_record_size(MAX_RECORD_SIZE_LIMIT + 1).is_err());
        assert_eq!(check_max_record_size(1), Ok(1));
        assert_eq!(
            check_max_record_size(MAX_RECORD_SIZE_LIMIT),
            Ok(MAX_RECORD_SIZE_LIMIT)
        );
    }
}
