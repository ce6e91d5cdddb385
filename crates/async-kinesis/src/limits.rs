//! Kinesis limits.
