//! When the supervisor may write checkpoints again after the store failed: a growing wait, so an
//! outage costs a few calls instead of one round of writes per acknowledgement.

use std::time::Duration;

use tokio::time::Instant;

/// Consecutive rounds of checkpoint writes that met a retryable store failure.
#[derive(Debug, Default)]
pub(super) struct StoreBackoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl StoreBackoff {
    /// Whether a round of writes may go out at `now`.
    pub(super) fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// A round met a retryable failure at `now`; `delay(n)` is the wait after the n-th failed
    /// round in a row.
    pub(super) fn failed(&mut self, now: Instant, delay: impl FnOnce(u32) -> Duration) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + delay(self.failures));
    }

    /// A round went through: the next one goes out whenever there is something to write.
    pub(super) fn succeeded(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doubling(failures: u32) -> Duration {
        Duration::from_millis(100 * 2u64.pow(failures - 1)).min(Duration::from_secs(1))
    }

    #[test]
    fn waits_grow_with_failures_and_reset_after_a_success() {
        let start = Instant::now();
        let mut backoff = StoreBackoff::default();
        assert!(backoff.ready(start));
        let mut waits = Vec::new();
        for _ in 0..6 {
            backoff.failed(start, doubling);
            let wait = (1..=2_000)
                .map(|ms| start + Duration::from_millis(ms))
                .find(|&t| backoff.ready(t))
                .expect("ready within 2 s");
            waits.push((wait - start).as_millis());
        }
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        backoff.succeeded();
        assert!(backoff.ready(start));
        backoff.failed(start, doubling);
        assert!(
            !backoff.ready(start + Duration::from_millis(99)),
            "starts over at 100 ms"
        );
    }
}
