//! Memory of a consumer whose application never acknowledges (`AckPolicy::Explicit`): reading
//! pauses at `max_unacked_records` per shard, so memory stays flat however much is written.
//!
//! ```text
//! cargo run --release -p async-kinesis --example unacked_memory -- \
//!     --endpoint http://127.0.0.1:4568 --seconds 60 --max-unacked 10000
//! ```
//!
//! It creates a one-shard stream, writes ~1 KB items as fast as the producer goes for
//! `--seconds` while the consumer reads and drops every record without acknowledging it, and
//! prints, every 5 s, what was written and read, what the shard status counts unacknowledged,
//! and the process's resident memory (Linux: `VmRSS` of /proc/self/status). The stream is
//! deleted at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_kinesis::consumer::{AckPolicy, Consumer};
use async_kinesis::{ConnectOptions, CreateStream, Producer, StreamClient};
use futures::StreamExt;
use serde_json::json;

struct Args {
    endpoint: Option<String>,
    seconds: u64,
    max_unacked: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        endpoint: None,
        seconds: 60,
        max_unacked: 10_000,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => args.endpoint = Some(value()?),
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--max-unacked" => {
                args.max_unacked = value()?
                    .parse()
                    .map_err(|e| format!("--max-unacked: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Resident memory in MiB, where the platform tells it.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let mut options = ConnectOptions::default();
    if let Some(endpoint) = &args.endpoint {
        options = options.region("us-east-1").endpoint_url(endpoint);
    }
    let stream_name = format!("async-kinesis-unacked-{}", std::process::id());
    let client = StreamClient::connect(stream_name.as_str(), &options).await?;
    client
        .create_if_missing(
            CreateStream::Provisioned { shards: 1 },
            Duration::from_secs(60),
        )
        .await?;

    let producer = Producer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .build()
        .await?;
    let consumer = Consumer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .ack_policy(AckPolicy::Explicit)
        .max_unacked_records(args.max_unacked)
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await?;
    let written = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let written = written.clone();
        async move { read_without_acks(consumer, &written).await }
    });

    let padding = "x".repeat(1_000);
    let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let mut n = 0u64;
    while tokio::time::Instant::now() < until {
        let item = json!({ "n": n, "padding": padding });
        // Receipts are not awaited: back-pressure of `put` paces the writer.
        drop(producer.put_with_key(item, format!("k{}", n % 64)).await?);
        n += 1;
        written.store(n, Ordering::Relaxed);
    }
    producer.close().await?;
    reader.abort();
    client.delete().await?;
    Ok(())
}

/// Reads and drops every record unacknowledged; every 5 s prints a row of the table.
async fn read_without_acks(mut consumer: Consumer, written: &AtomicU64) {
    println!(
        "{:>5}  {:>9}  {:>9}  {:>9}  {:>8}",
        "s", "written", "read", "unacked", "RSS MiB"
    );
    let started = tokio::time::Instant::now();
    let mut report = tokio::time::interval(Duration::from_secs(5));
    let mut read = 0u64;
    loop {
        tokio::select! {
            record = consumer.next() => match record {
                // Dropped unacknowledged: it stays counted until acked or nacked.
                Some(Ok(_)) => read += 1,
                Some(Err(err)) => eprintln!("{err}"),
                None => return,
            },
            _ = report.tick() => {
                let status = consumer.shard_status();
                let unacked: usize = status.shard_details.iter().map(|d| d.unacked_records).sum();
                let rss = rss_mib().map_or("n/a".to_owned(), |m| format!("{m:.1}"));
                println!(
                    "{:>5}  {:>9}  {read:>9}  {unacked:>9}  {rss:>8}",
                    started.elapsed().as_secs(),
                    written.load(Ordering::Relaxed),
                );
            }
        }
    }
}
