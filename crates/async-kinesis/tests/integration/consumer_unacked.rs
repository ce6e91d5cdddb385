//! Records not acknowledged under `AckPolicy::Explicit`: reading pauses at
//! `max_unacked_records`, the oldest one's age is shown, and a nacked record comes again with
//! every record of its shard read after it — before the shard's children when it was the
//! shard's last. Every item is counted.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::MemoryStore;
use async_kinesis::consumer::{AckPolicy, Consumer, ConsumerBuilder, Record};
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, put, split_the_only_shard};
use futures::StreamExt;
use serde_json::Value;
use testkit::{Services, TestStream};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

type JsonConsumer = Consumer<JsonProcessor<Value>>;

/// A one-shard stream holding the records `n` of `numbers` (key "k"), and an empty store.
async fn stream_with(name: &str, numbers: std::ops::Range<u64>) -> (TestStream, MemoryStore) {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, name, 1).await;
    put(stream.client(), &json_records("k", numbers)).await;
    (stream, MemoryStore::new())
}

/// A consumer of JSON items under `AckPolicy::Explicit`, polling briskly; `configure` sets the
/// rest.
async fn explicit(
    stream: &TestStream,
    store: &MemoryStore,
    configure: impl FnOnce(ConsumerBuilder) -> ConsumerBuilder,
) -> JsonConsumer {
    let builder = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .checkpointer(store.clone())
        .ack_policy(AckPolicy::Explicit)
        .sleep_time_no_records(Duration::from_millis(100));
    configure(builder)
        .processor(JsonProcessor::new())
        .build()
        .await
        .expect("build")
}

async fn next_record(consumer: &mut JsonConsumer) -> Record<Value> {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a record in time")
        .expect("the stream goes on")
        .expect("no error item")
}

fn n_of(record: &Record<Value>) -> u64 {
    record.item["n"].as_u64().expect("n")
}

/// Polls the shard status until `check` holds for the only shard read here.
async fn until_status(
    consumer: &JsonConsumer,
    what: &str,
    check: impl Fn(&async_kinesis::consumer::ShardDetail) -> bool,
) {
    let started = Instant::now();
    loop {
        let status = consumer.shard_status();
        if status
            .shard_details
            .iter()
            .any(|d| d.is_allocated && check(d))
        {
            return;
        }
        assert!(started.elapsed() < WAIT, "{what}: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_pauses_at_max_unacked_records_and_goes_on_once_they_are_acknowledged() {
    let (stream, store) = stream_with("cons-max-unacked", 0..600).await;
    let mut consumer = explicit(&stream, &store, |b| b.max_unacked_records(100)).await;
    let mut held = Vec::new();
    for n in 0..100 {
        let record = next_record(&mut consumer).await;
        assert_eq!(n_of(&record), n);
        held.push(record);
    }
    // The reader asked for no more than the room left, and now waits.
    until_status(&consumer, "the reader waits for acknowledgements", |d| {
        d.waiting_for_acks
    })
    .await;
    let early = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await;
    assert!(early.is_err(), "nothing past the bound: {early:?}");
    let status = consumer.shard_status();
    let detail = &status.shard_details[0];
    assert_eq!(detail.unacked_records, 100, "{detail:?}");
    assert!(detail.oldest_unacked_age_ms.is_some(), "{detail:?}");
    for record in &held {
        record.ack();
    }
    let mut tally = Tally::default();
    for record in &held {
        tally.add(record);
    }
    while tally.items() < 600 {
        let record = next_record(&mut consumer).await;
        record.ack();
        tally.add(&record);
    }
    let expected = BTreeMap::from([("k".to_owned(), 600)]);
    assert_eq!(tally.account(&expected), (0, 0), "lost, duplicates");
    let report = consumer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nacked_record_comes_again_with_every_record_read_after_it() {
    let (stream, store) = stream_with("cons-nack", 0..30).await;
    let mut consumer = explicit(&stream, &store, |b| b).await;
    let mut first = Vec::new();
    for n in 0..10 {
        let record = next_record(&mut consumer).await;
        assert_eq!(n_of(&record), n);
        first.push(record);
    }
    for record in &first[..5] {
        record.ack();
    }
    first[7].ack(); // behind the gap at 5: read again too
    assert!(!first[4].nack(), "acknowledged already: nothing to do");
    assert!(first[5].nack());
    assert!(!first[6].nack(), "comes again anyway");
    // Whatever was read already is not handed out: the next record is the nacked one, and
    // the shard goes on in order from there.
    let mut again = Vec::new();
    while again.len() < 25 {
        let record = next_record(&mut consumer).await;
        record.ack();
        again.push(n_of(&record));
    }
    assert_eq!(again, (5..30).collect::<Vec<u64>>());
    // The acknowledgements of the copies read before the nack change nothing.
    first[9].ack();
    let report = consumer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    // A restart reads nothing again: the checkpoint passed every record.
    let mut restarted = explicit(&stream, &store, |b| b).await;
    let rest = tokio::time::timeout(Duration::from_secs(3), restarted.next()).await;
    assert!(rest.is_err(), "everything was checkpointed: {rest:?}");
    assert!(restarted.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_nacked_after_its_shard_ended_comes_again_before_the_children() {
    let (stream, store) = stream_with("cons-nack-end", 0..10).await;
    split_the_only_shard(stream.client()).await;
    put(stream.client(), &json_records("k", 10..20)).await;
    let mut consumer = explicit(&stream, &store, |b| b).await;
    let mut tally = Tally::default();
    let mut last = None;
    for n in 0..10 {
        let record = next_record(&mut consumer).await;
        assert_eq!(n_of(&record), n, "the parent first");
        tally.add(&record);
        if n < 9 {
            record.ack();
        } else {
            last = Some(record);
        }
    }
    let last = last.expect("the parent's last record");
    // The parent was read to its end; its children wait for its last acknowledgement.
    until_status(&consumer, "the parent read to its end", |d| {
        d.is_closed && d.unacked_records == 1
    })
    .await;
    let early = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await;
    assert!(
        early.is_err(),
        "no child before the parent ended: {early:?}"
    );
    assert!(last.nack());
    let record = next_record(&mut consumer).await;
    assert_eq!(n_of(&record), 9, "the nacked record comes again first");
    assert_eq!(record.shard_id, last.shard_id);
    tally.add(&record);
    record.ack();
    while tally.items() < 21 {
        let record = next_record(&mut consumer).await;
        assert_ne!(record.shard_id, last.shard_id, "the parent is done");
        tally.add(&record);
        record.ack();
    }
    let expected = BTreeMap::from([("k".to_owned(), 20)]);
    assert_eq!(tally.account(&expected), (0, 1), "lost, duplicates");
    let report = consumer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    stream.delete().await;
}

/// Under `AckPolicy::OnNextPoll` a record nacked and then polled past (which acknowledges the
/// record handed out last) still comes again: the poll's acknowledgement is of a copy the nack
/// set aside. Nothing is lost and a restart reads nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_on_next_poll_a_nacked_record_comes_again_though_the_next_poll_acks() {
    let (stream, store) = stream_with("cons-nack-poll", 0..10).await;
    let mut consumer = explicit(&stream, &store, |b| b.ack_policy(AckPolicy::OnNextPoll)).await;
    let mut order = Vec::new();
    let mut nacked = false;
    while order.len() < 11 {
        let record = next_record(&mut consumer).await;
        let n = n_of(&record);
        order.push(n);
        if n == 4 && !nacked {
            assert!(record.nack());
            nacked = true;
        }
    }
    assert_eq!(
        order,
        [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9],
        "4 again, then on in order"
    );
    // Let the last record's acknowledgement reach the store through one more poll.
    let early = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await;
    assert!(early.is_err(), "nothing more: {early:?}");
    let report = consumer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    let mut restarted = explicit(&stream, &store, |b| b).await;
    let rest = tokio::time::timeout(Duration::from_secs(3), restarted.next()).await;
    let again = rest.ok().flatten().map(|r| r.map(|r| n_of(&r)).ok());
    // Shutdown under OnNextPoll hands the last record back: only 9 may come again.
    assert!(matches!(again, None | Some(Some(9))), "{again:?}");
    assert!(restarted.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}
