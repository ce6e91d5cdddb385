//! The consumer: every shard of a stream as one [`Stream`] of records.
//!
//! # Quick start
//!
//! ```no_run
//! use futures::StreamExt;
//! use async_kinesis::consumer::Consumer;
//!
//! # async fn demo() -> Result<(), async_kinesis::consumer::BuildError> {
//! let mut consumer = Consumer::builder("orders").build().await?; // JSON items, TRIM_HORIZON
//! while let Some(record) = consumer.next().await {
//!     match record {
//!         Ok(record) => println!("{} {}: {}", record.shard_id, record.sequence_number, record.item),
//!         Err(err) => eprintln!("{err}"), // the stream goes on
//!     }
//! #   break;
//! }
//! let report = consumer.shutdown(std::time::Duration::from_secs(10)).await;
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```
//!
//! # Delivery semantics
//!
//! - **At least once.** A checkpoint moves only over the contiguous prefix of acknowledged records
//!   of a shard ([`AckPolicy`]); it never passes a record that was not handed to you and
//!   acknowledged. After a restart, records after the last checkpoint are delivered again: the
//!   duplicates are at most the records that were unacknowledged, or acknowledged but not yet
//!   written (`checkpoint_interval` / `checkpoint_every`), when the process stopped.
//!   [`Consumer::shutdown`] writes the final checkpoints, so a clean shutdown re-delivers only
//!   what was not acknowledged — under [`AckPolicy::OnNextPoll`] that includes the last record
//!   handed out, unless you acknowledge it yourself before the shutdown.
//! - **Ordered per shard**, and per partition key across resharding: a child shard is read only
//!   after all of its parents (both, for a merge) were read to their end. Records of different
//!   shards interleave.
//! - **Nothing dropped silently.** A slow consumer slows the readers (the queue is bounded by
//!   items and bytes). Throttling, expired iterators and transient errors are retried; what
//!   cannot be retried — a shard or stream that is gone, an undecodable record, a lost lease — is
//!   an `Err` item of the stream (plus a metric and a log line), and the other shards go on.
//!   A reader that panics (a deserializer, a dead-letter callback) is an error item too
//!   ([`ConsumeError::ReaderPanicked`]): its shard stops and its lease is released for another
//!   worker. Shard discovery failures are retried with the shards known so far. The stream ends
//!   only after a shutdown, when the consumer is dropped, or when the stream itself is gone
//!   (after the same final checkpoints and releases as a shutdown).
//! - **LATEST never skips.** The first start of a shard at LATEST (or AT_TIMESTAMP) records its
//!   starting point in the store before reading; a later claim of the shard without a
//!   checkpoint (a hand-off, a lease lost, a restart) starts there, not at a new LATEST.
//!
//! # Checkpoints and leases
//!
//! Each shard is read under a lease of the [`checkpoint`](crate::checkpoint) store (default: a
//! process-local [`MemoryStore`](crate::checkpoint::MemoryStore)); a shard read to its end is
//! recorded as finished so no process reads it again.
//!
//! Consumers of one application sharing a store (Redis, DynamoDB) form a **group**. Every
//! heartbeat ([`LeaseTiming`](crate::checkpoint::LeaseTiming)) each one registers itself, renews
//! its leases and computes its fair share: the shards readable now, split evenly over the live
//! workers (one more for the first workers in id order when it does not divide). Below its
//! share it claims free or expired leases (also between heartbeats); above it, it **hands
//! leases off**: it stops reading the shard, hands out nothing more of it (records already
//! queued come from the next owner instead), waits briefly for the records it handed out to be
//! acknowledged, writes the final checkpoint and releases the lease.
//!
//! A lease that cannot be renewed before it could expire (the store is unreachable) is given up:
//! the shard stops here and a [`LeaseExpired`](crate::checkpoint::CheckpointError::LeaseExpired)
//! item says so; a lease lost to another worker ([`NotOwned`](crate::checkpoint::CheckpointError::NotOwned))
//! stops it the same way. Either way its pending checkpoint is refused by the store (fenced), so
//! two workers never move one shard's checkpoint. [`Consumer::group_status`] shows the group:
//! live workers, owner, token and checkpoint per shard.
//!
//! # Inside
//!
//! A supervisor task owns the shard table and the leases; one reader task per owned shard
//! reads it. The words below are the modules' names.
//!
//! ```text
//!  Supervisor: shard listings (StreamSetup) ──▶ Topology: parents before children
//!     │ leases in the CheckpointStore: claim, renew, balance, hand off (balance, group)
//!     ▼
//!  ShardReader, one task per owned shard: GetRecords polling, or SubscribeToShard (fanout)
//!     │ from the checkpoint or the start position (origin); failures: RetryPolicy
//!     │ decode: the processor's items, or poison (PoisonPolicy)
//!     ▼
//!  queue: bounded by max_queue_size / max_queue_bytes; a full queue pauses the readers
//!     ▼
//!  Consumer (a futures::Stream) ──▶ Record / ConsumeError items to you
//!     │ acknowledgements (AckPolicy, ack): the contiguous acknowledged prefix per shard
//!     ▼
//!  Supervisor writes checkpoints over that prefix, fenced by the lease
//! ```

mod ack;
mod balance;
mod builder;
mod config;
mod context;
mod decode;
mod error;
mod fanout;
mod group;
mod origin;
mod processing_time;
mod queue;
mod record;
mod shard_reader;
mod shutdown;
mod status;
mod supervisor;
mod topology;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::{FutureExt, Stream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use ack::Acker;
pub use builder::ConsumerBuilder;
pub use config::{AckPolicy, DeadLetter, IteratorType, PoisonPolicy};
pub use error::{BuildError, ConsumeError, PoisonAction, PoisonRecord};
pub use group::{GroupShard, GroupStatus};
pub use record::Record;
pub use shutdown::ShutdownReport;
pub use status::{
    ConsumerStatus, ReadMode, SequenceRange, ShardDetail, ShardStats, TopologyStatus,
};

use crate::StreamClient;
use crate::checkpoint::{CheckpointError, CheckpointStore, WorkerId};
use crate::metrics::StreamLabels;
use crate::processor::{JsonProcessor, Processor};
use crate::stream::stream_ref::IntoStreamRef;
use config::ConsumerConfig;
use context::Context;
use processing_time::ProcessingTimer;
use queue::{QueueBudget, Receiver};
use status::StatusBoard;
use supervisor::{Command, Supervisor};

/// Every shard of a stream as one [`Stream`] of `Result<Record<T>, ConsumeError>`.
///
/// Built by [`Consumer::builder`]. Dropping it stops all reading at once without writing final
/// checkpoints; call [`Consumer::shutdown`] to stop cleanly.
pub struct Consumer<P: Processor = JsonProcessor> {
    rx: Receiver<P::Output>,
    buffer: VecDeque<Result<Record<P::Output>, ConsumeError>>,
    budget: Arc<QueueBudget>,
    last_yielded: Option<Acker>,
    processing: ProcessingTimer,
    ack_policy: AckPolicy,
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<StatusBoard>,
    ready: watch::Receiver<bool>,
    cancel: CancellationToken,
    labels: StreamLabels,
    worker: WorkerId,
    store: Arc<dyn CheckpointStore>,
    stream_name: Arc<str>,
}

impl<P: Processor> std::fmt::Debug for Consumer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("worker", &self.worker)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl Consumer<JsonProcessor> {
    /// A builder for a consumer of `stream` (a name or an ARN).
    pub fn builder(stream: impl IntoStreamRef) -> ConsumerBuilder<JsonProcessor> {
        ConsumerBuilder::new(stream)
    }
}

impl<P: Processor> Consumer<P> {
    fn start(
        client: StreamClient,
        config: ConsumerConfig,
        processor: P,
        store: Arc<dyn CheckpointStore>,
        fan_out_arn: Option<Arc<str>>,
    ) -> Self {
        let stream_name: Arc<str> = Arc::from(client.stream().name());
        let labels = StreamLabels::new(&stream_name);
        let worker = config.worker_id.clone().unwrap_or_else(WorkerId::generate);
        let budget = Arc::new(QueueBudget::new(
            config.max_queue_size,
            config.max_queue_bytes,
        ));
        let status = Arc::new(StatusBoard::default());
        let (out, rx) = mpsc::unbounded_channel();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = watch::channel(false);
        let cancel = CancellationToken::new();
        let ack_policy = config.ack_policy;
        let ctx = Arc::new(Context {
            client,
            stream_name: stream_name.clone(),
            config,
            processor,
            out,
            budget: budget.clone(),
            labels: labels.clone(),
            status: status.clone(),
            store: store.clone(),
            worker: worker.clone(),
            fan_out_arn,
        });
        let last_words = ctx.out.clone();
        let supervisor = Supervisor::new(ctx, command_rx, cancel.clone(), ready_tx);
        tokio::spawn(async move {
            // A panic must not end the stream silently: its last item says what happened.
            if let Err(payload) = AssertUnwindSafe(supervisor.run()).catch_unwind().await {
                let message = supervisor::panic_message(&*payload);
                tracing::error!(%message, "the consumer's supervisor panicked");
                let _ = last_words.send(queue::error_delivery(ConsumeError::SupervisorPanicked {
                    message,
                }));
            }
        });
        Self {
            rx,
            buffer: VecDeque::new(),
            budget,
            last_yielded: None,
            processing: ProcessingTimer::default(),
            ack_policy,
            commands,
            status,
            ready,
            cancel,
            labels,
            worker,
            store,
            stream_name,
        }
    }

    /// Waits until every shard that can be read right away holds an iterator. With
    /// [`IteratorType::Latest`], records written after this returns are delivered.
    ///
    /// # Errors
    /// [`ConsumeError::Closed`] when the consumer stopped first (e.g. the stream is missing; the
    /// reason is an error item of the stream).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self) -> Result<(), ConsumeError> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(drop)
            .map_err(|_| ConsumeError::Closed)
    }

    /// The state of every known shard: the Python library's `get_shard_status()` fields, plus
    /// lag, unacknowledged records and the last checkpoint per shard.
    pub fn shard_status(&self) -> ConsumerStatus {
        self.status.snapshot()
    }

    /// The whole group sharing the stream through the checkpoint store: live workers, the
    /// owner, fencing token and checkpoint of every shard, and lag of the shards read here.
    ///
    /// # Errors
    /// The store's error when it cannot be read.
    pub async fn group_status(&self) -> Result<GroupStatus, CheckpointError> {
        group::read(
            &*self.store,
            &self.stream_name,
            &self.worker,
            self.shard_status(),
        )
        .await
    }

    /// Whether this consumer has read everything there is for it right now: no record waits in
    /// its queue, and every known shard is read up ([`ShardDetail::is_read_up`]: finished,
    /// stopped, or read at its tip) or held by another live worker of the group.
    ///
    /// Reading goes on either way; a tool that reads a stream up to its end stops polling and
    /// shuts down once this says `true`. Records written after that are not covered.
    ///
    /// # Errors
    /// The store's error when a shard is not read here and the store cannot say who holds it.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn caught_up(&self) -> Result<bool, CheckpointError> {
        // Error items take no room in the budget: the channel itself must be empty too.
        if !self.buffer.is_empty() || !self.rx.is_empty() || self.budget.queued_items() > 0 {
            return Ok(false);
        }
        let status = self.shard_status();
        if status.shard_details.is_empty() {
            return Ok(false); // not listed yet
        }
        let pending: Vec<&str> = status
            .shard_details
            .iter()
            .filter(|d| !d.is_read_up())
            .map(|d| d.shard_id.as_str())
            .collect();
        if pending.is_empty() {
            return Ok(true);
        }
        let leases = self.store.list(&self.stream_name).await?;
        Ok(pending.iter().all(|shard_id| {
            leases.iter().any(|lease| {
                lease.shard_id == *shard_id
                    && lease
                        .owner
                        .as_ref()
                        .is_some_and(|owner| *owner != self.worker)
            })
        }))
    }

    /// This consumer's id in the checkpoint store.
    pub fn worker_id(&self) -> &WorkerId {
        &self.worker
    }

    /// Stops cleanly: stops fetching, waits up to `deadline` for handed-out records to be
    /// acknowledged, writes the final checkpoints and releases every lease. Records read but not
    /// yet handed out are not acknowledged and come again after a restart.
    ///
    /// With [`AckPolicy::OnNextPoll`] the last record handed out is **not** acknowledged by the
    /// shutdown: only asking for the next item would have, and a consumer shut down because
    /// processing that record failed must meet it again after a restart. When it was
    /// processed, acknowledge it before shutting down ([`Record::ack`], or an [`Acker`] kept
    /// from it) so a restart does not deliver it a second time.
    ///
    /// # Cancel safety
    /// Not cancel safe: once started, the shutdown runs to its end in the background.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        // The record handed out last stays unacknowledged (its processing may have failed) and
        // is handed back, so the shutdown does not wait for an acknowledgement that polling
        // would have given. Under `Explicit` the application may still acknowledge it.
        if let Some(acker) = self.last_yielded.take()
            && self.ack_policy == AckPolicy::OnNextPoll
        {
            let _ = acker.hand_back();
        }
        self.processing_run_over();
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { deadline, reply })
            .is_err()
        {
            return ShutdownReport::default();
        }
        answer.await.unwrap_or_default()
    }

    /// Acknowledges the record handed out last, when the policy says polling does.
    fn ack_previous(&mut self) {
        if let Some(acker) = self.last_yielded.take()
            && self.ack_policy == AckPolicy::OnNextPoll
        {
            acker.ack();
        }
    }

    /// Records how long the application had the records handed out since the buffer was last
    /// empty.
    fn processing_run_over(&mut self) {
        if let Some((each, records)) = self.processing.run_over(Instant::now) {
            self.labels.processing_times(each, records);
        }
    }
}

// No field is structurally pinned: items move in and out of the buffer by value.
impl<P: Processor> Unpin for Consumer<P> {}

impl<P: Processor> Stream for Consumer<P> {
    type Item = Result<Record<P::Output>, ConsumeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.ack_previous();
        loop {
            if let Some(item) = this.buffer.pop_front() {
                if let Ok(record) = &item {
                    if !record.acker.mark_handed_out() {
                        continue; // its shard's lease moved on; the next owner delivers it
                    }
                    this.last_yielded = Some(record.acker.clone());
                    this.processing.handed_out(Instant::now);
                }
                return Poll::Ready(Some(item));
            }
            // Everything handed out so far was processed: the application asks for more.
            this.processing_run_over();
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(delivery)) => {
                    this.budget.release(&delivery);
                    this.labels
                        .consumer_queue(this.budget.queued_items(), this.budget.queued_bytes());
                    this.buffer.extend(delivery.items);
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<P: Processor> Drop for Consumer<P> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
