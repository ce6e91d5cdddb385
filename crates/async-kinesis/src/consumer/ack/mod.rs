//! Acknowledgements: which records of a shard the user is done with, and how far a checkpoint may
//! go. The tracker is pure; [`Acker`] is the user's handle onto it.
//!
//! Records of a shard are numbered in the order they are read. The checkpoint may move only over
//! the contiguous prefix of acknowledged records: an acknowledged record behind an unacknowledged
//! one waits until the gap is closed, so a checkpoint never passes a record the user has not
//! finished.
//!
//! A negative acknowledgement ([`Acker::nack`]) rewinds the shard: every record after the
//! acknowledged prefix is dropped from the tracker (their ackers go stale) and the reader reads
//! them again from there, so the nacked record and everything read after it come again.

mod shard;
#[cfg(test)]
mod tests;
mod tracker;

use std::sync::Arc;

pub(crate) use shard::ShardAcks;
pub(crate) use tracker::AckTracker;

/// Acknowledges one record. Cheap to clone; acknowledging twice is harmless.
#[derive(Debug, Clone)]
pub struct Acker {
    shard: Arc<ShardAcks>,
    index: u64,
}

impl Acker {
    pub(crate) fn new(shard: Arc<ShardAcks>, index: u64) -> Self {
        Self { shard, index }
    }

    /// Marks the record as processed: checkpoints may now move over it (once every earlier
    /// record of its shard is processed too).
    pub fn ack(&self) {
        self.shard.ack(self.index);
    }

    /// Marks the record as **not** processed: its shard is read again from the first record
    /// not acknowledged, so this record and every record of the shard read after it come
    /// again (those acknowledged already too: the at-least-once cost of a rewind). Their
    /// earlier copies' acknowledgements change nothing any more. Returns `false`, and changes
    /// nothing, when the record was acknowledged already, or comes again anyway (an earlier
    /// record of its shard was nacked since it was read).
    ///
    /// Under [`AckPolicy::OnNextPoll`](super::AckPolicy::OnNextPoll) call it before asking
    /// for the next item, which would acknowledge the record.
    pub fn nack(&self) -> bool {
        self.shard.nack(self.index)
    }

    /// `false` when the record must not reach the user (see [`ShardAcks::handed_out`]).
    pub(crate) fn mark_handed_out(&self) -> bool {
        self.shard.handed_out(self.index)
    }

    /// The record comes back unprocessed (see [`ShardAcks::hand_back`]); `false` when it was
    /// acknowledged already (it is then processed, and nothing changes).
    #[must_use = "false: it was acknowledged already"]
    pub(crate) fn hand_back(&self) -> bool {
        if self.shard.lock().acked_through(self.index) {
            return false;
        }
        self.shard.hand_back(self.index);
        true
    }
}
