//! The networked runs, each on a fresh stream: produce then consume (one row each), and the
//! roundtrip (producer and consumer at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_kinesis::processor::Processor;
use indicatif::ProgressBar;

use super::counters::Counters;
use super::floor::Floor;
use super::meter::{Measured, Meter};
use super::payload::{BenchItem, ItemIds, item_text, partition_key};
use super::pipeline::{self, Put, Read, SentAt};
use super::plan::Plan;
use super::report::{Row, bottleneck_note};
use super::streams::Ledger;
use crate::cli::{BenchMode, Global};
use crate::error::CliError;

/// What every networked run shares.
pub(crate) struct Bench<'a> {
    pub(crate) global: &'a Global,
    pub(crate) plan: &'a Plan,
    pub(crate) counters: Option<Arc<Counters>>,
    pub(crate) ledger: Ledger,
    pub(crate) bar: ProgressBar,
}

/// The items of a run with their partition keys.
fn items<T: BenchItem>(label: &str, plan: &Plan) -> Result<Vec<(T, String)>, CliError> {
    (0..plan.records)
        .map(|id| {
            Ok((
                T::of_text(&item_text(id, plan.record_size))?,
                partition_key(id),
            ))
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| CliError::Failed(format!("{label}: cannot make the bench items: {e}")))
}

impl Bench<'_> {
    /// Produce (timed), then read everything back (timed as the consume row).
    pub(crate) async fn sequential<P>(
        &self,
        label: &'static str,
        processor: P,
        iteration: u32,
        floor: Floor,
    ) -> Result<Vec<Row>, CliError>
    where
        P: Processor,
        P::Item: BenchItem,
        P::Output: ItemIds,
    {
        let plan = self.plan;
        let items = items::<P::Item>(label, plan)?;
        let stream = self.ledger.create(self.global, label, plan.shards).await?;
        let name = stream.stream().name().to_owned();

        self.start_bar(format!("{label}: produce"));
        let producer = pipeline::producer(self.global, &name, processor.clone()).await?;
        let meter = Meter::start(self.counters.as_ref());
        let put = pipeline::put_all(producer, items, None, plan.put_rate, self.bar.clone()).await?;
        let produced = meter.stop();

        self.start_bar(format!("{label}: consume"));
        let meter = Meter::start(self.counters.as_ref());
        let consumer = pipeline::consumer(self.global, &name, processor, None).await?;
        let done = Arc::new(AtomicBool::new(true));
        let read = pipeline::read_all(consumer, plan.records, None, done, self.bar.clone()).await?;
        let mut consumed = meter.stop();
        consumed.wall = read.finished.duration_since(meter.started());
        self.ledger.delete(&stream).await?;

        let mut rows = Vec::new();
        if plan.wants(BenchMode::Produce) {
            rows.push(self.row(
                label,
                BenchMode::Produce,
                iteration,
                &produced,
                floor.produce_us,
                &put,
                &read,
            ));
        }
        if plan.wants(BenchMode::Consume) {
            let mut row = self.row(
                label,
                BenchMode::Consume,
                iteration,
                &consumed,
                floor.consume_us,
                &put,
                &read,
            );
            row.put_latency = None;
            rows.push(row);
        }
        Ok(rows)
    }

    /// Producer and consumer at once on a fresh stream: put → receive latency.
    pub(crate) async fn roundtrip<P>(
        &self,
        label: &'static str,
        processor: P,
        iteration: u32,
        floor: Floor,
        fan_out: Option<&str>,
    ) -> Result<Row, CliError>
    where
        P: Processor,
        P::Item: BenchItem,
        P::Output: ItemIds,
    {
        let plan = self.plan;
        let items = items::<P::Item>(label, plan)?;
        let stream = self.ledger.create(self.global, label, plan.shards).await?;
        let name = stream.stream().name().to_owned();

        self.start_bar(format!("{label}: roundtrip"));
        let consumer = pipeline::consumer(self.global, &name, processor.clone(), fan_out).await?;
        consumer.ready().await?;
        let producer = pipeline::producer(self.global, &name, processor).await?;
        let meter = Meter::start(self.counters.as_ref());
        let sent_at = Arc::new(SentAt::new(meter.started(), plan.records));
        let done = Arc::new(AtomicBool::new(false));
        let writing = {
            let (sent_at, done, bar) = (sent_at.clone(), done.clone(), self.bar.clone());
            let rate = plan.put_rate;
            tokio::spawn(async move {
                let put = pipeline::put_all(producer, items, Some(sent_at), rate, bar).await;
                done.store(true, Ordering::Release);
                put
            })
        };
        let read = pipeline::read_all(
            consumer,
            plan.records,
            Some(sent_at),
            done.clone(),
            self.bar.clone(),
        )
        .await;
        let put = writing
            .await
            .map_err(|e| CliError::Failed(format!("the producer task failed: {e}")))??;
        let read = read?;
        let mut measured = meter.stop();
        measured.wall = read.finished.duration_since(meter.started());
        self.ledger.delete(&stream).await?;
        let mut row = self.row(
            label,
            BenchMode::Roundtrip,
            iteration,
            &measured,
            floor.produce_us + floor.consume_us,
            &put,
            &read,
        );
        row.end_to_end_latency = read.end_to_end;
        Ok(row)
    }

    fn start_bar(&self, message: String) {
        self.bar.reset();
        self.bar.set_length(self.plan.records);
        self.bar.set_message(message);
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        label: &'static str,
        phase: BenchMode,
        iteration: u32,
        measured: &Measured,
        floor_us: f64,
        put: &Put,
        read: &Read,
    ) -> Row {
        let plan = self.plan;
        let c = &measured.counters;
        let (records, bytes, throttles, retries, failed) = match phase {
            BenchMode::Produce => (
                c.producer_records,
                c.producer_bytes,
                c.producer_throttles,
                c.producer_retries,
                put.failed,
            ),
            BenchMode::Consume => (
                c.consumer_records,
                c.consumer_bytes,
                c.consumer_throttles,
                0,
                read.failed,
            ),
            BenchMode::Roundtrip => (
                c.producer_records,
                c.producer_bytes,
                c.producer_throttles + c.consumer_throttles,
                c.producer_retries,
                put.failed + read.failed,
            ),
        };
        let mut note = match plan.put_rate {
            // Paced on purpose: items/s is the asked rate, not a bottleneck.
            Some(rate) => Some(format!("paced at {rate} items/s by --put-rate")),
            None => bottleneck_note(throttles, measured.cores()),
        };
        let failure = match phase {
            BenchMode::Produce => put.first_failure.as_ref(),
            BenchMode::Consume => read.first_error.as_ref(),
            BenchMode::Roundtrip => put.first_failure.as_ref().or(read.first_error.as_ref()),
        };
        if let Some(failure) = failure {
            let line = format!("first failure: {failure}");
            note = Some(note.map_or(line.clone(), |n| format!("{n}; {line}")));
        }
        let user_bytes = plan.records as f64 * plan.record_size as f64;
        Row {
            processor: label,
            phase,
            iteration,
            shards: Some(plan.shards),
            items: plan.records,
            started_unix_s: measured.started_unix_s,
            seconds: measured.wall.as_secs_f64(),
            items_per_sec: measured.per_sec(plan.records as f64),
            user_mb_per_sec: measured.per_sec(user_bytes) / 1e6,
            kinesis_records: records,
            kinesis_mb_per_sec: measured.per_sec(bytes as f64) / 1e6,
            cpu_us_per_item: measured.cpu_us_per(plan.records),
            floor_us_per_item: floor_us,
            client_cores: measured.cores(),
            peak_rss_mib: measured.peak_rss_mib,
            put_latency: put.put_latency,
            end_to_end_latency: None,
            throttles,
            retries,
            failed,
            accounting: read.accounting,
            note,
        }
    }
}
