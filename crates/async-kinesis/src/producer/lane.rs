//! One shard's lane: the aggregator for items routed to the shard, and the queue of its
//! records waiting to be sent.
//!
//! Items are routed to a shard *before* aggregation (by their partition key or explicit hash
//! key), so an aggregated record only holds items of one shard, and its own key (the first
//! item's) routes it there. This is what keeps consumers of a shard seeing every item of the
//! keys that map to it, in order, also for formats like KPL that mix keys in one record.

use tokio::time::{Duration, Instant};

use super::shard_queue::{BatchRules, ShardQueue, Waiting};
use crate::processor::{OutgoingRecord, RecordWriter, Rejected};

pub(crate) struct Lane<W, Tag> {
    writer: W,
    /// When the oldest item now in the writer arrived.
    since: Option<Instant>,
    queue: ShardQueue<OutgoingRecord<Tag>>,
}

impl<W: RecordWriter<Tag>, Tag> Lane<W, Tag> {
    pub(crate) fn new(writer: W, queue: ShardQueue<OutgoingRecord<Tag>>) -> Self {
        Self {
            writer,
            since: None,
            queue,
        }
    }

    /// Adds one item. Returns whether it completed a record (now queued).
    pub(crate) fn push(
        &mut self,
        tag: Tag,
        data: bytes::Bytes,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        now: Instant,
    ) -> Result<bool, Rejected<Tag>> {
        let completed = self
            .writer
            .push(tag, data, partition_key, explicit_hash_key)?;
        let emitted = completed.is_some();
        if let Some(record) = completed {
            self.queue_record(record, now);
        }
        if self.writer.buffered_items() == 0 {
            self.since = None;
        } else {
            self.since.get_or_insert(now);
        }
        Ok(emitted)
    }

    fn queue_record(&mut self, record: OutgoingRecord<Tag>, queued_at: Instant) {
        let size = record.size();
        self.queue.push(Waiting::new(record, size, queued_at));
    }

    /// Turns the buffered items into queued records when the oldest waited `linger`, or at once
    /// when `force`d. Their queue time is the oldest item's arrival, so they do not linger twice.
    /// Returns whether it sealed anything.
    pub(crate) fn seal(&mut self, now: Instant, linger: Duration, force: bool) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        if force || now.saturating_duration_since(since) >= linger {
            for record in self.writer.flush() {
                self.queue_record(record, since);
            }
            self.since = None;
            return true;
        }
        false
    }

    /// Bytes the shard still has to take: buffered in the aggregator, queued or in flight.
    pub(crate) fn backlog(&self) -> usize {
        self.writer.buffered_bytes() + self.queue.backlog_bytes()
    }

    /// When this lane next needs attention; with `can_send` false (no room for another call)
    /// only its aggregator's linger counts, a finished call wakes the worker for the rest.
    pub(crate) fn wake_at(
        &self,
        rules: &BatchRules,
        now: Instant,
        flushing: bool,
        can_send: bool,
    ) -> Option<Instant> {
        let seal = self
            .since
            .map(|since| if flushing { now } else { since + rules.linger });
        let send = can_send
            .then(|| self.queue.wake_at(rules, now, flushing))
            .flatten();
        seal.into_iter().chain(send).min()
    }

    /// The shard's queue, to read.
    pub(crate) fn queue_ref(&self) -> &ShardQueue<OutgoingRecord<Tag>> {
        &self.queue
    }

    /// The shard's queue.
    pub(crate) fn queue(&mut self) -> &mut ShardQueue<OutgoingRecord<Tag>> {
        &mut self.queue
    }

    /// Everything in the lane, buffered or queued, oldest first (the stream is gone).
    pub(crate) fn drain_all(&mut self, now: Instant) -> Vec<Waiting<OutgoingRecord<Tag>>> {
        let mut waiting = self.queue.drain_all();
        for record in self.writer.flush() {
            let size = record.size();
            waiting.push(Waiting::new(record, size, now));
        }
        self.since = None;
        waiting
    }

    /// Whether nothing is buffered, queued or in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.since.is_none() && self.queue.is_idle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{JsonLineProcessor, Processor, StringProcessor};
    use crate::producer::rate_limit::ShardBudget;

    const MS: Duration = Duration::from_millis(1);

    fn rules() -> BatchRules {
        BatchRules {
            max_records: 500,
            max_bytes: 1 << 20,
            linger: 100 * MS,
            full_enough_bytes: crate::stream::limits::MIB,
        }
    }

    fn queue<Tag>(now: Instant) -> ShardQueue<OutgoingRecord<Tag>> {
        ShardQueue::new(ShardBudget::new(1_000, 1 << 20, now))
    }

    #[test]
    fn buffered_items_are_sealed_after_their_linger_and_sent_at_once() {
        let now = Instant::now();
        let processor: JsonLineProcessor = JsonLineProcessor::default();
        let mut lane = Lane::new(processor.writer::<u32>(), queue(now));
        for tag in 0..3 {
            let completed = lane
                .push(tag, bytes::Bytes::from_static(b"{}"), "k", None, now)
                .expect("fits");
            assert!(!completed);
        }
        assert_eq!(
            lane.wake_at(&rules(), now, false, true),
            Some(now + 100 * MS)
        );
        assert!(!lane.seal(now + 50 * MS, rules().linger, false));
        assert!(
            lane.queue()
                .take_batch(&rules(), now + 50 * MS, false)
                .is_none(),
            "still buffering"
        );
        assert!(lane.seal(now + 100 * MS, rules().linger, false));
        let batch = lane
            .queue()
            .take_batch(&rules(), now + 100 * MS, false)
            .expect("sealed records are due");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].record.tags, [0, 1, 2]);
    }

    #[test]
    fn a_record_per_item_goes_straight_to_the_queue() {
        let now = Instant::now();
        let processor = StringProcessor::default();
        let mut lane = Lane::new(processor.writer::<u32>(), queue(now));
        assert!(
            lane.push(7, bytes::Bytes::from_static(b"x"), "k", None, now)
                .expect("fits")
        );
        assert!(lane.wake_at(&rules(), now, false, true).is_some());
        assert!(!lane.is_idle());
        assert_eq!(lane.drain_all(now).len(), 1);
        assert!(lane.is_idle());
    }

    #[test]
    fn a_flush_seals_at_once() {
        let now = Instant::now();
        let processor: JsonLineProcessor = JsonLineProcessor::default();
        let mut lane = Lane::new(processor.writer::<u32>(), queue(now));
        lane.push(1, bytes::Bytes::from_static(b"{}"), "k", None, now)
            .expect("fits");
        assert_eq!(lane.wake_at(&rules(), now, true, true), Some(now));
        lane.seal(now, rules().linger, true);
        assert!(lane.queue().take_batch(&rules(), now, true).is_some());
    }
}
