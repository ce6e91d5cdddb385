//! Criterion benchmarks of the processors: serialize + aggregate (write) and deaggregate +
//! decode (read), per processor, items of ~100 B and ~1 KB, 1,000 items per iteration over 16
//! partition keys. Each is measured with `Throughput::Elements` (items/s) and
//! `Throughput::Bytes` (serialized item bytes/s).
//!
//! The `*Numbers*` groups carry number-heavy items (17-digit floats, large integers) typed and as
//! `serde_json::Value`: they measure what exact float parsing and the wide-integer checks cost.
#![allow(missing_docs, clippy::unwrap_used)]

use async_kinesis::processor::*;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

const ITEMS: usize = 1_000;

/// A small struct, serialized to about `size` bytes of JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    kind: String,
    ok: bool,
    payload: String,
}

fn events(size: usize) -> Vec<Event> {
    (0..ITEMS as u64)
        .map(|id| Event {
            id,
            kind: "click".into(),
            ok: id % 2 == 0,
            // Fixed fields take ~50 bytes of JSON.
            payload: "p".repeat(size.saturating_sub(50)),
        })
        .collect()
}

/// A number-heavy item: full-precision floats and 64-bit integers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    id: u64,
    sensor: String,
    at: f64,
    counters: Vec<i64>,
    values: Vec<f64>,
}

fn readings(size: usize) -> Vec<Reading> {
    // About 20 bytes of JSON per value; fixed fields take ~80 bytes.
    let values = size.saturating_sub(80) / 20 + 1;
    (0..ITEMS as u64)
        .map(|id| Reading {
            id: id * 7_919 + 1_000_000_000_000,
            sensor: format!("sensor-{}", id % 64),
            at: 1.7e9 + id as f64 * 0.001_953_125,
            counters: vec![-(id as i64) * 1_000_003, i64::MAX - id as i64],
            values: (0..values)
                .map(|v| {
                    ((id * 131 + v as u64) as f64 * 0.618_033_988_749_894_9).fract() * 1e3 - 5e2
                })
                .collect(),
        })
        .collect()
}

fn reading_values(size: usize) -> Vec<serde_json::Value> {
    readings(size)
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

fn strings(size: usize) -> Vec<String> {
    (0..ITEMS)
        .map(|i| format!("{i:08}{}", "s".repeat(size - 8)))
        .collect()
}

fn keys() -> Vec<String> {
    (0..ITEMS)
        .map(|i| format!("partition-{}", i % 16))
        .collect()
}

fn write<P: Processor>(p: &P, items: &[P::Item], keys: &[String]) -> usize {
    let mut writer = p.writer::<u32>();
    let mut records = 0;
    for (i, (item, key)) in items.iter().zip(keys).enumerate() {
        let data = p.serialize(item).unwrap();
        let tag = u32::try_from(i).unwrap();
        if writer.push(tag, data, key, None).unwrap().is_some() {
            records += 1;
        }
    }
    records + writer.flush().len()
}

fn records<P: Processor>(p: &P, items: &[P::Item], keys: &[String]) -> Vec<OutgoingRecord<u32>> {
    let mut writer = p.writer::<u32>();
    let mut out = Vec::new();
    for (i, (item, key)) in items.iter().zip(keys).enumerate() {
        let data = p.serialize(item).unwrap();
        out.extend(
            writer
                .push(u32::try_from(i).unwrap(), data, key, None)
                .unwrap(),
        );
    }
    out.extend(writer.flush());
    out
}

fn read<P: Processor>(p: &P, records: &[OutgoingRecord<u32>]) -> usize {
    let mut n = 0;
    for r in records {
        for item in p.read(&r.data, &r.partition_key) {
            black_box(item.unwrap());
            n += 1;
        }
    }
    n
}

fn item_bytes<P: Processor>(p: &P, items: &[P::Item]) -> u64 {
    items
        .iter()
        .map(|i| p.serialize(i).unwrap().len() as u64)
        .sum()
}

fn bench_processor<P: Processor>(
    c: &mut Criterion,
    name: &str,
    p: P,
    items_of: impl Fn(usize) -> Vec<P::Item>,
) {
    let keys = keys();
    for size in [100, 1_000] {
        let items = items_of(size);
        let bytes = item_bytes(&p, &items);
        let recs = records(&p, &items, &keys);
        let throughputs = [
            ("items", Throughput::Elements(ITEMS as u64)),
            ("bytes", Throughput::Bytes(bytes)),
        ];
        for (unit, throughput) in throughputs {
            let mut group = c.benchmark_group(format!("{name}/{unit}"));
            group.throughput(throughput);
            group.bench_function(BenchmarkId::new("write", size), |b| {
                b.iter(|| black_box(write(&p, black_box(&items), &keys)))
            });
            group.bench_function(BenchmarkId::new("read", size), |b| {
                b.iter(|| black_box(read(&p, black_box(&recs))))
            });
            group.finish();
        }
    }
}

/// The MD5 digest alone over the same KPL records: the floor under KPL write and read.
fn bench_kpl_digest(c: &mut Criterion) {
    let p = KplStringProcessor::default();
    let keys = keys();
    for size in [100, 1_000] {
        let recs = records(&p, &strings(size), &keys);
        let mut group = c.benchmark_group("KplDigestOnly/items");
        group.throughput(Throughput::Elements(ITEMS as u64));
        group.bench_function(BenchmarkId::new("md5", size), |b| {
            b.iter(|| {
                for r in &recs {
                    let body = &r.data[KPL_MAGIC.len()..r.data.len() - KPL_DIGEST_LEN];
                    black_box(Md5::digest(black_box(body)));
                }
            })
        });
        group.finish();
    }
}

fn benches(c: &mut Criterion) {
    bench_kpl_digest(c);
    bench_processor(c, "StringProcessor", StringProcessor::default(), strings);
    bench_processor(c, "JsonProcessor", JsonProcessor::of::<Event>(), events);
    bench_processor(
        c,
        "JsonLineProcessor",
        JsonLineProcessor::of::<Event>(),
        events,
    );
    bench_processor(
        c,
        "JsonListProcessor",
        JsonListProcessor::of::<Event>(),
        events,
    );
    bench_processor(c, "JsonNumbers", JsonProcessor::of::<Reading>(), readings);
    bench_processor(c, "JsonNumbersValue", JsonProcessor::new(), reading_values);
    bench_processor(
        c,
        "JsonLineNumbersValue",
        JsonLineProcessor::new(),
        reading_values,
    );
    bench_processor(
        c,
        "MsgpackProcessor",
        MsgpackProcessor::of::<Event>(),
        events,
    );
    bench_processor(
        c,
        "KplJsonProcessor",
        KplJsonProcessor::of::<Event>(),
        events,
    );
    bench_processor(
        c,
        "KplStringProcessor",
        KplStringProcessor::default(),
        strings,
    );
    bench_processor(
        c,
        "RawBytesNetstring",
        Composed::from_parts(BytesSerializer, NetstringAggregator),
        |size| strings(size).into_iter().map(Bytes::from).collect(),
    );
}

criterion_group! {
    name = processors;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(processors);
