//! What a worker process reports, one JSON object per line.

use serde::{Deserialize, Serialize};

/// One line of a worker's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// The consumer was built and is reading.
    Ready {
        /// The worker id.
        worker: String,
    },
    /// A record was handed to the application.
    Record {
        /// The worker id.
        worker: String,
        /// Its shard.
        shard: String,
        /// The item's key.
        k: String,
        /// The item's number within its key.
        n: u64,
        /// Wall-clock nanoseconds.
        t: u64,
    },
    /// The store accepted a checkpoint.
    Checkpoint {
        /// The shard.
        shard: String,
        /// The lease holder.
        owner: String,
        /// The claim's fencing token.
        token: u64,
        /// The position written.
        position: String,
        /// Wall-clock nanoseconds when the write started.
        started: u64,
        /// ... and when it was acknowledged.
        finished: u64,
    },
    /// The consumer reported an error item.
    Error {
        /// The worker id.
        worker: String,
        /// The error, displayed with its causes.
        message: String,
    },
    /// The worker stopped after a clean shutdown.
    Shutdown {
        /// The worker id.
        worker: String,
        /// Whether every handed-out record was acknowledged and every lease released.
        clean: bool,
    },
}

impl Event {
    /// The event as one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|err| format!("{{\"unprintable\":\"{err}\"}}"))
    }
}
