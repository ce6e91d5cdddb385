//! Async producer, consumer and processors for AWS Kinesis Data Streams.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use async_kinesis::{ConnectOptions, CreateStream, StreamClient};
//!
//! # async fn demo() -> Result<(), async_kinesis::Error> {
//! let options = ConnectOptions::default().region("us-east-1");
//! let stream = StreamClient::connect("orders", &options).await?;
//! stream
//!     .create_if_missing(CreateStream::Provisioned { shards: 2 }, Duration::from_secs(60))
//!     .await?;
//! let shards = stream.list_shards().await?;
//! println!("{} shards, {} open", shards.len(), shards.iter().filter(|s| s.is_open()).count());
//! # Ok(()) }
//! ```
//!
//! # Connecting
//!
//! A [`StreamClient`] is built from [`ConnectOptions`] (the default AWS credential chain and
//! region, an optional endpoint), from an [`aws_config::SdkConfig`] you loaded, or from an
//! [`aws_sdk_kinesis::Client`] you built. A stream is addressed by name or by ARN
//! ([`StreamRef`]); with an ARN every call uses `StreamARN`. Names and ARNs are validated before
//! any call is made.
//!
//! # Producing
//!
//! A [`producer::Producer`] takes items, serializes and aggregates them with a [`processor`],
//! and sends them in PutRecords calls within each shard's write budget. Every item gets a
//! receipt: where it was stored, or an error that hands the item back. Delivery is **at least
//! once** and **ordered per partition key** (one call in flight per shard); see [`producer`].
//! Waiting for room is back-pressure; [`Producer::reserve`] waits cancel-safely and returns a
//! [`Permit`](producer::Permit) to put one item without waiting, and
//! [`Producer::flush_within`] / [`Producer::close_within`] bound the wait for a flush or close.
//!
//! # Consuming
//!
//! A [`Consumer`] reads every shard of a stream as one `futures::Stream` of
//! `Result<Record<T>, ConsumeError>`, decoded by a [`processor`]. Delivery is **at
//! least once**: checkpoints (kept in a [`checkpoint`] store under per-shard leases) move only
//! over records you acknowledged, so after a restart you see again at most the records that were
//! unacknowledged or not yet checkpointed. Records are **ordered per shard**, and per partition
//! key across resharding (children are read after all their parents). Problems that do not stop
//! the whole consumer are `Err` items of the stream; see [`consumer`] for the details.
//!
//! ```no_run
//! use futures::StreamExt;
//! use async_kinesis::Consumer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut consumer = Consumer::builder("orders").build().await?;
//! while let Some(record) = consumer.next().await {
//!     let record = record?; // or log and go on: the stream continues after error items
//!     println!("{}: {}", record.partition_key, record.item);
//! }
//! # Ok(()) }
//! ```
//!
//! # Administration
//!
//! [`Streams`] lists every stream of an account and region (all pages, with summaries);
//! [`StreamClient`] also reshards ([`reshard`]: a new shard count, a split, a merge, checked
//! before any call) and tells how far a checkpoint is behind the tip of its shard
//! ([`StreamClient::millis_behind_latest`]). [`partition_key`] checks keys as Kinesis does.
//!
//! # Errors
//!
//! Each part has its own error type; every one implements `std::error::Error`, says what went
//! wrong in its message and chains its cause through `source()`:
//!
//! | type | from | what |
//! | --- | --- | --- |
//! | [`Error`] | [`StreamClient`], [`Streams`], [`ProducerBuilder::build`](producer::ProducerBuilder::build), [`Producer::reserve`], [`Producer::flush`] / [`Producer::close`] (and their `_within` forms: [`Error::Timeout`]) | a Kinesis call or a stream-level check; [`Error::class`] tells throttling, transient, expired, not-found, in-use, validation and access failures apart, [`Error::is_retryable`] whether a retry can succeed |
//! | [`InvalidConfig`] | every builder's `build` (inside its error), [`StreamSetup::validate`], [`RetryPolicy::validate`] | an option out of range, named as its builder method, and why |
//! | [`BuildError`](consumer::BuildError) | [`ConsumerBuilder::build`](consumer::ConsumerBuilder::build) | a bad option, or a stream that could not be set up; nothing was started |
//! | [`PutError`](producer::PutError) | a [`Receipt`](producer::Receipt) | an item not stored, **with the item**, and why ([`PutErrorKind`](producer::PutErrorKind)) |
//! | [`TryReserveError`](producer::TryReserveError) | [`Producer::try_reserve`] | no room in the producer now, or the producer closed |
//! | [`ConsumeError`] | the [`Consumer`]'s items | error items of the stream (the stream goes on): a shard or stream failure, an undecodable record ([`ConsumeError::Poison`], with the raw record, its decode error as `source()`), a checkpoint failure, a panicked reader |
//! | [`CheckpointError`](checkpoint::CheckpointError) | a [`CheckpointStore`] | a lease lost or expired, a store failure (`is_retryable`), a malformed stored value |
//! | [`LeaseTimingError`](checkpoint::LeaseTimingError) | [`LeaseTiming::new`](checkpoint::LeaseTiming::new) | a session timeout and heartbeat that would lose leases |
//! | [`SerializeError`](processor::SerializeError), [`DecodeError`](processor::DecodeError), [`ReadError`](processor::ReadError) | [`processor`]s | an item that cannot be written, an item or record that cannot be read (a processor option out of range is an [`InvalidConfig`]) |
//! | [`ReshardError`](reshard::ReshardError) | [`reshard`] | a reshard refused before any call, or the call's [`Error`] |
//! | [`PartitionKeyError`](partition_key::PartitionKeyError), [`HashKeyError`](stream::shard_map::HashKeyError), [`ShardMapError`](stream::shard_map::ShardMapError) | [`partition_key`], [`shard_map`](stream::shard_map) | a key Kinesis would refuse; a shard map with gaps or overlaps |
//! | `DynamoDbError` (feature `dynamodb`) | the DynamoDB store's builder | a table that cannot be created or used |
//! | `PrometheusError`, `CloudWatchError` (features `prometheus`, `cloudwatch`) | [`metrics`] exporters | an exporter that cannot start (an address in use, a bad option) |
//!
//! Service limits live in [`stream::limits`]; the stream layer (connecting, addressing, shards, hash-key
//! routing, the stream-level calls) is [`stream`].
//!
//! # Options both halves share
//!
//! The producer and consumer builders (and the DynamoDB store's, for connecting) take the same
//! option types under the same names: where the AWS client comes from (`connect_options`,
//! `sdk_config`, `client`), what happens to the stream at `build` and how shards are listed
//! ([`StreamSetup`]: `create_stream`, `skip_describe_stream`, `use_list_shards`,
//! `describe_timeout`, `shard_refresh_interval`), and how failed calls are retried
//! ([`RetryPolicy`]: `expo_backoff`, `expo_backoff_limit`, `retry_limit`).
//!
//! # The AWS crates
//!
//! [`aws_sdk_kinesis`] and [`aws_config`] (and, behind their features, `redis` and
//! `aws_sdk_dynamodb`) are re-exported at the versions this crate is built with, so a client or
//! `SdkConfig` you pass in is always of the type the builders expect.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! | --- | --- | --- |
//! | `sso` | no | AWS IAM Identity Center (SSO) profiles in the default credential chain |
//! | `msgpack` | no | `MsgpackProcessor` (rmp-serde) |
//! | `kpl` | no | KPL aggregation: `KplJsonProcessor`, `KplStringProcessor` (prost) |
//! | `redis` | no | `RedisStore`: leases and checkpoints shared through Redis, single node or cluster, TLS with `rediss://` (redis-rs) |
//! | `dynamodb` | no | `DynamoDbStore`: leases and checkpoints in a DynamoDB table (aws-sdk-dynamodb) |
//! | `json-arbitrary-precision` | no | `serde_json::Value` items keep integers of any size (serde_json's `arbitrary_precision`, for the whole build; see [`processor::JsonSerializer`]) |
//! | `prometheus` | no | [`metrics`]`::prometheus`: serve `/metrics` or render for your own server (metrics-exporter-prometheus) |
//! | `cloudwatch` | no | [`metrics`]`::cloudwatch`: batched PutMetricData from a background task (aws-sdk-cloudwatch) |
#![deny(missing_docs)]

pub mod checkpoint;
pub mod consumer;
pub mod error;
mod ids;
mod invalid_config;
mod lag;
pub mod metrics;
pub mod partition_key;
pub mod processor;
pub mod producer;
pub mod reshard;
mod retry;
pub mod stream;
pub mod streams;

#[cfg(feature = "dynamodb")]
pub use checkpoint::DynamoDbStore;
#[cfg(feature = "redis")]
pub use checkpoint::RedisStore;
pub use checkpoint::{CheckpointStore, MemoryStore};
pub use consumer::{ConsumeError, Consumer, Record};
pub use error::{Error, ErrorClass};
pub use ids::{SequenceNumber, ShardId};
pub use invalid_config::InvalidConfig;
pub use producer::Producer;
pub use retry::RetryPolicy;
pub use stream::{
    ConnectOptions, CreateStream, IntoStreamRef, RecordDistribution, Shard, ShardListing,
    StreamClient, StreamMode, StreamRef, StreamSetup, StreamStatus, StreamSummary,
};
pub use streams::Streams;

pub use aws_config;
#[cfg(feature = "dynamodb")]
pub use aws_sdk_dynamodb;
pub use aws_sdk_kinesis;
#[cfg(feature = "redis")]
pub use redis;

// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

// So do the metrics guide's.
#[cfg(all(doctest, feature = "prometheus", feature = "cloudwatch"))]
#[doc = include_str!("../../../docs/metrics.md")]
struct MetricsGuideDoctests;
