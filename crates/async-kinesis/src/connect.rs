//! Loading AWS configuration: the default credential chain, region and an optional endpoint.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::error::Error;
use crate::stream::StreamClient;
use crate::stream_ref::StreamRef;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

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
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Some(Duration::from_secs(30)),
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
    /// waits forever). Bounds the time to an error when an endpoint accepts connections but
    /// never answers.
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
            .set_operation_attempt_timeout(self.attempt_timeout);
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

/// Where a producer's or consumer's AWS client comes from.
#[derive(Debug, Clone)]
pub(crate) enum ClientSource {
    /// Load the configuration these options describe.
    Options(ConnectOptions),
    /// A configuration the user loaded.
    SdkConfig(Box<SdkConfig>),
    /// A client the user built.
    Client(aws_sdk_kinesis::Client),
}

impl Default for ClientSource {
    fn default() -> Self {
        Self::Options(ConnectOptions::default())
    }
}

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
