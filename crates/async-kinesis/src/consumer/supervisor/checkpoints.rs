//! Checkpoints of a running supervisor: every held shard's acknowledged prefix written
//! together, and the leases the table says to finish (drained shards' SHARD_END, handed-off
//! shards' final checkpoint and release).

use std::time::Duration;

use tokio::time::Instant;

use super::table::Due;
use super::{StoreWrite, Supervisor, ack_state, lease_timing, together};
use crate::checkpoint::{CheckpointError, FencingToken, Lease, Position};
use crate::consumer::ack::ShardAcks;
use crate::processor::Processor;

impl<P: Processor> Supervisor<P> {
    /// Writes every shard's acknowledged prefix and finishes what is due, unless the store
    /// failed lately and its backoff has not passed.
    pub(super) async fn flush_checkpoints(&mut self) {
        if self.store_backoff.ready(Instant::now()) {
            self.write_checkpoints().await;
        }
    }

    /// Writes every shard's acknowledged prefix (see [`together`]); finishes drained and
    /// handed-off shards.
    pub(super) async fn write_checkpoints(&mut self) {
        let mut pending = Vec::new();
        let now = Instant::now();
        for (shard_id, _, held) in self.table.leases() {
            let acks = &held.handle.acks;
            let (to_write, outstanding, oldest) = ack_state(acks);
            self.ctx.status.shard(shard_id, |s| {
                s.unacked = outstanding;
                s.oldest_unacked_since = oldest;
            });
            self.ctx.labels.consumer_lag(shard_id, outstanding);
            self.ctx.labels.oldest_unacked_age(
                shard_id,
                oldest.map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
            );
            self.warn_if_stale(shard_id, acks, outstanding, now);
            if let Some(position) = to_write {
                pending.push((
                    shard_id.to_owned(),
                    held.lease.clone(),
                    held.handle.acks.clone(),
                    position,
                ));
            }
        }
        let store = self.ctx.store.clone();
        let results = together(
            pending
                .iter()
                .map(|(shard_id, lease, _, position)| {
                    let (store, labels) = (&store, &self.ctx.labels);
                    async move {
                        let write = store.checkpoint(lease, position);
                        labels.timed_checkpoint(shard_id, write).await
                    }
                })
                .collect(),
        )
        .await;
        let mut outcomes = Vec::new();
        for ((shard_id, lease, acks, position), result) in pending.into_iter().zip(results) {
            outcomes.push(self.checkpoint_written(&shard_id, lease.token, &acks, position, result));
        }
        let due = self.table.due(
            Instant::now(),
            |reader| reader.acks.lock().outstanding(),
            |reader| reader.acks.all_handed_out_acked(),
        );
        for due in due {
            outcomes.push(self.finish_lease(due).await);
        }
        self.store_answered(&outcomes);
    }

    /// Warns once about a shard's oldest unacknowledged record read `unacked_warning_after`
    /// ago: it holds the shard's checkpoint (and, once the shard is read to its end, its
    /// children), and under `AckPolicy::Explicit` reading stops at `max_unacked_records`.
    fn warn_if_stale(&self, shard_id: &str, acks: &ShardAcks, outstanding: usize, now: Instant) {
        let after = self.ctx.config.unacked_warning_after;
        let Some(stale_at) = now.checked_sub(after) else {
            return;
        };
        if let Some((_, read_at)) = acks.stale_unacked(stale_at) {
            let age = now.saturating_duration_since(read_at);
            let closed = self.table.shard(shard_id).is_some_and(|s| !s.is_open());
            tracing::warn!(
                shard = %shard_id,
                age = ?age,
                unacked = outstanding,
                children_wait = closed,
                "a record of the shard read {age:?} ago is still not acknowledged: no checkpoint \
                 passes it{}",
                if closed { ", and the shard's children wait for it" } else { "" }
            );
        }
    }

    /// Finishes a lease the table says is due.
    async fn finish_lease(&mut self, due: Due) -> StoreWrite {
        let (shard_id, release) = match due {
            Due::ShardEnd(id) => (id, false),
            Due::Release(id) => (id, true),
        };
        let Some(held) = self.table.held(&shard_id) else {
            return StoreWrite::Done;
        };
        let (lease, acks) = (held.lease.clone(), held.handle.acks.clone());
        if release {
            self.finish_hand_off(&shard_id, &lease, &acks).await
        } else {
            self.end_shard(&shard_id, &lease).await
        }
    }

    /// Backs checkpoint writes off while the store fails; a write that went through ends that.
    fn store_answered(&mut self, outcomes: &[StoreWrite]) {
        if outcomes.contains(&StoreWrite::StoreFailed) {
            let config = &self.ctx.config;
            // At least one attempt per heartbeat, whatever expo_backoff_limit says.
            let cap = lease_timing(&self.ctx).heartbeat;
            self.store_backoff
                .failed(Instant::now(), |n| config.jittered_backoff(n).min(cap));
        } else if outcomes.contains(&StoreWrite::Done) {
            self.store_backoff.succeeded();
        }
    }

    /// Notes the store's answer to a checkpoint of `position` under lease `token`.
    fn checkpoint_written(
        &mut self,
        shard_id: &str,
        token: FencingToken,
        acks: &ShardAcks,
        position: Position,
        result: Result<(), CheckpointError>,
    ) -> StoreWrite {
        match result {
            Ok(()) => {
                self.ctx.labels.checkpoint(shard_id, true);
                acks.lock().written(position.clone());
                self.ctx
                    .status
                    .shard(shard_id, |s| s.last_checkpoint = Some(position));
                StoreWrite::Done
            }
            Err(err) => {
                self.ctx.labels.checkpoint(shard_id, false);
                self.store_failed(shard_id, token, err)
            }
        }
    }

    /// Writes a handed-off shard's final checkpoint (nothing more is handed out, so the
    /// acknowledged prefix is final unless the grace period ran out) and releases its lease.
    async fn finish_hand_off(
        &mut self,
        shard_id: &str,
        lease: &Lease,
        acks: &ShardAcks,
    ) -> StoreWrite {
        let last = acks.lock().to_write().cloned();
        if let Some(position) = last {
            let write = self.ctx.store.checkpoint(lease, &position);
            let result = self.ctx.labels.timed_checkpoint(shard_id, write).await;
            let written = self.checkpoint_written(shard_id, lease.token, acks, position, result);
            if written != StoreWrite::Done {
                return written;
            }
        }
        match self.ctx.store.release(lease).await {
            Ok(()) | Err(CheckpointError::NotOwned { .. }) => {
                if self.table.released(shard_id, lease.token).is_some() {
                    tracing::debug!(shard = shard_id, "lease handed off");
                    self.lease_left(shard_id);
                    self.ctx.labels.lease_handed_off(self.table.working());
                }
                StoreWrite::Done
            }
            Err(err) => self.store_failed(shard_id, lease.token, err),
        }
    }

    /// Records SHARD_END of a drained shard and releases its lease.
    async fn end_shard(&mut self, shard_id: &str, lease: &Lease) -> StoreWrite {
        let result = match self.ctx.store.mark_shard_end(lease).await {
            Ok(()) => self.ctx.store.release(lease).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => {
                self.table.shard_ended(shard_id, lease.token);
                self.show_finished(shard_id);
                StoreWrite::Done
            }
            Err(err) => self.store_failed(shard_id, lease.token, err),
        }
    }
}
