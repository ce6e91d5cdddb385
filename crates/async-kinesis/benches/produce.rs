//! Producer throughput against kinesalite: items/s and client CPU per 100k items, per processor
//! and shard count, plus memory under back-pressure. Prints markdown tables.
//!
//! Needs the local services (`scripts/local-stack up`), then:
//! `cargo bench -p async-kinesis --all-features --bench produce` (options: `-- --items N`).
//!
//! The items are ~1 KB JSON-able structs, as in the Python library's published baseline
//! (50,000 items; JsonProcessor 3,578 items/s on 1 shard, KPLJsonProcessor 19,591 and
//! MsgpackProcessor 27,312, producer limits lifted). Limits are lifted here too: the point is
//! the client's cost, not AWS's shard budget. `benches/python/produce_baseline.py` runs the
//! Python library on the same workload and prints the same table, for a like-for-like run on
//! one machine and one emulator (kinesalite's state slows it down: start a fresh one to compare).

use std::time::{Duration, Instant};

use async_kinesis::processor::{
    JsonLineProcessor, JsonProcessor, KplJsonProcessor, MsgpackProcessor, Processor,
};
use async_kinesis::producer::Producer;
use serde::{Deserialize, Serialize};
use testkit::process::{cpu_seconds, rss_mib};
use testkit::{Services, TestStream};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: u64,
    user: String,
    kind: String,
    payload: String,
}

fn item(id: u64) -> Item {
    Item {
        id,
        user: format!("user-{}", id % 1_000),
        kind: "order.created".to_owned(),
        payload: "x".repeat(950),
    }
}

struct Row {
    processor: &'static str,
    shards: u32,
    items: u64,
    seconds: f64,
    cpu: f64,
}

async fn run<P>(name: &'static str, processor: P, shards: u32, items: u64) -> Row
where
    P: Processor<Item = Item>,
{
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "bench-produce", shards).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(processor)
        .put_rate_limit_per_shard(1_000_000)
        .put_bandwidth_limit_per_shard(1_000_000)
        .buffer_time(Duration::from_millis(100))
        .build()
        .await
        .expect("producer");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    // Receipts are awaited by a second task so putting never waits on them.
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
        let key = format!("user-{}", id % 1_000);
        let receipt = producer
            .put_with_key(item(id), key)
            .await
            .expect("accepted");
        receipts.send(receipt).expect("checker alive");
    }
    drop(receipts);
    producer.close().await.expect("close");
    let delivered = checker.await.expect("checker");
    assert_eq!(delivered, items, "every item delivered");
    let row = Row {
        processor: name,
        shards,
        items,
        seconds: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu_before,
    };
    stream.delete().await;
    row
}

/// Items put at the default limit of one shard, far faster than it drains: the queue bound
/// must hold memory flat.
async fn back_pressure(items: u64) -> Vec<(f64, f64)> {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "bench-backpressure", 1).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(JsonProcessor::of::<Item>())
        .build()
        .await
        .expect("producer");
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampling = done.clone();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while !sampling.load(std::sync::atomic::Ordering::Relaxed) {
            samples.push((started.elapsed().as_secs_f64(), rss_mib()));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        samples
    });
    let mut receipts = Vec::new();
    for id in 0..items {
        receipts.push(producer.put(item(id)).await.expect("accepted"));
        // Let receipts go as they resolve, as a real caller would.
        if receipts.len() >= 1_000 {
            for receipt in receipts.drain(..) {
                receipt.await.expect("delivered");
            }
        }
    }
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    producer.close().await.expect("close");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    stream.delete().await;
    samples
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000u64);
    // `--only <processor name>` runs just that processor (e.g. to profile it).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    const PROCESSORS: [&str; 4] = [
        "JsonProcessor",
        "JsonLineProcessor",
        "MsgpackProcessor",
        "KplJsonProcessor",
    ];
    if let Some(name) = only.as_deref()
        && !PROCESSORS.contains(&name)
    {
        eprintln!("--only {name}: unknown processor; one of {PROCESSORS:?}");
        std::process::exit(2);
    }
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    for shards in [1, 4] {
        if wanted("JsonProcessor") {
            rows.push(run("JsonProcessor", JsonProcessor::of::<Item>(), shards, items).await);
        }
        if wanted("JsonLineProcessor") {
            let processor = JsonLineProcessor::of::<Item>();
            rows.push(run("JsonLineProcessor", processor, shards, items).await);
        }
        if wanted("MsgpackProcessor") {
            let processor = MsgpackProcessor::of::<Item>();
            rows.push(run("MsgpackProcessor", processor, shards, items).await);
        }
        if wanted("KplJsonProcessor") {
            let processor = KplJsonProcessor::of::<Item>();
            rows.push(run("KplJsonProcessor", processor, shards, items).await);
        }
    }
    println!("\n| processor | shards | items | seconds | items/s | CPU s per 100k items |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.2} |",
            row.processor,
            row.shards,
            row.items,
            row.seconds,
            row.items as f64 / row.seconds,
            row.cpu * 100_000.0 / row.items as f64
        );
    }

    if only.is_some() {
        return;
    }
    let samples = back_pressure(20_000).await;
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    println!(
        "\nBack-pressure: 20,000 items of ~1 KB into one shard at 1,000 records/s (max_queue_size 10,000)"
    );
    println!("\n| second | RSS MiB |\n| ---: | ---: |");
    for (second, rss) in samples.iter().step_by(2) {
        println!("| {second:.0} | {rss:.1} |");
    }
    println!("\npeak RSS {peak:.1} MiB");
}
