//! Turning what was recorded into CloudWatch data, one period at a time: counters become their
//! growth over the period, gauges their last value, histograms the distribution of the period's
//! samples. No I/O; the period's end is passed in.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use metrics::Key;

use super::datum::{Datum, DatumValue, Samples, acceptable};
use super::recorder::AtomicRegistry;
use crate::metrics::catalog;

/// What the collector keeps between periods.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    /// Dimensions on every datum (app, worker, your own), sorted by name.
    defaults: Vec<(String, String)>,
    /// Counter totals at the end of the last period.
    last_counts: HashMap<Key, u64>,
    /// Histogram samples drained since the last period.
    samples: HashMap<Key, Samples>,
}

/// One period's data, and the samples and values CloudWatch would refuse.
#[derive(Debug, Default)]
pub(crate) struct Period {
    pub(crate) data: Vec<Datum>,
    pub(crate) refused: u64,
}

impl Collector {
    pub(crate) fn new(mut defaults: Vec<(String, String)>) -> Self {
        defaults.sort();
        Self {
            defaults,
            ..Self::default()
        }
    }

    /// Moves the histogram samples recorded so far out of the registry (done every second, so
    /// the lock-free buckets stay small).
    pub(crate) fn drain(&mut self, registry: &AtomicRegistry) {
        registry.visit_histograms(|key, bucket| {
            let mut drained = Vec::new();
            bucket.clear_with(|block| drained.extend_from_slice(block));
            if !drained.is_empty() {
                let samples = self.samples.entry(key.clone()).or_default();
                for value in drained {
                    samples.add(value);
                }
            }
        });
    }

    /// The data of the period ending `now`. Counters that never counted anything are left out
    /// (a metric per shard nobody needs costs money); once they did, every period has them.
    pub(crate) fn collect(&mut self, registry: &AtomicRegistry, now: SystemTime) -> Period {
        self.drain(registry);
        let mut period = Period::default();
        let mut counters = Vec::new();
        registry.visit_counters(|key, counter| {
            counters.push((key.clone(), counter.load(Ordering::Acquire)));
        });
        for (key, total) in counters {
            let last = self.last_counts.get(&key).copied();
            if total == 0 && last.is_none() {
                continue;
            }
            // A counter set lower (`absolute`) starts over from its new value.
            let growth = match last {
                Some(last) if total >= last => total - last,
                _ => total,
            };
            period
                .data
                .push(self.datum(&key, now, DatumValue::Single(growth as f64)));
            self.last_counts.insert(key, total);
        }
        let mut gauges = Vec::new();
        registry.visit_gauges(|key, gauge| {
            gauges.push((key.clone(), f64::from_bits(gauge.load(Ordering::Acquire))));
        });
        for (key, value) in gauges {
            match acceptable(value) {
                Some(value) => period
                    .data
                    .push(self.datum(&key, now, DatumValue::Single(value))),
                None => period.refused += 1,
            }
        }
        for (key, samples) in std::mem::take(&mut self.samples) {
            period.refused += samples.refused;
            for value in samples.distributions() {
                period.data.push(self.datum(&key, now, value));
            }
        }
        period
    }

    fn datum(&self, key: &Key, now: SystemTime, value: DatumValue) -> Datum {
        let mut dimensions = self.defaults.clone();
        for label in key.labels() {
            // CloudWatch refuses empty dimension values (e.g. a stream-wide error's shard_id).
            if label.value().is_empty() {
                continue;
            }
            match dimensions.iter_mut().find(|(name, _)| name == label.key()) {
                Some(existing) => existing.1 = label.value().to_owned(),
                None => dimensions.push((label.key().to_owned(), label.value().to_owned())),
            }
        }
        dimensions.sort();
        Datum {
            name: key.name().to_owned(),
            dimensions,
            unit: catalog::find(key.name()).map(|m| m.unit),
            timestamp: now,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::MetricUnit;
    use crate::metrics::cloudwatch::recorder::CloudWatchRecorder;
    use crate::metrics::names;

    fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn single(period: &Period, name: &str) -> Vec<f64> {
        period
            .data
            .iter()
            .filter(|d| d.name == name)
            .map(|d| match d.value {
                DatumValue::Single(v) => v,
                DatumValue::Distribution { .. } => panic!("{name} is a distribution"),
            })
            .collect()
    }

    #[test]
    fn counters_send_their_growth_per_period_and_gauges_their_value() {
        let recorder = CloudWatchRecorder::new();
        let mut collector = Collector::new(dims(&[("worker", "w1"), ("app", "billing")]));
        let t = SystemTime::UNIX_EPOCH;
        metrics::with_local_recorder(&recorder, || {
            let sent = metrics::counter!(names::PRODUCER_RECORDS_SENT, "stream_name" => "s", "shard_id" => "a");
            metrics::counter!(names::PRODUCER_THROTTLES, "stream_name" => "s").increment(0);
            sent.increment(5);
            metrics::gauge!(names::CONSUMER_LEASES_HELD, "stream_name" => "s").set(3.0);
            let first = collector.collect(&recorder.registry, t);
            assert_eq!(single(&first, names::PRODUCER_RECORDS_SENT), [5.0]);
            assert!(
                single(&first, names::PRODUCER_THROTTLES).is_empty(),
                "a counter that never counted is left out"
            );
            assert_eq!(single(&first, names::CONSUMER_LEASES_HELD), [3.0]);
            let datum = &first.data[0];
            assert_eq!(
                datum.dimensions,
                dims(&[
                    ("app", "billing"),
                    ("shard_id", "a"),
                    ("stream_name", "s"),
                    ("worker", "w1")
                ])
            );
            assert_eq!(datum.unit, Some(MetricUnit::Count));

            sent.increment(2);
            let second = collector.collect(&recorder.registry, t);
            assert_eq!(single(&second, names::PRODUCER_RECORDS_SENT), [2.0]);
            let third = collector.collect(&recorder.registry, t);
            assert_eq!(single(&third, names::PRODUCER_RECORDS_SENT), [0.0]);
        });
    }

    #[test]
    fn histograms_send_the_period_s_samples_once() {
        let recorder = CloudWatchRecorder::new();
        let mut collector = Collector::new(Vec::new());
        let t = SystemTime::UNIX_EPOCH;
        metrics::with_local_recorder(&recorder, || {
            let batch = metrics::histogram!(names::PRODUCER_BATCH_SIZE, "stream_name" => "s");
            batch.record(500.0);
            batch.record(500.0);
            collector.drain(&recorder.registry);
            batch.record(1.0);
            batch.record(f64::NAN);
            let period = collector.collect(&recorder.registry, t);
            let values: Vec<_> = period
                .data
                .iter()
                .filter(|d| d.name == names::PRODUCER_BATCH_SIZE)
                .map(|d| d.value.clone())
                .collect();
            assert_eq!(
                values,
                [DatumValue::Distribution {
                    values: vec![1.0, 500.0],
                    counts: vec![1.0, 2.0],
                }]
            );
            assert_eq!(period.refused, 1);
            let next = collector.collect(&recorder.registry, t);
            assert!(
                next.data
                    .iter()
                    .all(|d| d.name != names::PRODUCER_BATCH_SIZE),
                "no samples, no datum"
            );
        });
    }

    #[test]
    fn empty_label_values_are_left_out_and_labels_override_defaults() {
        let recorder = CloudWatchRecorder::new();
        let mut collector = Collector::new(dims(&[("stream_name", "default")]));
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!(names::CONSUMER_ERRORS, "stream_name" => "s", "shard_id" => "", "error_type" => "throttling")
                .increment(1);
        });
        let period = collector.collect(&recorder.registry, SystemTime::UNIX_EPOCH);
        assert_eq!(
            period.data[0].dimensions,
            dims(&[("error_type", "throttling"), ("stream_name", "s")])
        );
    }
}
