//! How failed calls are retried: one policy for the producer, the consumer and the stores.

use std::time::Duration;

use crate::invalid_config::InvalidConfig;

/// Exponential backoff with "equal jitter", and how many attempts an operation gets.
///
/// The delay before retry `n` is `expo_backoff · 2^(n−1)`, capped at `expo_backoff_limit`; half
/// of it is fixed and the other half random, so the retries of many records or shards spread
/// out without any of them retrying at once.
///
/// What `retry_limit` counts: for the producer, the PutRecords calls that carried a record
/// (throttled ones included); for the consumer, the failed calls of a shard's reader in a row
/// (a success starts the count again; throttling does not count).
///
/// ```
/// use std::time::Duration;
/// use async_kinesis::RetryPolicy;
///
/// let retry = RetryPolicy::default()
///     .expo_backoff(Duration::from_millis(50))
///     .expo_backoff_limit(Duration::from_secs(5))
///     .retry_limit(Some(8));
/// retry.validate()?;
/// assert_eq!(retry.delay(1, 1.0), Duration::from_millis(50));
/// assert_eq!(retry.delay(3, 0.0), Duration::from_millis(100)); // half of 200 ms fixed
/// assert_eq!(retry.delay(30, 1.0), Duration::from_secs(5));
/// assert!(retry.gives_up_after(8) && !retry.gives_up_after(7));
/// # Ok::<(), async_kinesis::InvalidConfig>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first delay (default 100 ms).
    pub expo_backoff: Duration,
    /// The longest delay (default 120 s); at least `expo_backoff`.
    pub expo_backoff_limit: Duration,
    /// Attempts before the operation fails for good (`None`: retry forever). The default is
    /// the user's: `Some(10)` for the producer, `None` for the consumer.
    pub retry_limit: Option<u32>,
}

impl Default for RetryPolicy {
    /// 100 ms doubling to 120 s, retrying forever.
    fn default() -> Self {
        Self {
            expo_backoff: Duration::from_millis(100),
            expo_backoff_limit: Duration::from_secs(120),
            retry_limit: None,
        }
    }
}

impl RetryPolicy {
    /// With this first delay.
    #[must_use]
    pub fn expo_backoff(mut self, first: Duration) -> Self {
        self.expo_backoff = first;
        self
    }

    /// With this longest delay.
    #[must_use]
    pub fn expo_backoff_limit(mut self, limit: Duration) -> Self {
        self.expo_backoff_limit = limit;
        self
    }

    /// With this many attempts at most (`None`: forever).
    #[must_use]
    pub fn retry_limit(mut self, attempts: Option<u32>) -> Self {
        self.retry_limit = attempts;
        self
    }

    /// Checks the policy.
    ///
    /// # Errors
    /// A zero first delay, a limit below it, or a retry limit of zero attempts.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.expo_backoff.is_zero() {
            return Err(InvalidConfig::new("expo_backoff", "must be above zero"));
        }
        if self.expo_backoff_limit < self.expo_backoff {
            return Err(InvalidConfig::new(
                "expo_backoff_limit",
                format!(
                    "{:?} is below expo_backoff ({:?})",
                    self.expo_backoff_limit, self.expo_backoff
                ),
            ));
        }
        if self.retry_limit == Some(0) {
            return Err(InvalidConfig::new(
                "retry_limit",
                "counts attempts and must be at least 1 (None retries forever)",
            ));
        }
        Ok(())
    }

    /// Whether an operation that has made `attempts` attempts has no more.
    pub fn gives_up_after(&self, attempts: u32) -> bool {
        self.retry_limit.is_some_and(|limit| attempts >= limit)
    }

    /// The delay before retry number `attempt` (1 for the first retry), given `jitter` in
    /// `[0, 1]` (clamped): `0` gives the fixed half, `1` the whole delay.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let full = self
            .expo_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.expo_backoff_limit.max(self.expo_backoff));
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// [`RetryPolicy::delay`] with random jitter.
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random_range(0.0..=1.0))
    }
}

#[cfg(feature = "dynamodb")]
impl RetryPolicy {
    /// The SDK's standard retry configuration with this policy's attempts and delays, for a
    /// client whose calls the SDK retries itself (the DynamoDB store's).
    ///
    /// # Errors
    /// An invalid policy, or one without a `retry_limit` (the SDK needs a number).
    pub(crate) fn sdk_retry_config(
        &self,
    ) -> Result<aws_smithy_types::retry::RetryConfig, InvalidConfig> {
        self.validate()?;
        let attempts = self.retry_limit.ok_or_else(|| {
            InvalidConfig::new(
                "retry",
                "needs a retry_limit: the SDK retries a bounded number of times",
            )
        })?;
        Ok(aws_smithy_types::retry::RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(self.expo_backoff)
            .with_max_backoff(self.expo_backoff_limit))
    }
}

/// A run of failed calls in a row: every failure grows the backoff, only those that count
/// (not throttling, not a subscription refused as in use or ending idle) move towards the
/// retry limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FailureRun {
    /// Failures in a row, for the backoff.
    pub(crate) in_a_row: u32,
    /// Those of them that count against `retry_limit`.
    pub(crate) counted: u32,
}

impl FailureRun {
    /// One more failure; `counts` when it counts against the retry limit.
    pub(crate) fn fail(&mut self, counts: bool) {
        self.in_a_row = self.in_a_row.saturating_add(1);
        if counts {
            self.counted = self.counted.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(first: Duration, limit: Duration) -> RetryPolicy {
        RetryPolicy::default()
            .expo_backoff(first)
            .expo_backoff_limit(limit)
    }

    #[test]
    fn delays_double_up_to_the_limit() {
        let retry = policy(100 * MS, 1_000 * MS);
        let highest: Vec<_> = (1..=6).map(|a| retry.delay(a, 1.0)).collect();
        assert_eq!(
            highest,
            [100, 200, 400, 800, 1_000, 1_000].map(|ms| ms * MS)
        );
    }

    #[test]
    fn jitter_spans_the_upper_half() {
        let retry = policy(100 * MS, 10_000 * MS);
        assert_eq!(retry.delay(3, 0.0), 200 * MS);
        assert_eq!(retry.delay(3, 0.5), 300 * MS);
        assert_eq!(retry.delay(3, 1.0), 400 * MS);
        assert_eq!(retry.delay(3, 7.0), 400 * MS, "jitter is clamped");
        for _ in 0..100 {
            let d = retry.jittered_delay(3);
            assert!((200 * MS..=400 * MS).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let retry = RetryPolicy::default();
        assert_eq!(retry.delay(u32::MAX, 1.0), Duration::from_secs(120));
        assert_eq!(
            retry.delay(0, 1.0),
            100 * MS,
            "attempt 0 counts as the first"
        );
    }

    #[test]
    fn a_run_counts_every_failure_for_backoff_and_only_some_for_the_limit() {
        let retry = RetryPolicy::default().retry_limit(Some(2));
        let mut run = FailureRun::default();
        for _ in 0..5 {
            run.fail(false); // throttled
        }
        run.fail(true);
        assert_eq!(
            run,
            FailureRun {
                in_a_row: 6,
                counted: 1
            }
        );
        assert!(!retry.gives_up_after(run.counted), "throttles do not count");
        run.fail(true);
        assert!(retry.gives_up_after(run.counted));
    }

    #[cfg(feature = "dynamodb")]
    #[test]
    fn the_sdk_configuration_carries_attempts_and_delays() {
        let retry = policy(50 * MS, 2_000 * MS).retry_limit(Some(4));
        let sdk = retry.sdk_retry_config().expect("valid");
        assert_eq!(sdk.max_attempts(), 4);
        assert_eq!(sdk.initial_backoff(), 50 * MS);
        assert_eq!(sdk.max_backoff(), 2_000 * MS);
        let forever = RetryPolicy::default().sdk_retry_config();
        assert_eq!(forever.expect_err("no limit").option, "retry");
    }

    #[test]
    fn limits_count_attempts_and_none_retries_forever() {
        let retry = RetryPolicy::default();
        assert!(!retry.gives_up_after(u32::MAX));
        let three = retry.retry_limit(Some(3));
        assert!(!three.gives_up_after(2));
        assert!(three.gives_up_after(3));
    }

    #[test]
    fn the_old_silently_raised_limit_is_refused() {
        let err = policy(500 * MS, 100 * MS).validate().expect_err("refused");
        assert_eq!(err.option, "expo_backoff_limit");
        assert_eq!(
            policy(Duration::ZERO, MS)
                .validate()
                .expect_err("refused")
                .option,
            "expo_backoff"
        );
        let zero = RetryPolicy::default().retry_limit(Some(0));
        assert_eq!(zero.validate().expect_err("refused").option, "retry_limit");
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
