//! The testkit's own tests: the limits/faults proxy in front of real emulators, and consumer
//! groups across `kinesis-group-worker` processes. One test binary, so the SDK stack is linked once.
#![allow(unreachable_pub)] // `pub` here means "shared with sibling test modules"

mod common;

mod consumer_group;
mod proxy_faults;
mod proxy_limits;
mod proxy_passthrough;
mod proxy_stream_faults;
