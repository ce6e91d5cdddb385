//! Criterion benchmarks of the processors: serialize + aggregate (write) and deaggregate +
//! decode (read), per processor, items of ~100 B and ~1 KB, 1,000 items per iteration over 16
//! partition keys. Each is measured with `Throughput::Elements` (items/s) and
//! `Throughput::Bytes` (serialized item bytes/s).
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
    bench_processor(
        c,
        "JsonProcessor",
        JsonProcessor::<Event>::default(),
        events,
    );
    bench_processor(
        c,
        "JsonLineProcessor",
        JsonLineProcessor::<Event>::default(),
        events,
    );
    bench_processor(
        c,
        "JsonListProcessor",
        JsonListProcessor::<Event>::default(),
        events,
    );
    bench_processor(
        c,
        "MsgpackProcessor",
        MsgpackProcessor::<Event>::default(),
        events,
    );
    bench_processor(
        c,
        "KplJsonProcessor",
        KplJsonProcessor::<Event>::default(),
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
        Composed::new(BytesSerializer, NetstringAggregator),
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
