//! Metric names and recording, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! This is the only module that knows metric names. The names are those of the Python library
//! `async-kinesis` (so dashboards carry over), plus lag and lease metrics. Every metric has the
//! label `stream_name`; per-shard metrics also `shard_id`. Without an installed recorder the calls
//! cost next to nothing; install one (e.g. `metrics-exporter-prometheus`) to export them.

use metrics::{Label, counter, gauge, histogram};

/// Names of every metric this crate records.
pub mod names {
    /// Records accepted by Kinesis (aggregated records count once).
    pub const PRODUCER_RECORDS_SENT: &str = "producer_records_sent_total";
    /// User items delivered (inside aggregated records, each counts).
    pub const PRODUCER_ITEMS_SENT: &str = "producer_items_sent_total";
    /// Bytes (data + partition key) accepted by Kinesis.
    pub const PRODUCER_BYTES_SENT: &str = "producer_bytes_sent_total";
    /// Errors, by `error_type`.
    pub const PRODUCER_ERRORS: &str = "producer_errors_total";
    /// Records throttled by Kinesis.
    pub const PRODUCER_THROTTLES: &str = "producer_throttles_total";
    /// Records retried after a failure.
    pub const PRODUCER_RETRIES: &str = "producer_retries_total";
    /// Records per PutRecords call.
    pub const PRODUCER_BATCH_SIZE: &str = "producer_batch_size";
    /// Items waiting in the producer.
    pub const PRODUCER_QUEUE_SIZE: &str = "producer_queue_size";
    /// Duration of PutRecords calls.
    pub const PRODUCER_FLUSH_DURATION: &str = "producer_flush_duration_seconds";
    /// Records received from Kinesis.
    pub const CONSUMER_RECORDS_RECEIVED: &str = "consumer_records_received_total";
    /// Bytes received from Kinesis.
    pub const CONSUMER_BYTES_RECEIVED: &str = "consumer_bytes_received_total";
    /// Errors, by `error_type`.
    pub const CONSUMER_ERRORS: &str = "consumer_errors_total";
    /// Checkpoints written.
    pub const CONSUMER_CHECKPOINT_SUCCESS: &str = "consumer_checkpoint_success_total";
    /// Checkpoints refused or failed.
    pub const CONSUMER_CHECKPOINT_FAILURE: &str = "consumer_checkpoint_failure_total";
    /// Age of the last record read (MillisBehindLatest).
    pub const CONSUMER_ITERATOR_AGE: &str = "consumer_iterator_age_milliseconds";
    /// Records waiting for the user.
    pub const CONSUMER_QUEUE_SIZE: &str = "consumer_queue_size";
    /// Records between the last checkpoint and the newest record read.
    pub const CONSUMER_LAG_RECORDS: &str = "consumer_lag_records";
    /// Time the user took per record.
    pub const CONSUMER_PROCESSING_TIME: &str = "consumer_processing_time_seconds";
    /// Leases this worker holds.
    pub const CONSUMER_LEASES_HELD: &str = "consumer_leases_held";
    /// Leases taken over from other workers.
    pub const CONSUMER_LEASES_TAKEN: &str = "consumer_leases_taken_total";
    /// Leases lost to other workers (fenced).
    pub const CONSUMER_LEASES_LOST: &str = "consumer_leases_lost_total";
    /// Open shards.
    pub const STREAM_SHARDS_ACTIVE: &str = "stream_shards_active";
    /// Closed shards still within retention.
    pub const STREAM_SHARDS_CLOSED: &str = "stream_shards_closed";
    /// Resharding events seen.
    pub const STREAM_RESHARDING_EVENTS: &str = "stream_resharding_events_total";
}

/// Labels of one stream, built once and cloned cheaply into every metric.
#[derive(Debug, Clone)]
pub(crate) struct StreamLabels {
    stream: Label,
}

impl StreamLabels {
    pub(crate) fn new(stream_name: &str) -> Self {
        Self {
            stream: Label::new("stream_name", stream_name.to_owned()),
        }
    }

    fn stream(&self) -> Vec<Label> {
        vec![self.stream.clone()]
    }

    fn shard(&self, shard_id: &str) -> Vec<Label> {
        vec![
            self.stream.clone(),
            Label::new("shard_id", shard_id.to_owned()),
        ]
    }

    fn error(&self, error_type: &str) -> Vec<Label> {
        vec![
            self.stream.clone(),
            Label::new("error_type", error_type.to_owned()),
        ]
    }

    /// A PutRecords call to `shard_id` finished: what it carried and what came of it.
    pub(crate) fn put_records(&self, shard_id: &str, call: PutRecordsOutcome) {
        let labels = self.shard(shard_id);
        histogram!(names::PRODUCER_BATCH_SIZE, labels.clone()).record(call.records as f64);
        histogram!(names::PRODUCER_FLUSH_DURATION, labels.clone()).record(call.seconds);
        counter!(names::PRODUCER_RECORDS_SENT, labels.clone()).increment(call.accepted_records);
        counter!(names::PRODUCER_ITEMS_SENT, labels.clone()).increment(call.accepted_items);
        counter!(names::PRODUCER_BYTES_SENT, labels.clone()).increment(call.accepted_bytes);
        if call.throttled_records > 0 {
            counter!(names::PRODUCER_THROTTLES, labels.clone()).increment(call.throttled_records);
        }
        if call.retried_records > 0 {
            counter!(names::PRODUCER_RETRIES, labels).increment(call.retried_records);
        }
    }

    /// The producer gave up on `items` items (their receipts carry the error).
    pub(crate) fn producer_error(&self, error_type: &str, items: u64) {
        counter!(names::PRODUCER_ERRORS, self.error(error_type)).increment(items);
    }

    /// Items waiting in the producer.
    pub(crate) fn producer_queue(&self, items: usize) {
        gauge!(names::PRODUCER_QUEUE_SIZE, self.stream()).set(items as f64);
    }

    /// Records read from `shard_id`.
    pub(crate) fn records_received(
        &self,
        shard_id: &str,
        records: u64,
        bytes: u64,
        millis_behind: Option<i64>,
    ) {
        let labels = self.shard(shard_id);
        counter!(names::CONSUMER_RECORDS_RECEIVED, labels.clone()).increment(records);
        counter!(names::CONSUMER_BYTES_RECEIVED, labels.clone()).increment(bytes);
        if let Some(millis) = millis_behind {
            gauge!(names::CONSUMER_ITERATOR_AGE, labels).set(millis as f64);
        }
    }

    /// A consumer error of `error_type` on `shard_id`.
    pub(crate) fn consumer_error(&self, shard_id: &str, error_type: &str) {
        let mut labels = self.error(error_type);
        labels.push(Label::new("shard_id", shard_id.to_owned()));
        counter!(names::CONSUMER_ERRORS, labels).increment(1);
    }

    /// A checkpoint of `shard_id` was written (`true`) or refused / failed (`false`).
    pub(crate) fn checkpoint(&self, shard_id: &str, written: bool) {
        let name = if written {
            names::CONSUMER_CHECKPOINT_SUCCESS
        } else {
            names::CONSUMER_CHECKPOINT_FAILURE
        };
        counter!(name, self.shard(shard_id)).increment(1);
    }

    /// Records waiting for the user, and lag, of `shard_id`.
    pub(crate) fn consumer_backlog(&self, shard_id: &str, queued: usize, lag_records: u64) {
        let labels = self.shard(shard_id);
        gauge!(names::CONSUMER_QUEUE_SIZE, labels.clone()).set(queued as f64);
        gauge!(names::CONSUMER_LAG_RECORDS, labels).set(lag_records as f64);
    }

    /// How long the user took with one record.
    pub(crate) fn processing_time(&self, seconds: f64) {
        histogram!(names::CONSUMER_PROCESSING_TIME, self.stream()).record(seconds);
    }

    /// Lease changes of this worker.
    pub(crate) fn leases(&self, held: usize, taken: u64, lost: u64) {
        gauge!(names::CONSUMER_LEASES_HELD, self.stream()).set(held as f64);
        counter!(names::CONSUMER_LEASES_TAKEN, self.stream()).increment(taken);
        counter!(names::CONSUMER_LEASES_LOST, self.stream()).increment(lost);
    }

    /// The stream's shard counts; `resharded` when the set of shards changed.
    pub(crate) fn shards(&self, open: usize, closed: usize, resharded: bool) {
        gauge!(names::STREAM_SHARDS_ACTIVE, self.stream()).set(open as f64);
        gauge!(names::STREAM_SHARDS_CLOSED, self.stream()).set(closed as f64);
        if resharded {
            counter!(names::STREAM_RESHARDING_EVENTS, self.stream()).increment(1);
        }
    }
}

/// What one PutRecords call carried and how it went.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PutRecordsOutcome {
    /// Records in the call.
    pub(crate) records: usize,
    /// Records accepted.
    pub(crate) accepted_records: u64,
    /// User items inside the accepted records.
    pub(crate) accepted_items: u64,
    /// Bytes of the accepted records.
    pub(crate) accepted_bytes: u64,
    /// Records throttled.
    pub(crate) throttled_records: u64,
    /// Records that will be sent again.
    pub(crate) retried_records: u64,
    /// Duration of the call.
    pub(crate) seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn put_records_outcomes_are_recorded_with_stream_and_shard_labels() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let labels = StreamLabels::new("orders");
            labels.put_records(
                "shardId-000000000001",
                PutRecordsOutcome {
                    records: 10,
                    accepted_records: 8,
                    accepted_items: 80,
                    accepted_bytes: 800,
                    throttled_records: 2,
                    retried_records: 2,
                    seconds: 0.05,
                },
            );
            labels.producer_error("validation", 3);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let value = |name: &str| {
            snapshot
                .iter()
                .find(|(key, ..)| key.key().name() == name)
                .map(|(key, _, _, value)| {
                    let labels: Vec<String> =
                        key.key().labels().map(|l| l.value().to_owned()).collect();
                    (labels, value)
                })
                .unwrap_or_else(|| panic!("{name} not recorded"))
        };
        let (labels, sent) = value(names::PRODUCER_RECORDS_SENT);
        assert_eq!(labels, ["orders", "shardId-000000000001"]);
        assert_eq!(sent, &DebugValue::Counter(8));
        assert_eq!(
            value(names::PRODUCER_ITEMS_SENT).1,
            &DebugValue::Counter(80)
        );
        assert_eq!(value(names::PRODUCER_THROTTLES).1, &DebugValue::Counter(2));
        let (labels, errors) = value(names::PRODUCER_ERRORS);
        assert_eq!(labels, ["orders", "validation"]);
        assert_eq!(errors, &DebugValue::Counter(3));
    }
}
