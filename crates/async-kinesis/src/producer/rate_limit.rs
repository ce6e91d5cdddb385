//! Per-shard write budget: records/s and bytes/s token buckets, with adaptive slowdown.
//!
//! Pure: the current time is passed in. The worker asks [`ShardBudget::admit`] how many of the
//! records waiting for a shard may be sent now, and [`ShardBudget::ready_at`] when the next one
//! may. Both dimensions are checked together before anything is taken, which a pair of
//! independent rate limiters cannot do without wasting tokens; that is why this is not a
//! general-purpose limiter crate.
//!
//! Adaptive slowdown: each throttled request lowers the shard's rate (multiplicatively, by as
//! much of the request as was throttled, to a floor); each accepted request raises it back
//! (additively) towards the configured rate. The configured limits are AWS's own, so a producer
//! alone on a stream is rarely throttled; other writers to the same stream are what the
//! slowdown is for.
//!
//! Pacing margin: the worker's budgets refill at [`SEND_PACE`] of the configured rate. The
//! service's buckets count arrival times, this one send times; a call that arrives sooner after
//! the previous one than it was sent (network or scheduling jitter) would find the service's
//! bucket a little short, and its last record throttled. The small surplus the service banks
//! meanwhile absorbs such jitter.

use std::time::Duration;

use tokio::time::Instant;

/// Fraction of the configured rate a throttle leaves (multiplicative decrease).
const SLOWDOWN_FACTOR: f64 = 0.7;
/// Lowest fraction of the configured rate the slowdown goes to.
const SLOWDOWN_FLOOR: f64 = 0.1;
/// Fraction of the configured rate regained per accepted request (additive increase).
const RECOVERY_STEP: f64 = 0.05;

/// Fraction of the configured rates the worker paces each shard at (see the module docs).
pub(crate) const SEND_PACE: f64 = 0.98;

/// Slack for floating-point rounding when comparing token counts.
const EPSILON: f64 = 1e-6;

/// One token bucket: `rate` tokens per second, holding at most one second's worth.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    tokens: f64,
}

impl Bucket {
    fn full(rate: f64) -> Self {
        Self { rate, tokens: rate }
    }

    fn capacity(&self, scale: f64) -> f64 {
        self.rate * scale
    }

    fn refill(&mut self, elapsed: Duration, scale: f64) {
        let capacity = self.capacity(scale);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * capacity).min(capacity);
    }

    /// Whether the bucket holds all it can: then a lone record larger than the whole bucket
    /// (a record when the slowed rate is below 1/s, an oversized record) may go.
    fn is_full(&self, scale: f64) -> bool {
        self.tokens + self.slack(scale) >= self.capacity(scale)
    }

    /// Tokens that count as there: rounding slack, and a microsecond of refill, since a wait
    /// computed by [`Bucket::wait_for`] is cut to whole nanoseconds and may end a hair early.
    fn slack(&self, scale: f64) -> f64 {
        (self.capacity(scale) * 1e-6).max(EPSILON)
    }

    /// Whether `taken` plus `amount` more fit, a lone amount also when the bucket is full.
    fn fits(&self, taken: f64, amount: f64, scale: f64) -> bool {
        taken + amount <= self.tokens + self.slack(scale) || (taken == 0.0 && self.is_full(scale))
    }

    /// How long until `amount` tokens are there (zero if they are).
    fn wait_for(&self, amount: f64, scale: f64) -> Duration {
        let missing = amount - self.tokens;
        if missing <= self.slack(scale) {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing / (self.rate * scale))
    }
}

/// The write budget of one shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardBudget {
    records: Bucket,
    bytes: Bucket,
    /// Current fraction of the configured rates (1.0 = full speed).
    scale: f64,
    updated: Instant,
}

impl ShardBudget {
    /// A full budget of `records_per_sec` and `bytes_per_sec`.
    #[cfg(test)]
    pub(crate) fn new(records_per_sec: u32, bytes_per_sec: u32, now: Instant) -> Self {
        Self::with_pace(records_per_sec, bytes_per_sec, 1.0, now)
    }

    /// A full budget of `pace` times `records_per_sec` and `bytes_per_sec`.
    pub(crate) fn with_pace(
        records_per_sec: u32,
        bytes_per_sec: u32,
        pace: f64,
        now: Instant,
    ) -> Self {
        Self {
            records: Bucket::full(f64::from(records_per_sec.max(1)) * pace),
            bytes: Bucket::full(f64::from(bytes_per_sec.max(1)) * pace),
            scale: 1.0,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.records.refill(elapsed, self.scale);
        self.bytes.refill(elapsed, self.scale);
        self.updated = now;
    }

    /// Takes budget for the longest prefix of `sizes` (bytes of each waiting record, in order)
    /// that fits now, and returns its length.
    ///
    /// A lone record is admitted whenever both buckets are full, even if it needs more than a
    /// bucket holds (a record larger than a second of bytes, or one record when throttling
    /// slowed the shard below one record per second), so no record waits forever. The tokens
    /// then go negative and the debt is paid before anything else is admitted.
    pub(crate) fn admit(&mut self, now: Instant, sizes: impl IntoIterator<Item = usize>) -> usize {
        self.refill(now);
        let (mut count, mut bytes) = (0usize, 0f64);
        for size in sizes {
            let size = size as f64;
            let fits_records = self.records.fits(count as f64, 1.0, self.scale);
            let fits_bytes = self.bytes.fits(bytes, size, self.scale);
            if !(fits_records && fits_bytes) {
                break;
            }
            count += 1;
            bytes += size;
        }
        self.records.tokens -= count as f64;
        self.bytes.tokens -= bytes;
        count
    }

    /// When `records` records of `bytes` bytes in all can next be admitted together. Each
    /// amount is capped at what the bucket can hold, so the answer is never "never"; and when
    /// the answer is `now`, [`ShardBudget::admit`] admits at least the first of them (a full
    /// bucket admits a lone record of any size), so a caller waking then never spins.
    pub(crate) fn ready_at(&self, now: Instant, records: usize, bytes: usize) -> Instant {
        let mut budget = self.clone();
        budget.refill(now);
        let record_capacity = budget.records.capacity(budget.scale);
        let byte_capacity = budget.bytes.capacity(budget.scale);
        let records_needed = (records.max(1) as f64).min(record_capacity);
        let bytes_needed = (bytes as f64).min(byte_capacity);
        let wait = budget
            .records
            .wait_for(records_needed, budget.scale)
            .max(budget.bytes.wait_for(bytes_needed, budget.scale));
        now + wait
    }

    /// The service throttled this shard: slow down.
    pub(crate) fn on_throttled(&mut self, now: Instant) {
        self.on_partly_throttled(now, 1.0);
    }

    /// The service throttled `fraction` (0..=1) of a request to this shard: slow down by that
    /// much of a full slowdown. One record of a full call throttled by jitter costs little; a
    /// request throttled whole (another writer takes the shard's budget) costs the full step.
    pub(crate) fn on_partly_throttled(&mut self, now: Instant, fraction: f64) {
        self.refill(now);
        let factor = 1.0 - (1.0 - SLOWDOWN_FACTOR) * fraction.clamp(0.0, 1.0);
        self.scale = (self.scale * factor).max(SLOWDOWN_FLOOR);
        self.records.tokens = self.records.tokens.min(self.records.rate * self.scale);
        self.bytes.tokens = self.bytes.tokens.min(self.bytes.rate * self.scale);
    }

    /// A request to this shard went through without throttling: speed back up.
    pub(crate) fn on_accepted(&mut self) {
        self.scale = (self.scale + RECOVERY_STEP).min(1.0);
    }

    /// The current fraction of the configured rates.
    #[cfg(test)]
    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_full_budget_admits_one_second_of_records() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1 << 20, now);
        assert_eq!(budget.admit(now, std::iter::repeat_n(10, 1_500)), 1_000);
        assert_eq!(budget.admit(now, [10]), 0, "empty until refilled");
        assert_eq!(
            budget.admit(now + SEC / 2, std::iter::repeat_n(10, 1_000)),
            500
        );
    }

    #[test]
    fn bytes_limit_the_prefix_too() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1_000, now);
        assert_eq!(budget.admit(now, [400, 400, 400]), 2);
        // The third record needs 200 more bytes: 0.2 s at 1,000 B/s.
        assert_eq!(
            budget.ready_at(now, 1, 400),
            now + Duration::from_millis(200)
        );
        assert_eq!(
            budget.ready_at(now, 2, 800),
            now + Duration::from_millis(600)
        );
        assert_eq!(budget.admit(now + Duration::from_millis(200), [400]), 1);
    }

    #[test]
    fn admission_is_a_prefix_in_order() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(100, 1_000, now);
        // The second record does not fit; the small third one must not overtake it.
        assert_eq!(budget.admit(now, [600, 600, 10]), 1);
    }

    #[test]
    fn sustained_rate_matches_the_configuration() {
        let start = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1 << 20, start);
        budget.admit(start, std::iter::repeat_n(100, 1_000)); // drain the initial burst
        let mut sent = 0;
        for tick in 1..=1_000u32 {
            sent += budget.admit(
                start + Duration::from_millis(u64::from(tick) * 10),
                std::iter::repeat_n(100, 50),
            );
        }
        // 10 s at 1,000 records/s.
        assert!((9_990..=10_000).contains(&sent), "{sent}");
    }

    #[test]
    fn an_oversized_record_goes_alone_when_the_bucket_is_full() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1_000, now);
        assert_eq!(budget.admit(now, [5_000, 10]), 1);
        assert_eq!(budget.admit(now, [5_000]), 0);
        // It waits for a full bucket (1 s), not for 5 s it can never hold.
        let later = budget.ready_at(now, 1, 5_000);
        assert!(later <= now + Duration::from_secs(6));
        assert_eq!(budget.admit(later, [5_000]), 1);
    }

    #[test]
    fn throttling_slows_down_and_acceptance_recovers() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1 << 20, now);
        budget.on_throttled(now);
        budget.on_throttled(now);
        assert!((budget.scale() - 0.49).abs() < 1e-9);
        // At most the slowed second's worth is admitted.
        assert_eq!(budget.admit(now, std::iter::repeat_n(1, 1_000)), 490);
        for _ in 0..20 {
            budget.on_accepted();
        }
        assert_eq!(budget.scale(), 1.0);
    }

    #[test]
    fn one_record_per_second_after_a_throttle_still_sends() {
        // 1 record/s slowed to 0.7/s: the bucket never holds a whole record, yet a lone record
        // goes whenever it is full, and the budget says so instead of "now" forever.
        let start = Instant::now();
        let mut budget = ShardBudget::new(1, 1 << 20, start);
        budget.on_throttled(start);
        let mut now = start;
        let mut sent = 0;
        for _ in 0..10 {
            now = budget.ready_at(now, 1, 100);
            assert_eq!(budget.admit(now, [100, 100]), 1, "a lone record when full");
            assert_eq!(budget.admit(now, [100]), 0, "then empty");
            assert!(budget.ready_at(now, 1, 100) > now, "and it says to wait");
            sent += 1;
        }
        assert_eq!(sent, 10);
        // Ten records at 0.7/s take about 14 s after the first: never faster than the rate.
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        assert!((12.5..=13.5).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn ready_now_always_admits_one() {
        // Whatever the rates, slowdown and sizes: when ready_at says now, admit takes one.
        let start = Instant::now();
        for records_per_sec in [1, 2, 9, 10, 1_000] {
            for bytes_per_sec in [1, 100, 1 << 20] {
                for throttles in 0..6 {
                    let mut budget = ShardBudget::new(records_per_sec, bytes_per_sec, start);
                    for _ in 0..throttles {
                        budget.on_throttled(start);
                    }
                    let mut now = start;
                    for size in [1, 50, 5_000, 2 << 20] {
                        now = budget.ready_at(now, 3, size * 3);
                        assert!(
                            budget.admit(now, [size, size, size]) >= 1,
                            "{records_per_sec}/s {bytes_per_sec} B/s {throttles} throttles {size} B"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_partial_throttle_slows_down_in_proportion() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1 << 20, now);
        budget.on_partly_throttled(now, 0.1);
        assert!((budget.scale() - 0.97).abs() < 1e-9, "{}", budget.scale());
        budget.on_partly_throttled(now, 1.0);
        assert!((budget.scale() - 0.679).abs() < 1e-9, "{}", budget.scale());
    }

    #[test]
    fn the_worker_pace_is_a_fraction_of_the_configuration() {
        let now = Instant::now();
        let mut budget = ShardBudget::with_pace(1_000, 1 << 20, SEND_PACE, now);
        assert_eq!(budget.admit(now, std::iter::repeat_n(1, 1_000)), 980);
    }

    #[test]
    fn slowdown_has_a_floor() {
        let now = Instant::now();
        let mut budget = ShardBudget::new(1_000, 1 << 20, now);
        for _ in 0..100 {
            budget.on_throttled(now);
        }
        assert_eq!(budget.scale(), SLOWDOWN_FLOOR);
        assert!(budget.ready_at(now, 1_000, 1) <= now + SEC);
    }
}
