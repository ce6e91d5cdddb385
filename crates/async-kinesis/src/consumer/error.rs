//! What the consumer reports: configuration errors from `build`, and error items of the stream.

use crate::ids::{SequenceNumber, ShardId};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::checkpoint::CheckpointError;
use crate::error::Error;
use crate::invalid_config::InvalidConfig;
use crate::processor::{DecodeError, ReadError};

/// Why [`ConsumerBuilder::build`](super::ConsumerBuilder::build) failed; nothing was started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An option is out of range or options contradict each other; no call was made.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
    /// The stream could not be set up: an invalid name, a missing stream (unless
    /// `create_stream`), one that did not become usable in time, unreachable Kinesis, or a
    /// fan-out consumer that could not be registered.
    #[error("stream {stream}: setup failed")]
    Stream {
        /// The stream as addressed.
        stream: String,
        /// The cause.
        #[source]
        source: Error,
    },
}

impl BuildError {
    /// Whether building again later can succeed (a throttled, unreachable or not yet usable
    /// stream); `false` for bad options, a missing stream, denied access.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidConfig(_) => false,
            Self::Stream { source, .. } => source.is_retryable(),
        }
    }
}

/// An error item of the consumer's record stream.
///
/// Error items do not end the stream: other shards (and, for [`ConsumeError::Poison`] with a
/// skipping policy, the same shard) keep going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Listing the stream's shards failed (it is retried), or the stream is gone.
    #[error("stream {stream}: shard discovery or setup failed")]
    Stream {
        /// The stream as addressed.
        stream: String,
        /// The cause.
        #[source]
        source: Error,
    },
    /// Reading a shard failed for good (retries exhausted, access denied); the shard stopped.
    #[error("shard {shard_id} stopped after a read failure")]
    Shard {
        /// The shard.
        shard_id: ShardId,
        /// The cause.
        #[source]
        source: Error,
    },
    /// The shard (or its stream) no longer exists; the shard stopped.
    #[error("shard {shard_id} no longer exists")]
    ShardGone {
        /// The shard.
        shard_id: ShardId,
        /// What the service said.
        #[source]
        source: Error,
    },
    /// A record could not be decoded. The raw record comes with it; what happened next is in
    /// [`PoisonRecord::action`]. The message says what was wrong with it; `source()` is the
    /// underlying parser's error (or the dead-letter callback's, when that failed).
    #[error(transparent)]
    Poison(Box<PoisonRecord>),
    /// The consumer stopped (shut down, dropped, or the stream is gone) before the awaited
    /// event.
    #[error("the consumer has stopped")]
    Closed,
    /// The shard's reader panicked (in a deserializer, a dead-letter callback or a metrics
    /// recorder): the shard stopped here and its lease was released for another worker (or a
    /// restart) to read it from its last checkpoint. This worker does not claim it again.
    #[error("shard {shard_id} stopped: its reader panicked: {message}")]
    ReaderPanicked {
        /// The shard.
        shard_id: ShardId,
        /// The panic's message.
        message: String,
    },
    /// The consumer's supervisor panicked: this is the stream's last item. Leases it held
    /// expire after the session timeout.
    #[error("the consumer stopped: its supervisor panicked: {message}")]
    SupervisorPanicked {
        /// The panic's message.
        message: String,
    },
    /// The checkpoint store refused or failed a write; with `NotOwned` the lease was lost and the
    /// shard stopped here.
    #[error("checkpoint of shard {shard_id} failed")]
    Checkpoint {
        /// The shard.
        shard_id: ShardId,
        /// The store's error.
        #[source]
        source: CheckpointError,
    },
}

impl ConsumeError {
    /// Whether the failure may go away by itself (throttling, transient service or store errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Stream { source, .. } | Self::Shard { source, .. } => source.is_retryable(),
            Self::Checkpoint { source, .. } => source.is_retryable(),
            Self::ShardGone { .. }
            | Self::Poison(_)
            | Self::ReaderPanicked { .. }
            | Self::SupervisorPanicked { .. }
            | Self::Closed => false,
        }
    }

    /// The shard the error is about, if any.
    pub fn shard_id(&self) -> Option<&str> {
        match self {
            Self::Shard { shard_id, .. }
            | Self::ShardGone { shard_id, .. }
            | Self::Checkpoint { shard_id, .. }
            | Self::ReaderPanicked { shard_id, .. } => Some(shard_id),
            Self::Poison(poison) => Some(&poison.shard_id),
            Self::Stream { .. } | Self::SupervisorPanicked { .. } | Self::Closed => None,
        }
    }

    /// A short label for the `consumer_errors_total{error_type}` metric.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::Stream { .. } => "stream",
            Self::Shard { .. } => "shard",
            Self::ShardGone { .. } => "shard_gone",
            Self::Poison(_) => "poison",
            Self::Checkpoint { .. } => "checkpoint",
            Self::ReaderPanicked { .. } | Self::SupervisorPanicked { .. } => "panic",
            Self::Closed => "closed",
        }
    }
}

/// What the consumer did with an undecodable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonAction {
    /// Skipped: checkpoints move past it.
    Skipped,
    /// Handed to the dead-letter callback, which accepted it; checkpoints move past it.
    DeadLettered,
    /// The shard stopped before it (policy `Stop`, or the dead-letter callback failed); the
    /// checkpoint stays before it.
    Stopped,
}

/// A record (or one item inside it) that the processor could not decode, with its position.
///
/// As an error, it reads "undecodable record in shard S at SEQ/SUB: WHAT WAS WRONG (ACTION)";
/// its `source()` is the dead-letter callback's error when that failed, otherwise the
/// [`ReadError`]'s own cause (the JSON or protobuf parser's error), if any.
#[derive(Debug)]
#[non_exhaustive]
pub struct PoisonRecord {
    /// The shard.
    pub shard_id: ShardId,
    /// The Kinesis record's sequence number.
    pub sequence_number: SequenceNumber,
    /// Position of the failed item inside the record.
    pub sub_sequence: u64,
    /// The record's partition key.
    pub partition_key: Arc<str>,
    /// The whole record's data, as read.
    pub data: Bytes,
    /// When Kinesis received the record.
    pub arrival_time: Option<SystemTime>,
    /// Why it could not be read.
    pub error: ReadError,
    /// What the consumer did with it.
    pub action: PoisonAction,
    /// The dead-letter callback's error, when it failed.
    pub dead_letter_error: Option<crate::processor::BoxError>,
}

impl PoisonRecord {
    /// The chain of this crate's decode errors from [`Self::error`] down (each one's message
    /// says what was wrong, none repeats its cause's), and the first foreign cause below them
    /// (the JSON or protobuf parser's error).
    fn what(
        &self,
    ) -> (
        Vec<&(dyn std::error::Error + 'static)>,
        Option<&(dyn std::error::Error + 'static)>,
    ) {
        let mut ours: Vec<&(dyn std::error::Error + 'static)> = vec![&self.error];
        let mut cause = std::error::Error::source(&self.error);
        while let Some(next) = cause.filter(|e| e.is::<DecodeError>() || e.is::<ReadError>()) {
            ours.push(next);
            cause = next.source();
        }
        (ours, cause)
    }
}

impl std::fmt::Display for PoisonRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "undecodable record in shard {} at {}/{}",
            self.shard_id, self.sequence_number, self.sub_sequence
        )?;
        for error in self.what().0 {
            write!(f, ": {error}")?;
        }
        write!(f, " ({:?}", self.action)?;
        if self.dead_letter_error.is_some() {
            f.write_str(": the dead-letter callback failed")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for PoisonRecord {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.dead_letter_error {
            Some(err) => Some(err.as_ref()),
            None => self.what().1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use std::error::Error as _;

    fn poison(error: ReadError, dead_letter: Option<&str>) -> ConsumeError {
        ConsumeError::Poison(Box::new(PoisonRecord {
            shard_id: "shardId-000000000001".into(),
            sequence_number: "4950".into(),
            sub_sequence: 2,
            partition_key: "k".into(),
            data: Bytes::from_static(b"{oops"),
            arrival_time: None,
            error,
            action: if dead_letter.is_some() {
                PoisonAction::Stopped
            } else {
                PoisonAction::Skipped
            },
            dead_letter_error: dead_letter.map(|text| text.into()),
        }))
    }

    #[test]
    fn a_poison_record_says_what_was_wrong_and_chains_its_cause() {
        let digest = poison(ReadError::KplDigestMismatch, None);
        assert_eq!(
            digest.to_string(),
            "undecodable record in shard shardId-000000000001 at 4950/2: KPL record digest \
             mismatch (corrupt aggregate) (Skipped)"
        );
        assert!(digest.source().is_none(), "the message says it all");
        let json = serde_json::from_slice::<serde_json::Value>(b"{oops").expect_err("invalid");
        let json_text = json.to_string();
        let item = poison(
            ReadError::Item {
                sub_sequence: 2,
                source: crate::processor::DecodeError::Json(json),
            },
            None,
        );
        assert_eq!(
            item.to_string(),
            "undecodable record in shard shardId-000000000001 at 4950/2: item 2 of the record \
             could not be decoded: invalid JSON (Skipped)"
        );
        let source = item.source().expect("the parser's error");
        assert!(source.is::<serde_json::Error>(), "{source:?}");
        assert_eq!(source.to_string(), json_text);
        let stopped = poison(ReadError::KplDigestMismatch, Some("sink down"));
        assert!(
            stopped
                .to_string()
                .ends_with("(Stopped: the dead-letter callback failed)")
        );
        assert_eq!(
            stopped.source().expect("callback error").to_string(),
            "sink down"
        );
    }

    #[test]
    fn retryability_follows_the_cause() {
        let throttled = ConsumeError::Shard {
            shard_id: "s".into(),
            source: Error::Service {
                operation: "GetRecords",
                class: ErrorClass::Throttling,
                code: "ProvisionedThroughputExceededException".into(),
                message: String::new(),
            },
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.shard_id(), Some("s"));
        let config = BuildError::from(InvalidConfig::new("record_limit", "too big"));
        assert!(!config.is_retryable());
        assert_eq!(config.to_string(), "invalid option record_limit: too big");
    }
}
