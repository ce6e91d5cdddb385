//! The supervisor: discovers shards, claims leases up to this worker's fair share, runs one
//! reader task per shard in parent→child order, writes checkpoints, renews and hands off leases,
//! and shuts down.

mod leases;
mod store_backoff;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::ack::{AckTracker, ShardAcks};
use super::config::IteratorType;
use super::context::Context;
use super::error::ConsumeError;
use super::shard_reader::{ReaderOutcome, ShardReader, StartAt};
use super::shutdown::ShutdownReport;
use super::topology::Topology;
use crate::checkpoint::{CheckpointError, Claim, Lease, Position, Progress};
use crate::error::Error;
use crate::processor::Processor;
use crate::shard::Shard;
use crate::stream::ShardListing;
use store_backoff::StoreBackoff;

/// Requests from the consumer handle.
pub(crate) enum Command {
    Shutdown {
        deadline: Duration,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// Where a shard stands in this process.
enum ShardState {
    /// Not started: parents not ended, not claimed yet, or held by another worker.
    Waiting,
    /// Being read here.
    Running(Owned),
    /// Read to its end here; waiting for its records to be acknowledged before SHARD_END.
    Draining(Owned),
    /// Stopped by an error (reported); its acknowledged records are still checkpointed.
    Stopped(Owned),
    /// Given up for another worker (above our fair share): not read and not handed out any more;
    /// the records already handed out get until the instant to be acknowledged, then the
    /// checkpoint is written and the lease released.
    HandingOff(Owned, Instant),
    /// Done: SHARD_END recorded, or nothing to read (closed before a LATEST start).
    Finished,
}

/// A held lease. Until when it is surely ours (the last successful claim or renewal was *sent*
/// one session timeout before) lives in its `acks`, which hand nothing out after that.
struct Owned {
    lease: Lease,
    acks: Arc<ShardAcks>,
    cancel: CancellationToken,
}

/// How a write to the store went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Done,
    /// The lease is another worker's (or may be): the shard was given up here.
    LeaseLost,
    /// The store failed; the write is tried again later.
    StoreFailed,
}

impl ShardState {
    fn owned(&self) -> Option<&Owned> {
        match self {
            Self::Running(o) | Self::Draining(o) | Self::Stopped(o) | Self::HandingOff(o, _) => {
                Some(o)
            }
            Self::Waiting | Self::Finished => None,
        }
    }

    /// Counts toward this worker's share: held and not given up or read to its end.
    fn holds_work(&self) -> bool {
        matches!(self, Self::Running(_) | Self::Stopped(_))
    }

    /// Read to its end, here or elsewhere: children may go.
    fn ended(&self) -> bool {
        matches!(self, Self::Draining(_) | Self::Finished)
    }
}

pub(crate) struct Supervisor<P: Processor> {
    ctx: Arc<Context<P>>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Cancelled when the consumer is dropped.
    cancel: CancellationToken,
    readers_cancel: CancellationToken,
    ready: watch::Sender<bool>,
    shards: BTreeMap<String, Shard>,
    topology: Topology,
    /// Shards of the first listing (a LATEST start applies to them only).
    initial: HashSet<String>,
    states: BTreeMap<String, ShardState>,
    tasks: JoinSet<(Arc<str>, ReaderOutcome)>,
    iterators: (
        mpsc::UnboundedSender<Arc<str>>,
        mpsc::UnboundedReceiver<Arc<str>>,
    ),
    awaiting_iterator: HashSet<Arc<str>>,
    wake: Arc<Notify>,
    /// This worker's fair share of the readable shards, from the last balance.
    target: usize,
    /// Holds checkpoint writes back while the store keeps failing.
    store_backoff: StoreBackoff,
}

impl<P: Processor> Supervisor<P> {
    pub(crate) fn new(
        ctx: Arc<Context<P>>,
        commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
        ready: watch::Sender<bool>,
    ) -> Self {
        Self {
            readers_cancel: cancel.child_token(),
            ctx,
            commands,
            cancel,
            ready,
            shards: BTreeMap::new(),
            topology: Topology::default(),
            initial: HashSet::new(),
            states: BTreeMap::new(),
            tasks: JoinSet::new(),
            iterators: mpsc::unbounded_channel(),
            awaiting_iterator: HashSet::new(),
            wake: Arc::new(Notify::new()),
            target: usize::MAX,
            store_backoff: StoreBackoff::default(),
        }
    }

    pub(crate) async fn run(mut self) {
        if !self.initial_listing().await {
            return;
        }
        self.heartbeat().await;
        self.check_ready();
        let config = &self.ctx.config;
        let mut refresh = interval(config.shard_refresh_interval);
        let mut checkpoint = interval(config.checkpoint_interval);
        let heartbeat_frequency = self.ctx.store.timing().heartbeat_frequency();
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
                        Ok((shard_id, outcome)) => self.on_reader_end(&shard_id, outcome),
                        Err(err) => tracing::error!(error = %err, "a shard reader panicked"),
                    }
                    self.schedule().await;
                }
                Some(shard_id) = self.iterators.1.recv() => {
                    self.awaiting_iterator.remove(&shard_id);
                    self.check_ready();
                }
                _ = refresh.tick() => {
                    if !self.refresh().await {
                        return;
                    }
                    self.schedule().await;
                }
                _ = checkpoint.tick() => self.flush_checkpoints().await,
                () = self.wake.notified() => self.flush_checkpoints().await,
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = catch_up.tick(), if self.held() < self.target => self.claim_free().await,
            }
        }
    }

    /// Lists the shards until it works; `false` when the stream does not exist or we are told
    /// to stop.
    async fn initial_listing(&mut self) -> bool {
        let mut failures = 0;
        loop {
            match self.list().await {
                Ok(shards) => {
                    self.initial = shards.iter().map(|s| s.shard_id.clone()).collect();
                    self.merge(shards);
                    return true;
                }
                Err(err) => {
                    failures += 1;
                    if !self.listing_failed(err, failures) {
                        return false;
                    }
                    let delay = self.ctx.config.backoff(failures);
                    tokio::select! {
                        () = self.cancel.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Reports a listing failure; `false` when it is final (the stream is gone).
    fn listing_failed(&self, err: Error, failures: u32) -> bool {
        let stream = self.ctx.client.stream().to_string();
        let fatal = matches!(err, Error::StreamNotFound { .. }) || !err.is_retryable();
        if fatal || self.ctx.config.retry_limit.is_some_and(|l| failures >= l) {
            self.ctx.report(ConsumeError::Stream {
                stream,
                source: err,
            });
        } else {
            self.ctx.labels.consumer_error("", "list_shards");
            tracing::warn!(stream = %stream, error = %err, "listing shards failed; retrying");
        }
        !fatal
    }

    async fn list(&self) -> Result<Vec<Shard>, Error> {
        let listing = ShardListing {
            use_list_shards: self.ctx.config.use_list_shards,
            ..ShardListing::default()
        };
        self.ctx.client.list_shards_with(listing).await
    }

    /// Re-lists the shards; `false` when the stream is gone.
    async fn refresh(&mut self) -> bool {
        match self.list().await {
            Ok(shards) => self.merge(shards),
            Err(err) => {
                if !self.listing_failed(err, 1) {
                    self.readers_cancel.cancel();
                    return false;
                }
            }
        }
        true
    }

    /// Adds newly seen shards and updates known ones.
    fn merge(&mut self, mut shards: Vec<Shard>) {
        if let Some(only) = &self.ctx.config.only_shards {
            shards.retain(|shard| only.contains(&shard.shard_id));
        }
        let mut new_children = false;
        for shard in shards {
            self.states
                .entry(shard.shard_id.clone())
                .or_insert(ShardState::Waiting);
            match self.shards.get_mut(&shard.shard_id) {
                // ChildShards gives no sequence range; the listing does.
                Some(known) => *known = shard,
                None => {
                    new_children |= shard.parent_shard_id.is_some();
                    self.shards.insert(shard.shard_id.clone(), shard);
                }
            }
        }
        self.topology = Topology::build(self.shards.values());
        self.ctx.status.set_shards(&self.shards, &self.topology);
        let open = self.shards.values().filter(|s| s.is_open()).count();
        self.ctx
            .labels
            .shards(open, self.shards.len() - open, new_children);
    }

    /// Starts shards that may start until this worker holds its share.
    async fn schedule(&mut self) {
        let candidates: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| matches!(s, ShardState::Waiting))
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in candidates {
            if self.held() >= self.target {
                return;
            }
            if self.can_start(&shard_id) {
                self.start(&shard_id).await;
            }
        }
    }

    /// Every parent of the shard was read to its end, here or by another worker.
    fn can_start(&self, shard_id: &str) -> bool {
        let states = &self.states;
        let ended = |id: &str| states.get(id).is_some_and(ShardState::ended);
        self.topology.can_start(shard_id, ended)
    }

    async fn start(&mut self, shard_id: &str) {
        let ctx = &self.ctx;
        let latest_start =
            ctx.config.iterator_type == IteratorType::Latest && self.initial.contains(shard_id);
        if latest_start && self.shards.get(shard_id).is_some_and(|s| !s.is_open()) {
            // Closed before a LATEST start: nothing in it is new.
            self.finish(shard_id);
            return;
        }
        let sent = Instant::now();
        let claim = ctx
            .store
            .claim(&ctx.stream_name, shard_id, &ctx.worker)
            .await;
        let (lease, progress) = match claim {
            Ok(Claim::Acquired { lease, progress }) => (lease, progress),
            Ok(Claim::Finished) => return self.finish(shard_id),
            Ok(Claim::HeldBy { owner }) => {
                tracing::debug!(shard = shard_id, %owner, "shard held by another worker");
                return;
            }
            Err(source) if source.is_retryable() => {
                // The store is down or busy: the claim is tried again at the next heartbeat.
                ctx.labels.consumer_error(shard_id, "checkpoint");
                tracing::warn!(shard = shard_id, error = %source, "claiming the lease failed");
                return;
            }
            Err(source) => {
                return ctx.report(ConsumeError::Checkpoint {
                    shard_id: shard_id.to_owned(),
                    source,
                });
            }
        };
        let start_sequence = ctx.config.start_sequences.get(shard_id).cloned();
        let start = match (progress, ctx.config.iterator_type, start_sequence) {
            (Progress::ShardEnd, _, _) => return self.finish(shard_id),
            (Progress::At(position), _, _) => StartAt::Resume(position),
            (Progress::Started(point), _, _) => StartAt::from(point),
            (Progress::None, _, Some(sequence)) => StartAt::AtSequence(sequence),
            (Progress::None, IteratorType::Latest, None) if latest_start => StartAt::Latest,
            (Progress::None, IteratorType::AtTimestamp, None) => match ctx.config.timestamp {
                Some(at) => StartAt::AtTimestamp(at),
                None => StartAt::TrimHorizon,
            },
            // Children of shards read here start at their beginning: nothing may be skipped.
            (Progress::None, _, None) => StartAt::TrimHorizon,
        };
        let written = match &start {
            StartAt::Resume(position) => Some(position.clone()),
            _ => None,
        };
        let acks = Arc::new(ShardAcks::new(
            AckTracker::resuming(written.clone()),
            self.wake.clone(),
            ctx.config.checkpoint_every,
            sent + ctx.store.timing().session_timeout(),
        ));
        let cancel = self.readers_cancel.child_token();
        let shard: Arc<str> = Arc::from(shard_id);
        let reader = ShardReader::new(
            ctx.clone(),
            shard.clone(),
            acks.clone(),
            cancel.clone(),
            start,
        );
        ctx.status.shard(shard_id, |s| {
            s.allocated = true;
            s.last_checkpoint = written;
        });
        tracing::debug!(shard = shard_id, "starting shard reader");
        self.awaiting_iterator.insert(shard.clone());
        let iterators = self.iterators.0.clone();
        let name = shard.clone();
        self.tasks.spawn(async move {
            let outcome = reader
                .run(move || {
                    let _ = iterators.send(name);
                })
                .await;
            (shard, outcome)
        });
        self.states.insert(
            shard_id.to_owned(),
            ShardState::Running(Owned {
                lease,
                acks,
                cancel,
            }),
        );
        self.ctx.labels.lease_taken(self.held());
    }

    fn finish(&mut self, shard_id: &str) {
        self.states
            .insert(shard_id.to_owned(), ShardState::Finished);
        self.ctx.status.shard(shard_id, |s| {
            s.finished = true;
            s.allocated = false;
        });
    }

    fn on_reader_end(&mut self, shard_id: &str, outcome: ReaderOutcome) {
        self.awaiting_iterator.remove(shard_id);
        self.check_ready();
        let Some(state) = self.states.remove(shard_id) else {
            return;
        };
        let state = match (state, outcome) {
            (ShardState::Running(owned), ReaderOutcome::Ended { children }) => {
                tracing::info!(
                    shard = shard_id,
                    children = children.len(),
                    "shard read to its end"
                );
                let unknown: Vec<Shard> = children
                    .into_iter()
                    .filter(|c| !self.shards.contains_key(&c.shard_id))
                    .collect();
                self.states
                    .insert(shard_id.to_owned(), ShardState::Draining(owned));
                if !unknown.is_empty() {
                    self.merge(unknown);
                }
                return;
            }
            (ShardState::Running(owned), ReaderOutcome::Stopped) => ShardState::Stopped(owned),
            (state, _) => state,
        };
        self.states.insert(shard_id.to_owned(), state);
    }

    fn check_ready(&self) {
        if self.awaiting_iterator.is_empty() && !*self.ready.borrow() {
            let _ = self.ready.send(true);
        }
    }

    /// Writes every shard's acknowledged prefix and finishes drained shards, unless the store
    /// failed lately and its backoff has not passed.
    async fn flush_checkpoints(&mut self) {
        if self.store_backoff.ready(Instant::now()) {
            self.write_checkpoints().await;
        }
    }

    /// Writes every shard's acknowledged prefix (see [`together`]); finishes drained and
    /// handed-off shards.
    async fn write_checkpoints(&mut self) {
        let mut pending = Vec::new();
        for (shard_id, state) in &self.states {
            let Some(owned) = state.owned() else {
                continue;
            };
            let (to_write, outstanding) = {
                let tracker = owned.acks.lock();
                (tracker.to_write().cloned(), tracker.outstanding())
            };
            self.ctx.status.shard(shard_id, |s| s.unacked = outstanding);
            self.ctx.labels.consumer_lag(shard_id, outstanding);
            let handle = (owned.lease.clone(), owned.acks.clone());
            pending.push((shard_id.clone(), handle, to_write, outstanding));
        }
        let store = self.ctx.store.clone();
        let results = together(
            pending
                .iter()
                .map(|(shard_id, (lease, _), to_write, _)| {
                    let (store, labels) = (&store, &self.ctx.labels);
                    async move {
                        match to_write {
                            Some(position) => {
                                let write = store.checkpoint(lease, position);
                                Some(labels.timed_checkpoint(shard_id, write).await)
                            }
                            None => None,
                        }
                    }
                })
                .collect(),
        )
        .await;
        let mut outcomes = Vec::new();
        for ((shard_id, (lease, acks), to_write, outstanding), result) in
            pending.into_iter().zip(results)
        {
            if let (Some(position), Some(result)) = (to_write, result) {
                let written = self.checkpoint_written(&shard_id, &acks, position, result);
                outcomes.push(written);
                if written != Written::Done {
                    continue;
                }
            }
            match self.states.get(&shard_id) {
                Some(ShardState::Draining(_)) if outstanding == 0 => {
                    outcomes.push(self.end_shard(&shard_id, &lease).await);
                }
                Some(ShardState::HandingOff(owned, until))
                    if owned.acks.all_handed_out_acked() || Instant::now() >= *until =>
                {
                    outcomes.push(self.finish_hand_off(&shard_id, &lease, &acks).await);
                }
                _ => {}
            }
        }
        self.store_answered(&outcomes);
    }

    /// Backs checkpoint writes off while the store fails; a write that went through ends that.
    fn store_answered(&mut self, outcomes: &[Written]) {
        if outcomes.contains(&Written::StoreFailed) {
            let config = &self.ctx.config;
            // At least one attempt per heartbeat, whatever expo_backoff_limit says.
            let cap = self.ctx.store.timing().heartbeat_frequency();
            self.store_backoff
                .failed(Instant::now(), |n| config.jittered_backoff(n).min(cap));
        } else if outcomes.contains(&Written::Done) {
            self.store_backoff.succeeded();
        }
    }

    /// Notes the store's answer to a checkpoint of `position`.
    fn checkpoint_written(
        &mut self,
        shard_id: &str,
        acks: &ShardAcks,
        position: Position,
        result: Result<(), CheckpointError>,
    ) -> Written {
        match result {
            Ok(()) => {
                self.ctx.labels.checkpoint(shard_id, true);
                acks.lock().written(position.clone());
                self.ctx
                    .status
                    .shard(shard_id, |s| s.last_checkpoint = Some(position));
                Written::Done
            }
            Err(err) => {
                self.ctx.labels.checkpoint(shard_id, false);
                self.store_failed(shard_id, err)
            }
        }
    }

    /// Writes one checkpoint.
    async fn write_checkpoint(
        &mut self,
        shard_id: &str,
        lease: &Lease,
        acks: &ShardAcks,
        position: Position,
    ) -> Written {
        let write = self.ctx.store.checkpoint(lease, &position);
        let result = self.ctx.labels.timed_checkpoint(shard_id, write).await;
        self.checkpoint_written(shard_id, acks, position, result)
    }

    async fn end_shard(&mut self, shard_id: &str, lease: &Lease) -> Written {
        let result = match self.ctx.store.mark_shard_end(lease).await {
            Ok(()) => self.ctx.store.release(lease).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => {
                self.finish(shard_id);
                Written::Done
            }
            Err(err) => self.store_failed(shard_id, err),
        }
    }

    /// Stops fetching, waits (up to `deadline`) for handed-out records to be acknowledged,
    /// writes the final checkpoints and releases every lease.
    async fn shutdown(&mut self, deadline: Duration) -> ShutdownReport {
        let until = Instant::now() + deadline;
        self.readers_cancel.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok((shard_id, outcome)) = joined {
                self.on_reader_end(&shard_id, outcome);
            }
        }
        loop {
            self.flush_checkpoints().await;
            let all_acked = self
                .states
                .values()
                .filter_map(ShardState::owned)
                .all(|o| o.acks.all_handed_out_acked());
            if all_acked || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20).min(deadline)).await;
        }
        // The last chance to write them: not held back by an earlier failure.
        self.write_checkpoints().await;
        let mut report = ShutdownReport::default();
        let owned: Vec<(String, Lease, Arc<ShardAcks>)> = self
            .states
            .iter()
            .filter_map(|(id, s)| {
                s.owned()
                    .map(|o| (id.clone(), o.lease.clone(), o.acks.clone()))
            })
            .collect();
        for (shard_id, lease, acks) in owned {
            report.unacked_records += acks.unacked_handed_out();
            match self.ctx.store.release(&lease).await {
                Ok(()) => report.leases_released += 1,
                Err(source) => report
                    .errors
                    .push(ConsumeError::Checkpoint { shard_id, source }),
            }
        }
        self.ctx.labels.leases_held(0);
        let ctx = &self.ctx;
        if let Err(err) = ctx.store.leave(&ctx.stream_name, &ctx.worker).await {
            tracing::warn!(error = %err, "leaving the group failed; it expires with the session");
        }
        report.shards_finished = self
            .states
            .values()
            .filter(|s| matches!(s, ShardState::Finished))
            .count();
        report
    }
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
