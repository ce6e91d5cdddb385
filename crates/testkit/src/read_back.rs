//! Reading back everything a stream holds, straight from the emulator, to count what arrived.

use async_kinesis::StreamClient;
use aws_sdk_kinesis::types::ShardIteratorType;

/// One record as stored in a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The shard holding it.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Its partition key.
    pub partition_key: String,
    /// Its data.
    pub data: bytes::Bytes,
}

/// Every record of every shard (open and closed), each shard in order, read from TRIM_HORIZON
/// until the shard is caught up or closed.
///
/// # Panics
/// When a call fails: a test cannot count records it cannot read.
pub async fn read_stream(client: &StreamClient) -> Vec<StoredRecord> {
    let shards = client
        .list_shards()
        .await
        .expect("list shards to read back");
    let mut records = Vec::new();
    for shard in shards {
        records.extend(read_shard(client, &shard.shard_id).await);
    }
    records
}

/// Every record of one shard, in order.
///
/// # Panics
/// When a call fails.
pub async fn read_shard(client: &StreamClient, shard_id: &str) -> Vec<StoredRecord> {
    let stream = client.stream();
    let sdk = client.sdk_client();
    let mut iterator = sdk
        .get_shard_iterator()
        .set_stream_name(stream.arn().is_none().then(|| stream.name().to_owned()))
        .set_stream_arn(stream.arn().map(str::to_owned))
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(current) = iterator {
        let page = sdk
            .get_records()
            .shard_iterator(current)
            .limit(10_000)
            .send()
            .await
            .expect("GetRecords");
        let got = page.records().len();
        records.extend(page.records().iter().map(|record| StoredRecord {
            shard_id: shard_id.to_owned(),
            sequence_number: record.sequence_number().to_owned(),
            partition_key: record.partition_key().unwrap_or_default().to_owned(),
            data: bytes::Bytes::copy_from_slice(record.data().as_ref()),
        }));
        let caught_up = got == 0 && page.millis_behind_latest().unwrap_or(0) == 0;
        iterator = if caught_up {
            None
        } else {
            page.next_shard_iterator
        };
    }
    records
}
