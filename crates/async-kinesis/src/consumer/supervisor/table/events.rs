//! What the supervisor tells the table and what the table answers it.

use crate::checkpoint::WorkerId;
use crate::stream::shard::Shard;

/// How a reader ended, as the table needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReaderEnd {
    /// Read to its end; the children the service named (not necessarily listed yet).
    Ended { children: Vec<Shard> },
    /// Stopped by an error that was reported.
    Stopped,
    /// The shard's records answer ResourceNotFound (reported).
    Gone,
    /// The reader panicked, with this message.
    Panicked(String),
    /// Told to stop.
    Cancelled,
}

/// What applying a reader's outcome did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Stale (another reader's lease) or nothing to change.
    Nothing,
    /// The shard's state changed; `new_children` when its end announced unknown shards.
    Changed { new_children: bool },
    /// The reader panicked: the lease is being handed off, never to be claimed here again.
    GivingUp,
}

/// A lease to finish now, as [`ShardTable::due`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// Drained: record SHARD_END and release.
    ShardEnd(String),
    /// Handed off: write the final checkpoint and release.
    Release(String),
}

/// What a listing changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Merged {
    /// Shards with parents appeared.
    pub(crate) new_children: bool,
    /// Shards gone from the listing and forgotten.
    pub(crate) pruned: Vec<String>,
}

/// One shard's entry as the store lists it, for [`ShardTable::observe_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub(crate) shard_id: String,
    pub(crate) owner: Option<WorkerId>,
    pub(crate) finished: bool,
}
