//! Decoding one Kinesis record into items, and what the poison policy makes of items that do
//! not decode. Pure apart from the dead-letter callback, a log line and a metric.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::PoisonPolicy;
use super::context::Context;
use super::error::{PoisonAction, PoisonRecord};
use crate::checkpoint::Position;
use crate::processor::{Decoded, Processor, ReadError};

/// One Kinesis record as read.
pub(crate) struct RawRecord<'a> {
    pub(crate) sequence: &'a Arc<str>,
    pub(crate) partition_key: &'a Arc<str>,
    pub(crate) data: &'a Bytes,
    pub(crate) arrival_time: Option<SystemTime>,
}

pub(crate) enum DecodeOutcome<T> {
    Item(Decoded<T>),
    Poison(Box<PoisonRecord>),
    /// A record without items: nothing to hand out, but checkpoints must pass it.
    Empty,
}

pub(crate) struct DecodedRecord<T> {
    pub(crate) position: Position,
    pub(crate) outcome: DecodeOutcome<T>,
    pub(crate) pre_acked: bool,
    pub(crate) sequence_number: Arc<str>,
    pub(crate) arrival_time: Option<SystemTime>,
}

/// Decodes one Kinesis record into `pending`; returns `true` when the poison policy stops the
/// shard inside it.
pub(crate) fn decode_record<P: Processor>(
    ctx: &Context<P>,
    shard_id: &Arc<str>,
    skip_through: Option<&Position>,
    raw: RawRecord<'_>,
    pending: &mut Vec<DecodedRecord<P::Output>>,
) -> bool {
    let RawRecord {
        sequence,
        partition_key,
        data,
        arrival_time,
    } = raw;
    let results: Vec<Result<Decoded<P::Output>, ReadError>> =
        ctx.processor.read(data, partition_key).collect();
    if results.is_empty() {
        // Nothing to hand out, but checkpoints must still be able to pass the record.
        pending.push(DecodedRecord {
            position: Position::after(sequence.clone()),
            outcome: DecodeOutcome::Empty,
            pre_acked: true,
            sequence_number: sequence.clone(),
            arrival_time,
        });
        return false;
    }
    let last = results.len() - 1;
    for (i, result) in results.into_iter().enumerate() {
        let sub = match &result {
            Ok(decoded) => decoded.sub_sequence,
            Err(_) => i as u64,
        };
        if let Some(skip) = skip_through
            && *skip.sequence_number == **sequence
            && Some(sub) <= skip.sub_sequence
        {
            continue; // processed before the restart
        }
        let position = if i == last {
            Position::after(sequence.clone())
        } else {
            Position::within(sequence.clone(), sub)
        };
        let entry = match result {
            Ok(decoded) => DecodedRecord {
                position,
                outcome: DecodeOutcome::Item(decoded),
                pre_acked: false,
                sequence_number: sequence.clone(),
                arrival_time,
            },
            Err(error) => {
                let mut poison = Box::new(PoisonRecord {
                    shard_id: shard_id.into(),
                    sequence_number: sequence.into(),
                    sub_sequence: sub,
                    partition_key: partition_key.clone(),
                    data: data.clone(),
                    arrival_time,
                    error,
                    action: PoisonAction::Skipped,
                    dead_letter_error: None,
                });
                match &ctx.config.poison_policy {
                    PoisonPolicy::Skip => {}
                    PoisonPolicy::Stop => poison.action = PoisonAction::Stopped,
                    PoisonPolicy::DeadLetter(callback) => match callback(&poison) {
                        Ok(()) => poison.action = PoisonAction::DeadLettered,
                        Err(err) => {
                            poison.action = PoisonAction::Stopped;
                            poison.dead_letter_error = Some(err);
                        }
                    },
                }
                tracing::warn!(
                    shard = %shard_id, sequence = %sequence, sub_sequence = sub,
                    action = ?poison.action, error = %poison.error, "undecodable record"
                );
                ctx.labels.consumer_error(shard_id, "poison");
                let stops = poison.action == PoisonAction::Stopped;
                pending.push(DecodedRecord {
                    position,
                    pre_acked: !stops,
                    outcome: DecodeOutcome::Poison(poison),
                    sequence_number: sequence.clone(),
                    arrival_time,
                });
                if stops {
                    return true;
                }
                continue;
            }
        };
        pending.push(entry);
    }
    false
}
