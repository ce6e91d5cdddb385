//! A user that stalls for 60 s, then resumes: the readers wait (no fetching, bounded memory) and
//! nothing is lost, while more is written during the stall.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::consumer::Consumer;
use async_kinesis::processor::JsonLineProcessor;
use consumer_support::{Outgoing, Tally, init_tracing, json_line_record, keys, put};
use futures::StreamExt;
use testkit::{Services, TestStream};

const MAX_QUEUE: usize = 200;
const RECORD_LIMIT: usize = 10;
const ITEMS_PER_RECORD: u64 = 10;

fn records(keys: &[String], rounds: std::ops::Range<u64>) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for round in rounds {
        let from = round * ITEMS_PER_RECORD;
        for key in keys {
            out.push(json_line_record(key, from..from + ITEMS_PER_RECORD));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_user_slows_fetching_and_loses_nothing() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-stall", 2).await;
    let keys = keys(6);
    put(stream.client(), &records(&keys, 0..30)).await; // 1,800 items

    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::default())
        .max_queue_size(MAX_QUEUE)
        .record_limit(RECORD_LIMIT)
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    while tally.items() < 50 {
        let record = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        tally.add(&record);
    }

    // The stall: 60 s without polling, while 1,200 more items are written.
    let writer = {
        let client = stream.client().clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            for round in 30..50 {
                put(&client, &records(&keys, round..round + 1)).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await; // let the readers fill the queue
    let calls = |status: &async_kinesis::consumer::ConsumerStatus| -> u64 {
        status.shard_details.iter().map(|s| s.stats.success).sum()
    };
    let before = consumer.shard_status();
    let mut peak_unacked = 0;
    for _ in 0..11 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let status = consumer.shard_status();
        let unacked: usize = status.shard_details.iter().map(|s| s.unacked_records).sum();
        peak_unacked = peak_unacked.max(unacked);
    }
    let after = consumer.shard_status();
    writer.await.expect("writer");
    // Bounded: the queue, one batch per shard waiting for room, the rest of the batch the
    // consumer took off the queue, and the record handed out.
    let batch = RECORD_LIMIT * ITEMS_PER_RECORD as usize;
    let bound = MAX_QUEUE + 2 * batch + batch + 1;
    println!("peak unacknowledged items during the stall: {peak_unacked} (bound {bound})");
    assert!(peak_unacked <= bound, "{peak_unacked} > {bound}");
    // The readers wait for room instead of fetching (at most one call each after the check).
    assert!(
        calls(&after) <= calls(&before) + 2,
        "GetRecords went on during the stall: {} -> {}",
        calls(&before),
        calls(&after)
    );

    // Resume: everything arrives, once, in order.
    let total = 50 * ITEMS_PER_RECORD as usize * keys.len();
    while tally.items() < total {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {total}", tally.items()))
            .expect("open");
        match next {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
    let expected: BTreeMap<String, u64> = keys
        .iter()
        .map(|k| (k.clone(), 50 * ITEMS_PER_RECORD))
        .collect();
    assert_eq!(tally.account(&expected), (0, 0), "lost, duplicates");
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    stream.delete().await;
}
