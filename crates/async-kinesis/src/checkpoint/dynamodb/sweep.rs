//! Keeping a live group's items from expiring: the heartbeat's sweep pushes the expiry of every
//! item that is less than half the TTL away, up to 100 items per TransactWriteItems call.
//!
//! TransactWriteItems is the only DynamoDB batch that takes conditional updates (BatchWriteItem
//! only puts whole items, which would overwrite a concurrent write or re-create a deleted item).
//! A transaction is all or nothing, so when some of its updates are refused (the item was
//! deleted, or another worker pushed its expiry further meanwhile) DynamoDB cancels it, says
//! which ones, and the sweep repeats it without them.

use std::sync::PoisonError;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem, Update};
use tokio::time::Instant;

use super::error::DynamoDbError;
use super::item::{EXPIRES_AT, SHARD_ID, key, n, names_in};
use super::ops::{MAX_ATTEMPTS, contention_pause, epoch_seconds};
use super::{DynamoDbStore, Inner};
use crate::checkpoint::CheckpointError;
use crate::error::ErrorClass;

/// DynamoDB's limit of actions per TransactWriteItems call.
const TRANSACTION_LIMIT: usize = 100;

/// What one sweep of a group's expiries did (see [`DynamoDbStore::refresh_expiry`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpiryRefresh {
    /// Items whose expiry was pushed ahead.
    pub refreshed: usize,
    /// TransactWriteItems calls made (a cancelled and repeated transaction counts twice).
    pub requests: usize,
}

impl DynamoDbStore {
    /// Pushes ahead, now, the expiry of every item of the group reading `stream` whose expiry
    /// is less than half the TTL away, as every heartbeat does at most every eighth of the TTL
    /// (see [Time to live](DynamoDbStore#time-to-live)); answers what it did. Useful before a
    /// group stops for a while: its items then last at least half the TTL. Without a TTL it
    /// does nothing.
    ///
    /// ```no_run
    /// # async fn demo(store: async_kinesis::checkpoint::DynamoDbStore) -> Result<(), async_kinesis::checkpoint::CheckpointError> {
    /// let swept = store.refresh_expiry("orders").await?;
    /// println!("{} items in {} requests", swept.refreshed, swept.requests);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`CheckpointError::Store`] when DynamoDB fails; updates made before the failure stay.
    pub async fn refresh_expiry(&self, stream: &str) -> Result<ExpiryRefresh, CheckpointError> {
        let inner = &self.inner;
        let Some(ttl) = inner.ttl else {
            return Ok(ExpiryRefresh::default());
        };
        let group = inner.group(stream);
        inner.swept(&group, Instant::now());
        let result = inner.sweep(&group, ttl).await.map_err(super::Fail::Db);
        inner.conclude("refresh_expiry", result).await
    }
}

impl Inner {
    /// With a TTL: pushes the expiry of every item of the group (finished shards and other
    /// workers' items too) ahead when it is less than half the TTL away. Runs at most every
    /// eighth of the TTL per group, so expiries stay at least 3/8 of the TTL ahead while any
    /// worker of the group beats.
    pub(super) async fn refresh_expiry(&self, group: &str) -> Result<(), DynamoDbError> {
        let Some(ttl) = self.ttl else {
            return Ok(());
        };
        let now = Instant::now();
        {
            let sweeps = self.sweeps.lock().unwrap_or_else(PoisonError::into_inner);
            if sweeps
                .get(group)
                .is_some_and(|last| now.saturating_duration_since(*last) < ttl / 8)
            {
                return Ok(());
            }
        }
        self.swept(group, now);
        let result = self.sweep(group, ttl).await;
        if result.is_err() {
            // Try again at the next heartbeat.
            self.sweeps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(group);
        }
        result.map(drop)
    }

    fn swept(&self, group: &str, at: Instant) {
        self.sweeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group.to_owned(), at);
    }

    /// One sweep: every item due, in transactions of at most [`TRANSACTION_LIMIT`].
    async fn sweep(&self, group: &str, ttl: Duration) -> Result<ExpiryRefresh, DynamoDbError> {
        let now = epoch_seconds();
        let ttl = ttl.as_secs();
        let due: Vec<String> = self
            .query(group, None)
            .await?
            .iter()
            .filter(|item| super::item::expires_at(item).is_none_or(|at| at < now + ttl / 2))
            .filter_map(|item| super::item::sort_key(item).map(str::to_owned))
            .collect();
        let mut done = ExpiryRefresh::default();
        for batch in due.chunks(TRANSACTION_LIMIT) {
            self.refresh_batch(group, batch.to_vec(), &mut done).await?;
        }
        Ok(done)
    }

    /// Pushes the expiry of `pending` ahead in one transaction, repeated without the items
    /// whose condition failed, and after a pause when it conflicted with other writes.
    async fn refresh_batch(
        &self,
        group: &str,
        mut pending: Vec<String>,
        done: &mut ExpiryRefresh,
    ) -> Result<(), DynamoDbError> {
        for attempt in 0..MAX_ATTEMPTS {
            if pending.is_empty() {
                return Ok(());
            }
            let at = self.expires_at().unwrap_or_else(epoch_seconds);
            let actions = pending
                .iter()
                .map(|sort_key| self.expiry_update(group, sort_key, at))
                .collect::<Result<Vec<_>, _>>()?;
            done.requests += 1;
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await;
            let cancelled = match result {
                Ok(_) => {
                    done.refreshed += pending.len();
                    return Ok(());
                }
                Err(err) => match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                        cancelled.clone()
                    }
                    _ => return Err(self.sdk_error("TransactWriteItems", err)),
                },
            };
            let next = after_cancel(cancelled.cancellation_reasons()).map_err(|refusal| {
                DynamoDbError::Service {
                    operation: "TransactWriteItems",
                    class: ErrorClass::of_code(&refusal.code),
                    code: refusal.code,
                    message: refusal.message,
                }
            })?;
            if next.keep.len() != pending.len() {
                return Err(DynamoDbError::Service {
                    operation: "TransactWriteItems",
                    class: ErrorClass::Unknown,
                    code: "TransactionCanceledException".to_owned(),
                    message: format!(
                        "{} cancellation reasons for {} actions",
                        next.keep.len(),
                        pending.len()
                    ),
                });
            }
            pending = pending
                .into_iter()
                .zip(&next.keep)
                .filter_map(|(sort_key, keep)| keep.then_some(sort_key))
                .collect();
            if next.pause {
                contention_pause(attempt).await;
            }
        }
        Err(DynamoDbError::Contention {
            operation: "refresh_expiry",
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Sets one item's expiry to `at`: never shortens an expiry, never re-creates an item
    /// deleted meanwhile, and touches no other attribute.
    fn expiry_update(
        &self,
        group: &str,
        sort_key: &str,
        at: u64,
    ) -> Result<TransactWriteItem, DynamoDbError> {
        let update = format!("SET #{EXPIRES_AT} = :expires_at");
        let condition = format!(
            "attribute_exists(#{SHARD_ID}) AND \
             (attribute_not_exists(#{EXPIRES_AT}) OR #{EXPIRES_AT} < :expires_at)"
        );
        let action = Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(key(group, sort_key)))
            .set_expression_attribute_names(Some(names_in(&[&update, &condition])))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":expires_at", n(at))
            .build()
            .map_err(|err| DynamoDbError::Client {
                operation: "TransactWriteItems",
                class: ErrorClass::Unknown,
                source: Box::new(err),
            })?;
        Ok(TransactWriteItem::builder().update(action).build())
    }
}

/// What to repeat of a cancelled transaction: `keep[i]` says whether action `i` goes again.
#[derive(Debug, PartialEq, Eq)]
struct Repeat {
    keep: Vec<bool>,
    /// Some action conflicted with other writes or was throttled: pause before repeating.
    pause: bool,
}

/// A cancellation the sweep cannot repeat its way out of.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    code: String,
    message: String,
}

/// Reads the reasons DynamoDB gives, one per action, for cancelling a transaction. A failed
/// condition drops that action (the item is gone, or its expiry is already further ahead);
/// actions without a reason are repeated; conflicts and throttling are repeated after a pause;
/// anything else (a validation error) ends the sweep.
fn after_cancel(reasons: &[CancellationReason]) -> Result<Repeat, Refusal> {
    let mut repeat = Repeat {
        keep: Vec::with_capacity(reasons.len()),
        pause: false,
    };
    let mut dropped = false;
    for reason in reasons {
        match reason.code() {
            None | Some("None") => repeat.keep.push(true),
            Some("ConditionalCheckFailed") => {
                dropped = true;
                repeat.keep.push(false);
            }
            Some(
                "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded",
            ) => {
                repeat.pause = true;
                repeat.keep.push(true);
            }
            Some(code) => {
                return Err(Refusal {
                    code: code.to_owned(),
                    message: reason.message().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    if !dropped && !repeat.pause {
        // Repeating unchanged would be cancelled the same way.
        return Err(Refusal {
            code: "TransactionCanceledException".to_owned(),
            message: format!("cancelled without a reason among {} actions", reasons.len()),
        });
    }
    Ok(repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn refused_conditions_are_dropped_and_the_rest_repeated() {
        let reasons = [
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("None"),
        ];
        assert_eq!(
            after_cancel(&reasons),
            Ok(Repeat {
                keep: vec![true, false, true],
                pause: false
            })
        );
        let conflict = [
            reason("TransactionConflict"),
            reason("ConditionalCheckFailed"),
        ];
        assert_eq!(
            after_cancel(&conflict),
            Ok(Repeat {
                keep: vec![true, false],
                pause: true
            })
        );
    }

    #[test]
    fn other_cancellations_end_the_sweep() {
        let invalid = [
            reason("None"),
            CancellationReason::builder()
                .code("ValidationError")
                .message("bad")
                .build(),
        ];
        assert_eq!(
            after_cancel(&invalid),
            Err(Refusal {
                code: "ValidationError".into(),
                message: "bad".into()
            })
        );
        assert!(after_cancel(&[reason("None")]).is_err(), "no reason given");
        assert!(after_cancel(&[]).is_err());
    }
}
