//! Test support for async-kinesis.
pub mod proxy;
