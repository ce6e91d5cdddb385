//! Store entries of finished shards that left the stream's listing (trimmed after the retention
//! period) are deleted by a running consumer; nothing else is: not unfinished entries of
//! unknown shards, not finished shards still listed, and nothing when reading only some shards.

use crate::consumer_support;

use std::time::Duration;

use async_kinesis::checkpoint::{
    CheckpointStore, Claim, LeaseInfo, LeaseTiming, MemoryStore, Position, Progress, WorkerId,
};
use async_kinesis::consumer::Consumer;
use async_kinesis::processor::JsonProcessor;
use consumer_support::{init_tracing, json_records, put, split_the_only_shard};
use futures::StreamExt;
use testkit::{Services, TestStream};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);
const TRIMMED: &str = "shardId-000000009999";
const UNFINISHED: &str = "shardId-000000009998";

fn timing() -> LeaseTiming {
    LeaseTiming::new(Duration::from_secs(3), Duration::from_millis(500)).expect("timing")
}

/// Writes an entry for `shard` as a worker long gone left it: checkpointed, finished or not,
/// released.
async fn leave_entry(store: &MemoryStore, stream: &str, shard: &str, finished: bool) {
    let worker = WorkerId::new("gone");
    let Claim::Acquired { lease, .. } = store.claim(stream, shard, &worker).await.expect("claim")
    else {
        panic!("a fresh shard is claimed");
    };
    store
        .checkpoint(&lease, &Position::after("7"))
        .await
        .expect("checkpoint");
    if finished {
        store.mark_shard_end(&lease).await.expect("end");
    }
    store.release(&lease).await.expect("release");
}

async fn listed(store: &MemoryStore, stream: &str) -> Vec<LeaseInfo> {
    store.list(stream).await.expect("list")
}

fn ids(entries: &[LeaseInfo]) -> Vec<&str> {
    entries.iter().map(|e| e.shard_id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_entries_of_shards_gone_from_the_listing_are_deleted_and_nothing_else() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-prune", 1).await;
    put(stream.client(), &json_records("k", 0..10)).await;
    let parent = split_the_only_shard(stream.client()).await;
    put(stream.client(), &json_records("k", 10..20)).await;
    let store = MemoryStore::with_timing(timing());
    leave_entry(&store, stream.name(), TRIMMED, true).await;
    leave_entry(&store, stream.name(), UNFINISHED, false).await;

    let mut consumer = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .checkpointer(store.clone())
        .sleep_time_no_records(Duration::from_millis(100))
        .processor(JsonProcessor::new())
        .build()
        .await
        .expect("build");
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let record = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a record in time")
            .expect("the stream goes on")
            .expect("no error item");
        seen.push(record.item["n"].as_u64().expect("n"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<u64>>(), "every record once");

    // The parent ends, is recorded finished, and stays: it is still listed.
    let started = Instant::now();
    loop {
        let entries = listed(&store, stream.name()).await;
        let parent_done = entries
            .iter()
            .any(|e| e.shard_id == parent.shard_id && e.progress == Progress::ShardEnd);
        if parent_done && !ids(&entries).contains(&TRIMMED) {
            break;
        }
        assert!(started.elapsed() < WAIT, "not pruned: {entries:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more heartbeats change nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let entries = listed(&store, stream.name()).await;
    let unfinished = entries
        .iter()
        .find(|e| e.shard_id == UNFINISHED)
        .unwrap_or_else(|| panic!("an unfinished entry is never pruned: {entries:?}"));
    assert_eq!(unfinished.progress, Progress::At(Position::after("7")));
    assert!(
        ids(&entries).contains(&parent.shard_id.as_str()),
        "a finished shard still listed is kept: {entries:?}"
    );
    assert_eq!(
        entries.len(),
        4,
        "parent, two children, the unfinished one: {entries:?}"
    );
    consumer.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_some_shards_prunes_nothing() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-prune-only", 1).await;
    put(stream.client(), &json_records("k", 0..5)).await;
    let shard = stream.client().list_shards().await.expect("list")[0]
        .shard_id
        .clone();
    let store = MemoryStore::with_timing(timing());
    leave_entry(&store, stream.name(), TRIMMED, true).await;
    let mut consumer = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .checkpointer(store.clone())
        .only_shards([shard])
        .sleep_time_no_records(Duration::from_millis(100))
        .processor(JsonProcessor::new())
        .build()
        .await
        .expect("build");
    for _ in 0..5 {
        tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a record in time")
            .expect("the stream goes on")
            .expect("no error item");
    }
    // Several heartbeats (every 500 ms) pass.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let entries = listed(&store, stream.name()).await;
    assert!(ids(&entries).contains(&TRIMMED), "{entries:?}");
    consumer.shutdown(Duration::from_secs(10)).await;
}
