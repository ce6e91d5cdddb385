//! The physical floor: the work every item needs whatever the client, measured on this machine
//! in the same run, so each figure can be shown next to it.
//!
//! Producing a record: its data base64-encoded into the JSON body of PutRecords, and that body
//! hashed with SHA-256 for the SigV4 signature. Reading one: base64-decoding it. A KPL aggregate
//! also carries an MD5 digest of its content, computed on write and checked on read.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

/// Floor CPU time per item, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Floor {
    /// base64 + SHA-256 of the encoded data (+ MD5 for KPL).
    pub(crate) produce_us: f64,
    /// base64 decode (+ MD5 for KPL).
    pub(crate) consume_us: f64,
}

/// How much data each measurement covers: enough to time, little enough to be quick.
const BYTES_PER_ROUND: usize = 8 * 1024 * 1024;

/// Measures the floor per item of `item_bytes` bytes; `kpl` adds the aggregate's MD5.
pub(crate) fn measure(item_bytes: usize, kpl: bool) -> Floor {
    let item_bytes = item_bytes.max(1);
    let data = vec![b'x'; item_bytes];
    let encoded = STANDARD.encode(&data);
    let rounds = (BYTES_PER_ROUND / item_bytes).max(16);
    let mut buffer = String::with_capacity(encoded.len());
    let mut decoded = Vec::with_capacity(item_bytes);
    let produce = best_of(3, rounds, || {
        buffer.clear();
        STANDARD.encode_string(&data, &mut buffer);
        let body_hash = <sha2::Sha256 as sha2::Digest>::digest(buffer.as_bytes());
        std::hint::black_box(body_hash);
        if kpl {
            std::hint::black_box(<md5::Md5 as md5::Digest>::digest(&data));
        }
    });
    let consume = best_of(3, rounds, || {
        decoded.clear();
        let _ = STANDARD.decode_vec(encoded.as_bytes(), &mut decoded);
        std::hint::black_box(&decoded);
        if kpl {
            std::hint::black_box(<md5::Md5 as md5::Digest>::digest(&decoded));
        }
    });
    Floor {
        produce_us: produce.as_secs_f64() * 1e6,
        consume_us: consume.as_secs_f64() * 1e6,
    }
}

/// The fastest of `tries` timings of `rounds` calls, per call. Timed in process CPU time, as
/// the client figures are: on a loaded machine wall time counts other processes' turns too.
fn best_of(tries: usize, rounds: usize, mut work: impl FnMut()) -> Duration {
    (0..tries)
        .map(|_| {
            let started = super::usage::cpu_time();
            for _ in 0..rounds {
                work();
            }
            super::usage::cpu_time().saturating_sub(started)
                / u32::try_from(rounds).unwrap_or(u32::MAX)
        })
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_a_positive_time_per_item() {
        // Only sanity: which is faster is a benchmark's business, not a test's.
        for kpl in [false, true] {
            let floor = measure(64 * 1024, kpl);
            assert!(floor.produce_us > 0.0 && floor.produce_us.is_finite());
            assert!(floor.consume_us > 0.0 && floor.consume_us.is_finite());
        }
    }
}
