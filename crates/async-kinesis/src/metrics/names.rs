//! Names of every metric this crate records, and of the labels they carry.
//!
//! The names of the Python library `async-kinesis` are kept as they are, so its dashboards carry
//! over; the others follow the same scheme (`<part>_<what>[_<unit>][_total]`). What each one
//! means, its type and its labels are in [`catalog`](mod@super::catalog) and in the metrics table of
//! the repository's `docs/metrics.md`.

// --- producer -----------------------------------------------------------------------------

/// Kinesis records accepted (an aggregated record counts once).
pub const PRODUCER_RECORDS_SENT: &str = "producer_records_sent_total";
/// User items delivered (inside aggregated records, each counts).
pub const PRODUCER_ITEMS_SENT: &str = "producer_items_sent_total";
/// Bytes (data + partition key) accepted by Kinesis.
pub const PRODUCER_BYTES_SENT: &str = "producer_bytes_sent_total";
/// Items the producer gave up on, by `error_type`.
pub const PRODUCER_ERRORS: &str = "producer_errors_total";
/// Records throttled by Kinesis.
pub const PRODUCER_THROTTLES: &str = "producer_throttles_total";
/// Records sent again after a failure.
pub const PRODUCER_RETRIES: &str = "producer_retries_total";
/// Records per PutRecords call.
pub const PRODUCER_BATCH_SIZE: &str = "producer_batch_size";
/// Duration of PutRecords calls.
pub const PRODUCER_FLUSH_DURATION: &str = "producer_flush_duration_seconds";
/// From a record's oldest item entering the producer until Kinesis accepted the record.
pub const PRODUCER_PUT_LATENCY: &str = "producer_put_latency_seconds";
/// Items waiting in the producer.
pub const PRODUCER_QUEUE_SIZE: &str = "producer_queue_size";
/// Bytes of the items waiting in the producer.
pub const PRODUCER_QUEUE_BYTES: &str = "producer_queue_bytes";

// --- consumer -----------------------------------------------------------------------------

/// Records received from Kinesis.
pub const CONSUMER_RECORDS_RECEIVED: &str = "consumer_records_received_total";
/// Bytes received from Kinesis.
pub const CONSUMER_BYTES_RECEIVED: &str = "consumer_bytes_received_total";
/// User records (after de-aggregation) passed to the application.
pub const CONSUMER_RECORDS_PROCESSED: &str = "consumer_records_processed_total";
/// Bytes of the Kinesis records whose items were passed to the application.
pub const CONSUMER_BYTES_PROCESSED: &str = "consumer_bytes_processed_total";
/// Errors, by `error_type`.
pub const CONSUMER_ERRORS: &str = "consumer_errors_total";
/// Checkpoints written.
pub const CONSUMER_CHECKPOINT_SUCCESS: &str = "consumer_checkpoint_success_total";
/// Checkpoints refused or failed.
pub const CONSUMER_CHECKPOINT_FAILURE: &str = "consumer_checkpoint_failure_total";
/// Duration of checkpoint writes.
pub const CONSUMER_CHECKPOINT_DURATION: &str = "consumer_checkpoint_duration_seconds";
/// MillisBehindLatest of the last GetRecords call.
pub const CONSUMER_ITERATOR_AGE: &str = "consumer_iterator_age_milliseconds";
/// Records waiting for the application.
pub const CONSUMER_QUEUE_SIZE: &str = "consumer_queue_size";
/// Bytes of the records waiting for the application.
pub const CONSUMER_QUEUE_BYTES: &str = "consumer_queue_bytes";
/// Records read but not yet acknowledged.
pub const CONSUMER_LAG_RECORDS: &str = "consumer_lag_records";
/// Age of the oldest record read and not yet acknowledged.
pub const CONSUMER_OLDEST_UNACKED_AGE: &str = "consumer_oldest_unacked_age_seconds";
/// Time the application took per record.
pub const CONSUMER_PROCESSING_TIME: &str = "consumer_processing_time_seconds";
/// Leases this worker holds.
pub const CONSUMER_LEASES_HELD: &str = "consumer_leases_held";
/// Leases this worker claimed.
pub const CONSUMER_LEASES_TAKEN: &str = "consumer_leases_taken_total";
/// Leases this worker handed off to others (above its fair share).
pub const CONSUMER_LEASES_HANDED_OFF: &str = "consumer_leases_handed_off_total";
/// Leases this worker lost (taken by another worker, or expired before renewal).
pub const CONSUMER_LEASES_LOST: &str = "consumer_leases_lost_total";

// --- stream -------------------------------------------------------------------------------

/// Open shards.
pub const STREAM_SHARDS_ACTIVE: &str = "stream_shards_active";
/// Closed shards still within retention.
pub const STREAM_SHARDS_CLOSED: &str = "stream_shards_closed";
/// Resharding events seen.
pub const STREAM_RESHARDING_EVENTS: &str = "stream_resharding_events_total";

// --- the CloudWatch exporter itself ---------------------------------------------------------

/// PutMetricData calls that failed.
pub const CLOUDWATCH_EXPORT_FAILURES: &str = "cloudwatch_export_failures_total";
/// Metric data given up by the CloudWatch exporter.
pub const CLOUDWATCH_EXPORT_DROPPED: &str = "cloudwatch_export_dropped_total";

/// Label names.
pub mod labels {
    /// The stream's name.
    pub const STREAM_NAME: &str = "stream_name";
    /// The shard's id.
    pub const SHARD_ID: &str = "shard_id";
    /// What went wrong (an error class such as `throttling`, or e.g. `poison`).
    pub const ERROR_TYPE: &str = "error_type";
}
