//! The one error for an option out of range or options that contradict each other.

/// An option a builder or config refused before anything was started: which one, and why.
///
/// Every builder reports a bad option with this type (inside its own error:
/// [`Error::InvalidConfig`](crate::Error::InvalidConfig) from the producer and the stream
/// setup, [`BuildError::InvalidConfig`](crate::consumer::BuildError::InvalidConfig) from the
/// consumer, the DynamoDB store's error from its builder).
///
/// ```
/// use async_kinesis::{InvalidConfig, RetryPolicy};
/// use std::time::Duration;
///
/// let retry = RetryPolicy::default().expo_backoff(Duration::ZERO);
/// let err: InvalidConfig = retry.validate().unwrap_err();
/// assert_eq!(err.option, "expo_backoff");
/// assert!(err.to_string().starts_with("invalid option expo_backoff: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid option {option}: {reason}")]
#[non_exhaustive]
pub struct InvalidConfig {
    /// The option, named as its builder method.
    pub option: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidConfig {
    /// `option` is refused for `reason`.
    pub fn new(option: &'static str, reason: impl Into<String>) -> Self {
        Self {
            option,
            reason: reason.into(),
        }
    }
}
