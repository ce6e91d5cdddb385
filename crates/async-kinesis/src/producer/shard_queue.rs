//! The records waiting for one shard, and the choice of what to send to it next.
//!
//! Pure: time is passed in. Each shard has one queue and at most one PutRecords call in flight,
//! so records of one partition key (always the same shard) leave in the order they were put, and
//! records that must be retried go back to the front of the queue before anything newer is sent.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

use super::rate_limit::ShardBudget;

/// A record waiting to be sent: the payload and its bookkeeping.
#[derive(Debug)]
pub(crate) struct Waiting<R> {
    /// The record (data, keys and the items inside).
    pub(crate) record: R,
    /// Bytes it counts for: data plus partition key.
    pub(crate) size: usize,
    /// Sends that already failed for it.
    pub(crate) failed_attempts: u32,
    /// When it entered the queue for the first time.
    pub(crate) queued_at: Instant,
    /// Not to be sent before this (backoff after a failure).
    pub(crate) not_before: Instant,
    /// Why its last send failed, for a delivery timeout to report.
    pub(crate) last_error: Option<String>,
}

impl<R> Waiting<R> {
    pub(crate) fn new(record: R, size: usize, now: Instant) -> Self {
        Self {
            record,
            size,
            failed_attempts: 0,
            queued_at: now,
            not_before: now,
            last_error: None,
        }
    }
}

/// Limits of one PutRecords call and when a partial batch is worth sending.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRules {
    /// Most records per call.
    pub(crate) max_records: usize,
    /// Most bytes (data + partition keys) per call.
    pub(crate) max_bytes: usize,
    /// How long a record may wait for a fuller batch.
    pub(crate) linger: Duration,
    /// Queued bytes that make a batch worth sending at once, without the linger (see
    /// [`BatchRules::full_enough`]).
    pub(crate) full_enough_bytes: usize,
}

impl BatchRules {
    /// Half a second of a shard's write budget (`bytes_per_sec`), within the call's limit:
    /// sending less would waste calls; waiting for a whole second would let a full bucket stop
    /// refilling whenever the worker wakes late. Aggregated records reach it with a few records,
    /// which then need not wait for the linger a second time (the aggregator already waited for
    /// their items).
    pub(crate) fn full_enough(bytes_per_sec: usize, max_bytes: usize) -> usize {
        (bytes_per_sec / 2).clamp((crate::stream::limits::MIB / 2).min(max_bytes), max_bytes)
    }
}

/// The queue of one shard.
#[derive(Debug)]
pub(crate) struct ShardQueue<R> {
    waiting: VecDeque<Waiting<R>>,
    waiting_bytes: usize,
    in_flight: bool,
    budget: ShardBudget,
    /// Front records among which a call refused as a whole hides a bad one: they go in calls
    /// of at most `narrow_to` records until each is resolved (see [`ShardQueue::isolate`]).
    suspects: usize,
    narrow_to: usize,
    /// Bytes in the call in flight.
    flight_bytes: usize,
}

impl<R> ShardQueue<R> {
    pub(crate) fn new(budget: ShardBudget) -> Self {
        Self {
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            in_flight: false,
            budget,
            suspects: 0,
            narrow_to: usize::MAX,
            flight_bytes: 0,
        }
    }

    /// The call in flight (of `records` records) was refused as a whole for one record's input:
    /// its records, put back at the front, go again in calls of half the size, and so on down
    /// to one record, so the bad record is isolated and the others are delivered. Returns
    /// whether there is anything to split (false for a call of one record: that one is bad).
    pub(crate) fn isolate(&mut self, records: usize) -> bool {
        if records <= 1 {
            return false;
        }
        self.suspects = self.suspects.max(records);
        self.narrow_to = records.div_ceil(2);
        true
    }

    /// `resolved` records of the call that just finished left the queue for good (delivered or
    /// failed), the rest were put back: the suspects among them are cleared.
    pub(crate) fn resolved(&mut self, resolved: usize) {
        self.suspects = self.suspects.saturating_sub(resolved);
        if self.suspects == 0 {
            self.narrow_to = usize::MAX;
        }
    }

    /// The front record, if any.
    pub(crate) fn front(&self) -> Option<&Waiting<R>> {
        self.waiting.front()
    }

    /// Takes the front records for which `expired` holds (a delivery timeout passed), in order.
    pub(crate) fn expire_front(
        &mut self,
        expired: impl Fn(&Waiting<R>) -> bool,
    ) -> Vec<Waiting<R>> {
        let mut gone = Vec::new();
        while self.waiting.front().is_some_and(&expired) {
            if let Some(waiting) = self.waiting.pop_front() {
                self.waiting_bytes -= waiting.size;
                gone.push(waiting);
            }
        }
        self.resolved(gone.len());
        gone
    }

    /// Adds a new record at the back.
    pub(crate) fn push(&mut self, waiting: Waiting<R>) {
        self.waiting_bytes += waiting.size;
        self.waiting.push_back(waiting);
    }

    /// Puts records of a failed send back at the front, keeping their order.
    pub(crate) fn retry_front(&mut self, records: Vec<Waiting<R>>) {
        for waiting in records.into_iter().rev() {
            self.waiting_bytes += waiting.size;
            self.waiting.push_front(waiting);
        }
    }

    /// Number of records waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits and nothing is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.waiting.is_empty() && !self.in_flight
    }

    /// The budget of this shard, to report throttling and success.
    pub(crate) fn budget_mut(&mut self) -> &mut ShardBudget {
        &mut self.budget
    }

    /// The call in flight finished (its records were resolved or put back).
    pub(crate) fn finish_flight(&mut self) {
        self.in_flight = false;
        self.flight_bytes = 0;
    }

    /// Bytes waiting to be sent or in flight: what the shard still has to take.
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.waiting_bytes + self.flight_bytes
    }

    /// Bytes waiting to be sent.
    #[cfg(test)]
    pub(crate) fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// Whether the front record should go now: the batch is full, the front waited its linger,
    /// or a flush asked for everything.
    fn due(&self, rules: &BatchRules, now: Instant, flushing: bool) -> bool {
        let Some(front) = self.waiting.front() else {
            return false;
        };
        if front.not_before > now {
            return false;
        }
        flushing
            || front.failed_attempts > 0
            || self.is_full(rules)
            || now.saturating_duration_since(front.queued_at) >= rules.linger
    }

    /// Whether the waiting records make a full enough call.
    fn is_full(&self, rules: &BatchRules) -> bool {
        self.waiting.len() >= rules.max_records || self.waiting_bytes >= rules.full_enough_bytes
    }

    /// Takes the next batch to send, if one is due and the budget allows, and marks the shard
    /// in flight. The batch is a prefix of the queue.
    pub(crate) fn take_batch(
        &mut self,
        rules: &BatchRules,
        now: Instant,
        flushing: bool,
    ) -> Option<Vec<Waiting<R>>> {
        if self.in_flight || !self.due(rules, now, flushing) {
            return None;
        }
        // Under a rate limit, wait until the budget covers a full enough call rather than
        // sending each record as soon as it alone fits: a trickle of one-record calls costs a
        // request (and its signing) per record for the same throughput.
        let (wanted, wanted_bytes) = self.prefix(rules.max_records, rules.full_enough_bytes, now);
        if self.budget.ready_at(now, wanted, wanted_bytes) > now {
            return None;
        }
        let max_records = rules.max_records.min(self.narrow_to);
        let (count, _) = self.prefix(max_records, rules.max_bytes, now);
        let admitted = self
            .budget
            .admit(now, self.waiting.iter().take(count).map(|w| w.size));
        if admitted == 0 {
            return None;
        }
        let batch: Vec<_> = self.waiting.drain(..admitted).collect();
        let bytes = batch.iter().map(|w| w.size).sum::<usize>();
        self.waiting_bytes -= bytes;
        self.in_flight = true;
        self.flight_bytes = bytes;
        Some(batch)
    }

    /// The longest prefix of the queue of at most `max_records` records and `max_bytes` bytes
    /// (the front always counts) that no backoff holds back at `at`: (records, bytes).
    fn prefix(&self, max_records: usize, max_bytes: usize, at: Instant) -> (usize, usize) {
        let (mut count, mut bytes) = (0usize, 0usize);
        for waiting in &self.waiting {
            let fits = count < max_records && (count == 0 || bytes + waiting.size <= max_bytes);
            if !fits || (count > 0 && waiting.not_before > at) {
                break;
            }
            count += 1;
            bytes += waiting.size;
        }
        (count, bytes)
    }

    /// When this queue next needs attention (a linger, backoff or budget wait ending), if it
    /// has anything to send and nothing in flight.
    pub(crate) fn wake_at(
        &self,
        rules: &BatchRules,
        now: Instant,
        flushing: bool,
    ) -> Option<Instant> {
        let front = self.waiting.front()?;
        if self.in_flight {
            return None;
        }
        let due_at = if flushing || front.failed_attempts > 0 || self.is_full(rules) {
            front.not_before
        } else {
            front.not_before.max(front.queued_at + rules.linger)
        };
        // The call `take_batch` would want at the time it runs: at `due_at`, or now when that
        // passed (more backoffs may have ended since, making the wanted call larger). Judged at
        // `due_at` alone, a late wake-up would find a smaller call ready that `take_batch`
        // refuses to send, and wake again at once until the budget covers the larger one.
        let (wanted, wanted_bytes) =
            self.prefix(rules.max_records, rules.full_enough_bytes, due_at.max(now));
        Some(due_at.max(self.budget.ready_at(now, wanted, wanted_bytes)))
    }

    /// Empties the queue (the stream is gone): every waiting record, in order.
    pub(crate) fn drain_all(&mut self) -> Vec<Waiting<R>> {
        self.waiting_bytes = 0;
        self.suspects = 0;
        self.narrow_to = usize::MAX;
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn rules() -> BatchRules {
        BatchRules {
            max_records: 3,
            max_bytes: 1_000,
            linger: 100 * MS,
            full_enough_bytes: BatchRules::full_enough(crate::stream::limits::MIB, 1_000),
        }
    }

    fn queue(now: Instant) -> ShardQueue<u32> {
        ShardQueue::new(ShardBudget::new(1_000, 1 << 20, now))
    }

    fn ids(batch: &[Waiting<u32>]) -> Vec<u32> {
        batch.iter().map(|w| w.record).collect()
    }

    #[test]
    fn a_partial_batch_waits_for_its_linger() {
        let now = Instant::now();
        let mut q = queue(now);
        q.push(Waiting::new(1, 10, now));
        assert!(q.take_batch(&rules(), now, false).is_none());
        assert_eq!(q.wake_at(&rules(), now, false), Some(now + 100 * MS));
        let batch = q
            .take_batch(&rules(), now + 100 * MS, false)
            .expect("lingered");
        assert_eq!(ids(&batch), [1]);
    }

    #[test]
    fn a_full_batch_goes_at_once_and_respects_the_record_limit() {
        let now = Instant::now();
        let mut q = queue(now);
        for id in 1..=5 {
            q.push(Waiting::new(id, 10, now));
        }
        let batch = q.take_batch(&rules(), now, false).expect("full");
        assert_eq!(ids(&batch), [1, 2, 3]);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn one_call_in_flight_per_shard() {
        let now = Instant::now();
        let mut q = queue(now);
        for id in 1..=6 {
            q.push(Waiting::new(id, 10, now));
        }
        assert!(q.take_batch(&rules(), now, false).is_some());
        assert!(q.take_batch(&rules(), now, false).is_none(), "in flight");
        assert_eq!(q.wake_at(&rules(), now, false), None);
        q.finish_flight();
        assert_eq!(
            ids(&q.take_batch(&rules(), now, false).expect("next")),
            [4, 5, 6]
        );
    }

    #[test]
    fn the_byte_limit_cuts_a_batch_but_an_oversized_record_still_goes() {
        let now = Instant::now();
        let mut q = queue(now);
        q.push(Waiting::new(1, 600, now));
        q.push(Waiting::new(2, 600, now));
        assert_eq!(
            ids(&q.take_batch(&rules(), now, false).expect("bytes due")),
            [1]
        );
        q.finish_flight();
        q.push(Waiting::new(3, 1_500, now));
        assert_eq!(ids(&q.take_batch(&rules(), now, true).expect("flush")), [2]);
        q.finish_flight();
        assert_eq!(ids(&q.take_batch(&rules(), now, true).expect("alone")), [3]);
    }

    #[test]
    fn a_megabyte_of_records_goes_without_waiting_for_the_linger() {
        let now = Instant::now();
        let mut q = ShardQueue::new(ShardBudget::new(1_000, 10 << 20, now));
        let roomy = BatchRules {
            max_bytes: 10 << 20,
            ..rules()
        };
        q.push(Waiting::new(1, 1 << 20, now));
        assert_eq!(
            ids(&q.take_batch(&roomy, now, false).expect("full enough")),
            [1]
        );
    }

    #[test]
    fn retried_records_go_first_after_their_backoff() {
        let now = Instant::now();
        let mut q = queue(now);
        q.push(Waiting::new(1, 10, now));
        q.push(Waiting::new(2, 10, now));
        let mut batch = q.take_batch(&rules(), now, true).expect("flush");
        q.push(Waiting::new(3, 10, now));
        q.finish_flight();
        for waiting in &mut batch {
            waiting.failed_attempts = 1;
            waiting.not_before = now + 50 * MS;
        }
        q.retry_front(batch);
        assert!(q.take_batch(&rules(), now, true).is_none(), "backing off");
        assert_eq!(q.wake_at(&rules(), now, true), Some(now + 50 * MS));
        // Record 3 never overtakes the retried 1 and 2.
        assert_eq!(
            ids(&q.take_batch(&rules(), now + 50 * MS, false).expect("retry")),
            [1, 2, 3]
        );
    }

    #[test]
    fn the_budget_limits_a_batch_and_says_when_to_come_back() {
        let now = Instant::now();
        let mut q = ShardQueue::new(ShardBudget::new(2, 1 << 20, now));
        for id in 1..=3 {
            q.push(Waiting::new(id, 10, now));
        }
        assert_eq!(
            ids(&q.take_batch(&rules(), now, false).expect("two fit")),
            [1, 2]
        );
        q.finish_flight();
        assert!(q.take_batch(&rules(), now, true).is_none(), "no budget");
        assert_eq!(q.wake_at(&rules(), now, true), Some(now + 500 * MS));
        assert_eq!(
            ids(&q
                .take_batch(&rules(), now + 500 * MS, true)
                .expect("refilled")),
            [3]
        );
    }

    #[test]
    fn under_a_byte_limit_calls_wait_for_a_full_enough_batch_instead_of_trickling() {
        let now = Instant::now();
        // 10 KB/s: a full enough call is 1,000 bytes (the call limit here), ten 100-byte records.
        let rules = BatchRules {
            max_records: 500,
            max_bytes: 1_000,
            linger: 100 * MS,
            full_enough_bytes: BatchRules::full_enough(10_000, 1_000),
        };
        let mut q = ShardQueue::new(ShardBudget::new(1_000, 10_000, now));
        for id in 0..200 {
            q.push(Waiting::new(id, 100, now));
        }
        // The first second's burst goes in full calls.
        for _ in 0..10 {
            assert_eq!(q.take_batch(&rules, now, false).map(|b| b.len()), Some(10));
            q.finish_flight();
        }
        // The budget is empty: 10 ms later one record would fit, but the call waits for ten.
        assert!(q.take_batch(&rules, now + 10 * MS, false).is_none());
        let ready = q
            .wake_at(&rules, now + 10 * MS, false)
            .expect("records wait");
        assert_eq!(ready, now + 100 * MS);
        assert_eq!(
            q.take_batch(&rules, ready, false).map(|b| b.len()),
            Some(10)
        );
    }

    #[test]
    fn a_late_wake_up_after_staggered_backoffs_is_never_told_to_wake_again_at_once() {
        let now = Instant::now();
        let rules = BatchRules {
            max_records: 500,
            max_bytes: 10_000,
            linger: 100 * MS,
            full_enough_bytes: 5_000,
        };
        let mut q = ShardQueue::new(ShardBudget::new(1_000, 10_000, now));
        for id in 0..10 {
            q.push(Waiting::new(id, 1_000, now));
        }
        // A second of bytes goes at once: the budget is empty.
        let mut sent = q.take_batch(&rules, now, true).expect("the burst");
        assert_eq!(sent.len(), 10);
        q.finish_flight();
        // Five come back: the first after 50 ms, the others after 100 ms.
        sent.truncate(5);
        for (n, waiting) in sent.iter_mut().enumerate() {
            waiting.failed_attempts = 1;
            waiting.not_before = now + if n == 0 { 50 * MS } else { 100 * MS };
        }
        q.retry_front(sent);
        // The worker wakes late, at 150 ms: every backoff has ended and the call it wants
        // (5,000 bytes) is not covered yet, so it must not be told to come back at once.
        let late = now + 150 * MS;
        for at in [late, late + 10 * MS, late + 200 * MS] {
            assert!(
                q.take_batch(&rules, at, false).is_none(),
                "not covered at {at:?}"
            );
            let wake = q.wake_at(&rules, at, false).expect("records wait");
            assert!(
                wake > at,
                "a wake-up at once would spin: {wake:?} at {at:?}"
            );
        }
        let wake = q.wake_at(&rules, late, false).expect("records wait");
        assert_eq!(wake, now + 500 * MS);
        assert_eq!(q.take_batch(&rules, wake, false).map(|b| b.len()), Some(5));
    }

    #[test]
    fn whenever_nothing_is_sent_the_next_wake_up_is_later() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let start = Instant::now();
            let rules = BatchRules {
                max_records: rng.random_range(1..=500),
                max_bytes: rng.random_range(1_000..=100_000),
                linger: rng.random_range(0..=200) * MS,
                full_enough_bytes: rng.random_range(500..=100_000),
            };
            let budget = ShardBudget::new(
                rng.random_range(1..=1_000),
                rng.random_range(1_000..=1 << 20),
                start,
            );
            let mut q = ShardQueue::new(budget);
            let mut at = start;
            let mut id = 0u32;
            for _ in 0..200 {
                for _ in 0..rng.random_range(0..4) {
                    let mut waiting = Waiting::new(id, rng.random_range(1..=20_000), at);
                    if rng.random_bool(0.3) {
                        waiting.failed_attempts = 1;
                        waiting.not_before = at + rng.random_range(0..=300) * MS;
                        q.retry_front(vec![waiting]);
                    } else {
                        q.push(waiting);
                    }
                    id += 1;
                }
                let flushing = rng.random_bool(0.2);
                let wake = q.wake_at(&rules, at, flushing);
                match q.take_batch(&rules, at, flushing) {
                    Some(batch) => {
                        assert!(!batch.is_empty());
                        q.finish_flight();
                    }
                    None => {
                        if let Some(wake) = wake {
                            assert!(wake > at, "told to wake at once, nothing sent: {rules:?}");
                        }
                    }
                }
                at += rng.random_range(0..=300) * MS;
            }
        }
    }

    #[test]
    fn a_call_refused_as_a_whole_is_halved_until_the_bad_record_is_alone() {
        let now = Instant::now();
        let rules = BatchRules {
            max_records: 500,
            ..rules()
        };
        let mut q = queue(now);
        // Record 6 of 8 is bad: every call holding it is refused as a whole.
        for id in 1..=8 {
            q.push(Waiting::new(id, 10, now));
        }
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        while let Some(batch) = q.take_batch(&rules, now, true) {
            let n = batch.len();
            if ids(&batch).contains(&6) {
                if q.isolate(n) {
                    q.retry_front(batch);
                } else {
                    failed.extend(ids(&batch));
                    q.resolved(n);
                }
            } else {
                delivered.extend(ids(&batch));
                q.resolved(n);
            }
            q.finish_flight();
        }
        assert_eq!(failed, [6]);
        assert_eq!(delivered, [1, 2, 3, 4, 5, 7, 8], "in order, none lost");
        // Once isolated, calls are full-size again.
        for id in 10..20 {
            q.push(Waiting::new(id, 10, now));
        }
        assert_eq!(q.take_batch(&rules, now, true).map(|b| b.len()), Some(10));
    }

    #[test]
    fn expired_front_records_leave_in_order() {
        let now = Instant::now();
        let mut q = queue(now);
        for id in 1..=4 {
            q.push(Waiting::new(id, 10, now));
        }
        let gone = q.expire_front(|w| w.record <= 2);
        assert_eq!(ids(&gone), [1, 2]);
        assert_eq!(q.front().map(|w| w.record), Some(3));
        assert_eq!(q.waiting_bytes(), 20);
    }

    #[test]
    fn drain_all_returns_everything_in_order() {
        let now = Instant::now();
        let mut q = queue(now);
        for id in 1..=4 {
            q.push(Waiting::new(id, 10, now));
        }
        assert_eq!(ids(&q.drain_all()), [1, 2, 3, 4]);
        assert!(q.is_idle());
    }

    #[test]
    fn full_enough_is_half_a_second_of_the_shard_budget_within_the_call_limit() {
        let mib = crate::stream::limits::MIB;
        assert_eq!(BatchRules::full_enough(mib, 10 * mib), mib / 2);
        assert_eq!(BatchRules::full_enough(4 * mib, 10 * mib), 2 * mib);
        assert_eq!(BatchRules::full_enough(1 << 40, 10 * mib), 10 * mib);
        // A small budget still makes calls of half a megabyte (the bucket lets them through slower).
        assert_eq!(BatchRules::full_enough(100 * 1024, 10 * mib), mib / 2);
        assert_eq!(BatchRules::full_enough(mib, 256 * 1024), 256 * 1024);
    }
}
