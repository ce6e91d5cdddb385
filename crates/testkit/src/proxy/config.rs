//! Proxy settings: the per-shard limits and how the proxy keeps its view of the streams fresh.

use std::time::Duration;

/// Bytes in a mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// Per-shard limits the proxy enforces, modelled on Kinesis Data Streams.
///
/// Each limit is a token bucket per shard that refills at the given rate and holds at most
/// `rate × burst` tokens (so a shard idle for a second can take one second's worth at once, and a
/// saturating client gets exactly the rate over time). `None` switches a limit off.
///
/// Write bytes count a record's data plus its partition key's UTF-8 bytes, as AWS does. Read bytes
/// count the data plus partition key of the records a GetRecords call returned; a call is allowed while
/// the shard's read-byte bucket is not in debt, and its result is charged afterwards, so one large read
/// blocks the shard's next reads until the debt is repaid (as AWS does after a 10 MiB read).
///
/// A record larger than a bucket's capacity is admitted once the bucket is full (it leaves the bucket in
/// debt), so scaled-down limits never reject a record forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Records written per second per shard (AWS: 1,000).
    pub write_records_per_sec: Option<f64>,
    /// Bytes written per second per shard, data + partition key (AWS: 1 MiB).
    pub write_bytes_per_sec: Option<f64>,
    /// GetRecords calls per second per shard (AWS: 5).
    pub read_calls_per_sec: Option<f64>,
    /// Bytes read per second per shard (AWS: 2 MiB).
    pub read_bytes_per_sec: Option<f64>,
    /// How much unused allowance a shard may bank: bucket capacity = rate × burst (default 1 s).
    pub burst: Duration,
}

impl Default for Limits {
    /// The AWS limits: writes 1,000 records/s and 1 MiB/s, reads 5 calls/s and 2 MiB/s, 1 s of burst.
    fn default() -> Self {
        Self {
            write_records_per_sec: Some(1_000.0),
            write_bytes_per_sec: Some(MIB as f64),
            read_calls_per_sec: Some(5.0),
            read_bytes_per_sec: Some(2.0 * MIB as f64),
            burst: Duration::from_secs(1),
        }
    }
}

impl Limits {
    /// No limit at all: the proxy only routes, counts and injects faults.
    pub fn unlimited() -> Self {
        Self {
            write_records_per_sec: None,
            write_bytes_per_sec: None,
            read_calls_per_sec: None,
            read_bytes_per_sec: None,
            ..Self::default()
        }
    }

    /// Multiplies every enabled rate by `factor` (e.g. `0.1` for a shard ten times slower than AWS).
    pub fn scaled(self, factor: f64) -> Self {
        let scale = |rate: Option<f64>| rate.map(|r| r * factor);
        Self {
            write_records_per_sec: scale(self.write_records_per_sec),
            write_bytes_per_sec: scale(self.write_bytes_per_sec),
            read_calls_per_sec: scale(self.read_calls_per_sec),
            read_bytes_per_sec: scale(self.read_bytes_per_sec),
            burst: self.burst,
        }
    }
}

/// Everything the proxy needs besides its upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Limits per shard.
    pub limits: Limits,
    /// How long a stream's shard map is trusted before it is read again with ListShards (it is also
    /// dropped whenever a CreateStream, DeleteStream or resharding call passes through).
    pub shard_map_max_age: Duration,
    /// When set, GetRecords with an iterator older than this answers ExpiredIteratorException
    /// (AWS: 5 minutes; the emulators never expire iterators on their own).
    pub iterator_max_age: Option<Duration>,
    /// The account id in AWS-like error messages.
    pub account_id: String,
    /// When set, DescribeStreamSummary answers report this `RecordDistributionStrategy` (e.g.
    /// `"AUTO"`), as for a stream switched to service-managed distribution; the emulators do not
    /// know the field.
    pub record_distribution: Option<String>,
}

impl Default for ProxyConfig {
    /// AWS limits, shard maps re-read every second, no iterator expiry, account `000000000000`.
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            shard_map_max_age: Duration::from_secs(1),
            iterator_max_age: None,
            account_id: "000000000000".to_owned(),
            record_distribution: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_aws_limits() {
        let limits = Limits::default();
        assert_eq!(limits.write_records_per_sec, Some(1_000.0));
        assert_eq!(limits.write_bytes_per_sec, Some(1_048_576.0));
        assert_eq!(limits.read_calls_per_sec, Some(5.0));
        assert_eq!(limits.read_bytes_per_sec, Some(2_097_152.0));
        assert_eq!(limits.burst, Duration::from_secs(1));
        let config = ProxyConfig::default();
        assert_eq!(config.limits, limits);
        assert_eq!(config.shard_map_max_age, Duration::from_secs(1));
        assert_eq!(config.iterator_max_age, None);
        assert_eq!(config.account_id, "000000000000");
        assert_eq!(config.record_distribution, None);
    }

    #[test]
    fn scaling_keeps_disabled_limits_disabled() {
        let limits = Limits {
            read_calls_per_sec: None,
            ..Limits::default()
        }
        .scaled(0.5);
        assert_eq!(limits.write_records_per_sec, Some(500.0));
        assert_eq!(limits.write_bytes_per_sec, Some(524_288.0));
        assert_eq!(limits.read_calls_per_sec, None);
        assert_eq!(limits.read_bytes_per_sec, Some(1_048_576.0));
        assert_eq!(Limits::unlimited().scaled(2.0), Limits::unlimited());
    }
}
