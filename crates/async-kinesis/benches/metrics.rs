//! What metrics cost: the recording calls of the producer and the consumer, per item, with no
//! recorder and with the Prometheus recorder (scraped every second), next to the client's CPU
//! per item in a produce + consume run on kinesalite. Prints markdown tables.
//!
//! Needs the local services (`scripts/local-stack up`), then:
//! `cargo bench -p async-kinesis --all-features --bench metrics` (options: `-- --items N
//! --rounds R`). A process has one global recorder, so each mode runs in a child process of its
//! own; rounds alternate the modes so that load on the machine hits both alike.
//!
//! The recording cost is timed directly (the exact calls the data path makes, per PutRecords
//! call of 500 records, per GetRecords batch of 500 records and per item handed out; best of 5
//! runs of a loop), because a difference of a few percent in CPU per item between two runs is
//! within the noise of a shared machine. The end-to-end CPU per item of both modes is shown as
//! well, as a check.

use std::hint::black_box;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use async_kinesis::consumer::Consumer;
use async_kinesis::metrics::bench_support::Recording;
use async_kinesis::metrics::prometheus;
use async_kinesis::processor::JsonProcessor;
use async_kinesis::producer::Producer;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use testkit::process::cpu_seconds;
use testkit::{Services, TestStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODES: [&str; 2] = ["none", "prometheus"];
/// Records per PutRecords call and per GetRecords batch in the timed loops.
const BATCH: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: u64,
    user: String,
    payload: String,
}

fn item(id: u64) -> Item {
    Item {
        id,
        user: format!("user-{}", id % 1_000),
        payload: "x".repeat(950),
    }
}

/// One child's measurements, in nanoseconds per item.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    record_producer: f64,
    record_consumer: f64,
    produce_cpu: f64,
    consume_cpu: f64,
}

/// Best of 5 runs of `f` repeated `n` times, in ns per repetition.
fn time_per(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for i in 0..n {
                f(i);
            }
            started.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// The recording calls, timed: per item of a 500-record PutRecords call; per item of a
/// 500-record GetRecords batch plus its processing-time measurement (two clock reads and one
/// histogram update per run of records handed out, as `Consumer::poll_next` does).
fn time_recording() -> (f64, f64) {
    let recording = Recording::new("bench-stream");
    let shards = ["shardId-000000000000", "shardId-000000000001"];
    let per_call = time_per(2_000, |i| {
        recording.producer_call(shards[(i % 2) as usize], BATCH, BATCH as u64, 500_000);
    });
    let per_batch = time_per(2_000, |i| {
        recording.consumer_batch(shards[(i % 2) as usize], BATCH as u64, BATCH, 500_000);
    });
    // Per run of records handed out back to back (at most one GetRecords batch): two clock
    // reads and one histogram update for the whole run.
    let per_run = time_per(20_000, |_| {
        let started = Instant::now();
        recording.consumer_run(
            black_box(started).elapsed().as_secs_f64() / BATCH as f64,
            BATCH,
        );
    });
    (
        per_call / BATCH as f64,
        (per_batch + per_run) / BATCH as f64,
    )
}

/// Client CPU per item: producing `items` items, then consuming them.
async fn end_to_end(items: u64) -> (f64, f64) {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "bench-metrics", 1).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(JsonProcessor::of::<Item>())
        .put_rate_limit_per_shard(1_000_000)
        .put_bandwidth_limit_per_shard(1_000_000)
        .buffer_time(Duration::from_millis(100))
        .build()
        .await
        .expect("producer");
    let cpu = cpu_seconds();
    let (receipts, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let checker = tokio::spawn(async move {
        let mut delivered = 0u64;
        while let Some(receipt) = incoming.recv().await {
            let receipt: async_kinesis::producer::Receipt<Item> = receipt;
            receipt.await.expect("delivered");
            delivered += 1;
        }
        delivered
    });
    for id in 0..items {
        let receipt = producer
            .put_with_key(item(id), format!("user-{}", id % 1_000))
            .await
            .expect("accepted");
        receipts.send(receipt).expect("checker alive");
    }
    drop(receipts);
    producer.close().await.expect("close");
    assert_eq!(
        checker.await.expect("checker"),
        items,
        "every item delivered"
    );
    let produce = cpu_seconds() - cpu;

    let cpu = cpu_seconds();
    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(JsonProcessor::of::<Item>())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("consumer");
    let mut received = 0;
    while received < items {
        match tokio::time::timeout(Duration::from_secs(60), consumer.next()).await {
            Ok(Some(Ok(_))) => received += 1,
            Ok(Some(Err(err))) => panic!("error item {err}"),
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("stalled at {received} of {items}"),
        }
    }
    let consume = cpu_seconds() - cpu;
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
    let per_item = |seconds: f64| seconds * 1e9 / items as f64;
    (per_item(produce), per_item(consume))
}

/// GETs /metrics every second, as an eager Prometheus would.
async fn scrape_forever(addr: SocketAddr) {
    loop {
        if let Ok(mut connection) = tokio::net::TcpStream::connect(addr).await {
            let _ = connection.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
            let mut body = Vec::new();
            let _ = connection.read_to_end(&mut body).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn child(mode: &str, items: u64) -> Sample {
    let _server = match mode {
        "none" => None,
        "prometheus" => {
            let server = prometheus::serve("127.0.0.1:0").expect("serve /metrics");
            tokio::spawn(scrape_forever(server.local_addr()));
            Some(server)
        }
        other => panic!("unknown mode {other}"),
    };
    let (record_producer, record_consumer) = time_recording();
    let (produce_cpu, consume_cpu) = end_to_end(items).await;
    Sample {
        record_producer,
        record_consumer,
        produce_cpu,
        consume_cpu,
    }
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items: u64 = option(&args, "--items")
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    if let Some(mode) = option(&args, "--child") {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let s = runtime.block_on(child(&mode, items));
        println!(
            "SAMPLE {} {} {} {}",
            s.record_producer, s.record_consumer, s.produce_cpu, s.consume_cpu
        );
        return;
    }
    let rounds: usize = option(&args, "--rounds")
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("this binary");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        for (m, mode) in MODES.iter().enumerate() {
            eprintln!("round {} of {rounds}: {mode}", round + 1);
            let out = Command::new(&exe)
                .args(["--child", mode, "--items", &items.to_string(), "--bench"])
                .output()
                .expect("run the child");
            assert!(
                out.status.success(),
                "{mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("SAMPLE "))
                .expect("a SAMPLE line");
            let v: Vec<f64> = line
                .split_whitespace()
                .map(|f| f.parse().expect("a number"))
                .collect();
            samples[m].push(Sample {
                record_producer: v[0],
                record_consumer: v[1],
                produce_cpu: v[2],
                consume_cpu: v[3],
            });
        }
    }
    let med = |m: usize, f: fn(&Sample) -> f64| median(samples[m].iter().map(f).collect());
    println!(
        "\n{items} items of ~1 KB, JsonProcessor, 1 shard on kinesalite; medians of {rounds} rounds.\n"
    );
    println!(
        "| recorder | recording, producer (ns/item) | recording, consumer (ns/item) | client CPU, produce (µs/item) | client CPU, consume (µs/item) | recording / client CPU, produce | recording / client CPU, consume |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (m, mode) in MODES.iter().enumerate() {
        let (rp, rc) = (med(m, |s| s.record_producer), med(m, |s| s.record_consumer));
        let (cp, cc) = (med(m, |s| s.produce_cpu), med(m, |s| s.consume_cpu));
        println!(
            "| {mode} | {rp:.1} | {rc:.1} | {:.2} | {:.2} | {:.3} % | {:.3} % |",
            cp / 1e3,
            cc / 1e3,
            100.0 * rp / cp,
            100.0 * rc / cc
        );
    }
    println!("\nEnd to end, client CPU per item in every round (µs, produce / consume):\n");
    println!("| round | none | prometheus |");
    println!("| ---: | --- | --- |");
    let cell = |s: &Sample| format!("{:.2} / {:.2}", s.produce_cpu / 1e3, s.consume_cpu / 1e3);
    for (round, (none, prom)) in samples[0].iter().zip(&samples[1]).enumerate() {
        println!("| {} | {} | {} |", round + 1, cell(none), cell(prom));
    }
}
