//! The supervisor: a thin loop around the [shard table](table) that feeds it events (listings,
//! the group's state, store answers, readers' ends) and performs the I/O it asks for (claims,
//! renewals, checkpoints, releases, reader tasks).

mod checkpoints;
mod leases;
mod start;

pub(crate) use start::{LATEST_SKEW_MARGIN, SHARD_BEGINNING};
mod store_backoff;
mod table;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::ack::{AckTracker, ShardAcks};
use super::context::Context;
use super::error::ConsumeError;
use super::fanout::{FanOutShard, deregister};
use super::shard_reader::{ReaderOutcome, ShardReader, StartAt};
use super::shutdown::ShutdownReport;
use crate::checkpoint::{FencingToken, Lease, Position};
use crate::error::{Error, ErrorClass};
use crate::ids::ShardId;
use crate::processor::Processor;
use crate::stream::shard::Shard;
use store_backoff::StoreBackoff;
use table::{Applied, Phase, ReaderEnd, ShardTable, Timing};

/// Requests from the consumer handle.
pub(crate) enum Command {
    Shutdown {
        deadline: Duration,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// What the supervisor holds of a running reader.
struct Reader {
    acks: Arc<ShardAcks>,
    cancel: CancellationToken,
    /// Tells a fan-out reader that a listing shows its shard closed.
    closed: watch::Sender<bool>,
}

impl Reader {
    /// Stops reading and handing out the shard's records.
    fn stop(&self) {
        self.cancel.cancel();
        self.acks.revoke();
    }
}

/// How a write to the store went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreWrite {
    Done,
    /// The lease is another worker's (or may be): the shard was given up here.
    LeaseLost,
    /// The store failed; the write is tried again later.
    StoreFailed,
}

/// What a reader task returns: its shard, the lease token it read under, how it ended.
type ReaderResult = (Arc<str>, FencingToken, ReaderEnd);

pub(crate) struct Supervisor<P: Processor> {
    ctx: Arc<Context<P>>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Cancelled when the consumer is dropped.
    cancel: CancellationToken,
    readers_cancel: CancellationToken,
    ready: watch::Sender<bool>,
    table: ShardTable<Reader>,
    /// Shards of the first listing (a LATEST start applies to them only).
    initial: HashSet<String>,
    tasks: JoinSet<ReaderResult>,
    iterators: (
        mpsc::UnboundedSender<Arc<str>>,
        mpsc::UnboundedReceiver<Arc<str>>,
    ),
    awaiting_iterator: HashSet<Arc<str>>,
    wake: Arc<Notify>,
    /// Holds checkpoint writes back while the store keeps failing.
    store_backoff: StoreBackoff,
    /// Listings failed in a row.
    listing_failures: u32,
    /// The shard listing on its way (at most one): run as a task, so a slow or throttled
    /// ListShards never holds up renewals.
    listings: JoinSet<(Instant, Result<Vec<Shard>, Error>)>,
    /// While shutting down: the errors for the [`ShutdownReport`] (nobody reads the stream's
    /// items any more).
    shutdown_errors: Option<Vec<ConsumeError>>,
}

/// The lease timing of the consumer's store.
fn lease_timing<P: Processor>(ctx: &Context<P>) -> Timing {
    let timing = ctx.store.timing();
    Timing {
        session_timeout: timing.session_timeout(),
        heartbeat: timing.heartbeat_frequency(),
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl<P: Processor> Supervisor<P> {
    pub(crate) fn new(
        ctx: Arc<Context<P>>,
        commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
        ready: watch::Sender<bool>,
    ) -> Self {
        let table = ShardTable::new(lease_timing(&ctx), ctx.config.max_shard_consumers);
        Self {
            readers_cancel: cancel.child_token(),
            ctx,
            commands,
            cancel,
            ready,
            table,
            initial: HashSet::new(),
            tasks: JoinSet::new(),
            iterators: mpsc::unbounded_channel(),
            awaiting_iterator: HashSet::new(),
            wake: Arc::new(Notify::new()),
            store_backoff: StoreBackoff::default(),
            listing_failures: 0,
            listings: JoinSet::new(),
            shutdown_errors: None,
        }
    }

    /// Tells the application: an error item, or during a shutdown an error of its report.
    fn report(&mut self, error: ConsumeError) {
        match &mut self.shutdown_errors {
            Some(errors) => {
                let shard = error.shard_id().unwrap_or("").to_owned();
                self.ctx.labels.consumer_error(&shard, error.metric_label());
                tracing::warn!(shard = %shard, error = %error, "consumer error during shutdown");
                errors.push(error);
            }
            None => self.ctx.report(error),
        }
    }

    pub(crate) async fn run(mut self) {
        if !self.initial_listing().await {
            return;
        }
        self.heartbeat().await;
        self.check_ready();
        let config = &self.ctx.config;
        let refresh_interval = config.setup.shard_refresh_interval;
        let mut next_refresh = Instant::now() + refresh_interval;
        let mut checkpoint = interval(config.checkpoint_interval);
        let heartbeat_frequency = lease_timing(&self.ctx).heartbeat;
        let mut heartbeat = interval(heartbeat_frequency);
        let mut catch_up = interval(heartbeat_frequency / 4);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { deadline, reply }) => {
                        let report = self.shutdown(deadline).await;
                        let _ = reply.send(report);
                        return;
                    }
                    None => return, // the consumer was dropped
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match joined {
                        Ok(result) => self.on_reader_end(result),
                        // Readers catch their panics; a join error is a task aborted at drop.
                        Err(err) => tracing::debug!(error = %err, "a shard reader task ended"),
                    }
                    self.claim(false).await;
                }
                Some(shard_id) = self.iterators.1.recv() => {
                    self.awaiting_iterator.remove(&shard_id);
                    self.check_ready();
                }
                () = tokio::time::sleep_until(next_refresh), if self.listings.is_empty() => {
                    self.listings.spawn(list_shards(self.ctx.clone()));
                }
                Some(joined) = self.listings.join_next(), if !self.listings.is_empty() => {
                    // A listing task that panicked counts as a failed listing (retried).
                    let (sent, listing) = joined.unwrap_or_else(|err| (Instant::now(), Err(Error::Client {
                        operation: "ListShards",
                        class: ErrorClass::Unknown,
                        source: Box::new(err),
                    })));
                    match self.refreshed(listing, sent) {
                        Some(next) => next_refresh = next,
                        None => return self.end_stream_gone().await,
                    }
                    self.claim(false).await;
                }
                // A checkpoint round may record a parent's SHARD_END: its children may start.
                _ = checkpoint.tick() => {
                    self.flush_checkpoints().await;
                    self.claim(false).await;
                }
                () = self.wake.notified() => {
                    self.flush_checkpoints().await;
                    self.claim(false).await;
                }
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = catch_up.tick(), if self.table.wants_more() => self.claim_free().await,
            }
        }
    }

    /// Lists the shards until it works; `false` when the stream does not exist, listing it
    /// failed for good, or we are told to stop (a shutdown is answered: nothing is held yet).
    async fn initial_listing(&mut self) -> bool {
        let (mut failures, mut attempts) = (0, 0);
        loop {
            let listed = tokio::select! {
                () = self.cancel.cancelled() => return false,
                command = self.commands.recv() => return self.shut_down_before_start(command),
                listed = list_shards(self.ctx.clone()) => listed,
            };
            let (sent, listed) = listed;
            attempts += 1;
            match listed {
                Ok(shards) => {
                    self.initial = shards.iter().map(|s| s.shard_id.to_string()).collect();
                    self.listed(shards, sent);
                    return true;
                }
                Err(err) => {
                    // Throttling never counts toward the retry limit: it always passes.
                    let throttled = err.class() == ErrorClass::Throttling;
                    if !throttled {
                        failures += 1;
                    }
                    let stream = self.ctx.client.stream().to_string();
                    let fatal = matches!(err, Error::StreamNotFound { .. })
                        || !(throttled || err.is_retryable())
                        || self.ctx.config.retry.gives_up_after(failures);
                    if fatal {
                        self.ctx.report(ConsumeError::Stream {
                            stream,
                            source: err,
                        });
                        return false;
                    }
                    self.ctx.labels.consumer_error("", "list_shards");
                    tracing::warn!(stream = %stream, error = %err, "listing shards failed; retrying");
                    // Every attempt grows the delay, throttled ones too.
                    let delay = self.ctx.config.jittered_backoff(attempts);
                    tokio::select! {
                        () = self.cancel.cancelled() => return false,
                        command = self.commands.recv() => return self.shut_down_before_start(command),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// A shutdown asked for before the first listing: nothing is held or registered yet.
    fn shut_down_before_start(&mut self, command: Option<Command>) -> bool {
        if let Some(Command::Shutdown { reply, .. }) = command {
            let _ = reply.send(ShutdownReport::default());
        }
        false
    }

    /// The answer to a re-listing of the shards; the time of the next listing, or `None` when
    /// the stream is gone. Any other failure keeps the shards known so far and is retried with
    /// a growing, jittered delay (at most the refresh interval).
    fn refreshed(&mut self, listing: Result<Vec<Shard>, Error>, sent: Instant) -> Option<Instant> {
        let interval = self.ctx.config.setup.shard_refresh_interval;
        match listing {
            Ok(shards) => {
                self.listing_failures = 0;
                self.listed(shards, sent);
                Some(Instant::now() + interval)
            }
            Err(err) if matches!(err, Error::StreamNotFound { .. }) => {
                self.report(ConsumeError::Stream {
                    stream: self.ctx.client.stream().to_string(),
                    source: err,
                });
                None
            }
            Err(err) => {
                self.listing_failures += 1;
                let stream = self.ctx.client.stream().to_string();
                if self.listing_failures == 1 && !err.is_retryable() {
                    // Tell the application once per outage (e.g. an expired token); reading
                    // goes on with the shards known.
                    self.report(ConsumeError::Stream {
                        stream,
                        source: err,
                    });
                } else {
                    self.ctx.labels.consumer_error("", "list_shards");
                    tracing::warn!(stream = %stream, error = %err, failures = self.listing_failures,
                        "listing shards failed; keeping the shards known and retrying");
                }
                let delay = self.ctx.config.jittered_backoff(self.listing_failures);
                Some(Instant::now() + delay.min(interval))
            }
        }
    }

    /// Feeds a full listing (asked for at `sent`) to the table; forgets the shards gone from it.
    fn listed(&mut self, mut shards: Vec<Shard>, sent: Instant) {
        if let Some(only) = &self.ctx.config.only_shards {
            shards.retain(|shard| only.contains(shard.shard_id.as_str()));
        }
        let merged = self.table.listed(shards, sent);
        let known = self.table.shards();
        for (shard_id, _, held) in self.table.leases() {
            if known.get(shard_id).is_some_and(|shard| !shard.is_open()) {
                held.handle
                    .closed
                    .send_if_modified(|closed| !std::mem::replace(closed, true));
            }
        }
        for shard_id in &merged.pruned {
            tracing::debug!(shard = %shard_id, "shard left the listing; forgotten");
            self.ctx.labels.forget_consumer_shard(shard_id);
        }
        self.ctx.status.forget(&merged.pruned);
        self.publish_shards(merged.new_children);
    }

    /// Shows the known shards in the status and the shard gauges.
    fn publish_shards(&self, new_children: bool) {
        let shards = self.table.shards();
        self.ctx.status.set_shards(&shards, self.table.topology());
        let open = shards.values().filter(|s| s.is_open()).count();
        self.ctx
            .labels
            .shards(open, shards.len() - open, new_children);
    }

    /// Starts a reader for a claimed shard.
    fn start_reader(&mut self, lease: Lease, sent: Instant, start: StartAt) {
        let ctx = &self.ctx;
        let shard_id: Arc<str> = lease.shard_id.clone().into();
        let written = match &start {
            StartAt::Resume(position) => Some(position.clone()),
            _ => None,
        };
        let session = lease_timing(ctx).session_timeout;
        let acks = Arc::new(ShardAcks::new(
            AckTracker::resuming(written.clone()),
            self.wake.clone(),
            ctx.config.checkpoint_every,
            sent + session,
        ));
        let cancel = self.readers_cancel.child_token();
        let is_closed = self
            .table
            .shards()
            .get(shard_id.as_ref())
            .is_some_and(|shard| !shard.is_open());
        let (closed, closed_rx) = watch::channel(is_closed);
        let fan_out = ctx.fan_out_arn.clone().map(|consumer_arn| FanOutShard {
            consumer_arn,
            closed: closed_rx,
        });
        let reader = ShardReader::new(
            ctx.clone(),
            shard_id.clone(),
            acks.clone(),
            cancel.clone(),
            start,
        )
        .with_fan_out(fan_out);
        let token = lease.token;
        let handle = Reader {
            acks,
            cancel,
            closed,
        };
        if !self.table.reading(&shard_id, lease, sent, handle) {
            return; // not being claimed any more (cannot happen between claim and start)
        }
        ctx.status.shard(&shard_id, |s| {
            s.allocated = true;
            s.stopped = false;
            s.last_checkpoint = written;
        });
        tracing::debug!(shard = %shard_id, "starting shard reader");
        self.awaiting_iterator.insert(shard_id.clone());
        let iterators = self.iterators.0.clone();
        let name = shard_id.clone();
        self.tasks.spawn(async move {
            let run = reader.run(move || {
                let _ = iterators.send(name);
            });
            let end = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(ReaderOutcome::Ended { children }) => ReaderEnd::Ended { children },
                Ok(ReaderOutcome::Stopped) => ReaderEnd::Stopped,
                Ok(ReaderOutcome::Gone) => ReaderEnd::Gone,
                Ok(ReaderOutcome::Cancelled) => ReaderEnd::Cancelled,
                Err(payload) => ReaderEnd::Panicked(panic_message(&*payload)),
            };
            (shard_id, token, end)
        });
        self.ctx.labels.lease_taken(self.table.working());
    }

    /// Marks a shard finished (read to its end, here or elsewhere) in the status.
    fn show_finished(&self, shard_id: &str) {
        self.ctx.status.shard(shard_id, |s| s.finished = true);
        self.lease_left(shard_id);
    }

    /// The shard's lease is no longer this worker's: the status says so, and its per-shard
    /// gauges are zeroed (a recorder keeps a series' last value, so a stale unacknowledged age
    /// would keep an alert firing for a shard read elsewhere now).
    fn lease_left(&self, shard_id: &str) {
        self.ctx.status.shard(shard_id, |s| s.allocated = false);
        self.ctx.labels.forget_consumer_shard(shard_id);
    }

    fn on_reader_end(&mut self, (shard_id, token, mut end): ReaderResult) {
        self.awaiting_iterator.remove(&shard_id);
        self.check_ready();
        let panic = match &end {
            ReaderEnd::Panicked(message) => Some(message.clone()),
            _ => None,
        };
        if let (ReaderEnd::Ended { children }, Some(only)) =
            (&mut end, &self.ctx.config.only_shards)
        {
            // The children a shard's end names are subject to `only_shards` like a listing's.
            children.retain(|child| only.contains(child.shard_id.as_str()));
        }
        let ended = matches!(end, ReaderEnd::Ended { .. });
        match self
            .table
            .reader_ended(&shard_id, token, end, Instant::now())
        {
            Applied::Nothing => {
                if let Some(message) = panic {
                    // A reader of an earlier lease of the shard (stopped, its lease lost or
                    // handed off): the shard is read on, but the panic is not kept quiet.
                    self.report(ConsumeError::ReaderPanicked {
                        shard_id: ShardId::from(&shard_id),
                        message,
                    });
                }
            }
            Applied::Changed { new_children } => {
                if ended || new_children {
                    tracing::info!(shard = %shard_id, "shard read to its end");
                    self.publish_shards(new_children);
                }
            }
            Applied::GivingUp => {
                if let Some(held) = self.table.held(&shard_id) {
                    held.handle.stop();
                }
                self.ctx.status.shard(&shard_id, |s| {
                    s.stopped = true;
                    s.has_iterator = false;
                });
                self.report(ConsumeError::ReaderPanicked {
                    shard_id: ShardId::from(&shard_id),
                    message: panic.unwrap_or_default(),
                });
            }
        }
        if self.table.phase(&shard_id) == Some(Phase::Draining)
            && let Some(held) = self.table.held(&shard_id)
        {
            // Its last acknowledgement wakes the checkpoint writer to record SHARD_END (its
            // children wait for it); nothing of it is pending maybe: try at once.
            held.handle.acks.set_drained();
            self.wake.notify_one();
        }
    }

    fn check_ready(&self) {
        if self.awaiting_iterator.is_empty() && !*self.ready.borrow() {
            let _ = self.ready.send(true);
        }
    }

    /// The stream was deleted: the consumer ends through the shutdown path (final checkpoints,
    /// leases released, the group left), after the error item that says why.
    async fn end_stream_gone(&mut self) {
        let grace = lease_timing(&self.ctx).heartbeat / 2;
        let report = self.shutdown(grace).await;
        for error in report.errors {
            self.report(error);
        }
    }

    /// Stops fetching, waits (up to `deadline`) for handed-out records to be acknowledged,
    /// writes the final checkpoints and releases every lease.
    /// Leases are renewed while it waits, so a long deadline does not let another worker take
    /// a shard whose final checkpoint is still to come; errors on the way are the report's.
    async fn shutdown(&mut self, deadline: Duration) -> ShutdownReport {
        self.shutdown_errors = Some(Vec::new());
        let until = Instant::now().checked_add(deadline);
        self.readers_cancel.cancel();
        self.listings.abort_all();
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok(result) = joined {
                self.on_reader_end(result);
            }
        }
        let mut renew = interval(lease_timing(&self.ctx).heartbeat);
        loop {
            self.flush_checkpoints().await;
            let all_acked = self
                .table
                .leases()
                .all(|(_, _, held)| held.handle.acks.all_handed_out_acked());
            if all_acked || until.is_some_and(|until| Instant::now() >= until) {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20).min(deadline)) => {}
                _ = renew.tick() => self.renew_leases().await,
            }
        }
        // The last chance to write them: not held back by an earlier failure.
        self.write_checkpoints().await;
        let mut report = ShutdownReport::default();
        let held = self.table.take_all();
        let store = self.ctx.store.clone();
        let answers = together(
            held.iter()
                .map(|(_, held)| store.release(&held.lease))
                .collect(),
        )
        .await;
        report.errors = self.shutdown_errors.take().unwrap_or_default();
        for ((shard_id, held), answer) in held.into_iter().zip(answers) {
            report.unacked_records += held.handle.acks.unacked_handed_out();
            match answer {
                Ok(()) => report.leases_released += 1,
                Err(source) => report.errors.push(ConsumeError::Checkpoint {
                    shard_id: shard_id.into(),
                    source,
                }),
            }
        }
        self.ctx.labels.leases_held(0);
        let ctx = &self.ctx;
        if let Err(err) = ctx.store.leave(&ctx.stream_name, &ctx.worker).await {
            tracing::warn!(error = %err, "leaving the group failed; it expires with the session");
        }
        report.shards_finished = self.table.count_phase(Phase::Ended);
        if let Some(arn) = ctx
            .fan_out_arn
            .as_deref()
            .filter(|_| ctx.config.deregister_on_shutdown)
            && let Err(source) = deregister(&ctx.client, arn).await
        {
            report.errors.push(ConsumeError::Stream {
                stream: ctx.client.stream().to_string(),
                source,
            });
        }
        report
    }
}

/// Lists the stream's shards (as a task of its own, or raced against a shutdown); answers
/// when the listing was asked for with it. A listing that takes longer than `describe_timeout`
/// fails as a timeout (and is retried) rather than holding every later listing back.
async fn list_shards<P: Processor>(ctx: Arc<Context<P>>) -> (Instant, Result<Vec<Shard>, Error>) {
    let sent = Instant::now();
    let listing = ctx.config.setup.listing;
    let timeout = ctx.config.setup.describe_timeout;
    let listed = match tokio::time::timeout(timeout, ctx.client.list_shards_with(listing)).await {
        Ok(listed) => listed,
        Err(elapsed) => Err(Error::Client {
            operation: "ListShards",
            class: ErrorClass::Timeout,
            source: Box::new(elapsed),
        }),
    };
    (sent, listed)
}

/// Store calls of a round, sent together so a slow store costs one call's time rather than one
/// per shard; at most this many at once, so a large group does not open a connection per shard.
const STORE_CALLS_IN_FLIGHT: usize = 32;

/// Runs `calls` concurrently (bounded); the answers in the calls' order. (A `Vec`, not an
/// iterator: a borrowing closure kept in the supervisor's future would make it not `Send`.)
async fn together<F: Future>(calls: Vec<F>) -> Vec<F::Output> {
    futures::stream::iter(calls)
        .buffered(STORE_CALLS_IN_FLIGHT)
        .collect()
        .await
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The position a shard's checkpoint would move to now, its unacknowledged records, and when
/// the oldest of them was read.
fn ack_state(acks: &ShardAcks) -> (Option<Position>, usize, Option<Instant>) {
    let tracker = acks.lock();
    (
        tracker.to_write().cloned(),
        tracker.outstanding(),
        tracker.oldest_unacked().map(|(_, read_at)| read_at),
    )
}
