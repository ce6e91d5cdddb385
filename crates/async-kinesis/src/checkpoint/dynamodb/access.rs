//! The store's access to its table: reads, queries, conditional updates, deletes, and turning
//! refusals and SDK failures into the store's errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::error::DynamoDbError;
use super::item::{EXPIRES_AT, Item, LeaseItem, app_stream, key, n, names_in, s};
use super::observe::{LastProgress, Observer};
use super::ops::{epoch_seconds, holds};
use super::table::{Ensured, Table};
use super::write::{Write, Written, non_empty};
use super::{Fail, Inner};
use crate::checkpoint::{CheckpointError, Lease, LeaseTiming};

impl Inner {
    pub(super) fn new(
        table: Table,
        app: String,
        timing: LeaseTiming,
        ttl: Option<Duration>,
    ) -> Self {
        Self {
            table,
            app,
            timing,
            ttl,
            observer: Observer::new(timing.session_timeout()),
            last: LastProgress::default(),
            sweeps: Mutex::default(),
            recreating: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn client(&self) -> &Client {
        &self.table.client
    }

    pub(super) fn group(&self, stream: &str) -> String {
        app_stream(&self.app, stream)
    }

    pub(super) fn sdk_error<E, R>(
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

    pub(super) fn malformed(&self, group: &str, sort_key: &str, detail: String) -> DynamoDbError {
        DynamoDbError::MalformedItem {
            table: self.table.name.clone(),
            key: format!("{group} / {sort_key}"),
            detail,
        }
    }

    /// Reads a shard's item; one that does not parse is the caller's
    /// [`CheckpointError::UnreadableEntry`] (naming the table and key, for whoever repairs it).
    pub(super) fn parse_lease(
        &self,
        group: &str,
        shard_id: &str,
        item: &Item,
    ) -> Result<LeaseItem, Fail> {
        LeaseItem::parse(item).map_err(|detail| {
            Fail::Lease(CheckpointError::UnreadableEntry {
                shard_id: shard_id.into(),
                detail: format!(
                    "{detail} (DynamoDB table {}, item {group} / {shard_id})",
                    self.table.name
                ),
            })
        })
    }

    /// The expiry a write sets now, when the store has a TTL.
    pub(super) fn expires_at(&self) -> Option<u64> {
        self.ttl.map(|ttl| epoch_seconds() + ttl.as_secs())
    }

    /// Turns a failure into the caller's error; a vanished table is re-created first when that
    /// is allowed.
    pub(super) async fn conclude<T>(
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

    pub(super) async fn table_vanished(&self) -> DynamoDbError {
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
    pub(super) async fn get(
        &self,
        group: &str,
        sort_key: &str,
    ) -> Result<Option<Item>, DynamoDbError> {
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
    pub(super) async fn query(
        &self,
        group: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Item>, DynamoDbError> {
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
    pub(super) async fn update(
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

    /// Writes `item` (with the expiry, when items expire) unless an item with its key exists;
    /// answers the item written, or the one that exists when DynamoDB returns it.
    pub(super) async fn put_new(&self, mut item: Item) -> Result<Written, DynamoDbError> {
        if let Some(at) = self.expires_at() {
            item.insert(EXPIRES_AT.to_owned(), n(at));
        }
        let condition = "attribute_not_exists(#shard_id)";
        let result = self
            .client()
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item.clone()))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names_in(&[condition])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Done(item)),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Written::Refused(failed.item().cloned()))
                }
                _ => Err(self.sdk_error("PutItem", err)),
            },
        }
    }

    /// A write to a lease that `lease` must still hold; refused → why.
    pub(super) async fn write_lease(
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
    pub(super) async fn refused_item(
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
    pub(super) fn not_held(
        &self,
        lease: &Lease,
        group: &str,
        item: Option<&Item>,
    ) -> Result<Fail, Fail> {
        let Some(item) = item else {
            return Ok(Fail::Lease(CheckpointError::UnknownShard {
                shard_id: lease.shard_id.clone(),
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
            shard_id: lease.shard_id.clone(),
            worker: lease.owner.clone(),
            owner: current.owner,
        }))
    }

    pub(super) async fn delete(
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
}
