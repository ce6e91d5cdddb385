//! The physical floor per item: the work any Kinesis client must do for a ~1 KB item, on this
//! machine. Every client figure (`async-kinesis bench`, `scripts/bench-vs-python`) is judged
//! against it.
//!
//! `cargo bench -p async-kinesis --bench floor`. Per item (criterion reports per element):
//! - produce, one record per item (Json): base64 of the data into the PutRecords JSON body, and
//!   SHA-256 of that body (SigV4 signs a hash of every request body);
//! - produce, KPL aggregate: the aggregate's MD5 digest, then the same base64 + SHA-256 of the
//!   body holding the aggregate;
//! - consume: base64 decoding of the GetRecords data (plus the MD5 check for KPL).

// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5::Digest as _;

/// Items per PutRecords call.
const ITEMS: usize = 500;
/// Bytes per item.
const ITEM_BYTES: usize = 1_000;

fn items() -> Vec<Vec<u8>> {
    (0..ITEMS)
        .map(|i| {
            let mut item = format!("{{\"id\":{i},\"pad\":\"").into_bytes();
            item.resize(ITEM_BYTES - 2, b'x');
            item.extend_from_slice(b"\"}");
            item
        })
        .collect()
}

/// A PutRecords JSON body holding `records`, base64-encoded as the SDK writes it.
fn put_records_body(records: &[&[u8]], body: &mut String) {
    body.clear();
    body.push_str("{\"Records\":[");
    for (i, data) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"Data\":\"");
        STANDARD.encode_string(data, body);
        body.push_str(&format!("\",\"PartitionKey\":\"k{:04}\"}}", i % 1_024));
    }
    body.push_str("],\"StreamName\":\"bench\"}");
}

fn sha256(body: &str) -> impl Sized {
    <sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())
}

fn floor(c: &mut Criterion) {
    let items = items();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let aggregate: Vec<u8> = items.concat();
    let mut body = String::with_capacity(ITEMS * ITEM_BYTES * 2);

    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("produce: base64 + SHA-256 of the body, per item", |b| {
        b.iter(|| {
            put_records_body(black_box(&refs), &mut body);
            black_box(sha256(&body));
        });
    });
    group.bench_function("produce KPL: MD5 + base64 + SHA-256, per item", |b| {
        b.iter(|| {
            let digest = md5::Md5::digest(black_box(&aggregate));
            black_box(digest);
            put_records_body(&[aggregate.as_slice()], &mut body);
            black_box(sha256(&body));
        });
    });
    let encoded: Vec<String> = items.iter().map(|i| STANDARD.encode(i)).collect();
    let aggregate_encoded = STANDARD.encode(&aggregate);
    let mut decoded = Vec::with_capacity(ITEMS * ITEM_BYTES);
    group.bench_function("consume: base64 decode, per item", |b| {
        b.iter(|| {
            for data in black_box(&encoded) {
                decoded.clear();
                let _ = STANDARD.decode_vec(data.as_bytes(), &mut decoded);
                black_box(&decoded);
            }
        });
    });
    group.bench_function("consume KPL: base64 decode + MD5 check, per item", |b| {
        b.iter(|| {
            decoded.clear();
            let _ = STANDARD.decode_vec(black_box(&aggregate_encoded).as_bytes(), &mut decoded);
            black_box(md5::Md5::digest(&decoded));
        });
    });
    group.finish();
}

criterion_group!(benches, floor);
criterion_main!(benches);
