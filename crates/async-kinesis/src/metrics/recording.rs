//! Recording: what the producer and the consumer call at each point worth measuring.
//!
//! Metric handles are registered with the installed recorder once per stream (and per shard,
//! the first time a shard is seen) and kept, so a record costs an atomic update with a recorder
//! and a branch without one — no label strings are built on the data path. Handles are
//! registered on first use: a recorder installed before the first record is measured sees
//! everything.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, SharedString, counter, gauge, histogram};
use tokio::time::Instant;

use super::names::{self, labels};

/// The metrics of one stream: its labels and the handles registered for them. Cheap to clone;
/// clones share the handles.
#[derive(Debug, Clone)]
pub(crate) struct StreamLabels {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stream: SharedString,
    producer: OnceLock<ProducerStream>,
    consumer: OnceLock<ConsumerStream>,
    producer_shards: ShardCache<ProducerShard>,
    consumer_shards: ShardCache<ConsumerShard>,
}

/// Per-shard handles, registered the first time a shard is measured.
#[derive(Debug)]
struct ShardCache<H>(Mutex<HashMap<Arc<str>, Arc<H>>>);

impl<H> ShardCache<H> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn remove(&self, shard_id: &str) -> Option<Arc<H>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(shard_id)
    }

    fn get(&self, shard_id: &str, register: impl FnOnce() -> H) -> Arc<H> {
        // A panic while holding the lock leaves the map intact (inserts are whole), so a
        // poisoned lock is still good to use.
        let mut shards = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handles) = shards.get(shard_id) {
            return handles.clone();
        }
        let handles = Arc::new(register());
        shards.insert(Arc::from(shard_id), handles.clone());
        handles
    }
}

#[derive(Debug)]
struct ProducerStream {
    queue_size: Gauge,
    queue_bytes: Gauge,
}

#[derive(Debug)]
struct ProducerShard {
    records_sent: Counter,
    items_sent: Counter,
    bytes_sent: Counter,
    throttles: Counter,
    retries: Counter,
    batch_size: Histogram,
    flush_duration: Histogram,
    put_latency: Histogram,
}

#[derive(Debug)]
struct ConsumerStream {
    queue_size: Gauge,
    queue_bytes: Gauge,
    processing_time: Histogram,
    leases_held: Gauge,
    leases_taken: Counter,
    leases_handed_off: Counter,
    leases_lost: Counter,
    shards_active: Gauge,
    shards_closed: Gauge,
    resharding_events: Counter,
}

#[derive(Debug)]
struct ConsumerShard {
    records_received: Counter,
    bytes_received: Counter,
    records_processed: Counter,
    bytes_processed: Counter,
    checkpoint_success: Counter,
    checkpoint_failure: Counter,
    checkpoint_duration: Histogram,
    iterator_age: Gauge,
    lag_records: Gauge,
    oldest_unacked_age: Gauge,
}

impl StreamLabels {
    pub(crate) fn new(stream_name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                stream: SharedString::from_shared(Arc::from(stream_name)),
                producer: OnceLock::new(),
                consumer: OnceLock::new(),
                producer_shards: ShardCache::new(),
                consumer_shards: ShardCache::new(),
            }),
        }
    }

    fn stream_label(&self) -> Label {
        Label::new(labels::STREAM_NAME, self.inner.stream.clone())
    }

    fn stream(&self) -> Vec<Label> {
        vec![self.stream_label()]
    }

    fn shard(&self, shard_id: &str) -> Vec<Label> {
        vec![
            self.stream_label(),
            Label::new(labels::SHARD_ID, shard_id.to_owned()),
        ]
    }

    fn producer(&self) -> &ProducerStream {
        self.inner.producer.get_or_init(|| {
            let l = self.stream();
            ProducerStream {
                queue_size: gauge!(names::PRODUCER_QUEUE_SIZE, l.clone()),
                queue_bytes: gauge!(names::PRODUCER_QUEUE_BYTES, l),
            }
        })
    }

    fn producer_shard(&self, shard_id: &str) -> Arc<ProducerShard> {
        self.inner.producer_shards.get(shard_id, || {
            let l = self.shard(shard_id);
            ProducerShard {
                records_sent: counter!(names::PRODUCER_RECORDS_SENT, l.clone()),
                items_sent: counter!(names::PRODUCER_ITEMS_SENT, l.clone()),
                bytes_sent: counter!(names::PRODUCER_BYTES_SENT, l.clone()),
                throttles: counter!(names::PRODUCER_THROTTLES, l.clone()),
                retries: counter!(names::PRODUCER_RETRIES, l.clone()),
                batch_size: histogram!(names::PRODUCER_BATCH_SIZE, l.clone()),
                flush_duration: histogram!(names::PRODUCER_FLUSH_DURATION, l.clone()),
                put_latency: histogram!(names::PRODUCER_PUT_LATENCY, l),
            }
        })
    }

    fn consumer(&self) -> &ConsumerStream {
        self.inner.consumer.get_or_init(|| {
            let l = self.stream();
            ConsumerStream {
                queue_size: gauge!(names::CONSUMER_QUEUE_SIZE, l.clone()),
                queue_bytes: gauge!(names::CONSUMER_QUEUE_BYTES, l.clone()),
                processing_time: histogram!(names::CONSUMER_PROCESSING_TIME, l.clone()),
                leases_held: gauge!(names::CONSUMER_LEASES_HELD, l.clone()),
                leases_taken: counter!(names::CONSUMER_LEASES_TAKEN, l.clone()),
                leases_handed_off: counter!(names::CONSUMER_LEASES_HANDED_OFF, l.clone()),
                leases_lost: counter!(names::CONSUMER_LEASES_LOST, l.clone()),
                shards_active: gauge!(names::STREAM_SHARDS_ACTIVE, l.clone()),
                shards_closed: gauge!(names::STREAM_SHARDS_CLOSED, l.clone()),
                resharding_events: counter!(names::STREAM_RESHARDING_EVENTS, l),
            }
        })
    }

    fn consumer_shard(&self, shard_id: &str) -> Arc<ConsumerShard> {
        self.inner.consumer_shards.get(shard_id, || {
            let l = self.shard(shard_id);
            ConsumerShard {
                records_received: counter!(names::CONSUMER_RECORDS_RECEIVED, l.clone()),
                bytes_received: counter!(names::CONSUMER_BYTES_RECEIVED, l.clone()),
                records_processed: counter!(names::CONSUMER_RECORDS_PROCESSED, l.clone()),
                bytes_processed: counter!(names::CONSUMER_BYTES_PROCESSED, l.clone()),
                checkpoint_success: counter!(names::CONSUMER_CHECKPOINT_SUCCESS, l.clone()),
                checkpoint_failure: counter!(names::CONSUMER_CHECKPOINT_FAILURE, l.clone()),
                checkpoint_duration: histogram!(names::CONSUMER_CHECKPOINT_DURATION, l.clone()),
                iterator_age: gauge!(names::CONSUMER_ITERATOR_AGE, l.clone()),
                lag_records: gauge!(names::CONSUMER_LAG_RECORDS, l.clone()),
                oldest_unacked_age: gauge!(names::CONSUMER_OLDEST_UNACKED_AGE, l),
            }
        })
    }

    // --- producer ---------------------------------------------------------------------------

    /// A PutRecords call to `shard_id` finished: what it carried and what came of it.
    pub(crate) fn put_records(&self, shard_id: &str, call: PutRecordsOutcome) {
        let shard = self.producer_shard(shard_id);
        shard.batch_size.record(call.records as f64);
        shard.flush_duration.record(call.seconds);
        shard.records_sent.increment(call.accepted_records);
        shard.items_sent.increment(call.accepted_items);
        shard.bytes_sent.increment(call.accepted_bytes);
        shard.throttles.increment(call.throttled_records);
        shard.retries.increment(call.retried_records);
        for latency in call.put_latencies {
            shard.put_latency.record(latency);
        }
    }

    /// A whole PutRecords call to `shard_id` failed and its `records` go out again.
    pub(crate) fn records_retried(&self, shard_id: &str, records: u64, throttled: bool) {
        let shard = self.producer_shard(shard_id);
        shard.retries.increment(records);
        if throttled {
            shard.throttles.increment(records);
        }
    }

    /// The producer gave up on `items` items (their receipts carry the error).
    pub(crate) fn producer_error(&self, error_type: &str, items: u64) {
        let labels = vec![
            self.stream_label(),
            Label::new(labels::ERROR_TYPE, error_type.to_owned()),
        ];
        counter!(names::PRODUCER_ERRORS, labels).increment(items);
    }

    /// Items, and their bytes, waiting in the producer.
    pub(crate) fn producer_queue(&self, items: usize, bytes: usize) {
        let producer = self.producer();
        producer.queue_size.set(items as f64);
        producer.queue_bytes.set(bytes as f64);
    }

    // --- consumer ---------------------------------------------------------------------------

    /// Records read from `shard_id` by one GetRecords call.
    pub(crate) fn records_received(
        &self,
        shard_id: &str,
        records: u64,
        bytes: u64,
        millis_behind: Option<i64>,
    ) {
        let shard = self.consumer_shard(shard_id);
        shard.records_received.increment(records);
        shard.bytes_received.increment(bytes);
        if let Some(millis) = millis_behind {
            shard.iterator_age.set(millis as f64);
        }
    }

    /// `items` user records of `shard_id`, from Kinesis records of `bytes` bytes, were passed
    /// on to the application.
    pub(crate) fn records_processed(&self, shard_id: &str, items: usize, bytes: usize) {
        let shard = self.consumer_shard(shard_id);
        shard.records_processed.increment(items as u64);
        shard.bytes_processed.increment(bytes as u64);
    }

    /// A consumer error of `error_type` on `shard_id` (empty: the whole stream).
    pub(crate) fn consumer_error(&self, shard_id: &str, error_type: &str) {
        let labels = vec![
            self.stream_label(),
            Label::new(labels::SHARD_ID, shard_id.to_owned()),
            Label::new(labels::ERROR_TYPE, error_type.to_owned()),
        ];
        counter!(names::CONSUMER_ERRORS, labels).increment(1);
    }

    /// A checkpoint of `shard_id` was written (`true`) or refused / failed (`false`).
    pub(crate) fn checkpoint(&self, shard_id: &str, written: bool) {
        let shard = self.consumer_shard(shard_id);
        if written {
            shard.checkpoint_success.increment(1);
        } else {
            shard.checkpoint_failure.increment(1);
        }
    }

    /// Runs the checkpoint write `write` of `shard_id` and measures how long it took.
    ///
    /// # Cancel safety
    /// As cancel safe as `write`; a cancelled write is not measured.
    pub(crate) async fn timed_checkpoint<F: Future>(&self, shard_id: &str, write: F) -> F::Output {
        let started = Instant::now();
        let output = write.await;
        self.consumer_shard(shard_id)
            .checkpoint_duration
            .record(started.elapsed().as_secs_f64());
        output
    }

    /// Records waiting for the application (and their bytes), and the lag of `shard_id`.
    pub(crate) fn consumer_backlog(
        &self,
        shard_id: &str,
        queued: usize,
        queued_bytes: usize,
        lag_records: u64,
    ) {
        self.consumer_queue(queued, queued_bytes);
        self.consumer_lag(shard_id, lag_records as usize);
    }

    /// Records (and their bytes) waiting for the application.
    pub(crate) fn consumer_queue(&self, queued: usize, queued_bytes: usize) {
        let consumer = self.consumer();
        consumer.queue_size.set(queued as f64);
        consumer.queue_bytes.set(queued_bytes as f64);
    }

    /// Records of `shard_id` read and not yet acknowledged.
    pub(crate) fn consumer_lag(&self, shard_id: &str, records: usize) {
        self.consumer_shard(shard_id)
            .lag_records
            .set(records as f64);
    }

    /// How long ago the oldest unacknowledged record of `shard_id` was read (zero: none).
    pub(crate) fn oldest_unacked_age(&self, shard_id: &str, age: Duration) {
        self.consumer_shard(shard_id)
            .oldest_unacked_age
            .set(age.as_secs_f64());
    }

    /// How long the application took with each of `records` records (a run's average).
    pub(crate) fn processing_times(&self, seconds_each: f64, records: usize) {
        self.consumer()
            .processing_time
            .record_many(seconds_each, records);
    }

    /// `shard_id` left the stream's listing: its gauges are zeroed (a recorder keeps the last
    /// value of a series it was given) and its handles dropped, so nothing of it is recorded
    /// again unless it is read again.
    pub(crate) fn forget_consumer_shard(&self, shard_id: &str) {
        if let Some(shard) = self.inner.consumer_shards.remove(shard_id) {
            shard.lag_records.set(0.0);
            shard.iterator_age.set(0.0);
            shard.oldest_unacked_age.set(0.0);
        }
    }

    /// This worker now holds `held` leases.
    pub(crate) fn leases_held(&self, held: usize) {
        self.consumer().leases_held.set(held as f64);
    }

    /// This worker claimed a lease; it now holds `held`.
    pub(crate) fn lease_taken(&self, held: usize) {
        self.consumer().leases_taken.increment(1);
        self.leases_held(held);
    }

    /// This worker handed a lease off to others; it now holds `held`.
    pub(crate) fn lease_handed_off(&self, held: usize) {
        self.consumer().leases_handed_off.increment(1);
        self.leases_held(held);
    }

    /// This worker lost a lease; it now holds `held`.
    pub(crate) fn lease_lost(&self, held: usize) {
        self.consumer().leases_lost.increment(1);
        self.leases_held(held);
    }

    /// The stream's shard counts; `resharded` when the set of shards changed.
    pub(crate) fn shards(&self, open: usize, closed: usize, resharded: bool) {
        let consumer = self.consumer();
        consumer.shards_active.set(open as f64);
        consumer.shards_closed.set(closed as f64);
        if resharded {
            consumer.resharding_events.increment(1);
        }
    }
}

/// What one PutRecords call carried and how it went.
#[derive(Debug, Clone, Default)]
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
    /// Per accepted record: seconds since its oldest item entered the producer.
    pub(crate) put_latencies: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    type Recorded = Vec<(String, Vec<String>, DebugValue)>;

    /// Every recorded value, from one snapshot (a snapshot resets counters).
    fn recorded(snapshotter: &Snapshotter) -> Recorded {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels = key.key().labels().map(|l| l.value().to_owned()).collect();
                (key.key().name().to_owned(), labels, value)
            })
            .collect()
    }

    fn value<'a>(recorded: &'a Recorded, name: &str) -> (&'a [String], &'a DebugValue) {
        recorded
            .iter()
            .find(|(n, ..)| n == name)
            .map(|(_, labels, value)| (labels.as_slice(), value))
            .unwrap_or_else(|| panic!("{name} not recorded"))
    }

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
                    put_latencies: vec![0.5; 8],
                },
            );
            labels.records_retried("shardId-000000000001", 10, true);
            labels.producer_error("validation", 3);
            labels.producer_queue(7, 700);
        });
        let recorded = recorded(&snapshotter);
        let value = |name| value(&recorded, name);
        let (labels, sent) = value(names::PRODUCER_RECORDS_SENT);
        assert_eq!(labels, ["orders", "shardId-000000000001"]);
        assert_eq!(sent, &DebugValue::Counter(8));
        let items = value(names::PRODUCER_ITEMS_SENT).1;
        assert_eq!(items, &DebugValue::Counter(80));
        let throttles = value(names::PRODUCER_THROTTLES).1;
        assert_eq!(throttles, &DebugValue::Counter(12));
        let retries = value(names::PRODUCER_RETRIES).1;
        assert_eq!(retries, &DebugValue::Counter(12));
        match value(names::PRODUCER_PUT_LATENCY).1 {
            DebugValue::Histogram(samples) => assert_eq!(samples.len(), 8),
            other => panic!("{other:?}"),
        }
        let (labels, errors) = value(names::PRODUCER_ERRORS);
        assert_eq!(labels, ["orders", "validation"]);
        assert_eq!(errors, &DebugValue::Counter(3));
        let bytes = value(names::PRODUCER_QUEUE_BYTES).1;
        assert_eq!(bytes, &DebugValue::Gauge(700.0.into()));
    }

    #[test]
    fn lease_changes_count_and_set_the_held_gauge() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let labels = StreamLabels::new("orders");
            labels.lease_taken(1);
            labels.lease_taken(2);
            labels.lease_handed_off(1);
            labels.lease_lost(0);
        });
        let recorded = recorded(&snapshotter);
        let count = |name| value(&recorded, name).1;
        assert_eq!(count(names::CONSUMER_LEASES_TAKEN), &DebugValue::Counter(2));
        assert_eq!(
            count(names::CONSUMER_LEASES_HANDED_OFF),
            &DebugValue::Counter(1)
        );
        assert_eq!(count(names::CONSUMER_LEASES_LOST), &DebugValue::Counter(1));
        assert_eq!(
            count(names::CONSUMER_LEASES_HELD),
            &DebugValue::Gauge(0.0.into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn checkpoint_writes_are_timed_and_their_output_passed_through() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);
        let labels = StreamLabels::new("orders");
        let write = async {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            Ok::<u8, ()>(7)
        };
        assert_eq!(labels.timed_checkpoint("shard-1", write).await, Ok(7));
        let recorded = recorded(&snapshotter);
        match value(&recorded, names::CONSUMER_CHECKPOINT_DURATION).1 {
            DebugValue::Histogram(samples) => {
                assert_eq!(samples.len(), 1);
                assert!((samples[0].into_inner() - 0.03).abs() < 1e-3);
            }
            other => panic!("{other:?}"),
        }
    }
}
