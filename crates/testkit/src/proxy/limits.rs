//! Per-shard token buckets: the pure core of limit enforcement. Time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::config::Limits;
use super::counters::ShardKey;

/// A token bucket that may go into debt (for charges known only after the fact).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    level: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` per second and holding `rate × burst`.
    pub(crate) fn new(rate: f64, burst: Duration, now: Instant) -> Self {
        let capacity = rate * burst.as_secs_f64();
        Self {
            rate,
            capacity,
            level: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.rate).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Whether `amount` may be taken now. Amounts above capacity need a full bucket.
    pub(crate) fn can_take(&mut self, amount: f64, now: Instant) -> bool {
        self.refill(now);
        self.level >= amount.min(self.capacity)
    }

    /// Takes `amount`, possibly leaving the bucket in debt.
    pub(crate) fn take(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.level -= amount;
    }

    /// Whether the bucket is not in debt.
    pub(crate) fn in_credit(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.level > 0.0
    }
}

/// The write buckets of one shard.
#[derive(Debug, Clone)]
struct WriteBuckets {
    records: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

/// The read buckets of one shard.
#[derive(Debug, Clone)]
struct ReadBuckets {
    calls: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

/// All shards' buckets, created on first use.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: Limits,
    writes: HashMap<ShardKey, WriteBuckets>,
    reads: HashMap<ShardKey, ReadBuckets>,
}

impl Limiter {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            writes: HashMap::new(),
            reads: HashMap::new(),
        }
    }

    fn bucket(rate: Option<f64>, burst: Duration, now: Instant) -> Option<TokenBucket> {
        rate.map(|r| TokenBucket::new(r, burst, now))
    }

    /// Admits one record of `bytes` (data + partition key) to `shard`, taking its tokens, or refuses it
    /// without taking anything.
    pub(crate) fn admit_write(&mut self, shard: &ShardKey, bytes: u64, now: Instant) -> bool {
        let limits = self.limits;
        let buckets = self
            .writes
            .entry(shard.clone())
            .or_insert_with(|| WriteBuckets {
                records: Self::bucket(limits.write_records_per_sec, limits.burst, now),
                bytes: Self::bucket(limits.write_bytes_per_sec, limits.burst, now),
            });
        let bytes = bytes as f64;
        let records_ok = buckets
            .records
            .as_mut()
            .is_none_or(|b| b.can_take(1.0, now));
        let bytes_ok = buckets
            .bytes
            .as_mut()
            .is_none_or(|b| b.can_take(bytes, now));
        if !(records_ok && bytes_ok) {
            return false;
        }
        if let Some(b) = buckets.records.as_mut() {
            b.take(1.0, now);
        }
        if let Some(b) = buckets.bytes.as_mut() {
            b.take(bytes, now);
        }
        true
    }

    fn read_buckets(&mut self, shard: &ShardKey, now: Instant) -> &mut ReadBuckets {
        let limits = self.limits;
        self.reads
            .entry(shard.clone())
            .or_insert_with(|| ReadBuckets {
                calls: Self::bucket(limits.read_calls_per_sec, limits.burst, now),
                bytes: Self::bucket(limits.read_bytes_per_sec, limits.burst, now),
            })
    }

    /// Admits one GetRecords call on `shard` (taking a call token) or refuses it.
    pub(crate) fn admit_read(&mut self, shard: &ShardKey, now: Instant) -> bool {
        let buckets = self.read_buckets(shard, now);
        let bytes_ok = buckets.bytes.as_mut().is_none_or(|b| b.in_credit(now));
        let calls_ok = buckets.calls.as_mut().is_none_or(|b| b.can_take(1.0, now));
        if !(bytes_ok && calls_ok) {
            return false;
        }
        if let Some(b) = buckets.calls.as_mut() {
            b.take(1.0, now);
        }
        true
    }

    /// Charges the bytes a GetRecords call returned.
    pub(crate) fn charge_read(&mut self, shard: &ShardKey, bytes: u64, now: Instant) {
        if let Some(b) = self.read_buckets(shard, now).bytes.as_mut() {
            b.take(bytes as f64, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard() -> ShardKey {
        ShardKey::new("s", "shardId-000000000000")
    }

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn bucket_starts_full_and_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, Duration::from_secs(1), t0);
        for _ in 0..10 {
            assert!(b.can_take(1.0, t0));
            b.take(1.0, t0);
        }
        assert!(!b.can_take(1.0, t0));
        assert!(!b.can_take(1.0, at(t0, 99)));
        assert!(b.can_take(1.0, at(t0, 100)));
        // Never more than capacity, however long it idles.
        assert!(b.can_take(10.0, at(t0, 60_000)));
        b.take(10.0, at(t0, 60_000));
        assert!(!b.can_take(1.0, at(t0, 60_000)));
    }

    #[test]
    fn oversized_amounts_need_a_full_bucket_and_leave_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, Duration::from_secs(1), t0);
        assert!(b.can_take(250.0, t0));
        b.take(250.0, t0);
        assert!(!b.in_credit(at(t0, 1_500)));
        assert!(b.in_credit(at(t0, 1_510)));
        assert!(!b.can_take(250.0, at(t0, 2_000)));
        assert!(b.can_take(250.0, at(t0, 2_500)));
    }

    #[test]
    fn saturating_writer_gets_burst_plus_rate() {
        let t0 = Instant::now();
        let limits = Limits {
            write_bytes_per_sec: None,
            ..Limits::default()
        };
        let mut limiter = Limiter::new(limits);
        let mut accepted = 0u64;
        // Offer 50 records every 10 ms for 3 s.
        for tick in 0..=300 {
            for _ in 0..50 {
                if limiter.admit_write(&shard(), 10, at(t0, tick * 10)) {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, 1_000 + 3_000);
    }

    #[test]
    fn write_bytes_limit_counts_independently_of_records() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(Limits::default());
        let record = 100 * 1024;
        let admitted = (0..20)
            .filter(|_| limiter.admit_write(&shard(), record, t0))
            .count();
        // 1 MiB holds ten 100 KiB records; the refused ones took nothing.
        assert_eq!(admitted, 10);
        assert!(limiter.admit_write(&shard(), 24 * 1024, t0));
        let other = ShardKey::new("s", "shardId-000000000001");
        assert!(limiter.admit_write(&other, record, t0));
    }

    #[test]
    fn reads_limit_calls_and_block_while_bytes_are_in_debt() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(Limits::default());
        let admitted = (0..8).filter(|_| limiter.admit_read(&shard(), t0)).count();
        assert_eq!(admitted, 5);
        assert!(limiter.admit_read(&shard(), at(t0, 200)));
        // A 10 MiB read leaves 8 MiB of debt: four seconds at 2 MiB/s.
        limiter.charge_read(&shard(), 10 * 1024 * 1024, at(t0, 200));
        assert!(!limiter.admit_read(&shard(), at(t0, 4_000)));
        assert!(limiter.admit_read(&shard(), at(t0, 4_300)));
    }

    #[test]
    fn unlimited_admits_everything() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(Limits::unlimited());
        assert!((0..10_000).all(|_| limiter.admit_write(&shard(), 1 << 20, t0)));
        assert!((0..10_000).all(|_| limiter.admit_read(&shard(), t0)));
    }
}
