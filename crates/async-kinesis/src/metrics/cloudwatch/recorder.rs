//! The recorder: every handle is an atomic (counters, gauges) or a lock-free bucket
//! (histograms) in a registry the flusher reads, so recording never waits on CloudWatch.

use std::fmt;
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};

pub(crate) type AtomicRegistry = Registry<Key, AtomicStorage>;

/// The CloudWatch exporter's recorder, for composing with other recorders (see
/// [`CloudWatchExporter::build`](super::CloudWatchExporter::build)). Cheap to clone.
#[derive(Clone)]
pub struct CloudWatchRecorder {
    pub(crate) registry: Arc<AtomicRegistry>,
}

impl CloudWatchRecorder {
    pub(crate) fn new() -> Self {
        Self {
            registry: Arc::new(Registry::atomic()),
        }
    }
}

impl fmt::Debug for CloudWatchRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudWatchRecorder").finish_non_exhaustive()
    }
}

impl Recorder for CloudWatchRecorder {
    // Units come from this crate's catalog; descriptions have no place in CloudWatch.
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |counter| Counter::from_arc(counter.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |gauge| Gauge::from_arc(gauge.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |histogram| Histogram::from_arc(histogram.clone()))
    }
}
