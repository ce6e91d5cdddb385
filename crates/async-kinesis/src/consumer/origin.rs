//! Where reading a shard starts, and how that is asked of GetShardIterator and SubscribeToShard.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_kinesis::types::ShardIteratorType;

use crate::checkpoint::{Position, StartingPoint};

/// Where a shard without records handed out starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartAt {
    /// After a checkpoint.
    Resume(Position),
    TrimHorizon,
    Latest,
    AtTimestamp(SystemTime),
    /// At this record (AT_SEQUENCE_NUMBER), as the user asked.
    AtSequence(Arc<str>),
}

impl From<StartingPoint> for StartAt {
    /// Where a shard whose first start was recorded starts again.
    fn from(point: StartingPoint) -> Self {
        match point {
            StartingPoint::AtTimestamp(at) if at == super::supervisor::SHARD_BEGINNING => {
                Self::TrimHorizon
            }
            StartingPoint::AtTimestamp(at) => Self::AtTimestamp(at),
            StartingPoint::AtSequence(sequence) => Self::AtSequence(sequence.into()),
        }
    }
}

/// Where a read of the shard begins, as GetShardIterator and SubscribeToShard both take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    After(Arc<str>),
    At(Arc<str>),
    TrimHorizon,
    Latest,
    AtTimestamp(SystemTime),
}

impl Origin {
    pub(crate) fn iterator_type(&self) -> ShardIteratorType {
        match self {
            Self::After(_) => ShardIteratorType::AfterSequenceNumber,
            Self::At(_) => ShardIteratorType::AtSequenceNumber,
            Self::TrimHorizon => ShardIteratorType::TrimHorizon,
            Self::Latest => ShardIteratorType::Latest,
            Self::AtTimestamp(_) => ShardIteratorType::AtTimestamp,
        }
    }

    pub(crate) fn sequence(&self) -> Option<&str> {
        match self {
            Self::After(sequence) | Self::At(sequence) => Some(sequence),
            _ => None,
        }
    }

    pub(crate) fn timestamp(&self) -> Option<SystemTime> {
        match self {
            Self::AtTimestamp(at) => Some(*at),
            _ => None,
        }
    }
}
