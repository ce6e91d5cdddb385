//! End-to-end tests of the `async-kinesis` binary against the real local services
//! (`scripts/local-stack`): kinesis-mock, redis-server, moto (DynamoDB) and the Python
//! `async-kinesis` library. Every test runs the built binary as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(unreachable_pub)] // `pub` here means "shared with sibling test modules"

mod support;

mod admin;
mod bad_input;
mod bench;
mod group;
mod interop;
mod metrics;
mod tail;
