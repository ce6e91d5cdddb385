//! The producer under injected faults (the limits & faults proxy in front of kinesis-mock):
//! partial PutRecords failures, 5xx answers and connection resets. Retried items all arrive,
//! exactly once; items refused for good come back to the caller with the error.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_kinesis::ErrorClass;
use async_kinesis::processor::{Processor, StringProcessor};
use async_kinesis::producer::{Producer, PutErrorKind, Receipt};
use testkit::proxy::{Fault, Limits, LimitsProxy, ProxyConfig, Schedule};
use testkit::{Services, TestStream, read_stream};

pub(crate) struct Setup {
    pub(crate) proxy: LimitsProxy,
    pub(crate) stream: TestStream,
    pub(crate) producer: Producer<StringProcessor>,
}

/// A 2-shard stream on kinesis-mock, reached through a proxy without limits; the producer's
/// client has the SDK's own retries off, so every failure reaches the producer.
pub(crate) async fn setup(prefix: &str, retry_limit: u32) -> Setup {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, prefix, 2).await;
    let config = ProxyConfig {
        limits: Limits::unlimited(),
        ..ProxyConfig::default()
    };
    let proxy = LimitsProxy::start(&Services::from_env().kinesis_mock, config)
        .await
        .expect("proxy");
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .buffer_time(Duration::from_millis(20))
        .expo_backoff(Duration::from_millis(10))
        .expo_backoff_limit(Duration::from_millis(200))
        .retry_limit(retry_limit)
        .build()
        .await
        .expect("producer");
    Setup {
        proxy,
        stream,
        producer,
    }
}

async fn put_all(producer: &Producer<StringProcessor>, count: usize) -> Vec<Receipt<String>> {
    let mut receipts = Vec::new();
    for n in 0..count {
        let receipt = producer
            .put_with_key(format!("item-{n}"), format!("key-{}", n % 16))
            .await;
        receipts.push(receipt.expect("accepted"));
    }
    receipts
}

/// How often each item is stored.
async fn stored_counts(stream: &TestStream) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for record in read_stream(stream.client()).await {
        for item in StringProcessor::default().read(&record.data, &record.partition_key) {
            *counts.entry(item.expect("decodes").item).or_insert(0) += 1;
        }
    }
    counts
}

fn assert_each_stored_once(counts: &HashMap<String, usize>, count: usize) {
    let lost = (0..count)
        .filter(|n| !counts.contains_key(&format!("item-{n}")))
        .count();
    let duplicated = counts.values().filter(|&&c| c > 1).count();
    assert_eq!(
        (lost, duplicated, counts.len()),
        (0, 0, count),
        "lost, duplicated, distinct"
    );
}

#[tokio::test]
async fn partially_failed_records_are_retried_until_all_arrive_once() {
    const ITEMS: usize = 2_000;
    // About 31 % of record attempts fail, so one item fails k times in a row with
    // probability 0.31^k: with 10 attempts some of 2,000 items ran out about once in 50
    // runs; with 40 the chance is ~1e-17 and an unlucky item waits at most ~8 s.
    const RETRIES: u32 = 40;
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("faults-partial", RETRIES).await;
    let throttles = proxy.add_fault(
        Fault::fail_records("ProvisionedThroughputExceededException")
            .schedule(Schedule::Percent(20)),
    );
    let internal =
        proxy.add_fault(Fault::fail_records("InternalFailure").schedule(Schedule::Every(7)));

    for receipt in put_all(&producer, ITEMS).await {
        receipt.await.expect("retried until delivered");
    }
    producer.close().await.expect("close");
    assert!(proxy.fault_stats(throttles).fired >= (ITEMS / 5) as u64);
    assert!(proxy.fault_stats(internal).fired > 0);
    assert_each_stored_once(&stored_counts(&stream).await, ITEMS);
    proxy
        .shutdown()
        .await
        .expect("the proxy itself never failed");
    stream.delete().await;
}

#[tokio::test]
async fn an_unknown_error_code_is_retried_then_hands_the_items_back() {
    const ITEMS: usize = 60;
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("faults-unknown", 3).await;
    // A code no table knows may be a new transient one: retried up to the limit, like the
    // consumer does, then handed back.
    let fault = proxy.add_fault(Fault::fail_records("BrandNewException"));

    let mut refused = Vec::new();
    for receipt in put_all(&producer, ITEMS).await {
        let err = receipt.await.expect_err("every record is refused");
        match err.kind() {
            PutErrorKind::Refused {
                code,
                class,
                attempts,
                ..
            } => {
                assert_eq!(
                    (code.as_str(), *class, *attempts),
                    ("BrandNewException", ErrorClass::Unknown, 3)
                );
            }
            other => panic!("unexpected error {other:?}"),
        }
        refused.push(err.into_item().expect("the item comes back"));
    }
    producer.close().await.expect("close");
    assert_eq!(
        proxy.fault_stats(fault).fired,
        3 * ITEMS as u64,
        "three attempts each"
    );
    assert_eq!(refused.len(), ITEMS, "every item comes back");
    assert!(stored_counts(&stream).await.is_empty(), "nothing stored");
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test]
async fn server_errors_and_connection_resets_are_retried() {
    const ITEMS: usize = 1_000;
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("faults-5xx", 10).await;
    let errors = proxy.add_fault(
        Fault::http_error(500, "InternalFailure")
            .on("PutRecords")
            .schedule(Schedule::First(3)),
    );
    let unavailable = proxy.add_fault(
        Fault::http_error(503, "ServiceUnavailable")
            .on("PutRecords")
            .schedule(Schedule::Every(5)),
    );
    let resets = proxy.add_fault(Fault::reset().on("PutRecords").schedule(Schedule::First(3)));

    for receipt in put_all(&producer, ITEMS).await {
        receipt.await.expect("retried until delivered");
    }
    producer.close().await.expect("close");
    assert_eq!(proxy.fault_stats(errors).fired, 3);
    assert_eq!(proxy.fault_stats(resets).fired, 3);
    assert!(proxy.fault_stats(unavailable).fired > 0);
    assert_each_stored_once(&stored_counts(&stream).await, ITEMS);
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test]
async fn items_come_back_when_retries_run_out() {
    let Setup {
        proxy,
        stream,
        producer,
    } = setup("faults-exhausted", 3).await;
    proxy.add_fault(Fault::fail_records(
        "ProvisionedThroughputExceededException",
    ));

    let receipts = put_all(&producer, 20).await;
    for receipt in receipts {
        let err = receipt.await.expect_err("always throttled");
        assert!(
            matches!(
                err.kind(),
                PutErrorKind::Refused {
                    attempts: 3,
                    class: ErrorClass::Throttling,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_retryable(), "the caller may try again later");
        assert!(err.item().is_some());
    }
    producer.close().await.expect("close");
    assert!(stored_counts(&stream).await.is_empty());
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test]
async fn a_request_too_large_for_the_endpoint_is_split_and_delivered() {
    // kinesalite refuses request bodies over 7 MiB (base64 makes 10 MiB of records ~13 MiB)
    // with HTTP 413; the producer must send the same records in smaller calls.
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "faults-too-large", 1).await;
    let refused_calls = Arc::new(AtomicUsize::new(0));
    let counter = refused_calls.clone();
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(StringProcessor::default())
        .put_bandwidth_limit_per_shard(1 << 20)
        .after_flush(move |report| {
            if report.accepted == 0 && report.retried == report.records {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .buffer_time(Duration::from_millis(200))
        .build()
        .await
        .expect("producer");
    let item = "x".repeat(900 * 1024);
    let mut receipts = Vec::new();
    for n in 0..12 {
        receipts.push(
            producer
                .put_with_key(format!("{n}:{item}"), format!("k{n}"))
                .await
                .expect("accepted"),
        );
    }
    for receipt in receipts {
        receipt.await.expect("delivered in smaller calls");
    }
    producer.close().await.expect("close");
    assert!(
        refused_calls.load(Ordering::SeqCst) >= 1,
        "a call was refused as too large"
    );
    assert_eq!(read_stream(stream.client()).await.len(), 12);
    stream.delete().await;
}
