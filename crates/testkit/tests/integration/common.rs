//! Helpers shared by the proxy's tests: emulator endpoints, random streams, raw emulator access.

use std::time::Duration;

use async_kinesis::{CreateStream, StreamClient};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::operation::put_records::PutRecordsOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use testkit::{Service, Services, random_stream_name};

/// kinesis-mock (ARNs, resharding, SubscribeToShard); fails the test if it is down.
pub fn kinesis_mock() -> String {
    let services = Services::from_env();
    services.require(Service::KinesisMock);
    services.kinesis_mock
}

/// kinesalite (fast); fails the test if it is down.
pub fn kinesalite() -> String {
    let services = Services::from_env();
    services.require(Service::Kinesalite);
    services.kinesalite
}

pub fn random_stream(prefix: &str) -> String {
    random_stream_name(prefix)
}

fn stream_client(client: &Client, name: &str) -> StreamClient {
    StreamClient::new(client.clone(), name).expect("valid stream name")
}

/// Creates a stream and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, name: &str, shards: u32) {
    let stream = stream_client(client, name);
    stream
        .create(CreateStream::Provisioned { shards })
        .await
        .expect("CreateStream");
    wait_active(client, name).await;
}

pub async fn wait_active(client: &Client, name: &str) {
    stream_client(client, name)
        .wait_until_active(Duration::from_secs(30))
        .await
        .expect("stream becomes ACTIVE");
}

pub async fn delete_stream(client: &Client, name: &str) {
    stream_client(client, name)
        .delete()
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

/// Puts `records` in one PutRecords call; panics with `expect` unless the call is answered
/// (records may still have failed one by one).
pub async fn put_records(
    client: &Client,
    stream: &str,
    records: Vec<PutRecordsRequestEntry>,
    expect: &str,
) -> PutRecordsOutput {
    client
        .put_records()
        .stream_name(stream)
        .set_records(Some(records))
        .send()
        .await
        .expect(expect)
}

/// Puts `records` in one PutRecords call and checks that every one was accepted.
pub async fn put_all(client: &Client, stream: &str, records: Vec<PutRecordsRequestEntry>) {
    let out = put_records(client, stream, records, "PutRecords").await;
    assert_eq!(out.failed_record_count(), Some(0), "{out:?}");
}

/// A TRIM_HORIZON iterator of one shard.
pub async fn trim_horizon_iterator(client: &Client, stream: &str, shard_id: &str) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("an iterator")
}

/// Every record's data in one shard, read straight from the emulator.
pub async fn read_shard(client: &Client, name: &str, shard_id: &str) -> Vec<Vec<u8>> {
    let mut iterator = trim_horizon_iterator(client, name, shard_id).await;
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
