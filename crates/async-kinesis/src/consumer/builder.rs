//! `Consumer::builder(stream)`: options with the Python library's names, validated in `build`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Consumer;
use super::config::{AckPolicy, ConsumerConfig, IteratorType, PoisonPolicy};
use super::error::BuildError;
use super::fanout::{FanOutConsumer, ensure_registered};
use crate::checkpoint::{CheckpointStore, MemoryStore, WorkerId};
use crate::error::Error;
use crate::processor::{JsonProcessor, Processor};
use crate::stream::connect::ClientSource;
use crate::stream::stream_ref::{IntoStreamRef, StreamRef};

/// Builds a [`Consumer`]. Every option has a default (see each method); `build` checks them all.
///
/// ```no_run
/// # async fn demo() -> Result<(), async_kinesis::consumer::BuildError> {
/// use std::time::Duration;
/// use async_kinesis::consumer::{Consumer, IteratorType};
/// use async_kinesis::ConnectOptions;
///
/// let consumer = Consumer::builder("orders")
///     .connect_options(ConnectOptions::default().region("eu-west-1"))
///     .iterator_type(IteratorType::Latest)
///     .shard_fetch_rate(5)
///     .build()
///     .await?;
/// # drop(consumer); Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct ConsumerBuilder<P = JsonProcessor> {
    stream: Result<StreamRef, Error>,
    source: ClientSource,
    processor: P,
    config: ConsumerConfig,
    store: Arc<dyn CheckpointStore>,
}

impl ConsumerBuilder<JsonProcessor> {
    pub(crate) fn new(stream: impl IntoStreamRef) -> Self {
        Self {
            stream: stream.into_stream_ref(),
            source: ClientSource::default(),
            processor: JsonProcessor::default(),
            config: ConsumerConfig::default(),
            store: Arc::new(MemoryStore::new()),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl<P: Processor> ConsumerBuilder<P> {
    crate::stream::connect::connect_setters!(
        aws_sdk_kinesis::Client,
        "Use this client (with an attempt timeout of 30 s when it sets none)."
    );
    crate::stream::setup::setup_setters!();

    /// How records are decoded (default: [`JsonProcessor`] of `serde_json::Value`).
    pub fn processor<Q: Processor>(self, processor: Q) -> ConsumerBuilder<Q> {
        ConsumerBuilder {
            stream: self.stream,
            source: self.source,
            processor,
            config: self.config,
            store: self.store,
        }
    }

    /// Where leases and checkpoints are kept (default: a fresh [`MemoryStore`]).
    pub fn checkpointer(mut self, store: impl CheckpointStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// Like [`ConsumerBuilder::checkpointer`], for a store that is already shared.
    pub fn checkpointer_arc(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.store = store;
        self
    }

    /// Start shards without a checkpoint at `timestamp`: the same as
    /// `iterator_type(IteratorType::AtTimestamp(timestamp))`.
    pub fn timestamp(mut self, timestamp: SystemTime) -> Self {
        self.config.iterator_type = IteratorType::AtTimestamp(timestamp);
        self
    }

    /// This worker's id in the store (default: host name + random suffix).
    pub fn worker_id(mut self, worker: WorkerId) -> Self {
        self.config.worker_id = Some(worker);
        self
    }

    /// Read only these shards (default: every shard). Their children are not read, and a named
    /// child whose parents are not named is read without waiting for them.
    pub fn only_shards<I, S>(mut self, shard_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.only_shards = Some(shard_ids.into_iter().map(Into::into).collect());
        self
    }

    /// Start `shard_id` at the record `sequence_number` (AT_SEQUENCE_NUMBER) when it has no
    /// checkpoint; other shards start as [`ConsumerBuilder::iterator_type`] says. Call it once
    /// per shard.
    pub fn start_at_sequence_number(
        mut self,
        shard_id: impl Into<String>,
        sequence_number: impl Into<String>,
    ) -> Self {
        self.config
            .start_sequences
            .insert(shard_id.into(), Arc::from(sequence_number.into()));
        self
    }

    /// Read over enhanced fan-out as the stream consumer `name`: registered at `build` if the
    /// stream has none of that name, then each owned shard pushed over SubscribeToShard instead
    /// of polled. Everything else (records, acknowledgements, checkpoints, leases, the group,
    /// resharding order, poison policy, status, shutdown) is as when polling; the polling-only
    /// options (`shard_fetch_rate`, `record_limit`, `sleep_time_no_records`) do not apply.
    /// Workers of one group use the same name. See the crate's README for when fan-out pays.
    pub fn enhanced_fan_out(mut self, name: impl Into<String>) -> Self {
        self.config.fan_out = Some(FanOutConsumer::Name(name.into()));
        self
    }

    /// Like [`ConsumerBuilder::enhanced_fan_out`], as an existing stream consumer given by its
    /// ARN (never registered here; `build` fails if it is not a consumer of this stream).
    pub fn enhanced_fan_out_arn(mut self, consumer_arn: impl Into<String>) -> Self {
        self.config.fan_out = Some(FanOutConsumer::Arn(consumer_arn.into()));
        self
    }

    /// At most this many shards read at once by this consumer (default: no limit).
    pub fn max_shard_consumers(mut self, max: usize) -> Self {
        self.config.max_shard_consumers = Some(max);
        self
    }

    setter!(
        /// Items waiting for the user, at most (default 10,000). Readers wait when it is full.
        max_queue_size: usize
    );
    setter!(
        /// Bytes of records waiting for the user, at most (default 64 MiB).
        max_queue_bytes: usize
    );
    setter!(
        /// Records per GetRecords call, 1..=10,000 (default 10,000).
        record_limit: usize
    );
    setter!(
        /// Pause after a GetRecords call that returned nothing (default 2 s).
        sleep_time_no_records: Duration
    );
    setter!(
        /// Where shards without a checkpoint start (default TRIM_HORIZON).
        iterator_type: IteratorType
    );
    setter!(
        /// GetRecords calls per second per shard, 1..=5 (default 1).
        shard_fetch_rate: u32
    );
    setter!(
        /// When records count as processed (default [`AckPolicy::OnNextPoll`]).
        ack_policy: AckPolicy
    );
    setter!(
        /// Checkpoints are written at least this often when something was acknowledged
        /// (default 1 s).
        checkpoint_interval: Duration
    );
    setter!(
        /// ... and as soon as this many records were acknowledged (default 1,000).
        checkpoint_every: u64
    );
    setter!(
        /// Under [`AckPolicy::Explicit`]: a shard's reading pauses while this many of its
        /// records are read and not acknowledged (default 10,000), so records never
        /// acknowledged cannot fill memory. With aggregated records a call may bring more
        /// items than the room it asked for (one record holds many); over enhanced fan-out the
        /// service sizes each event, so the limit is passed by up to one event, after which
        /// the subscription is let go until there is room again.
        max_unacked_records: usize
    );
    setter!(
        /// A shard's oldest unacknowledged record read this long ago is warned about (once
        /// per record; default 60 s); its age is the `consumer_oldest_unacked_age_seconds`
        /// gauge and in the shard's status.
        unacked_warning_after: Duration
    );
    setter!(
        /// What follows an undecodable record's error item (default [`PoisonPolicy::Skip`]).
        poison_policy: PoisonPolicy
    );
    setter!(
        /// Over enhanced fan-out: deregister the stream consumer at the end of
        /// [`Consumer::shutdown`] (default false: it stays registered for the next start, and
        /// for the other workers of the group, which must not deregister it while they read).
        deregister_on_shutdown: bool
    );
    setter!(
        /// Over enhanced fan-out: a subscription that brings no event for this long is
        /// renewed (default 60 s; the service sends one every few seconds even without
        /// records).
        fan_out_stall_timeout: Duration
    );

    /// Checks the options, connects, checks (or creates) the stream and starts consuming.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an option out of range (nothing is started);
    /// [`BuildError::Stream`] for an invalid stream name, a missing stream (unless
    /// `create_stream`), or a stream that does not become usable within `describe_timeout`;
    /// with enhanced fan-out also for a consumer ARN of another stream or unknown, a refused
    /// registration (AccessDenied, too many consumers), or a consumer not ACTIVE within
    /// `describe_timeout`.
    ///
    /// # Cancel safety
    /// Cancel safe, unless `create_stream` is set (the stream may have been created).
    pub async fn build(self) -> Result<Consumer<P>, BuildError> {
        self.config.validate()?;
        let stream = self.stream.map_err(|source| BuildError::Stream {
            stream: String::new(),
            source,
        })?;
        let stream_error = |source| BuildError::Stream {
            stream: stream.to_string(),
            source,
        };
        let client = self
            .source
            .stream_client(stream.clone())
            .await
            .map_err(stream_error)?;
        let config = self.config;
        config.setup.prepare(&client).await.map_err(stream_error)?;
        let fan_out_arn = match &config.fan_out {
            None => None,
            Some(consumer) => {
                // The stream's ARN, which fan-out calls take (also for a stream addressed by
                // name with the describe check skipped).
                let stream_arn = match client.stream().arn() {
                    Some(arn) => arn.to_owned(),
                    None => client.describe().await.map_err(stream_error)?.arn,
                };
                let timeout = config.setup.describe_timeout;
                let arn = ensure_registered(&client, &stream_arn, consumer, timeout)
                    .await
                    .map_err(stream_error)?;
                Some(arn)
            }
        };
        Ok(Consumer::start(
            client,
            config,
            self.processor,
            self.store,
            fan_out_arn,
        ))
    }
}
