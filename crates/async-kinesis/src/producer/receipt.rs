//! What `put` gives back: a receipt that resolves to where the item landed, or an error that
//! hands the item back.

use crate::ids::{SequenceNumber, ShardId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, ErrorClass};
use crate::processor::{RejectReason, SerializeError};

/// Where an item was stored: the shard and the sequence number of the Kinesis record holding it.
///
/// With aggregating processors several items share one record, and so one sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The shard the record went to.
    pub shard_id: ShardId,
    /// The record's sequence number.
    pub sequence_number: SequenceNumber,
}

/// Why an item was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutErrorKind {
    /// The producer was closed before the item was put.
    #[error("the producer is closed")]
    Closed,
    /// The partition key is empty or longer than 256 characters.
    #[error("invalid partition key: {0}")]
    InvalidPartitionKey(String),
    /// The explicit hash key is not a decimal number in 0..=2^128−1.
    #[error("invalid explicit hash key: {0}")]
    InvalidExplicitHashKey(String),
    /// The processor could not serialize the item.
    #[error("the item could not be serialized")]
    Serialize(#[source] SerializeError),
    /// The item does not fit in one record: data plus partition key exceed the maximum size.
    #[error(
        "item of {size} bytes (data + partition key) exceeds the maximum record size of {max} bytes"
    )]
    TooLarge {
        /// Bytes the item needs.
        size: usize,
        /// The maximum record size.
        max: usize,
    },
    /// The processor's aggregator refused the item.
    #[error("the aggregator refused the item: {0}")]
    Rejected(RejectReason),
    /// Kinesis refused the record holding the item, with an error that retrying cannot fix, or
    /// the retries ran out.
    #[error("Kinesis refused the record after {attempts} attempt(s): {code}: {message}")]
    Refused {
        /// The AWS error code of the last attempt.
        code: String,
        /// The service's message.
        message: String,
        /// What kind of failure the code is.
        class: ErrorClass,
        /// Attempts made.
        attempts: u32,
    },
    /// The PutRecords call failed as a whole, for good (or after all retries).
    #[error("PutRecords failed after {attempts} attempt(s)")]
    Request {
        /// The last call's error (shared by the items of the call).
        #[source]
        source: Arc<Error>,
        /// Attempts made.
        attempts: u32,
    },
    /// The item was not stored within the configured `delivery_timeout`.
    #[error("not stored within the delivery timeout of {timeout:?} after {attempts} attempt(s){}", last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default())]
    TimedOut {
        /// The configured delivery timeout.
        timeout: Duration,
        /// Sends of the item's record that failed.
        attempts: u32,
        /// The last failure of the item's record, if it was sent at all.
        last_error: Option<String>,
    },
    /// The producer's background task ended unexpectedly; the item may or may not have been
    /// delivered. This is a bug.
    #[error("the producer's background task ended before the item was resolved")]
    WorkerGone,
}

/// An item that was not delivered, with the reason. The item is handed back.
pub struct PutError<T> {
    kind: PutErrorKind,
    item: Option<T>,
}

impl<T> PutError<T> {
    pub(crate) fn new(kind: PutErrorKind, item: T) -> Self {
        Self {
            kind,
            item: Some(item),
        }
    }

    /// Why the item was not delivered.
    pub fn kind(&self) -> &PutErrorKind {
        &self.kind
    }

    /// The item that was not delivered (absent only for [`PutErrorKind::WorkerGone`]).
    pub fn item(&self) -> Option<&T> {
        self.item.as_ref()
    }

    /// Takes the item back (absent only for [`PutErrorKind::WorkerGone`]).
    pub fn into_item(self) -> Option<T> {
        self.item
    }

    /// Splits into the reason and the item.
    pub fn into_parts(self) -> (PutErrorKind, Option<T>) {
        (self.kind, self.item)
    }

    /// Whether putting the same item again later can succeed (throttling, transient failures,
    /// retries exhausted on such errors).
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            PutErrorKind::Refused { class, .. } => class.is_retryable(),
            PutErrorKind::Request { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError")
            .field("kind", &self.kind)
            .field("has_item", &self.item.is_some())
            .finish()
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// The outcome of one item.
pub type DeliveryResult<T> = Result<Delivery, PutError<T>>;

/// Resolves once Kinesis accepted the record holding the item, or the item failed for good.
///
/// Dropping a receipt does not cancel the put: the item is still delivered, only the outcome is
/// not reported.
#[must_use = "the receipt tells whether the item was delivered"]
pub struct Receipt<T> {
    outcome: oneshot::Receiver<DeliveryResult<T>>,
}

impl<T> Receipt<T> {
    pub(crate) fn new(outcome: oneshot::Receiver<DeliveryResult<T>>) -> Self {
        Self { outcome }
    }
}

impl<T> fmt::Debug for Receipt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt").finish_non_exhaustive()
    }
}

impl<T> Future for Receipt<T> {
    type Output = DeliveryResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.outcome).poll(cx).map(|outcome| {
            outcome.unwrap_or_else(|_| {
                Err(PutError {
                    kind: PutErrorKind::WorkerGone,
                    item: None,
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_receipt_reports_the_outcome_sent_to_it() {
        let (tx, rx) = oneshot::channel();
        let delivery = Delivery {
            shard_id: "shardId-000000000001".into(),
            sequence_number: "4959".into(),
        };
        tx.send(Ok::<_, PutError<u32>>(delivery.clone()))
            .expect("receiver alive");
        assert_eq!(Receipt::new(rx).await.expect("delivered"), delivery);
    }

    #[tokio::test]
    async fn a_lost_outcome_is_worker_gone_not_a_hang() {
        let (tx, rx) = oneshot::channel::<DeliveryResult<u32>>();
        drop(tx);
        let err = Receipt::new(rx).await.expect_err("no outcome");
        assert!(matches!(err.kind(), PutErrorKind::WorkerGone));
        assert!(err.item().is_none());
    }

    #[test]
    fn errors_hand_the_item_back_and_classify_retries() {
        let throttled = PutError::new(
            PutErrorKind::Refused {
                code: "ProvisionedThroughputExceededException".into(),
                message: "Rate exceeded".into(),
                class: ErrorClass::Throttling,
                attempts: 5,
            },
            "item",
        );
        assert!(throttled.is_retryable());
        assert_eq!(throttled.item(), Some(&"item"));
        assert!(throttled.to_string().contains("after 5 attempt(s)"));
        let closed = PutError::new(PutErrorKind::Closed, 7);
        assert!(!closed.is_retryable());
        assert_eq!(closed.into_item(), Some(7));
    }
}
