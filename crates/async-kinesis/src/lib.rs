//! Async producer, consumer and processors for AWS Kinesis Data Streams.
#![deny(missing_docs)]

pub mod error;
pub mod limits;
pub mod processor;
