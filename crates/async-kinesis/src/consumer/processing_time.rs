//! How long the application holds the records it is handed, measured per run: the records
//! handed out back to back from the consumer's buffer, until it is empty. Reading the clock once
//! per record costs about as much as the rest of the data path's metrics together, so it is
//! read twice per run, and each record of the run is counted with the run's average.

use tokio::time::Instant;

/// The run of records being handed out.
#[derive(Debug, Default)]
pub(crate) struct ProcessingTimer {
    run_started: Option<Instant>,
    handed: usize,
}

impl ProcessingTimer {
    /// A record is handed out; the first of a run reads the clock (`now`).
    pub(crate) fn handed_out(&mut self, now: impl FnOnce() -> Instant) {
        if self.run_started.is_none() {
            self.run_started = Some(now());
        }
        self.handed += 1;
    }

    /// The application asked for more with nothing left buffered (or stopped): the run is over.
    /// Each of its records' processing time (the run's average, in seconds) and how many there
    /// were; `None` when nothing was handed out since the last run.
    pub(crate) fn run_over(&mut self, now: impl FnOnce() -> Instant) -> Option<(f64, usize)> {
        let started = self.run_started.take()?;
        let handed = std::mem::take(&mut self.handed);
        let seconds = now().saturating_duration_since(started).as_secs_f64();
        Some((seconds / handed as f64, handed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_run_is_timed_once_and_shared_by_its_records() {
        let start = Instant::now();
        let mut timer = ProcessingTimer::default();
        assert_eq!(timer.run_over(|| unreachable!("nothing handed out")), None);
        let mut reads = 0;
        for _ in 0..4 {
            timer.handed_out(|| {
                reads += 1;
                start
            });
        }
        assert_eq!(reads, 1, "one clock read for the run's start");
        let (each, records) = timer
            .run_over(|| start + Duration::from_millis(8))
            .expect("a run");
        assert_eq!(records, 4);
        assert!((each - 0.002).abs() < 1e-12, "{each}");
        assert_eq!(timer.run_over(|| unreachable!("the run was taken")), None);
    }

    #[test]
    fn the_next_run_starts_afresh() {
        let start = Instant::now();
        let mut timer = ProcessingTimer::default();
        timer.handed_out(|| start);
        let _ = timer.run_over(|| start + Duration::from_secs(1));
        timer.handed_out(|| start + Duration::from_secs(5));
        let (each, records) = timer
            .run_over(|| start + Duration::from_secs(6))
            .expect("a run");
        assert_eq!((each, records), (1.0, 1));
    }
}
