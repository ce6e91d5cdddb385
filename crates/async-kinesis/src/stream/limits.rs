//! Kinesis Data Streams service limits, in one place.
//!
//! Values are from the current AWS documentation (Kinesis Data Streams quotas and the API
//! reference). Everything else in the crate refers to these constants; where a stream can differ
//! (its maximum record size), the value here is the default and the stream's own is discovered.

use std::time::Duration;

/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// Default maximum size of one record: data plus partition key bytes.
pub const DEFAULT_MAX_RECORD_BYTES: usize = MIB;

/// The largest maximum record size a stream can be configured with (`MaxRecordSizeInKiB`).
pub const MAX_RECORD_BYTES_CEILING: usize = 10 * MIB;

/// Maximum number of records in one PutRecords request.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;

/// Maximum size of one PutRecords request: data plus partition keys of all its records.
pub const PUT_RECORDS_MAX_BYTES: usize = 10 * MIB;

/// Minimum length of a partition key, in Unicode characters.
pub const PARTITION_KEY_MIN_CHARS: usize = 1;

/// Maximum length of a partition key, in Unicode characters.
pub const PARTITION_KEY_MAX_CHARS: usize = 256;

/// Largest explicit hash key and largest hash key of any shard: 2^128 − 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

/// Write throughput of one shard: records per second.
pub const SHARD_WRITE_RECORDS_PER_SEC: u32 = 1_000;

/// Write throughput of one shard: bytes (data + partition key) per second.
pub const SHARD_WRITE_BYTES_PER_SEC: u32 = MIB as u32;

/// Shared-throughput reads of one shard: GetRecords calls per second.
pub const SHARD_READ_CALLS_PER_SEC: u32 = 5;

/// Shared-throughput reads of one shard: bytes per second.
pub const SHARD_READ_BYTES_PER_SEC: u32 = 2 * MIB as u32;

/// Maximum records returned by one GetRecords call (and the largest `Limit`).
pub const GET_RECORDS_MAX_RECORDS: usize = 10_000;

/// Maximum bytes returned by one GetRecords call.
pub const GET_RECORDS_MAX_BYTES: usize = 10 * MIB;

/// A shard iterator stops being valid this long after it was issued.
pub const SHARD_ITERATOR_LIFETIME: Duration = Duration::from_secs(300);

/// An enhanced fan-out subscription (SubscribeToShard) ends after at most this long.
pub const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(300);

/// Enhanced fan-out read throughput per consumer per shard, bytes per second.
pub const FANOUT_BYTES_PER_SEC: u32 = 2 * MIB as u32;

/// SubscribeToShard calls per second, per consumer and shard.
pub const SUBSCRIBE_CALLS_PER_SEC: u32 = 1;

/// Largest page size of ListShards (`MaxResults`).
pub const LIST_SHARDS_MAX_RESULTS: i32 = 10_000;

/// Page size this crate asks ListShards for unless told otherwise.
pub const LIST_SHARDS_DEFAULT_PAGE: i32 = 1_000;

/// Largest page size of DescribeStream (`Limit`).
pub const DESCRIBE_STREAM_MAX_SHARDS: i32 = 100;

/// Maximum length of a stream name.
pub const STREAM_NAME_MAX_LEN: usize = 128;

/// A stream's retention period unless it was changed.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

// Relations the rest of the crate relies on, checked at compile time.
const _: () = {
    // A PutRecords request can always carry one record of the largest size.
    assert!(PUT_RECORDS_MAX_BYTES >= MAX_RECORD_BYTES_CEILING);
    assert!(DEFAULT_MAX_RECORD_BYTES <= MAX_RECORD_BYTES_CEILING);
    assert!(LIST_SHARDS_DEFAULT_PAGE <= LIST_SHARDS_MAX_RESULTS);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_request_sizes_match_the_documentation() {
        assert_eq!(DEFAULT_MAX_RECORD_BYTES, 1_048_576);
        assert_eq!(MAX_RECORD_BYTES_CEILING, 10_485_760);
        assert_eq!(PUT_RECORDS_MAX_RECORDS, 500);
        assert_eq!(PUT_RECORDS_MAX_BYTES, 10_485_760);
    }

    #[test]
    fn shard_throughput_matches_the_documentation() {
        assert_eq!(SHARD_WRITE_RECORDS_PER_SEC, 1_000);
        assert_eq!(SHARD_WRITE_BYTES_PER_SEC, 1_048_576);
        assert_eq!(SHARD_READ_CALLS_PER_SEC, 5);
        assert_eq!(SHARD_READ_BYTES_PER_SEC, 2_097_152);
        assert_eq!(FANOUT_BYTES_PER_SEC, 2_097_152);
        assert_eq!(SUBSCRIBE_CALLS_PER_SEC, 1);
    }

    #[test]
    fn reads_and_keys_match_the_documentation() {
        assert_eq!(GET_RECORDS_MAX_RECORDS, 10_000);
        assert_eq!(GET_RECORDS_MAX_BYTES, 10_485_760);
        assert_eq!(PARTITION_KEY_MIN_CHARS, 1);
        assert_eq!(PARTITION_KEY_MAX_CHARS, 256);
        assert_eq!(MAX_HASH_KEY, (1u128 << 127) - 1 + (1u128 << 127));
        assert_eq!(SHARD_ITERATOR_LIFETIME, Duration::from_secs(300));
        assert_eq!(SUBSCRIPTION_LIFETIME, Duration::from_secs(300));
    }

    #[test]
    fn pagination_limits_match_the_documentation() {
        assert_eq!(LIST_SHARDS_MAX_RESULTS, 10_000);
        assert_eq!(DESCRIBE_STREAM_MAX_SHARDS, 100);
        assert_eq!(STREAM_NAME_MAX_LEN, 128);
    }
}
