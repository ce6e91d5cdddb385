//! Reads one shard: the only code that calls GetShardIterator and GetRecords.
//!
//! Per shard: at most `shard_fetch_rate` GetRecords calls per second, a pause of
//! `sleep_time_no_records` after an empty answer, exponential backoff on throttling and transient
//! failures, a fresh iterator after expiry (from the last record handed out, never from the
//! configured iterator type), and the child shards at the shard's end.
//!
//! Under [`AckPolicy::Explicit`] reading pauses while `max_unacked_records` records of the shard
//! are unacknowledged. A nacked record makes the reader read on from the acknowledged prefix.
//! At the shard's end the reader stays until every record read is acknowledged, so a record
//! nacked then is read again too.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::types::ChildShard;
use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Record;
use super::ack::{Acker, ShardAcks};
use super::config::AckPolicy;
use super::context::Context;
use super::decode::{DecodeOutcome, DecodedRecord, RawRecord, decode_record};
use super::error::{ConsumeError, PoisonAction};
use super::fanout::FanOutShard;
pub(crate) use super::origin::{Origin, StartAt};
use crate::checkpoint::Position;
use crate::error::{Error, ErrorClass};
use crate::ids::ShardId;
use crate::processor::Processor;
use crate::retry::FailureRun;
use crate::stream::shard::Shard;
use crate::stream::shard_map::parse_hash_key;

/// How a reader ended.
#[derive(Debug)]
pub(crate) enum ReaderOutcome {
    /// Read to the end; these are the children the service named.
    Ended { children: Vec<Shard> },
    /// Stopped by an error (already reported as an error item).
    Stopped,
    /// The shard's iterator or records answer ResourceNotFound (reported as
    /// [`ConsumeError::ShardGone`]): for a closed shard, trimmed past the retention period.
    Gone,
    /// Told to stop.
    Cancelled,
}

/// LATEST re-created after expiry becomes AT_TIMESTAMP of the first LATEST call, this much
/// earlier, so clock differences re-deliver a little rather than skip: the margin of the
/// starting point recorded for later claims, which covers any skew a signed client can have.
const LATEST_MARGIN: Duration = super::supervisor::LATEST_SKEW_MARGIN;

pub(crate) struct ShardReader<P: Processor> {
    pub(super) ctx: Arc<Context<P>>,
    pub(super) shard_id: Arc<str>,
    pub(super) acks: Arc<ShardAcks>,
    pub(super) cancel: CancellationToken,
    pub(super) start: StartAt,
    /// While resuming inside an aggregate: its items up to here were processed already.
    pub(super) skip_through: Option<Position>,
    /// Sequence number of the last record handed to the queue.
    pub(super) last_read: Option<Arc<str>>,
    pub(super) latest_issued_at: Option<SystemTime>,
    /// A final error was reported; the reader ends.
    pub(super) stopped: bool,
    /// That error said the shard is gone.
    pub(super) gone: bool,
    /// Read over enhanced fan-out (SubscribeToShard) rather than by polling.
    fan_out: Option<FanOutShard>,
}

/// What follows reaching a shard's end.
pub(super) enum AtEnd {
    Ended,
    /// A record was nacked meanwhile: read again from it.
    ReadAgain,
    Cancelled,
}

pub(super) enum Step {
    Continue,
    Stop,
    Cancelled,
}

impl<P: Processor> ShardReader<P> {
    pub(crate) fn new(
        ctx: Arc<Context<P>>,
        shard_id: Arc<str>,
        acks: Arc<ShardAcks>,
        cancel: CancellationToken,
        start: StartAt,
    ) -> Self {
        let mut reader = Self {
            ctx,
            shard_id,
            acks,
            cancel,
            start: StartAt::TrimHorizon,
            skip_through: None,
            last_read: None,
            latest_issued_at: None,
            stopped: false,
            gone: false,
            fan_out: None,
        };
        reader.start_at(start);
        reader
    }

    /// Reading (again) starts at `start`: inside an aggregate, its items up to the position
    /// are skipped.
    fn start_at(&mut self, start: StartAt) {
        self.skip_through = match &start {
            StartAt::Resume(position) if position.sub_sequence.is_some() => Some(position.clone()),
            _ => None,
        };
        self.start = start;
        self.last_read = None;
    }

    /// A record was nacked: reading goes on after the acknowledged prefix (or where it first
    /// started, when nothing was acknowledged); `true` when a rewind was done.
    pub(super) fn rewound(&mut self) -> bool {
        let Some(from) = self.acks.take_rewind() else {
            return false;
        };
        tracing::info!(shard = %self.shard_id, from = ?from, "a record was nacked; reading the shard again from the first record not acknowledged");
        match from {
            Some(position) => self.start_at(StartAt::Resume(position)),
            None => {
                let first = self.start.clone();
                self.start_at(first);
            }
        }
        true
    }

    /// The most records the next call may ask for: `record_limit`, and under
    /// [`AckPolicy::Explicit`] no more than `max_unacked_records` leaves room for (0: none).
    pub(super) fn room(&self) -> usize {
        let limit = self.ctx.config.record_limit;
        match self.ctx.config.ack_policy {
            AckPolicy::OnNextPoll => limit,
            AckPolicy::Explicit => {
                let outstanding = self.acks.lock().outstanding();
                limit.min(
                    self.ctx
                        .config
                        .max_unacked_records
                        .saturating_sub(outstanding),
                )
            }
        }
    }

    /// Waits until `done` holds for the shard's acknowledgements, or a rewind is asked, or the
    /// reader is cancelled (`false`).
    pub(super) async fn wait_for_acks(
        &self,
        done: impl Fn(&super::ack::AckTracker) -> bool,
    ) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = self.acks.wait_until(done) => true,
        }
    }

    /// Reads the shard over this enhanced fan-out subscription instead of by polling.
    pub(crate) fn with_fan_out(mut self, fan_out: Option<FanOutShard>) -> Self {
        self.fan_out = fan_out;
        self
    }

    /// Reads until the shard ends, an error stops it, or it is cancelled. `on_iterator` is called
    /// once the first iterator (or subscription) is held (the consumer's ready signal).
    pub(crate) async fn run(mut self, on_iterator: impl FnOnce() + Send) -> ReaderOutcome {
        match self.fan_out.take() {
            Some(fan_out) => self.subscribe(fan_out, on_iterator).await,
            None => self.poll(on_iterator).await,
        }
    }

    /// Reads by GetRecords until the shard ends, an error stops it, or it is cancelled.
    pub(super) async fn poll(mut self, on_iterator: impl FnOnce()) -> ReaderOutcome {
        let Some(mut iterator) = self.fresh_iterator().await else {
            return self.stopped_or_cancelled();
        };
        self.ctx
            .status
            .shard(&self.shard_id, |s| s.has_iterator = true);
        on_iterator();
        let interval = self.ctx.config.fetch_interval();
        let mut next_call = Instant::now();
        let mut failures = FailureRun::default();
        loop {
            if !self.sleep_until(next_call).await {
                return ReaderOutcome::Cancelled;
            }
            if self.rewound() {
                match self.fresh_iterator().await {
                    Some(fresh) => iterator = fresh,
                    None => return self.stopped_or_cancelled(),
                }
            }
            let room = self.room();
            if room == 0 {
                self.ctx
                    .status
                    .shard(&self.shard_id, |s| s.waiting_for_acks = true);
                let max = self.ctx.config.max_unacked_records;
                let waited = self.wait_for_acks(|t| t.outstanding() < max).await;
                self.ctx
                    .status
                    .shard(&self.shard_id, |s| s.waiting_for_acks = false);
                if !waited {
                    return ReaderOutcome::Cancelled;
                }
                next_call = Instant::now();
                continue; // a rewind, or room: look again
            }
            next_call = Instant::now() + interval;
            let result = tokio::select! {
                () = self.cancel.cancelled() => return ReaderOutcome::Cancelled,
                result = self.get_records(&iterator, room) => result,
            };
            let output = match result {
                Ok(output) => output,
                Err(err) => {
                    failures.fail(err.class() != ErrorClass::Throttling);
                    match self.on_error(err, failures).await {
                        Some(delay) => {
                            next_call = next_call.max(Instant::now() + delay);
                            continue;
                        }
                        None if self.cancel.is_cancelled() => return ReaderOutcome::Cancelled,
                        None => match self.fresh_iterator().await {
                            Some(fresh) => {
                                iterator = fresh;
                                continue;
                            }
                            None => return self.stopped_or_cancelled(),
                        },
                    }
                }
            };
            failures = FailureRun::default();
            let empty = output.records.is_empty();
            let millis_behind = output.millis_behind_latest;
            self.ctx.status.shard(&self.shard_id, |s| {
                s.success += 1;
                s.millis_behind_latest = millis_behind;
            });
            match self.deliver(output.records, millis_behind).await {
                Step::Continue => {}
                Step::Stop => return ReaderOutcome::Stopped,
                Step::Cancelled => return ReaderOutcome::Cancelled,
            }
            // Set after the batch is queued, so "at the tip" never precedes its records.
            let at_tip = empty && millis_behind == Some(0);
            self.ctx.status.shard(&self.shard_id, |s| s.at_tip = at_tip);
            match output.next_shard_iterator {
                Some(next) => iterator = next,
                None => {
                    let children = output
                        .child_shards
                        .unwrap_or_default()
                        .iter()
                        .filter_map(child_to_shard)
                        .collect();
                    match self.at_end().await {
                        AtEnd::Ended => return ReaderOutcome::Ended { children },
                        AtEnd::Cancelled => return ReaderOutcome::Cancelled,
                        AtEnd::ReadAgain => {}
                    }
                    match self.fresh_iterator().await {
                        Some(fresh) => iterator = fresh,
                        None => return self.stopped_or_cancelled(),
                    }
                    self.ctx
                        .status
                        .shard(&self.shard_id, |s| s.has_iterator = true);
                    next_call = Instant::now();
                    continue;
                }
            }
            if empty {
                next_call = next_call.max(Instant::now() + self.ctx.config.sleep_time_no_records);
            }
        }
    }

    /// At the shard's end: ended once every record read is acknowledged; a record nacked
    /// until then is read again (the shard's SHARD_END is recorded after that).
    pub(super) async fn at_end(&mut self) -> AtEnd {
        self.ctx.status.shard(&self.shard_id, |s| {
            s.has_iterator = false;
            s.closed = true;
        });
        if !self.wait_for_acks(|t| t.outstanding() == 0).await {
            AtEnd::Cancelled
        } else if self.rewound() {
            AtEnd::ReadAgain
        } else {
            AtEnd::Ended
        }
    }

    pub(super) fn stopped_or_cancelled(&self) -> ReaderOutcome {
        if self.cancel.is_cancelled() {
            ReaderOutcome::Cancelled
        } else if self.gone {
            ReaderOutcome::Gone
        } else {
            ReaderOutcome::Stopped
        }
    }

    /// Sleeps until `until`; `false` when cancelled first.
    pub(super) async fn sleep_until(&self, until: Instant) -> bool {
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep_until(until) => true,
        }
    }

    async fn get_records(
        &self,
        iterator: &str,
        limit: usize,
    ) -> Result<aws_sdk_kinesis::operation::get_records::GetRecordsOutput, Error> {
        let (_, arn) = self.ctx.client.stream().request_ids();
        self.ctx
            .client
            .sdk_client()
            .get_records()
            .shard_iterator(iterator)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_stream_arn(arn)
            .send()
            .await
            .map_err(|e| self.ctx.sdk_error("GetRecords", e))
    }

    /// Decides what a failed GetRecords call leads to: `Some(delay)` to retry the call, `None` to
    /// get a fresh iterator. A final failure is reported and sets `stopped`, which makes the
    /// following `fresh_iterator` give up.
    async fn on_error(&mut self, err: Error, failures: FailureRun) -> Option<Duration> {
        let class = err.class();
        self.ctx
            .labels
            .consumer_error(&self.shard_id, &class.to_string());
        match class {
            ErrorClass::Expired => {
                tracing::info!(shard = %self.shard_id, "shard iterator expired; getting a fresh one");
                None
            }
            ErrorClass::Throttling => {
                self.ctx.status.shard(&self.shard_id, |s| s.throttled += 1);
                tracing::debug!(shard = %self.shard_id, error = %err, "GetRecords throttled");
                Some(self.ctx.config.jittered_backoff(failures.in_a_row))
            }
            _ => match self.should_retry(&err, failures) {
                Some(delay) => Some(delay),
                None => {
                    self.fail(err);
                    None
                }
            },
        }
    }

    /// Retry delay for a non-throttling failure, or `None` when it is final.
    pub(super) fn should_retry(&self, err: &Error, failures: FailureRun) -> Option<Duration> {
        let retryable = err.is_retryable() || err.class() == ErrorClass::Unknown;
        let within_limit = !self.ctx.config.retry.gives_up_after(failures.counted);
        if retryable && within_limit {
            tracing::warn!(shard = %self.shard_id, error = %err, attempt = failures.counted, "read failed; retrying");
            Some(self.ctx.config.jittered_backoff(failures.in_a_row))
        } else {
            None
        }
    }

    /// Reports a final failure as an error item and marks the shard stopped.
    pub(super) fn fail(&mut self, err: Error) {
        let shard_id = ShardId::from(&self.shard_id);
        self.gone = err.class() == ErrorClass::NotFound;
        let error = if self.gone {
            ConsumeError::ShardGone {
                shard_id,
                source: err,
            }
        } else {
            ConsumeError::Shard {
                shard_id,
                source: err,
            }
        };
        self.ctx.report(error);
        self.ctx.status.shard(&self.shard_id, |s| s.stopped = true);
        // Nothing else runs for this shard; `fresh_iterator` sees the flag and gives up.
        self.stopped = true;
    }

    /// A new iterator from where reading must go on, retrying transient failures.
    async fn fresh_iterator(&mut self) -> Option<String> {
        if self.stopped {
            return None;
        }
        let mut failures = FailureRun::default();
        let cancel = self.cancel.clone();
        loop {
            let result = tokio::select! {
                () = cancel.cancelled() => return None,
                result = self.get_shard_iterator() => result,
            };
            match result {
                Ok(iterator) => return Some(iterator),
                Err(err) => {
                    failures.fail(err.class() != ErrorClass::Throttling);
                    self.ctx
                        .labels
                        .consumer_error(&self.shard_id, &err.class().to_string());
                    let delay = if err.class() == ErrorClass::Throttling {
                        Some(self.ctx.config.jittered_backoff(failures.in_a_row))
                    } else {
                        self.should_retry(&err, failures)
                    };
                    match delay {
                        Some(delay) => {
                            if !self.sleep_until(Instant::now() + delay).await {
                                return None;
                            }
                        }
                        None => {
                            self.fail(err);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Where reading goes on: after the last record handed out, else where the reader started.
    /// A LATEST start asked again (the first iterator expired unused, a subscription ended
    /// before its first event) becomes AT_TIMESTAMP of the first request, a margin earlier.
    pub(super) fn origin(&mut self) -> Origin {
        match (&self.last_read, &self.start) {
            (Some(sequence), _) => Origin::After(sequence.clone()),
            (None, StartAt::Resume(position)) if position.sub_sequence.is_some() => {
                Origin::At(position.sequence_number.as_ref().into())
            }
            (None, StartAt::Resume(position)) => {
                Origin::After(position.sequence_number.as_ref().into())
            }
            (None, StartAt::AtSequence(sequence)) => Origin::At(sequence.clone()),
            (None, StartAt::TrimHorizon) => Origin::TrimHorizon,
            (None, StartAt::AtTimestamp(at)) => Origin::AtTimestamp(*at),
            (None, StartAt::Latest) => match self.latest_issued_at {
                Some(at) => Origin::AtTimestamp(at.checked_sub(LATEST_MARGIN).unwrap_or(at)),
                None => {
                    self.latest_issued_at = Some(SystemTime::now());
                    Origin::Latest
                }
            },
        }
    }

    async fn get_shard_iterator(&mut self) -> Result<String, Error> {
        const OP: &str = "GetShardIterator";
        let (name, arn) = self.ctx.client.stream().request_ids();
        let origin = self.origin();
        let output = self
            .ctx
            .client
            .sdk_client()
            .get_shard_iterator()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .shard_id(self.shard_id.as_ref())
            .shard_iterator_type(origin.iterator_type())
            .set_starting_sequence_number(origin.sequence().map(str::to_owned))
            .set_timestamp(origin.timestamp().map(Into::into))
            .send()
            .await
            .map_err(|e| self.ctx.sdk_error(OP, e))?;
        output
            .shard_iterator
            .ok_or_else(|| Error::MalformedResponse {
                operation: OP,
                detail: "no ShardIterator".into(),
            })
    }

    /// Decodes a batch, registers it for acknowledgement and queues it (waiting for room).
    pub(super) async fn deliver(
        &mut self,
        records: Vec<aws_sdk_kinesis::types::Record>,
        millis_behind: Option<i64>,
    ) -> Step {
        if records.is_empty() {
            return Step::Continue;
        }
        let record_count = records.len() as u64;
        let mut bytes = 0usize;
        let mut pending = Vec::with_capacity(records.len());
        let mut stop = false;
        let mut last_complete: Option<Arc<str>> = None;
        for record in records {
            let sequence: Arc<str> = Arc::from(record.sequence_number);
            // Absent only for records written without a key to a stream with AUTO record
            // distribution; an empty key is what such a record is addressed by.
            let partition_key: Arc<str> = Arc::from(record.partition_key.unwrap_or_default());
            let data = Bytes::from(record.data.into_inner());
            let arrival_time = record
                .approximate_arrival_timestamp
                .and_then(|t| SystemTime::try_from(t).ok());
            bytes += data.len() + partition_key.len();
            let stopped_inside = decode_record(
                &self.ctx,
                &self.shard_id,
                self.skip_through.as_ref(),
                RawRecord {
                    sequence: &sequence,
                    partition_key: &partition_key,
                    data: &data,
                    arrival_time,
                },
                &mut pending,
            );
            if stopped_inside {
                stop = true;
                break;
            }
            last_complete = Some(sequence);
        }
        self.skip_through = None;
        let ok_items = pending
            .iter()
            .filter(|p| matches!(p.outcome, DecodeOutcome::Item(_)))
            .count();
        let items = self.register(pending, millis_behind);
        self.ctx
            .labels
            .records_received(&self.shard_id, record_count, bytes as u64, millis_behind);
        if !items.is_empty() {
            let reservation = tokio::select! {
                () = self.cancel.cancelled() => return Step::Cancelled,
                reservation = self.ctx.budget.reserve(ok_items, bytes) => reservation,
            };
            if self.ctx.out.send(reservation.deliver(items)).is_err() {
                return Step::Cancelled; // the consumer is gone
            }
            self.ctx
                .labels
                .records_processed(&self.shard_id, ok_items, bytes);
        }
        if let Some(sequence) = last_complete {
            self.ctx
                .status
                .shard(&self.shard_id, |s| s.last_read = Some(sequence.clone()));
            self.last_read = Some(sequence);
        }
        let outstanding = self.acks.lock().outstanding() as u64;
        self.ctx.labels.consumer_backlog(
            &self.shard_id,
            self.ctx.budget.queued_items(),
            self.ctx.budget.queued_bytes(),
            outstanding,
        );
        if stop {
            self.ctx.status.shard(&self.shard_id, |s| s.stopped = true);
            Step::Stop
        } else {
            Step::Continue
        }
    }

    /// Registers decoded items with the ack tracker (one lock per batch) and builds the items.
    fn register(
        &self,
        pending: Vec<DecodedRecord<P::Output>>,
        millis_behind: Option<i64>,
    ) -> Vec<Result<Record<P::Output>, ConsumeError>> {
        let mut items = Vec::with_capacity(pending.len());
        let read_at = Instant::now();
        let mut tracker = self.acks.lock();
        if self.acks.rewind_asked() {
            return items; // read before a nacked record's rewind: read again after it
        }
        for entry in pending {
            let stopped = matches!(&entry.outcome, DecodeOutcome::Poison(p) if p.action == PoisonAction::Stopped);
            // A record that stops the shard is never passed by a checkpoint.
            let index =
                (!stopped).then(|| tracker.push(entry.position.clone(), entry.pre_acked, read_at));
            match entry.outcome {
                DecodeOutcome::Item(decoded) => {
                    let Some(index) = index else { continue };
                    items.push(Ok(Record {
                        item: decoded.item,
                        shard_id: (&self.shard_id).into(),
                        sequence_number: entry.sequence_number.into(),
                        sub_sequence: decoded.sub_sequence,
                        partition_key: decoded.partition_key,
                        explicit_hash_key: decoded.explicit_hash_key,
                        arrival_time: entry.arrival_time,
                        millis_behind_latest: millis_behind,
                        position: entry.position,
                        acker: Acker::new(self.acks.clone(), index),
                    }));
                }
                DecodeOutcome::Empty => {}
                DecodeOutcome::Poison(poison) => items.push(Err(ConsumeError::Poison(poison))),
            }
        }
        items
    }
}

/// A shard from GetRecords' (or an event's) ChildShards (no sequence range is known yet).
pub(super) fn child_to_shard(child: &ChildShard) -> Option<Shard> {
    let range = child.hash_key_range()?;
    let mut parents = child.parent_shards().iter().cloned();
    Some(Shard {
        shard_id: child.shard_id().into(),
        parent_shard_id: parents.next().map(ShardId::from),
        adjacent_parent_shard_id: parents.next().map(ShardId::from),
        starting_hash_key: parse_hash_key(range.starting_hash_key()).ok()?,
        ending_hash_key: parse_hash_key(range.ending_hash_key()).ok()?,
        starting_sequence_number: "".into(),
        ending_sequence_number: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::HashKeyRange;

    fn child(parents: &[&str], start: &str, end: &str) -> ChildShard {
        ChildShard::builder()
            .shard_id("shardId-000000000004")
            .set_parent_shards(Some(parents.iter().map(|p| (*p).to_owned()).collect()))
            .hash_key_range(
                HashKeyRange::builder()
                    .starting_hash_key(start)
                    .ending_hash_key(end)
                    .build()
                    .expect("both keys"),
            )
            .build()
            .expect("id and parents set")
    }

    #[test]
    fn child_shards_keep_both_parents_of_a_merge() {
        let shard = child_to_shard(&child(&["a", "b"], "0", "99")).expect("valid");
        assert_eq!(shard.parents().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((shard.starting_hash_key, shard.ending_hash_key), (0, 99));
        assert!(shard.is_open());
        let split = child_to_shard(&child(&["a"], "5", "9")).expect("valid");
        assert_eq!(split.parents().collect::<Vec<_>>(), ["a"]);
        assert!(child_to_shard(&child(&["a"], "x", "9")).is_none());
    }
}
