//! A stream created for one test.

use std::time::Duration;

use async_kinesis::{CreateStream, Shard, StreamClient};

use crate::names::random_stream_name;
use crate::services::KinesisEndpoint;

/// How long a test waits for a new stream to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// A stream with a random name, created ACTIVE for one test.
///
/// Delete it at the end with [`TestStream::delete`]; a forgotten one only costs emulator memory,
/// since names never repeat.
#[derive(Debug, Clone)]
pub struct TestStream {
    client: StreamClient,
}

impl TestStream {
    /// Creates a provisioned stream with `shards` shards and waits until it is ACTIVE.
    ///
    /// # Panics
    /// When the stream cannot be created: the test cannot go on without it.
    pub async fn create(endpoint: &KinesisEndpoint, prefix: &str, shards: u32) -> Self {
        Self::create_with(endpoint, prefix, CreateStream::Provisioned { shards }).await
    }

    /// Creates a stream as `spec` says and waits until it is ACTIVE.
    ///
    /// # Panics
    /// When the stream cannot be created.
    pub async fn create_with(endpoint: &KinesisEndpoint, prefix: &str, spec: CreateStream) -> Self {
        let client = endpoint.client(&random_stream_name(prefix));
        client
            .create(spec)
            .await
            .unwrap_or_else(|e| panic!("create {}: {e}", client.stream()));
        client
            .wait_until_active(ACTIVE_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("wait for {}: {e}", client.stream()));
        Self { client }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        self.client.stream().name()
    }

    /// A client bound to the stream by name.
    pub fn client(&self) -> &StreamClient {
        &self.client
    }

    /// The stream's ARN, as the emulator reports it.
    ///
    /// # Panics
    /// When the stream cannot be described.
    pub async fn arn(&self) -> String {
        self.client
            .describe()
            .await
            .expect("describe test stream")
            .arn
    }

    /// All shards of the stream.
    ///
    /// # Panics
    /// When they cannot be listed.
    pub async fn shards(&self) -> Vec<Shard> {
        self.client
            .list_shards()
            .await
            .expect("list shards of test stream")
    }

    /// Deletes the stream.
    ///
    /// # Panics
    /// When the delete call fails.
    pub async fn delete(self) {
        self.client
            .delete()
            .await
            .unwrap_or_else(|e| panic!("delete {}: {e}", self.client.stream()));
    }
}
