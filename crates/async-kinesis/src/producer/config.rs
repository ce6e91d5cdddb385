//! Producer options: names and defaults follow the Python library where they make sense.

use crate::ids::ShardId;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::RecordDistribution;
use crate::invalid_config::InvalidConfig;
use crate::retry::RetryPolicy;
use crate::stream::limits::{
    MIB, PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS, SHARD_WRITE_BYTES_PER_SEC,
    SHARD_WRITE_RECORDS_PER_SEC,
};
use crate::stream::setup::StreamSetup;

/// What one PutRecords call did, for the after-flush hook.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushReport {
    /// The shard the call was for (as routed by the producer).
    pub shard_id: ShardId,
    /// Records in the call.
    pub records: usize,
    /// Records Kinesis accepted.
    pub accepted: usize,
    /// Records that will be retried.
    pub retried: usize,
    /// Records that failed for good (their receipts carry the error).
    pub failed: usize,
    /// How long the call took.
    pub duration: Duration,
}

/// A callback run by the producer's task after each PutRecords call. Keep it quick: the
/// producer waits for it.
pub type AfterFlush = Arc<dyn Fn(&FlushReport) + Send + Sync>;

/// Producer options. Defaults are in [`Default`]; [`ProducerConfig::validate`] checks them.
#[derive(Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// How long an item may wait for a fuller record and batch before it is sent (0.5 s).
    pub buffer_time: Duration,
    /// Most records per PutRecords call (500, the AWS maximum).
    pub batch_size: usize,
    /// Most bytes per PutRecords call, data plus partition keys (10 MiB, the AWS maximum).
    pub batch_bytes: usize,
    /// Items accepted but not yet resolved; `put` waits beyond this (10,000).
    pub max_queue_size: usize,
    /// Bytes of items accepted but not yet resolved; `put` waits beyond this (64 MiB).
    pub max_queue_bytes: usize,
    /// Records per second per shard (1,000, the AWS limit).
    pub put_rate_limit_per_shard: u32,
    /// KiB per second per shard, data plus partition keys (1,024, the AWS limit).
    pub put_bandwidth_limit_per_shard: u32,
    /// How failed calls are retried: 100 ms doubling to 120 s, 10 attempts per record (and
    /// per call failing as a whole) before its items fail.
    pub retry: RetryPolicy,
    /// What the producer does with its stream at start and how it lists shards (see
    /// [`StreamSetup`]).
    pub setup: StreamSetup,
    /// How the stream places records, when the stream check is skipped (by partition key
    /// when `None`). Say [`RecordDistribution::Auto`] for an AUTO stream written with a KPL
    /// processor and `skip_describe_stream`: the producer cannot see it then, and aggregated KPL
    /// items on such a stream are dropped by KPL readers. Ignored when the stream is described
    /// (the service's answer is used).
    pub record_distribution: Option<RecordDistribution>,
    /// PutRecords calls in flight at once, across shards (64); one per shard at most.
    pub max_in_flight_requests: usize,
    /// Called after each PutRecords call.
    pub after_flush: Option<AfterFlush>,
    /// Largest aggregate an aggregating processor builds, data plus partition key (64 KiB;
    /// see [`DEFAULT_AGGREGATE_BYTES`]). Capped at the processor's maximum record size; set it
    /// to that maximum (1 MiB by default) for aggregates as large as the Python library writes.
    pub aggregate_bytes: usize,
    /// How long an item may take from `put` to being stored (none: only `retry_limit` ends
    /// retries). An item not stored by then comes back in its receipt with the last error; one
    /// in a call in flight then waits for that call's answer (see
    /// [`ProducerBuilder::delivery_timeout`](super::ProducerBuilder::delivery_timeout)).
    /// Like rdkafka's `message.timeout.ms`; it must exceed `buffer_time`.
    pub delivery_timeout: Option<Duration>,
}

/// The default largest aggregate: 64 KiB, a sixteenth of a shard's byte budget per second.
///
/// An aggregate passes a shard's bytes/s bucket only whole. At 1 MiB (the record limit, and the
/// Python library's size) a record waits until the shard's entire second of budget is free,
/// and after a throttle has lowered the rate it waits a second more; at 64 KiB a shard is
/// never more than a sixteenth of a second of budget away from the next record, so calls keep
/// the bucket busy. It is still large enough that a shard's 1,000 records/s is not the limit
/// (16 records carry a full second of bytes) and that the per-record overhead of KPL and the
/// other formats stays negligible. The KPL's own default is 50 KiB for the same reason.
pub const DEFAULT_AGGREGATE_BYTES: usize = 64 * 1024;

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            buffer_time: Duration::from_millis(500),
            batch_size: PUT_RECORDS_MAX_RECORDS,
            batch_bytes: PUT_RECORDS_MAX_BYTES,
            max_queue_size: 10_000,
            max_queue_bytes: 64 * MIB,
            put_rate_limit_per_shard: SHARD_WRITE_RECORDS_PER_SEC,
            put_bandwidth_limit_per_shard: SHARD_WRITE_BYTES_PER_SEC / 1024,
            aggregate_bytes: DEFAULT_AGGREGATE_BYTES,
            delivery_timeout: None,
            retry: RetryPolicy::default().retry_limit(Some(10)),
            setup: StreamSetup::default(),
            record_distribution: None,
            max_in_flight_requests: 64,
            after_flush: None,
        }
    }
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("buffer_time", &self.buffer_time)
            .field("batch_size", &self.batch_size)
            .field("batch_bytes", &self.batch_bytes)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("put_rate_limit_per_shard", &self.put_rate_limit_per_shard)
            .field(
                "put_bandwidth_limit_per_shard",
                &self.put_bandwidth_limit_per_shard,
            )
            .field("retry", &self.retry)
            .field("setup", &self.setup)
            .field("record_distribution", &self.record_distribution)
            .field("max_in_flight_requests", &self.max_in_flight_requests)
            .field("after_flush", &self.after_flush.is_some())
            .field("aggregate_bytes", &self.aggregate_bytes)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish()
    }
}

impl ProducerConfig {
    /// Checks every option against the AWS limits and against each other.
    ///
    /// # Errors
    /// [`InvalidConfig`] naming the option (as its builder method).
    pub fn validate(&self, max_record_size: usize) -> Result<(), InvalidConfig> {
        let invalid = |option, reason: String| Err(InvalidConfig::new(option, reason));
        if !(1..=PUT_RECORDS_MAX_RECORDS).contains(&self.batch_size) {
            return invalid(
                "batch_size",
                format!(
                    "{} is outside 1..={PUT_RECORDS_MAX_RECORDS}",
                    self.batch_size
                ),
            );
        }
        if self.batch_bytes < max_record_size || self.batch_bytes > PUT_RECORDS_MAX_BYTES {
            return invalid(
                "batch_bytes",
                format!(
                    "{} is not between the maximum record size ({max_record_size}) and \
                     {PUT_RECORDS_MAX_BYTES}",
                    self.batch_bytes
                ),
            );
        }
        if self.max_queue_size == 0 {
            return invalid("max_queue_size", "must be at least 1".into());
        }
        if self.max_queue_bytes < max_record_size {
            return invalid(
                "max_queue_bytes",
                format!(
                    "{} must hold at least one record of the maximum size ({max_record_size})",
                    self.max_queue_bytes
                ),
            );
        }
        // Semaphore permits are counted in u32 per acquisition and usize in total.
        if self.max_queue_bytes > (u32::MAX as usize) {
            return invalid("max_queue_bytes", format!("must be at most {}", u32::MAX));
        }
        if self.put_rate_limit_per_shard == 0 {
            return invalid("put_rate_limit_per_shard", "must be at least 1".into());
        }
        // Records above 1 MiB (streams raised beyond it) pass the service's 1 MiB/s alone, as
        // the budget's oversized-record rule does; smaller ones must fit a second of budget.
        let one_record = max_record_size.min(MIB);
        if (self.bandwidth_bytes_per_shard() as usize) < one_record {
            return invalid(
                "put_bandwidth_limit_per_shard",
                format!(
                    "{} KiB/s must pass at least one record of the maximum size ({one_record} \
                     bytes) per second; lower the processor's maximum record size for a \
                     smaller bandwidth",
                    self.put_bandwidth_limit_per_shard
                ),
            );
        }
        if self.aggregate_bytes == 0 {
            return invalid("aggregate_bytes", "must be at least 1".into());
        }
        if let Some(timeout) = self.delivery_timeout
            && timeout <= self.buffer_time
        {
            return invalid(
                "delivery_timeout",
                format!(
                    "{timeout:?} must exceed buffer_time ({:?})",
                    self.buffer_time
                ),
            );
        }
        self.retry.validate()?;
        if self.retry.retry_limit.is_none() && self.delivery_timeout.is_none() {
            // Likely `retry(RetryPolicy::default())`, whose limit is the consumer's: a record
            // the service keeps refusing would hold `close` for good.
            return invalid(
                "retry_limit",
                "None retries a refused record forever: set a limit (the producer's default \
                 is 10) or a delivery_timeout"
                    .into(),
            );
        }
        self.setup.validate()?;
        if self.max_in_flight_requests == 0 {
            return invalid("max_in_flight_requests", "must be at least 1".into());
        }
        Ok(())
    }

    /// Bytes per second per shard.
    pub(crate) fn bandwidth_bytes_per_shard(&self) -> u32 {
        self.put_bandwidth_limit_per_shard.saturating_mul(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CreateStream;
    use crate::stream::limits::DEFAULT_MAX_RECORD_BYTES;

    #[test]
    fn documented_defaults() {
        let config = ProducerConfig::default();
        assert_eq!(config.buffer_time, Duration::from_millis(500));
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.batch_bytes, 10 * 1024 * 1024);
        assert_eq!(config.max_queue_size, 10_000);
        assert_eq!(config.max_queue_bytes, 64 * 1024 * 1024);
        assert_eq!(config.put_rate_limit_per_shard, 1_000);
        assert_eq!(config.put_bandwidth_limit_per_shard, 1_024);
        assert_eq!(config.bandwidth_bytes_per_shard(), 1_048_576);
        assert_eq!(config.retry.retry_limit, Some(10));
        assert_eq!(config.retry.expo_backoff, Duration::from_millis(100));
        assert_eq!(config.retry.expo_backoff_limit, Duration::from_secs(120));
        assert_eq!(config.setup, StreamSetup::default());
        assert_eq!(config.record_distribution, None);
        assert_eq!(config.max_in_flight_requests, 64);
        assert!(config.after_flush.is_none());
        assert_eq!(config.aggregate_bytes, 64 * 1024);
        assert_eq!(config.delivery_timeout, None);
        config
            .validate(DEFAULT_MAX_RECORD_BYTES)
            .expect("defaults are valid");
    }

    #[test]
    fn invalid_options_are_named() {
        type Change = fn(&mut ProducerConfig);
        let cases: [(Change, &str); 15] = [
            (|c| c.retry.retry_limit = None, "retry_limit"),
            (
                |c| c.put_bandwidth_limit_per_shard = 0,
                "put_bandwidth_limit_per_shard",
            ),
            (
                |c| c.put_bandwidth_limit_per_shard = 1_023,
                "put_bandwidth_limit_per_shard",
            ),
            (|c| c.aggregate_bytes = 0, "aggregate_bytes"),
            (
                |c| c.delivery_timeout = Some(Duration::from_millis(100)),
                "delivery_timeout",
            ),
            (|c| c.batch_size = 501, "batch_size"),
            (|c| c.batch_size = 0, "batch_size"),
            (|c| c.batch_bytes = 1_000, "batch_bytes"),
            (|c| c.max_queue_size = 0, "max_queue_size"),
            (|c| c.max_queue_bytes = 10, "max_queue_bytes"),
            (|c| c.retry.retry_limit = Some(0), "retry_limit"),
            (
                |c| c.retry.expo_backoff_limit = Duration::from_millis(1),
                "expo_backoff_limit",
            ),
            (
                |c| c.setup.create_stream = Some(CreateStream::Provisioned { shards: 0 }),
                "create_stream",
            ),
            (
                |c| c.setup.describe_timeout = Duration::ZERO,
                "describe_timeout",
            ),
            (
                |c| c.put_rate_limit_per_shard = 0,
                "put_rate_limit_per_shard",
            ),
        ];
        for (change, name) in cases {
            let mut config = ProducerConfig::default();
            change(&mut config);
            let err = config.validate(DEFAULT_MAX_RECORD_BYTES).expect_err(name);
            assert_eq!(err.option, name, "{err}");
        }
    }

    #[test]
    fn a_bandwidth_must_pass_one_record_of_the_maximum_size() {
        let small = ProducerConfig {
            put_bandwidth_limit_per_shard: 64,
            ..ProducerConfig::default()
        };
        assert!(small.validate(DEFAULT_MAX_RECORD_BYTES).is_err());
        small
            .validate(64 * 1024)
            .expect("64 KiB/s passes records of up to 64 KiB");
    }

    #[test]
    fn a_larger_stream_record_size_needs_room_in_batches() {
        let config = ProducerConfig::default();
        config
            .validate(10 * 1024 * 1024)
            .expect("10 MiB records fit a 10 MiB request");
        let small = ProducerConfig {
            max_queue_bytes: 2 * 1024 * 1024,
            ..config
        };
        assert!(small.validate(10 * 1024 * 1024).is_err());
    }
}
