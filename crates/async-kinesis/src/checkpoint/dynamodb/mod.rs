//! The DynamoDB store: leases, checkpoints and worker registrations in one table, every write
//! conditional.

mod builder;
mod error;
mod item;
mod observe;
mod table;
mod write;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures::FutureExt;
use tokio::time::Instant;

pub use builder::DynamoDbStoreBuilder;
pub use error::DynamoDbError;
use item::{
    BEAT, EXPIRES_AT, Item, LeaseItem, OWNER, SEQUENCE_NUMBER, SHARD_ID, SUB_SEQUENCE, TOKEN,
    WORKER, WORKER_PREFIX, WorkerItem, app_stream, key, n, names_in, s, worker_key,
};
use observe::{LastProgress, Observer};
use table::{Ensured, Table};
use write::{Write, Written, non_empty};

use super::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, FencingToken, Lease, LeaseInfo,
    LeaseTiming, Position, Progress, WorkerId,
};

/// Read-compare-write rounds before an operation gives up on an item that keeps changing.
const MAX_ATTEMPTS: u32 = 16;

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
/// | `shard_end` | BOOL | `true` once the shard was read to its end (final) |
/// | `worker` | S | registrations only: the worker id |
/// | `expires_at` | N | with [`ttl_hours`](DynamoDbStoreBuilder::ttl_hours) only: DynamoDB TTL, epoch seconds |
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
/// host's clock, which must be roughly right. A failed refresh fails the heartbeat with a
/// retryable error and is tried again at the next one.
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
/// store has not seen the lease's checkpoint yet); `list` and `live_workers` are one query.
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

impl Inner {
    fn new(table: Table, app: String, timing: LeaseTiming, ttl: Option<Duration>) -> Self {
        Self {
            table,
            app,
            timing,
            ttl,
            observer: Observer::new(timing.session_timeout),
            last: LastProgress::default(),
            sweeps: Mutex::default(),
            recreating: tokio::sync::Mutex::new(()),
        }
    }

    fn client(&self) -> &Client {
        &self.table.client
    }

    fn group(&self, stream: &str) -> String {
        app_stream(&self.app, stream)
    }

    fn sdk_error<E, R>(
        &self,
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> DynamoDbError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: crate::error::RawStatus + fmt::Debug + Send + Sync + 'static,
    {
        DynamoDbError::from_sdk(operation, &self.table.endpoint, err)
    }

    fn malformed(&self, group: &str, sort_key: &str, detail: String) -> DynamoDbError {
        DynamoDbError::MalformedItem {
            table: self.table.name.clone(),
            key: format!("{group} / {sort_key}"),
            detail,
        }
    }

    fn parse_lease(&self, group: &str, shard_id: &str, item: &Item) -> Result<LeaseItem, Fail> {
        LeaseItem::parse(item).map_err(|detail| self.malformed(group, shard_id, detail).into())
    }

    /// The expiry a write sets now, when the store has a TTL.
    fn expires_at(&self) -> Option<u64> {
        self.ttl.map(|ttl| epoch_seconds() + ttl.as_secs())
    }

    /// Turns a failure into the caller's error; a vanished table is re-created first when that
    /// is allowed.
    async fn conclude<T>(
        &self,
        operation: &'static str,
        result: Result<T, Fail>,
    ) -> Result<T, CheckpointError> {
        match result {
            Ok(value) => Ok(value),
            Err(Fail::Lease(err)) => Err(err),
            Err(Fail::Db(err)) if err.is_table_not_found() => {
                Err(self.table_vanished().await.into_store_error(operation))
            }
            Err(Fail::Db(err)) => Err(err.into_store_error(operation)),
        }
    }

    async fn table_vanished(&self) -> DynamoDbError {
        let table = self.table.name.clone();
        if !self.table.create {
            return DynamoDbError::TableMissing { table };
        }
        let _one_at_a_time = self.recreating.lock().await;
        // What was watched belongs to the vanished table.
        self.observer.clear();
        self.last.clear();
        match self.table.ensure().await {
            Ok(Ensured::Created) => {
                tracing::warn!(
                    table = %table,
                    "the DynamoDB checkpoint table had disappeared and was created again: \
                     leases and checkpoints start from nothing"
                );
                DynamoDbError::TableRecreated { table }
            }
            // Another call (or worker) re-created it first.
            Ok(Ensured::Existed) => DynamoDbError::TableRecreated { table },
            Err(err) => err,
        }
    }

    /// A strongly consistent read of one item.
    async fn get(&self, group: &str, sort_key: &str) -> Result<Option<Item>, DynamoDbError> {
        self.client()
            .get_item()
            .table_name(&self.table.name)
            .set_key(Some(key(group, sort_key)))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item.filter(|item| !item.is_empty()))
            .map_err(|e| self.sdk_error("GetItem", e))
    }

    /// Every item of `group` (whose sort key starts with `prefix`), strongly consistent.
    async fn query(&self, group: &str, prefix: Option<&str>) -> Result<Vec<Item>, DynamoDbError> {
        let (condition, mut values) = match prefix {
            None => ("#app_stream = :group", HashMap::new()),
            Some(prefix) => (
                "#app_stream = :group AND begins_with(#shard_id, :prefix)",
                HashMap::from([(":prefix".to_owned(), s(prefix))]),
            ),
        };
        values.insert(":group".to_owned(), s(group));
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(&self.table.name)
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(names_in(&[condition])))
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key.filter(|key| !key.is_empty());
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// A conditional UpdateItem (which never creates an item whose condition names its
    /// attributes). With a TTL it also pushes the item's expiry ahead.
    async fn update(
        &self,
        group: &str,
        sort_key: &str,
        mut write: Write,
        returns: ReturnValue,
    ) -> Result<Written, DynamoDbError> {
        if let Some(at) = self.expires_at() {
            write = write
                .set(format!("#{EXPIRES_AT} = :expires_at"))
                .value(":expires_at", n(at));
        }
        let update = write.update_expression();
        let result = self
            .client()
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(group, sort_key)))
            .update_expression(&update)
            .condition_expression(&write.condition)
            .set_expression_attribute_names(non_empty(names_in(&[&update, &write.condition])))
            .set_expression_attribute_values(non_empty(write.values))
            .return_values(returns)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Written::Done(out.attributes.unwrap_or_default())),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Written::Refused(failed.item().cloned()))
                }
                _ => Err(self.sdk_error("UpdateItem", err)),
            },
        }
    }

    /// A write to a lease that `lease` must still hold; refused → why.
    async fn write_lease(
        &self,
        lease: &Lease,
        write: Write,
        returns: ReturnValue,
    ) -> Result<Item, Fail> {
        let group = self.group(&lease.stream);
        match self
            .update(&group, &lease.shard_id, write.held_by(lease), returns)
            .await?
        {
            Written::Done(item) => Ok(item),
            Written::Refused(item) => {
                let item = self.refused_item(&group, &lease.shard_id, item).await?;
                Err(self.not_held(lease, &group, item.as_ref())?)
            }
        }
    }

    /// The item a refused write met: as DynamoDB returned it, or read again.
    async fn refused_item(
        &self,
        group: &str,
        sort_key: &str,
        returned: Option<Item>,
    ) -> Result<Option<Item>, DynamoDbError> {
        match returned.filter(|item| !item.is_empty()) {
            Some(item) => Ok(Some(item)),
            None => self.get(group, sort_key).await,
        }
    }

    /// Why `lease` does not hold the shard whose item is `item`.
    fn not_held(&self, lease: &Lease, group: &str, item: Option<&Item>) -> Result<Fail, Fail> {
        let Some(item) = item else {
            return Ok(Fail::Lease(CheckpointError::UnknownShard {
                shard_id: lease.shard_id.to_string(),
            }));
        };
        let current = self.parse_lease(group, &lease.shard_id, item)?;
        if holds(lease, &current) {
            // Only a condition beyond owner and token can have failed; the caller retries.
            return Ok(Fail::Db(DynamoDbError::Contention {
                operation: "write",
                attempts: 1,
            }));
        }
        Ok(Fail::Lease(CheckpointError::NotOwned {
            shard_id: lease.shard_id.to_string(),
            worker: lease.owner.clone(),
            owner: current.owner,
        }))
    }

    async fn claim(&self, stream: &str, shard_id: &str, worker: &WorkerId) -> Result<Claim, Fail> {
        check_shard_id(shard_id)?;
        let group = self.group(stream);
        // The item as a refused write found it, to spare a read.
        let mut known: Option<Item> = None;
        for _ in 0..MAX_ATTEMPTS {
            let item = match known.take() {
                Some(item) => Some(item),
                None => self.get(&group, shard_id).await?,
            };
            let now = Instant::now();
            let Some(item) = item else {
                match self.create_lease(&group, shard_id, worker).await? {
                    Written::Done(_) => {
                        let created = LeaseItem {
                            owner: Some(worker.clone()),
                            token: 1,
                            beat: 1,
                            progress: Progress::None,
                        };
                        return Ok(self.acquired(stream, shard_id, &group, worker, created, now));
                    }
                    Written::Refused(item) => {
                        known = item.filter(|item| !item.is_empty());
                        continue;
                    }
                }
            };
            let current = self.parse_lease(&group, shard_id, &item)?;
            let expired = self
                .observer
                .expired(&group, shard_id, current.version(), now);
            if current.progress == Progress::ShardEnd {
                return Ok(Claim::Finished);
            }
            if let Some(owner) = &current.owner
                && owner != worker
                && !expired
            {
                return Ok(Claim::HeldBy {
                    owner: owner.clone(),
                });
            }
            // Free, ours, or silent for a session timeout: take it, on the condition that
            // nobody wrote a claim, renewal, release or SHARD_END since we read it.
            let mut write = Write::condition(format!(
                "#token = :token AND #beat = :beat AND attribute_not_exists(#shard_end) AND {}",
                if current.owner.is_some() {
                    "#owner = :owner"
                } else {
                    "attribute_not_exists(#owner)"
                }
            ))
            .set("#owner = :worker")
            .set("#token = :new_token")
            .set("#beat = :new_beat")
            .value(":worker", s(worker.as_str()))
            .value(":token", n(current.token))
            .value(":beat", n(current.beat))
            .value(":new_token", n(current.token + 1))
            .value(":new_beat", n(current.beat + 1));
            if let Some(owner) = &current.owner {
                write = write.value(":owner", s(owner.as_str()));
            }
            match self
                .update(&group, shard_id, write, ReturnValue::AllNew)
                .await?
            {
                Written::Done(new) => {
                    let taken = self.parse_lease(&group, shard_id, &new)?;
                    return Ok(self.acquired(stream, shard_id, &group, worker, taken, now));
                }
                Written::Refused(item) => known = item.filter(|item| !item.is_empty()),
            }
        }
        Err(DynamoDbError::Contention {
            operation: "claim",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Records a successful claim and answers it.
    fn acquired(
        &self,
        stream: &str,
        shard_id: &str,
        group: &str,
        worker: &WorkerId,
        lease: LeaseItem,
        now: Instant,
    ) -> Claim {
        self.observer.wrote(group, shard_id, lease.version(), now);
        self.last
            .set(group, shard_id, lease.token, lease.progress.clone());
        Claim::Acquired {
            lease: Lease {
                stream: stream.into(),
                shard_id: shard_id.into(),
                owner: worker.clone(),
                token: FencingToken(lease.token),
            },
            progress: lease.progress,
        }
    }

    /// Creates a shard's item, claimed by `worker`, unless it exists.
    async fn create_lease(
        &self,
        group: &str,
        shard_id: &str,
        worker: &WorkerId,
    ) -> Result<Written, DynamoDbError> {
        let mut item = key(group, shard_id);
        item.insert(OWNER.to_owned(), s(worker.as_str()));
        item.insert(TOKEN.to_owned(), n(1));
        item.insert(BEAT.to_owned(), n(1));
        if let Some(at) = self.expires_at() {
            item.insert(EXPIRES_AT.to_owned(), n(at));
        }
        let condition = "attribute_not_exists(#shard_id)";
        let result = self
            .client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names_in(&[condition])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done(Item::new())),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Written::Refused(failed.item().cloned()))
                }
                _ => Err(self.sdk_error("PutItem", err)),
            },
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<(), Fail> {
        let now = Instant::now();
        let write = Write::default()
            .set("#beat = #beat + :one")
            .value(":one", n(1));
        let item = self.write_lease(lease, write, ReturnValue::AllNew).await?;
        let group = self.group(&lease.stream);
        let renewed = self.parse_lease(&group, &lease.shard_id, &item)?;
        self.observer
            .wrote(&group, &lease.shard_id, renewed.version(), now);
        Ok(())
    }

    async fn checkpoint(&self, lease: &Lease, position: &Position) -> Result<(), Fail> {
        check_position(position)?;
        let group = self.group(&lease.stream);
        let shard_id = &*lease.shard_id;
        // The stored checkpoint, and whether it was just read under this lease (`false`: only
        // remembered, so ownership is still to be proven).
        let mut known: Option<(Progress, bool)> = self
            .last
            .get(&group, shard_id, lease.token.0)
            .map(|progress| (progress, false));
        for attempt in 0..MAX_ATTEMPTS {
            let (current, verified) = match known.take() {
                Some(known) => known,
                None => {
                    let item = self.get(&group, shard_id).await?;
                    (self.held_progress(lease, &group, item.as_ref())?, true)
                }
            };
            let moves = match &current {
                Progress::ShardEnd => false,
                Progress::At(at) => position > at,
                Progress::None => true,
            };
            if !moves {
                if verified {
                    return Ok(());
                }
                continue;
            }
            let write = Write::default()
                .expecting(&current)
                .set(format!("#{SEQUENCE_NUMBER} = :sequence_number"))
                .value(":sequence_number", s(position.sequence_number.as_ref()));
            let write = match position.sub_sequence {
                Some(sub) => write
                    .set(format!("#{SUB_SEQUENCE} = :sub_sequence"))
                    .value(":sub_sequence", n(sub)),
                None => write.remove(SUB_SEQUENCE),
            };
            match self
                .update(&group, shard_id, write.held_by(lease), ReturnValue::None)
                .await?
            {
                Written::Done(_) => {
                    self.last.set(
                        &group,
                        shard_id,
                        lease.token.0,
                        Progress::At(position.clone()),
                    );
                    return Ok(());
                }
                Written::Refused(item) => {
                    if let Some(item) = item.filter(|item| !item.is_empty()) {
                        known = Some((self.held_progress(lease, &group, Some(&item))?, true));
                    }
                    contention_pause(attempt).await;
                }
            }
        }
        Err(DynamoDbError::Contention {
            operation: "checkpoint",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The progress in `item`, when `lease` holds it.
    fn held_progress(
        &self,
        lease: &Lease,
        group: &str,
        item: Option<&Item>,
    ) -> Result<Progress, Fail> {
        if let Some(item) = item {
            let current = self.parse_lease(group, &lease.shard_id, item)?;
            if holds(lease, &current) {
                self.last.set(
                    group,
                    &lease.shard_id,
                    lease.token.0,
                    current.progress.clone(),
                );
                return Ok(current.progress);
            }
        }
        Err(self.not_held(lease, group, item)?)
    }

    async fn mark_shard_end(&self, lease: &Lease) -> Result<(), Fail> {
        let write = Write::default()
            .set("#shard_end = :true")
            .value(":true", AttributeValue::Bool(true));
        self.write_lease(lease, write, ReturnValue::None).await?;
        let group = self.group(&lease.stream);
        self.last
            .set(&group, &lease.shard_id, lease.token.0, Progress::ShardEnd);
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), Fail> {
        let now = Instant::now();
        let write = Write::default()
            .remove(OWNER)
            .set("#beat = #beat + :one")
            .value(":one", n(1));
        let item = self.write_lease(lease, write, ReturnValue::AllNew).await?;
        let group = self.group(&lease.stream);
        let released = self.parse_lease(&group, &lease.shard_id, &item)?;
        self.observer
            .wrote(&group, &lease.shard_id, released.version(), now);
        Ok(())
    }

    async fn progress(&self, stream: &str, shard_id: &str) -> Result<Progress, Fail> {
        let group = self.group(stream);
        let Some(item) = self.get(&group, shard_id).await? else {
            return Ok(Progress::None);
        };
        let current = self.parse_lease(&group, shard_id, &item)?;
        self.observer
            .expired(&group, shard_id, current.version(), Instant::now());
        Ok(current.progress)
    }

    async fn list(&self, stream: &str) -> Result<Vec<LeaseInfo>, Fail> {
        let group = self.group(stream);
        let items = self.query(&group, None).await?;
        let now = Instant::now();
        let mut leases = Vec::new();
        let mut present = HashSet::new();
        for item in &items {
            let Some(shard_id) = item::sort_key(item) else {
                continue;
            };
            if shard_id.starts_with(WORKER_PREFIX) {
                continue;
            }
            let current = self.parse_lease(&group, shard_id, item)?;
            let expired = self
                .observer
                .expired(&group, shard_id, current.version(), now);
            present.insert(shard_id.to_owned());
            leases.push(LeaseInfo {
                shard_id: shard_id.to_owned(),
                owner: current.owner.filter(|_| !expired),
                token: FencingToken(current.token),
                progress: current.progress,
            });
        }
        self.observer
            .retain(&group, |key| !key.starts_with(WORKER_PREFIX), &present);
        leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(leases)
    }

    async fn heartbeat(&self, stream: &str, worker: &WorkerId) -> Result<(), Fail> {
        let group = self.group(stream);
        let sort_key = worker_key(worker);
        let now = Instant::now();
        // An upsert that only ever touches this worker's own registration.
        let write = Write::condition(format!(
            "attribute_not_exists(#{SHARD_ID}) OR #{WORKER} = :worker"
        ))
        .set(format!("#{WORKER} = :worker"))
        .set(format!("#{BEAT} = if_not_exists(#{BEAT}, :zero) + :one"))
        .value(":worker", s(worker.as_str()))
        .value(":zero", n(0))
        .value(":one", n(1));
        match self
            .update(&group, &sort_key, write, ReturnValue::AllNew)
            .await?
        {
            Written::Done(item) => {
                let registration = WorkerItem::parse(&item)
                    .map_err(|detail| self.malformed(&group, &sort_key, detail))?;
                self.observer
                    .wrote(&group, &sort_key, registration.version(), now);
            }
            Written::Refused(_) => {
                return Err(self
                    .malformed(&group, &sort_key, format!("{WORKER} is not {worker}"))
                    .into());
            }
        }
        self.refresh_expiry(&group).await?;
        Ok(())
    }

    async fn live_workers(&self, stream: &str) -> Result<Vec<WorkerId>, Fail> {
        let group = self.group(stream);
        let items = self.query(&group, Some(WORKER_PREFIX)).await?;
        let now = Instant::now();
        let mut live = Vec::new();
        let mut present = HashSet::new();
        for item in &items {
            let Some(sort_key) = item::sort_key(item) else {
                continue;
            };
            let registration = WorkerItem::parse(item)
                .map_err(|detail| self.malformed(&group, sort_key, detail))?;
            if self
                .observer
                .expired(&group, sort_key, registration.version(), now)
            {
                // Unchanged for a session timeout: remove it unless it was renewed meanwhile.
                let condition = format!("#{BEAT} = :beat");
                let values = HashMap::from([(":beat".to_owned(), n(registration.beat))]);
                match self.delete(&group, sort_key, &condition, values).await? {
                    Written::Done(_) | Written::Refused(None) => {
                        self.observer.forget(&group, sort_key);
                    }
                    // It beat in the meantime: live.
                    Written::Refused(Some(item)) => {
                        let renewed = WorkerItem::parse(&item)
                            .map_err(|detail| self.malformed(&group, sort_key, detail))?;
                        self.observer
                            .wrote(&group, sort_key, renewed.version(), now);
                        present.insert(sort_key.to_owned());
                        live.push(renewed.worker);
                    }
                }
            } else {
                present.insert(sort_key.to_owned());
                live.push(registration.worker);
            }
        }
        self.observer
            .retain(&group, |key| key.starts_with(WORKER_PREFIX), &present);
        live.sort();
        live.dedup();
        Ok(live)
    }

    async fn leave(&self, stream: &str, worker: &WorkerId) -> Result<(), Fail> {
        let group = self.group(stream);
        let sort_key = worker_key(worker);
        let condition = format!("#{WORKER} = :worker");
        let values = HashMap::from([(":worker".to_owned(), s(worker.as_str()))]);
        // Refused: there was no registration to remove.
        self.delete(&group, &sort_key, &condition, values).await?;
        self.observer.forget(&group, &sort_key);
        Ok(())
    }

    async fn delete(
        &self,
        group: &str,
        sort_key: &str,
        condition: &str,
        values: Item,
    ) -> Result<Written, DynamoDbError> {
        let result = self
            .client()
            .delete_item()
            .table_name(&self.table.name)
            .set_key(Some(key(group, sort_key)))
            .condition_expression(condition)
            .set_expression_attribute_names(non_empty(names_in(&[condition])))
            .set_expression_attribute_values(non_empty(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done(Item::new())),
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(failed)) => Ok(
                    Written::Refused(failed.item().cloned().filter(|item| !item.is_empty())),
                ),
                _ => Err(self.sdk_error("DeleteItem", err)),
            },
        }
    }

    /// With a TTL: pushes the expiry of every item of the group (finished shards and other
    /// workers' items too) ahead when it is less than half the TTL away. Runs at most every
    /// eighth of the TTL per group, so expiries stay at least 3/8 of the TTL ahead while any
    /// worker of the group beats.
    async fn refresh_expiry(&self, group: &str) -> Result<(), DynamoDbError> {
        let Some(ttl) = self.ttl else {
            return Ok(());
        };
        let now = Instant::now();
        {
            let mut sweeps = self.sweeps.lock().unwrap_or_else(PoisonError::into_inner);
            if sweeps
                .get(group)
                .is_some_and(|last| now.saturating_duration_since(*last) < ttl / 8)
            {
                return Ok(());
            }
            sweeps.insert(group.to_owned(), now);
        }
        let result = self.refresh_items(group, ttl).await;
        if result.is_err() {
            // Try again at the next heartbeat.
            self.sweeps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(group);
        }
        result
    }

    async fn refresh_items(&self, group: &str, ttl: Duration) -> Result<(), DynamoDbError> {
        let now = epoch_seconds();
        let ttl = ttl.as_secs();
        for item in self.query(group, None).await? {
            let Some(sort_key) = item::sort_key(&item) else {
                continue;
            };
            if item::expires_at(&item).is_some_and(|at| at >= now + ttl / 2) {
                continue;
            }
            // Never shortens an expiry, and never re-creates an item deleted meanwhile.
            let write = Write::condition(format!(
                "attribute_exists(#{SHARD_ID}) AND \
                 (attribute_not_exists(#{EXPIRES_AT}) OR #{EXPIRES_AT} < :expires_at)"
            ));
            // `update` sets the expiry itself.
            self.update(group, sort_key, write, ReturnValue::None)
                .await?;
        }
        Ok(())
    }
}

/// Whether `lease` (owner and token) holds the item `current`.
fn holds(lease: &Lease, current: &LeaseItem) -> bool {
    current.owner.as_ref() == Some(&lease.owner) && current.token == lease.token.0
}

/// Shard ids may be anything but a worker registration's sort key.
fn check_shard_id(shard_id: &str) -> Result<(), Fail> {
    if shard_id.is_empty() || shard_id.starts_with(WORKER_PREFIX) {
        return Err(DynamoDbError::InvalidArgument(format!(
            "shard id {shard_id:?} is empty or starts with {WORKER_PREFIX:?}, which marks worker \
             registrations"
        ))
        .into());
    }
    Ok(())
}

/// Only decimal sequence numbers are stored: anything else would make the item unreadable.
fn check_position(position: &Position) -> Result<(), Fail> {
    let digits = &position.sequence_number;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DynamoDbError::InvalidArgument(format!(
            "sequence number {digits:?} is not a decimal number"
        ))
        .into());
    }
    Ok(())
}

/// A short random pause before repeating a refused checkpoint, so that writers racing on one
/// item fall out of step (up to 5 ms doubling per attempt, at most 160 ms).
async fn contention_pause(attempt: u32) {
    let cap = Duration::from_millis(5 << attempt.min(5));
    tokio::time::sleep(cap.mul_f64(rand::random_range(0.0..=1.0))).await;
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_prefixed_shard_ids_are_refused() {
        assert!(check_shard_id("shardId-000000000000").is_ok());
        assert!(matches!(
            check_shard_id("worker#x"),
            Err(Fail::Db(DynamoDbError::InvalidArgument(_)))
        ));
        assert!(check_shard_id("").is_err());
    }

    #[test]
    fn only_decimal_sequence_numbers_are_stored() {
        assert!(
            check_position(&Position::within(
                "0049590338271490256608559692538361571095921575989136588898",
                1
            ))
            .is_ok()
        );
        for bad in ["", "12a", "-1", " 1"] {
            assert!(
                matches!(
                    check_position(&Position::after(bad)),
                    Err(Fail::Db(DynamoDbError::InvalidArgument(_)))
                ),
                "{bad:?}"
            );
        }
    }
}
