//! Demo: create a stream, write records, read them back with the consumer.
//!
//! Run it with `scripts/demo`, which starts the local services first; or against any endpoint:
//! `cargo run -p async-kinesis --example demo -- http://127.0.0.1:4568`.

use std::time::Duration;

use async_kinesis::consumer::Consumer;
use async_kinesis::{ConnectOptions, CreateStream, StreamClient};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::StreamExt;

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

    // Until the Producer lands, the demo writes through the SDK client directly.
    let entries = (0..RECORDS)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("user-{}", i % 4))
                .data(Blob::new(format!(r#"{{"order":{i},"item":"widget-{i}"}}"#)))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let put = client
        .sdk_client()
        .put_records()
        .stream_name(&stream_name)
        .set_records(Some(entries))
        .send()
        .await?;
    println!(
        "wrote {} records ({} failed)",
        RECORDS,
        put.failed_record_count().unwrap_or(0)
    );

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
