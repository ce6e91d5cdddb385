//! The shard lifecycle at its edges: a shutdown that waits long for acknowledgements, a
//! shutdown asked for before the first listing answered, a listing slower than a lease, and
//! `only_shards` over a split. Every item is counted.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::{
    CheckpointStore, LeaseTiming, MemoryStore, Position, Progress, WorkerId,
};
use async_kinesis::consumer::{AckPolicy, Consumer};
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, keys, put, split_the_only_shard};
use futures::StreamExt;
use serde_json::Value;
use testkit::proxy::{Fault, LimitsProxy, ProxyConfig};
use testkit::{Services, TestStream};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

/// Short leases, so that a lease not renewed runs out within the test.
fn short_leases() -> LeaseTiming {
    LeaseTiming::new(Duration::from_secs(3), Duration::from_secs(1)).expect("timing")
}

async fn next_record(
    consumer: &mut Consumer<JsonProcessor<Value>>,
) -> async_kinesis::consumer::Record<Value> {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a record in time")
        .expect("the stream goes on")
        .expect("no error item")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waiting_for_acks_longer_than_a_lease_keeps_it_and_hands_over_cleanly() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-long-shutdown", 1).await;
    let key = "k".to_owned();
    put(stream.client(), &json_records(&key, 0..10)).await;
    let store = MemoryStore::with_timing(short_leases());
    let builder = |worker: &str| {
        Consumer::builder(stream.name())
            .client(stream.client().sdk_client().clone())
            .processor(JsonProcessor::new())
            .checkpointer(store.clone())
            .worker_id(WorkerId::new(worker))
            .ack_policy(AckPolicy::Explicit)
            .sleep_time_no_records(Duration::from_millis(100))
    };
    // "z-first" reads alone: acks items 0 and 1, holds item 2 unacknowledged.
    let mut first = builder("z-first").build().await.expect("build");
    for n in 0..2 {
        let record = next_record(&mut first).await;
        assert_eq!(record.item["n"], n);
        record.ack();
    }
    let held = next_record(&mut first).await;
    assert_eq!(held.item["n"], 2);
    let acker = held.acker();
    let shutdown = tokio::spawn(first.shutdown(Duration::from_secs(30)));
    // "a-second" joins; it sorts first, so the shard is its share, but the shutting-down
    // worker still holds the lease: it must not get it before the final checkpoint.
    let mut second = builder("a-second").build().await.expect("build");
    let waited = Instant::now();
    let mut early = Vec::new();
    while waited.elapsed() < Duration::from_secs(7) {
        // More than two sessions: a lease not renewed meanwhile would have passed over.
        if let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(200), second.next()).await
        {
            early.push(item.map(|r| r.item));
        }
    }
    assert!(
        early.is_empty(),
        "delivered before the hand-over: {early:?}"
    );
    acker.ack();
    let report = tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("the shutdown ends once everything is acknowledged")
        .expect("shutdown task");
    eprintln!("shutdown after {:?}: {report:?}", waited.elapsed());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.leases_released, 1);
    let shard_id = stream.shards().await.remove(0).shard_id;
    let progress = store
        .progress(stream.name(), &shard_id)
        .await
        .expect("progress");
    let Progress::At(Position {
        sequence_number, ..
    }) = &progress
    else {
        panic!("the final checkpoint was written: {progress:?}");
    };
    assert_eq!(sequence_number.as_ref(), held.sequence_number.as_ref());
    // The next worker goes on after the held record: nothing lost, nothing twice.
    let mut tally = Tally::default();
    while tally.items() < 7 {
        let record = next_record(&mut second).await;
        record.ack();
        tally.add(&record);
    }
    assert_eq!(tally.received[&key], (3..10).collect::<Vec<u64>>());
    assert!(second.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_before_the_first_listing_answers_returns_at_once() {
    init_tracing();
    let services = Services::from_env();
    let stream = TestStream::create(&services.kinesis_mock(), "cons-early-shutdown", 1).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    // Throttled listings are retried without limit: without a shutdown, forever.
    for op in ["ListShards", "DescribeStream", "DescribeStreamSummary"] {
        proxy.add_fault(Fault::http_error(400, "LimitExceededException").on(op));
    }
    let consumer = Consumer::builder(stream.name())
        .client(proxy.client())
        .processor(JsonProcessor::new())
        .skip_describe_stream(true)
        .expo_backoff(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let deadline = Instant::now() + WAIT;
    while proxy.counters().calls("ListShards") + proxy.counters().calls("DescribeStream") < 3 {
        assert!(Instant::now() < deadline, "the listing is retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = tokio::time::timeout(WAIT, consumer.shutdown(Duration::from_secs(5)))
        .await
        .expect("the shutdown is answered while listings are throttled");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.leases_released, 0);
    proxy.shutdown().await.expect("proxy ran cleanly");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_slower_than_a_lease_does_not_cost_the_lease() {
    init_tracing();
    let services = Services::from_env();
    let stream = TestStream::create(&services.kinesis_mock(), "cons-slow-listing", 2).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    let mut consumer = Consumer::builder(stream.name())
        .client(proxy.client())
        .processor(JsonProcessor::new())
        .checkpointer(MemoryStore::with_timing(short_leases()))
        .shard_refresh_interval(Duration::from_secs(1))
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    consumer.ready().await.expect("ready");
    // From now on every listing takes 8 s: more than two sessions of 3 s.
    let slow: Vec<_> = ["ListShards", "DescribeStream"]
        .into_iter()
        .map(|op| proxy.add_fault(Fault::latency(Duration::from_secs(8)).on(op)))
        .collect();
    let keys = keys(4);
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(14) {
        let records: Vec<_> = keys
            .iter()
            .flat_map(|k| json_records(k, n..n + 1))
            .collect();
        put(stream.client(), &records).await;
        n += 1;
        let pause = Instant::now() + Duration::from_millis(250);
        while let Ok(Some(item)) = tokio::time::timeout_at(pause, consumer.next()).await {
            match item {
                Ok(record) => tally.add(&record),
                Err(err) => tally.errors.push(err),
            }
        }
    }
    let delayed: u64 = slow
        .into_iter()
        .filter_map(|id| proxy.remove_fault(id))
        .map(|stats| stats.fired)
        .sum();
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), n)).collect();
    let deadline = Instant::now() + WAIT;
    while tally.account(&expected).0 > 0 {
        let item = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("every item in time")
            .expect("the stream goes on");
        match item {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
    let (lost, duplicates) = tally.account(&expected);
    eprintln!(
        "{delayed} listings delayed 8 s: {} items, lost {lost}, duplicates {duplicates}, errors {:?}",
        tally.items(),
        tally.errors
    );
    assert!(delayed >= 1, "a listing was delayed");
    assert_eq!(lost, 0);
    assert!(
        tally.errors.is_empty(),
        "no lease was lost while a listing was slow: {:?}",
        tally.errors
    );
    assert_eq!(duplicates, 0, "no lease changed hands");
    assert!(consumer.shutdown(Duration::from_secs(5)).await.is_clean());
    proxy.shutdown().await.expect("proxy ran cleanly");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_shards_keeps_out_the_children_a_shards_end_names() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-only-split", 1).await;
    let parent = stream.shards().await.remove(0).shard_id;
    let key = "k".to_owned();
    put(stream.client(), &json_records(&key, 0..5)).await;
    let mut consumer = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .processor(JsonProcessor::new())
        .only_shards([parent.clone()])
        // Listings would add the children too, then drop them; only ChildShards names them.
        .shard_refresh_interval(Duration::from_secs(3_600))
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    while tally.items() < 5 {
        let record = next_record(&mut consumer).await;
        tally.add(&record);
    }
    split_the_only_shard(stream.client()).await;
    put(stream.client(), &json_records(&key, 5..25)).await;
    // The parent ends; its children are not ours.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = Vec::new();
    while Instant::now() < deadline {
        if let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        {
            after.push(item.map(|r| (r.shard_id.to_string(), r.item)));
        }
        let status = consumer.shard_status();
        if status
            .shard_details
            .iter()
            .any(|s| s.shard_id == parent && s.is_finished)
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Ok(Some(item)) =
        tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
    {
        after.push(item.map(|r| (r.shard_id.to_string(), r.item)));
    }
    assert!(
        after.is_empty(),
        "nothing after the split is read: {after:?}"
    );
    let status = consumer.shard_status();
    assert!(
        status.shard_details.iter().all(|s| s.shard_id == parent),
        "only the parent is known: {:?}",
        status.shard_details
    );
    assert_eq!(tally.received[&key], (0..5).collect::<Vec<u64>>());
    assert!(consumer.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}
