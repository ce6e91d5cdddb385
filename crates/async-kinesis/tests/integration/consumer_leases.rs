//! Leases in the consumer: consumers sharing a store split the shards fairly, hand leases over
//! with their checkpoints, and a shard is read by one of them at a time — every item is
//! delivered exactly once across the group.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::{LeaseTiming, MemoryStore, WorkerId};
use async_kinesis::consumer::{ConsumeError, Consumer, Record};
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, keys, put};
use futures::StreamExt;
use testkit::{KinesisEndpoint, Services, TestStream};

const WAIT: Duration = Duration::from_secs(30);

fn timing() -> LeaseTiming {
    LeaseTiming::new(Duration::from_secs(3), Duration::from_millis(300)).expect("timing")
}

async fn consumer(
    kinesis: &KinesisEndpoint,
    stream: &TestStream,
    store: &MemoryStore,
    worker: &str,
    fan_out: Option<&str>,
) -> Consumer<JsonProcessor> {
    let builder = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::default())
        .checkpointer(store.clone())
        .worker_id(WorkerId::new(worker))
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100))
        .shard_refresh_interval(Duration::from_millis(500));
    match fan_out {
        Some(name) => builder.enhanced_fan_out(name),
        None => builder,
    }
    .build()
    .await
    .expect("build")
}

/// Polls both consumers until `total` items arrived across them (or `WAIT` passed).
async fn drain_both(
    a: &mut Consumer<JsonProcessor>,
    b: &mut Consumer<JsonProcessor>,
    tallies: (&mut Tally, &mut Tally),
    total: usize,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tallies.0.items() + tallies.1.items() < total {
        let next = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                item = a.next() => (0, item),
                item = b.next() => (1, item),
            }
        })
        .await;
        let (which, item) = next.unwrap_or_else(|_| {
            panic!(
                "{} + {} of {total} items",
                tallies.0.items(),
                tallies.1.items()
            )
        });
        let record = item.expect("open").expect("no errors");
        if which == 0 {
            tallies.0.add(&record);
        } else {
            tallies.1.add(&record);
        }
        // Counted is processed: a shutdown does not acknowledge the last record handed out.
        record.ack();
    }
}

/// Counts a record and acknowledges it (the shutdown leaves the last one handed out alone).
fn counted(tally: &mut Tally, record: Result<Record<serde_json::Value>, ConsumeError>) {
    let record = record.expect("no errors");
    tally.add(&record);
    record.ack();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_shards_and_hand_them_over_exactly_once() {
    split_and_hand_over(4, None).await;
}

/// The same over enhanced fan-out, 8 shards: hand-offs end one worker's subscription and start
/// the other's (ResourceInUse while the first is still open is waited out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fan_out_consumers_split_eight_shards_and_hand_them_over_exactly_once() {
    split_and_hand_over(8, Some("group-app")).await;
}

async fn split_and_hand_over(shards: usize, fan_out: Option<&str>) {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-lease", shards as u32).await;
    let keys = keys(12);
    let mut records = Vec::new();
    for key in &keys {
        records.extend(json_records(key, 0..30));
    }
    put(stream.client(), &records).await;
    let store = MemoryStore::with_timing(timing());

    // Alone, the first consumer takes every shard.
    let mut first = consumer(&kinesis, &stream, &store, "first", fan_out).await;
    let mut tally1 = Tally::default();
    let mut tally2 = Tally::default();
    while tally1.items() < 120 {
        let record = tokio::time::timeout(WAIT, first.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        tally1.add(&record);
        record.ack();
    }
    let group = first.group_status().await.expect("group");
    assert_eq!(group.leases_per_worker()[&WorkerId::new("first")], shards);

    // A second one joins: the first hands two shards over after checkpointing them.
    let mut second = consumer(&kinesis, &stream, &store, "second", fan_out).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let per_worker = second
            .group_status()
            .await
            .expect("group")
            .leases_per_worker();
        if per_worker.len() == 2 && per_worker.values().all(|&n| n == shards / 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not balanced: {per_worker:?}"
        );
        // Keep polling both, as an application would.
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            tokio::select! {
                item = first.next() => item.map(|r| counted(&mut tally1, r)),
                item = second.next() => item.map(|r| counted(&mut tally2, r)),
            }
        })
        .await;
    }
    let mut more = Vec::new();
    for key in &keys {
        more.extend(json_records(key, 30..45));
    }
    put(stream.client(), &more).await;
    drain_both(
        &mut first,
        &mut second,
        (&mut tally1, &mut tally2),
        360 + 180,
    )
    .await;
    assert!(tally2.items() > 0, "the second consumer read nothing");
    let shards_of = |tally: &Tally| -> Vec<String> {
        let mut ids: Vec<String> = tally.by_shard.keys().cloned().collect();
        ids.sort();
        ids
    };

    // The first stops cleanly; the second takes everything over, and reads new items too.
    let report = first.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    let mut more = Vec::new();
    for key in &keys {
        more.extend(json_records(key, 45..55));
    }
    put(stream.client(), &more).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally1.items() + tally2.items() < 660 {
        let record = tokio::time::timeout_at(deadline, second.next())
            .await
            .unwrap_or_else(|_| panic!("{} + {} of 660", tally1.items(), tally2.items()))
            .expect("open")
            .expect("no errors");
        tally2.add(&record);
    }
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(1), second.next()).await {
        panic!("unexpected extra item {item:?}");
    }
    let shards1: Vec<String> = shards_of(&tally1);
    for (key, ns) in tally2.received {
        tally1.received.entry(key).or_default().extend(ns);
    }
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), 55)).collect();
    assert_eq!(
        tally1.account(&expected),
        (0, 0),
        "lost, duplicates across both ({shards1:?})"
    );
    let group = second.group_status().await.expect("group");
    assert_eq!(group.workers, vec![WorkerId::new("second")]);
    assert_eq!(group.leases_per_worker()[&WorkerId::new("second")], shards);
    assert!(
        group
            .shards
            .iter()
            .all(|s| s.millis_behind_latest.is_some())
    );
    second.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
