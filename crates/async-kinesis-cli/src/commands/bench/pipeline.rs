//! The networked parts of a run: the producer putting every item and awaiting its receipt, and
//! the consumer reading until every item came back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_kinesis::consumer::{Consumer, IteratorType};
use async_kinesis::processor::Processor;
use async_kinesis::producer::{Producer, Receipt};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::ProgressBar;

use super::latency::{Latencies, Percentiles};
use super::payload::ItemIds;
use super::tally::{Accounting, Tally};
use crate::cli::Global;
use crate::error::{CliError, one_line};

/// Progress is shown every this many items.
const PROGRESS_EVERY: u64 = 1_024;
/// How often the reader checks whether it is done.
const TICK: Duration = Duration::from_millis(250);
/// Read up to the tip this long, with items still missing, and they count as lost.
const AT_TIP_GRACE: Duration = Duration::from_secs(3);
/// Nothing new for this long, and the read ends whatever the consumer says.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// A producer for the bench: the producer's own per-shard limits are lifted, so the
/// endpoint's pace (and its throttling, which is counted) is what is measured.
pub(crate) async fn producer<P: Processor>(
    global: &Global,
    stream: &str,
    processor: P,
) -> Result<Producer<P>, CliError> {
    Ok(Producer::builder(stream)
        .connect_options(global.connect_options())
        .processor(processor)
        .put_rate_limit_per_shard(1_000_000)
        .put_bandwidth_limit_per_shard(1_000_000)
        .buffer_time(Duration::from_millis(100))
        .build()
        .await?)
}

/// A consumer for the bench, from the oldest record on, polling as fast as Kinesis allows, or
/// over enhanced fan-out as the stream consumer `fan_out`.
pub(crate) async fn consumer<P: Processor>(
    global: &Global,
    stream: &str,
    processor: P,
    fan_out: Option<&str>,
) -> Result<Consumer<P>, CliError> {
    let builder = Consumer::builder(stream)
        .connect_options(global.connect_options())
        .processor(processor)
        .iterator_type(IteratorType::TrimHorizon)
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100));
    let builder = match fan_out {
        Some(name) => builder.enhanced_fan_out(name),
        None => builder,
    };
    Ok(builder.build().await?)
}

/// When each item was put, for end-to-end latency: nanoseconds since a base instant, plus one
/// (zero: not put yet).
#[derive(Debug)]
pub(crate) struct SentAt {
    base: Instant,
    nanos: Vec<AtomicU64>,
}

impl SentAt {
    pub(crate) fn new(base: Instant, items: u64) -> Self {
        Self {
            base,
            nanos: (0..items).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn mark(&self, id: u64, at: Instant) {
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| self.nanos.get(i)) {
            let nanos = u64::try_from(at.duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
            slot.store(nanos.saturating_add(1), Ordering::Relaxed);
        }
    }

    fn since(&self, id: u64, now: Instant) -> Option<Duration> {
        let nanos = self
            .nanos
            .get(usize::try_from(id).ok()?)?
            .load(Ordering::Relaxed)
            .checked_sub(1)?;
        Some(now.duration_since(self.base + Duration::from_nanos(nanos)))
    }
}

/// What putting every item did.
#[derive(Debug)]
pub(crate) struct Put {
    pub(crate) put_latency: Option<Percentiles>,
    /// Items refused at `put` or whose receipt was an error.
    pub(crate) failed: u64,
    pub(crate) first_failure: Option<String>,
}

/// Puts every item with its key and awaits every receipt; closes the producer.
pub(crate) async fn put_all<P: Processor>(
    producer: Producer<P>,
    items: Vec<(P::Item, String)>,
    sent_at: Option<Arc<SentAt>>,
    put_rate: Option<u32>,
    bar: ProgressBar,
) -> Result<Put, CliError> {
    let expected = items.len();
    let began = tokio::time::Instant::now();
    // Receipts are awaited by a second task, so putting never waits on them.
    let (receipts, incoming) = tokio::sync::mpsc::unbounded_channel();
    let settle = tokio::spawn(settle_receipts::<P::Item>(incoming, expected));
    let mut failed = 0u64;
    let mut first_failure = None;
    for (id, (item, key)) in (0u64..).zip(items) {
        if let Some(rate) = put_rate {
            let due = Duration::from_secs_f64(id as f64 / f64::from(rate));
            tokio::time::sleep_until(began + due).await;
        }
        let started = Instant::now();
        if let Some(sent_at) = &sent_at {
            sent_at.mark(id, started);
        }
        match producer.put_with_key(item, key).await {
            Ok(receipt) => {
                // The settling task lives until the sender is dropped.
                let _ = receipts.send((started, receipt));
            }
            Err(err) => {
                failed += 1;
                first_failure.get_or_insert_with(|| one_line(err.kind()));
            }
        }
        if id % PROGRESS_EVERY == 0 {
            bar.set_message(format!("{id} put"));
        }
    }
    drop(receipts);
    let closed = producer.close().await;
    let settled = settle
        .await
        .map_err(|e| CliError::Failed(format!("the receipt task failed: {e}")))?;
    closed?;
    Ok(Put {
        put_latency: settled.latencies.percentiles(),
        failed: failed + settled.failed,
        first_failure: first_failure.or(settled.first_failure),
    })
}

struct Settled {
    latencies: Latencies,
    failed: u64,
    first_failure: Option<String>,
}

async fn settle_receipts<T: Send + 'static>(
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<(Instant, Receipt<T>)>,
    expected: usize,
) -> Settled {
    let mut settled = Settled {
        latencies: Latencies::with_capacity(expected),
        failed: 0,
        first_failure: None,
    };
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            next = incoming.recv(), if open => match next {
                Some((started, receipt)) => pending.push(async move {
                    let result = receipt.await;
                    (started.elapsed(), result)
                }),
                None => open = false,
            },
            Some((latency, result)) = pending.next(), if !pending.is_empty() => match result {
                Ok(_) => settled.latencies.push(latency),
                Err(err) => {
                    settled.failed += 1;
                    settled.first_failure.get_or_insert_with(|| one_line(err.kind()));
                }
            },
            else => break,
        }
    }
    settled
}

/// What reading the stream did.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) accounting: Accounting,
    pub(crate) end_to_end: Option<Percentiles>,
    /// Error items of the consumer.
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    /// When the last missing item arrived (or reading gave up).
    pub(crate) finished: Instant,
}

/// Reads until all `expected` items came back; or, once `writing_done` says so, until the
/// consumer was at the tip for a while with items still missing (they are lost); or after a
/// long time without anything new. Shuts the consumer down.
pub(crate) async fn read_all<P>(
    mut consumer: Consumer<P>,
    expected: u64,
    sent_at: Option<Arc<SentAt>>,
    writing_done: Arc<AtomicBool>,
    bar: ProgressBar,
) -> Result<Read, CliError>
where
    P: Processor,
    P::Output: ItemIds,
{
    let mut tally = Tally::new(expected);
    let mut latencies = Latencies::with_capacity(if sent_at.is_some() {
        usize::try_from(expected).unwrap_or(0)
    } else {
        0
    });
    let mut failed = 0u64;
    let mut first_error = None;
    let mut tick = tokio::time::interval(TICK);
    let mut last_progress = (0u64, Instant::now());
    let mut at_tip_since: Option<Instant> = None;
    let mut read_error = None;
    while !tally.complete() {
        tokio::select! {
            biased;
            item = consumer.next() => match item {
                Some(Ok(record)) => {
                    let now = Instant::now();
                    record.item.ids(|id| {
                        tally.see(id);
                        if let (Some(sent_at), Some(id)) = (&sent_at, id)
                            && let Some(latency) = sent_at.since(id, now)
                        {
                            latencies.push(latency);
                        }
                    });
                }
                Some(Err(err)) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| one_line(&err));
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                bar.set_position(tally.unique());
                if tally.unique() > last_progress.0 {
                    last_progress = (tally.unique(), now);
                } else if now.duration_since(last_progress.1) >= IDLE_LIMIT {
                    break;
                }
                if !writing_done.load(Ordering::Acquire) {
                    continue;
                }
                match consumer.caught_up().await {
                    Ok(true) => {
                        let since = *at_tip_since.get_or_insert(now);
                        if now.duration_since(since) >= AT_TIP_GRACE {
                            break;
                        }
                    }
                    Ok(false) => at_tip_since = None,
                    Err(err) => {
                        read_error = Some(err);
                        break;
                    }
                }
            }
        }
    }
    let finished = Instant::now();
    bar.set_position(tally.unique());
    let report = consumer.shutdown(Duration::from_secs(10)).await;
    if let Some(err) = read_error {
        return Err(CliError::Failed(one_line(&err)));
    }
    if first_error.is_none() {
        first_error = report.errors.first().map(|e| one_line(e));
    }
    Ok(Read {
        accounting: tally.accounting(),
        end_to_end: latencies.percentiles(),
        failed,
        first_error,
        finished,
    })
}
