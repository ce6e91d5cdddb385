//! What a store call can fail with.

use super::WorkerId;
use crate::ids::ShardId;

/// A store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The caller does not hold the shard's lease (never claimed, released, or claimed by
    /// another worker since): the write was refused.
    #[error("shard {shard_id} is not owned by {worker} (current owner: {})", owner_text(.owner))]
    NotOwned {
        /// The shard.
        shard_id: ShardId,
        /// The worker that tried to write.
        worker: WorkerId,
        /// Who holds it now, if anyone.
        owner: Option<WorkerId>,
    },
    /// The lease could not be renewed within its session timeout (the store was unreachable or
    /// failing), so another worker may hold it now: this worker stopped reading the shard.
    #[error("the lease of shard {shard_id} held by {worker} expired before it could be renewed")]
    LeaseExpired {
        /// The shard.
        shard_id: ShardId,
        /// The worker that held it.
        worker: WorkerId,
    },
    /// The store holds no entry for the shard.
    #[error("shard {shard_id} has no lease in the store")]
    UnknownShard {
        /// The shard.
        shard_id: ShardId,
    },
    /// The shard's stored entry cannot be read (a field that does not parse, a missing one, a
    /// key of the wrong type): damaged, or written by something else. Nothing was changed;
    /// calls about the shard keep failing until the entry is repaired or deleted, while
    /// [`list`](super::CheckpointStore::list) leaves it out so the rest of the stream carries on.
    #[error("the stored entry of shard {shard_id} cannot be read: {detail}")]
    UnreadableEntry {
        /// The shard.
        shard_id: ShardId,
        /// What is wrong with the entry.
        detail: String,
    },
    /// The shard's fencing token is at the largest value the store can hold, so no claim can
    /// give a newer one (billions of claims never get there; a damaged or hand-edited entry
    /// can). Nothing was changed.
    #[error("the fencing token of shard {shard_id} is at its maximum ({token}) and cannot grow")]
    TokenExhausted {
        /// The shard.
        shard_id: ShardId,
        /// The stored token.
        token: u64,
    },
    /// The store itself failed (network, server error).
    #[error("checkpoint store failed during {operation}")]
    Store {
        /// The operation attempted.
        operation: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
        /// Whether repeating the call can succeed.
        retryable: bool,
    },
}

fn owner_text(owner: &Option<WorkerId>) -> String {
    owner
        .as_ref()
        .map_or_else(|| "none".to_owned(), WorkerId::to_string)
}

impl CheckpointError {
    /// Whether repeating the call later can succeed. Ownership errors, unreadable entries and
    /// exhausted tokens never do.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Store {
                retryable: true,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_store_failures_can_be_retryable() {
        let not_owned = CheckpointError::NotOwned {
            shard_id: "s".into(),
            worker: WorkerId::new("w"),
            owner: None,
        };
        assert!(!not_owned.is_retryable());
        assert!(not_owned.to_string().contains("current owner: none"));
        let store = CheckpointError::Store {
            operation: "checkpoint",
            source: "timeout".into(),
            retryable: true,
        };
        assert!(store.is_retryable());
    }

    #[test]
    fn unreadable_entries_name_the_shard_and_the_problem() {
        let unreadable = CheckpointError::UnreadableEntry {
            shard_id: "shardId-000000000001".into(),
            detail: "token \"x\" is not a number".into(),
        };
        assert!(!unreadable.is_retryable());
        assert_eq!(
            unreadable.to_string(),
            "the stored entry of shard shardId-000000000001 cannot be read: token \"x\" is not \
             a number"
        );
        let exhausted = CheckpointError::TokenExhausted {
            shard_id: "s".into(),
            token: u64::MAX,
        };
        assert!(!exhausted.is_retryable());
        assert!(exhausted.to_string().contains("18446744073709551615"));
    }
}
