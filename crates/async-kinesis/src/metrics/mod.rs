//! Metrics of the producer and the consumer, through the [`metrics`](https://docs.rs/metrics)
//! facade, and exporters for them.
//!
//! This is the only module that knows metric names ([`names`]); [`catalog`](mod@catalog) says what each one
//! is (type, labels, unit, meaning), and the repository's `docs/metrics.md` lists them in one
//! table. The names of the Python library `async-kinesis` are kept, so its dashboards carry over;
//! the others cover what operators of the KCL and KPL watch: lag (millis behind latest) per
//! shard, records processed, leases held / taken / handed off / lost, checkpoint latency and
//! failures, user records vs Kinesis records put, put latency, retries, throttles and queue
//! depth. Every metric has the label `stream_name`; per-shard ones also `shard_id`.
//!
//! # Exporters
//!
//! | feature | module | what it does |
//! | --- | --- | --- |
//! | `prometheus` | `prometheus` | serves `/metrics` on an address, or renders into your own HTTP server |
//! | `cloudwatch` | `cloudwatch` | sends batched PutMetricData calls from a background task |
//!
//! Any other recorder of the `metrics` ecosystem works too. Install the recorder before the
//! first producer or consumer records a value: handles are registered on first use and stay
//! bound to the recorder of that moment.
//!
//! # Cost
//!
//! Handles are registered once per stream and shard, so recording is an atomic update with a
//! recorder and a branch without one; no label strings are built per record. The `metrics`
//! bench measures it against the client's CPU per item.

pub mod catalog;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
pub mod names;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod recording;

pub use catalog::{MetricInfo, MetricKind, MetricUnit, catalog, describe, find};
pub(crate) use recording::{PutRecordsOutcome, StreamLabels};

/// The recording calls of the producer and the consumer, for the `metrics` bench to time them
/// exactly as the data path makes them. Not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use super::{PutRecordsOutcome, StreamLabels};

    /// The metrics of one stream.
    #[derive(Debug, Clone)]
    pub struct Recording(StreamLabels);

    impl Recording {
        /// As a producer or consumer of `stream` makes them.
        pub fn new(stream: &str) -> Self {
            Self(StreamLabels::new(stream))
        }

        /// What the producer records per PutRecords call of `records` records with `items`
        /// items (and per turn of its loop, the queue gauges).
        pub fn producer_call(&self, shard: &str, records: usize, items: u64, bytes: u64) {
            self.0.put_records(
                shard,
                PutRecordsOutcome {
                    records,
                    accepted_records: records as u64,
                    accepted_items: items,
                    accepted_bytes: bytes,
                    seconds: 0.02,
                    put_latencies: vec![0.1; records],
                    ..PutRecordsOutcome::default()
                },
            );
            self.0.producer_queue(1_000, 1_000_000);
        }

        /// What a shard reader records per GetRecords batch.
        pub fn consumer_batch(&self, shard: &str, records: u64, items: usize, bytes: u64) {
            self.0.records_received(shard, records, bytes, Some(0));
            self.0.records_processed(shard, items, bytes as usize);
            self.0.consumer_backlog(shard, 100, 100_000, 10);
        }

        /// What the consumer records per run of `records` items handed out back to back.
        pub fn consumer_run(&self, seconds_each: f64, records: usize) {
            self.0.processing_times(seconds_each, records);
        }
    }
}
