//! Producer flow control against kinesis-mock: room reserved ahead of the item (`reserve`,
//! `Permit`) loses nothing when the wait is cancelled, and flushes and closes with a deadline
//! (`flush_within`, `close_within`) give up waiting without giving up the items.

use std::collections::HashMap;
use std::time::Duration;

use crate::producer_faults::{Setup, setup};
use async_kinesis::Error;
use async_kinesis::processor::{Processor, StringProcessor};
use async_kinesis::producer::{Producer, PutErrorKind, Receipt};
use testkit::proxy::{Fault, Schedule};
use testkit::{Services, TestStream, read_stream};

/// Guards waits that must end (not a speed claim: generous for a loaded machine).
const PATIENCE: Duration = Duration::from_secs(60);

/// A 2-shard stream on kinesis-mock and a producer for it queueing at most `max_queue_size`.
async fn stream_and_producer(
    prefix: &str,
    max_queue_size: usize,
) -> (TestStream, Producer<StringProcessor>) {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, prefix, 2).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(StringProcessor::default())
        .buffer_time(Duration::from_millis(20))
        .max_queue_size(max_queue_size)
        .build()
        .await
        .expect("producer");
    (stream, producer)
}

/// Every stored item, in stored order (per shard), with its partition key.
async fn stored(stream: &TestStream) -> Vec<(String, String)> {
    let mut items = Vec::new();
    for record in read_stream(stream.client()).await {
        for item in StringProcessor::default().read(&record.data, &record.partition_key) {
            items.push((record.partition_key.clone(), item.expect("decodes").item));
        }
    }
    items
}

/// Checks that `stored` holds exactly `expected` (each once), and in their order per key.
fn assert_stored_exactly(stored: &[(String, String)], expected: &[(String, String)]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, item) in stored {
        *counts.entry(item.as_str()).or_insert(0) += 1;
    }
    let lost = expected
        .iter()
        .filter(|(_, item)| !counts.contains_key(item.as_str()))
        .count();
    let duplicated = counts.values().filter(|&&count| count > 1).count();
    assert_eq!(
        (lost, duplicated, stored.len()),
        (0, 0, expected.len()),
        "lost, duplicated, stored"
    );
    let per_key = |items: &[(String, String)]| {
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        for (key, item) in items {
            keys.entry(key.clone()).or_default().push(item.clone());
        }
        keys
    };
    assert_eq!(per_key(stored), per_key(expected), "order per key");
}

async fn resolve_all(receipts: Vec<Receipt<String>>) {
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
}

#[tokio::test]
async fn a_cancelled_reserve_loses_nothing_and_takes_no_room() {
    let (stream, producer) = stream_and_producer("permit-cancel", 1).await;
    let held = producer.reserve().await.expect("room");
    // The only slot is held: this reserve waits, and is cancelled by the timeout.
    let cancelled = tokio::time::timeout(Duration::from_millis(200), producer.reserve()).await;
    assert!(cancelled.is_err(), "no room while the only permit is held");

    let mut expected = vec![("k0".to_owned(), "item-0".to_owned())];
    let mut receipts = vec![held.put_with_key("item-0".to_owned(), "k0").expect("put")];
    for n in 1..20 {
        let (key, item) = (format!("k{}", n % 3), format!("item-{n}"));
        let receipt = tokio::time::timeout(PATIENCE, producer.put_with_key(item.clone(), &key))
            .await
            .expect("room comes back as items resolve")
            .expect("accepted");
        receipts.push(receipt);
        expected.push((key, item));
    }
    resolve_all(receipts).await;
    producer.close().await.expect("close");
    assert_stored_exactly(&stored(&stream).await, &expected);
    stream.delete().await;
}

#[tokio::test]
async fn items_put_through_permits_all_arrive_once_in_key_order() {
    const ITEMS: usize = 200;
    let (stream, producer) = stream_and_producer("permit-many", 50).await;
    let mut receipts = Vec::new();
    let mut expected = Vec::new();
    for n in 0..ITEMS {
        let (key, item) = (format!("key-{}", n % 7), format!("item-{n}"));
        let permit = producer.reserve().await.expect("room");
        receipts.push(permit.put_with_key(item.clone(), &key).expect("accepted"));
        expected.push((key, item));
    }
    resolve_all(receipts).await;
    producer.close().await.expect("close");
    assert_stored_exactly(&stored(&stream).await, &expected);
    stream.delete().await;
}

#[tokio::test]
async fn a_dropped_permit_and_a_refused_put_give_their_room_back() {
    let (stream, producer) = stream_and_producer("permit-drop", 1).await;
    drop(producer.reserve().await.expect("room"));
    let permit = tokio::time::timeout(PATIENCE, producer.reserve())
        .await
        .expect("the dropped permit's room is back")
        .expect("room");

    // Larger than a record may be (the key counts too): refused, with the item.
    let too_large = "x".repeat(1024 * 1024);
    let err = permit
        .put_with_key(too_large.clone(), "k")
        .expect_err("too large");
    assert!(matches!(err.kind(), PutErrorKind::TooLarge { .. }), "{err}");
    assert_eq!(err.into_item(), Some(too_large));

    let permit = tokio::time::timeout(PATIENCE, producer.reserve())
        .await
        .expect("the refused put's room is back")
        .expect("room");
    let err = permit
        .put_with_key("bad key".to_owned(), "")
        .expect_err("an empty key");
    assert!(
        matches!(err.kind(), PutErrorKind::InvalidPartitionKey(_)),
        "{err}"
    );
    assert_eq!(err.into_item().as_deref(), Some("bad key"));

    let permit = tokio::time::timeout(PATIENCE, producer.reserve())
        .await
        .expect("room is back again")
        .expect("room");
    let receipt = permit
        .put_with_hash_key("routed".to_owned(), "k", "0")
        .expect("accepted");
    receipt.await.expect("delivered");
    producer.close().await.expect("close");
    assert_stored_exactly(
        &stored(&stream).await,
        &[("k".to_owned(), "routed".to_owned())],
    );
    stream.delete().await;
}

#[tokio::test]
async fn after_close_reserve_is_refused_and_a_held_permit_gives_its_item_back() {
    let (stream, producer) = stream_and_producer("permit-close", 1).await;
    let held = producer.reserve().await.expect("room");
    producer.close().await.expect("close");
    assert!(
        matches!(
            producer.reserve().await,
            Err(Error::Closed { what: "producer" })
        ),
        "reserve after close"
    );
    let err = held
        .put_with_key("late".to_owned(), "k")
        .expect_err("closed");
    assert!(matches!(err.kind(), PutErrorKind::Closed), "{err}");
    assert_eq!(err.into_item().as_deref(), Some("late"));
    assert!(stored(&stream).await.is_empty(), "nothing stored");
    stream.delete().await;
}

/// Puts `items` named `<prefix>-<n>` under one key; the receipts and what should be stored.
async fn put_some(
    producer: &Producer<StringProcessor>,
    prefix: &str,
    items: usize,
) -> (Vec<Receipt<String>>, Vec<(String, String)>) {
    let mut receipts = Vec::new();
    let mut expected = Vec::new();
    for n in 0..items {
        let item = format!("{prefix}-{n}");
        receipts.push(
            producer
                .put_with_key(item.clone(), "k")
                .await
                .expect("accepted"),
        );
        expected.push(("k".to_owned(), item));
    }
    (receipts, expected)
}

// The emulator's answer is held back for seconds (SLOW) against a wait of a fraction of one
// (SHORT), so the first wait cannot end in time; the later waits are generous.
const SLOW: Duration = Duration::from_secs(4);
const SHORT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_within_times_out_while_calls_are_slow_and_succeeds_when_they_answer() {
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("permit-flush-within", 10).await;
    proxy.add_fault(
        Fault::latency(SLOW)
            .on("PutRecords")
            .schedule(Schedule::First(1)),
    );
    let (receipts, mut expected) = put_some(&producer, "slow", 10).await;
    match producer.flush_within(SHORT).await {
        Err(Error::Timeout { what, waited }) => {
            assert_eq!((what, waited), ("producer flush", SHORT));
        }
        other => panic!("expected a flush timeout, got {other:?}"),
    }
    // The flush went on in the background: waiting longer sees it through.
    producer.flush_within(PATIENCE).await.expect("flushed");
    resolve_all(receipts).await;

    let (receipts, more) = put_some(&producer, "quick", 10).await;
    producer.flush_within(PATIENCE).await.expect("flushed");
    resolve_all(receipts).await;
    expected.extend(more);
    producer.close().await.expect("close");
    assert_stored_exactly(&stored(&stream).await, &expected);
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_within_times_out_while_calls_are_slow_and_the_items_still_arrive() {
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("permit-close-within", 10).await;
    proxy.add_fault(
        Fault::latency(SLOW)
            .on("PutRecords")
            .schedule(Schedule::First(1)),
    );
    let (receipts, expected) = put_some(&producer, "item", 10).await;
    match producer.close_within(SHORT).await {
        Err(Error::Timeout { what, waited }) => {
            assert_eq!((what, waited), ("producer close", SHORT));
        }
        other => panic!("expected a close timeout, got {other:?}"),
    }
    assert!(
        matches!(
            producer.put("refused".to_owned()).await.map(drop),
            Err(ref err) if matches!(err.kind(), PutErrorKind::Closed)
        ),
        "closed all the same"
    );
    // Closing went on in the background: every item is delivered.
    resolve_all(receipts).await;
    assert_stored_exactly(&stored(&stream).await, &expected);

    // With calls answering, close_within finishes in time.
    let (other_stream, other) = stream_and_producer("permit-close-within-ok", 10).await;
    let (receipts, _) = put_some(&other, "ok", 5).await;
    other.close_within(PATIENCE).await.expect("closed in time");
    resolve_all(receipts).await;
    other_stream.delete().await;
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}
