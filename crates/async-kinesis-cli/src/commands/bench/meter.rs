//! Measures one phase: wall time, process CPU time, peak memory and the library's counters.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::counters::{Counters, Snapshot};
use super::usage::{cpu_time, peak_rss_mib, reset_peak_rss};

/// A phase being measured.
#[derive(Debug)]
pub(crate) struct Meter {
    started: Instant,
    started_unix_s: f64,
    cpu: Duration,
    counters: Option<Arc<Counters>>,
    before: Snapshot,
}

/// What a phase used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// When the phase started, in seconds since the Unix epoch (to line it up with outside
    /// measurements, e.g. of the endpoint's CPU).
    pub(crate) started_unix_s: f64,
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) peak_rss_mib: f64,
    pub(crate) counters: Snapshot,
}

impl Meter {
    /// Starts measuring now.
    pub(crate) fn start(counters: Option<&Arc<Counters>>) -> Self {
        reset_peak_rss();
        let before = counters.map(|c| c.snapshot()).unwrap_or_default();
        Self {
            started: Instant::now(),
            started_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            cpu: cpu_time(),
            counters: counters.cloned(),
            before,
        }
    }

    /// When the phase started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// What the phase used up to now.
    pub(crate) fn stop(&self) -> Measured {
        let wall = self.started.elapsed();
        let cpu = cpu_time().saturating_sub(self.cpu);
        let counters = self
            .counters
            .as_ref()
            .map(|c| c.snapshot().since(&self.before))
            .unwrap_or_default();
        Measured {
            started_unix_s: self.started_unix_s,
            wall,
            cpu,
            peak_rss_mib: peak_rss_mib(),
            counters,
        }
    }
}

impl Measured {
    /// Client CPU seconds per wall second.
    pub(crate) fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Per-second rate of `n`.
    pub(crate) fn per_sec(&self, n: f64) -> f64 {
        n / self.wall.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds per one of `items`.
    pub(crate) fn cpu_us_per(&self, items: u64) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / items.max(1) as f64
    }
}
