//! What can go wrong talking to DynamoDB, classified with the crate's AWS error classes.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::checkpoint::CheckpointError;
use crate::error::{Error, ErrorClass, RawStatus};
use crate::invalid_config::InvalidConfig;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failure of the DynamoDB store, found as the `source` of [`CheckpointError::Store`].
///
/// AWS error codes are classified as for Kinesis ([`ErrorClass::of_code`]), so throttling and
/// transient failures are retryable and access or validation failures are not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoDbError {
    /// An option of the builder is invalid; no call was made.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
    /// An argument of a store call cannot be stored (a shard id that looks like a worker
    /// registration, a sequence number that is not a decimal number); nothing was written.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The table does not exist and the store may not create it.
    #[error(
        "DynamoDB table {table} does not exist; create it or let the store create it \
         (DynamoDbStoreBuilder::create_table(true))"
    )]
    TableMissing {
        /// The table's name.
        table: String,
    },
    /// The table had disappeared (deleted, or a local emulator restarted) and was created again:
    /// every lease and checkpoint it held is gone, and consumers start over from their iterator
    /// type. The call may be repeated.
    #[error(
        "DynamoDB table {table} had disappeared and was created again; its leases and \
         checkpoints are lost"
    )]
    TableRecreated {
        /// The table's name.
        table: String,
    },
    /// The table exists with another key schema (another application's table, or one of the
    /// Python library, which keys by shard id alone).
    #[error(
        "DynamoDB table {table} has key schema [{found}], expected [app_stream HASH S, \
         shard_id RANGE S]; it belongs to something else (choose another table_name)"
    )]
    WrongKeySchema {
        /// The table's name.
        table: String,
        /// The key schema found.
        found: String,
    },
    /// The table's time-to-live setting does not match the store's `ttl_hours`.
    #[error("DynamoDB table {table}: {detail}")]
    TtlMismatch {
        /// The table's name.
        table: String,
        /// What does not match, and what to do.
        detail: String,
    },
    /// The table did not become ACTIVE in time.
    #[error("DynamoDB table {table} is {status}, not ACTIVE, after {waited:?}")]
    TableNotActive {
        /// The table's name.
        table: String,
        /// The last status seen.
        status: String,
        /// How long the store waited.
        waited: Duration,
    },
    /// No AWS credentials could be found or loaded.
    #[error(
        "no AWS credentials for DynamoDB {operation}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         a profile, or a role"
    )]
    NoCredentials {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What the credential provider said, when a call was attempted.
        #[source]
        source: Option<BoxError>,
    },
    /// DynamoDB could not be reached (connection refused, DNS, timeout before an answer).
    #[error("cannot reach DynamoDB at {endpoint} for {operation}")]
    Unreachable {
        /// The DynamoDB operation.
        operation: &'static str,
        /// Where the client sends requests.
        endpoint: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// DynamoDB answered with an error.
    #[error("DynamoDB {operation} failed: {code}: {message}")]
    Service {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What kind of failure.
        class: ErrorClass,
        /// The AWS error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Any other failure of the AWS client.
    #[error("DynamoDB {operation} failed")]
    Client {
        /// The DynamoDB operation.
        operation: &'static str,
        /// What kind of failure, as far as it can be told.
        class: ErrorClass,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// An item of the table does not have the layout this store writes.
    #[error("DynamoDB table {table}, item {key}: {detail}")]
    MalformedItem {
        /// The table's name.
        table: String,
        /// The item's key, `<app>:<stream>` / `<sort key>`.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Concurrent writers changed an item between every read and write of an operation.
    #[error("{operation} gave up after {attempts} attempts: the item kept changing")]
    Contention {
        /// The store operation.
        operation: &'static str,
        /// How many read-compare-write rounds were tried.
        attempts: u32,
    },
}

impl DynamoDbError {
    /// Whether repeating the call later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::TableRecreated { .. }
            | Self::TableNotActive { .. }
            | Self::Unreachable { .. }
            | Self::Contention { .. } => true,
            Self::Service { class, .. } | Self::Client { class, .. } => class.is_retryable(),
            Self::InvalidConfig(_)
            | Self::InvalidArgument(_)
            | Self::TableMissing { .. }
            | Self::WrongKeySchema { .. }
            | Self::TtlMismatch { .. }
            | Self::NoCredentials { .. }
            | Self::MalformedItem { .. } => false,
        }
    }

    /// Whether DynamoDB said the table does not exist (item operations answer so only for a
    /// missing table).
    pub(super) fn is_table_not_found(&self) -> bool {
        matches!(
            self,
            Self::Service {
                class: ErrorClass::NotFound,
                ..
            }
        )
    }

    /// Converts an SDK error with the crate's classification of AWS errors.
    pub(super) fn from_sdk<E, R>(
        operation: &'static str,
        endpoint: &str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: RawStatus + fmt::Debug + Send + Sync + 'static,
    {
        match Error::from_sdk(operation, "", endpoint, err) {
            Error::NoCredentials { source, .. } => Self::NoCredentials { operation, source },
            Error::Unreachable {
                endpoint, source, ..
            } => Self::Unreachable {
                operation,
                endpoint,
                source,
            },
            Error::Service {
                class,
                code,
                message,
                ..
            } => Self::Service {
                operation,
                class,
                code,
                message,
            },
            Error::Client { class, source, .. } => Self::Client {
                operation,
                class,
                source,
            },
            other => Self::Client {
                operation,
                class: other.class(),
                source: Box::new(other),
            },
        }
    }

    /// This failure as the error of the store operation `operation`.
    pub(super) fn into_store_error(self, operation: &'static str) -> CheckpointError {
        CheckpointError::Store {
            operation,
            retryable: self.is_retryable(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_class_and_the_table_state() {
        let throttled = DynamoDbError::Service {
            operation: "UpdateItem",
            class: ErrorClass::of_code("ProvisionedThroughputExceededException"),
            code: "ProvisionedThroughputExceededException".into(),
            message: "slow down".into(),
        };
        assert!(throttled.is_retryable());
        let denied = DynamoDbError::Service {
            operation: "GetItem",
            class: ErrorClass::of_code("AccessDeniedException"),
            code: "AccessDeniedException".into(),
            message: "no".into(),
        };
        assert!(!denied.is_retryable());
        let missing = DynamoDbError::Service {
            operation: "GetItem",
            class: ErrorClass::of_code("ResourceNotFoundException"),
            code: "ResourceNotFoundException".into(),
            message: "Requested resource not found".into(),
        };
        assert!(missing.is_table_not_found());
        assert!(!denied.is_table_not_found());
        assert!(DynamoDbError::TableRecreated { table: "t".into() }.is_retryable());
        let err = DynamoDbError::TableMissing { table: "t".into() }.into_store_error("build");
        assert!(!err.is_retryable());
        assert!(
            std::error::Error::source(&err)
                .map(ToString::to_string)
                .is_some_and(|s| s.contains("table t does not exist"))
        );
    }
}
