//! What a producer or consumer does with its stream at `build`, and how it lists shards later.

use std::time::Duration;

use crate::error::Error;
use crate::invalid_config::InvalidConfig;
use crate::stream::limits::LIST_SHARDS_MAX_RESULTS;
use crate::stream::{CreateStream, ShardListing, StreamClient, StreamSummary};

/// The stream options the producer and the consumer share (the same on both builders).
///
/// ```
/// use std::time::Duration;
/// use async_kinesis::{CreateStream, StreamSetup};
///
/// // Create an on-demand stream when missing, list shards with DescribeStream.
/// let setup = StreamSetup::default()
///     .create_stream(CreateStream::OnDemand)
///     .use_list_shards(false)
///     .describe_timeout(Duration::from_secs(30));
/// setup.validate()?;
/// assert!(setup.check_stream);
/// # Ok::<(), async_kinesis::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSetup {
    /// Create the stream like this when it does not exist (default `None`: a missing stream
    /// is an error).
    pub create_stream: Option<CreateStream>,
    /// Check at `build` that the stream exists and is usable, waiting up to
    /// `describe_timeout` (DescribeStreamSummary; default `true`). `false` is the Python
    /// library's `skip_describe_stream`: no call before the first listing of shards, unless
    /// `create_stream` is set (creating waits until the stream is usable, and the producer then
    /// uses what that wait saw: the record distribution and maximum record size).
    pub check_stream: bool,
    /// How long `build` waits for the stream to become usable (default 60 s); the consumer
    /// also retries a listing of the shards that takes longer.
    pub describe_timeout: Duration,
    /// How shards are listed (default ListShards).
    pub listing: ShardListing,
    /// How often shards are listed again even without signs of resharding (default 60 s).
    pub shard_refresh_interval: Duration,
}

impl Default for StreamSetup {
    fn default() -> Self {
        Self {
            create_stream: None,
            check_stream: true,
            describe_timeout: Duration::from_secs(60),
            listing: ShardListing::default(),
            shard_refresh_interval: Duration::from_secs(60),
        }
    }
}

impl StreamSetup {
    /// Create the stream like this when it is missing.
    #[must_use]
    pub fn create_stream(mut self, spec: CreateStream) -> Self {
        self.create_stream = Some(spec);
        self
    }

    /// Skip (`true`) or make (`false`, the default) the stream check at `build`.
    #[must_use]
    pub fn skip_describe_stream(mut self, skip: bool) -> Self {
        self.check_stream = !skip;
        self
    }

    /// List shards with ListShards (`true`, the default) or DescribeStream (`false`, for
    /// principals allowed only that).
    #[must_use]
    pub fn use_list_shards(mut self, use_list_shards: bool) -> Self {
        self.listing.use_list_shards = use_list_shards;
        self
    }

    /// How long `build` waits for the stream, and one listing may take.
    #[must_use]
    pub fn describe_timeout(mut self, timeout: Duration) -> Self {
        self.describe_timeout = timeout;
        self
    }

    /// How often shards are listed again.
    #[must_use]
    pub fn shard_refresh_interval(mut self, interval: Duration) -> Self {
        self.shard_refresh_interval = interval;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// A zero timeout or interval, a stream to create with no shards, a page size out of
    /// range.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if let Some(CreateStream::Provisioned { shards: 0 }) = self.create_stream {
            return Err(InvalidConfig::new(
                "create_stream",
                "a provisioned stream needs at least 1 shard",
            ));
        }
        for (option, value) in [
            ("describe_timeout", self.describe_timeout),
            ("shard_refresh_interval", self.shard_refresh_interval),
        ] {
            if value.is_zero() {
                return Err(InvalidConfig::new(option, "must be above zero"));
            }
        }
        let page = self.listing.page_size;
        if !(1..=LIST_SHARDS_MAX_RESULTS).contains(&page) {
            return Err(InvalidConfig::new(
                "listing",
                format!("page size {page} is outside 1..={LIST_SHARDS_MAX_RESULTS}"),
            ));
        }
        Ok(())
    }

    /// What `build` does with the stream: create it if asked and missing, then check it if
    /// asked. The summary is the check's answer (`None` when the check is skipped).
    ///
    /// # Cancel safety
    /// Not cancel safe when `create_stream` is set: the stream may have been created.
    pub(crate) async fn prepare(
        &self,
        client: &StreamClient,
    ) -> Result<Option<StreamSummary>, Error> {
        if let Some(spec) = self.create_stream {
            let summary = client
                .create_if_missing(spec, self.describe_timeout)
                .await?;
            return Ok(Some(summary));
        }
        if !self.check_stream {
            return Ok(None);
        }
        client
            .wait_until_usable(self.describe_timeout)
            .await
            .map(Some)
    }
}

/// The stream-setup and retry setters of a builder whose `config` has `setup: StreamSetup` and
/// `retry: RetryPolicy`: the same names and shapes on the producer and the consumer.
macro_rules! setup_setters {
    () => {
        /// What happens to the stream at `build`, and how shards are listed (default
        /// [`StreamSetup::default`](crate::StreamSetup)), replacing any setup option set before.
        pub fn setup(mut self, setup: $crate::StreamSetup) -> Self {
            self.config.setup = setup;
            self
        }

        /// How failed calls are retried, replacing any retry option set before (see
        /// [`RetryPolicy`](crate::RetryPolicy)). `RetryPolicy::default()` retries forever (the
        /// consumer's default); the producer refuses that without a `delivery_timeout`, so
        /// give it a `retry_limit`.
        pub fn retry(mut self, retry: $crate::RetryPolicy) -> Self {
            self.config.retry = retry;
            self
        }

        /// Create the stream like this at `build` if it does not exist (default: a missing
        /// stream is an error). Makes `build` not cancel safe.
        pub fn create_stream(mut self, spec: $crate::CreateStream) -> Self {
            self.config.setup.create_stream = Some(spec);
            self
        }

        /// Skip the stream check at `build` (default false); shards are still listed.
        pub fn skip_describe_stream(mut self, skip: bool) -> Self {
            self.config.setup = self.config.setup.skip_describe_stream(skip);
            self
        }

        /// List shards with ListShards (default true) or DescribeStream (false).
        pub fn use_list_shards(mut self, use_list_shards: bool) -> Self {
            self.config.setup = self.config.setup.use_list_shards(use_list_shards);
            self
        }

        /// How long `build` waits for the stream to become usable (default 60 s); the consumer
        /// also retries a listing of the shards that takes longer.
        pub fn describe_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.config.setup.describe_timeout = timeout;
            self
        }

        /// How often shards are listed again even without signs of resharding (default 60 s).
        pub fn shard_refresh_interval(mut self, interval: std::time::Duration) -> Self {
            self.config.setup.shard_refresh_interval = interval;
            self
        }

        /// Attempts before an operation fails for good (default: 10 per record for the
        /// producer; forever for the consumer's reads).
        pub fn retry_limit(mut self, attempts: u32) -> Self {
            self.config.retry.retry_limit = Some(attempts);
            self
        }

        /// The first retry delay; it doubles per attempt, half of it random (default 100 ms).
        pub fn expo_backoff(mut self, first: std::time::Duration) -> Self {
            self.config.retry.expo_backoff = first;
            self
        }

        /// The longest retry delay (default 120 s); at least `expo_backoff`.
        pub fn expo_backoff_limit(mut self, limit: std::time::Duration) -> Self {
            self.config.retry.expo_backoff_limit = limit;
            self
        }
    };
}
pub(crate) use setup_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_create_nothing_and_check_the_stream() {
        let setup = StreamSetup::default();
        assert_eq!(setup.create_stream, None);
        assert!(setup.check_stream);
        assert!(setup.listing.use_list_shards);
        assert_eq!(setup.describe_timeout, Duration::from_secs(60));
        assert_eq!(setup.shard_refresh_interval, Duration::from_secs(60));
        assert!(setup.validate().is_ok());
    }

    #[test]
    fn on_demand_and_provisioned_streams_can_be_created_but_not_with_zero_shards() {
        let on_demand = StreamSetup::default().create_stream(CreateStream::OnDemand);
        assert!(on_demand.validate().is_ok());
        let zero = StreamSetup::default().create_stream(CreateStream::Provisioned { shards: 0 });
        assert_eq!(
            zero.validate().expect_err("refused").option,
            "create_stream"
        );
    }

    #[test]
    fn zero_durations_and_bad_pages_are_refused() {
        let timeout = StreamSetup::default().describe_timeout(Duration::ZERO);
        assert_eq!(
            timeout.validate().expect_err("refused").option,
            "describe_timeout"
        );
        let refresh = StreamSetup::default().shard_refresh_interval(Duration::ZERO);
        assert_eq!(
            refresh.validate().expect_err("refused").option,
            "shard_refresh_interval"
        );
        let mut page = StreamSetup::default();
        page.listing.page_size = 0;
        assert_eq!(page.validate().expect_err("refused").option, "listing");
    }
}
