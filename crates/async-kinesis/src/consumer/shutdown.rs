//! What a shutdown achieved.

use super::error::ConsumeError;

/// The result of [`Consumer::shutdown`](super::Consumer::shutdown).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Records handed out but not acknowledged by the deadline; they are delivered again after
    /// a restart. Under `AckPolicy::OnNextPoll` the record handed out last is not counted: the
    /// shutdown hands it back unacknowledged (it too is delivered again) instead of waiting.
    pub unacked_records: usize,
    /// Leases given back.
    pub leases_released: usize,
    /// Shards read to their end and recorded as finished.
    pub shards_finished: usize,
    /// Store failures while releasing.
    pub errors: Vec<ConsumeError>,
}

impl ShutdownReport {
    /// Whether everything handed out was acknowledged and every lease released.
    pub fn is_clean(&self) -> bool {
        self.unacked_records == 0 && self.errors.is_empty()
    }
}
