//! Building a producer: where to connect, which processor, which options.

use std::time::Duration;

use super::Producer;
use super::config::{AfterFlush, FlushReport, ProducerConfig};
use super::worker::Worker;
use crate::error::Error;
use crate::invalid_config::InvalidConfig;
use crate::processor::Processor;
use crate::stream::connect::ClientSource;
use crate::stream::shard_map::ShardMap;
use crate::stream::stream_ref::StreamRef;

/// Builds a [`Producer`]; see [`Producer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is awaited"]
pub struct ProducerBuilder<P> {
    stream: Result<StreamRef, Error>,
    source: ClientSource,
    processor: P,
    config: ProducerConfig,
}

impl<P: Processor + Default> ProducerBuilder<P> {
    pub(crate) fn new(stream: Result<StreamRef, Error>) -> Self {
        Self {
            stream,
            source: ClientSource::default(),
            processor: P::default(),
            config: ProducerConfig::default(),
        }
    }
}

impl<P: Processor> ProducerBuilder<P> {
    /// The processor that serializes and aggregates items.
    pub fn processor<Q: Processor>(self, processor: Q) -> ProducerBuilder<Q> {
        ProducerBuilder {
            stream: self.stream,
            source: self.source,
            processor,
            config: self.config,
        }
    }

    crate::stream::connect::connect_setters!(
        aws_sdk_kinesis::Client,
        "Use this client (with an attempt timeout of 30 s when it sets none)."
    );
    crate::stream::setup::setup_setters!();

    /// All options at once, replacing any set before.
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.config = config;
        self
    }

    /// How long an item may wait for a fuller record and batch (0.5 s).
    pub fn buffer_time(mut self, buffer_time: Duration) -> Self {
        self.config.buffer_time = buffer_time;
        self
    }

    /// Most records per PutRecords call (500).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.config.batch_size = batch_size;
        self
    }

    /// Most unresolved items before `put` waits (10,000).
    pub fn max_queue_size(mut self, items: usize) -> Self {
        self.config.max_queue_size = items;
        self
    }

    /// Most bytes of unresolved items before `put` waits (64 MiB).
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.config.max_queue_bytes = bytes;
        self
    }

    /// Records per second per shard (1,000).
    pub fn put_rate_limit_per_shard(mut self, records: u32) -> Self {
        self.config.put_rate_limit_per_shard = records;
        self
    }

    /// KiB per second per shard (1,024).
    pub fn put_bandwidth_limit_per_shard(mut self, kib: u32) -> Self {
        self.config.put_bandwidth_limit_per_shard = kib;
        self
    }

    /// How the stream places records, for a producer that skips DescribeStreamSummary (see
    /// [`ProducerConfig::record_distribution`](super::ProducerConfig::record_distribution)):
    /// with [`RecordDistribution::Auto`](crate::RecordDistribution::Auto), KPL items go out as
    /// plain records as on a described AUTO stream.
    pub fn record_distribution(mut self, distribution: crate::RecordDistribution) -> Self {
        self.config.record_distribution = Some(distribution);
        self
    }

    /// Largest aggregate an aggregating processor builds (64 KiB; see
    /// [`DEFAULT_AGGREGATE_BYTES`](super::DEFAULT_AGGREGATE_BYTES)). The processor's maximum
    /// record size gives aggregates as large as the Python library's.
    pub fn aggregate_bytes(mut self, bytes: usize) -> Self {
        self.config.aggregate_bytes = bytes;
        self
    }

    /// How long an item may take from `put` to being stored before its receipt hands it back
    /// with [`PutErrorKind::TimedOut`](super::PutErrorKind::TimedOut) (no limit).
    ///
    /// An item in a call still in flight when its time is up is not failed then: the call may
    /// store it. Its receipt waits for the call's answer (bounded by the client's attempt
    /// timeout times its attempts, plus the SDK's backoff between them) — delivered if the call
    /// stored it, timed out if not — so an item is never reported failed while it may be in
    /// the stream.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.config.delivery_timeout = Some(timeout);
        self
    }

    /// A callback after each PutRecords call.
    pub fn after_flush(mut self, hook: impl Fn(&FlushReport) + Send + Sync + 'static) -> Self {
        let hook: AfterFlush = std::sync::Arc::new(hook);
        self.config.after_flush = Some(hook);
        self
    }

    /// Connects, checks (or creates) the stream, reads its shard map and starts the producer.
    ///
    /// # Errors
    /// Invalid stream or options, [`Error::StreamNotFound`], [`Error::NoCredentials`],
    /// [`Error::Unreachable`], and the service's errors.
    ///
    /// # Cancel safety
    /// Not cancel safe when `create_stream` is set: the stream may have been created.
    pub async fn build(self) -> Result<Producer<P>, Error> {
        self.config.validate(self.processor.max_record_size())?;
        let stream = self.stream?;
        let client = self.source.stream_client(stream).await?;
        let config = self.config;
        let processor_max = self.processor.max_record_size();
        let mut distribution = config.record_distribution.clone();
        if let Some(summary) = config.setup.prepare(&client).await? {
            distribution = Some(summary.record_distribution.clone());
            if processor_max > summary.max_record_bytes {
                return Err(InvalidConfig::new(
                    "processor",
                    format!(
                        "it writes records of up to {processor_max} bytes, but stream {} \
                         accepts at most {}",
                        client.stream(),
                        summary.max_record_bytes
                    ),
                )
                .into());
            }
        }
        let service_distributes = distribution.as_ref().is_some_and(|d| d.ignores_keys());
        if let Some(distribution) = distribution.filter(|d| d.ignores_keys()) {
            tracing::info!(
                stream = %client.stream(),
                %distribution,
                "the stream places records itself and ignores partition keys: per-key order \
                 is not kept across shards, and KPL items are written as plain records"
            );
        }
        let shards = client.list_shards_with(config.setup.listing).await?;
        let shard_map =
            ShardMap::from_open_shards(&shards).map_err(|e| Error::MalformedResponse {
                operation: "ListShards",
                detail: e.to_string(),
            })?;
        let config = std::sync::Arc::new(config);
        let (producer, commands) = Producer::start(
            self.processor.clone(),
            client.stream().clone(),
            &config,
            processor_max,
        );
        let worker = Worker::new(
            client,
            config,
            &self.processor,
            shard_map,
            service_distributes,
        );
        tokio::spawn(worker.run(commands));
        Ok(producer)
    }
}
