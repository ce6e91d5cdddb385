//! A consumed item with its position and its acknowledgement handle.

use crate::ids::{SequenceNumber, ShardId};
use std::sync::Arc;
use std::time::SystemTime;

use super::ack::Acker;
use crate::checkpoint::Position;

/// One decoded item, where it came from, and how to acknowledge it.
///
/// Records of one shard arrive in shard order. With [`AckPolicy::Explicit`](super::AckPolicy)
/// call [`Record::ack`] once the item is processed; with the default
/// [`AckPolicy::OnNextPoll`](super::AckPolicy) asking for the next item acknowledges this one.
#[derive(Debug)]
#[non_exhaustive]
pub struct Record<T> {
    /// The decoded item.
    pub item: T,
    /// The shard it was read from.
    pub shard_id: ShardId,
    /// The Kinesis record's sequence number.
    pub sequence_number: SequenceNumber,
    /// The item's position inside its Kinesis record (the KPL sub-sequence number; 0 for a record
    /// with one item).
    pub sub_sequence: u64,
    /// The item's partition key.
    pub partition_key: Arc<str>,
    /// The item's explicit hash key, when the format carries one.
    pub explicit_hash_key: Option<Arc<str>>,
    /// When Kinesis received the record (approximate).
    pub arrival_time: Option<SystemTime>,
    /// How far behind the tip of the shard the read was, as GetRecords reported.
    pub millis_behind_latest: Option<i64>,
    pub(crate) position: Position,
    pub(crate) acker: Acker,
}

impl<T> Record<T> {
    /// Acknowledges the record: checkpoints may move over it once every earlier record of its
    /// shard is acknowledged too. Acknowledging twice is harmless.
    pub fn ack(&self) {
        self.acker.ack();
    }

    /// Marks the record as not processed: it comes again, with every record of its shard
    /// read after it (see [`Acker::nack`]).
    pub fn nack(&self) -> bool {
        self.acker.nack()
    }

    /// A handle that acknowledges this record later (e.g. from another task), cheap to clone.
    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// The checkpoint position this record stands for.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Takes the item, keeping an acknowledgement handle.
    pub fn into_parts(self) -> (T, Acker) {
        (self.item, self.acker)
    }
}
