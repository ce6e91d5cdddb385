//! Test support for async-kinesis: the local services, random names and stream helpers.
//!
//! The services are started by the repository's `scripts/local-stack up` (the test command in the
//! README does it). Their endpoints come from the environment that `scripts/local-stack env`
//! prints, defaulting to the ports that script uses.
//!
//! # Policy when a service is missing
//!
//! A test that needs a service and cannot reach it **fails** with a message that says how to start
//! it. There is no silent skip: a green run means every test really ran.
//!
//! ```no_run
//! # async fn demo() {
//! let services = testkit::Services::from_env();
//! let kinesis = services.kinesis_mock(); // fails the test if kinesis-mock is down
//! let stream = testkit::TestStream::create(&kinesis, "doc", 2).await;
//! assert_eq!(stream.client().list_shards().await.unwrap().len(), 2);
//! stream.delete().await;
//! # }
//! ```
//!
//! # Service limits and faults
//!
//! [`proxy::LimitsProxy`] sits in front of an emulator and makes it behave like Kinesis at its
//! limits: per-shard throttling, partial PutRecords failures, expired iterators, 5xx, resets and
//! latency, all scripted per test and counted.

pub mod group;
mod http_get;
pub mod moto_server;
mod names;
pub mod process;
pub mod proxy;
mod read_back;
pub mod recording_store;
pub mod redis_cluster;
pub mod redis_server;
mod services;
pub mod store_contract;
mod test_stream;

pub use http_get::http_get;
pub use names::random_stream_name;
pub use read_back::{StoredRecord, arrival_boundary, read_shard, read_stream};
pub use services::{KinesisEndpoint, Service, Services, sdk_config_for};
pub use test_stream::TestStream;
