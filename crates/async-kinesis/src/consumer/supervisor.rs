//! The supervisor: discovers shards, claims leases up to this worker's fair share, runs one
//! reader task per shard in parent→child order, writes checkpoints, renews and hands off leases,
//! and shuts down.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::ack::{AckTracker, ShardAcks};
use super::balance;
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

struct Owned {
    lease: Lease,
    acks: Arc<ShardAcks>,
    cancel: CancellationToken,
    /// Until when the lease is surely ours: the last successful claim or renewal was *sent*
    /// one session timeout before.
    valid_until: Instant,
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

    fn owned_mut(&mut self) -> Option<&mut Owned> {
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
        let heartbeat_frequency = self.ctx.store.timing().heartbeat_frequency;
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
    fn merge(&mut self, shards: Vec<Shard>) {
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

    /// Registers this worker, renews its leases, recomputes its share from the group's state,
    /// hands off leases above it and claims free ones below it.
    async fn heartbeat(&mut self) {
        let ctx = self.ctx.clone();
        if let Err(err) = ctx.store.heartbeat(&ctx.stream_name, &ctx.worker).await {
            tracing::warn!(error = %err, "registering this worker in the checkpoint store failed");
        }
        self.renew_leases().await;
        self.balance().await;
        self.schedule().await;
        if self
            .states
            .values()
            .any(|s| matches!(s, ShardState::HandingOff(..)))
        {
            // Release what can be released now: others are waiting to claim it.
            self.flush_checkpoints().await;
        }
    }

    /// Below its share between heartbeats: claims leases that became free (handed off by
    /// another worker, or expired), found with one listing instead of a claim per shard.
    async fn claim_free(&mut self) {
        let ctx = self.ctx.clone();
        let Ok(leases) = ctx.store.list(&ctx.stream_name).await else {
            return; // the next heartbeat tries again and reports
        };
        let held_elsewhere: HashSet<String> = leases
            .into_iter()
            .filter(|l| l.owner.as_ref().is_some_and(|o| *o != ctx.worker))
            .map(|l| l.shard_id)
            .collect();
        let free: Vec<String> = self
            .states
            .iter()
            .filter(|(id, s)| matches!(s, ShardState::Waiting) && !held_elsewhere.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in free {
            if self.held() >= self.target {
                return;
            }
            if self.can_start(&shard_id) {
                self.start(&shard_id).await;
            }
        }
    }

    /// Recomputes this worker's share; hands off leases above it.
    async fn balance(&mut self) {
        let ctx = self.ctx.clone();
        let (leases, live) = match (
            ctx.store.list(&ctx.stream_name).await,
            ctx.store.live_workers(&ctx.stream_name).await,
        ) {
            (Ok(leases), Ok(live)) => (leases, live),
            (Err(err), _) | (_, Err(err)) => {
                // Keep the share we have: claims stay bounded by it, and leases not renewed
                // are given up by `renew_leases`.
                tracing::warn!(error = %err, "reading the group from the checkpoint store failed");
                return;
            }
        };
        for info in leases {
            let waiting = matches!(self.states.get(&info.shard_id), Some(ShardState::Waiting));
            if waiting && info.progress == Progress::ShardEnd {
                self.finish(&info.shard_id); // read to its end by another worker
            }
        }
        let available = self
            .states
            .iter()
            .filter(|(id, state)| {
                matches!(
                    state,
                    ShardState::Waiting
                        | ShardState::Running(_)
                        | ShardState::Stopped(_)
                        | ShardState::HandingOff(..)
                ) && self.can_start(id)
            })
            .count();
        let share = balance::fair_share(&ctx.worker, &live, available);
        self.target = ctx
            .config
            .max_shard_consumers
            .map_or(share, |max| share.min(max));
        let held: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| s.holds_work())
            .map(|(id, _)| id.clone())
            .collect();
        let shed = balance::to_shed(&held, self.target);
        if !shed.is_empty() {
            tracing::info!(
                held = held.len(),
                target = self.target,
                workers = live.len(),
                "handing off leases above this worker's share"
            );
        }
        for shard_id in shed {
            self.hand_off(&shard_id);
        }
    }

    /// Stops reading a shard and hands nothing more of it out; its lease is released once the
    /// records already handed out are acknowledged (or a grace period passed).
    fn hand_off(&mut self, shard_id: &str) {
        let Some(state) = self.states.remove(shard_id) else {
            return;
        };
        let state = match state {
            ShardState::Running(owned) | ShardState::Stopped(owned) => {
                owned.cancel.cancel();
                owned.acks.revoke();
                let grace = self.ctx.store.timing().heartbeat_frequency / 2;
                ShardState::HandingOff(owned, Instant::now() + grace)
            }
            other => other,
        };
        self.states.insert(shard_id.to_owned(), state);
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
        let start = match (progress, ctx.config.iterator_type) {
            (Progress::ShardEnd, _) => return self.finish(shard_id),
            (Progress::At(position), _) => StartAt::Resume(position),
            (Progress::None, IteratorType::Latest) if latest_start => StartAt::Latest,
            (Progress::None, IteratorType::AtTimestamp) => match ctx.config.timestamp {
                Some(at) => StartAt::AtTimestamp(at),
                None => StartAt::TrimHorizon,
            },
            // Children of shards read here start at their beginning: nothing may be skipped.
            (Progress::None, _) => StartAt::TrimHorizon,
        };
        let written = match &start {
            StartAt::Resume(position) => Some(position.clone()),
            _ => None,
        };
        let acks = Arc::new(ShardAcks::new(
            AckTracker::resuming(written.clone()),
            self.wake.clone(),
            ctx.config.checkpoint_every,
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
                valid_until: sent + ctx.store.timing().session_timeout,
            }),
        );
        self.ctx.labels.leases(self.held(), 1, 0);
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

    /// Writes every shard's acknowledged prefix; finishes drained shards.
    async fn flush_checkpoints(&mut self) {
        let ids: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| s.owned().is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in ids {
            let Some(owned) = self.states.get(&shard_id).and_then(ShardState::owned) else {
                continue;
            };
            let (lease, acks) = (owned.lease.clone(), owned.acks.clone());
            let (to_write, outstanding) = {
                let tracker = acks.lock();
                (tracker.to_write().cloned(), tracker.outstanding())
            };
            self.ctx
                .status
                .shard(&shard_id, |s| s.unacked = outstanding);
            if let Some(position) = to_write
                && !self
                    .write_checkpoint(&shard_id, &lease, &acks, position)
                    .await
            {
                continue;
            }
            match self.states.get(&shard_id) {
                Some(ShardState::Draining(_)) if outstanding == 0 => {
                    self.end_shard(&shard_id, &lease).await;
                }
                Some(ShardState::HandingOff(owned, until))
                    if owned.acks.all_handed_out_acked() || Instant::now() >= *until =>
                {
                    self.finish_hand_off(&shard_id, &lease, &acks).await;
                }
                _ => {}
            }
        }
    }

    async fn write_checkpoint(
        &mut self,
        shard_id: &str,
        lease: &Lease,
        acks: &ShardAcks,
        position: Position,
    ) -> bool {
        match self.ctx.store.checkpoint(lease, &position).await {
            Ok(()) => {
                self.ctx.labels.checkpoint(shard_id, true);
                acks.lock().written(position.clone());
                self.ctx
                    .status
                    .shard(shard_id, |s| s.last_checkpoint = Some(position));
                true
            }
            Err(err) => {
                self.ctx.labels.checkpoint(shard_id, false);
                self.store_failed(shard_id, err);
                false
            }
        }
    }

    /// Writes a handed-off shard's final checkpoint (nothing more is handed out, so the
    /// acknowledged prefix is final unless the grace period ran out) and releases its lease.
    async fn finish_hand_off(&mut self, shard_id: &str, lease: &Lease, acks: &ShardAcks) {
        let last = acks.lock().to_write().cloned();
        if let Some(position) = last
            && !self.write_checkpoint(shard_id, lease, acks, position).await
        {
            return;
        }
        match self.ctx.store.release(lease).await {
            Ok(()) | Err(CheckpointError::NotOwned { .. }) => {
                tracing::debug!(shard = shard_id, "lease handed off");
                self.states.insert(shard_id.to_owned(), ShardState::Waiting);
                self.ctx.status.shard(shard_id, |s| s.allocated = false);
                self.ctx.labels.leases(self.held(), 0, 0);
            }
            Err(err) => self.store_failed(shard_id, err),
        }
    }

    /// Leases held for reading (not those being handed off or finished).
    fn held(&self) -> usize {
        self.states.values().filter(|s| s.holds_work()).count()
    }

    async fn end_shard(&mut self, shard_id: &str, lease: &Lease) {
        let result = match self.ctx.store.mark_shard_end(lease).await {
            Ok(()) => self.ctx.store.release(lease).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => self.finish(shard_id),
            Err(err) => self.store_failed(shard_id, err),
        }
    }

    /// A store write failed: a lost lease stops the shard here; other failures are retried at
    /// the next checkpoint.
    fn store_failed(&mut self, shard_id: &str, err: CheckpointError) {
        if matches!(err, CheckpointError::NotOwned { .. }) {
            self.lose_lease(shard_id, err);
        } else {
            tracing::warn!(shard = shard_id, error = %err, "checkpoint store failed; retrying later");
            if !err.is_retryable() {
                self.ctx.report(ConsumeError::Checkpoint {
                    shard_id: shard_id.to_owned(),
                    source: err,
                });
            }
        }
    }

    /// Stops a shard whose lease is (or may be) another worker's now: nothing more of it is
    /// read or handed out, and its checkpoints would be refused.
    fn lose_lease(&mut self, shard_id: &str, source: CheckpointError) {
        if let Some(owned) = self.states.get(shard_id).and_then(ShardState::owned) {
            owned.cancel.cancel();
            owned.acks.revoke();
        }
        self.states.insert(shard_id.to_owned(), ShardState::Waiting);
        self.ctx.status.shard(shard_id, |s| s.allocated = false);
        self.ctx.labels.leases(self.held(), 0, 1);
        self.ctx.report(ConsumeError::Checkpoint {
            shard_id: shard_id.to_owned(),
            source,
        });
    }

    /// Renews every held lease; gives up those that could not be renewed in time (another
    /// worker may take them once they expire, so reading on would risk two readers).
    async fn renew_leases(&mut self) {
        let leases: Vec<(String, Lease)> = self
            .states
            .iter()
            .filter_map(|(id, s)| s.owned().map(|o| (id.clone(), o.lease.clone())))
            .collect();
        let timing = self.ctx.store.timing();
        for (shard_id, lease) in leases {
            let sent = Instant::now();
            match self.ctx.store.renew(&lease).await {
                Ok(()) => {
                    if let Some(owned) = self
                        .states
                        .get_mut(&shard_id)
                        .and_then(ShardState::owned_mut)
                        && owned.lease == lease
                    {
                        owned.valid_until = sent + timing.session_timeout;
                    }
                }
                Err(err) => self.store_failed(&shard_id, err),
            }
        }
        // The next renewal comes one heartbeat later: give up what would expire before it.
        let deadline = Instant::now() + timing.heartbeat_frequency;
        let expiring: Vec<(String, Lease)> = self
            .states
            .iter()
            .filter_map(|(id, s)| s.owned().map(|o| (id, o)))
            .filter(|(_, owned)| owned.valid_until <= deadline)
            .map(|(id, owned)| (id.clone(), owned.lease.clone()))
            .collect();
        for (shard_id, lease) in expiring {
            self.lose_lease(
                &shard_id,
                CheckpointError::LeaseExpired {
                    shard_id: shard_id.clone(),
                    worker: lease.owner,
                },
            );
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
        self.flush_checkpoints().await;
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

fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}
