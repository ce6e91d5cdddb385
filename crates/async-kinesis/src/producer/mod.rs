//! The producer: put items, get a delivery receipt for each.
//!
//! ```no_run
//! use async_kinesis::producer::Producer;
//! use async_kinesis::processor::JsonLineProcessor;
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder("orders")
//!     .processor(JsonLineProcessor::default())
//!     .build()
//!     .await?;
//! // The first await is back-pressure; the receipt resolves once Kinesis has the item.
//! let receipt = producer.put_with_key(json!({"order": 1}), "customer-7").await?;
//! let delivery = receipt.await?;
//! println!("stored in {} at {}", delivery.shard_id, delivery.sequence_number);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Delivery semantics
//!
//! - **Every item is accounted for.** Its receipt resolves to a [`Delivery`] or to a
//!   [`PutError`] that hands the item back; nothing is dropped without its receipt saying so.
//! - **At least once.** A record whose PutRecords answer was lost (timeout, reset) is sent again,
//!   so Kinesis may store it twice; consumers see the duplicate.
//! - **Order per partition key.** Records of one key go to one shard, and each shard has one
//!   PutRecords call in flight; records that must be retried go back to the front of their
//!   shard's queue. Within one call, Kinesis may accept a later record of a key and refuse an
//!   earlier one; the refused one is then stored after it. During resharding, records of a key
//!   may briefly go to the parent and child shards in parallel. On a stream whose service
//!   distributes records itself ([`RecordDistribution::Auto`](crate::RecordDistribution)),
//!   keys do not route: order is kept only within a shard, and KPL items are written as plain
//!   records (KPL readers drop aggregated items whose keys do not belong to the shard).
//! - **Rate limits per shard.** Records are routed by the MD5 of their partition key (or their
//!   explicit hash key) onto the stream's shard map, and each shard's records/s and bytes/s
//!   budget is respected, slowing down when Kinesis throttles anyway. A shard at its limit
//!   sends full calls (up to a second of its budget) as the budget allows, not one record at a
//!   time as each fits; a full budget always admits one record, so a shard never stalls.
//!   Aggregates are at most [`ProducerConfig::aggregate_bytes`] (64 KiB) so they pass a
//!   shard's byte budget in small steps. Shards are served in rotation when more are busy than
//!   calls may be in flight.
//! - **Keyless items spread.** Items put without a key share a random key until the record
//!   holding them is sealed; each next key is drawn to route to the shard that has had the
//!   fewest keyless bytes (passing over congested shards), so keyless traffic spreads evenly,
//!   aggregated or not; on many shards, through an explicit hash key inside the wanted shard's
//!   range when no drawn key routes there. (An item that overflowed a full record starts the
//!   next one under the same key.)
//! - **One bad record does not fail a call.** Keys are checked as the service counts them
//!   (1–256 UTF-16 code units); of a call the service still refuses as a whole for its input,
//!   the records its message names come back with that message and the others are sent again
//!   at once; when it names none, the call is split in halves until the bad record is alone.
//!
//! # Back-pressure and cancellation
//!
//! The producer queues at most [`ProducerConfig::max_queue_size`] items and
//! [`ProducerConfig::max_queue_bytes`] bytes that are not yet resolved; [`Producer::put`]
//! waits for room. That wait is not cancel safe (the item is dropped with the future), so
//! where it may be cancelled, wait in [`Producer::reserve`] instead: it returns a [`Permit`]
//! (room for one item of the largest size) without taking any item, and
//! [`Permit::put`] puts one without waiting. [`Producer::try_reserve`] does not wait at all.
//!
//! ```no_run
//! use std::time::Duration;
//! use async_kinesis::producer::Producer;
//!
//! # async fn demo(producer: Producer<async_kinesis::processor::JsonProcessor>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let item = serde_json::json!({"order": 1});
//! match tokio::time::timeout(Duration::from_secs(1), producer.reserve()).await {
//!     Ok(permit) => drop(permit?.put_with_key(item, "customer-7")?),
//!     Err(_) => println!("no room within a second; still holding {item}"),
//! }
//! producer.close_within(Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! [`Producer::flush_within`] and [`Producer::close_within`] wait at most a given time
//! ([`Error::Timeout`] after it); the flush or close goes on in the background, and every
//! receipt still resolves.
//!
//! # Closing and dropping
//!
//! [`Producer::close`] sends everything, waits until every receipt is resolved, and stops.
//! Puts still waiting for room fail at once with their item ([`PutErrorKind::Closed`]);
//! reserves still waiting fail with [`Error::Closed`], and puts through permits reserved
//! before fail with their item.
//! Dropping the last handle without closing does the same in the background: the task keeps
//! running until everything accepted is resolved, without blocking the drop. Only stopping the
//! tokio runtime stops it early; then unresolved receipts report
//! [`PutErrorKind::WorkerGone`].
//!
//! # Inside
//!
//! One background task (the worker) owns all state; handles only prepare items and send them
//! over a channel. The words below are the modules' names.
//!
//! ```text
//!  put / Permit::put    keys checked, item serialized, size checked; the item holds room
//!        │              (an item slot and its bytes) until its receipt resolves
//!        ▼
//!  Command::Put ──channel──▶ Worker
//!                              │ route by partition key / explicit hash key (ShardMap);
//!                              │ keyless items get a key (keyless)
//!                              ▼
//!                            Lane, one per shard: the processor's aggregator seals records
//!                              ▼
//!                            ShardQueue: records waiting, retries back at the front
//!                              │ ShardBudget admits (records/s, bytes/s, slowed by throttles);
//!                              │ LaneRotation serves the lanes in turn
//!                              ▼
//!                            PutRecords call: one in flight per shard
//!                              │ per record: deliver, retry (RetryPolicy), or fail with the item;
//!                              │ per call: retry, split, isolate the bad record, or fail
//!                              ▼
//!                            receipts resolved; the Ledger tells flush and close when every
//!                            item put before them is resolved
//! ```

mod builder;
mod config;
mod keyless;
mod lane;
mod lane_rotation;
mod ledger;
mod outcome;
mod permit;
mod put_records;
mod rate_limit;
mod receipt;
mod shard_queue;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, TryAcquireError, mpsc, oneshot};

pub use builder::ProducerBuilder;
pub use config::{AfterFlush, DEFAULT_AGGREGATE_BYTES, FlushReport, ProducerConfig};
pub use permit::{Permit, TryReserveError};
pub use receipt::{Delivery, DeliveryResult, PutError, PutErrorKind, Receipt};

use crate::error::Error;
use crate::processor::{JsonProcessor, Processor, RejectReason, check_keys};
use crate::stream::stream_ref::{IntoStreamRef, StreamRef};
use permit::Permits;
use worker::{AcceptedItem, Command};

/// A handle to a producer. Cheap to clone; all clones feed the same background task.
pub struct Producer<P: Processor> {
    shared: Arc<Shared<P>>,
}

struct Shared<P: Processor> {
    processor: P,
    stream: StreamRef,
    commands: mpsc::UnboundedSender<Command<P::Item>>,
    item_room: Arc<Semaphore>,
    byte_room: Arc<Semaphore>,
    max_record_size: usize,
    closed: AtomicBool,
}

impl<P: Processor> Clone for Producer<P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Processor> std::fmt::Debug for Producer<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.shared.stream)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Producer<JsonProcessor> {
    /// Starts building a producer for `stream` (a name or ARN). The processor defaults to
    /// [`JsonProcessor`]; choose another with [`ProducerBuilder::processor`].
    pub fn builder(stream: impl IntoStreamRef) -> ProducerBuilder<JsonProcessor> {
        ProducerBuilder::new(stream.into_stream_ref())
    }
}

impl<P: Processor> Producer<P> {
    pub(crate) fn start(
        processor: P,
        stream: StreamRef,
        config: &ProducerConfig,
        max_record_size: usize,
    ) -> (Self, mpsc::UnboundedReceiver<Command<P::Item>>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let shared = Shared {
            processor,
            stream,
            commands,
            item_room: Arc::new(Semaphore::new(config.max_queue_size)),
            byte_room: Arc::new(Semaphore::new(config.max_queue_bytes)),
            max_record_size,
            closed: AtomicBool::new(false),
        };
        (
            Self {
                shared: Arc::new(shared),
            },
            receiver,
        )
    }

    /// The stream this producer writes to.
    pub fn stream(&self) -> &StreamRef {
        &self.shared.stream
    }

    /// Puts an item under a partition key the producer chooses (a random one per record, drawn
    /// to route to the shard that has had the fewest keyless bytes, so records spread evenly
    /// over the shards).
    ///
    /// Waiting here is back-pressure: it returns once the producer has room for the item. The
    /// returned [`Receipt`] resolves when the item is delivered or has failed.
    ///
    /// # Errors
    /// The item comes back in the [`PutError`] when it cannot be serialized, is too large, or
    /// the producer is closed.
    ///
    /// # Cancel safety
    /// Not cancel safe: cancelled while waiting for room, the item is dropped (it was never
    /// accepted, so no receipt reports it). To wait for room where the wait may be cancelled
    /// (in `select!`, under a timeout), wait in [`Producer::reserve`], which is cancel safe, and
    /// put through the [`Permit`] it returns, which does not wait.
    pub async fn put(&self, item: P::Item) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(item, None, None).await
    }

    /// Puts an item under `partition_key` (1–256 characters, counted in UTF-16 code units as the
    /// service counts them). Items of one key keep their order.
    ///
    /// # Errors
    /// As for [`Producer::put`], and for an invalid key.
    ///
    /// # Cancel safety
    /// As for [`Producer::put`].
    pub async fn put_with_key(
        &self,
        item: P::Item,
        partition_key: impl Into<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(item, Some(partition_key.into()), None).await
    }

    /// Puts an item under `partition_key`, routed by `explicit_hash_key` (a decimal number in
    /// 0..=2^128−1) instead of the key's hash.
    ///
    /// # Errors
    /// As for [`Producer::put_with_key`], and for an invalid explicit hash key.
    ///
    /// # Cancel safety
    /// As for [`Producer::put`].
    pub async fn put_with_hash_key(
        &self,
        item: P::Item,
        partition_key: impl Into<String>,
        explicit_hash_key: impl Into<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(
            item,
            Some(partition_key.into()),
            Some(explicit_hash_key.into()),
        )
        .await
    }

    /// Waits for room for one item of the largest size this producer accepts (one item slot
    /// and the maximum record size of the byte budget), and returns it as a [`Permit`] to put
    /// one item through without waiting.
    ///
    /// The permit's put keeps the bytes its item needs and gives the rest back at once; an
    /// unused permit gives everything back when dropped. While held, a permit counts as a
    /// maximum-size item: many permits held at once leave less room for other puts.
    ///
    /// # Errors
    /// [`Error::Closed`] when the producer is closed (also while waiting).
    ///
    /// # Cancel safety
    /// Cancel safe: no item has been handed over, so nothing is lost, and the room waited for
    /// is not taken.
    pub async fn reserve(&self) -> Result<Permit<'_, P>, Error> {
        let closed = || Error::Closed { what: "producer" };
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let room = self
            .room_for(self.shared.max_record_size)
            .await
            .ok_or_else(closed)?;
        Ok(Permit::new(self, room))
    }

    /// Like [`Producer::reserve`], without waiting: a [`Permit`] when there is room now.
    ///
    /// # Errors
    /// [`TryReserveError::Full`] when there is no room now, [`TryReserveError::Closed`] when
    /// the producer is closed.
    pub fn try_reserve(&self) -> Result<Permit<'_, P>, TryReserveError> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(TryReserveError::Closed);
        }
        let refused = |err| match err {
            TryAcquireError::Closed => TryReserveError::Closed,
            TryAcquireError::NoPermits => TryReserveError::Full,
        };
        let items = shared
            .item_room
            .clone()
            .try_acquire_owned()
            .map_err(refused)?;
        let bytes = shared
            .byte_room
            .clone()
            .try_acquire_many_owned(record_permits(shared.max_record_size))
            .map_err(refused)?;
        Ok(Permit::new(
            self,
            Permits {
                _items: items,
                bytes,
            },
        ))
    }

    async fn put_inner(
        &self,
        item: P::Item,
        partition_key: Option<String>,
        explicit_hash_key: Option<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        let prepared = self.prepare(item, partition_key, explicit_hash_key)?;
        match self.room_for(prepared.size).await {
            Some(room) => self.send(prepared, room),
            None => Err(PutError::new(PutErrorKind::Closed, prepared.item)),
        }
    }

    /// Checks an item for a put: the producer open, the keys valid, the item serialized and
    /// within the maximum record size. The item comes back in the error.
    fn prepare(
        &self,
        item: P::Item,
        partition_key: Option<String>,
        explicit_hash_key: Option<String>,
    ) -> Result<Prepared<P::Item>, PutError<P::Item>> {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(PutError::new(PutErrorKind::Closed, item));
        }
        if let Some(key) = &partition_key
            && let Err(reason) = check_keys(key, explicit_hash_key.as_deref())
        {
            let kind = match reason {
                RejectReason::InvalidExplicitHashKey(key) => {
                    PutErrorKind::InvalidExplicitHashKey(key)
                }
                other => PutErrorKind::InvalidPartitionKey(other.to_string()),
            };
            return Err(PutError::new(kind, item));
        }
        let data = match shared.processor.serialize(&item) {
            Ok(data) => data,
            Err(err) => return Err(PutError::new(PutErrorKind::Serialize(err), item)),
        };
        // Unkeyed items get a 32-character key in the worker, and on many shards an explicit
        // hash key (up to 39 digits, with a few bytes of framing inside a KPL aggregate): room
        // for both is counted, so whether an item near the limit fits does not depend on the
        // key drawn for it.
        let key_len = partition_key.as_ref().map_or(32 + 39 + 8, String::len);
        let size = data.len() + key_len;
        if size > shared.max_record_size {
            let max = shared.max_record_size;
            return Err(PutError::new(PutErrorKind::TooLarge { size, max }, item));
        }
        Ok(Prepared {
            item,
            data,
            partition_key,
            explicit_hash_key,
            size,
        })
    }

    /// Hands a prepared item and its room to the worker.
    fn send(
        &self,
        prepared: Prepared<P::Item>,
        permits: Permits,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        let Prepared {
            item,
            data,
            partition_key,
            explicit_hash_key,
            size: _,
        } = prepared;
        let (reply, outcome) = oneshot::channel();
        let pending = AcceptedItem {
            item,
            data,
            partition_key,
            explicit_hash_key,
            reply,
            permits,
        };
        match self.shared.commands.send(Command::Put(Box::new(pending))) {
            Ok(()) => Ok(Receipt::new(outcome)),
            Err(mpsc::error::SendError(Command::Put(pending))) => {
                Err(PutError::new(PutErrorKind::Closed, pending.item))
            }
            // Proven invariant: the command just sent is a Put.
            Err(_) => unreachable!("send only sends Put commands"),
        }
    }

    /// Waits for room for one item of `size` bytes; `None` if the producer closed meanwhile.
    async fn room_for(&self, size: usize) -> Option<Permits> {
        let shared = &*self.shared;
        let items = shared.item_room.clone().acquire_owned().await.ok()?;
        let bytes = shared
            .byte_room
            .clone()
            .acquire_many_owned(record_permits(size))
            .await
            .ok()?;
        Some(Permits {
            _items: items,
            bytes,
        })
    }

    /// Sends everything buffered now and waits until every item put before this call is
    /// resolved (delivered or failed).
    ///
    /// # Errors
    /// [`Error::Closed`] when the producer's task has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe: the flush still happens; only the wait is abandoned.
    pub async fn flush(&self) -> Result<(), Error> {
        self.ask(Command::Flush, FLUSH, None).await
    }

    /// Like [`Producer::flush`], waiting at most `timeout`: the flush goes on in the
    /// background after it.
    ///
    /// # Errors
    /// [`Error::Timeout`] (what: `"producer flush"`) when items put before the call are still
    /// unresolved after `timeout`; their receipts resolve later. [`Error::Closed`] when the
    /// producer's task has stopped.
    ///
    /// # Cancel safety
    /// As for [`Producer::flush`].
    pub async fn flush_within(&self, timeout: Duration) -> Result<(), Error> {
        self.ask(Command::Flush, FLUSH, Some(timeout)).await
    }

    /// Stops accepting items, sends everything, waits until every receipt is resolved, and
    /// stops the background task. Other handles' later puts fail with
    /// [`PutErrorKind::Closed`], and so do puts through a [`Permit`] reserved before.
    ///
    /// # Errors
    /// [`Error::Closed`] when the producer was already closed.
    ///
    /// # Cancel safety
    /// Cancel safe: closing continues in the background.
    pub async fn close(&self) -> Result<(), Error> {
        self.close_inner(None).await
    }

    /// Like [`Producer::close`], waiting at most `timeout`: the producer is closed at once,
    /// and its task goes on sending in the background after the timeout until every receipt
    /// is resolved.
    ///
    /// # Errors
    /// [`Error::Timeout`] (what: `"producer close"`) when items are still unresolved after
    /// `timeout`: the producer is closed all the same, and their receipts resolve later
    /// (await them to know each item's fate). [`Error::Closed`] when the producer was already
    /// closed.
    ///
    /// # Cancel safety
    /// As for [`Producer::close`].
    pub async fn close_within(&self, timeout: Duration) -> Result<(), Error> {
        self.close_inner(Some(timeout)).await
    }

    async fn close_inner(&self, timeout: Option<Duration>) -> Result<(), Error> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(Error::Closed { what: "producer" });
        }
        // Puts and reserves waiting for room fail at once (puts with their item).
        self.shared.item_room.close();
        self.shared.byte_room.close();
        self.ask(Command::Close, CLOSE, timeout).await
    }

    /// Sends the worker a flush or close command and waits for its answer, at most `timeout`
    /// when there is one; `what` names the wait in a timeout error.
    async fn ask(
        &self,
        command: fn(oneshot::Sender<()>) -> Command<P::Item>,
        what: &'static str,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let closed = || Error::Closed { what: "producer" };
        let (reply, done) = oneshot::channel();
        self.shared
            .commands
            .send(command(reply))
            .map_err(|_| closed())?;
        let answer = match timeout {
            None => done.await,
            Some(waited) => tokio::time::timeout(waited, done)
                .await
                .map_err(|_| Error::Timeout { what, waited })?,
        };
        answer.map_err(|_| closed())
    }
}

/// What a timed-out [`Producer::flush_within`] waited for ([`Error::Timeout`]'s `what`).
const FLUSH: &str = "producer flush";
/// What a timed-out [`Producer::close_within`] waited for.
const CLOSE: &str = "producer close";

/// An item checked and serialized for a put, with the bytes it needs in the queue.
struct Prepared<T> {
    item: T,
    data: Bytes,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    size: usize,
}

/// Byte permits for an item of `size` bytes.
fn record_permits(size: usize) -> u32 {
    // Proven invariant: sizes are at most the maximum record size, validated ≤ 10 MiB
    // (`check_max_record_size`); saturating keeps the conversion total.
    u32::try_from(size).unwrap_or(u32::MAX)
}
