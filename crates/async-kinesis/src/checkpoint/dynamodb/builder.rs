//! Options of a [`DynamoDbStore`], checked before any call, and the table check of `build`.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_smithy_types::timeout::TimeoutConfig;

use super::error::DynamoDbError;
use super::table::Table;
use super::{DynamoDbStore, Inner};
use crate::checkpoint::{CheckpointError, LeaseTiming};
use crate::invalid_config::InvalidConfig;
use crate::retry::RetryPolicy;
use crate::stream::connect::{ClientSource, ConnectOptions};
use aws_smithy_types::retry::RetryConfig;

/// A TTL must span at least this many session timeouts.
pub(super) const MIN_TTL_SESSIONS: u32 = 60;
/// Connect timeout for an [`SdkConfig`] that sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempt timeout for an [`SdkConfig`] that sets none: a lease store must answer well within a
/// session timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`DynamoDbStore`]; see [`DynamoDbStore::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct DynamoDbStoreBuilder {
    name: String,
    table_name: Option<String>,
    session_timeout: Duration,
    heartbeat_frequency: Duration,
    create_table: bool,
    ttl_hours: Option<u32>,
    retry: Option<RetryPolicy>,
    source: ClientSource<Client>,
}

impl DynamoDbStoreBuilder {
    pub(super) fn new(name: String) -> Self {
        let timing = LeaseTiming::default();
        Self {
            name,
            table_name: None,
            session_timeout: timing.session_timeout(),
            heartbeat_frequency: timing.heartbeat_frequency(),
            create_table: true,
            ttl_hours: None,
            retry: None,
            source: ClientSource::Options(
                ConnectOptions::default().attempt_timeout(Some(ATTEMPT_TIMEOUT)),
            ),
        }
    }

    /// The table (default `kinesis-checkpoints-<name>`, the Python library's default name; its
    /// tables have another key schema, which `build` reports).
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table_name = Some(table.into());
        self
    }

    /// How long a lease and a worker registration live without renewal (default 60 s).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How often workers renew and rebalance (default 15 s; at most half the session timeout).
    pub fn heartbeat_frequency(mut self, frequency: Duration) -> Self {
        self.heartbeat_frequency = frequency;
        self
    }

    /// Both [`LeaseTiming`] durations at once.
    pub fn timing(self, timing: LeaseTiming) -> Self {
        self.session_timeout(timing.session_timeout())
            .heartbeat_frequency(timing.heartbeat_frequency())
    }

    /// Whether to create the table (pay per request) when it is missing, at `build` and when it
    /// disappears later (default `true`, as in the Python library). With `false` a missing table
    /// is an error.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// Lets DynamoDB delete the items of a group that has had no live worker for a while
    /// (default `None`: items are never deleted). Live workers keep every item of their group,
    /// finished shards included, at least 3/8 of the TTL ahead; see the
    /// [store's docs](DynamoDbStore#time-to-live). Must span at least 60 session timeouts.
    ///
    /// The Python library's default, 24 hours refreshed only on the leases a worker holds, let
    /// DynamoDB delete the checkpoints of finished and released shards of a running group.
    pub fn ttl_hours(mut self, hours: Option<u32>) -> Self {
        self.ttl_hours = hours;
        self
    }

    /// How the client retries failed calls (default: the SDK's standard retries, 3 attempts);
    /// it needs a `retry_limit`. Keep attempts × attempt timeout well within the session
    /// timeout, or a store call outlives the lease it renews.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    crate::stream::connect::connect_setters!(
        Client,
        "Use this DynamoDB client as it is. (Options and an `SdkConfig` get a connect timeout \
         of 3 s and an attempt timeout of 10 s where they set none.)"
    );

    /// Checks the options, connects, and checks that the table exists with the store's key
    /// schema (creating it when allowed and missing, and waiting until it is ACTIVE).
    ///
    /// # Errors
    /// [`CheckpointError::Store`] whose source is a [`DynamoDbError`]: an invalid option, no
    /// credentials, an unreachable endpoint (after the client's timeouts and retries), a missing
    /// table, a table with another key schema, or a time-to-live setting that does not match.
    pub async fn build(self) -> Result<DynamoDbStore, CheckpointError> {
        self.build_inner()
            .await
            .map_err(|e| e.into_store_error("build"))
    }

    async fn build_inner(self) -> Result<DynamoDbStore, DynamoDbError> {
        let invalid = |option, reason: String| Err(InvalidConfig::new(option, reason).into());
        if self.name.is_empty() || self.name.contains(':') {
            return invalid(
                "name",
                format!(
                    "the application name {:?} must be non-empty and free of ':' (it prefixes the \
                 stream in the partition key)",
                    self.name
                ),
            );
        }
        let table_name = self
            .table_name
            .clone()
            .unwrap_or_else(|| format!("kinesis-checkpoints-{}", self.name));
        check_table_name(&table_name).map_err(|reason| InvalidConfig::new("table_name", reason))?;
        let timing = LeaseTiming::new(self.session_timeout, self.heartbeat_frequency)
            .map_err(|problem| InvalidConfig::new(problem.option(), problem.to_string()))?;
        let ttl = check_ttl(self.ttl_hours, timing)
            .map_err(|reason| InvalidConfig::new("ttl_hours", reason))?;
        let retry = self.retry.map(|r| r.sdk_retry_config()).transpose()?;
        let (client, endpoint) = connect(self.source, retry).await?;
        let table = Table {
            client,
            name: table_name,
            endpoint,
            create: self.create_table,
            ttl: ttl.is_some(),
        };
        table.ensure().await?;
        Ok(DynamoDbStore::from_inner(Inner::new(
            table, self.name, timing, ttl,
        )))
    }
}

/// The client, and where it sends requests (for error messages).
async fn connect(
    source: ClientSource<Client>,
    retry: Option<RetryConfig>,
) -> Result<(Client, String), DynamoDbError> {
    let (config, fill_timeouts) = match source {
        ClientSource::Client(client) => {
            let region = client.config().region().map(|r| r.as_ref().to_owned());
            let endpoint = describe_endpoint(None, region.as_deref());
            let client = match retry {
                Some(retry) => {
                    Client::from_conf(client.config().to_builder().retry_config(retry).build())
                }
                None => client,
            };
            return Ok((client, endpoint));
        }
        ClientSource::Options(options) => (options.load().await, false),
        ClientSource::SdkConfig(config) => (*config, true),
    };
    if config.credentials_provider().is_none() {
        return Err(DynamoDbError::NoCredentials {
            operation: "connect",
            source: None,
        });
    }
    let Some(region) = config.region().map(|r| r.as_ref().to_owned()) else {
        return Err(InvalidConfig::new(
            "connect_options",
            "no AWS region configured: set AWS_REGION, a profile's region, or \
                 ConnectOptions::region",
        )
        .into());
    };
    let endpoint = describe_endpoint(config.endpoint_url(), Some(&region));
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config);
    if fill_timeouts {
        builder = builder.timeout_config(with_default_timeouts(config.timeout_config()));
    }
    if let Some(retry) = retry {
        builder = builder.retry_config(retry);
    }
    Ok((Client::from_conf(builder.build()), endpoint))
}

/// `existing`, with the store's connect and attempt timeouts where it sets none.
fn with_default_timeouts(existing: Option<&TimeoutConfig>) -> TimeoutConfig {
    let mut timeouts = TimeoutConfig::builder();
    timeouts
        .set_connect_timeout(Some(
            existing
                .and_then(TimeoutConfig::connect_timeout)
                .unwrap_or(CONNECT_TIMEOUT),
        ))
        .set_operation_attempt_timeout(Some(
            existing
                .and_then(TimeoutConfig::operation_attempt_timeout)
                .unwrap_or(ATTEMPT_TIMEOUT),
        ))
        .set_operation_timeout(existing.and_then(TimeoutConfig::operation_timeout))
        .set_read_timeout(existing.and_then(TimeoutConfig::read_timeout));
    timeouts.build()
}

fn describe_endpoint(endpoint_url: Option<&str>, region: Option<&str>) -> String {
    match (endpoint_url, region) {
        (Some(url), _) => url.to_owned(),
        (None, Some(region)) => format!("https://dynamodb.{region}.amazonaws.com"),
        (None, None) => "the default AWS endpoint (no region configured)".to_owned(),
    }
}

/// DynamoDB's rules for table names.
fn check_table_name(name: &str) -> Result<(), String> {
    if !(3..=255).contains(&name.len()) {
        return Err(format!(
            "table name {name:?} must be 3 to 255 characters long"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "table name {name:?} holds {bad:?}; only letters, digits, '_', '-' and '.' are \
             allowed (set table_name when the application name has others)"
        ));
    }
    Ok(())
}

/// The TTL, when one is asked for and long enough to never touch a live group's items.
fn check_ttl(hours: Option<u32>, timing: LeaseTiming) -> Result<Option<Duration>, String> {
    let Some(hours) = hours else {
        return Ok(None);
    };
    let ttl = Duration::from_secs(u64::from(hours) * 3600);
    let minimum = timing.session_timeout() * MIN_TTL_SESSIONS;
    if hours == 0 || ttl < minimum {
        return Err(format!(
            "ttl_hours ({hours}) must be positive and span at least {MIN_TTL_SESSIONS} session \
             timeouts ({minimum:?})"
        ));
    }
    Ok(Some(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_dynamodb_rules() {
        assert!(check_table_name("kinesis-checkpoints-orders_v1.2").is_ok());
        assert!(check_table_name("ab").is_err());
        assert!(check_table_name(&"a".repeat(256)).is_err());
        assert!(check_table_name("kinesis-checkpoints-my app").is_err_and(|e| e.contains("' '")));
    }

    #[test]
    fn a_ttl_must_be_much_longer_than_a_session() {
        let default = LeaseTiming::default();
        assert_eq!(check_ttl(None, default), Ok(None));
        assert_eq!(
            check_ttl(Some(24), default),
            Ok(Some(Duration::from_secs(24 * 3600)))
        );
        assert!(check_ttl(Some(0), default).is_err());
        // 60 sessions of 2 minutes are 2 hours.
        let long =
            LeaseTiming::new(Duration::from_secs(120), Duration::from_secs(30)).expect("timing");
        assert!(check_ttl(Some(1), long).is_err_and(|e| e.contains("60 session")));
        assert!(check_ttl(Some(2), long).is_ok());
    }

    #[test]
    fn missing_timeouts_are_filled_and_set_ones_kept() {
        let filled = with_default_timeouts(None);
        assert_eq!(filled.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(filled.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        let mine = TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(500))
            .operation_timeout(Duration::from_secs(40))
            .build();
        let kept = with_default_timeouts(Some(&mine));
        assert_eq!(kept.connect_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(kept.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(kept.operation_timeout(), Some(Duration::from_secs(40)));
    }

    #[test]
    fn endpoints_are_described_for_errors() {
        assert_eq!(
            describe_endpoint(Some("http://127.0.0.1:1"), Some("eu-west-1")),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            describe_endpoint(None, Some("eu-west-1")),
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
    }
}
