//! What the bench process itself uses: CPU time (getrusage) and peak resident memory.

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

/// The process's CPU time so far, user plus system.
pub(crate) fn cpu_time() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let to_duration = |t: nix::sys::time::TimeVal| {
                let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
                let micros = u64::try_from(t.tv_usec()).unwrap_or(0);
                Duration::from_secs(secs) + Duration::from_micros(micros)
            };
            to_duration(usage.user_time()) + to_duration(usage.system_time())
        }
        // getrusage(RUSAGE_SELF) cannot fail on Linux; a zero shows as 0 µs, not a panic.
        Err(_) => Duration::ZERO,
    }
}

/// Starts a new peak-memory window: later [`peak_rss_mib`] calls report the peak since this one.
/// Where the kernel does not allow it, the peak stays the process's peak so far.
pub(crate) fn reset_peak_rss() {
    // "5" resets the peak resident set size (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory in MiB since [`reset_peak_rss`] (the process's peak where that was not
/// possible).
pub(crate) fn peak_rss_mib() -> f64 {
    let from_status = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
        });
    let kib = from_status.unwrap_or_else(|| {
        getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| usage.max_rss() as f64)
    });
    kib / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_shows_as_cpu_time_and_memory_as_a_peak() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > before);
        reset_peak_rss();
        let block = vec![1u8; 64 * 1024 * 1024];
        std::hint::black_box(&block);
        assert!(peak_rss_mib() >= 64.0);
    }
}
