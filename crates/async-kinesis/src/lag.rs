//! How far a checkpoint is behind the tip of its shard, asked of the service.
//!
//! A monitoring probe, not a reader: one GetShardIterator and one GetRecords call of a single
//! record from the position after the checkpoint, whose `MillisBehindLatest` is the lag of a
//! consumer resuming there. Nothing is handed out or checkpointed.

use aws_sdk_kinesis::types::ShardIteratorType;

use aws_smithy_types::DateTime;

use crate::checkpoint::{Progress, StartingPoint};
use crate::error::Error;
use crate::stream::StreamClient;

impl StreamClient {
    /// How many milliseconds a consumer resuming from `progress` on `shard_id` is behind the tip
    /// of the shard: 0 when nothing follows the checkpoint, `None` when the service does not say.
    /// A shard read to its end ([`Progress::ShardEnd`]) is 0 without a call.
    ///
    /// # Errors
    /// The service's errors, e.g. `ResourceNotFoundException` for a shard past retention.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn millis_behind_latest(
        &self,
        shard_id: &str,
        progress: &Progress,
    ) -> Result<Option<i64>, Error> {
        let mut timestamp = None;
        let (kind, sequence) = match progress {
            Progress::ShardEnd => return Ok(Some(0)),
            Progress::None => (ShardIteratorType::TrimHorizon, None),
            Progress::Started(StartingPoint::AtTimestamp(at)) => {
                timestamp = Some(DateTime::from(*at));
                (ShardIteratorType::AtTimestamp, None)
            }
            Progress::Started(StartingPoint::AtSequence(sequence)) => {
                (ShardIteratorType::AtSequenceNumber, Some(sequence.clone()))
            }
            // Part of an aggregate processed: its remaining user records are still to come.
            Progress::At(position) if position.sub_sequence.is_some() => (
                ShardIteratorType::AtSequenceNumber,
                Some(position.sequence_number.to_string()),
            ),
            Progress::At(position) => (
                ShardIteratorType::AfterSequenceNumber,
                Some(position.sequence_number.to_string()),
            ),
        };
        let (name, arn) = self.stream().request_ids();
        let iterator = self
            .sdk_client()
            .get_shard_iterator()
            .set_stream_name(name)
            .set_stream_arn(arn.clone())
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(sequence)
            .set_timestamp(timestamp)
            .send()
            .await
            .map_err(|e| self.error("GetShardIterator", e))?
            .shard_iterator
            .ok_or_else(|| Error::MalformedResponse {
                operation: "GetShardIterator",
                detail: "no ShardIterator".into(),
            })?;
        let output = self
            .sdk_client()
            .get_records()
            .shard_iterator(iterator)
            .limit(1)
            .set_stream_arn(arn)
            .send()
            .await
            .map_err(|e| self.error("GetRecords", e))?;
        Ok(output.millis_behind_latest)
    }
}
