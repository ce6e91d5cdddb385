//! Enhanced fan-out: each shard pushed over SubscribeToShard to a registered stream consumer,
//! behind the same [`Stream`](futures::Stream) of records as polling.
//!
//! A fan-out consumer has its own 2 MiB/s per shard (polling consumers share 2 MiB/s and five
//! GetRecords calls per second per shard) and records arrive about as soon as they are written,
//! instead of at the next poll. It costs extra (per consumer-shard hour and per GB), and a
//! stream takes at most 20 registered consumers.
//!
//! - [`register`]: the consumer is registered at build time if it is missing, and the build
//!   waits for it to be ACTIVE.
//! - [`subscribe`]: per shard, one subscription at a time, from the checkpoint or start
//!   position; renewed from the last event's continuation sequence number when it ends (every
//!   5 minutes at most), fails, or stalls; at most one SubscribeToShard per second per shard.
//!   A shard the listing shows closed is read to its end by GetRecords (an emulator may never
//!   send the event naming the children), so parents end, and children start, as when polling.

mod register;
mod subscribe;

use std::sync::Arc;

use tokio::sync::watch;

pub(crate) use register::{FanOutConsumer, deregister, ensure_registered};

/// What a shard reader needs to read its shard over fan-out.
#[derive(Debug)]
pub(crate) struct FanOutShard {
    /// The registered consumer's ARN.
    pub(crate) consumer_arn: Arc<str>,
    /// Becomes `true` once a listing shows the shard closed.
    pub(crate) closed: watch::Receiver<bool>,
}
