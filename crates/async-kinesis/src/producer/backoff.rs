//! Exponential backoff with jitter, as pure arithmetic (the randomness is passed in).

use std::time::Duration;

/// Delays between attempts: `base · 2^(attempt−1)`, capped at `limit`, with "equal jitter":
/// half of the delay is fixed, the other half random, so retries of many records spread out
/// without any of them retrying at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    base: Duration,
    limit: Duration,
}

impl Backoff {
    pub(crate) fn new(base: Duration, limit: Duration) -> Self {
        Self {
            base,
            limit: limit.max(base),
        }
    }

    /// The delay before retry number `attempt` (1 for the first retry), given `jitter` in
    /// `[0, 1)`.
    pub(crate) fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let full = self
            .base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.limit);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_up_to_the_limit() {
        let backoff = Backoff::new(100 * MS, 1_000 * MS);
        let highest: Vec<_> = (1..=6).map(|a| backoff.delay(a, 1.0)).collect();
        assert_eq!(
            highest,
            [
                100 * MS,
                200 * MS,
                400 * MS,
                800 * MS,
                1_000 * MS,
                1_000 * MS
            ]
        );
    }

    #[test]
    fn jitter_spans_the_upper_half() {
        let backoff = Backoff::new(100 * MS, 10_000 * MS);
        assert_eq!(backoff.delay(3, 0.0), 200 * MS);
        assert_eq!(backoff.delay(3, 0.5), 300 * MS);
        assert_eq!(backoff.delay(3, 1.0), 400 * MS);
        assert_eq!(backoff.delay(3, 7.0), 400 * MS, "jitter is clamped");
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let backoff = Backoff::new(100 * MS, Duration::from_secs(120));
        assert_eq!(backoff.delay(u32::MAX, 1.0), Duration::from_secs(120));
        assert_eq!(
            backoff.delay(0, 1.0),
            100 * MS,
            "attempt 0 is treated as the first"
        );
    }

    #[test]
    fn a_limit_below_the_base_is_raised_to_it() {
        let backoff = Backoff::new(500 * MS, 100 * MS);
        assert_eq!(backoff.delay(5, 1.0), 500 * MS);
    }
}
