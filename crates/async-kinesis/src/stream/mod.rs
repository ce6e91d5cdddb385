//! The stream layer: connecting, addressing a stream, its shards and their hash-key ranges,
//! the stream-level calls, what a builder does with its stream, and the service's limits.
//!
//! | item | what |
//! | --- | --- |
//! | [`ConnectOptions`] | where the AWS configuration comes from (region, endpoint, profile, timeouts) |
//! | [`StreamRef`], [`IntoStreamRef`] | a stream by name or ARN, validated before any call |
//! | [`StreamClient`] | describe, list shards, create, wait, delete; the only caller of the stream-level APIs |
//! | [`StreamSetup`] | what the producer and the consumer do with their stream at `build`, and how they list shards |
//! | [`Shard`] | a shard as listed: hash-key range, lineage, sequence range |
//! | [`shard_map`] | hash-key routing: which open shard owns a partition key or explicit hash key |
//! | [`limits`] | the Kinesis Data Streams service limits, in one place |

pub(crate) mod client;
pub(crate) mod connect;
pub mod limits;
pub(crate) mod setup;
pub(crate) mod shard;
pub mod shard_map;
pub(crate) mod stream_ref;

pub use client::{
    CreateStream, RecordDistribution, ShardListing, StreamClient, StreamMode, StreamStatus,
    StreamSummary,
};
pub use connect::ConnectOptions;
pub use setup::StreamSetup;
pub use shard::Shard;
pub use stream_ref::{IntoStreamRef, StreamRef};
