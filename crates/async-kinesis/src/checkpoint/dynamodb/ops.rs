//! The store's lease operations (claim, renew, checkpoint, start, end, release, progress, list)
//! on top of the table access, plus the argument checks they share.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tokio::time::Instant;

use super::error::DynamoDbError;
use super::item::{
    BEAT, Item, LeaseItem, OWNER, SEQUENCE_NUMBER, SHARD_END, START_SEQUENCE, START_TIMESTAMP_NS,
    SUB_SEQUENCE, TOKEN, WORKER_PREFIX, key, n, s,
};
use super::write::{Write, Written};
use super::{Fail, Inner};
use crate::checkpoint::unreadable::Skipped;
use crate::checkpoint::{
    CheckpointError, Claim, FencingToken, Lease, LeaseInfo, Position, Progress, StartingPoint,
    WorkerId,
};

/// Read-compare-write rounds before an operation gives up on an item that keeps changing.
pub(super) const MAX_ATTEMPTS: u32 = 16;

impl Inner {
    pub(super) async fn claim(
        &self,
        stream: &str,
        shard_id: &str,
        worker: &WorkerId,
    ) -> Result<Claim, Fail> {
        check_shard_id(shard_id)?;
        let group = self.group(stream);
        // The item as a refused write found it, to spare a read.
        let mut known: Option<Item> = None;
        for _ in 0..MAX_ATTEMPTS {
            let item = match known.take() {
                Some(item) => Some(item),
                None => self.get(&group, shard_id).await?,
            };
            let now = Instant::now();
            let Some(item) = item else {
                match self.create_lease(&group, shard_id, worker).await? {
                    Written::Done(_) => {
                        let created = LeaseItem {
                            owner: Some(worker.clone()),
                            token: 1,
                            beat: 1,
                            progress: Progress::None,
                        };
                        return Ok(self.acquired(stream, shard_id, &group, worker, created, now));
                    }
                    Written::Refused(item) => {
                        known = item.filter(|item| !item.is_empty());
                        continue;
                    }
                }
            };
            let current = self.parse_lease(&group, shard_id, &item)?;
            let expired = self
                .observer
                .expired(&group, shard_id, current.version(), now);
            if current.progress == Progress::ShardEnd {
                return Ok(Claim::Finished);
            }
            if let Some(owner) = &current.owner
                && owner != worker
                && !expired
            {
                return Ok(Claim::HeldBy {
                    owner: owner.clone(),
                });
            }
            let Some(new_token) = current.token.checked_add(1) else {
                return Err(Fail::Lease(CheckpointError::TokenExhausted {
                    shard_id: shard_id.into(),
                    token: current.token,
                }));
            };
            // Only a damaged item gets there, as renewals add to `beat` on the server, which
            // then holds a number no reader takes.
            let new_beat = current.beat.checked_add(1).ok_or_else(|| {
                Fail::Lease(CheckpointError::UnreadableEntry {
                    shard_id: shard_id.into(),
                    detail: format!("{BEAT} {} cannot grow", current.beat),
                })
            })?;
            // Free, ours, or silent for a session timeout: take it, on the condition that
            // nobody wrote a claim, renewal, release or SHARD_END since we read it.
            let mut write = Write::condition(format!(
                "#token = :token AND #beat = :beat AND attribute_not_exists(#shard_end) AND {}",
                if current.owner.is_some() {
                    "#owner = :owner"
                } else {
                    "attribute_not_exists(#owner)"
                }
            ))
            .set("#owner = :worker")
            .set("#token = :new_token")
            .set("#beat = :new_beat")
            .value(":worker", s(worker.as_str()))
            .value(":token", n(current.token))
            .value(":beat", n(current.beat))
            .value(":new_token", n(new_token))
            .value(":new_beat", n(new_beat));
            if let Some(owner) = &current.owner {
                write = write.value(":owner", s(owner.as_str()));
            }
            match self
                .update(&group, shard_id, write, ReturnValue::AllNew)
                .await?
            {
                Written::Done(new) => {
                    let taken = self.parse_lease(&group, shard_id, &new)?;
                    return Ok(self.acquired(stream, shard_id, &group, worker, taken, now));
                }
                Written::Refused(item) => known = item.filter(|item| !item.is_empty()),
            }
        }
        Err(DynamoDbError::Contention {
            operation: "claim",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Records a successful claim and answers it.
    pub(super) fn acquired(
        &self,
        stream: &str,
        shard_id: &str,
        group: &str,
        worker: &WorkerId,
        lease: LeaseItem,
        now: Instant,
    ) -> Claim {
        self.observer.wrote(group, shard_id, lease.version(), now);
        self.last
            .set(group, shard_id, lease.token, lease.progress.clone());
        Claim::Acquired {
            lease: Lease {
                stream: stream.into(),
                shard_id: shard_id.into(),
                owner: worker.clone(),
                token: FencingToken(lease.token),
            },
            progress: lease.progress,
        }
    }

    /// Creates a shard's item, claimed by `worker`, unless it exists.
    pub(super) async fn create_lease(
        &self,
        group: &str,
        shard_id: &str,
        worker: &WorkerId,
    ) -> Result<Written, DynamoDbError> {
        let mut item = key(group, shard_id);
        item.insert(OWNER.to_owned(), s(worker.as_str()));
        item.insert(TOKEN.to_owned(), n(1));
        item.insert(BEAT.to_owned(), n(1));
        self.put_new(item).await
    }

    pub(super) async fn renew(&self, lease: &Lease) -> Result<(), Fail> {
        let now = Instant::now();
        let write = Write::default()
            .set("#beat = #beat + :one")
            .value(":one", n(1));
        let item = self.write_lease(lease, write, ReturnValue::AllNew).await?;
        let group = self.group(&lease.stream);
        let renewed = self.parse_lease(&group, &lease.shard_id, &item)?;
        self.observer
            .wrote(&group, &lease.shard_id, renewed.version(), now);
        Ok(())
    }

    pub(super) async fn checkpoint(&self, lease: &Lease, position: &Position) -> Result<(), Fail> {
        check_position(position)?;
        let group = self.group(&lease.stream);
        let shard_id = &*lease.shard_id;
        // The stored checkpoint, and whether it was just read under this lease (`false`: only
        // remembered, so ownership is still to be proven).
        let mut known: Option<(Progress, bool)> = self
            .last
            .get(&group, shard_id, lease.token.0)
            .map(|progress| (progress, false));
        for attempt in 0..MAX_ATTEMPTS {
            let (current, verified) = match known.take() {
                Some(known) => known,
                None => {
                    let item = self.get(&group, shard_id).await?;
                    (self.held_progress(lease, &group, item.as_ref())?, true)
                }
            };
            let moves = match &current {
                Progress::ShardEnd => false,
                Progress::At(at) => position > at,
                Progress::None | Progress::Started(_) => true,
            };
            if !moves {
                if verified {
                    return Ok(());
                }
                continue;
            }
            let write = Write::default()
                .expecting(&current)
                .set(format!("#{SEQUENCE_NUMBER} = :sequence_number"))
                .value(":sequence_number", s(position.sequence_number.as_str()));
            let write = match position.sub_sequence {
                Some(sub) => write
                    .set(format!("#{SUB_SEQUENCE} = :sub_sequence"))
                    .value(":sub_sequence", n(sub)),
                None => write.remove(SUB_SEQUENCE),
            };
            // Written on a remembered checkpoint, the item was not read: read back what was
            // written (free of read capacity), so a damaged item is reported here too.
            let returns = if verified {
                ReturnValue::None
            } else {
                ReturnValue::AllNew
            };
            match self
                .update(&group, shard_id, write.held_by(lease), returns)
                .await?
            {
                Written::Done(item) => {
                    if !verified && let Err(err) = self.parse_lease(&group, shard_id, &item) {
                        self.last.forget(&group, shard_id);
                        return Err(err);
                    }
                    self.last.set(
                        &group,
                        shard_id,
                        lease.token.0,
                        Progress::At(position.clone()),
                    );
                    return Ok(());
                }
                Written::Refused(item) => {
                    if let Some(item) = item.filter(|item| !item.is_empty()) {
                        known = Some((self.held_progress(lease, &group, Some(&item))?, true));
                    }
                    contention_pause(attempt).await;
                }
            }
        }
        Err(DynamoDbError::Contention {
            operation: "checkpoint",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// The progress in `item`, when `lease` holds it.
    pub(super) fn held_progress(
        &self,
        lease: &Lease,
        group: &str,
        item: Option<&Item>,
    ) -> Result<Progress, Fail> {
        if let Some(item) = item {
            let current = self.parse_lease(group, &lease.shard_id, item)?;
            if holds(lease, &current) {
                self.last.set(
                    group,
                    &lease.shard_id,
                    lease.token.0,
                    current.progress.clone(),
                );
                return Ok(current.progress);
            }
        }
        Err(self.not_held(lease, group, item)?)
    }

    pub(super) async fn record_start(
        &self,
        lease: &Lease,
        point: &StartingPoint,
    ) -> Result<(), Fail> {
        point.check().map_err(Fail::Lease)?;
        let group = self.group(&lease.stream);
        let (attribute, value) = match point {
            StartingPoint::AtTimestamp(at) => (
                START_TIMESTAMP_NS,
                AttributeValue::N(StartingPoint::epoch_nanos(*at).to_string()),
            ),
            StartingPoint::AtSequence(sequence) => (START_SEQUENCE, s(sequence.as_str())),
        };
        // Only the first start of a shard without a checkpoint: anything recorded already wins.
        let write = Write::condition(format!(
            "attribute_not_exists(#{SHARD_END}) AND attribute_not_exists(#{SEQUENCE_NUMBER}) \
             AND attribute_not_exists(#{START_TIMESTAMP_NS}) \
             AND attribute_not_exists(#{START_SEQUENCE})"
        ))
        .set(format!("#{attribute} = :start"))
        .value(":start", value)
        .held_by(lease);
        match self
            .update(&group, &lease.shard_id, write, ReturnValue::None)
            .await?
        {
            Written::Done(_) => Ok(()),
            Written::Refused(item) => {
                let item = self.refused_item(&group, &lease.shard_id, item).await?;
                if let Some(found) = &item {
                    let current = self.parse_lease(&group, &lease.shard_id, found)?;
                    if holds(lease, &current) {
                        // Held, so the condition that failed was "nothing recorded yet".
                        return Ok(());
                    }
                }
                Err(self.not_held(lease, &group, item.as_ref())?)
            }
        }
    }

    pub(super) async fn mark_shard_end(&self, lease: &Lease) -> Result<(), Fail> {
        let write = Write::default()
            .set("#shard_end = :true")
            .value(":true", AttributeValue::Bool(true));
        self.write_lease(lease, write, ReturnValue::None).await?;
        let group = self.group(&lease.stream);
        self.last
            .set(&group, &lease.shard_id, lease.token.0, Progress::ShardEnd);
        Ok(())
    }

    pub(super) async fn release(&self, lease: &Lease) -> Result<(), Fail> {
        let now = Instant::now();
        let write = Write::default()
            .remove(OWNER)
            .set("#beat = #beat + :one")
            .value(":one", n(1));
        let item = self.write_lease(lease, write, ReturnValue::AllNew).await?;
        let group = self.group(&lease.stream);
        let released = self.parse_lease(&group, &lease.shard_id, &item)?;
        self.observer
            .wrote(&group, &lease.shard_id, released.version(), now);
        Ok(())
    }

    pub(super) async fn progress(&self, stream: &str, shard_id: &str) -> Result<Progress, Fail> {
        let group = self.group(stream);
        let Some(item) = self.get(&group, shard_id).await? else {
            return Ok(Progress::None);
        };
        let current = self.parse_lease(&group, shard_id, &item)?;
        self.observer
            .expired(&group, shard_id, current.version(), Instant::now());
        Ok(current.progress)
    }

    pub(super) async fn list(&self, stream: &str) -> Result<Vec<LeaseInfo>, Fail> {
        let group = self.group(stream);
        let items = self.query(&group, None).await?;
        let now = Instant::now();
        let mut leases = Vec::new();
        let mut present = HashSet::new();
        let mut skipped = Skipped::default();
        for item in &items {
            let Some(shard_id) = super::item::sort_key(item) else {
                continue;
            };
            if shard_id.starts_with(WORKER_PREFIX) {
                continue;
            }
            let current = match self.parse_lease(&group, shard_id, item) {
                Ok(current) => current,
                Err(Fail::Lease(err)) => {
                    skipped.skip(err).map_err(Fail::Lease)?;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let expired = self
                .observer
                .expired(&group, shard_id, current.version(), now);
            present.insert(shard_id.to_owned());
            leases.push(LeaseInfo {
                shard_id: shard_id.into(),
                owner: current.owner.filter(|_| !expired),
                token: FencingToken(current.token),
                progress: current.progress,
            });
        }
        skipped.warn("dynamodb", stream);
        self.observer
            .retain(&group, |key| !key.starts_with(WORKER_PREFIX), &present);
        self.last.retain(&group, &present);
        leases.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(leases)
    }
}

/// Whether `lease` (owner and token) holds the item `current`.
pub(super) fn holds(lease: &Lease, current: &LeaseItem) -> bool {
    current.owner.as_ref() == Some(&lease.owner) && current.token == lease.token.0
}

/// Shard ids may be anything but a worker registration's sort key.
pub(super) fn check_shard_id(shard_id: &str) -> Result<(), Fail> {
    if shard_id.is_empty() || shard_id.starts_with(WORKER_PREFIX) {
        return Err(DynamoDbError::InvalidArgument(format!(
            "shard id {shard_id:?} is empty or starts with {WORKER_PREFIX:?}, which marks worker \
             registrations"
        ))
        .into());
    }
    Ok(())
}

/// Only decimal sequence numbers are stored: anything else would make the item unreadable.
pub(super) fn check_position(position: &Position) -> Result<(), Fail> {
    let digits = &position.sequence_number;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DynamoDbError::InvalidArgument(format!(
            "sequence number {digits:?} is not a decimal number"
        ))
        .into());
    }
    Ok(())
}

/// A short random pause before repeating a refused checkpoint, so that writers racing on one
/// item fall out of step (up to 5 ms doubling per attempt, at most 160 ms).
pub(super) async fn contention_pause(attempt: u32) {
    let cap = Duration::from_millis(5 << attempt.min(5));
    tokio::time::sleep(cap.mul_f64(rand::random_range(0.0..=1.0))).await;
}

pub(super) fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_prefixed_shard_ids_are_refused() {
        assert!(check_shard_id("shardId-000000000000").is_ok());
        assert!(matches!(
            check_shard_id("worker#x"),
            Err(Fail::Db(DynamoDbError::InvalidArgument(_)))
        ));
        assert!(check_shard_id("").is_err());
    }

    #[test]
    fn only_decimal_sequence_numbers_are_stored() {
        assert!(
            check_position(&Position::within(
                "0049590338271490256608559692538361571095921575989136588898",
                1
            ))
            .is_ok()
        );
        for bad in ["", "12a", "-1", " 1"] {
            assert!(
                matches!(
                    check_position(&Position::after(bad)),
                    Err(Fail::Db(DynamoDbError::InvalidArgument(_)))
                ),
                "{bad:?}"
            );
        }
    }
}
