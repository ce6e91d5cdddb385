//! The consumer against kinesis-mock: start positions, resume, status, bad input. Every test
//! counts every item.

use crate::consumer_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointStore, MemoryStore, Progress};
use async_kinesis::consumer::{AckPolicy, BuildError, ConsumeError, Consumer, IteratorType};
use async_kinesis::processor::JsonProcessor;
use async_kinesis::{CreateStream, Error, ErrorClass, InvalidConfig};
use bytes::Bytes;
use consumer_support::{
    Outgoing, Tally, assert_quiet, init_tracing, json_records, keys, put, read_items,
};
use futures::StreamExt;
use testkit::{Services, TestStream, arrival_boundary};

const WAIT: Duration = Duration::from_secs(30);

fn builder(
    endpoint: &testkit::KinesisEndpoint,
    stream: &str,
) -> async_kinesis::consumer::ConsumerBuilder<JsonProcessor> {
    Consumer::builder(stream)
        .sdk_config(endpoint.sdk_config())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .checkpoint_interval(Duration::from_millis(200))
}

/// Items `0..per_key` for each key, one JSON record each, keys interleaved.
fn numbered(keys: &[String], from: u64, to: u64) -> (Vec<Outgoing>, BTreeMap<String, u64>) {
    let mut records = Vec::new();
    for n in from..to {
        for key in keys {
            records.extend(json_records(key, n..n + 1));
        }
    }
    let expected = keys.iter().map(|k| (k.clone(), to)).collect();
    (records, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_horizon_reads_every_shard_in_order_and_reports_status() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-th", 4).await;
    let keys = keys(16);
    let (records, expected) = numbered(&keys, 0, 50);
    put(stream.client(), &records).await;

    let mut consumer = builder(&kinesis, stream.name())
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 800, WAIT).await;
    assert_quiet(&mut consumer, Duration::from_secs(1)).await;
    let (lost, duplicates) = tally.account(&expected);
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    assert_eq!(tally.by_shard.len(), 4, "every shard delivered");

    let status = consumer.shard_status();
    assert_eq!(status.total_shards, 4);
    assert_eq!(status.active_shards, 4);
    assert_eq!(status.allocated_shards, 4);
    assert!(!status.resharding_in_progress);
    for shard in &status.shard_details {
        assert!(shard.has_iterator && shard.can_allocate && shard.is_allocated);
        assert!(shard.stats.success > 0);
        assert!(shard.last_read.is_some());
    }
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.leases_released, 4);
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_delivers_exactly_what_is_written_after_ready() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-latest", 2).await;
    let keys = keys(4);
    let (before, _) = numbered(&keys, 0, 20);
    put(stream.client(), &before).await;

    let mut consumer = builder(&kinesis, stream.name())
        .iterator_type(IteratorType::Latest)
        .build()
        .await
        .expect("build");
    tokio::time::timeout(WAIT, consumer.ready())
        .await
        .expect("ready in time")
        .expect("ready");
    // Items 20..60 are written after the ready signal: exactly those arrive.
    let (after, _) = numbered(&keys, 20, 60);
    put(stream.client(), &after).await;
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 160, WAIT).await;
    assert_quiet(&mut consumer, Duration::from_secs(1)).await;
    for key in &keys {
        assert_eq!(tally.received[key], (20..60).collect::<Vec<u64>>(), "{key}");
    }
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_timestamp_starts_at_the_timestamp() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-ts", 2).await;
    let keys = keys(4);
    let (before, _) = numbered(&keys, 0, 10);
    put(stream.client(), &before).await;
    // The emulator stamps arrivals in milliseconds; leave a clear gap between the batches.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (after, _) = numbered(&keys, 10, 30);
    put(stream.client(), &after).await;
    let early: HashSet<Bytes> = before.iter().map(|r| r.data.clone()).collect();
    let at = arrival_boundary(stream.client(), |r| early.contains(&r.data)).await;

    let mut consumer = builder(&kinesis, stream.name())
        .timestamp(at)
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 80, WAIT).await;
    assert_quiet(&mut consumer, Duration::from_secs(1)).await;
    for key in &keys {
        assert_eq!(tally.received[key], (10..30).collect::<Vec<u64>>(), "{key}");
    }
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_memory_checkpoint_without_loss_or_redelivery_of_acked_records() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-resume", 2).await;
    let keys = keys(6);
    let (records, expected) = numbered(&keys, 0, 40);
    put(stream.client(), &records).await;
    let store = MemoryStore::new();

    // First run: acknowledge the first 100 items explicitly, hold the next 20 unacknowledged.
    let mut first = builder(&kinesis, stream.name())
        .ack_policy(AckPolicy::Explicit)
        .checkpointer(store.clone())
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    let mut acked: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut held = Vec::new();
    while tally.items() < 120 {
        let record = tokio::time::timeout(WAIT, first.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        tally.add(&record);
        if tally.items() <= 100 {
            record.ack();
            let key = record.item["k"].as_str().expect("k").to_owned();
            acked
                .entry(key)
                .or_default()
                .push(record.item["n"].as_u64().expect("n"));
        } else {
            held.push(record);
        }
    }
    let report = first.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report.unacked_records, 20, "{report:?}");
    assert_eq!(report.leases_released, 2);
    let leases = store.list(stream.name()).await.expect("list");
    assert_eq!(leases.len(), 2);
    assert!(leases.iter().any(|l| matches!(l.progress, Progress::At(_))));
    drop(held);

    // Second run with the same store: everything not acknowledged arrives, nothing acknowledged.
    let mut second = builder(&kinesis, stream.name())
        .checkpointer(store.clone())
        .build()
        .await
        .expect("build");
    let remaining = 240 - 100;
    let mut tally2 = Tally::default();
    read_items(&mut second, &mut tally2, remaining, WAIT).await;
    assert_quiet(&mut second, Duration::from_secs(1)).await;
    for (key, ns) in &acked {
        for n in ns {
            assert!(
                !tally2.received.get(key).is_some_and(|got| got.contains(n)),
                "acknowledged item {key}/{n} was delivered again"
            );
        }
    }
    // Acknowledged items of the first run plus the second run: every item exactly once (the
    // first run's 20 held, unacknowledged items are the only re-deliveries).
    let (lost, duplicates) = {
        let mut combined = Tally::default();
        for (key, ns) in &acked {
            combined.received.entry(key.clone()).or_default().extend(ns);
        }
        for (key, ns) in &tally2.received {
            combined.received.entry(key.clone()).or_default().extend(ns);
        }
        combined.account(&expected)
    };
    assert_eq!(
        (lost, duplicates),
        (0, 0),
        "lost, duplicates (acked + second run)"
    );
    second.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    // A missing stream fails the build.
    let missing = testkit::random_stream_name("cons-missing");
    let err = builder(&kinesis, &missing)
        .build()
        .await
        .expect_err("missing");
    match &err {
        BuildError::Stream { source, .. } => {
            assert!(matches!(source, Error::StreamNotFound { .. }), "{source}");
            assert_eq!(source.class(), ErrorClass::NotFound);
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    // With skip_describe_stream the listing finds out: an error item, then the stream ends.
    let mut consumer = builder(&kinesis, &missing)
        .skip_describe_stream(true)
        .build()
        .await
        .expect("nothing checked");
    let item = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time");
    assert!(
        matches!(item, Some(Err(ConsumeError::Stream { .. }))),
        "{item:?}"
    );
    let end = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time");
    assert!(end.is_none(), "{end:?}");
    assert!(matches!(consumer.ready().await, Err(ConsumeError::Closed)));

    // Options out of range are refused before anything is called.
    let invalid = |result: Result<Consumer, BuildError>| match result {
        Err(BuildError::InvalidConfig(InvalidConfig { option, .. })) => option,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let name = "never-called";
    assert_eq!(
        invalid(builder(&kinesis, name).shard_fetch_rate(6).build().await),
        "shard_fetch_rate"
    );
    assert_eq!(
        invalid(builder(&kinesis, name).record_limit(10_001).build().await),
        "record_limit"
    );
    assert_eq!(
        invalid(
            builder(&kinesis, name)
                .expo_backoff(Duration::ZERO)
                .build()
                .await
        ),
        "expo_backoff"
    );
    assert_eq!(
        invalid(
            builder(&kinesis, name)
                .create_stream(CreateStream::Provisioned { shards: 0 })
                .build()
                .await
        ),
        "create_stream"
    );
    // An invalid stream name is a stream error naming the problem.
    let err = builder(&kinesis, "bad name!")
        .build()
        .await
        .expect_err("bad");
    assert!(
        matches!(
            err,
            BuildError::Stream {
                source: Error::InvalidStreamName { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_addressed_by_arn_is_consumed() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-arn", 2).await;
    let keys = keys(4);
    let (records, expected) = numbered(&keys, 0, 25);
    put(stream.client(), &records).await;
    let arn = stream.arn().await;
    let mut consumer = builder(&kinesis, &arn).build().await.expect("build");
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 100, WAIT).await;
    assert_eq!(tally.account(&expected), (0, 0));
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

/// Reads the next record's number.
async fn next_number(consumer: &mut Consumer) -> u64 {
    let record = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("no errors");
    record.item["n"].as_u64().expect("n")
}

/// Under `OnNextPoll` the record handed out last was never followed by a poll, so a shutdown
/// leaves it unacknowledged: the next run starts with it. Acknowledged explicitly before the
/// shutdown, it is not delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_the_last_record_of_on_next_poll_unacknowledged() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-last-unacked", 1).await;
    put(stream.client(), &json_records("k", 0..10)).await;
    let store = MemoryStore::new();
    let run = || async {
        builder(&kinesis, stream.name())
            .checkpointer(store.clone())
            .build()
            .await
            .expect("build")
    };

    // Items 0..=4 handed out; processing item 4 "failed" and the consumer is shut down.
    let mut first = run().await;
    for expected in 0..5 {
        assert_eq!(next_number(&mut first).await, expected);
    }
    // Handed back unacknowledged, not waited for.
    let report = first.shutdown(Duration::from_secs(300)).await;
    assert_eq!(report.unacked_records, 0, "{report:?}");

    // Item 4 comes again; this time it is processed and acknowledged before the shutdown.
    let mut second = run().await;
    let record = tokio::time::timeout(WAIT, second.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("no errors");
    assert_eq!(
        record.item["n"].as_u64(),
        Some(4),
        "the failed record again"
    );
    record.ack();
    let report = second.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unacked_records, 0, "{report:?}");

    // Nothing is lost and only item 4 came twice.
    let mut third = run().await;
    for expected in 5..10 {
        assert_eq!(next_number(&mut third).await, expected);
    }
    assert_quiet(&mut third, Duration::from_secs(1)).await;
    third.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
