//! What every metric is: its type, labels, unit and meaning, and the histogram buckets the
//! Prometheus exporter uses. The exporters describe metrics from here; the metrics table of
//! `docs/metrics.md` is checked against it by a test, so the two cannot drift apart.

use super::names::{self, labels};

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// Only grows; exporters show the total (Prometheus) or the growth per period (CloudWatch).
    Counter,
    /// A value that goes up and down; exporters show the last value set.
    Gauge,
    /// A distribution of observed values.
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram` (as in the metrics table).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricUnit {
    /// A number of things (records, calls, shards, leases).
    Count,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Milliseconds,
}

impl MetricUnit {
    /// The unit as the `metrics` facade names it.
    pub fn to_metrics_unit(self) -> metrics::Unit {
        match self {
            Self::Count => metrics::Unit::Count,
            Self::Bytes => metrics::Unit::Bytes,
            Self::Seconds => metrics::Unit::Seconds,
            Self::Milliseconds => metrics::Unit::Milliseconds,
        }
    }
}

/// One metric: everything an exporter or a reader of the metrics table needs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MetricInfo {
    /// Its name (one of [`names`]).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The labels every series of it carries.
    pub labels: &'static [&'static str],
    /// The unit of its values.
    pub unit: MetricUnit,
    /// What it measures.
    pub meaning: &'static str,
    /// Histogram bucket bounds for Prometheus (histograms only).
    pub buckets: &'static [f64],
}

const STREAM: &[&str] = &[labels::STREAM_NAME];
const SHARD: &[&str] = &[labels::STREAM_NAME, labels::SHARD_ID];
const STREAM_ERROR: &[&str] = &[labels::STREAM_NAME, labels::ERROR_TYPE];
const SHARD_ERROR: &[&str] = &[labels::STREAM_NAME, labels::SHARD_ID, labels::ERROR_TYPE];
const NO_LABELS: &[&str] = &[];

/// Records per PutRecords call: 1 to the 500 a call may carry.
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
];
/// A PutRecords call: a few ms in-region, seconds when throttled or far away.
const CALL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Put latency adds the buffer time (default 0.5 s) and retries with backoff to a call.
const PUT_LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Application time per record: from microseconds (a counter bump) to seconds (a remote call).
const PROCESSING_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// A store write: sub-millisecond (memory, local Redis) to seconds (a struggling DynamoDB).
const CHECKPOINT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

const fn metric(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    unit: MetricUnit,
    meaning: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        unit,
        meaning,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    unit: MetricUnit,
    meaning: &'static str,
    buckets: &'static [f64],
) -> MetricInfo {
    MetricInfo {
        name,
        kind: MetricKind::Histogram,
        labels,
        unit,
        meaning,
        buckets,
    }
}

use MetricKind::{Counter, Gauge};
use MetricUnit::{Bytes, Count, Milliseconds, Seconds};

const CATALOG: &[MetricInfo] = &[
    metric(
        names::PRODUCER_RECORDS_SENT,
        Counter,
        SHARD,
        Count,
        "Kinesis records accepted by PutRecords; an aggregated record counts once (KPL: KinesisRecordsPut)",
    ),
    metric(
        names::PRODUCER_ITEMS_SENT,
        Counter,
        SHARD,
        Count,
        "User records (items) delivered; every item inside an aggregated record counts (KPL: UserRecordsPut)",
    ),
    metric(
        names::PRODUCER_BYTES_SENT,
        Counter,
        SHARD,
        Bytes,
        "Bytes (data + partition key) of the accepted Kinesis records (KPL: KinesisRecordsDataPut)",
    ),
    metric(
        names::PRODUCER_ERRORS,
        Counter,
        STREAM_ERROR,
        Count,
        "Items the producer gave up on; their receipts carry the error and the item",
    ),
    metric(
        names::PRODUCER_THROTTLES,
        Counter,
        SHARD,
        Count,
        "Records refused with ProvisionedThroughputExceeded (each is retried)",
    ),
    metric(
        names::PRODUCER_RETRIES,
        Counter,
        SHARD,
        Count,
        "Records sent again after a failed or partly failed PutRecords call",
    ),
    histogram(
        names::PRODUCER_BATCH_SIZE,
        SHARD,
        Count,
        "Records per PutRecords call",
        BATCH_SIZE_BUCKETS,
    ),
    histogram(
        names::PRODUCER_FLUSH_DURATION,
        SHARD,
        Seconds,
        "Duration of one PutRecords call (KPL: RequestTime)",
        CALL_BUCKETS,
    ),
    histogram(
        names::PRODUCER_PUT_LATENCY,
        SHARD,
        Seconds,
        "From a record's oldest item entering the producer until Kinesis accepted the record (KPL: BufferingTime + RequestTime)",
        PUT_LATENCY_BUCKETS,
    ),
    metric(
        names::PRODUCER_QUEUE_SIZE,
        Gauge,
        STREAM,
        Count,
        "Items accepted by the producer and not yet delivered or failed (KPL: UserRecordsPending)",
    ),
    metric(
        names::PRODUCER_QUEUE_BYTES,
        Gauge,
        STREAM,
        Bytes,
        "Bytes of the items counted by producer_queue_size",
    ),
    metric(
        names::CONSUMER_RECORDS_RECEIVED,
        Counter,
        SHARD,
        Count,
        "Kinesis records read by GetRecords",
    ),
    metric(
        names::CONSUMER_BYTES_RECEIVED,
        Counter,
        SHARD,
        Bytes,
        "Bytes (data + partition key) of the Kinesis records read",
    ),
    metric(
        names::CONSUMER_RECORDS_PROCESSED,
        Counter,
        SHARD,
        Count,
        "User records (after de-aggregation) decoded and passed on to the application (KCL: RecordsProcessed)",
    ),
    metric(
        names::CONSUMER_BYTES_PROCESSED,
        Counter,
        SHARD,
        Bytes,
        "Bytes (data + partition key) of the Kinesis records those user records came from (KCL: DataBytesProcessed)",
    ),
    metric(
        names::CONSUMER_ERRORS,
        Counter,
        SHARD_ERROR,
        Count,
        "Errors: error items of the stream and failures that were retried (shard_id is empty for stream-wide ones)",
    ),
    metric(
        names::CONSUMER_CHECKPOINT_SUCCESS,
        Counter,
        SHARD,
        Count,
        "Checkpoints written to the store",
    ),
    metric(
        names::CONSUMER_CHECKPOINT_FAILURE,
        Counter,
        SHARD,
        Count,
        "Checkpoint writes the store refused or failed",
    ),
    histogram(
        names::CONSUMER_CHECKPOINT_DURATION,
        SHARD,
        Seconds,
        "Duration of one checkpoint write, successful or not",
        CHECKPOINT_BUCKETS,
    ),
    metric(
        names::CONSUMER_ITERATOR_AGE,
        Gauge,
        SHARD,
        Milliseconds,
        "MillisBehindLatest of the shard's last GetRecords call: how far reading is behind the tip (KCL: MillisBehindLatest)",
    ),
    metric(
        names::CONSUMER_QUEUE_SIZE,
        Gauge,
        STREAM,
        Count,
        "Records read and waiting for the application",
    ),
    metric(
        names::CONSUMER_QUEUE_BYTES,
        Gauge,
        STREAM,
        Bytes,
        "Bytes of the records counted by consumer_queue_size",
    ),
    metric(
        names::CONSUMER_LAG_RECORDS,
        Gauge,
        SHARD,
        Count,
        "Records read from the shard and not yet acknowledged by the application (as shard_status() unacked)",
    ),
    metric(
        names::CONSUMER_OLDEST_UNACKED_AGE,
        Gauge,
        SHARD,
        Seconds,
        "How long ago the shard's oldest record not yet acknowledged was read (0: none); a record never acknowledged holds the shard's checkpoint and, at the shard's end, its children",
    ),
    histogram(
        names::CONSUMER_PROCESSING_TIME,
        STREAM,
        Seconds,
        "Time from handing a record to the application until it asked for the next one (each record of a run handed out back to back counts with the run's average)",
        PROCESSING_BUCKETS,
    ),
    metric(
        names::CONSUMER_LEASES_HELD,
        Gauge,
        STREAM,
        Count,
        "Shard leases this worker holds for reading",
    ),
    metric(
        names::CONSUMER_LEASES_TAKEN,
        Counter,
        STREAM,
        Count,
        "Leases this worker claimed: new shards, and leases other workers handed off or let expire (KCL: TakenLeases)",
    ),
    metric(
        names::CONSUMER_LEASES_HANDED_OFF,
        Counter,
        STREAM,
        Count,
        "Leases this worker released to others after a final checkpoint, being above its fair share",
    ),
    metric(
        names::CONSUMER_LEASES_LOST,
        Counter,
        STREAM,
        Count,
        "Leases this worker lost: taken by another worker, or not renewed before they expired (KCL: LostLeases)",
    ),
    metric(
        names::STREAM_SHARDS_ACTIVE,
        Gauge,
        STREAM,
        Count,
        "Open shards of the stream",
    ),
    metric(
        names::STREAM_SHARDS_CLOSED,
        Gauge,
        STREAM,
        Count,
        "Closed shards still within the retention period",
    ),
    metric(
        names::STREAM_RESHARDING_EVENTS,
        Counter,
        STREAM,
        Count,
        "Listings that found new child shards (a split or merge happened)",
    ),
    metric(
        names::CLOUDWATCH_EXPORT_FAILURES,
        Counter,
        NO_LABELS,
        Count,
        "PutMetricData calls of the CloudWatch exporter that failed",
    ),
    metric(
        names::CLOUDWATCH_EXPORT_DROPPED,
        Counter,
        NO_LABELS,
        Count,
        "Metric data the CloudWatch exporter gave up: refused by CloudWatch, or older than its retry window",
    ),
];

/// Every metric this crate records.
pub fn catalog() -> &'static [MetricInfo] {
    CATALOG
}

/// The metric named `name`, if this crate records one.
pub fn find(name: &str) -> Option<&'static MetricInfo> {
    CATALOG.iter().find(|m| m.name == name)
}

/// Describes every metric (unit and meaning) to the installed recorder, e.g. for Prometheus'
/// `# HELP` lines. The exporters of this crate call it when they are installed.
pub fn describe() {
    for metric in CATALOG {
        let unit = metric.unit.to_metrics_unit();
        match metric.kind {
            Counter => metrics::describe_counter!(metric.name, unit, metric.meaning),
            Gauge => metrics::describe_gauge!(metric.name, unit, metric.meaning),
            MetricKind::Histogram => {
                metrics::describe_histogram!(metric.name, unit, metric.meaning)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_follow_prometheus_conventions() {
        let mut seen = HashSet::new();
        for metric in catalog() {
            assert!(seen.insert(metric.name), "{} listed twice", metric.name);
            assert!(
                metric
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                metric.name
            );
            let counter_suffix = metric.name.ends_with("_total");
            assert_eq!(
                counter_suffix,
                metric.kind == MetricKind::Counter,
                "{}: counters and only counters end in _total",
                metric.name
            );
            assert!(
                !metric.meaning.contains('|'),
                "{}: a table cell",
                metric.name
            );
        }
    }

    #[test]
    fn histograms_and_only_histograms_have_increasing_buckets() {
        for metric in catalog() {
            if metric.kind == MetricKind::Histogram {
                assert!(!metric.buckets.is_empty(), "{}", metric.name);
                assert!(
                    metric.buckets.windows(2).all(|w| w[0] < w[1]),
                    "{}",
                    metric.name
                );
            } else {
                assert!(metric.buckets.is_empty(), "{}", metric.name);
            }
        }
    }

    #[test]
    fn find_knows_every_name_and_nothing_else() {
        assert_eq!(
            find(names::CONSUMER_ITERATOR_AGE).map(|m| m.unit),
            Some(MetricUnit::Milliseconds)
        );
        assert!(find("consumer_iterator_age").is_none());
    }
}
