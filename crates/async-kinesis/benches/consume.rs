//! Consumer throughput against kinesalite, and one process following 1,000 shards on kinesis-mock.
//!
//! `cargo bench -p async-kinesis --bench consume --features kpl,msgpack` with the local services
//! running (`scripts/local-stack up`). Prints markdown tables: items/s and CPU seconds per 100k
//! items for each processor with 1 and 4 shards (50,000 items of ~1 KB each, written before the
//! consumer starts), then the 1,000-shard run with its resident memory.
//!
//! Set `CONSUME_BENCH_ITEMS` to change the item count; `CONSUME_BENCH_SKIP_THROUGHPUT=1` or
//! `CONSUME_BENCH_SKIP_1000=1` skip a part.

use std::time::{Duration, Instant};

use async_kinesis::consumer::Consumer;
use async_kinesis::processor::{
    JsonLineProcessor, JsonListProcessor, JsonProcessor, KplJsonProcessor, KplStringProcessor,
    MsgpackProcessor, Processor, RecordWriter, StringProcessor,
};
use async_kinesis::{CreateStream, StreamClient};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use futures::StreamExt;
use serde_json::json;
use testkit::process::{cpu_seconds, rss_mib};
use testkit::{KinesisEndpoint, Services, random_stream_name};

const PAYLOAD: usize = 1_000;

fn payload(n: u64) -> String {
    let mut text = format!("item-{n:08}-");
    while text.len() < PAYLOAD {
        text.push_str("abcdefghijklmnopqrstuvwxyz");
    }
    text.truncate(PAYLOAD);
    text
}

async fn create(endpoint: &KinesisEndpoint, prefix: &str, shards: u32) -> StreamClient {
    let client = endpoint.client(&random_stream_name(prefix));
    client
        .create(CreateStream::Provisioned { shards })
        .await
        .expect("create stream");
    client
        .wait_until_active(Duration::from_secs(120))
        .await
        .expect("active");
    client
}

/// Writes `items` items through the processor's writer, 500 records per PutRecords, 4 calls at
/// a time.
async fn write<P: Processor>(
    client: &StreamClient,
    processor: &P,
    items: u64,
    make: impl Fn(u64) -> P::Item,
) {
    let mut writer = processor.writer::<()>();
    let mut records = Vec::new();
    for n in 0..items {
        let key = format!("key-{}", n % 64);
        let bytes = processor.serialize(&make(n)).expect("serialize");
        if let Some(full) = writer.push((), bytes, &key, None).expect("fits") {
            records.push(full);
        }
    }
    records.extend(writer.flush());
    // ≤ 500 records and ≤ 4 MiB of data per call (kinesalite refuses bodies over 7 MiB, and the
    // JSON body carries the data base64-encoded).
    let mut chunks: Vec<Vec<PutRecordsRequestEntry>> = vec![Vec::new()];
    let mut chunk_bytes = 0;
    for record in records {
        let size = record.data.len() + record.partition_key.len();
        let last = chunks.last().map_or(0, Vec::len);
        if last == 500 || (last > 0 && chunk_bytes + size > 4 * 1024 * 1024) {
            chunks.push(Vec::new());
            chunk_bytes = 0;
        }
        chunk_bytes += size;
        let entry = PutRecordsRequestEntry::builder()
            .partition_key(record.partition_key)
            .data(Blob::new(record.data.to_vec()))
            .build()
            .expect("entry");
        chunks.last_mut().expect("never empty").push(entry);
    }
    futures::stream::iter(chunks)
        .for_each_concurrent(4, |mut chunk| async move {
            while !chunk.is_empty() {
                let out = client
                    .sdk_client()
                    .put_records()
                    .stream_name(client.stream().name())
                    .set_records(Some(chunk.clone()))
                    .send()
                    .await
                    .expect("PutRecords");
                chunk = chunk
                    .into_iter()
                    .zip(out.records())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, _)| e)
                    .collect();
            }
        })
        .await;
}

struct Row {
    processor: &'static str,
    shards: u32,
    items_per_sec: f64,
    cpu_per_100k: f64,
}

async fn run<P: Processor>(
    endpoint: &KinesisEndpoint,
    name: &'static str,
    shards: u32,
    items: u64,
    processor: P,
    make: impl Fn(u64) -> P::Item,
    count: impl Fn(&P::Output) -> u64,
) -> Row {
    let client = create(endpoint, "bench-consume", shards).await;
    write(&client, &processor, items, make).await;
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut consumer = Consumer::builder(client.stream().name())
        .sdk_config(endpoint.sdk_config())
        .processor(processor)
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let mut received = 0;
    while received < items {
        match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
            Ok(Some(Ok(record))) => received += count(&record.item),
            Ok(Some(Err(err))) => panic!("{name}: error item {err}"),
            Ok(None) => panic!("{name}: the stream ended"),
            Err(_) => panic!("{name}: stalled at {received} of {items}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    consumer.shutdown(Duration::from_secs(5)).await;
    client.delete().await.expect("delete");
    Row {
        processor: name,
        shards,
        items_per_sec: items as f64 / elapsed,
        cpu_per_100k: cpu * 100_000.0 / items as f64,
    }
}

async fn throughput(endpoint: &KinesisEndpoint, items: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for shards in [1, 4] {
        let one = |_: &String| 1;
        let one_json = |_: &serde_json::Value| 1;
        let json_item = |n: u64| json!({ "id": n, "payload": payload(n) });
        rows.push(
            run(
                endpoint,
                "StringProcessor",
                shards,
                items,
                StringProcessor::default(),
                payload,
                one,
            )
            .await,
        );
        let p: JsonProcessor = JsonProcessor::default();
        rows.push(
            run(
                endpoint,
                "JsonProcessor",
                shards,
                items,
                p,
                json_item,
                one_json,
            )
            .await,
        );
        let p: JsonLineProcessor = JsonLineProcessor::default();
        rows.push(
            run(
                endpoint,
                "JsonLineProcessor",
                shards,
                items,
                p,
                json_item,
                one_json,
            )
            .await,
        );
        let p: JsonListProcessor = JsonListProcessor::default();
        let list_len = |v: &Vec<serde_json::Value>| v.len() as u64;
        rows.push(
            run(
                endpoint,
                "JsonListProcessor",
                shards,
                items,
                p,
                json_item,
                list_len,
            )
            .await,
        );
        let p: MsgpackProcessor = MsgpackProcessor::default();
        let msgpack_item = |n: u64| {
            rmpv::Value::Map(vec![
                ("id".into(), n.into()),
                ("payload".into(), payload(n).into()),
            ])
        };
        rows.push(
            run(
                endpoint,
                "MsgpackProcessor",
                shards,
                items,
                p,
                msgpack_item,
                |_: &rmpv::Value| 1,
            )
            .await,
        );
        let p: KplJsonProcessor = KplJsonProcessor::default();
        rows.push(
            run(
                endpoint,
                "KplJsonProcessor",
                shards,
                items,
                p,
                json_item,
                one_json,
            )
            .await,
        );
        rows.push(
            run(
                endpoint,
                "KplStringProcessor",
                shards,
                items,
                KplStringProcessor::default(),
                payload,
                one,
            )
            .await,
        );
    }
    rows
}

/// One consumer following 1,000 shards: time until every shard holds an iterator, RSS, and a
/// round of items spread over the shards.
async fn thousand_shards(endpoint: &KinesisEndpoint) {
    let shards: u32 = std::env::var("CONSUME_BENCH_SHARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    const ITEMS: u64 = 2_000;
    let rss_before = rss_mib();
    let client = create(endpoint, "bench-1000", shards).await;
    let started = Instant::now();
    // kinesis-mock answers ~100 calls/s in all; idle shards poll every 30 s so that 1,000 of
    // them leave it room for the rest.
    let mut consumer = Consumer::builder(client.stream().name())
        .sdk_config(endpoint.sdk_config())
        .sleep_time_no_records(Duration::from_secs(30))
        .build()
        .await
        .expect("build");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), consumer.ready()).await {
            Ok(ready) => break ready.expect("ready"),
            Err(_) => {
                let status = consumer.shard_status();
                let with_iterator = status
                    .shard_details
                    .iter()
                    .filter(|s| s.has_iterator)
                    .count();
                eprintln!(
                    "{:.0} s: {} shards allocated, {with_iterator} hold an iterator",
                    started.elapsed().as_secs_f64(),
                    status.allocated_shards
                );
                assert!(
                    started.elapsed() < Duration::from_secs(600),
                    "not ready in 10 minutes"
                );
            }
        }
    }
    let ready_after = started.elapsed();
    let rss_ready = rss_mib();
    let processor: JsonProcessor = JsonProcessor::default();
    write(&client, &processor, ITEMS, |n| json!({ "id": n })).await;
    let written = Instant::now();
    let mut received = 0;
    while received < ITEMS {
        match tokio::time::timeout(Duration::from_secs(300), consumer.next()).await {
            Ok(Some(Ok(_))) => received += 1,
            Ok(Some(Err(err))) => eprintln!("error item: {err}"),
            _ => panic!("stalled at {received} of {ITEMS}"),
        }
    }
    let read_after = written.elapsed();
    let rss_reading = rss_mib();
    let status = consumer.shard_status();
    consumer.shutdown(Duration::from_secs(30)).await;
    client.delete().await.expect("delete");
    println!("\n| {shards} shards (kinesis-mock) | value |\n| --- | --- |");
    println!("| shards followed | {} |", status.allocated_shards);
    println!(
        "| time until every shard held an iterator | {:.1} s |",
        ready_after.as_secs_f64()
    );
    println!(
        "| {ITEMS} items written → all received | {:.1} s |",
        read_after.as_secs_f64()
    );
    println!("| RSS before the consumer | {rss_before:.1} MiB |");
    println!("| RSS when ready | {rss_ready:.1} MiB |");
    println!("| RSS after reading | {rss_reading:.1} MiB |");
}

#[tokio::main]
async fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "async_kinesis=error".into()),
        )
        .try_init();
    let services = Services::from_env();
    let items: u64 = std::env::var("CONSUME_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    if std::env::var_os("CONSUME_BENCH_SKIP_THROUGHPUT").is_none() {
        let rows = throughput(&services.kinesalite(), items).await;
        println!("\n{items} items of ~1 KB on kinesalite, written before the consumer starts\n");
        println!(
            "| processor | shards | items/s | CPU s per 100k items |\n| --- | --- | --- | --- |"
        );
        for row in &rows {
            println!(
                "| {} | {} | {:.0} | {:.2} |",
                row.processor, row.shards, row.items_per_sec, row.cpu_per_100k
            );
        }
    }
    if std::env::var_os("CONSUME_BENCH_SKIP_1000").is_none() {
        thousand_shards(&services.kinesis_mock()).await;
    }
}
