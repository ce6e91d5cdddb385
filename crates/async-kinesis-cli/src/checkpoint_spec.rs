//! `--checkpoint redis://…|rediss://…|dynamodb:TABLE`: which shared store a group uses.

use std::sync::Arc;
use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointError, CheckpointStore, LeaseTiming};
use async_kinesis::{ConnectOptions, DynamoDbStore, RedisStore};

/// A checkpoint store named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckpointSpec {
    /// A Redis server (URL with optional password, `rediss://` for TLS).
    Redis(String),
    /// A DynamoDB table.
    DynamoDb(String),
}

/// Parses a store.
///
/// # Errors
/// A message naming the accepted forms.
pub(crate) fn parse(text: &str) -> Result<CheckpointSpec, String> {
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        return Ok(CheckpointSpec::Redis(text.to_owned()));
    }
    if let Some(table) = text.strip_prefix("dynamodb:") {
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(format!(
                "{table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)"
            ));
        }
        return Ok(CheckpointSpec::DynamoDb(table.to_owned()));
    }
    Err(format!(
        "{text:?}: a checkpoint store is redis://HOST:PORT, rediss://HOST:PORT or dynamodb:TABLE"
    ))
}

impl CheckpointSpec {
    /// Connects to the store as application `app`. `aws` carries the region and profile for
    /// DynamoDB, `dynamodb_endpoint` an emulator's URL.
    ///
    /// # Errors
    /// The store's error when it cannot be reached or set up.
    pub(crate) async fn connect(
        &self,
        app: &str,
        aws: ConnectOptions,
        dynamodb_endpoint: Option<&str>,
        timing: LeaseTiming,
    ) -> Result<Arc<dyn CheckpointStore>, CheckpointError> {
        Ok(match self {
            Self::Redis(url) => Arc::new(
                RedisStore::builder(app)
                    .url(url)
                    .timing(timing)
                    .connect()
                    .await?,
            ),
            Self::DynamoDb(table) => {
                let options = match dynamodb_endpoint {
                    Some(url) => aws.endpoint_url(url),
                    None => aws,
                };
                Arc::new(
                    DynamoDbStore::builder(app)
                        .table_name(table)
                        .timing(timing)
                        .connect_options(options)
                        .build()
                        .await?,
                )
            }
        })
    }
}

/// Lease timing from a session timeout: a heartbeat of a quarter of it.
pub(crate) fn timing(session_timeout: Duration) -> Result<LeaseTiming, String> {
    LeaseTiming::new(session_timeout, session_timeout / 4).map_err(|problem| problem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores() {
        assert_eq!(
            parse("redis://127.0.0.1:6379"),
            Ok(CheckpointSpec::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            parse("dynamodb:checkpoints"),
            Ok(CheckpointSpec::DynamoDb("checkpoints".into()))
        );
        assert!(parse("dynamodb:x").is_err());
        assert!(
            parse("memcached://x")
                .expect_err("unknown")
                .contains("redis://HOST:PORT")
        );
        let t = timing(Duration::from_secs(20)).expect("valid");
        assert_eq!(t.heartbeat_frequency(), Duration::from_secs(5));
    }
}
