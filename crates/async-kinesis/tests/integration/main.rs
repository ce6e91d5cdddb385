//! Integration tests against real local services (`scripts/local-stack`): one test binary, so the
//! SDK stack is linked once rather than once per file. Each module is one area; the `*_support`
//! modules hold the helpers its areas share.
#![allow(unreachable_pub)] // `pub` here means "shared with sibling test modules"

mod consumer_support;
#[cfg(feature = "dynamodb")]
mod dynamodb_support;
#[cfg(all(feature = "kpl", feature = "msgpack"))]
mod json_numbers_support;
#[cfg(feature = "prometheus")]
mod metrics_support;
#[cfg(feature = "redis")]
mod redis_support;

mod checkpoint_dynamodb;
mod checkpoint_dynamodb_expiry;
mod checkpoint_memory;
mod checkpoint_redis;
mod checkpoint_redis_restarts;
mod consumer_basic;
mod consumer_end;
mod consumer_fanout;
mod consumer_fanout_faults;
mod consumer_faults;
#[cfg(feature = "kpl")]
mod consumer_kpl;
mod consumer_leases;
mod consumer_lifecycle;
mod consumer_lifecycle_edges;
mod consumer_metrics;
mod consumer_prune;
mod consumer_reshard;
mod consumer_stall;
mod consumer_store_outage;
mod consumer_unacked;
#[cfg(feature = "cloudwatch")]
mod metrics_cloudwatch;
mod metrics_dashboards;
mod metrics_docs;
#[cfg(feature = "prometheus")]
mod metrics_prometheus;
#[cfg(all(feature = "kpl", feature = "msgpack"))]
mod processor_interop;
#[cfg(all(feature = "kpl", feature = "msgpack"))]
mod processor_interop_numbers;
#[cfg(all(feature = "kpl", feature = "msgpack"))]
mod processor_numbers_end_to_end;
#[cfg(all(feature = "kpl", feature = "msgpack"))]
mod processor_props;
mod producer;
mod producer_faults;
mod producer_limits;
mod producer_pacing;
mod producer_permit;
mod stream_admin;
mod stream_client;
