//! Producer pacing against AWS's per-shard write limits: how much of each shard's budget the
//! producer uses when it has more to send than the shards take. Prints a markdown table.
//!
//! Needs the local services (`scripts/local-stack up`), then:
//! `cargo bench -p async-kinesis --all-features --bench pacing` (options: `-- --items N`,
//! `--kinesis-mock` to forward to kinesis-mock instead of kinesalite, `--case TEXT` for the cases
//! whose name contains it).
//!
//! The emulator must keep up: each shard has one call in flight, so a shard's throughput is at
//! most a call's records over the emulator's time to store them. When the emulator (or a busy
//! machine) is the bottleneck, the utilisation shows it with no throttling: the pacing is then
//! not what is measured.
//!
//! Each case writes 40,000 items of ~1 KB as fast as back-pressure lets it, through the
//! project's limits proxy (`testkit::proxy`, a token bucket per shard of 1,000 records/s and
//! 1 MiB/s with one second of burst, as AWS) in front of kinesalite, to a stream of 4 shards.
//! Per shard, the proxy counts what it accepted each second; over the steady window (from the
//! second after the first accepted record, before the initial burst could inflate it, to the
//! second before the first shard ran dry) the utilisation is the larger of records/1,000/s and
//! bytes/1 MiB/s: the limit that binds. Lost = items put minus items read back from the stream
//! (decoded, each counted once); duplicates are items stored more than once; throttled are the
//! records the proxy refused, which the producer retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_kinesis::processor::{JsonLineProcessor, JsonProcessor, KplJsonProcessor, Processor};
use async_kinesis::producer::Producer;
use serde_json::{Value, json};
use testkit::proxy::{Limits, LimitsProxy, ProxyConfig};
use testkit::{Services, TestStream, read_stream};

const SHARDS: u32 = 4;
const RECORDS_PER_SEC: f64 = 1_000.0;
const BYTES_PER_SEC: f64 = 1_048_576.0;

fn item(n: u64) -> Value {
    json!({"n": n, "kind": "order.created", "payload": "x".repeat(960)})
}

struct Row {
    case: &'static str,
    items: u64,
    seconds: f64,
    window: usize,
    utilisation: Vec<f64>,
    lost: i64,
    duplicates: u64,
    throttled: u64,
    records: u64,
    /// PutRecords calls, and their mean records and duration.
    calls: usize,
    records_per_call: f64,
    call_ms: f64,
}

/// Which emulator the proxy forwards to.
#[derive(Clone, Copy)]
enum Emulator {
    Kinesalite,
    KinesisMock,
}

async fn run<P>(
    emulator: Emulator,
    case: &'static str,
    processor: P,
    keyed: bool,
    items: u64,
) -> Row
where
    P: Processor<Item = Value, Output = Value>,
{
    let services = Services::from_env();
    let (endpoint, upstream) = match emulator {
        Emulator::Kinesalite => (services.kinesalite(), services.kinesalite.clone()),
        Emulator::KinesisMock => (services.kinesis_mock(), services.kinesis_mock.clone()),
    };
    let stream = TestStream::create(&endpoint, "bench-pacing", SHARDS).await;
    let calls: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let proxy = LimitsProxy::start(
        &upstream,
        ProxyConfig {
            limits: Limits::default(),
            ..ProxyConfig::default()
        },
    )
    .await
    .expect("proxy");
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(processor.clone())
        .after_flush({
            let calls = calls.clone();
            move |report| {
                if let Ok(mut calls) = calls.lock() {
                    calls.push((report.records, report.duration));
                }
            }
        })
        .build()
        .await
        .expect("producer");
    proxy.reset_counters();

    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..items {
        let receipt = if keyed {
            producer.put_with_key(item(n), format!("key-{n}")).await
        } else {
            producer.put(item(n)).await
        }
        .expect("accepted");
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _ = done.send(receipt.await.is_ok());
        });
    }
    drop(done_tx);
    let mut delivered = 0u64;
    while let Some(ok) = done_rx.recv().await {
        delivered += u64::from(ok);
    }
    producer.close().await.expect("close");
    let seconds = started.elapsed().as_secs_f64();

    let counters = proxy.counters();
    let shards: Vec<_> = stream
        .shards()
        .await
        .iter()
        .map(|s| {
            counters
                .shard(stream.name(), &s.shard_id)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let active = |c: &testkit::proxy::ShardCounters| -> (usize, usize) {
        let seconds: Vec<usize> = c
            .per_second
            .iter()
            .enumerate()
            .filter(|(_, s)| s.accepted_records > 0)
            .map(|(i, _)| i)
            .collect();
        (
            seconds.first().copied().unwrap_or(0),
            seconds.last().copied().unwrap_or(0),
        )
    };
    // The first two seconds hold the buckets' initial burst (a full second of budget, spent as
    // the items come in), which would read as more than 100 %.
    let start = shards.iter().map(|c| active(c).0).min().unwrap_or(0) + 2;
    let end = shards.iter().map(|c| active(c).1).min().unwrap_or(0); // exclusive
    let window = end.saturating_sub(start);
    let utilisation = shards
        .iter()
        .map(|c| {
            let slice = c.per_second.get(start..end).unwrap_or(&[]);
            let records: u64 = slice.iter().map(|s| s.accepted_records).sum();
            let bytes: u64 = slice.iter().map(|s| s.accepted_bytes).sum();
            let t = window.max(1) as f64;
            (records as f64 / (RECORDS_PER_SEC * t)).max(bytes as f64 / (BYTES_PER_SEC * t))
        })
        .collect();
    let throttled = shards.iter().map(|c| c.total.throttled_records).sum();

    let stored = read_stream(stream.client()).await;
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for record in &stored {
        for decoded in processor.read(&record.data, &record.partition_key) {
            let n = decoded.expect("stored record decodes").item["n"]
                .as_u64()
                .expect("numbered item");
            *seen.entry(n).or_default() += 1;
        }
    }
    let duplicates = seen.values().map(|&c| c - 1).sum();
    assert_eq!(delivered, items, "{case}: every receipt delivered");
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
    let calls = calls.lock().map(|c| c.clone()).unwrap_or_default();
    let n = calls.len().max(1) as f64;
    Row {
        calls: calls.len(),
        records_per_call: calls.iter().map(|c| c.0 as f64).sum::<f64>() / n,
        call_ms: calls.iter().map(|c| c.1.as_secs_f64() * 1e3).sum::<f64>() / n,
        case,
        items,
        seconds,
        window,
        utilisation,
        lost: items as i64 - seen.len() as i64,
        duplicates,
        throttled,
        records: stored.len() as u64,
    }
}

fn print(rows: &[Row]) {
    println!(
        "| case | items | seconds | steady window (s) | utilisation per shard (binding limit) | min | records | lost | duplicates | throttled | calls | records/call | ms/call |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let per_shard: Vec<String> = row
            .utilisation
            .iter()
            .map(|u| format!("{:.1} %", u * 100.0))
            .collect();
        let min = row
            .utilisation
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        println!(
            "| {} | {} | {:.1} | {} | {} | {:.1} % | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            row.case,
            row.items,
            row.seconds,
            row.window,
            per_shard.join(", "),
            min * 100.0,
            row.records,
            row.lost,
            row.duplicates,
            row.throttled,
            row.calls,
            row.records_per_call,
            row.call_ms
        );
    }
}

fn main() {
    let mut items = 40_000u64;
    let mut emulator = Emulator::Kinesalite;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--items" => {
                items = args.next().and_then(|n| n.parse().ok()).expect("--items N");
            }
            "--kinesis-mock" => emulator = Emulator::KinesisMock,
            "--case" => only = args.next(),
            _ => {}
        }
    }
    let wanted = |case: &str| only.as_deref().is_none_or(|o| case.contains(o));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let e = emulator;
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        if wanted("Json, keyed") {
            rows.push(run(e, "Json, keyed", JsonProcessor::default(), true, items).await);
        }
        if wanted("JsonLine, keyed") {
            rows.push(
                run(
                    e,
                    "JsonLine, keyed",
                    JsonLineProcessor::default(),
                    true,
                    items,
                )
                .await,
            );
        }
        if wanted("JsonLine, keyless") {
            rows.push(
                run(
                    e,
                    "JsonLine, keyless",
                    JsonLineProcessor::default(),
                    false,
                    items,
                )
                .await,
            );
        }
        if wanted("KplJson, keyless") {
            rows.push(
                run(
                    e,
                    "KplJson, keyless",
                    KplJsonProcessor::default(),
                    false,
                    items,
                )
                .await,
            );
        }
        rows
    });
    let upstream = match emulator {
        Emulator::Kinesalite => "kinesalite",
        Emulator::KinesisMock => "kinesis-mock",
    };
    println!(
        "\n{SHARDS} shards at {RECORDS_PER_SEC} records/s and 1 MiB/s each (limits proxy over {upstream}), ~1 KB items\n"
    );
    print(&rows);
}
