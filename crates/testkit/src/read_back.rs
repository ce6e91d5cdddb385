//! Reading back everything a stream holds, straight from the emulator, to count what arrived.

use std::time::{Duration, SystemTime};

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
    /// When the emulator stored it, on the emulator's clock.
    pub arrival: SystemTime,
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
        records.extend(page.records().iter().map(|record| {
            StoredRecord {
                shard_id: shard_id.to_owned(),
                sequence_number: record.sequence_number().to_owned(),
                partition_key: record.partition_key().unwrap_or_default().to_owned(),
                data: bytes::Bytes::copy_from_slice(record.data().as_ref()),
                arrival: record
                    .approximate_arrival_timestamp()
                    .and_then(|at| SystemTime::try_from(*at).ok())
                    .expect("the emulator stamps each record's arrival"),
            }
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

/// A time on the emulator's clock after the arrival of every stored record `before` selects and
/// before the arrival of every other one: the midpoint of the gap between the two groups.
///
/// A timestamp taken from this machine's clock can fall on the wrong side of records, or in the
/// emulator's future (kinesis-mock's clock is monotonic from its start and can lag this machine's
/// wall clock by seconds), so tests that start AT_TIMESTAMP take the boundary from here.
///
/// # Panics
/// When either group is empty or the groups' arrivals overlap.
pub async fn arrival_boundary(
    client: &StreamClient,
    before: impl Fn(&StoredRecord) -> bool,
) -> SystemTime {
    let records = read_stream(client).await;
    let (early, late): (Vec<_>, Vec<_>) = records.iter().partition(|record| before(record));
    let last_early = early
        .iter()
        .map(|r| r.arrival)
        .max()
        .expect("records before");
    let first_late = late.iter().map(|r| r.arrival).min().expect("records after");
    let gap = first_late
        .duration_since(last_early)
        .ok()
        .filter(|gap| *gap >= Duration::from_millis(2))
        .unwrap_or_else(|| panic!("arrivals overlap: {last_early:?} .. {first_late:?}"));
    last_early + gap / 2
}
