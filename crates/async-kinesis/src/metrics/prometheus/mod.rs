//! Prometheus exporter (feature `prometheus`), on
//! [`metrics-exporter-prometheus`](https://docs.rs/metrics-exporter-prometheus).
//!
//! Two ways to expose the metrics:
//!
//! - **Serve `/metrics` yourself in one call**: [`serve`] installs the recorder and answers
//!   `GET /metrics` on the address you give, until [`MetricsServer::shutdown`] or the end of the
//!   runtime. This is what the CLI's `--metrics-addr HOST:PORT` uses.
//! - **Render into your own HTTP server**: [`PrometheusExporter::install`] installs the recorder
//!   and returns a [`PrometheusHandle`]; answer your scrape route with
//!   [`PrometheusHandle::render`].
//!
//! Histograms are true Prometheus histograms with buckets chosen per metric (records per call,
//! call and checkpoint durations, put latency, processing time; see
//! [`catalog`](mod@super::catalog)), and every metric carries its `# HELP` text from the catalog.
//! Install the exporter before the producer or consumer records its first value.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use async_kinesis::metrics::prometheus;
//!
//! // Scrape http://127.0.0.1:9898/metrics while the producer and consumer run.
//! let server = prometheus::serve("127.0.0.1:9898")?;
//! println!("serving /metrics on {}", server.local_addr());
//! // ... build producers and consumers, run ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Rendering into your own server instead:
//!
//! ```no_run
//! use async_kinesis::metrics::prometheus::PrometheusExporter;
//!
//! # fn demo() -> Result<(), async_kinesis::metrics::prometheus::PrometheusError> {
//! let handle = PrometheusExporter::new().global_label("service", "billing").install()?;
//! // In the handler of your scrape route:
//! let body: String = handle.render(); // text exposition format, version 0.0.4
//! # drop(body);
//! # Ok(()) }
//! ```

mod server;

use std::fmt;
use std::net::ToSocketAddrs;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

pub use server::MetricsServer;

use super::catalog::{self, MetricKind};

/// How often histograms are folded into their buckets between scrapes, so memory stays flat
/// however rarely Prometheus scrapes.
const DEFAULT_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installing the Prometheus exporter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrometheusError {
    /// The listen address is taken by another socket (another process, or a second exporter).
    #[error("cannot serve /metrics on {addr}: the address is already in use")]
    AddressInUse {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address could not be bound (not a local address, no permission, no such
    /// host).
    #[error("cannot serve /metrics on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A recorder is installed already (a process has one global recorder; compose several with
    /// [`PrometheusExporter::build`] and a fan-out layer instead).
    #[error("a metrics recorder is already installed in this process")]
    RecorderAlreadyInstalled,
    /// Serving needs a tokio runtime: call it from inside one.
    #[error("serving /metrics needs a tokio runtime; call it from inside one")]
    NoRuntime,
}

/// Options of the Prometheus exporter; [`PrometheusExporter::new`] has this crate's buckets.
#[derive(Debug)]
pub struct PrometheusExporter {
    builder: PrometheusBuilder,
    upkeep_interval: Duration,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusExporter {
    /// The exporter with the buckets of [`catalog`](mod@super::catalog) for this crate's
    /// histograms; other histograms recorded through it are rendered as summaries.
    pub fn new() -> Self {
        let mut builder = PrometheusBuilder::new();
        for metric in catalog::catalog() {
            if metric.kind == MetricKind::Histogram {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(metric.name.to_owned()), metric.buckets)
                    // Proven invariant: every histogram of the catalog has buckets (a unit test
                    // of the catalog checks it), and only empty bounds are refused.
                    .expect("catalog histograms have buckets");
            }
        }
        Self {
            builder,
            upkeep_interval: DEFAULT_UPKEEP_INTERVAL,
        }
    }

    /// A label put on every series, e.g. the service or the worker.
    pub fn global_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.builder = self.builder.add_global_label(key, value);
        self
    }

    /// How often histograms are folded into buckets between scrapes (default 5 s).
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = interval;
        self
    }

    /// The recorder and a handle to render it, not installed: for composing with another
    /// recorder (e.g. the CloudWatch exporter's, through `metrics_util::layers::FanoutBuilder`).
    /// Call [`PrometheusHandle::run_upkeep`] now and then, or render often.
    pub fn build(self) -> (PrometheusRecorder, PrometheusHandle) {
        let recorder = self.builder.build_recorder();
        let handle = PrometheusHandle {
            inner: recorder.handle(),
        };
        let recorder = PrometheusRecorder(recorder);
        metrics::with_local_recorder(&recorder, catalog::describe);
        (recorder, handle)
    }

    /// Installs the recorder for the whole process and returns a handle to render it. Inside a
    /// tokio runtime, a task runs the upkeep; outside one, call [`PrometheusHandle::run_upkeep`]
    /// every few seconds (or render that often).
    ///
    /// # Errors
    /// [`PrometheusError::RecorderAlreadyInstalled`] when the process has a recorder already.
    pub fn install(self) -> Result<PrometheusHandle, PrometheusError> {
        let upkeep_interval = self.upkeep_interval;
        let (recorder, handle) = self.build();
        metrics::set_global_recorder(recorder)
            .map_err(|_| PrometheusError::RecorderAlreadyInstalled)?;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let upkeep = handle.clone();
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(upkeep_interval);
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
        }
        Ok(handle)
    }

    /// Installs the recorder for the whole process and serves `GET /metrics` on `addr` (e.g.
    /// `"0.0.0.0:9898"`; port 0 picks a free port, see [`MetricsServer::local_addr`]). The
    /// address is bound before the recorder is installed, so a taken address leaves nothing
    /// installed.
    ///
    /// # Errors
    /// [`PrometheusError::AddressInUse`] or [`PrometheusError::Bind`] when `addr` cannot be
    /// listened on; [`PrometheusError::RecorderAlreadyInstalled`]; [`PrometheusError::NoRuntime`]
    /// outside a tokio runtime.
    pub fn serve<A>(self, addr: A) -> Result<MetricsServer, PrometheusError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| PrometheusError::NoRuntime)?;
        let listener = server::bind(&addr)?;
        let upkeep_interval = self.upkeep_interval;
        let (recorder, handle) = self.build();
        metrics::set_global_recorder(recorder)
            .map_err(|_| PrometheusError::RecorderAlreadyInstalled)?;
        server::start(
            &runtime,
            listener,
            handle,
            upkeep_interval,
            addr.to_string(),
        )
    }
}

/// Installs the Prometheus recorder with this crate's buckets and serves `GET /metrics` on
/// `addr` (e.g. `"127.0.0.1:9898"`): `PrometheusExporter::new().serve(addr)`.
///
/// # Errors
/// See [`PrometheusExporter::serve`].
pub fn serve<A>(addr: A) -> Result<MetricsServer, PrometheusError>
where
    A: ToSocketAddrs + fmt::Display,
{
    PrometheusExporter::new().serve(addr)
}

/// Renders the metrics of a Prometheus recorder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PrometheusHandle {
    inner: metrics_exporter_prometheus::PrometheusHandle,
}

impl PrometheusHandle {
    /// Every series in the Prometheus text exposition format (version 0.0.4), with `# HELP` and
    /// `# TYPE` lines.
    pub fn render(&self) -> String {
        self.inner.render()
    }

    /// Folds recorded histogram values into their buckets (rendering does it too).
    pub fn run_upkeep(&self) {
        self.inner.run_upkeep();
    }
}

/// The Prometheus recorder, for composing with other recorders (see
/// [`PrometheusExporter::build`]).
#[derive(Debug)]
pub struct PrometheusRecorder(metrics_exporter_prometheus::PrometheusRecorder);

impl Recorder for PrometheusRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::names;

    #[test]
    fn histograms_render_with_the_catalog_buckets_and_help() {
        let (recorder, handle) = PrometheusExporter::new().build();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(names::PRODUCER_BATCH_SIZE, "stream_name" => "s", "shard_id" => "a")
                .record(250.0);
        });
        let text = handle.render();
        assert!(
            text.contains(
                "# HELP producer_batch_size Records per PutRecords call\n# TYPE producer_batch_size histogram"
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"producer_batch_size_bucket{stream_name="s",shard_id="a",le="200"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"producer_batch_size_bucket{stream_name="s",shard_id="a",le="300"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"producer_batch_size_sum{stream_name="s",shard_id="a"} 250"#),
            "{text}"
        );
    }

    #[test]
    fn counters_keep_their_names_and_global_labels_are_added() {
        let (recorder, handle) = PrometheusExporter::new()
            .global_label("service", "billing")
            .build();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!(names::CONSUMER_RECORDS_RECEIVED, "stream_name" => "s").increment(3);
        });
        let text = handle.render();
        assert!(
            text.contains(
                r#"consumer_records_received_total{service="billing",stream_name="s"} 3"#
            ),
            "{text}"
        );
    }
}
