//! Leases of a running supervisor: the heartbeat (renewals, registration, fair share), claims
//! (sent together, like renewals), hand-off of leases above the share, and giving up leases
//! that are lost or could not be renewed in time.

use std::time::SystemTime;

use tokio::time::Instant;

use super::start::{self, Plan, StartConfig};
use super::table::{GroupEntry, Phase};
use super::{StoreWrite, Supervisor, lease_timing, together};

/// Finished shards whose checkpoints one heartbeat deletes at the most.
const PRUNE_PER_HEARTBEAT: usize = 25;
use crate::checkpoint::{CheckpointError, Claim, FencingToken, Lease, Progress, StartingPoint};
use crate::consumer::error::ConsumeError;
use crate::processor::Processor;

impl<P: Processor> Supervisor<P> {
    /// Renews this worker's leases, registers it, recomputes its share from the group's state,
    /// hands off leases above it and claims free ones below it.
    pub(super) async fn heartbeat(&mut self) {
        let ctx = self.ctx.clone();
        self.renew_leases().await;
        for shard_id in self.table.retry_stopped(Instant::now()) {
            if let Some(held) = self.table.held(&shard_id) {
                tracing::info!(shard = %shard_id, "releasing a stopped shard's lease for another try");
                held.handle.stop();
            }
        }
        if let Err(err) = ctx.store.heartbeat(&ctx.stream_name, &ctx.worker).await {
            tracing::warn!(error = %err, "registering this worker in the checkpoint store failed");
            if err.is_retryable() {
                // The group's state and claims would fail the same way: try them at the next
                // heartbeat rather than spend this one waiting on a store that does not answer.
                return;
            }
        }
        self.balance().await;
        self.claim(false).await;
        self.ctx.labels.leases_held(self.table.working());
        if self.table.count_phase(Phase::HandingOff) > 0 {
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
        self.observe(&leases);
        self.claim(true).await;
    }

    /// Feeds the store's listing of the group to the table.
    fn observe(&mut self, leases: &[crate::checkpoint::LeaseInfo]) {
        let entries: Vec<GroupEntry> = leases
            .iter()
            .map(|info| GroupEntry {
                shard_id: info.shard_id.clone().into(),
                owner: info.owner.clone(),
                finished: info.progress == Progress::ShardEnd,
            })
            .collect();
        self.table
            .observe_group(&entries, &self.ctx.worker, Instant::now());
        for entry in entries.iter().filter(|e| e.finished) {
            if self.table.phase(&entry.shard_id) == Some(Phase::Ended) {
                self.show_finished(&entry.shard_id);
            }
        }
    }

    /// Deletes the store entries of finished shards that left the stream's listing (trimmed
    /// once the retention period passed after a reshard), which would otherwise stay forever.
    /// Not when reading only some shards: the others are not ours to judge.
    async fn prune_trimmed(&mut self, leases: &[crate::checkpoint::LeaseInfo]) {
        if self.ctx.config.only_shards.is_some() {
            return;
        }
        let gone: Vec<String> = leases
            .iter()
            .filter(|info| info.progress == Progress::ShardEnd && info.owner.is_none())
            .filter(|info| self.table.phase(&info.shard_id).is_none())
            .map(|info| info.shard_id.to_string())
            .take(PRUNE_PER_HEARTBEAT)
            .collect();
        if gone.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        // The heartbeat renews leases: pruning (one conditional delete per shard in some
        // stores) gets a bounded part of it, and the rest waits for the next heartbeat.
        let budget = lease_timing(&ctx).heartbeat / 2;
        match tokio::time::timeout(budget, ctx.store.prune_finished(&ctx.stream_name, &gone)).await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(pruned)) => tracing::info!(
                pruned,
                "deleted the checkpoints of finished shards gone from the stream"
            ),
            Ok(Err(err)) => tracing::warn!(error = %err,
                "deleting the checkpoints of finished shards gone from the stream failed"),
            Err(_) => tracing::warn!(
                ?budget,
                "deleting the checkpoints of finished shards gone from the stream took too long; going on at the next heartbeat"
            ),
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
        self.observe(&leases);
        self.prune_trimmed(&leases).await;
        let held = self.table.working();
        let shed = self.table.rebalance(&ctx.worker, &live, Instant::now());
        if !shed.is_empty() {
            tracing::info!(
                held,
                target = self.table.target(),
                workers = live.len(),
                "handing off leases above this worker's share"
            );
        }
        for shard_id in shed {
            if let Some(held) = self.table.held(&shard_id) {
                held.handle.stop();
            }
        }
    }

    /// Claims what the table says to claim, all claims of the round together; records the
    /// starting point of first LATEST / AT_TIMESTAMP starts (together too), then starts the
    /// readers. With `only_unclaimed`, only shards no other worker is known to hold.
    pub(super) async fn claim(&mut self, only_unclaimed: bool) {
        let shard_ids = self.table.next_claims(Instant::now(), only_unclaimed);
        if shard_ids.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        let answers = together(
            shard_ids
                .iter()
                .map(|shard_id| {
                    let ctx = &ctx;
                    async move {
                        let sent = Instant::now();
                        let claim = ctx.store.claim(&ctx.stream_name, shard_id, &ctx.worker);
                        (sent, claim.await)
                    }
                })
                .collect(),
        )
        .await;
        let mut starts = Vec::new();
        for (shard_id, (sent, answer)) in shard_ids.into_iter().zip(answers) {
            match answer {
                Ok(Claim::Acquired { lease, progress }) => {
                    let plan =
                        start::plan(&progress, &self.start_config(&shard_id), SystemTime::now());
                    starts.push((lease, sent, plan));
                }
                Ok(Claim::Finished) => {
                    self.table.claim_finished(&shard_id);
                    self.show_finished(&shard_id);
                }
                Ok(Claim::HeldBy { owner }) => {
                    tracing::debug!(shard = %shard_id, %owner, "shard held by another worker");
                    self.table.claim_failed(&shard_id);
                }
                Err(source) => {
                    if source.is_retryable() {
                        // The store is down or busy: the claim is tried again later.
                        self.table.claim_failed(&shard_id);
                        ctx.labels.consumer_error(&shard_id, "checkpoint");
                        tracing::warn!(shard = %shard_id, error = %source, "claiming the lease failed");
                    } else {
                        // Not mended by trying again at once (a damaged entry): after a backoff.
                        self.table.claim_errored(&shard_id, Instant::now());
                        self.report(ConsumeError::Checkpoint {
                            shard_id: shard_id.into(),
                            source,
                        });
                    }
                }
            }
        }
        self.start_claimed(starts).await;
    }

    fn start_config(&self, shard_id: &str) -> StartConfig {
        let config = &self.ctx.config;
        StartConfig {
            iterator_type: config.iterator_type,
            sequence: config.start_sequences.get(shard_id).cloned(),
            initial: self.initial.contains(shard_id),
            open: self.table.shard(shard_id).is_none_or(|s| s.is_open()),
        }
    }

    /// Acts on the plans of acquired claims.
    async fn start_claimed(&mut self, starts: Vec<(Lease, Instant, Plan)>) {
        let store = self.ctx.store.clone();
        let recorded = together(
            starts
                .iter()
                .map(|(lease, _, plan)| {
                    let store = &store;
                    async move {
                        match plan {
                            Plan::Read {
                                record: Some(at), ..
                            } => Some(
                                store
                                    .record_start(lease, &StartingPoint::AtTimestamp(*at))
                                    .await,
                            ),
                            Plan::Finish => Some(match store.mark_shard_end(lease).await {
                                Ok(()) => store.release(lease).await,
                                Err(err) => Err(err),
                            }),
                            Plan::Read { record: None, .. } => None,
                        }
                    }
                })
                .collect(),
        )
        .await;
        for ((lease, sent, plan), answer) in starts.into_iter().zip(recorded) {
            let shard_id = lease.shard_id.to_string();
            match (plan, answer) {
                (Plan::Finish, Some(Ok(()))) => {
                    self.table.claim_finished(&shard_id);
                    self.show_finished(&shard_id);
                }
                (Plan::Read { at, .. }, None | Some(Ok(()))) => self.start_reader(lease, sent, at),
                (_, answer) => {
                    // Not started: nothing may be read before its starting point is recorded.
                    // The lease is given back so the shard is claimed again later.
                    self.table.claim_failed(&shard_id);
                    let _ = store.release(&lease).await;
                    if let Some(Err(err)) = answer {
                        self.claim_store_failed(&shard_id, err);
                    }
                }
            }
        }
    }

    fn claim_store_failed(&mut self, shard_id: &str, err: CheckpointError) {
        if err.is_retryable() || matches!(err, CheckpointError::NotOwned { .. }) {
            self.ctx.labels.consumer_error(shard_id, "checkpoint");
            tracing::warn!(shard = shard_id, error = %err, "starting the shard failed; retrying later");
        } else {
            self.report(ConsumeError::Checkpoint {
                shard_id: shard_id.into(),
                source: err,
            });
        }
    }

    /// A store write of lease `token` failed: a lost lease stops the shard here; other failures
    /// are retried at the next checkpoint.
    pub(super) fn store_failed(
        &mut self,
        shard_id: &str,
        token: FencingToken,
        err: CheckpointError,
    ) -> StoreWrite {
        if matches!(err, CheckpointError::NotOwned { .. }) {
            self.lose_lease(shard_id, token, err);
            StoreWrite::LeaseLost
        } else {
            tracing::warn!(shard = shard_id, error = %err, "checkpoint store failed; retrying later");
            if !err.is_retryable() {
                self.report(ConsumeError::Checkpoint {
                    shard_id: shard_id.into(),
                    source: err,
                });
            }
            StoreWrite::StoreFailed
        }
    }

    /// Stops a shard whose lease is (or may be) another worker's now: nothing more of it is
    /// read or handed out, and its checkpoints would be refused.
    fn lose_lease(&mut self, shard_id: &str, token: FencingToken, source: CheckpointError) {
        let Some(held) = self.table.lost(shard_id, token) else {
            return; // an earlier lease's answer
        };
        held.handle.stop();
        self.lease_left(shard_id);
        self.ctx.labels.lease_lost(self.table.working());
        self.report(ConsumeError::Checkpoint {
            shard_id: shard_id.into(),
            source,
        });
    }

    /// Renews every held lease together; gives up those that could not be renewed in time
    /// (another worker may take them once they expire, so reading on would risk two readers),
    /// and those whose records stopped being handed out because the lease ran out before this
    /// renewal.
    pub(super) async fn renew_leases(&mut self) {
        let leases: Vec<Lease> = self
            .table
            .leases()
            .map(|(_, _, held)| held.lease.clone())
            .collect();
        let session = lease_timing(&self.ctx).session_timeout;
        let store = self.ctx.store.clone();
        let answers = together(
            leases
                .iter()
                .map(|lease| {
                    let store = &store;
                    async move {
                        let sent = Instant::now();
                        (sent, store.renew(lease).await)
                    }
                })
                .collect(),
        )
        .await;
        for (lease, (sent, answer)) in leases.into_iter().zip(answers) {
            match answer {
                Ok(()) => {
                    if self.table.renewed(&lease.shard_id, lease.token, sent)
                        && let Some(held) = self.table.held(&lease.shard_id)
                    {
                        held.handle.acks.extend_lease(sent + session);
                    }
                }
                Err(err) => {
                    self.store_failed(&lease.shard_id, lease.token, err);
                }
            }
        }
        let mut expired: Vec<(String, Lease)> = self
            .table
            .expiring(Instant::now())
            .into_iter()
            .map(|(shard_id, held)| {
                held.handle.stop();
                (shard_id, held.lease)
            })
            .collect();
        // A lease that ran out while its records were handed out: nothing more of it is
        // handed out, so it is given up even though this renewal went through.
        let ran_out: Vec<Lease> = self
            .table
            .leases()
            .filter(|(_, phase, held)| *phase != Phase::HandingOff && held.handle.acks.is_revoked())
            .map(|(_, _, held)| held.lease.clone())
            .collect();
        for lease in ran_out {
            if let Some(held) = self.table.lost(&lease.shard_id, lease.token) {
                held.handle.stop();
                expired.push((lease.shard_id.to_string(), lease));
            }
        }
        for (shard_id, lease) in expired {
            self.lease_left(&shard_id);
            self.ctx.labels.lease_lost(self.table.working());
            self.report(ConsumeError::Checkpoint {
                shard_id: shard_id.clone().into(),
                source: CheckpointError::LeaseExpired {
                    shard_id: shard_id.into(),
                    worker: lease.owner,
                },
            });
        }
    }
}
