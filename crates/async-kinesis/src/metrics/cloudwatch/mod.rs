//! CloudWatch exporter (feature `cloudwatch`): this crate's metrics (and any other recorded
//! through the `metrics` facade) sent with PutMetricData from a background task.
//!
//! - **Batched within the service's limits**: each period's data go out in calls of at most
//!   1,000 metric data and 1 MB, each histogram datum with at most 150 distinct values
//!   (samples are kept to 3 significant digits, so a busy histogram stays a few data per period).
//! - **Per period**: counters are sent as their growth over the period (unit Count or Bytes,
//!   statistic Sum), gauges as their last value, histograms as values with counts (so
//!   CloudWatch can compute percentiles). A counter that never counted anything is not sent.
//! - **Dimensions**: the metric's labels (`stream_name`, `shard_id`, `error_type`; empty values
//!   are left out) plus `app` and `worker` when set, plus any of your own.
//! - **Never in the way of the data**: recording is an atomic update; the task sends. A failed
//!   call is counted ([`ExportStats`], `cloudwatch_export_failures_total`) and logged once per
//!   period, however many calls failed. Data of calls that may succeed later (CloudWatch
//!   unreachable, throttling, 5xx) are sent again with the next period, up to
//!   [`CloudWatchExporter::max_retained`] data; refused data (access denied, invalid) and data
//!   past that bound are dropped and counted (`cloudwatch_export_dropped_total`).
//! - **Flush on shutdown**: [`CloudWatchHandle::shutdown`] sends what was recorded since the last
//!   period and stops. Call it before the process exits; without it, the last period is lost.
//!
//! Install the exporter before the producer or consumer records its first value.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use async_kinesis::ConnectOptions;
//! use async_kinesis::metrics::cloudwatch::CloudWatchExporter;
//!
//! let aws = ConnectOptions::default().region("eu-west-1").load().await;
//! let exporter = CloudWatchExporter::new(&aws)
//!     .namespace("Billing/Kinesis")
//!     .app("billing")
//!     .worker("billing-7f9c")
//!     .flush_interval(Duration::from_secs(60))
//!     .install()?;
//! // ... run producers and consumers ...
//! let stats = exporter.shutdown().await; // the final flush
//! println!("{} data sent, {} calls failed", stats.data_sent, stats.failed_calls);
//! # Ok(()) }
//! ```

mod collect;
mod datum;
mod flusher;
mod recorder;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use tokio::sync::{mpsc, oneshot};

pub use recorder::CloudWatchRecorder;

use collect::Collector;
use flusher::{Command, Counts, Flusher};

/// CloudWatch allows this many dimensions per metric; this crate's labels take up to 3.
const MAX_DIMENSIONS: usize = 30;
const LABEL_DIMENSIONS: usize = 3;

/// Setting up the CloudWatch exporter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudWatchError {
    /// The namespace is empty, longer than 255 characters, or starts with the reserved `AWS/`.
    #[error("invalid CloudWatch namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A dimension name or value is empty or too long, or there are too many dimensions.
    #[error("invalid CloudWatch dimension {name:?}: {reason}")]
    InvalidDimension {
        /// The dimension's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The flush interval is shorter than a second.
    #[error("the CloudWatch flush interval must be at least 1 s, not {interval:?}")]
    InvalidInterval {
        /// The interval given.
        interval: Duration,
    },
    /// A recorder is installed already (compose several with [`CloudWatchExporter::build`]).
    #[error("a metrics recorder is already installed in this process")]
    RecorderAlreadyInstalled,
    /// The exporter's task needs a tokio runtime: call it from inside one.
    #[error("the CloudWatch exporter needs a tokio runtime; call it from inside one")]
    NoRuntime,
}

/// What the exporter did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// PutMetricData calls made.
    pub calls: u64,
    /// Calls that failed.
    pub failed_calls: u64,
    /// Metric data CloudWatch accepted.
    pub data_sent: u64,
    /// Metric data given up: refused, not storable, or past the retry bound.
    pub data_dropped: u64,
    /// Metric data of failed calls waiting for the next period.
    pub data_pending: u64,
}

/// Options of the exporter (everything but the connection is checked when it starts).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    namespace: String,
    flush_interval: Duration,
    dimensions: Vec<(String, String)>,
    high_resolution: bool,
    call_timeout: Duration,
    max_retained: usize,
    /// Where the client sends requests, for error messages.
    endpoint: String,
}

/// Builds the CloudWatch exporter. Defaults: namespace `AsyncKinesis`, a flush every 60 s,
/// standard (1 minute) resolution, 10 s per call, up to 20,000 data kept for retry.
#[derive(Debug, Clone)]
pub struct CloudWatchExporter {
    client: aws_sdk_cloudwatch::Client,
    settings: Settings,
}

impl CloudWatchExporter {
    /// An exporter sending with the credentials, region and endpoint of `config` (e.g. from
    /// [`ConnectOptions::load`](crate::ConnectOptions::load)).
    pub fn new(config: &SdkConfig) -> Self {
        let endpoint = config.endpoint_url().map_or_else(
            || {
                let region = config.region().map_or("(default region)", |r| r.as_ref());
                format!("CloudWatch in {region}")
            },
            str::to_owned,
        );
        Self {
            client: aws_sdk_cloudwatch::Client::new(config),
            settings: Settings {
                namespace: "AsyncKinesis".to_owned(),
                flush_interval: Duration::from_secs(60),
                dimensions: Vec::new(),
                high_resolution: false,
                call_timeout: Duration::from_secs(10),
                max_retained: 20_000,
                endpoint,
            },
        }
    }

    /// The CloudWatch namespace of every metric (default `AsyncKinesis`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings.namespace = namespace.into();
        self
    }

    /// How often data are sent (default 60 s, at least 1 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval;
        self
    }

    /// The `app` dimension on every metric: the application (consumer group) name.
    pub fn app(self, app: impl Into<String>) -> Self {
        self.dimension("app", app)
    }

    /// The `worker` dimension on every metric, e.g. the consumer's
    /// [`worker_id`](crate::Consumer::worker_id).
    pub fn worker(self, worker: impl ToString) -> Self {
        self.dimension("worker", worker.to_string())
    }

    /// A dimension of your own on every metric (a label of the same name wins).
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.settings.dimensions.retain(|(n, _)| *n != name);
        self.settings.dimensions.push((name, value.into()));
        self
    }

    /// Store at 1-second resolution (high-resolution metrics, billed higher) instead of 1
    /// minute. Worth it only with a flush interval under a minute.
    pub fn high_resolution(mut self, high: bool) -> Self {
        self.settings.high_resolution = high;
        self
    }

    /// How long one PutMetricData call may take before it counts as failed (default 10 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.call_timeout = timeout;
        self
    }

    /// Most metric data of failed calls kept for the next period (default 20,000); older ones
    /// are dropped and counted.
    pub fn max_retained(mut self, data: usize) -> Self {
        self.settings.max_retained = data;
        self
    }

    fn validate(&self) -> Result<(), CloudWatchError> {
        let settings = &self.settings;
        let namespace = &settings.namespace;
        let reason = if namespace.is_empty() {
            Some("empty")
        } else if namespace.chars().count() > 255 {
            Some("longer than 255 characters")
        } else if namespace.starts_with("AWS/") {
            Some("AWS/ is reserved for AWS services")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(CloudWatchError::InvalidNamespace {
                namespace: namespace.clone(),
                reason,
            });
        }
        if settings.flush_interval < Duration::from_secs(1) {
            return Err(CloudWatchError::InvalidInterval {
                interval: settings.flush_interval,
            });
        }
        for (name, value) in &settings.dimensions {
            let reason = if name.is_empty() || value.is_empty() {
                Some("empty name or value")
            } else if name.chars().count() > 255 || value.chars().count() > 1024 {
                Some("name over 255 or value over 1024 characters")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(CloudWatchError::InvalidDimension {
                    name: name.clone(),
                    reason,
                });
            }
        }
        if settings.dimensions.len() + LABEL_DIMENSIONS > MAX_DIMENSIONS {
            return Err(CloudWatchError::InvalidDimension {
                name: settings.dimensions[0].0.clone(),
                reason: "more than 27 dimensions of your own (CloudWatch allows 30)",
            });
        }
        Ok(())
    }

    /// The recorder and the running exporter, not installed: for composing with another
    /// recorder (e.g. Prometheus', through `metrics_util::layers::FanoutBuilder`). The task
    /// starts now, on the current tokio runtime.
    ///
    /// # Errors
    /// An invalid namespace, dimension or interval; [`CloudWatchError::NoRuntime`].
    pub fn build(self) -> Result<(CloudWatchRecorder, CloudWatchHandle), CloudWatchError> {
        self.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| CloudWatchError::NoRuntime)?;
        let recorder = CloudWatchRecorder::new();
        let counts = Arc::new(Counts::default());
        let (commands, receiver) = mpsc::unbounded_channel();
        let flusher = Flusher {
            client: self.client,
            collector: Collector::new(self.settings.dimensions.clone()),
            settings: self.settings,
            registry: recorder.registry.clone(),
            counts: counts.clone(),
            retained: VecDeque::new(),
        };
        runtime.spawn(flusher.run(receiver));
        Ok((recorder, CloudWatchHandle { commands, counts }))
    }

    /// Installs the exporter's recorder for the whole process and starts sending.
    ///
    /// # Errors
    /// As [`CloudWatchExporter::build`], and [`CloudWatchError::RecorderAlreadyInstalled`].
    pub fn install(self) -> Result<CloudWatchHandle, CloudWatchError> {
        let (recorder, handle) = self.build()?;
        match metrics::set_global_recorder(recorder) {
            Ok(()) => Ok(handle),
            Err(_) => {
                // Nothing would ever be recorded into it: stop its task.
                let _ = handle
                    .commands
                    .send(Command::Shutdown(oneshot::channel().0));
                Err(CloudWatchError::RecorderAlreadyInstalled)
            }
        }
    }
}

/// Controls a running CloudWatch exporter. Cheap to clone; dropping every handle leaves the
/// exporter running until the runtime ends (without a final flush).
#[derive(Debug, Clone)]
pub struct CloudWatchHandle {
    commands: mpsc::UnboundedSender<Command>,
    counts: Arc<Counts>,
}

impl CloudWatchHandle {
    /// What the exporter did so far.
    pub fn stats(&self) -> ExportStats {
        self.counts.snapshot()
    }

    /// Sends everything recorded so far now, instead of at the end of the period.
    ///
    /// # Cancel safety
    /// Cancel safe: the flush happens either way.
    pub async fn flush(&self) -> ExportStats {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Flush(reply)).is_err() {
            return self.stats();
        }
        answer.await.unwrap_or_else(|_| self.stats())
    }

    /// Sends everything recorded so far and stops the exporter; later records are not sent.
    ///
    /// # Cancel safety
    /// Cancel safe: the final flush and the stop happen either way.
    pub async fn shutdown(self) -> ExportStats {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).is_err() {
            return self.stats();
        }
        answer.await.unwrap_or_else(|_| self.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter() -> CloudWatchExporter {
        CloudWatchExporter::new(&SdkConfig::builder().build())
    }

    #[test]
    fn settings_cloudwatch_would_refuse_are_refused_at_setup() {
        let namespace = |ns: &str| exporter().namespace(ns).validate();
        assert!(matches!(
            namespace(""),
            Err(CloudWatchError::InvalidNamespace { .. })
        ));
        assert!(matches!(
            namespace("AWS/Kinesis"),
            Err(CloudWatchError::InvalidNamespace { .. })
        ));
        assert!(namespace("Billing/Kinesis").is_ok());
        assert!(matches!(
            exporter()
                .flush_interval(Duration::from_millis(500))
                .validate(),
            Err(CloudWatchError::InvalidInterval { .. })
        ));
        assert!(matches!(
            exporter().app("").validate(),
            Err(CloudWatchError::InvalidDimension { .. })
        ));
        let many = (0..28).fold(exporter(), |e, i| e.dimension(format!("d{i}"), "v"));
        assert!(matches!(
            many.validate(),
            Err(CloudWatchError::InvalidDimension { .. })
        ));
    }

    #[test]
    fn a_dimension_set_twice_keeps_the_last_value() {
        let exporter = exporter().app("a").app("b").worker("w");
        assert_eq!(
            exporter.settings.dimensions,
            [
                ("app".to_owned(), "b".to_owned()),
                ("worker".to_owned(), "w".to_owned())
            ]
        );
    }

    #[test]
    fn building_outside_a_runtime_is_an_error() {
        assert!(matches!(
            exporter().build(),
            Err(CloudWatchError::NoRuntime)
        ));
    }
}
