//! Leases in the consumer: a shard held by one consumer is not read by another sharing the
//! store; after a clean shutdown the other takes over from the checkpoints, so every item is
//! delivered exactly once across both.

mod consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointStore, MemoryStore, WorkerId};
use async_kinesis::consumer::Consumer;
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, keys, put};
use futures::StreamExt;
use testkit::{Services, TestStream};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_consumer_waits_for_the_lease_then_resumes_from_the_checkpoint() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-lease", 2).await;
    let keys = keys(6);
    let mut records = Vec::new();
    for key in &keys {
        records.extend(json_records(key, 0..30));
    }
    put(stream.client(), &records).await;
    let store = MemoryStore::new();
    let build = |worker: &str| {
        Consumer::builder(stream.name())
            .sdk_config(kinesis.sdk_config())
            .processor(JsonProcessor::default())
            .checkpointer(store.clone())
            .worker_id(WorkerId::new(worker))
            .shard_fetch_rate(5)
            .sleep_time_no_records(Duration::from_millis(200))
            .shard_refresh_interval(Duration::from_millis(500))
            .build()
    };
    let mut first = build("first").await.expect("build");
    let mut tally = Tally::default();
    while tally.items() < 90 {
        let record = tokio::time::timeout(WAIT, first.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        tally.add(&record);
    }
    let leases = store.list(stream.name()).await.expect("list");
    assert_eq!(leases.len(), 2);
    assert!(
        leases
            .iter()
            .all(|l| l.owner == Some(WorkerId::new("first")))
    );

    // The second consumer finds both shards leased: it reads nothing.
    let mut second = build("second").await.expect("build");
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(2), second.next()).await {
        panic!("read a shard leased to another worker: {item:?}");
    }
    assert_eq!(second.shard_status().allocated_shards, 0);

    // The first stops cleanly (the 90th item counts as processed); the second takes over.
    let report = first.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.leases_released, 2);
    let mut tally2 = Tally::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally.items() + tally2.items() < 180 {
        let record = tokio::time::timeout_at(deadline, second.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 90 remaining", tally2.items()))
            .expect("open")
            .expect("no errors");
        tally2.add(&record);
    }
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(1), second.next()).await {
        panic!("unexpected extra item {item:?}");
    }
    for (key, ns) in tally2.received {
        tally.received.entry(key).or_default().extend(ns);
    }
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), 30)).collect();
    assert_eq!(
        tally.account(&expected),
        (0, 0),
        "lost, duplicates across both"
    );
    let leases = store.list(stream.name()).await.expect("list");
    assert!(
        leases
            .iter()
            .all(|l| l.owner == Some(WorkerId::new("second")))
    );
    second.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
