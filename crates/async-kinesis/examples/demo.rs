//! Demo: create a stream, write items with the producer, read them back with the consumer.
//!
//! Run it with `scripts/demo`, which starts the local services first; or against any endpoint:
//! `cargo run -p async-kinesis --example demo -- http://127.0.0.1:4568`.

use std::time::Duration;

use async_kinesis::consumer::Consumer;
use async_kinesis::producer::Producer;
use async_kinesis::{ConnectOptions, CreateStream, StreamClient};
use futures::StreamExt;
use serde_json::json;

const RECORDS: usize = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:4568".into());
    let options = ConnectOptions::default()
        .region("us-east-1")
        .endpoint_url(&endpoint);
    let stream_name = format!("async-kinesis-demo-{}", std::process::id());
    let client = StreamClient::connect(stream_name.as_str(), &options).await?;

    let summary = client
        .create_if_missing(
            CreateStream::Provisioned { shards: 2 },
            Duration::from_secs(30),
        )
        .await?;
    println!(
        "stream {} is {} with {} shards ({endpoint})",
        summary.name, summary.status, summary.open_shard_count
    );

    // Write with the producer: each item gets a receipt saying where it was stored.
    let producer = Producer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .buffer_time(Duration::from_millis(50))
        .build()
        .await?;
    let mut receipts = Vec::new();
    for i in 0..RECORDS {
        let item = json!({"order": i, "item": format!("widget-{i}")});
        receipts.push(
            producer
                .put_with_key(item, format!("user-{}", i % 4))
                .await?,
        );
    }
    for receipt in receipts {
        let delivery = receipt.await?;
        println!(
            "wrote {} seq={}",
            delivery.shard_id, delivery.sequence_number
        );
    }
    producer.close().await?;

    // Read everything back with the consumer: one stream of records over both shards.
    let mut consumer = Consumer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .sleep_time_no_records(Duration::from_millis(200))
        .build()
        .await?;
    let mut read = 0;
    while read < RECORDS {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next()).await;
        let Ok(Some(record)) = next else {
            break;
        };
        let record = record?;
        read += 1;
        println!(
            "read  {} key={} seq={} item={}",
            record.shard_id, record.partition_key, record.sequence_number, record.item
        );
    }
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    println!(
        "consumer stopped: {} unacknowledged, {} leases released",
        report.unacked_records, report.leases_released
    );
    println!("read back {read} of {RECORDS} records");
    client.delete().await?;
    if read != RECORDS {
        return Err(format!("expected {RECORDS} records, read {read}").into());
    }
    Ok(())
}
