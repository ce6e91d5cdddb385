//! The stream client: describe, list shards, create, wait, delete.
//!
//! This is the only module that calls the stream-level Kinesis APIs (DescribeStreamSummary,
//! DescribeStream, ListShards, CreateStream, DeleteStream).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{
    RecordDistributionStrategy as SdkDistribution, StreamMode as SdkStreamMode, StreamModeDetails,
    StreamStatus as SdkStatus,
};
use tokio::time::Instant;

use crate::error::{Error, ErrorClass};
use crate::stream::connect::ConnectOptions;
use crate::stream::limits::{
    DEFAULT_MAX_RECORD_BYTES, DESCRIBE_STREAM_MAX_SHARDS, LIST_SHARDS_DEFAULT_PAGE,
};
use crate::stream::shard::Shard;
use crate::stream::stream_ref::{IntoStreamRef, StreamRef};

/// The state of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamStatus {
    /// Being created.
    Creating,
    /// Being deleted.
    Deleting,
    /// Ready for reads and writes.
    Active,
    /// Being resharded or reconfigured; reads and writes still work.
    Updating,
    /// A status this library does not know.
    Other(String),
}

impl StreamStatus {
    fn from_sdk(status: &SdkStatus) -> Self {
        match status {
            SdkStatus::Creating => Self::Creating,
            SdkStatus::Deleting => Self::Deleting,
            SdkStatus::Active => Self::Active,
            SdkStatus::Updating => Self::Updating,
            other => Self::Other(other.as_str().to_owned()),
        }
    }

    /// Whether records can be written and read (ACTIVE or UPDATING).
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Active | Self::Updating)
    }
}

impl std::fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Creating => f.write_str("CREATING"),
            Self::Deleting => f.write_str("DELETING"),
            Self::Active => f.write_str("ACTIVE"),
            Self::Updating => f.write_str("UPDATING"),
            Self::Other(status) => f.write_str(status),
        }
    }
}

/// How a stream's capacity is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// A fixed number of shards, changed by resharding.
    Provisioned,
    /// AWS scales the shards with the traffic.
    OnDemand,
}

/// How a stream places records on its shards (DescribeStreamSummary's
/// `RecordDistributionStrategy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDistribution {
    /// By the MD5 of each record's partition key, or its explicit hash key (the classic rule,
    /// `USER_PARTITION_KEY`, and what a service that does not report the field does).
    PartitionKey,
    /// The service places records itself and ignores partition and explicit hash keys
    /// (`AUTO`, on-demand streams): records of one key may land on different shards, so their
    /// order is not kept across shards. KPL aggregates are then written as plain records, since
    /// KPL readers drop aggregated items whose keys do not belong to the shard they are read from.
    Auto,
    /// A strategy this library does not know, as the service named it.
    Other(String),
}

impl RecordDistribution {
    fn from_sdk(strategy: Option<&SdkDistribution>) -> Self {
        match strategy {
            None | Some(SdkDistribution::UserPartitionKey) => Self::PartitionKey,
            Some(SdkDistribution::Auto) => Self::Auto,
            Some(other) => Self::Other(other.as_str().to_owned()),
        }
    }

    /// Whether the service ignores partition keys when placing records.
    pub fn ignores_keys(&self) -> bool {
        matches!(self, Self::Auto)
    }
}

impl std::fmt::Display for RecordDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PartitionKey => f.write_str("USER_PARTITION_KEY"),
            Self::Auto => f.write_str("AUTO"),
            Self::Other(strategy) => f.write_str(strategy),
        }
    }
}

/// What [`StreamClient::create`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStream {
    /// A provisioned stream with this many shards.
    Provisioned {
        /// Number of shards (≥ 1).
        shards: u32,
    },
    /// An on-demand stream.
    OnDemand,
}

/// A stream's description (DescribeStreamSummary).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamSummary {
    /// The stream's name.
    pub name: String,
    /// The stream's ARN.
    pub arn: String,
    /// The stream's state.
    pub status: StreamStatus,
    /// Provisioned or on-demand (provisioned when the service does not say).
    pub mode: StreamMode,
    /// Number of open shards.
    pub open_shard_count: u32,
    /// How long records are kept.
    pub retention: Duration,
    /// Largest record (data + partition key) the stream accepts.
    pub max_record_bytes: usize,
    /// Number of registered enhanced fan-out consumers, if reported.
    pub consumer_count: Option<u32>,
    /// Whether records are encrypted at rest (KMS).
    pub encrypted: bool,
    /// When the stream was created.
    pub created_at: Option<SystemTime>,
    /// How the stream places records on its shards (by partition key when not reported).
    pub record_distribution: RecordDistribution,
}

/// How to list shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardListing {
    /// Use ListShards (default); `false` uses DescribeStream, for principals allowed only that.
    pub use_list_shards: bool,
    /// Shards per page (ListShards 1–10,000; DescribeStream at most 100).
    pub page_size: i32,
}

impl Default for ShardListing {
    fn default() -> Self {
        Self {
            use_list_shards: true,
            page_size: LIST_SHARDS_DEFAULT_PAGE,
        }
    }
}

/// A Kinesis client bound to one stream.
///
/// Cheap to clone: clones share the underlying AWS client and its connection pool.
#[derive(Debug, Clone)]
pub struct StreamClient {
    client: Client,
    stream: StreamRef,
    endpoint: Arc<str>,
}

impl StreamClient {
    /// Loads the AWS configuration described by `options` and binds a client to `stream`.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`] / [`Error::InvalidStreamArn`] for a bad stream;
    /// [`Error::NoCredentials`] when the configuration has no credentials provider at all.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn connect<S>(stream: S, options: &ConnectOptions) -> Result<Self, Error>
    where
        S: IntoStreamRef,
    {
        let stream = stream.into_stream_ref()?;
        let config = options.load().await;
        Self::from_sdk_config(&config, stream)
    }

    /// Binds a client built from an existing AWS configuration to `stream`.
    ///
    /// # Errors
    /// As for [`StreamClient::connect`].
    pub fn from_sdk_config<S>(config: &SdkConfig, stream: S) -> Result<Self, Error>
    where
        S: IntoStreamRef,
    {
        let stream = stream.into_stream_ref()?;
        let (client, endpoint) = client_for(config)?;
        Ok(Self {
            client,
            stream,
            endpoint,
        })
    }

    /// Binds an existing AWS Kinesis client to `stream`. A client whose configuration sets no
    /// attempt timeout is given the default one (30 s), sharing its connection pool, so no call
    /// can wait forever.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`] / [`Error::InvalidStreamArn`] for a bad stream.
    pub fn new<S>(client: Client, stream: S) -> Result<Self, Error>
    where
        S: IntoStreamRef,
    {
        let stream = stream.into_stream_ref()?;
        // Every call gets an attempt timeout, even through a client built elsewhere.
        let client = crate::stream::connect::bounded_client(client);
        let region = client.config().region().map(|r| r.as_ref().to_owned());
        let endpoint = describe_endpoint(None, region.as_deref());
        Ok(Self {
            client,
            stream,
            endpoint: endpoint.into(),
        })
    }

    /// The same client bound to another stream.
    pub fn for_stream<S>(&self, stream: S) -> Result<Self, Error>
    where
        S: IntoStreamRef,
    {
        Ok(Self {
            client: self.client.clone(),
            stream: stream.into_stream_ref()?,
            endpoint: self.endpoint.clone(),
        })
    }

    /// The same client, naming `endpoint` in its errors.
    pub(crate) fn with_endpoint(mut self, endpoint: &Arc<str>) -> Self {
        self.endpoint = endpoint.clone();
        self
    }

    /// The stream this client is bound to.
    pub fn stream(&self) -> &StreamRef {
        &self.stream
    }

    /// The underlying AWS SDK client, for calls this library does not wrap.
    pub fn sdk_client(&self) -> &Client {
        &self.client
    }

    /// Where requests go, as shown in errors.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Converts an SDK error of `operation` on this stream into our error.
    pub(crate) fn error<E, R>(
        &self,
        operation: &'static str,
        err: aws_sdk_kinesis::error::SdkError<E, R>,
    ) -> Error
    where
        E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: crate::error::RawStatus + std::fmt::Debug + Send + Sync + 'static,
    {
        Error::from_sdk(operation, &self.stream.to_string(), &self.endpoint, err)
    }

    /// Describes the stream (DescribeStreamSummary).
    ///
    /// # Errors
    /// [`Error::StreamNotFound`] when the stream does not exist; service and transport errors.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn describe(&self) -> Result<StreamSummary, Error> {
        const OP: &str = "DescribeStreamSummary";
        let (name, arn) = self.stream.request_ids();
        let output = self
            .client
            .describe_stream_summary()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .send()
            .await
            .map_err(|e| self.error(OP, e))?;
        let summary = output
            .stream_description_summary()
            .ok_or(Error::MalformedResponse {
                operation: OP,
                detail: "no StreamDescriptionSummary".into(),
            })?;
        let mode = match summary.stream_mode_details().map(|m| m.stream_mode()) {
            Some(SdkStreamMode::OnDemand) => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        let max_record_bytes = summary
            .max_record_size_in_kib()
            .and_then(|kib| usize::try_from(kib).ok())
            .filter(|&kib| kib > 0)
            .map_or(DEFAULT_MAX_RECORD_BYTES, |kib| kib * 1024);
        Ok(StreamSummary {
            name: summary.stream_name().to_owned(),
            arn: summary.stream_arn().to_owned(),
            status: StreamStatus::from_sdk(summary.stream_status()),
            mode,
            open_shard_count: u32::try_from(summary.open_shard_count()).unwrap_or(0),
            retention: Duration::from_secs(
                u64::try_from(summary.retention_period_hours()).unwrap_or(0) * 3600,
            ),
            max_record_bytes,
            consumer_count: summary.consumer_count().and_then(|c| u32::try_from(c).ok()),
            encrypted: summary
                .encryption_type()
                .is_some_and(|t| t.as_str() != "NONE"),
            created_at: SystemTime::try_from(*summary.stream_creation_timestamp()).ok(),
            record_distribution: RecordDistribution::from_sdk(
                summary.record_distribution_strategy(),
            ),
        })
    }

    /// Every shard of the stream, open and closed, following all pages (ListShards).
    ///
    /// # Errors
    /// As for [`StreamClient::describe`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn list_shards(&self) -> Result<Vec<Shard>, Error> {
        self.list_shards_with(ShardListing::default()).await
    }

    /// Every shard of the stream, listed as `listing` says.
    ///
    /// ListShards that the principal may not call (or the endpoint does not know) falls back to
    /// DescribeStream.
    ///
    /// # Errors
    /// As for [`StreamClient::describe`]; [`Error::InvalidArgument`] for a page size below 1.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn list_shards_with(&self, listing: ShardListing) -> Result<Vec<Shard>, Error> {
        if listing.page_size < 1 {
            return Err(Error::InvalidArgument(format!(
                "shard page size must be at least 1, got {}",
                listing.page_size
            )));
        }
        if !listing.use_list_shards {
            return self.describe_stream_shards(listing.page_size).await;
        }
        match self.list_shards_paginated(listing.page_size).await {
            Err(err)
                if matches!(err.class(), ErrorClass::AccessDenied)
                    || err.code() == Some("UnknownOperationException") =>
            {
                tracing::warn!(stream = %self.stream, error = %err, "ListShards unavailable, listing with DescribeStream");
                self.describe_stream_shards(listing.page_size).await
            }
            other => other,
        }
    }

    async fn list_shards_paginated(&self, page_size: i32) -> Result<Vec<Shard>, Error> {
        const OP: &str = "ListShards";
        // An expired pagination token restarts the listing; twice in a row is an error.
        let mut restarts_left = 2;
        'listing: loop {
            let mut shards = Vec::new();
            let mut next_token: Option<String> = None;
            loop {
                let request = self.client.list_shards().max_results(page_size);
                // With a NextToken the stream must not be named again.
                let request = match &next_token {
                    Some(token) => request.next_token(token),
                    None => {
                        let (name, arn) = self.stream.request_ids();
                        request.set_stream_name(name).set_stream_arn(arn)
                    }
                };
                let page = match request.send().await {
                    Ok(page) => page,
                    Err(err) => {
                        let err = self.error(OP, err);
                        if err.class() == ErrorClass::Expired && restarts_left > 0 {
                            restarts_left -= 1;
                            continue 'listing;
                        }
                        return Err(err);
                    }
                };
                for shard in page.shards() {
                    shards.push(Shard::from_sdk(OP, shard)?);
                }
                match page.next_token() {
                    Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                    _ => return Ok(shards),
                }
            }
        }
    }

    async fn describe_stream_shards(&self, page_size: i32) -> Result<Vec<Shard>, Error> {
        const OP: &str = "DescribeStream";
        let mut shards: Vec<Shard> = Vec::new();
        loop {
            let (name, arn) = self.stream.request_ids();
            let output = self
                .client
                .describe_stream()
                .set_stream_name(name)
                .set_stream_arn(arn)
                .limit(page_size.min(DESCRIBE_STREAM_MAX_SHARDS))
                .set_exclusive_start_shard_id(shards.last().map(|s| s.shard_id.to_string()))
                .send()
                .await
                .map_err(|e| self.error(OP, e))?;
            let description = output
                .stream_description()
                .ok_or(Error::MalformedResponse {
                    operation: OP,
                    detail: "no StreamDescription".into(),
                })?;
            let before = shards.len();
            for shard in description.shards() {
                shards.push(Shard::from_sdk(OP, shard)?);
            }
            // An empty page with "more" would loop forever; treat it as the end.
            if !description.has_more_shards() || shards.len() == before {
                return Ok(shards);
            }
        }
    }

    /// Creates the stream. Returns once the service accepted the request; see
    /// [`StreamClient::wait_until_active`].
    ///
    /// # Errors
    /// [`Error::StreamExists`] when it already exists; [`Error::InvalidArgument`] for 0 shards.
    ///
    /// # Cancel safety
    /// Not cancel safe: the request may have reached the service.
    pub async fn create(&self, spec: CreateStream) -> Result<(), Error> {
        const OP: &str = "CreateStream";
        let request = self.client.create_stream().stream_name(self.stream.name());
        let request = match spec {
            CreateStream::Provisioned { shards: 0 } => {
                return Err(Error::InvalidArgument(
                    "a stream needs at least one shard".into(),
                ));
            }
            CreateStream::Provisioned { shards } => {
                let shards = i32::try_from(shards)
                    .map_err(|_| Error::InvalidArgument(format!("too many shards: {shards}")))?;
                request.shard_count(shards)
            }
            CreateStream::OnDemand => request.stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(SdkStreamMode::OnDemand)
                    .build()
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?,
            ),
        };
        match request.send().await.map_err(|e| self.error(OP, e)) {
            Err(err) if err.code() == Some("ResourceInUseException") => Err(Error::StreamExists {
                stream: self.stream.name().to_owned(),
            }),
            other => other.map(drop),
        }
    }

    /// Creates the stream unless it exists, then waits until it is usable (ACTIVE, or UPDATING
    /// when an existing stream is being resharded).
    ///
    /// # Errors
    /// As for [`StreamClient::create`] (except `StreamExists`) and
    /// [`StreamClient::wait_until_usable`].
    ///
    /// # Cancel safety
    /// Not cancel safe: the stream may have been created.
    pub async fn create_if_missing(
        &self,
        spec: CreateStream,
        timeout: Duration,
    ) -> Result<StreamSummary, Error> {
        match self.create(spec).await {
            Ok(()) | Err(Error::StreamExists { .. }) => self.wait_until_usable(timeout).await,
            Err(err) => Err(err),
        }
    }

    /// Waits until the stream is ACTIVE.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] when `timeout` passes first; [`Error::StreamNotFound`] when the
    /// stream does not exist or is being deleted.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_until_active(&self, timeout: Duration) -> Result<StreamSummary, Error> {
        self.wait_for("ACTIVE", |status| *status == StreamStatus::Active, timeout)
            .await
    }

    /// Waits until the stream accepts reads and writes: ACTIVE, or UPDATING (resharding).
    ///
    /// # Errors
    /// As for [`StreamClient::wait_until_active`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_until_usable(&self, timeout: Duration) -> Result<StreamSummary, Error> {
        self.wait_for("ACTIVE or UPDATING", StreamStatus::is_usable, timeout)
            .await
    }

    async fn wait_for(
        &self,
        wanted: &'static str,
        reached: impl Fn(&StreamStatus) -> bool,
        timeout: Duration,
    ) -> Result<StreamSummary, Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let summary = match self.describe().await {
                Ok(summary) => summary,
                // Throttled or a passing failure: asked again (jittered, so many processes
                // starting together spread out) while the wait lasts.
                Err(err) if err.is_retryable() && started.elapsed() + pause <= timeout => {
                    tracing::debug!(stream = %self.stream, error = %err, "describing the stream failed; retrying");
                    tokio::time::sleep(pause.mul_f64(rand::random_range(0.5..=1.0))).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
                Err(err) => return Err(err),
            };
            if reached(&summary.status) {
                return Ok(summary);
            }
            if summary.status == StreamStatus::Deleting {
                return Err(Error::StreamNotFound {
                    stream: self.stream.to_string(),
                });
            }
            let waited = started.elapsed();
            if waited + pause > timeout {
                return Err(Error::WaitTimeout {
                    stream: self.stream.to_string(),
                    wanted,
                    last_status: summary.status.to_string(),
                    waited,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Deletes the stream, together with its enhanced fan-out consumers.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`] when it does not exist.
    ///
    /// # Cancel safety
    /// Not cancel safe: the request may have reached the service.
    pub async fn delete(&self) -> Result<(), Error> {
        const OP: &str = "DeleteStream";
        let (name, arn) = self.stream.request_ids();
        self.client
            .delete_stream()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .enforce_consumer_deletion(true)
            .send()
            .await
            .map_err(|e| self.error(OP, e))
            .map(drop)
    }
}

/// A Kinesis client for `config` and the endpoint its errors name.
///
/// # Errors
/// [`Error::NoCredentials`] when the configuration has no credentials provider at all.
pub(crate) fn client_for(config: &SdkConfig) -> Result<(Client, Arc<str>), Error> {
    if config.credentials_provider().is_none() {
        return Err(Error::NoCredentials {
            operation: "connect",
            source: None,
        });
    }
    let endpoint = describe_endpoint(config.endpoint_url(), config.region().map(|r| r.as_ref()));
    Ok((
        crate::stream::connect::bounded_client_for(config),
        endpoint.into(),
    ))
}

fn describe_endpoint(endpoint_url: Option<&str>, region: Option<&str>) -> String {
    match (endpoint_url, region) {
        (Some(url), _) => url.to_owned(),
        (None, Some(region)) => format!("https://kinesis.{region}.amazonaws.com"),
        (None, None) => "the default AWS endpoint (no region configured)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_description_prefers_the_configured_url() {
        assert_eq!(
            describe_endpoint(Some("http://127.0.0.1:1"), Some("eu-west-1")),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            describe_endpoint(None, Some("eu-west-1")),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        assert!(describe_endpoint(None, None).contains("no region"));
    }

    #[test]
    fn default_listing_uses_list_shards_with_the_default_page() {
        let listing = ShardListing::default();
        assert!(listing.use_list_shards);
        assert_eq!(listing.page_size, LIST_SHARDS_DEFAULT_PAGE);
    }

    #[test]
    fn usable_states() {
        assert!(StreamStatus::Active.is_usable());
        assert!(StreamStatus::Updating.is_usable());
        assert!(!StreamStatus::Creating.is_usable());
        assert!(!StreamStatus::Deleting.is_usable());
        assert_eq!(StreamStatus::Other("NEW".into()).to_string(), "NEW");
    }
}
