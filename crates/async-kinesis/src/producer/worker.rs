//! The producer's background task: aggregation, routing to shard queues, PutRecords calls, and
//! the resolution of every item's receipt.
//!
//! The only code that calls PutRecords. One task owns all state; handles talk to it over a
//! channel. Every item accepted here ends in exactly one of: a delivery, a failure handed back
//! with the item, or — if the task itself dies — a `WorkerGone` error on its receipt.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::config::{FlushReport, ProducerConfig};
use super::keyless::{KeylessKey, KeylessKeys};
use super::lane::Lane;
use super::lane_rotation::LaneRotation;
use super::ledger::Ledger;
use super::outcome::{
    CallFailure, EntryResult, Next, after_call_error, after_entry, records_named,
};
use super::permit::Permits;
use super::put_records::{put_records, request_entries};
use super::rate_limit::{SEND_PACE, ShardBudget};
use super::receipt::{Delivery, DeliveryResult, PutError, PutErrorKind};
use super::shard_queue::{BatchRules, ShardQueue, Waiting};
use crate::error::Error;
use crate::metrics::{PutRecordsOutcome, StreamLabels};
use crate::processor::{OutgoingRecord, Processor, WriterShape};
use crate::stream::StreamClient;
use crate::stream::shard::Shard;
use crate::stream::shard_map::ShardMap;

/// Queue name for records whose hash key no known open shard owns (mid-resharding).
const UNROUTED: &str = "unrouted";
/// Commands handled per wake-up before the queues are looked at again.
const COMMANDS_PER_TURN: usize = 1_024;
/// A failed shard listing is tried again after this long.
const REFRESH_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// An item on its way from a handle to the worker.
pub(crate) struct AcceptedItem<T> {
    pub(crate) item: T,
    pub(crate) data: Bytes,
    pub(crate) partition_key: Option<String>,
    pub(crate) explicit_hash_key: Option<String>,
    pub(crate) reply: oneshot::Sender<DeliveryResult<T>>,
    pub(crate) permits: Permits,
}

/// What handles ask of the worker.
pub(crate) enum Command<T> {
    Put(Box<AcceptedItem<T>>),
    /// Send everything now; answer once everything put before is resolved.
    Flush(oneshot::Sender<()>),
    /// Like flush, then stop.
    Close(oneshot::Sender<()>),
}

/// An accepted item inside the worker: it travels in the aggregator's records as their tag.
struct Ticket<T> {
    item: T,
    reply: oneshot::Sender<DeliveryResult<T>>,
    generation: u64,
    /// When the delivery timeout ends for this item.
    deadline: Option<Instant>,
    _permits: Permits,
}

type Outgoing<T> = OutgoingRecord<Ticket<T>>;

/// A shard's aggregator and queue, for items of processor `P`.
type ShardLane<P> =
    Lane<<P as Processor>::Writer<Ticket<<P as Processor>::Item>>, Ticket<<P as Processor>::Item>>;

/// A finished PutRecords call.
struct CallDone<T> {
    shard: Arc<str>,
    batch: Vec<Waiting<Outgoing<T>>>,
    result: Result<Vec<EntryResult>, Error>,
    started: Instant,
}

pub(crate) struct Worker<P: Processor> {
    client: StreamClient,
    config: Arc<ProducerConfig>,
    rules: BatchRules,
    labels: StreamLabels,
    processor: P,
    /// How the lanes' aggregators shape records.
    shape: WriterShape,
    /// The key of items put without one, until the record holding them is sealed.
    /// The stream places records itself (AUTO): a record on another shard than its key's is
    /// expected, not a sign of resharding.
    service_distributes: bool,
    unkeyed_key: KeylessKey,
    /// The shard `unkeyed_key` routes to.
    unkeyed_shard: Arc<str>,
    keyless: KeylessKeys,
    shard_map: ShardMap,
    refresh_at: Instant,
    refreshing: Option<BoxFuture<'static, Result<Vec<Shard>, Error>>>,
    lanes: HashMap<Arc<str>, ShardLane<P>>,
    /// The lanes in a stable order, served in rotation.
    lane_order: Vec<Arc<str>>,
    rotation: LaneRotation,
    calls: FuturesUnordered<BoxFuture<'static, CallDone<P::Item>>>,
    ledger: Ledger,
    /// Bytes of the items accepted and not resolved (the producer_queue_bytes metric).
    queued_bytes: usize,
    flush_waiters: Vec<(u64, oneshot::Sender<()>)>,
    close_waiters: Vec<oneshot::Sender<()>>,
    closing: bool,
    stream_gone: bool,
}

impl<P: Processor> Worker<P> {
    pub(crate) fn new(
        client: StreamClient,
        config: Arc<ProducerConfig>,
        processor: &P,
        shard_map: ShardMap,
        service_distributes: bool,
    ) -> Self {
        let now = Instant::now();
        let mut worker = Self {
            rules: BatchRules {
                max_records: config.batch_size,
                max_bytes: config.batch_bytes,
                linger: config.buffer_time,
                full_enough_bytes: BatchRules::full_enough(
                    config.put_bandwidth_limit_per_shard as usize * 1024,
                    config.batch_bytes,
                ),
            },
            labels: StreamLabels::new(client.stream().name()),
            processor: processor.clone(),
            shape: WriterShape::aggregates_of(config.aggregate_bytes)
                .service_distributing(service_distributes),
            service_distributes,
            unkeyed_key: KeylessKey::default(),
            unkeyed_shard: Arc::from(UNROUTED),
            keyless: KeylessKeys::default(),
            shard_map,
            refresh_at: now + config.setup.shard_refresh_interval,
            refreshing: None,
            lanes: HashMap::new(),
            lane_order: Vec::new(),
            rotation: LaneRotation::default(),
            calls: FuturesUnordered::new(),
            ledger: Ledger::default(),
            queued_bytes: 0,
            flush_waiters: Vec::new(),
            close_waiters: Vec::new(),
            closing: false,
            stream_gone: false,
            client,
            config,
        };
        worker.rotate_keyless(now);
        worker
    }

    /// Chooses the key for the next items put without one: the record holding the previous
    /// key's items was sealed (see [`KeylessKeys`]).
    fn rotate_keyless(&mut self, now: Instant) {
        let lanes = &self.lanes;
        // Two seconds of a shard's budget waiting: others' traffic is slowing it down.
        let congested = self.config.bandwidth_bytes_per_shard() as usize * 2;
        self.unkeyed_key = self.keyless.next(
            &self.shard_map,
            |shard| lanes.get(shard).map_or(0, Lane::backlog),
            congested,
            &mut rand::rng(),
        );
        let KeylessKey {
            partition_key,
            explicit_hash_key,
        } = self.unkeyed_key.clone();
        self.unkeyed_shard = self.shard_for(&partition_key, explicit_hash_key.as_deref(), now);
    }

    /// Runs until closed (by `close()` or by every handle being dropped) and everything accepted
    /// is resolved.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command<P::Item>>) {
        let mut handles_gone = false;
        loop {
            self.turn(Instant::now());
            if self.closing && self.ledger.unresolved() == 0 && self.calls.is_empty() {
                break;
            }
            let wake = self.next_wake(Instant::now());
            tokio::select! {
                command = commands.recv(), if !handles_gone => match command {
                    Some(command) => {
                        self.on_command(command);
                        for _ in 1..COMMANDS_PER_TURN {
                            match commands.try_recv() {
                                Ok(command) => self.on_command(command),
                                Err(_) => break,
                            }
                        }
                    }
                    // Every handle is gone: deliver what was accepted, then stop.
                    None => {
                        handles_gone = true;
                        self.closing = true;
                    }
                },
                Some(done) = self.calls.next(), if !self.calls.is_empty() => self.on_call_done(done),
                shards = async { self.refreshing.as_mut().expect("guarded by the condition").await },
                    if self.refreshing.is_some() => {
                    self.refreshing = None;
                    self.on_shards(shards);
                }
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
        }
        self.refuse_late_commands(&mut commands);
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        for (_, waiter) in self.flush_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Puts that got room just as the producer closed may still be in the channel: they come
    /// back with their item, and the closed channel refuses any later ones (their `put` hands
    /// the item back too). Flushes and closes are answered with the rest.
    fn refuse_late_commands(&mut self, commands: &mut mpsc::UnboundedReceiver<Command<P::Item>>) {
        commands.close();
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Put(pending) => {
                    let pending = *pending;
                    let _ = pending
                        .reply
                        .send(Err(PutError::new(PutErrorKind::Closed, pending.item)));
                }
                Command::Flush(reply) | Command::Close(reply) => self.close_waiters.push(reply),
            }
        }
    }

    fn on_command(&mut self, command: Command<P::Item>) {
        match command {
            Command::Put(pending) => self.on_put(*pending),
            Command::Flush(reply) => {
                let generation = self.ledger.close_generation();
                self.flush_waiters.push((generation, reply));
            }
            Command::Close(reply) => {
                self.closing = true;
                self.close_waiters.push(reply);
            }
        }
    }

    fn on_put(&mut self, pending: AcceptedItem<P::Item>) {
        let AcceptedItem {
            item,
            data,
            partition_key,
            explicit_hash_key,
            reply,
            permits,
        } = pending;
        self.queued_bytes += permits.bytes.num_permits();
        let now = Instant::now();
        let ticket = Ticket {
            item,
            reply,
            generation: self.ledger.add(),
            // A timeout beyond the clock's range is no deadline.
            deadline: self
                .config
                .delivery_timeout
                .and_then(|timeout| now.checked_add(timeout)),
            _permits: permits,
        };
        if self.stream_gone {
            let source = self.stream_gone_error();
            self.resolve(
                ticket,
                Err(PutErrorKind::Request {
                    source,
                    attempts: 0,
                }),
            );
            return;
        }
        let unkeyed = partition_key.is_none();
        let (key, explicit_hash_key, shard) = match partition_key {
            Some(key) => {
                let shard = self.shard_for(&key, explicit_hash_key.as_deref(), now);
                (key, explicit_hash_key, shard)
            }
            None => {
                self.keyless.gave(&self.unkeyed_shard, data.len());
                let KeylessKey {
                    partition_key,
                    explicit_hash_key,
                } = self.unkeyed_key.clone();
                (partition_key, explicit_hash_key, self.unkeyed_shard.clone())
            }
        };
        let Some(lane) = self.lanes.get_mut(&shard) else {
            // Proven invariant: shard_for creates the lane, and the keyless shard's lane is only
            // dropped after a refresh, which chooses a new keyless key.
            let source = Arc::new(Error::Closed { what: "shard lane" });
            return self.resolve(
                ticket,
                Err(PutErrorKind::Request {
                    source,
                    attempts: 0,
                }),
            );
        };
        match lane.push(ticket, data, &key, explicit_hash_key.as_deref(), now) {
            // Items put without a key share a key until the record holding them is sealed, so
            // they still aggregate while their records spread over the shards.
            Ok(completed) => {
                if completed && (unkeyed || shard == self.unkeyed_shard) {
                    self.rotate_keyless(now);
                }
            }
            Err(rejected) => {
                self.resolve(rejected.tag, Err(PutErrorKind::Rejected(rejected.reason)))
            }
        }
    }

    /// The shard a key routes to, with its lane created if needed.
    fn shard_for(&mut self, key: &str, explicit_hash_key: Option<&str>, now: Instant) -> Arc<str> {
        let shard = match self.shard_map.route(key, explicit_hash_key) {
            Ok(Some(range)) => range.shard_id(),
            _ => UNROUTED,
        };
        if let Some((name, _)) = self.lanes.get_key_value(shard) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(shard);
        let budget = ShardBudget::with_pace(
            self.config.put_rate_limit_per_shard,
            self.config.bandwidth_bytes_per_shard(),
            SEND_PACE,
            now,
        );
        let lane = Lane::new(
            self.processor.shaped_writer(self.shape),
            ShardQueue::new(budget),
        );
        self.lanes.insert(name.clone(), lane);
        self.lane_order.push(name.clone());
        name
    }

    fn flushing(&self) -> bool {
        self.closing || !self.flush_waiters.is_empty()
    }

    /// Empties the aggregator when its oldest item lingered long enough or a flush asks, sends
    /// every batch that is due, settles finished flushes, and starts a shard refresh when due.
    fn turn(&mut self, now: Instant) {
        let flushing = self.flushing();
        let mut sealed = false;
        for lane in self.lanes.values_mut() {
            sealed |= lane.seal(now, self.config.buffer_time, flushing);
        }
        if sealed {
            self.rotate_keyless(now);
        }
        self.expire(now);
        if self.refreshing.is_none() && now >= self.refresh_at {
            self.start_refresh();
        }
        let lanes = self.lane_order.len();
        let mut stopped = None;
        for index in self.rotation.turn(lanes) {
            if self.calls.len() >= self.config.max_in_flight_requests {
                stopped = Some(index);
                break;
            }
            let shard = self.lane_order[index].clone();
            let Some(lane) = self.lanes.get_mut(&shard) else {
                continue;
            };
            if let Some(batch) = lane.queue().take_batch(&self.rules, now, flushing) {
                self.start_call(shard, batch, now);
            }
        }
        match stopped {
            Some(index) => self.rotation.stopped_at(index),
            None => self.rotation.completed(lanes),
        }
        self.answer_settled_flushes();
        self.labels
            .producer_queue(self.ledger.unresolved(), self.queued_bytes);
    }

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let flushing = self.flushing();
        // With every call slot taken, only a finished call can let a batch go: waking for a
        // due batch then would spin.
        let can_send = self.calls.len() < self.config.max_in_flight_requests;
        let lanes = self
            .lanes
            .values()
            .filter_map(|lane| lane.wake_at(&self.rules, now, flushing, can_send));
        let deadlines = self
            .config
            .delivery_timeout
            .is_some()
            .then(|| {
                self.lanes
                    .values()
                    .filter_map(|lane| lane.queue_ref().front().and_then(record_deadline))
            })
            .into_iter()
            .flatten();
        let refresh = self.refreshing.is_none().then_some(self.refresh_at);
        lanes.chain(deadlines).chain(refresh).min()
    }

    /// Fails the queued records whose delivery timeout has passed, handing their items back.
    fn expire(&mut self, now: Instant) {
        let Some(timeout) = self.config.delivery_timeout else {
            return;
        };
        let mut expired = Vec::new();
        for lane in self.lanes.values_mut() {
            expired.extend(
                lane.queue()
                    .expire_front(|w| record_deadline(w).is_some_and(|d| d <= now)),
            );
        }
        if expired.is_empty() {
            return;
        }
        self.labels.producer_error("timeout", items_in(&expired));
        for waiting in expired {
            for ticket in waiting.record.tags {
                let kind = PutErrorKind::TimedOut {
                    timeout,
                    attempts: waiting.failed_attempts,
                    last_error: waiting.last_error.clone(),
                };
                self.resolve(ticket, Err(kind));
            }
        }
    }

    fn start_call(
        &mut self,
        shard: Arc<str>,
        batch: Vec<Waiting<Outgoing<P::Item>>>,
        now: Instant,
    ) {
        let client = self.client.clone();
        let entries = request_entries(batch.iter().map(|w| &w.record));
        let span = tracing::debug_span!(
            "put_records",
            stream = %client.stream(),
            shard = %shard,
            records = entries.len()
        );
        self.calls.push(Box::pin(tracing::Instrument::instrument(
            async move {
                let result = put_records(&client, entries).await;
                CallDone {
                    shard,
                    batch,
                    result,
                    started: now,
                }
            },
            span,
        )));
    }

    fn stream_gone_error(&self) -> Arc<Error> {
        Arc::new(Error::StreamNotFound {
            stream: self.client.stream().to_string(),
        })
    }

    /// The stream is gone: every record waiting in a queue or the aggregator fails with it.
    fn fail_everything_waiting(&mut self) {
        let now = Instant::now();
        let mut waiting: Vec<Waiting<Outgoing<P::Item>>> = Vec::new();
        for lane in self.lanes.values_mut() {
            waiting.extend(lane.drain_all(now));
        }
        self.labels.producer_error("not_found", items_in(&waiting));
        let source = self.stream_gone_error();
        self.fail_records(waiting, || PutErrorKind::Request {
            source: source.clone(),
            attempts: 0,
        });
    }

    fn fail_records(
        &mut self,
        records: Vec<Waiting<Outgoing<P::Item>>>,
        kind: impl Fn() -> PutErrorKind,
    ) {
        for waiting in records {
            for ticket in waiting.record.tags {
                self.resolve(ticket, Err(kind()));
            }
        }
    }

    fn resolve(&mut self, ticket: Ticket<P::Item>, result: Result<Delivery, PutErrorKind>) {
        self.ledger.resolve(ticket.generation);
        self.queued_bytes -= ticket._permits.bytes.num_permits();
        let outcome = result.map_err(|kind| PutError::new(kind, ticket.item));
        // The caller may have dropped the receipt; the item is resolved either way.
        let _ = ticket.reply.send(outcome);
        self.answer_settled_flushes();
    }

    fn answer_settled_flushes(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let mut index = 0;
        while index < self.flush_waiters.len() {
            if self.ledger.is_settled(self.flush_waiters[index].0) {
                let (_, waiter) = self.flush_waiters.swap_remove(index);
                let _ = waiter.send(());
            } else {
                index += 1;
            }
        }
    }

    fn after_flush(&self, report: &FlushReport) {
        if let Some(hook) = &self.config.after_flush {
            hook(report);
        }
    }
}

/// User items inside `records` (the producer_errors_total metric counts items).
fn items_in<T>(records: &[Waiting<Outgoing<T>>]) -> u64 {
    records.iter().map(|w| w.record.tags.len() as u64).sum()
}

/// When the delivery timeout of the oldest item in a record ends.
fn record_deadline<T>(waiting: &Waiting<Outgoing<T>>) -> Option<Instant> {
    waiting.record.tags.iter().filter_map(|t| t.deadline).min()
}

mod call_results;
mod refresh;
#[cfg(test)]
mod tests;
