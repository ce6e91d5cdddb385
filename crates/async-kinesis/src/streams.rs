//! The streams of one account and region: listing them, every page, with their summaries.
//!
//! Like [`stream`](crate::stream), this module calls stream-level APIs only (ListStreams and
//! DescribeStreamSummary).

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_kinesis::Client;
use futures::StreamExt;

use crate::error::Error;
use crate::stream::connect::ConnectOptions;
use crate::stream::stream_ref::IntoStreamRef;
use crate::stream::{StreamClient, StreamSummary};

/// Streams per ListStreams page (the API allows up to 10,000; AWS's own default is 100).
const LIST_STREAMS_PAGE: i32 = 1_000;

/// DescribeStreamSummary calls in flight while listing (the API allows 20 per second per
/// account; the SDK retries the throttled ones).
const DESCRIBE_IN_FLIGHT: usize = 4;

/// A Kinesis client for the streams of one account and region, not bound to a stream.
///
/// ```no_run
/// # async fn demo() -> Result<(), async_kinesis::Error> {
/// use async_kinesis::{ConnectOptions, Streams};
///
/// let streams = Streams::connect(&ConnectOptions::default()).await?;
/// for summary in streams.list().await? {
///     println!("{} {} {} shards", summary.name, summary.status, summary.open_shard_count);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Streams {
    client: Client,
    endpoint: Arc<str>,
    page_size: i32,
}

impl Streams {
    /// Loads the AWS configuration described by `options`.
    ///
    /// # Errors
    /// [`Error::NoCredentials`] when the configuration has no credentials provider at all.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, Error> {
        Self::from_sdk_config(&options.load().await)
    }

    /// A client built from an existing AWS configuration.
    ///
    /// # Errors
    /// As for [`Streams::connect`].
    pub fn from_sdk_config(config: &SdkConfig) -> Result<Self, Error> {
        let (client, endpoint) = crate::stream::client::client_for(config)?;
        Ok(Self {
            client,
            endpoint,
            page_size: LIST_STREAMS_PAGE,
        })
    }

    /// Streams per ListStreams page, 1..=10,000 (default 1,000); out-of-range values are
    /// clamped.
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size.clamp(1, 10_000);
        self
    }

    /// A client bound to `stream`, sharing this one's connection pool.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`] / [`Error::InvalidStreamArn`] for a bad stream.
    pub fn stream(&self, stream: impl IntoStreamRef) -> Result<StreamClient, Error> {
        StreamClient::new(self.client.clone(), stream).map(|c| c.with_endpoint(&self.endpoint))
    }

    /// The names of every stream, following all pages, sorted.
    ///
    /// # Errors
    /// Service and transport errors.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn list_names(&self) -> Result<Vec<String>, Error> {
        const OP: &str = "ListStreams";
        let mut names: Vec<String> = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = self.client.list_streams().limit(self.page_size);
            // Newer endpoints page with NextToken; older ones (and emulators) only with the
            // last name seen.
            let request = match &next_token {
                Some(token) => request.next_token(token),
                None => request.set_exclusive_start_stream_name(names.last().cloned()),
            };
            let page = request
                .send()
                .await
                .map_err(|e| Error::from_sdk(OP, "", &self.endpoint, e))?;
            let before = names.len();
            names.extend(page.stream_names().iter().cloned());
            next_token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            // A page that added nothing would repeat forever; treat it as the end.
            if !page.has_more_streams() || names.len() == before {
                break;
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The summary of every stream (ListStreams, then DescribeStreamSummary per stream), sorted
    /// by name. A stream deleted between the two calls is left out.
    ///
    /// # Errors
    /// As for [`Streams::list_names`] and [`StreamClient::describe`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn list(&self) -> Result<Vec<StreamSummary>, Error> {
        let names = self.list_names().await?;
        let described: Vec<Result<StreamSummary, Error>> = futures::stream::iter(names)
            .map(|name| async move { self.stream(name)?.describe().await })
            .buffered(DESCRIBE_IN_FLIGHT)
            .collect()
            .await;
        let mut summaries = Vec::with_capacity(described.len());
        for result in described {
            match result {
                Ok(summary) => summaries.push(summary),
                Err(Error::StreamNotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(summaries)
    }
}
