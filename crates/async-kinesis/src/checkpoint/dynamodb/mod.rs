//! The DynamoDB store: leases, checkpoints and worker registrations in one table, every write
//! conditional.

mod access;
mod builder;
mod error;
mod item;
mod observe;
mod ops;
mod prune;
mod registrations;
mod sweep;
mod table;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use futures::FutureExt;
use tokio::time::Instant;

pub use builder::DynamoDbStoreBuilder;
pub use error::DynamoDbError;
use observe::{LastProgress, Observer};
pub use sweep::ExpiryRefresh;
use table::Table;

use super::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, Lease, LeaseInfo, LeaseTiming, Position,
    Progress, StartingPoint, WorkerId,
};

/// Leases and checkpoints in a DynamoDB table, shared by every worker of an application
/// (feature `dynamodb`).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use async_kinesis::checkpoint::DynamoDbStore;
///
/// let config = aws_config::load_from_env().await;
/// let store = DynamoDbStore::builder("orders-app") // table kinesis-checkpoints-orders-app
///     .sdk_config(&config)
///     .session_timeout(Duration::from_secs(60))
///     .heartbeat_frequency(Duration::from_secs(15))
///     .ttl_hours(Some(24 * 7))
///     .build() // checks the table, creating it if missing
///     .await?;
/// let consumer = async_kinesis::Consumer::builder("orders").checkpointer(store);
/// # drop(consumer);
/// # Ok(()) }
/// ```
///
/// # Item layout
///
/// All items of one application (group) reading one stream share a partition, so listing them is
/// one query:
///
/// | attribute | type | meaning |
/// | --- | --- | --- |
/// | `app_stream` | S, partition key | `<application name>:<stream>` |
/// | `shard_id` | S, sort key | the shard id; `worker#<worker id>` for a worker registration |
/// | `owner` | S | lease holder; absent while the lease is free |
/// | `token` | N | fencing token: +1 on every claim, kept across release |
/// | `beat` | N | lease counter: +1 on every claim, renew and release (registrations: every heartbeat) |
/// | `sequence_number` | S | checkpoint: last processed record; absent before the first |
/// | `sub_sequence` | N | checkpoint: last processed user record inside it; absent for all of them |
/// | `start_timestamp_ns` | N | where reading started before the first checkpoint: `AT_TIMESTAMP` in nanoseconds since the Unix epoch; absent otherwise |
/// | `start_sequence` | S | where reading started before the first checkpoint: the first record's sequence number; absent otherwise |
/// | `shard_end` | BOOL | `true` once the shard was read to its end (final) |
/// | `worker` | S | registrations only: the worker id |
/// | `expires_at` | N | with [`ttl_hours`](DynamoDbStoreBuilder::ttl_hours) only: DynamoDB TTL, epoch seconds |
///
/// A shard has at most one of `start_timestamp_ns` and `start_sequence`
/// ([`CheckpointStore::record_start`]): written only while the item has neither, nor a
/// checkpoint nor `shard_end`; kept after the first checkpoint, which takes precedence. A reader
/// that does not know them (an older version of this store) sees no progress and starts from its
/// iterator type, as before.
///
/// Every write carries a condition: writes to a lease require its owner and token, so a worker
/// that lost its lease can change nothing. Checkpoints move forward only: DynamoDB cannot compare
/// 56-digit sequence numbers as numbers, so the store compares positions itself and writes on the
/// condition that the stored checkpoint is still the one it compared with, repeating on a
/// concurrent change.
///
/// # Expiry without comparing clocks
///
/// The store never compares timestamps written by different hosts. Each renewal bumps the lease's
/// `beat`; a store remembers when, on this process's monotonic clock, it first saw a lease's
/// current owner, token and beat, and judges the lease expired once they have not changed for a
/// session timeout of its own watching. It then claims it on the condition that they are still
/// the ones it watched. Consequence: **a lease is taken over at the earliest one session timeout
/// after the taker first looked at it**, however long its holder has been gone; a newly started
/// worker waits a session timeout before taking over abandoned shards. [`CheckpointStore::list`]
/// reports no owner for leases this store judges expired. Worker registrations work the same way
/// (every heartbeat bumps `beat`; a registration seen for the first time counts as live), and
/// expired registrations are deleted on the condition that they are still unchanged.
///
/// # Time to live
///
/// Without `ttl_hours` items stay until the table is deleted. With it, DynamoDB TTL is enabled on
/// `expires_at` and every write sets it `ttl_hours` ahead. Items that are not written for a
/// while (finished shards, released leases, idle workers' items) are kept ahead by the live
/// workers: a heartbeat (at most every eighth of the TTL per stream and store) pushes the expiry
/// of **every** item of the group whose expiry is less than half the TTL away. So while any
/// worker of the group beats, every item's expiry stays at least 3/8 of the TTL ahead, and a
/// running group never loses a checkpoint. A group with no live worker keeps its items for at
/// least 3/8 of the TTL (9 hours with `ttl_hours(Some(24))`) and at most the TTL; after that its
/// consumers start from their iterator type (with `LATEST` that skips records). Choose the TTL
/// accordingly; it must span at least 60 session timeouts. Expiry values come from the writing
/// host's clock, which must be roughly right. A failed refresh is logged and tried again at the
/// next heartbeat; the heartbeat itself (the worker's registration) still succeeds, so the
/// worker goes on balancing its share meanwhile.
/// [`refresh_expiry`](DynamoDbStore::refresh_expiry) runs one at once and reports its errors.
///
/// The refresh writes up to 100 items per TransactWriteItems call, each update on the
/// condition that the item still exists and its expiry is not already further ahead (so it
/// never re-creates a deleted item, never shortens an expiry and changes nothing else); a
/// transaction cancelled by some of its conditions is repeated without them. Transactional
/// writes cost two write units per item, and while one is in flight a single write to one of
/// its items can fail with a retryable `TransactionConflictException`; both only happen once
/// per eighth of the TTL.
///
/// # The table
///
/// `build` checks the table (default name `kinesis-checkpoints-<name>`) and its key schema; with
/// [`create_table`](DynamoDbStoreBuilder::create_table) (the default) it creates a missing table,
/// pay per request, and waits until it is ACTIVE. If the table disappears while workers run (it
/// was deleted, or a local emulator restarted), the failing call re-creates it and returns a
/// retryable error whose source is [`DynamoDbError::TableRecreated`]; leases and checkpoints then
/// start from nothing, so consumers read again from their iterator type: with `TRIM_HORIZON`
/// records are delivered twice, never lost; with `LATEST` the records between the lost
/// checkpoints and now are skipped. Without `create_table` the error is
/// [`DynamoDbError::TableMissing`], not retryable.
///
/// # Costs
///
/// Claims read the item and write it (one strongly consistent read, one write); renewals,
/// releases and heartbeats are one write; a checkpoint is usually one write (a read too when the
/// store has not seen the lease's checkpoint yet); `list` and `live_workers` are one query;
/// [`prune_finished`](CheckpointStore::prune_finished) is one conditional delete per shard
/// (two for a finished lease that was never released).
///
/// # Damaged items
///
/// A shard's item that does not have the layout above (a missing `token` or `beat`, an
/// attribute of the wrong type, a sequence number that is not decimal, ...) is unreadable:
/// calls about that shard fail with [`CheckpointError::UnreadableEntry`] naming the table and
/// key, `list` leaves it out with a warning, and `prune_finished` leaves it alone. A damaged
/// worker registration is left out of `live_workers` the same way. A claim whose token cannot
/// grow fails with [`CheckpointError::TokenExhausted`].
///
/// Clones share the client and what the store has watched.
#[derive(Clone)]
pub struct DynamoDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    table: Table,
    app: String,
    timing: LeaseTiming,
    ttl: Option<Duration>,
    observer: Observer,
    last: LastProgress,
    /// When this process last refreshed the expiry of each group's items.
    sweeps: Mutex<HashMap<String, Instant>>,
    /// One re-creation of a vanished table at a time.
    recreating: tokio::sync::Mutex<()>,
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("DynamoDbStore")
            .field("app", &inner.app)
            .field("table", &inner.table.name)
            .field("endpoint", &inner.table.endpoint)
            .field("timing", &inner.timing)
            .field("create_table", &inner.table.create)
            .field("ttl", &inner.ttl)
            .finish_non_exhaustive()
    }
}

impl DynamoDbStore {
    /// A builder for the store of application `name` (the group of workers sharing leases; the
    /// Python library's `name`).
    pub fn builder(name: impl Into<String>) -> DynamoDbStoreBuilder {
        DynamoDbStoreBuilder::new(name.into())
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The application name.
    pub fn app_name(&self) -> &str {
        &self.inner.app
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.table.name
    }

    /// The DynamoDB client, for calls this store does not make.
    pub fn client(&self) -> &Client {
        &self.inner.table.client
    }
}

/// Why a store operation did not succeed.
enum Fail {
    /// The answer for the caller (not owned, unknown shard).
    Lease(CheckpointError),
    /// DynamoDB failed.
    Db(DynamoDbError),
}

impl From<DynamoDbError> for Fail {
    fn from(err: DynamoDbError) -> Self {
        Self::Db(err)
    }
}

impl CheckpointStore for DynamoDbStore {
    fn timing(&self) -> LeaseTiming {
        self.inner.timing
    }

    fn claim<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<Claim, CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.claim(stream, shard_id, worker).await;
            inner.conclude("claim", result).await
        }
        .boxed()
    }

    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.renew(lease).await;
            inner.conclude("renew", result).await
        }
        .boxed()
    }

    fn checkpoint<'a>(
        &'a self,
        lease: &'a Lease,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.checkpoint(lease, position).await;
            inner.conclude("checkpoint", result).await
        }
        .boxed()
    }

    fn record_start<'a>(
        &'a self,
        lease: &'a Lease,
        point: &'a StartingPoint,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.record_start(lease, point).await;
            inner.conclude("record_start", result).await
        }
        .boxed()
    }

    fn mark_shard_end<'a>(
        &'a self,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.mark_shard_end(lease).await;
            inner.conclude("mark_shard_end", result).await
        }
        .boxed()
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.release(lease).await;
            inner.conclude("release", result).await
        }
        .boxed()
    }

    fn progress<'a>(
        &'a self,
        stream: &'a str,
        shard_id: &'a str,
    ) -> BoxFuture<'a, Result<Progress, CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.progress(stream, shard_id).await;
            inner.conclude("progress", result).await
        }
        .boxed()
    }

    fn list<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<LeaseInfo>, CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.list(stream).await;
            inner.conclude("list", result).await
        }
        .boxed()
    }

    fn heartbeat<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.heartbeat(stream, worker).await;
            inner.conclude("heartbeat", result).await
        }
        .boxed()
    }

    fn live_workers<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Vec<WorkerId>, CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.live_workers(stream).await;
            inner.conclude("live_workers", result).await
        }
        .boxed()
    }

    fn leave<'a>(
        &'a self,
        stream: &'a str,
        worker: &'a WorkerId,
    ) -> BoxFuture<'a, Result<(), CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.leave(stream, worker).await;
            inner.conclude("leave", result).await
        }
        .boxed()
    }

    fn prune_finished<'a>(
        &'a self,
        stream: &'a str,
        shard_ids: &'a [String],
    ) -> BoxFuture<'a, Result<usize, CheckpointError>> {
        let inner = &self.inner;
        async move {
            let result = inner.prune_finished(stream, shard_ids).await;
            inner.conclude("prune_finished", result).await
        }
        .boxed()
    }
}
