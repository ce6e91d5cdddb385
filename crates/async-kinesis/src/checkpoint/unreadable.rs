//! Entries `list` leaves out because they cannot be read: one warning per call names them.

use super::CheckpointError;

/// The unreadable entries one `list` call met.
#[derive(Debug, Default)]
pub(crate) struct Skipped(Vec<(String, String)>);

impl Skipped {
    /// Notes an entry left out; anything but [`CheckpointError::UnreadableEntry`] is handed back.
    pub(crate) fn skip(&mut self, err: CheckpointError) -> Result<(), CheckpointError> {
        match err {
            CheckpointError::UnreadableEntry { shard_id, detail } => {
                self.0.push((shard_id.into(), detail));
                Ok(())
            }
            other => Err(other),
        }
    }

    /// One warning for the whole call (a listing runs every heartbeat, so one line per call
    /// rather than per entry keeps a damaged table from flooding the log).
    pub(crate) fn warn(self, store: &str, stream: &str) {
        if self.0.is_empty() {
            return;
        }
        let shards: Vec<&str> = self.0.iter().map(|(shard, _)| shard.as_str()).collect();
        let details: Vec<String> = self
            .0
            .iter()
            .map(|(shard, detail)| format!("{shard}: {detail}"))
            .collect();
        tracing::warn!(
            store,
            stream,
            shards = ?shards,
            "left {} unreadable checkpoint entries out of the listing (repair or delete them): {}",
            self.0.len(),
            details.join("; ")
        );
    }
}
