//! Leases of a running supervisor: the heartbeat (registration, renewal, fair share), claims
//! between heartbeats, hand-off of leases above the share, and giving up leases that are lost
//! or could not be renewed in time.

use std::collections::HashSet;

use tokio::time::Instant;

use super::{ShardState, Supervisor, Written, together};
use crate::checkpoint::{CheckpointError, Lease, Progress};
use crate::consumer::ack::ShardAcks;
use crate::consumer::balance;
use crate::consumer::error::ConsumeError;
use crate::processor::Processor;

impl<P: Processor> Supervisor<P> {
    /// Renews this worker's leases, registers it, recomputes its share from the group's state,
    /// hands off leases above it and claims free ones below it.
    pub(super) async fn heartbeat(&mut self) {
        let ctx = self.ctx.clone();
        self.renew_leases().await;
        if let Err(err) = ctx.store.heartbeat(&ctx.stream_name, &ctx.worker).await {
            tracing::warn!(error = %err, "registering this worker in the checkpoint store failed");
            if err.is_retryable() {
                // The group's state and claims would fail the same way: try them at the next
                // heartbeat rather than spend this one waiting on a store that does not answer.
                return;
            }
        }
        self.balance().await;
        self.schedule().await;
        self.ctx.labels.leases_held(self.held());
        if self
            .states
            .values()
            .any(|s| matches!(s, ShardState::HandingOff(..)))
        {
            // Release what can be released now: others are waiting to claim it.
            self.flush_checkpoints().await;
        }
    }

    /// Below its share between heartbeats: claims leases that became free (handed off by
    /// another worker, or expired), found with one listing instead of a claim per shard.
    pub(super) async fn claim_free(&mut self) {
        let ctx = self.ctx.clone();
        let Ok(leases) = ctx.store.list(&ctx.stream_name).await else {
            return; // the next heartbeat tries again and reports
        };
        let held_elsewhere: HashSet<String> = leases
            .into_iter()
            .filter(|l| l.owner.as_ref().is_some_and(|o| *o != ctx.worker))
            .map(|l| l.shard_id)
            .collect();
        let free: Vec<String> = self
            .states
            .iter()
            .filter(|(id, s)| matches!(s, ShardState::Waiting) && !held_elsewhere.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for shard_id in free {
            if self.held() >= self.target {
                return;
            }
            if self.can_start(&shard_id) {
                self.start(&shard_id).await;
            }
        }
    }

    /// Recomputes this worker's share; hands off leases above it.
    async fn balance(&mut self) {
        let ctx = self.ctx.clone();
        let (leases, live) = match (
            ctx.store.list(&ctx.stream_name).await,
            ctx.store.live_workers(&ctx.stream_name).await,
        ) {
            (Ok(leases), Ok(live)) => (leases, live),
            (Err(err), _) | (_, Err(err)) => {
                // Keep the share we have: claims stay bounded by it, and leases not renewed
                // are given up by `renew_leases`.
                tracing::warn!(error = %err, "reading the group from the checkpoint store failed");
                return;
            }
        };
        for info in leases {
            let waiting = matches!(self.states.get(&info.shard_id), Some(ShardState::Waiting));
            if waiting && info.progress == Progress::ShardEnd {
                self.finish(&info.shard_id); // read to its end by another worker
            }
        }
        let available = self
            .states
            .iter()
            .filter(|(id, state)| {
                matches!(
                    state,
                    ShardState::Waiting
                        | ShardState::Running(_)
                        | ShardState::Stopped(_)
                        | ShardState::HandingOff(..)
                ) && self.can_start(id)
            })
            .count();
        let share = balance::fair_share(&ctx.worker, &live, available);
        self.target = ctx
            .config
            .max_shard_consumers
            .map_or(share, |max| share.min(max));
        let held: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| s.holds_work())
            .map(|(id, _)| id.clone())
            .collect();
        let shed = balance::to_shed(&held, self.target);
        if !shed.is_empty() {
            tracing::info!(
                held = held.len(),
                target = self.target,
                workers = live.len(),
                "handing off leases above this worker's share"
            );
        }
        for shard_id in shed {
            self.hand_off(&shard_id);
        }
    }

    /// Stops reading a shard and hands nothing more of it out; its lease is released once the
    /// records already handed out are acknowledged (or a grace period passed).
    fn hand_off(&mut self, shard_id: &str) {
        let Some(state) = self.states.remove(shard_id) else {
            return;
        };
        let state = match state {
            ShardState::Running(owned) | ShardState::Stopped(owned) => {
                owned.cancel.cancel();
                owned.acks.revoke();
                let grace = self.ctx.store.timing().heartbeat_frequency() / 2;
                ShardState::HandingOff(owned, Instant::now() + grace)
            }
            other => other,
        };
        self.states.insert(shard_id.to_owned(), state);
    }

    /// Writes a handed-off shard's final checkpoint (nothing more is handed out, so the
    /// acknowledged prefix is final unless the grace period ran out) and releases its lease.
    pub(super) async fn finish_hand_off(
        &mut self,
        shard_id: &str,
        lease: &Lease,
        acks: &ShardAcks,
    ) -> Written {
        let last = acks.lock().to_write().cloned();
        if let Some(position) = last {
            let written = self.write_checkpoint(shard_id, lease, acks, position).await;
            if written != Written::Done {
                return written;
            }
        }
        match self.ctx.store.release(lease).await {
            Ok(()) | Err(CheckpointError::NotOwned { .. }) => {
                tracing::debug!(shard = shard_id, "lease handed off");
                self.states.insert(shard_id.to_owned(), ShardState::Waiting);
                self.ctx.status.shard(shard_id, |s| s.allocated = false);
                self.ctx.labels.lease_handed_off(self.held());
                Written::Done
            }
            Err(err) => self.store_failed(shard_id, err),
        }
    }

    /// Leases held for reading (not those being handed off or finished).
    pub(super) fn held(&self) -> usize {
        self.states.values().filter(|s| s.holds_work()).count()
    }

    /// A store write failed: a lost lease stops the shard here; other failures are retried at
    /// the next checkpoint.
    pub(super) fn store_failed(&mut self, shard_id: &str, err: CheckpointError) -> Written {
        if matches!(err, CheckpointError::NotOwned { .. }) {
            self.lose_lease(shard_id, err);
            Written::LeaseLost
        } else {
            tracing::warn!(shard = shard_id, error = %err, "checkpoint store failed; retrying later");
            if !err.is_retryable() {
                self.ctx.report(ConsumeError::Checkpoint {
                    shard_id: shard_id.to_owned(),
                    source: err,
                });
            }
            Written::StoreFailed
        }
    }

    /// Stops a shard whose lease is (or may be) another worker's now: nothing more of it is
    /// read or handed out, and its checkpoints would be refused.
    fn lose_lease(&mut self, shard_id: &str, source: CheckpointError) {
        if let Some(owned) = self.states.get(shard_id).and_then(ShardState::owned) {
            owned.cancel.cancel();
            owned.acks.revoke();
        }
        self.states.insert(shard_id.to_owned(), ShardState::Waiting);
        self.ctx.status.shard(shard_id, |s| s.allocated = false);
        self.ctx.labels.lease_lost(self.held());
        self.ctx.report(ConsumeError::Checkpoint {
            shard_id: shard_id.to_owned(),
            source,
        });
    }

    /// Renews every held lease (see [`together`]); gives up those that could not be renewed in
    /// time (another worker may take them once they expire, so reading on would risk two
    /// readers), and those whose records stopped being handed out because the lease ran out
    /// before this renewal.
    async fn renew_leases(&mut self) {
        let leases: Vec<(String, Lease)> = self
            .states
            .iter()
            .filter_map(|(id, s)| s.owned().map(|o| (id.clone(), o.lease.clone())))
            .collect();
        let timing = self.ctx.store.timing();
        let store = self.ctx.store.clone();
        let answers = together(
            leases
                .iter()
                .map(|(_, lease)| {
                    let store = &store;
                    async move {
                        let sent = Instant::now();
                        (sent, store.renew(lease).await)
                    }
                })
                .collect(),
        )
        .await;
        for ((shard_id, lease), (sent, answer)) in leases.into_iter().zip(answers) {
            match answer {
                Ok(()) => {
                    if let Some(owned) = self.states.get(&shard_id).and_then(ShardState::owned)
                        && owned.lease == lease
                    {
                        owned.acks.extend_lease(sent + timing.session_timeout());
                    }
                }
                Err(err) => {
                    self.store_failed(&shard_id, err);
                }
            }
        }
        // The next renewal comes one heartbeat later: give up what would expire before it.
        let deadline = Instant::now() + timing.heartbeat_frequency();
        let expiring: Vec<(String, Lease)> = self
            .states
            .iter()
            .filter(|(_, s)| {
                s.owned().is_some_and(|o| {
                    let ran_out = o.acks.is_revoked() && !matches!(s, ShardState::HandingOff(..));
                    o.acks.lease_until() <= deadline || ran_out
                })
            })
            .filter_map(|(id, s)| s.owned().map(|o| (id.clone(), o.lease.clone())))
            .collect();
        for (shard_id, lease) in expiring {
            self.lose_lease(
                &shard_id,
                CheckpointError::LeaseExpired {
                    shard_id: shard_id.clone(),
                    worker: lease.owner,
                },
            );
        }
    }
}
