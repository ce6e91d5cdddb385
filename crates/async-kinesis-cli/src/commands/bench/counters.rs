//! The library's own counters, read in process: throttles, retries, errors and the Kinesis
//! bytes and records of each phase. A small recorder of the `metrics` facade keeps the few
//! counters the bench reports and drops everything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_kinesis::metrics::names;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The counters the bench reads, summed over shards.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    producer_records: AtomicU64,
    producer_bytes: AtomicU64,
    producer_throttles: AtomicU64,
    producer_retries: AtomicU64,
    consumer_records: AtomicU64,
    consumer_bytes: AtomicU64,
    consumer_throttles: AtomicU64,
    consumer_errors: AtomicU64,
}

/// The counters at one moment; subtract two to get a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) producer_records: u64,
    pub(crate) producer_bytes: u64,
    pub(crate) producer_throttles: u64,
    pub(crate) producer_retries: u64,
    pub(crate) consumer_records: u64,
    pub(crate) consumer_bytes: u64,
    pub(crate) consumer_throttles: u64,
    pub(crate) consumer_errors: u64,
}

impl Snapshot {
    /// What happened between `earlier` and this snapshot.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            producer_records: self.producer_records - earlier.producer_records,
            producer_bytes: self.producer_bytes - earlier.producer_bytes,
            producer_throttles: self.producer_throttles - earlier.producer_throttles,
            producer_retries: self.producer_retries - earlier.producer_retries,
            consumer_records: self.consumer_records - earlier.consumer_records,
            consumer_bytes: self.consumer_bytes - earlier.consumer_bytes,
            consumer_throttles: self.consumer_throttles - earlier.consumer_throttles,
            consumer_errors: self.consumer_errors - earlier.consumer_errors,
        }
    }
}

impl Counters {
    /// Installs a recorder feeding these counters as the process's recorder. `None` when
    /// another recorder was installed first (the counts then stay zero).
    pub(crate) fn install() -> Option<Arc<Self>> {
        let counters = Arc::new(Self::default());
        let recorder = BenchRecorder {
            counters: counters.clone(),
        };
        metrics::set_global_recorder(recorder)
            .ok()
            .map(|()| counters)
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            producer_records: get(&self.producer_records),
            producer_bytes: get(&self.producer_bytes),
            producer_throttles: get(&self.producer_throttles),
            producer_retries: get(&self.producer_retries),
            consumer_records: get(&self.consumer_records),
            consumer_bytes: get(&self.consumer_bytes),
            consumer_throttles: get(&self.consumer_throttles),
            consumer_errors: get(&self.consumer_errors),
        }
    }
}

/// Feeds [`Counters`]; every other metric is a no-op handle.
struct BenchRecorder {
    counters: Arc<Counters>,
}

/// An `AtomicU64` field of [`Counters`], shared with the handle the library increments.
struct Field {
    counters: Arc<Counters>,
    pick: fn(&Counters) -> &AtomicU64,
}

impl metrics::CounterFn for Field {
    fn increment(&self, value: u64) {
        (self.pick)(&self.counters).fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        (self.pick)(&self.counters).fetch_max(value, Ordering::Relaxed);
    }
}

/// Which field a counter of `key` feeds, if any.
fn field_of(key: &Key) -> Option<fn(&Counters) -> &AtomicU64> {
    let pick: fn(&Counters) -> &AtomicU64 = match key.name() {
        names::PRODUCER_RECORDS_SENT => |c| &c.producer_records,
        names::PRODUCER_BYTES_SENT => |c| &c.producer_bytes,
        names::PRODUCER_THROTTLES => |c| &c.producer_throttles,
        names::PRODUCER_RETRIES => |c| &c.producer_retries,
        names::CONSUMER_RECORDS_RECEIVED => |c| &c.consumer_records,
        names::CONSUMER_BYTES_RECEIVED => |c| &c.consumer_bytes,
        names::CONSUMER_ERRORS => {
            let throttled = key
                .labels()
                .any(|l| l.key() == names::labels::ERROR_TYPE && l.value() == "throttling");
            if throttled {
                |c| &c.consumer_throttles
            } else {
                |c| &c.consumer_errors
            }
        }
        _ => return None,
    };
    Some(pick)
}

impl Recorder for BenchRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match field_of(key) {
            Some(pick) => Counter::from_arc(Arc::new(Field {
                counters: self.counters.clone(),
                pick,
            })),
            None => Counter::noop(),
        }
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_feed_their_fields_and_consumer_throttles_are_told_apart() {
        let counters = Arc::new(Counters::default());
        let recorder = BenchRecorder {
            counters: counters.clone(),
        };
        let meta = Metadata::new("test", metrics::Level::INFO, None);
        let throttled = Key::from_parts(
            names::CONSUMER_ERRORS,
            vec![metrics::Label::new(names::labels::ERROR_TYPE, "throttling")],
        );
        let other = Key::from_parts(
            names::CONSUMER_ERRORS,
            vec![metrics::Label::new(names::labels::ERROR_TYPE, "transient")],
        );
        let before = counters.snapshot();
        recorder.register_counter(&throttled, &meta).increment(2);
        recorder.register_counter(&other, &meta).increment(1);
        recorder
            .register_counter(&Key::from_name(names::PRODUCER_BYTES_SENT), &meta)
            .increment(1_000);
        recorder
            .register_counter(&Key::from_name("something_else_total"), &meta)
            .increment(5);
        let phase = counters.snapshot().since(&before);
        assert_eq!(phase.consumer_throttles, 2);
        assert_eq!(phase.consumer_errors, 1);
        assert_eq!(phase.producer_bytes, 1_000);
        assert_eq!(phase.producer_records, 0);
    }
}
