//! Test support for async-kinesis.
