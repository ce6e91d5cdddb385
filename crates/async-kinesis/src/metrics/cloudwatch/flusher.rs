//! The exporter's task: drains histograms every second, sends each period's data in
//! PutMetricData calls, keeps what failed for the next period (bounded), and says once per
//! period what went wrong. The only code of the exporter that does I/O.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::collect::Collector;
use super::datum::{Datum, DatumValue, into_calls};
use super::recorder::AtomicRegistry;
use super::{ExportStats, Settings};
use crate::error::Error;
use crate::metrics::catalog::MetricUnit;
use crate::metrics::names;

/// Histogram samples are moved out of the lock-free buckets this often.
const DRAIN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) enum Command {
    Flush(oneshot::Sender<ExportStats>),
    Shutdown(oneshot::Sender<ExportStats>),
}

/// Counts shared with the handles.
#[derive(Debug, Default)]
pub(super) struct Counts {
    calls: AtomicU64,
    failed_calls: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicU64,
}

impl Counts {
    pub(super) fn snapshot(&self) -> ExportStats {
        ExportStats {
            calls: self.calls.load(Ordering::Relaxed),
            failed_calls: self.failed_calls.load(Ordering::Relaxed),
            data_sent: self.sent.load(Ordering::Relaxed),
            data_dropped: self.dropped.load(Ordering::Relaxed),
            data_pending: self.pending.load(Ordering::Relaxed),
        }
    }
}

pub(super) struct Flusher {
    pub(super) client: aws_sdk_cloudwatch::Client,
    pub(super) settings: Settings,
    pub(super) registry: Arc<AtomicRegistry>,
    pub(super) collector: Collector,
    pub(super) counts: Arc<Counts>,
    /// Data of failed calls, oldest first, sent again with the next period.
    pub(super) retained: VecDeque<Datum>,
}

/// What one period's sending came to.
#[derive(Debug, Default)]
struct Round {
    calls: u64,
    failed: u64,
    kept: usize,
    dropped: u64,
    first_error: Option<Error>,
}

impl Flusher {
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let period = self.settings.flush_interval;
        let mut drain = tokio::time::interval(DRAIN_INTERVAL.min(period));
        drain.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval_at(Instant::now() + period, period);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut handles_gone = false;
        loop {
            tokio::select! {
                _ = drain.tick() => self.collector.drain(&self.registry),
                _ = flush.tick() => self.flush().await,
                command = commands.recv(), if !handles_gone => match command {
                    Some(Command::Flush(reply)) => {
                        self.flush().await;
                        let _ = reply.send(self.counts.snapshot());
                    }
                    Some(Command::Shutdown(reply)) => {
                        self.flush().await;
                        let _ = reply.send(self.counts.snapshot());
                        return;
                    }
                    // Every handle is gone: export on until the runtime ends.
                    None => handles_gone = true,
                },
            }
        }
    }

    /// Sends the period's data (after what was kept from failed calls).
    async fn flush(&mut self) {
        let period = self.collector.collect(&self.registry, SystemTime::now());
        let mut round = Round {
            dropped: period.refused,
            ..Round::default()
        };
        let mut data: Vec<Datum> = self.retained.drain(..).collect();
        data.extend(period.data);
        let mut calls = into_calls(data).into_iter();
        while let Some(call) = calls.next() {
            round.calls += 1;
            let Err(error) = self.send(&call).await else {
                self.counts
                    .sent
                    .fetch_add(call.len() as u64, Ordering::Relaxed);
                continue;
            };
            round.failed += 1;
            if error.is_retryable() {
                // CloudWatch is unreachable or busy: the rest waits for the next period too.
                round.kept += call.len();
                self.retained.extend(call);
                for call in calls.by_ref() {
                    round.kept += call.len();
                    self.retained.extend(call);
                }
            } else {
                // Refused (access denied, invalid): sending it again would be refused again.
                round.dropped += call.len() as u64;
            }
            round.first_error.get_or_insert(error);
        }
        let over = self
            .retained
            .len()
            .saturating_sub(self.settings.max_retained);
        if over > 0 {
            self.retained.drain(..over);
            round.kept -= over.min(round.kept);
            round.dropped += over as u64;
        }
        self.account(round);
    }

    fn account(&self, round: Round) {
        let counts = &self.counts;
        counts.calls.fetch_add(round.calls, Ordering::Relaxed);
        counts
            .failed_calls
            .fetch_add(round.failed, Ordering::Relaxed);
        counts.dropped.fetch_add(round.dropped, Ordering::Relaxed);
        counts
            .pending
            .store(self.retained.len() as u64, Ordering::Relaxed);
        if round.failed > 0 {
            metrics::counter!(names::CLOUDWATCH_EXPORT_FAILURES).increment(round.failed);
        }
        if round.dropped > 0 {
            metrics::counter!(names::CLOUDWATCH_EXPORT_DROPPED).increment(round.dropped);
        }
        // One line per period, however many calls failed.
        if let Some(error) = round.first_error {
            tracing::warn!(
                namespace = %self.settings.namespace,
                failed_calls = round.failed,
                calls = round.calls,
                kept_for_next_period = round.kept,
                dropped = round.dropped,
                error = %error,
                "exporting metrics to CloudWatch failed"
            );
        } else if round.dropped > 0 {
            tracing::warn!(
                namespace = %self.settings.namespace,
                dropped = round.dropped,
                "metric values CloudWatch cannot store (not finite, or too large) were left out"
            );
        }
    }

    async fn send(&self, call: &[Datum]) -> Result<(), Error> {
        let resolution = if self.settings.high_resolution { 1 } else { 60 };
        let request = self
            .client
            .put_metric_data()
            .namespace(&self.settings.namespace)
            .set_metric_data(Some(
                call.iter().map(|d| sdk_datum(d, resolution)).collect(),
            ));
        match tokio::time::timeout(self.settings.call_timeout, request.send()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(Error::from_sdk(
                "PutMetricData",
                "",
                &self.settings.endpoint,
                err,
            )),
            Err(_) => Err(Error::Unreachable {
                operation: "PutMetricData",
                endpoint: self.settings.endpoint.clone(),
                source: format!("no answer within {:?}", self.settings.call_timeout).into(),
            }),
        }
    }
}

fn sdk_datum(datum: &Datum, resolution: i32) -> MetricDatum {
    let dimensions = datum
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    let builder = MetricDatum::builder()
        .metric_name(&datum.name)
        .set_dimensions(Some(dimensions))
        .timestamp(DateTime::from(datum.timestamp))
        .storage_resolution(resolution)
        .set_unit(datum.unit.map(standard_unit));
    match &datum.value {
        DatumValue::Single(value) => builder.value(*value),
        DatumValue::Distribution { values, counts } => builder
            .set_values(Some(values.clone()))
            .set_counts(Some(counts.clone())),
    }
    .build()
}

fn standard_unit(unit: MetricUnit) -> StandardUnit {
    match unit {
        MetricUnit::Count => StandardUnit::Count,
        MetricUnit::Bytes => StandardUnit::Bytes,
        MetricUnit::Seconds => StandardUnit::Seconds,
        MetricUnit::Milliseconds => StandardUnit::Milliseconds,
    }
}
