//! The consumer's options: defaults in one place, validated once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checkpoint::WorkerId;
use crate::processor::BoxError;
use crate::stream::limits::{GET_RECORDS_MAX_RECORDS, SHARD_READ_CALLS_PER_SEC};

use super::error::PoisonRecord;
use super::fanout::FanOutConsumer;
use crate::invalid_config::InvalidConfig;
use crate::retry::RetryPolicy;
use crate::stream::setup::StreamSetup;

/// Where to start reading a shard that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IteratorType {
    /// The oldest record still retained (`TRIM_HORIZON`).
    TrimHorizon,
    /// Only records written after the consumer started (`LATEST`). Shards created later by
    /// resharding are read from their start, so nothing written after the start is missed.
    Latest,
    /// Records that arrived at or after this time (`AT_TIMESTAMP`).
    ///
    /// The time is part of the value, so an AT_TIMESTAMP start without one cannot be written:
    ///
    /// ```compile_fail
    /// let start: async_kinesis::consumer::IteratorType =
    ///     async_kinesis::consumer::IteratorType::AtTimestamp;
    /// ```
    AtTimestamp(SystemTime),
}

/// When a record counts as processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckPolicy {
    /// Asking the stream for the next item acknowledges every item handed out before (like the
    /// Python library). Process an item completely before polling again.
    OnNextPoll,
    /// Only [`Record::ack`](super::Record::ack) acknowledges; for processing items concurrently.
    /// A shard's reading pauses while `max_unacked_records` of its records are unacknowledged;
    /// [`Record::nack`](super::Record::nack) has its shard read again from the first record
    /// not acknowledged.
    Explicit,
}

/// A callback that receives undecodable records; `Ok` lets the consumer skip the record.
pub type DeadLetter = Arc<dyn Fn(&PoisonRecord) -> Result<(), BoxError> + Send + Sync>;

/// What to do after reporting an undecodable record as an error item.
#[derive(Clone)]
#[non_exhaustive]
pub enum PoisonPolicy {
    /// Stop reading the shard; its checkpoint stays before the record, and its children are not
    /// read either (they wait for the shard's end). The shard's lease is released after a
    /// backoff (a heartbeat, doubling with each stop, at most 5 minutes), so this or another
    /// worker meets the record again and reports it again: a fix deployed meanwhile (a new
    /// deserializer, a dead-letter sink back up) lets the shard go on without a restart.
    Stop,
    /// Go on; checkpoints move past the record.
    Skip,
    /// Hand the record to the callback first; if it fails, stop as with `Stop`.
    DeadLetter(DeadLetter),
}

impl fmt::Debug for PoisonPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stop => f.write_str("Stop"),
            Self::Skip => f.write_str("Skip"),
            Self::DeadLetter(_) => f.write_str("DeadLetter(..)"),
        }
    }
}

/// Every consumer option. Defaults live in [`Default`]; see the builder methods for meanings.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerConfig {
    pub(crate) max_queue_size: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) max_shard_consumers: Option<usize>,
    pub(crate) record_limit: usize,
    pub(crate) sleep_time_no_records: Duration,
    pub(crate) iterator_type: IteratorType,
    pub(crate) shard_fetch_rate: u32,
    pub(crate) retry: RetryPolicy,
    pub(crate) setup: StreamSetup,
    pub(crate) ack_policy: AckPolicy,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) checkpoint_every: u64,
    pub(crate) max_unacked_records: usize,
    pub(crate) unacked_warning_after: Duration,
    pub(crate) poison_policy: PoisonPolicy,
    pub(crate) worker_id: Option<WorkerId>,
    /// Only these shards are read (all when `None`).
    pub(crate) only_shards: Option<BTreeSet<String>>,
    /// Shards without a checkpoint that start at a given record instead of `iterator_type`.
    pub(crate) start_sequences: BTreeMap<String, Arc<str>>,
    /// Read over enhanced fan-out as this stream consumer (polling when `None`).
    pub(crate) fan_out: Option<FanOutConsumer>,
    pub(crate) deregister_on_shutdown: bool,
    pub(crate) fan_out_stall_timeout: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 10_000,
            max_queue_bytes: 64 * crate::stream::limits::MIB,
            max_shard_consumers: None,
            record_limit: GET_RECORDS_MAX_RECORDS,
            sleep_time_no_records: Duration::from_secs(2),
            iterator_type: IteratorType::TrimHorizon,
            shard_fetch_rate: 1,
            retry: RetryPolicy::default(),
            setup: StreamSetup::default(),
            ack_policy: AckPolicy::OnNextPoll,
            max_unacked_records: 10_000,
            unacked_warning_after: Duration::from_secs(60),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_every: 1_000,
            poison_policy: PoisonPolicy::Skip,
            worker_id: None,
            only_shards: None,
            start_sequences: BTreeMap::new(),
            fan_out: None,
            deregister_on_shutdown: false,
            fan_out_stall_timeout: Duration::from_secs(60),
        }
    }
}

impl ConsumerConfig {
    /// Checks every option; the first problem found is returned.
    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        let fail = |option, reason: String| Err(InvalidConfig::new(option, reason));
        if self.max_queue_size == 0 {
            return fail("max_queue_size", "must be at least 1".into());
        }
        if self.max_queue_bytes == 0 {
            return fail("max_queue_bytes", "must be at least 1".into());
        }
        if self.max_shard_consumers == Some(0) {
            return fail("max_shard_consumers", "must be at least 1".into());
        }
        if !(1..=GET_RECORDS_MAX_RECORDS).contains(&self.record_limit) {
            return fail(
                "record_limit",
                format!(
                    "{} is outside 1..={GET_RECORDS_MAX_RECORDS} (the GetRecords limit)",
                    self.record_limit
                ),
            );
        }
        if !(1..=SHARD_READ_CALLS_PER_SEC).contains(&self.shard_fetch_rate) {
            return fail(
                "shard_fetch_rate",
                format!(
                    "{} GetRecords calls/s is outside 1..={SHARD_READ_CALLS_PER_SEC} (the per-shard limit)",
                    self.shard_fetch_rate
                ),
            );
        }
        self.retry.validate()?;
        self.setup.validate()?;
        for (option, value) in [("checkpoint_interval", self.checkpoint_interval)] {
            if value.is_zero() {
                return fail(option, "must be above zero".into());
            }
        }
        if self.checkpoint_every == 0 {
            return fail("checkpoint_every", "must be at least 1".into());
        }
        if self.max_unacked_records == 0 {
            return fail("max_unacked_records", "must be at least 1".into());
        }
        if self.unacked_warning_after.is_zero() {
            return fail("unacked_warning_after", "must be above zero".into());
        }
        if self.only_shards.as_ref().is_some_and(BTreeSet::is_empty) {
            return fail("only_shards", "names no shard".into());
        }
        if let Some(problem) = self.fan_out.as_ref().and_then(FanOutConsumer::problem) {
            return fail("enhanced_fan_out", problem);
        }
        if self.fan_out_stall_timeout < Duration::from_secs(1) {
            return fail(
                "fan_out_stall_timeout",
                "must be at least 1 s (the service sends an event every few seconds)".into(),
            );
        }
        if self.deregister_on_shutdown && self.fan_out.is_none() {
            return fail(
                "deregister_on_shutdown",
                "only applies with enhanced_fan_out".into(),
            );
        }
        Ok(())
    }

    /// Pause between GetRecords calls of one shard.
    pub(crate) fn fetch_interval(&self) -> Duration {
        Duration::from_secs(1) / self.shard_fetch_rate.max(1)
    }

    /// The delay before retry `attempt` (1-based), its upper half random so retries of many
    /// shards spread out.
    pub(crate) fn jittered_backoff(&self, attempt: u32) -> Duration {
        self.retry.jittered_delay(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CreateStream;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = ConsumerConfig::default();
        assert_eq!(c.max_queue_size, 10_000);
        assert_eq!(c.max_queue_bytes, 64 * 1024 * 1024);
        assert_eq!(c.max_shard_consumers, None);
        assert_eq!(c.record_limit, 10_000);
        assert_eq!(c.sleep_time_no_records, Duration::from_secs(2));
        assert_eq!(c.iterator_type, IteratorType::TrimHorizon);
        assert_eq!(c.shard_fetch_rate, 1);
        assert_eq!(c.retry, RetryPolicy::default());
        assert_eq!(c.retry.retry_limit, None, "reads are retried forever");
        assert_eq!(c.setup, StreamSetup::default());
        assert_eq!(c.ack_policy, AckPolicy::OnNextPoll);
        assert_eq!(c.max_unacked_records, 10_000);
        assert_eq!(c.unacked_warning_after, Duration::from_secs(60));
        assert_eq!(c.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.checkpoint_every, 1_000);
        assert!(matches!(c.poison_policy, PoisonPolicy::Skip));
        assert_eq!(c.worker_id, None);
        assert_eq!(c.only_shards, None);
        assert!(c.start_sequences.is_empty());
        assert_eq!(c.fan_out, None);
        assert!(!c.deregister_on_shutdown);
        assert_eq!(c.fan_out_stall_timeout, Duration::from_secs(60));
        c.validate().expect("the defaults are valid");
    }

    fn rejected(change: impl FnOnce(&mut ConsumerConfig)) -> &'static str {
        let mut c = ConsumerConfig::default();
        change(&mut c);
        match c.validate() {
            Err(InvalidConfig { option, .. }) => option,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn bad_options_are_typed_errors_naming_the_option() {
        assert_eq!(rejected(|c| c.shard_fetch_rate = 6), "shard_fetch_rate");
        assert_eq!(rejected(|c| c.shard_fetch_rate = 0), "shard_fetch_rate");
        assert_eq!(rejected(|c| c.record_limit = 10_001), "record_limit");
        assert_eq!(rejected(|c| c.record_limit = 0), "record_limit");
        assert_eq!(rejected(|c| c.max_queue_size = 0), "max_queue_size");
        assert_eq!(
            rejected(|c| c.max_unacked_records = 0),
            "max_unacked_records"
        );
        assert_eq!(
            rejected(|c| c.unacked_warning_after = Duration::ZERO),
            "unacked_warning_after"
        );
        assert_eq!(rejected(|c| c.max_queue_bytes = 0), "max_queue_bytes");
        assert_eq!(
            rejected(|c| c.max_shard_consumers = Some(0)),
            "max_shard_consumers"
        );
        assert_eq!(
            rejected(|c| c.retry.expo_backoff = Duration::from_secs(500)),
            "expo_backoff_limit"
        );
        assert_eq!(
            rejected(|c| c.setup.create_stream = Some(CreateStream::Provisioned { shards: 0 })),
            "create_stream"
        );
        assert_eq!(
            rejected(|c| c.checkpoint_interval = Duration::ZERO),
            "checkpoint_interval"
        );
        assert_eq!(rejected(|c| c.checkpoint_every = 0), "checkpoint_every");
        assert_eq!(
            rejected(|c| c.only_shards = Some(BTreeSet::new())),
            "only_shards"
        );
        assert_eq!(
            rejected(|c| c.fan_out = Some(FanOutConsumer::Name("a b".into()))),
            "enhanced_fan_out"
        );
        assert_eq!(
            rejected(|c| c.fan_out = Some(FanOutConsumer::Arn("app".into()))),
            "enhanced_fan_out"
        );
        assert_eq!(
            rejected(|c| c.deregister_on_shutdown = true),
            "deregister_on_shutdown"
        );
        assert_eq!(
            rejected(|c| {
                c.fan_out = Some(FanOutConsumer::Name("app".into()));
                c.fan_out_stall_timeout = Duration::from_millis(10);
            }),
            "fan_out_stall_timeout"
        );
    }

    #[test]
    fn pacing_and_backoff() {
        let mut c = ConsumerConfig {
            shard_fetch_rate: 5,
            ..ConsumerConfig::default()
        };
        assert_eq!(c.fetch_interval(), Duration::from_millis(200));
        c.retry = RetryPolicy::default().expo_backoff_limit(Duration::from_secs(1));
        for (attempt, full) in [(1, 100), (3, 400), (9, 1_000)] {
            let full = Duration::from_millis(full);
            let jittered = c.jittered_backoff(attempt);
            assert!(jittered >= full / 2 && jittered <= full, "{jittered:?}");
        }
    }
}
