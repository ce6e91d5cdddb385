//! The producer against kinesis-mock: every item accounted for, read back exactly once, in key
//! order; ARN addressing, create_stream, bad input, closing, dropping, a deleted stream.

use std::collections::HashMap;
use std::time::Duration;

use async_kinesis::processor::{JsonLineProcessor, Processor, StringProcessor};
use async_kinesis::producer::{Producer, PutErrorKind, Receipt};
use async_kinesis::{CreateStream, Error};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use testkit::{Services, TestStream, random_stream_name, read_stream};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    key: String,
    n: u64,
}

/// Puts orders `0..count` keyed `key-<n % keys>`; the receipts in order.
async fn put_orders<P>(producer: &Producer<P>, count: u64, keys: u64) -> Vec<Receipt<Order>>
where
    P: Processor<Item = Order>,
{
    let mut receipts = Vec::with_capacity(count as usize);
    for n in 0..count {
        let key = format!("key-{}", n % keys);
        let order = Order {
            key: key.clone(),
            n,
        };
        receipts.push(producer.put_with_key(order, key).await.expect("accepted"));
    }
    receipts
}

/// A new test stream on kinesis-mock and a producer for it.
async fn stream_and_producer<P: Processor>(
    prefix: &str,
    shards: u32,
    processor: P,
    buffer_time: Duration,
) -> (TestStream, Producer<P>) {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, prefix, shards).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(processor)
        .buffer_time(buffer_time)
        .build()
        .await
        .expect("producer");
    (stream, producer)
}

/// Checks that `receipt` is already resolved (`why` says by what) and delivered.
fn expect_delivered_already<T: std::fmt::Debug>(receipt: Receipt<T>, why: &str) {
    // Unconstrained: tokio's cooperative budget would otherwise make a ready receipt look
    // pending after many polls in a row.
    tokio::task::unconstrained(receipt)
        .now_or_never()
        .expect(why)
        .expect("delivered");
}

/// Decodes every stored record with `processor`; returns the items in stored order.
async fn stored_items<P: Processor>(stream: &TestStream, processor: &P) -> Vec<P::Output> {
    let mut items = Vec::new();
    for record in read_stream(stream.client()).await {
        for decoded in processor.read(&record.data, &record.partition_key) {
            items.push(decoded.expect("every stored item decodes").item);
        }
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_items_arrive_exactly_once_in_key_order() {
    const ITEMS: u64 = 100_000;
    const KEYS: u64 = 200;
    let processor = JsonLineProcessor::of::<Order>();
    let (stream, producer) = stream_and_producer(
        "producer-100k",
        4,
        processor.clone(),
        Duration::from_millis(500),
    )
    .await;

    let receipts = put_orders(&producer, ITEMS, KEYS).await;
    let mut shards_used = HashMap::new();
    for receipt in receipts {
        let delivery = receipt.await.expect("every receipt resolves to a delivery");
        *shards_used.entry(delivery.shard_id).or_insert(0u64) += 1;
    }
    producer.close().await.expect("close");
    assert_eq!(shards_used.len(), 4, "mixed keys spread over all shards");

    let stored = stored_items(&stream, &processor).await;
    let mut seen = vec![0u32; ITEMS as usize];
    let mut last_per_key: HashMap<String, u64> = HashMap::new();
    for order in &stored {
        seen[order.n as usize] += 1;
        if let Some(previous) = last_per_key.insert(order.key.clone(), order.n) {
            assert!(
                previous < order.n,
                "key {} out of order: {previous} then {}",
                order.key,
                order.n
            );
        }
    }
    let lost = seen.iter().filter(|&&count| count == 0).count();
    let duplicated = seen.iter().filter(|&&count| count > 1).count();
    assert_eq!((lost, duplicated), (0, 0), "lost and duplicated items");
    stream.delete().await;
}

#[tokio::test]
async fn a_stream_addressed_by_arn_receives_items() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "producer-arn", 2).await;
    let producer = Producer::builder(stream.arn().await)
        .sdk_config(kinesis.sdk_config())
        .processor(StringProcessor::default())
        .build()
        .await
        .expect("producer by ARN");
    assert!(producer.stream().arn().is_some());
    let mut receipts = Vec::new();
    for n in 0..100 {
        receipts.push(
            producer
                .put_with_key(format!("item-{n}"), format!("k{n}"))
                .await
                .expect("accepted"),
        );
    }
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    producer.close().await.expect("close");
    let mut items = stored_items(&stream, &StringProcessor::default()).await;
    items.sort();
    let mut expected: Vec<String> = (0..100).map(|n| format!("item-{n}")).collect();
    expected.sort();
    assert_eq!(items, expected);
    stream.delete().await;
}

#[tokio::test]
async fn create_stream_creates_a_missing_stream() {
    let kinesis = Services::from_env().kinesis_mock();
    let name = random_stream_name("producer-create");
    let producer = Producer::builder(name.as_str())
        .sdk_config(kinesis.sdk_config())
        .processor(StringProcessor::default())
        .create_stream(CreateStream::Provisioned { shards: 3 })
        .build()
        .await
        .expect("producer creates the stream");
    let delivery = producer
        .put("hello".to_owned())
        .await
        .expect("accepted")
        .await
        .expect("delivered");
    assert!(delivery.shard_id.starts_with("shardId-"));
    producer.close().await.expect("close");
    let client = kinesis.client(&name);
    assert_eq!(client.describe().await.expect("exists").open_shard_count, 3);
    client.delete().await.expect("delete");
}

#[tokio::test]
async fn explicit_hash_keys_choose_the_shard() {
    let (stream, producer) = stream_and_producer(
        "producer-ehk",
        2,
        StringProcessor::default(),
        Duration::from_millis(10),
    )
    .await;
    let mut shards = stream.shards().await;
    shards.sort_by_key(|s| s.starting_hash_key);
    for (hash_key, shard) in [("0", &shards[0]), (&*u128::MAX.to_string(), &shards[1])] {
        let delivery = producer
            .put_with_hash_key("x".to_owned(), "same-key", hash_key)
            .await
            .expect("accepted")
            .await
            .expect("delivered");
        assert_eq!(&*delivery.shard_id, shard.shard_id);
    }
    producer.close().await.expect("close");
    stream.delete().await;
}

#[tokio::test]
async fn bad_items_come_back_with_a_clear_error_and_the_producer_keeps_working() {
    let (stream, producer) = stream_and_producer(
        "producer-bad",
        1,
        StringProcessor::default(),
        Duration::from_millis(10),
    )
    .await;

    let huge = "x".repeat(1024 * 1024);
    let err = producer
        .put_with_key(huge.clone(), "k")
        .await
        .expect_err("too large");
    assert!(
        matches!(err.kind(), PutErrorKind::TooLarge { max: 1_048_576, .. }),
        "{err}"
    );
    assert_eq!(err.into_item(), Some(huge));

    for key in [String::new(), "k".repeat(257)] {
        let err = producer
            .put_with_key("a".to_owned(), key)
            .await
            .expect_err("bad key");
        assert!(
            matches!(err.kind(), PutErrorKind::InvalidPartitionKey(_)),
            "{err}"
        );
        assert_eq!(err.item().map(String::as_str), Some("a"));
    }
    let too_big = "340282366920938463463374607431768211456"; // 2^128
    for hash_key in [too_big, "-1", "007", "twelve", ""] {
        let err = producer
            .put_with_hash_key("b".to_owned(), "k", hash_key)
            .await
            .expect_err("bad ehk");
        assert!(
            matches!(err.kind(), PutErrorKind::InvalidExplicitHashKey(_)),
            "{hash_key}: {err}"
        );
        assert_eq!(err.into_item().as_deref(), Some("b"));
    }

    let delivered = producer
        .put_with_key("fine".to_owned(), "k")
        .await
        .expect("accepted")
        .await;
    assert!(delivered.is_ok(), "{delivered:?}");
    producer.close().await.expect("close");
    assert_eq!(
        stored_items(&stream, &StringProcessor::default()).await,
        ["fine"]
    );
    stream.delete().await;
}

#[tokio::test]
async fn puts_after_close_are_refused_with_the_item() {
    let (stream, producer) = stream_and_producer(
        "producer-closed",
        1,
        StringProcessor::default(),
        Duration::from_millis(500),
    )
    .await;
    let other_handle = producer.clone();
    let receipt = producer.put("before".to_owned()).await.expect("accepted");
    producer.close().await.expect("close");
    expect_delivered_already(receipt, "close resolved every receipt");

    let err = other_handle
        .put("after".to_owned())
        .await
        .expect_err("closed");
    assert!(matches!(err.kind(), PutErrorKind::Closed));
    assert_eq!(err.into_item().as_deref(), Some("after"));
    assert!(matches!(producer.close().await, Err(Error::Closed { .. })));
    stream.delete().await;
}

#[tokio::test]
async fn flush_returns_once_every_earlier_item_is_resolved() {
    // Without the flush, items would wait a minute for fuller records.
    let (stream, producer) = stream_and_producer(
        "producer-flush",
        2,
        JsonLineProcessor::of::<Order>(),
        Duration::from_secs(60),
    )
    .await;
    let receipts = put_orders(&producer, 500, 7).await;
    producer.flush().await.expect("flush");
    for receipt in receipts {
        expect_delivered_already(receipt, "resolved by the flush");
    }
    producer.close().await.expect("close");
    stream.delete().await;
}

#[tokio::test]
async fn dropping_every_handle_still_delivers_what_was_accepted() {
    let (stream, producer) = stream_and_producer(
        "producer-drop",
        1,
        StringProcessor::default(),
        Duration::from_millis(500),
    )
    .await;
    let mut receipts = Vec::new();
    for n in 0..50 {
        receipts.push(producer.put(format!("item-{n}")).await.expect("accepted"));
    }
    drop(producer);
    for receipt in receipts {
        receipt
            .await
            .expect("delivered after the handles were dropped");
    }
    assert_eq!(
        stored_items(&stream, &StringProcessor::default())
            .await
            .len(),
        50
    );
    stream.delete().await;
}

#[tokio::test]
async fn a_deleted_stream_fails_every_pending_item_with_stream_not_found() {
    let (stream, producer) = stream_and_producer(
        "producer-deleted",
        1,
        JsonLineProcessor::of::<Order>(),
        Duration::from_secs(60),
    )
    .await;
    let receipts = put_orders(&producer, 20, 1).await;
    let client = stream.client().clone();
    stream.delete().await;
    while client.describe().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer
        .flush()
        .await
        .expect("flush answers even when everything failed");
    for (n, receipt) in receipts.into_iter().enumerate() {
        let err = receipt.await.expect_err("stream is gone");
        match err.kind() {
            PutErrorKind::Request { source, .. } => {
                assert!(
                    matches!(**source, Error::StreamNotFound { .. }),
                    "{source:?}"
                )
            }
            other => panic!("expected StreamNotFound, got {other:?}"),
        }
        assert_eq!(err.into_item().map(|o| o.n), Some(n as u64));
    }
    let later = producer
        .put_with_key(
            Order {
                key: "k".into(),
                n: 99,
            },
            "k",
        )
        .await
        .expect("accepted")
        .await;
    assert!(later.is_err(), "items after the stream vanished fail too");
    producer.close().await.expect("close");
}

#[tokio::test]
async fn a_missing_stream_or_missing_credentials_fail_the_build() {
    let kinesis = Services::from_env().kinesis_mock();
    let missing = Producer::builder(random_stream_name("producer-missing").as_str())
        .sdk_config(kinesis.sdk_config())
        .build()
        .await
        .expect_err("missing stream");
    assert!(
        matches!(missing, Error::StreamNotFound { .. }),
        "{missing:?}"
    );

    let mut no_credentials = kinesis.sdk_config().to_builder();
    no_credentials.set_credentials_provider(None);
    let err = Producer::builder("any-stream")
        .sdk_config(&no_credentials.build())
        .build()
        .await
        .expect_err("no credentials");
    assert!(matches!(err, Error::NoCredentials { .. }), "{err:?}");

    let invalid = Producer::builder("not a name")
        .build()
        .await
        .expect_err("invalid name");
    assert!(matches!(invalid, Error::InvalidStreamName { .. }));
}
