//! Deleting the items of finished shards that left the stream: one conditional DeleteItem per
//! shard, so an item is deleted only while it records SHARD_END and no live lease.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::time::Instant;

use super::item::{BEAT, OWNER, SHARD_END, TOKEN, n, s};
use super::ops::check_shard_id;
use super::write::Written;
use super::{Fail, Inner};
use crate::checkpoint::{CheckpointError, Progress};

/// What became of one shard's item.
enum Pruned {
    Deleted,
    /// Absent, unfinished, held, or changed meanwhile.
    Kept,
    Unreadable,
}

impl Inner {
    pub(super) async fn prune_finished(
        &self,
        stream: &str,
        shard_ids: &[String],
    ) -> Result<usize, Fail> {
        let group = self.group(stream);
        let mut pruned = 0;
        let mut unreadable = Vec::new();
        for shard_id in shard_ids {
            // Never a worker's registration, whatever the caller passes.
            if check_shard_id(shard_id).is_err() {
                continue;
            }
            match self.prune_one(&group, shard_id).await? {
                Pruned::Deleted => pruned += 1,
                Pruned::Kept => {}
                Pruned::Unreadable => unreadable.push(shard_id.as_str()),
            }
        }
        if !unreadable.is_empty() {
            tracing::warn!(
                store = "dynamodb",
                stream,
                shards = ?unreadable,
                "left unreadable checkpoint entries unpruned (repair or delete them)"
            );
        }
        Ok(pruned)
    }

    async fn prune_one(&self, group: &str, shard_id: &str) -> Result<Pruned, Fail> {
        let finished = HashMap::from([(":true".to_owned(), AttributeValue::Bool(true))]);
        // A finished shard is usually released: one delete does it.
        let released = format!("#{SHARD_END} = :true AND attribute_not_exists(#{OWNER})");
        let found = match self
            .delete(group, shard_id, &released, finished.clone())
            .await?
        {
            Written::Done(_) => return Ok(self.pruned(group, shard_id)),
            // No item: unknown, or pruned already.
            Written::Refused(None) => return Ok(Pruned::Kept),
            Written::Refused(Some(item)) => item,
        };
        let current = match self.parse_lease(group, shard_id, &found) {
            Ok(current) => current,
            Err(Fail::Lease(CheckpointError::UnreadableEntry { .. })) => {
                return Ok(Pruned::Unreadable);
            }
            Err(err) => return Err(err),
        };
        let Some(owner) = &current.owner else {
            // Unfinished (or released just now: the next call deletes it).
            return Ok(Pruned::Kept);
        };
        if current.progress != Progress::ShardEnd
            || !self
                .observer
                .expired(group, shard_id, current.version(), Instant::now())
        {
            return Ok(Pruned::Kept);
        }
        // Finished, and its holder silent for a session timeout of our watching: delete it
        // unless it was claimed, renewed or released since.
        let abandoned = format!(
            "#{SHARD_END} = :true AND #{OWNER} = :owner AND #{TOKEN} = :token AND #{BEAT} = :beat"
        );
        let mut values = finished;
        values.extend([
            (":owner".to_owned(), s(owner.as_str())),
            (":token".to_owned(), n(current.token)),
            (":beat".to_owned(), n(current.beat)),
        ]);
        Ok(
            match self.delete(group, shard_id, &abandoned, values).await? {
                Written::Done(_) => self.pruned(group, shard_id),
                Written::Refused(_) => Pruned::Kept,
            },
        )
    }

    /// Forgets what this process watched of a deleted item.
    fn pruned(&self, group: &str, shard_id: &str) -> Pruned {
        self.observer.forget(group, shard_id);
        self.last.forget(group, shard_id);
        Pruned::Deleted
    }
}
