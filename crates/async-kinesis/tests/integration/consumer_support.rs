//! Shared helpers of the consumer tests: writing numbered items, counting what comes back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_kinesis::consumer::{ConsumeError, Record};
use async_kinesis::processor::{JsonLineProcessor, JsonProcessor, Processor, RecordWriter};
use async_kinesis::{Shard, StreamClient};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;
use serde_json::{Value, json};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "async_kinesis=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// One Kinesis record to write.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: String,
    pub data: Bytes,
}

/// The item `n` of partition key `key`.
pub fn item(key: &str, n: u64) -> Value {
    json!({ "k": key, "n": n })
}

/// One JSON record per item (JsonProcessor).
pub fn json_records(key: &str, range: std::ops::Range<u64>) -> Vec<Outgoing> {
    let processor: JsonProcessor = JsonProcessor::default();
    range
        .map(|n| Outgoing {
            key: key.to_owned(),
            data: processor.serialize(&item(key, n)).expect("serializable"),
        })
        .collect()
}

/// One JSON-lines record holding items `range` of `key` (JsonLineProcessor).
pub fn json_line_record(key: &str, range: std::ops::Range<u64>) -> Outgoing {
    let processor: JsonLineProcessor = JsonLineProcessor::default();
    let mut writer = processor.writer::<()>();
    for n in range {
        let bytes = processor.serialize(&item(key, n)).expect("serializable");
        let full = writer.push((), bytes, key, None).expect("fits");
        assert!(full.is_none(), "test records stay far below the size limit");
    }
    let mut records = writer.flush();
    assert_eq!(records.len(), 1);
    let record = records.remove(0);
    Outgoing {
        key: key.to_owned(),
        data: record.data,
    }
}

/// Writes records with PutRecords (≤ 500 per call), re-sending failed ones first, in order.
pub async fn put(client: &StreamClient, records: &[Outgoing]) {
    for chunk in records.chunks(500) {
        let mut pending: Vec<Outgoing> = chunk.to_vec();
        let mut attempts = 0;
        while !pending.is_empty() {
            attempts += 1;
            assert!(attempts < 50, "PutRecords kept failing");
            let entries = pending
                .iter()
                .map(|r| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&r.key)
                        .data(Blob::new(r.data.to_vec()))
                        .build()
                        .expect("key and data set")
                })
                .collect::<Vec<_>>();
            let stream = client.stream();
            let request = client.sdk_client().put_records();
            let request = match stream.arn() {
                Some(arn) => request.stream_arn(arn),
                None => request.stream_name(stream.name()),
            };
            let result = request.set_records(Some(entries)).send().await;
            match result {
                Ok(out) => {
                    pending = pending
                        .into_iter()
                        .zip(out.records())
                        .filter(|(_, r)| r.error_code().is_some())
                        .map(|(o, _)| o)
                        .collect();
                }
                Err(err) => {
                    eprintln!("PutRecords failed, retrying: {err:?}");
                }
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Per-record accounting: every item counted, order per key checked.
#[derive(Debug, Default)]
pub struct Tally {
    /// Key → the `n`s in the order received.
    pub received: BTreeMap<String, Vec<u64>>,
    /// Shard → indexes (global delivery order) of its records.
    pub by_shard: HashMap<String, Vec<usize>>,
    pub errors: Vec<ConsumeError>,
    pub delivered: usize,
}

impl Tally {
    pub fn add(&mut self, record: &Record<Value>) {
        let key = record.item["k"].as_str().expect("k").to_owned();
        let n = record.item["n"].as_u64().expect("n");
        assert_eq!(
            &*record.partition_key, key,
            "partition key matches the item"
        );
        self.received.entry(key).or_default().push(n);
        self.by_shard
            .entry(record.shard_id.to_string())
            .or_default()
            .push(self.delivered);
        self.delivered += 1;
    }

    pub fn items(&self) -> usize {
        self.received.values().map(Vec::len).sum()
    }

    /// Checks that each key's items `0..expected[key]` all arrived; returns (lost, duplicates)
    /// and asserts that the first delivery of every item came in order.
    pub fn account(&self, expected: &BTreeMap<String, u64>) -> (u64, u64) {
        let mut lost = 0;
        let mut duplicates = 0;
        for (key, &count) in expected {
            let got = self.received.get(key).cloned().unwrap_or_default();
            let mut seen = vec![0u32; count as usize];
            let mut first_order = Vec::new();
            for &n in &got {
                assert!(n < count, "key {key}: unexpected item {n}");
                if seen[n as usize] == 0 {
                    first_order.push(n);
                } else {
                    duplicates += 1;
                }
                seen[n as usize] += 1;
            }
            lost += seen.iter().filter(|&&c| c == 0).count() as u64;
            assert!(
                first_order.windows(2).all(|w| w[0] < w[1]),
                "key {key}: items out of order: {first_order:?}"
            );
        }
        (lost, duplicates)
    }
}

/// Reads until `count` items arrived (errors are collected), failing after `wait`.
pub async fn read_items(
    consumer: &mut async_kinesis::consumer::Consumer,
    tally: &mut Tally,
    count: usize,
    wait: Duration,
) {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    while tally.items() < count {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} items within {wait:?}", tally.items()));
        match next.expect("the stream does not end") {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
}

/// Nothing more arrives within `quiet`.
pub async fn assert_quiet(consumer: &mut async_kinesis::consumer::Consumer, quiet: Duration) {
    use futures::StreamExt;
    if let Ok(Some(item)) = tokio::time::timeout(quiet, consumer.next()).await {
        panic!("unexpected extra item: {item:?}");
    }
}

pub fn keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("key-{i:03}")).collect()
}

/// Splits the stream's open shard in the middle of its hash range; waits for ACTIVE.
pub async fn split_the_only_shard(client: &StreamClient) -> Shard {
    let shards = client.list_shards().await.expect("list");
    let parent = shards
        .into_iter()
        .find(Shard::is_open)
        .expect("an open shard");
    let mid = parent.starting_hash_key + (parent.ending_hash_key - parent.starting_hash_key) / 2;
    client
        .sdk_client()
        .split_shard()
        .stream_name(client.stream().name())
        .shard_to_split(&parent.shard_id)
        .new_starting_hash_key(mid.to_string())
        .send()
        .await
        .expect("SplitShard");
    client
        .wait_until_active(Duration::from_secs(30))
        .await
        .expect("ACTIVE again");
    parent
}
