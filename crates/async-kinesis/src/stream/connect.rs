//! Loading AWS configuration: the default credential chain, region and an optional endpoint.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::error::Error;
use crate::stream::StreamClient;
use crate::stream::stream_ref::StreamRef;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

/// How long one attempt of a Kinesis call may take, unless the configuration says otherwise.
pub(crate) const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a TCP/TLS connection, unless the configuration says otherwise.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How to reach Kinesis when no [`SdkConfig`] or client is supplied.
///
/// Everything not set here comes from the standard AWS sources: environment variables, shared
/// config and credentials files, web identity, container and instance metadata.
///
/// ```no_run
/// # async fn demo() -> Result<(), async_kinesis::Error> {
/// use async_kinesis::{ConnectOptions, StreamClient};
///
/// let options = ConnectOptions::default()
///     .region("us-east-1")
///     .endpoint_url("http://127.0.0.1:4568");
/// let client = StreamClient::connect("orders", &options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    connect_timeout: Duration,
    attempt_timeout: Option<Duration>,
    max_attempts: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            profile: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
            max_attempts: 3,
        }
    }
}

impl ConnectOptions {
    /// The AWS region (default: from the environment / profile).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// A custom endpoint, e.g. a local emulator (default: the region's AWS endpoint).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// A named profile of the shared config files (default: `AWS_PROFILE` or `default`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// How long to wait for a TCP/TLS connection (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt of a call may take before it is abandoned (default 30 s; `None`
    /// takes the default too, since a call without one could wait forever). Bounds the time to
    /// an error when an endpoint accepts connections but never answers. Clients built from
    /// your own [`SdkConfig`] or client get the default when they set none.
    pub fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Attempts per call for the AWS client's own retries of transient errors (default 3; 1
    /// disables them).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The endpoint configured here, if any.
    pub fn configured_endpoint(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// Loads the AWS configuration these options describe.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is left half-done.
    pub async fn load(&self) -> SdkConfig {
        let mut timeouts = TimeoutConfig::builder();
        timeouts
            .set_connect_timeout(Some(self.connect_timeout))
            .set_operation_attempt_timeout(Some(
                self.attempt_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
            ));
        let timeouts = timeouts.build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts));
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        loader.load().await
    }
}

/// `existing`, with the default connect and attempt timeouts where it sets none; the rest kept.
pub(crate) fn with_default_timeouts(existing: Option<&TimeoutConfig>) -> TimeoutConfig {
    let mut timeouts = TimeoutConfig::builder();
    timeouts
        .set_connect_timeout(Some(
            existing
                .and_then(TimeoutConfig::connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        ))
        .set_operation_attempt_timeout(Some(
            existing
                .and_then(TimeoutConfig::operation_attempt_timeout)
                .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
        ))
        .set_operation_timeout(existing.and_then(TimeoutConfig::operation_timeout))
        .set_read_timeout(existing.and_then(TimeoutConfig::read_timeout));
    timeouts.build()
}

/// A Kinesis client for `config` whose every call attempt is bounded in time.
pub(crate) fn bounded_client_for(config: &SdkConfig) -> aws_sdk_kinesis::Client {
    let builder = aws_sdk_kinesis::config::Builder::from(config)
        .timeout_config(with_default_timeouts(config.timeout_config()));
    aws_sdk_kinesis::Client::from_conf(builder.build())
}

/// `client`, or a client sharing its configuration (and connection pool) plus the default
/// timeouts when it sets no attempt timeout.
pub(crate) fn bounded_client(client: aws_sdk_kinesis::Client) -> aws_sdk_kinesis::Client {
    let existing = client.config().timeout_config();
    if existing
        .and_then(TimeoutConfig::operation_attempt_timeout)
        .is_some()
    {
        return client;
    }
    let timeouts = with_default_timeouts(existing);
    aws_sdk_kinesis::Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build(),
    )
}

/// Where a builder's AWS client comes from: a Kinesis client for the producer and consumer, a
/// DynamoDB client for the DynamoDB store. Set with the setters of [`connect_setters!`].
#[derive(Debug, Clone)]
pub(crate) enum ClientSource<C = aws_sdk_kinesis::Client> {
    /// Load the configuration these options describe.
    Options(ConnectOptions),
    /// A configuration the user loaded.
    SdkConfig(Box<SdkConfig>),
    /// A client the user built.
    Client(C),
}

impl<C> Default for ClientSource<C> {
    fn default() -> Self {
        Self::Options(ConnectOptions::default())
    }
}

/// The three connect setters of a builder with a `source: ClientSource<$client>` field, the
/// same on every builder.
macro_rules! connect_setters {
    ($client:ty, $client_doc:literal) => {
        /// Connect with these options (default: the default AWS credential chain and region,
        /// with the builder's default timeouts).
        pub fn connect_options(mut self, options: $crate::ConnectOptions) -> Self {
            self.source = $crate::stream::connect::ClientSource::Options(options);
            self
        }

        /// Connect with an AWS configuration you loaded.
        pub fn sdk_config(mut self, config: &aws_config::SdkConfig) -> Self {
            self.source =
                $crate::stream::connect::ClientSource::SdkConfig(Box::new(config.clone()));
            self
        }

        #[doc = $client_doc]
        pub fn client(mut self, client: $client) -> Self {
            self.source = $crate::stream::connect::ClientSource::Client(client);
            self
        }
    };
}
pub(crate) use connect_setters;

impl ClientSource {
    /// A stream client for `stream` from this source.
    pub(crate) async fn stream_client(self, stream: StreamRef) -> Result<StreamClient, Error> {
        match self {
            Self::Options(options) => StreamClient::connect(stream, &options).await,
            Self::SdkConfig(config) => StreamClient::from_sdk_config(&config, stream),
            Self::Client(client) => StreamClient::new(client, stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;

    use super::*;

    fn config(timeouts: Option<TimeoutConfig>) -> SdkConfig {
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "id", "secret", None, None, "test",
            )));
        builder.set_timeout_config(timeouts);
        builder.build()
    }

    fn attempt_timeout(client: &aws_sdk_kinesis::Client) -> Option<Duration> {
        client
            .config()
            .timeout_config()
            .and_then(TimeoutConfig::operation_attempt_timeout)
    }

    #[test]
    fn a_configuration_without_an_attempt_timeout_gets_the_default() {
        let client = bounded_client_for(&config(None));
        assert_eq!(attempt_timeout(&client), Some(DEFAULT_ATTEMPT_TIMEOUT));
        let only_operation = TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(90))
            .build();
        let client = bounded_client_for(&config(Some(only_operation)));
        assert_eq!(attempt_timeout(&client), Some(DEFAULT_ATTEMPT_TIMEOUT));
        assert_eq!(
            client
                .config()
                .timeout_config()
                .and_then(TimeoutConfig::operation_timeout),
            Some(Duration::from_secs(90)),
            "the other timeouts are kept"
        );
    }

    #[test]
    fn an_attempt_timeout_of_the_user_is_kept() {
        let mine = TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_millis(700))
            .build();
        let client = bounded_client_for(&config(Some(mine)));
        assert_eq!(attempt_timeout(&client), Some(Duration::from_millis(700)));
    }

    #[test]
    fn a_client_of_the_user_without_an_attempt_timeout_gets_the_default() {
        let unbounded = aws_sdk_kinesis::Client::new(&config(None));
        assert_eq!(
            attempt_timeout(&bounded_client(unbounded)),
            Some(DEFAULT_ATTEMPT_TIMEOUT)
        );
        let mine = TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(4))
            .build();
        let bounded = aws_sdk_kinesis::Client::new(&config(Some(mine)));
        assert_eq!(
            attempt_timeout(&bounded_client(bounded)),
            Some(Duration::from_secs(4))
        );
    }
}
