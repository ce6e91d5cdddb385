//! The consumer under injected faults (throttling, expired iterators, 5xx via the limits proxy)
//! and with undecodable records under each poison policy. Every item is counted.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_kinesis::StreamClient;
use async_kinesis::checkpoint::{CheckpointStore, MemoryStore, Progress};
use async_kinesis::consumer::{ConsumeError, Consumer, PoisonAction, PoisonPolicy};
use async_kinesis::processor::{JsonLineProcessor, JsonProcessor};
use bytes::Bytes;
use consumer_support::{Outgoing, Tally, init_tracing, json_line_record, json_records, keys, put};
use futures::StreamExt;
use testkit::proxy::{Fault, LimitsProxy, ProxyConfig, Schedule};
use testkit::{Services, TestStream};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_expired_iterators_and_server_errors_lose_and_duplicate_nothing() {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-faults", 2).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    let throttle = proxy.add_fault(
        Fault::http_error(400, "ProvisionedThroughputExceededException")
            .on("GetRecords")
            .schedule(Schedule::Every(3)),
    );
    let expire = proxy.add_fault(Fault::expire_iterators().schedule(Schedule::Every(4)));
    let server = proxy.add_fault(
        Fault::http_error(500, "InternalFailure")
            .on("GetRecords")
            .schedule(Schedule::Every(7)),
    );
    let iterator = proxy.add_fault(
        Fault::http_error(503, "ServiceUnavailable")
            .on("GetShardIterator")
            .schedule(Schedule::First(2)),
    );

    let mut consumer = Consumer::builder(stream.name())
        .client(proxy.client())
        .processor(JsonLineProcessor::default())
        .shard_fetch_rate(5)
        .record_limit(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .expo_backoff(Duration::from_millis(50))
        .expo_backoff_limit(Duration::from_millis(500))
        .build()
        .await
        .expect("build");

    // 3,000 items in 300 records of 10, written while the consumer reads.
    let keys = keys(10);
    let writer = {
        let client = stream.client().clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            for round in 0..30u64 {
                let records: Vec<Outgoing> = keys
                    .iter()
                    .map(|k| json_line_record(k, round * 10..round * 10 + 10))
                    .collect();
                put(&client, &records).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), 300)).collect();
    let mut tally = Tally::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally.items() < 3_000 {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 3000 items", tally.items()))
            .expect("open");
        match next {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
    writer.await.expect("writer");
    let (lost, duplicates) = tally.account(&expected);
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    // Retried faults never surface as error items.
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    for fault in [throttle, expire, server, iterator] {
        assert!(proxy.fault_stats(fault).fired > 0, "fault {fault:?} fired");
    }
    let status = consumer.shard_status();
    let throttled: u64 = status.shard_details.iter().map(|s| s.stats.throttled).sum();
    assert!(throttled > 0, "throttling is counted per shard");
    consumer.shutdown(Duration::from_secs(5)).await;
    proxy.shutdown().await.expect("proxy ran cleanly");
    stream.delete().await;
}

/// Items 0..10 of every key, then one undecodable record under `key-000`, then items 10..20.
async fn write_with_poison(client: &StreamClient, keys: &[String]) -> Bytes {
    let mut first = Vec::new();
    let mut second = Vec::new();
    for key in keys {
        first.extend(json_records(key, 0..10));
        second.extend(json_records(key, 10..20));
    }
    put(client, &first).await;
    let poison = Bytes::from_static(b"{\"k\": \"key-000\", \"n\": broken");
    put(
        client,
        &[Outgoing {
            key: keys[0].clone(),
            data: poison.clone(),
        }],
    )
    .await;
    put(client, &second).await;
    poison
}

struct PoisonRun {
    tally: Tally,
    poison: Vec<async_kinesis::consumer::PoisonRecord>,
    store: MemoryStore,
    poisoned_shard: String,
}

async fn consume_with(
    kinesis: &testkit::KinesisEndpoint,
    stream: &str,
    policy: PoisonPolicy,
    expect_items: usize,
) -> PoisonRun {
    let store = MemoryStore::new();
    let mut consumer = Consumer::builder(stream)
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::default())
        .checkpointer(store.clone())
        .poison_policy(policy)
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    let mut poison = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally.items() < expect_items || poison.is_empty() {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {expect_items} items", tally.items()))
            .expect("open");
        match next {
            Ok(record) => tally.add(&record),
            Err(ConsumeError::Poison(record)) => poison.push(*record),
            Err(other) => panic!("unexpected error item {other:?}"),
        }
    }
    // Nothing more comes (for Stop: the rest of the poisoned shard stays unread).
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
        panic!("unexpected extra item {item:?}");
    }
    let poisoned_shard = poison[0].shard_id.to_string();
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    PoisonRun {
        tally,
        poison,
        store,
        poisoned_shard,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_error_items_then_each_policy_applies() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-poison", 2).await;
    let keys = keys(8);
    let raw = write_with_poison(stream.client(), &keys).await;
    let all: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), 20)).collect();

    // Skip: the error item carries the raw record; every good item arrives; the checkpoint
    // moves past the poison.
    let skip = consume_with(&kinesis, stream.name(), PoisonPolicy::Skip, 160).await;
    assert_eq!(skip.poison.len(), 1);
    let p = &skip.poison[0];
    assert_eq!(p.action, PoisonAction::Skipped);
    assert_eq!(p.data, raw);
    assert_eq!(&*p.partition_key, "key-000");
    assert_eq!(p.sub_sequence, 0);
    assert_eq!(skip.tally.account(&all), (0, 0));
    let progress = skip
        .store
        .progress(stream.name(), &skip.poisoned_shard)
        .await
        .expect("progress");
    match progress {
        Progress::At(position) => assert!(
            async_kinesis::checkpoint::compare_sequence_numbers(
                &position.sequence_number,
                &p.sequence_number
            )
            .is_gt(),
            "checkpoint {position} passed the poison at {}",
            p.sequence_number
        ),
        other => panic!("expected a checkpoint, got {other:?}"),
    }

    // Stop: the poisoned shard stops before it (half of its items were written before the
    // poison); the other shard is read completely.
    let other_shard_items = 160 - skip.tally.by_shard[&skip.poisoned_shard].len() / 2;
    let stop = consume_with(
        &kinesis,
        stream.name(),
        PoisonPolicy::Stop,
        other_shard_items,
    )
    .await;
    assert_eq!(stop.poison[0].action, PoisonAction::Stopped);
    assert_eq!(
        stop.tally.by_shard[&stop.poisoned_shard].len(),
        skip.tally.by_shard[&skip.poisoned_shard].len() / 2,
        "the poisoned shard delivers exactly the items before the poison"
    );
    let other: Vec<&String> = skip
        .tally
        .by_shard
        .keys()
        .filter(|s| **s != skip.poisoned_shard)
        .collect();
    for shard in other {
        assert_eq!(
            stop.tally.by_shard.get(shard).map(Vec::len),
            skip.tally.by_shard.get(shard).map(Vec::len),
            "shard {shard} is read completely"
        );
    }
    match stop
        .store
        .progress(stream.name(), &stop.poisoned_shard)
        .await
        .expect("progress")
    {
        Progress::At(position) => assert!(
            async_kinesis::checkpoint::compare_sequence_numbers(
                &position.sequence_number,
                &stop.poison[0].sequence_number
            )
            .is_lt(),
            "checkpoint {position} stays before the poison"
        ),
        other => panic!("expected a checkpoint, got {other:?}"),
    }

    // Dead letter accepted: the callback gets the record; reading goes on.
    let letters: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = letters.clone();
    let accept = PoisonPolicy::DeadLetter(Arc::new(move |poison| {
        sink.lock().expect("lock").push(poison.data.clone());
        Ok(())
    }));
    let dead = consume_with(&kinesis, stream.name(), accept, 160).await;
    assert_eq!(dead.poison[0].action, PoisonAction::DeadLettered);
    assert_eq!(*letters.lock().expect("lock"), vec![raw.clone()]);
    assert_eq!(dead.tally.account(&all), (0, 0));

    // Dead letter refused: like Stop, with the callback's error attached.
    let refuse = PoisonPolicy::DeadLetter(Arc::new(|_| Err("dead-letter queue down".into())));
    let refused = consume_with(&kinesis, stream.name(), refuse, other_shard_items).await;
    assert_eq!(refused.poison[0].action, PoisonAction::Stopped);
    assert!(
        refused.poison[0]
            .dead_letter_error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("queue down"))
    );
    stream.delete().await;
}
