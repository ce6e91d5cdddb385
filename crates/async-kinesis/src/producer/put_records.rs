//! The PutRecords call: the only place the producer talks to Kinesis.

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use super::outcome::EntryResult;
use crate::error::Error;
use crate::processor::OutgoingRecord;
use crate::stream::StreamClient;

/// The request entries for `records`, in order.
pub(crate) fn request_entries<'a, Tag: 'a>(
    records: impl Iterator<Item = &'a OutgoingRecord<Tag>>,
) -> Vec<PutRecordsRequestEntry> {
    records
        .map(|record| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(record.data.to_vec()))
                .partition_key(&record.partition_key)
                .set_explicit_hash_key(record.explicit_hash_key.clone())
                .build()
                .expect("data and partition key are always set")
        })
        .collect()
}

/// Sends `entries` in one PutRecords call and returns one result per entry, in order.
///
/// # Errors
/// The call's error when it failed as a whole.
pub(crate) async fn put_records(
    client: &StreamClient,
    entries: Vec<PutRecordsRequestEntry>,
) -> Result<Vec<EntryResult>, Error> {
    let (name, arn) = client.stream().request_ids();
    let output = client
        .sdk_client()
        .put_records()
        .set_stream_name(name)
        .set_stream_arn(arn)
        .set_records(Some(entries))
        .send()
        .await
        .map_err(|err| client.error("PutRecords", err))?;
    Ok(output.records().iter().map(entry_result).collect())
}

fn entry_result(entry: &aws_sdk_kinesis::types::PutRecordsResultEntry) -> EntryResult {
    match (
        entry.error_code(),
        entry.shard_id(),
        entry.sequence_number(),
    ) {
        (None, Some(shard_id), Some(sequence_number)) => EntryResult::Accepted {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
        },
        // An entry without an error code but also without a position cannot be trusted as
        // stored: it is refused, and retried like an unknown code (it may then be stored
        // twice, the at-least-once cost of any producer retry).
        (code, ..) => EntryResult::Refused {
            code: code.unwrap_or("MissingResult").to_owned(),
            message: entry.error_message().unwrap_or_default().to_owned(),
        },
    }
}
