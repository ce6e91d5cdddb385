//! Latency samples and their percentiles.

use std::time::Duration;

use serde::Serialize;

/// Latency samples, in microseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latencies {
    micros: Vec<u64>,
}

/// p50 / p95 / p99 of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Latencies {
    /// Room for `n` samples.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            micros: Vec::with_capacity(n),
        }
    }

    /// Adds one sample.
    pub(crate) fn push(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// The percentiles (nearest rank), `None` without samples.
    pub(crate) fn percentiles(mut self) -> Option<Percentiles> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        let at = |p: f64| {
            let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
            self.micros[rank.clamp(1, self.micros.len()) - 1] as f64 / 1_000.0
        };
        Some(Percentiles {
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples = Latencies::with_capacity(100);
        for ms in (1..=100).rev() {
            samples.push(Duration::from_millis(ms));
        }
        let p = samples.percentiles().expect("samples");
        assert_eq!((p.p50_ms, p.p95_ms, p.p99_ms), (50.0, 95.0, 99.0));
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_is_none() {
        let mut samples = Latencies::default();
        samples.push(Duration::from_micros(1_500));
        let p = samples.percentiles().expect("one sample");
        assert_eq!((p.p50_ms, p.p99_ms), (1.5, 1.5));
        assert_eq!(Latencies::default().percentiles(), None);
    }
}
