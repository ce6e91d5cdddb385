//! Helpers shared by the proxy's tests: emulator endpoints, random streams, raw emulator access.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use rand::Rng;

fn endpoint(var: &str, default: &str) -> String {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    if std::net::TcpStream::connect(authority).is_err() {
        panic!(
            "no emulator at {url} ({var}); run `scripts/local-stack up` and `eval \"$(scripts/local-stack env)\"`"
        );
    }
    url
}

/// kinesis-mock (ARNs, resharding, SubscribeToShard).
pub fn kinesis_mock() -> String {
    endpoint(
        "ASYNC_KINESIS_KINESIS_MOCK_ENDPOINT",
        "http://127.0.0.1:4568",
    )
}

/// kinesalite (fast).
pub fn kinesalite() -> String {
    endpoint("ASYNC_KINESIS_KINESALITE_ENDPOINT", "http://127.0.0.1:4569")
}

pub fn random_stream(prefix: &str) -> String {
    let suffix: u64 = rand::rng().random();
    format!("{prefix}-{suffix:016x}")
}

/// Creates a stream and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    wait_active(client, name).await;
}

pub async fn wait_active(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let status = summary
            .stream_description_summary()
            .map(|d| d.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {name} not ACTIVE after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn delete_stream(client: &Client, name: &str) {
    client
        .delete_stream()
        .stream_name(name)
        .send()
        .await
        .expect("DeleteStream");
}

pub fn entry(data: impl Into<Vec<u8>>, key: impl Into<String>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .data(Blob::new(data.into()))
        .partition_key(key)
        .build()
        .expect("data and partition key are set")
}

/// Open shard ids of a stream, read straight from the emulator.
pub async fn shard_ids(client: &Client, name: &str) -> Vec<String> {
    let shards = client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .expect("ListShards");
    shards
        .shards()
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none())
        })
        .map(|s| s.shard_id().to_owned())
        .collect()
}

/// Every record's data in one shard, read straight from the emulator.
pub async fn read_shard(client: &Client, name: &str, shard_id: &str) -> Vec<Vec<u8>> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("an iterator");
    let mut data = Vec::new();
    loop {
        let page = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .expect("GetRecords");
        let got = page.records().len();
        data.extend(page.records().iter().map(|r| r.data().as_ref().to_vec()));
        match page.next_shard_iterator {
            Some(next) if got > 0 || page.millis_behind_latest.unwrap_or(0) > 0 => iterator = next,
            _ => return data,
        }
    }
}
