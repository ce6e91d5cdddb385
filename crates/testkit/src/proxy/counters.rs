//! What the proxy saw: calls per operation, and per shard the records accepted, throttled and failed by
//! injected faults, bytes written and read, each also per second.

use std::collections::BTreeMap;
use std::time::Instant;

/// A shard of a stream, as counters name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardKey {
    /// The stream name (taken from the ARN when a request named the stream by ARN).
    pub stream: String,
    /// The shard id.
    pub shard_id: String,
}

impl ShardKey {
    /// A shard key.
    pub fn new(stream: impl Into<String>, shard_id: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            shard_id: shard_id.into(),
        }
    }
}

/// Counts for one second of one shard. Second `n` of [`ShardCounters::per_second`] covers
/// `[n, n + 1)` seconds after the proxy started; records count in the second they were admitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondCounters {
    /// Records the emulator stored.
    pub accepted_records: u64,
    /// Bytes (data + partition key) of those records.
    pub accepted_bytes: u64,
    /// Records refused with ProvisionedThroughputExceededException by the limits.
    pub throttled_records: u64,
    /// GetRecords calls that were forwarded.
    pub get_records_calls: u64,
    /// GetRecords calls refused by the limits.
    pub throttled_get_records: u64,
    /// Records returned by GetRecords.
    pub read_records: u64,
    /// Bytes (data + partition key) returned by GetRecords.
    pub read_bytes: u64,
}

impl SecondCounters {
    fn add(&mut self, other: &SecondCounters) {
        self.accepted_records += other.accepted_records;
        self.accepted_bytes += other.accepted_bytes;
        self.throttled_records += other.throttled_records;
        self.get_records_calls += other.get_records_calls;
        self.throttled_get_records += other.throttled_get_records;
        self.read_records += other.read_records;
        self.read_bytes += other.read_bytes;
    }
}

/// Totals for one shard, plus the same counts per second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardCounters {
    /// The totals over the proxy's life (since the last reset).
    pub total: SecondCounters,
    /// Records failed by an injected fault (not by the limits).
    pub faulted_records: u64,
    /// Counts per second since the proxy started; index = whole seconds elapsed.
    pub per_second: Vec<SecondCounters>,
}

/// A copy of every counter at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    calls: BTreeMap<String, u64>,
    shards: BTreeMap<ShardKey, ShardCounters>,
    routing_mismatches: u64,
}

impl CountersSnapshot {
    /// Records the emulator stored on a different shard than the proxy routed them to (and charged
    /// limits on). Non-zero only while a shard map is stale, e.g. right after resharding.
    pub fn routing_mismatches(&self) -> u64 {
        self.routing_mismatches
    }

    /// Calls the proxy received for `operation` (e.g. `"PutRecords"`), whatever their outcome.
    pub fn calls(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls per operation.
    pub fn calls_by_operation(&self) -> &BTreeMap<String, u64> {
        &self.calls
    }

    /// The counters of one shard (`None` if the proxy never routed anything to it).
    pub fn shard(&self, stream: &str, shard_id: &str) -> Option<&ShardCounters> {
        self.shards.get(&ShardKey::new(stream, shard_id))
    }

    /// Every shard the proxy routed something to.
    pub fn shards(&self) -> &BTreeMap<ShardKey, ShardCounters> {
        &self.shards
    }

    /// The totals over all shards of `stream`.
    pub fn stream_total(&self, stream: &str) -> SecondCounters {
        let mut total = SecondCounters::default();
        for (_, counters) in self.shards.iter().filter(|(k, _)| k.stream == stream) {
            total.add(&counters.total);
        }
        total
    }

    /// Records failed by injected faults over all shards of `stream`.
    pub fn stream_faulted_records(&self, stream: &str) -> u64 {
        self.shards
            .iter()
            .filter(|(k, _)| k.stream == stream)
            .map(|(_, c)| c.faulted_records)
            .sum()
    }
}

/// The live counters behind the snapshots.
#[derive(Debug)]
pub(crate) struct Counters {
    epoch: Instant,
    snapshot: CountersSnapshot,
}

impl Counters {
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            snapshot: CountersSnapshot::default(),
        }
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        self.snapshot.clone()
    }

    pub(crate) fn reset(&mut self) {
        self.snapshot = CountersSnapshot::default();
    }

    pub(crate) fn count_call(&mut self, operation: &str) {
        *self.snapshot.calls.entry(operation.to_owned()).or_default() += 1;
    }

    /// Adds `delta` to `shard`'s totals and to the second that contains `at`.
    pub(crate) fn add(&mut self, shard: &ShardKey, at: Instant, delta: SecondCounters) {
        let second = usize::try_from(at.saturating_duration_since(self.epoch).as_secs())
            .unwrap_or(usize::MAX);
        let counters = self.snapshot.shards.entry(shard.clone()).or_default();
        counters.total.add(&delta);
        if counters.per_second.len() <= second {
            counters
                .per_second
                .resize(second.saturating_add(1), SecondCounters::default());
        }
        if let Some(slot) = counters.per_second.get_mut(second) {
            slot.add(&delta);
        }
    }

    pub(crate) fn count_routing_mismatch(&mut self) {
        self.snapshot.routing_mismatches += 1;
    }

    pub(crate) fn add_faulted(&mut self, shard: &ShardKey, records: u64) {
        self.snapshot
            .shards
            .entry(shard.clone())
            .or_default()
            .faulted_records += records;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_land_in_their_second_and_in_the_totals() {
        let t0 = Instant::now();
        let mut counters = Counters::new(t0);
        let shard = ShardKey::new("s", "a");
        let one = SecondCounters {
            accepted_records: 1,
            accepted_bytes: 10,
            ..SecondCounters::default()
        };
        counters.add(&shard, t0 + Duration::from_millis(100), one);
        counters.add(&shard, t0 + Duration::from_millis(2_500), one);
        counters.add(&shard, t0 + Duration::from_millis(2_999), one);
        counters.add_faulted(&shard, 3);
        counters.count_call("PutRecords");
        counters.count_call("PutRecords");
        let snap = counters.snapshot();
        let c = snap.shard("s", "a").expect("counted shard");
        assert_eq!(c.total.accepted_records, 3);
        assert_eq!(c.total.accepted_bytes, 30);
        assert_eq!(c.faulted_records, 3);
        let per_second: Vec<u64> = c.per_second.iter().map(|s| s.accepted_records).collect();
        assert_eq!(per_second, [1, 0, 2]);
        assert_eq!(snap.calls("PutRecords"), 2);
        assert_eq!(snap.calls("GetRecords"), 0);
        assert_eq!(snap.stream_total("s").accepted_records, 3);
        assert_eq!(snap.stream_faulted_records("s"), 3);
        assert_eq!(snap.stream_total("other"), SecondCounters::default());
        counters.reset();
        assert_eq!(counters.snapshot(), CountersSnapshot::default());
    }
}
