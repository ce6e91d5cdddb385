//! Lease timing: how long leases live and how often they are renewed.

use std::time::Duration;

/// How long a lease and a worker's registration live without renewal, and how often they are
/// renewed. The store carries it, so every worker sharing a store agrees on it.
///
/// Always valid: built only by [`LeaseTiming::new`] (or the default), which refuses a heartbeat
/// under a millisecond, a session timeout over a day, and a heartbeat that does not fit three
/// times into the session timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    session_timeout: Duration,
    heartbeat_frequency: Duration,
}

/// Why a [`LeaseTiming`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseTimingError {
    /// A heartbeat under a millisecond would renew without pause.
    #[error("heartbeat_frequency must be at least 1 ms")]
    ZeroHeartbeat,
    /// A session timeout over a day: a lease of a worker that died would block its shard for
    /// longer than any stream's default retention (and deadlines that far out overflow).
    #[error("session_timeout ({session_timeout:?}) must be at most one day")]
    SessionTooLong {
        /// The session timeout asked for.
        session_timeout: Duration,
    },
    /// One late or failed renewal would lose the lease.
    #[error(
        "session_timeout ({session_timeout:?}) must be at least three times heartbeat_frequency \
         ({heartbeat_frequency:?})"
    )]
    HeartbeatTooSlow {
        /// The session timeout asked for.
        session_timeout: Duration,
        /// The heartbeat asked for.
        heartbeat_frequency: Duration,
    },
}

impl LeaseTimingError {
    /// The option to change, named as its builder method.
    pub fn option(&self) -> &'static str {
        match self {
            Self::ZeroHeartbeat | Self::HeartbeatTooSlow { .. } => "heartbeat_frequency",
            Self::SessionTooLong { .. } => "session_timeout",
        }
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(60),
            heartbeat_frequency: Duration::from_secs(15),
        }
    }
}

impl LeaseTiming {
    const MIN_HEARTBEAT: Duration = Duration::from_millis(1);
    const MAX_SESSION: Duration = Duration::from_secs(24 * 60 * 60);

    /// Both durations, checked: a heartbeat of at least 1 ms that fits at least three times
    /// into a session timeout of at most a day. A lease is given up when it would expire
    /// before the next renewal, so three heartbeats per session are what lets one late or
    /// failed renewal pass without losing it. `const`, so a fixed timing can be checked at
    /// compile time.
    ///
    /// # Errors
    /// [`LeaseTimingError`] naming the problem.
    pub const fn new(
        session_timeout: Duration,
        heartbeat_frequency: Duration,
    ) -> Result<Self, LeaseTimingError> {
        if heartbeat_frequency.as_nanos() < Self::MIN_HEARTBEAT.as_nanos() {
            return Err(LeaseTimingError::ZeroHeartbeat);
        }
        if session_timeout.as_nanos() > Self::MAX_SESSION.as_nanos() {
            return Err(LeaseTimingError::SessionTooLong { session_timeout });
        }
        let fits = match heartbeat_frequency.checked_mul(3) {
            Some(thrice) => thrice.as_nanos() <= session_timeout.as_nanos(),
            None => false,
        };
        if !fits {
            return Err(LeaseTimingError::HeartbeatTooSlow {
                session_timeout,
                heartbeat_frequency,
            });
        }
        Ok(Self {
            session_timeout,
            heartbeat_frequency,
        })
    }

    /// A lease (and a worker's registration) not renewed for this long may be taken over
    /// (the Python library's `session_timeout`; default 60 s).
    pub const fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// How often a worker renews its leases and registration and rebalances (the Python
    /// library's `heartbeat_frequency`; default 15 s).
    pub const fn heartbeat_frequency(&self) -> Duration {
        self.heartbeat_frequency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_or_inverted_heartbeat_is_refused() {
        let s = Duration::from_secs;
        assert_eq!(
            LeaseTiming::new(s(60), Duration::ZERO),
            Err(LeaseTimingError::ZeroHeartbeat)
        );
        assert_eq!(
            LeaseTiming::new(s(60), Duration::from_micros(999)),
            Err(LeaseTimingError::ZeroHeartbeat)
        );
        for session in [s(86_401), Duration::MAX] {
            assert_eq!(
                LeaseTiming::new(session, s(1)),
                Err(LeaseTimingError::SessionTooLong {
                    session_timeout: session
                })
            );
        }
        LeaseTiming::new(s(86_400), s(1)).expect("a day is the longest session");
        LeaseTiming::new(Duration::from_millis(3), Duration::from_millis(1))
            .expect("1 ms is the shortest heartbeat");
        for (session, heartbeat) in [
            (s(10), s(20)),
            (s(10), s(5)),
            (s(10), Duration::from_millis(3_334)),
            (s(1), Duration::MAX),
        ] {
            assert!(
                matches!(
                    LeaseTiming::new(session, heartbeat),
                    Err(LeaseTimingError::HeartbeatTooSlow { .. })
                ),
                "{session:?} / {heartbeat:?}"
            );
        }
        let timing = LeaseTiming::new(s(15), s(5)).expect("exactly three times fits");
        assert_eq!(
            (timing.session_timeout(), timing.heartbeat_frequency()),
            (s(15), s(5))
        );
        let default = LeaseTiming::default();
        assert_eq!(
            LeaseTiming::new(default.session_timeout(), default.heartbeat_frequency()),
            Ok(default)
        );
        assert!(
            LeaseTimingError::HeartbeatTooSlow {
                session_timeout: s(10),
                heartbeat_frequency: s(6)
            }
            .to_string()
            .contains("at least three times")
        );
    }
}
