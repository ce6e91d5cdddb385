//! The Prometheus exporter over HTTP during a produce + consume run against kinesis-mock: every
//! documented metric is there, with its labels, and the counts add up to what was sent.

use crate::consumer_support::{Outgoing, init_tracing, put};
use crate::metrics_support::{Exposition, scrape};

use std::time::Duration;

use async_kinesis::consumer::{ConsumeError, Consumer};
use async_kinesis::metrics::prometheus::{self, PrometheusError};
use async_kinesis::metrics::{MetricKind, catalog, names};
use async_kinesis::processor::JsonLineProcessor;
use async_kinesis::producer::Producer;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use testkit::{Services, TestStream};

const ITEMS: u64 = 300;
const SHARDS: u32 = 2;

/// Metrics a healthy run does not produce: the CloudWatch exporter's own.
const NOT_IN_THIS_RUN: [&str; 2] = [
    names::CLOUDWATCH_EXPORT_FAILURES,
    names::CLOUDWATCH_EXPORT_DROPPED,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_scraped_with_its_labels_and_counts_that_add_up() {
    init_tracing();
    let server = prometheus::serve("127.0.0.1:0").expect("serve /metrics");
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "metrics-prom", SHARDS).await;

    // Items aggregated into JSON-lines records over two shards.
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::new())
        .buffer_time(Duration::from_millis(50))
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for n in 0..ITEMS {
        let key = format!("key-{}", n % 17);
        let item = json!({ "n": n, "pad": "x".repeat(100) });
        receipts.push(producer.put_with_key(item, key).await.expect("accepted"));
    }
    producer.flush().await.expect("flush");
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    // One record that does not decode: a consumer error of type "poison".
    put(
        stream.client(),
        &[Outgoing {
            key: "poison".into(),
            data: Bytes::from_static(b"{not json\n"),
        }],
    )
    .await;
    // A producer whose stream is deleted under it: its item fails ("not_found").
    let doomed = TestStream::create(&kinesis, "metrics-prom-gone", 1).await;
    let missing = doomed.name().to_owned();
    let lost = Producer::builder(doomed.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::new())
        .build()
        .await
        .expect("producer");
    doomed.delete().await;
    let failed = lost.put(json!({"n": -1})).await.expect("accepted").await;
    assert!(failed.is_err(), "no stream, no delivery");

    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::new())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .checkpoint_interval(Duration::from_millis(100))
        .build()
        .await
        .expect("consumer");
    let (mut items, mut poison) = (0u64, 0u64);
    while items < ITEMS || poison < 1 {
        let next = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .expect("every item in time")
            .expect("stream open");
        match next {
            Ok(record) => {
                items += 1;
                record.ack();
            }
            Err(ConsumeError::Poison(_)) => poison += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(items, ITEMS);
    // Asking for more with nothing left ends the last run of records handed out, whose
    // processing time is then recorded.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err(),
        "nothing beyond the items and the poison record"
    );
    // Checkpoints of every shard are written within a few checkpoint intervals.
    let exposition = wait_for(server.local_addr(), |e| {
        let written = e.values(names::CONSUMER_CHECKPOINT_SUCCESS, &[]);
        written.len() == SHARDS as usize
            && written.iter().all(|n| *n >= 1.0)
            && e.sum(names::CONSUMER_LAG_RECORDS, &[]) == 0.0
            && e.sum(
                names::PRODUCER_QUEUE_SIZE,
                &[("stream_name", stream.name())],
            ) == 0.0
    })
    .await;

    check_every_documented_metric(&exposition);
    check_counts(&exposition, stream.name(), &missing);

    consumer.shutdown(Duration::from_secs(5)).await;
    producer.close().await.expect("close");
    lost.close().await.expect("close");
    let after = scrape(server.local_addr()).await;
    assert_eq!(
        after.sum(names::CONSUMER_LEASES_HELD, &[]),
        0.0,
        "all released"
    );
    server.shutdown().await;
    stream.delete().await;
}

/// Scrapes until `ready` holds (at most 20 s).
async fn wait_for(addr: std::net::SocketAddr, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let exposition = scrape(addr).await;
        if ready(&exposition) || tokio::time::Instant::now() >= deadline {
            return exposition;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn check_every_documented_metric(exposition: &Exposition) {
    for metric in catalog() {
        if NOT_IN_THIS_RUN.contains(&metric.name) {
            continue;
        }
        let series = exposition.series(metric.name);
        assert!(!series.is_empty(), "{} was not exported", metric.name);
        for (labels, _) in &series {
            let mut names: Vec<&str> = labels.keys().map(String::as_str).collect();
            names.retain(|n| *n != "le");
            let mut expected: Vec<&str> = metric.labels.to_vec();
            expected.sort_unstable();
            names.sort_unstable();
            assert_eq!(names, expected, "labels of {}", metric.name);
        }
        let kind = exposition.kind(metric.name);
        assert_eq!(kind, Some(metric.kind.as_str()), "TYPE of {}", metric.name);
        if metric.kind == MetricKind::Histogram {
            assert!(
                exposition.sum(&format!("{}_count", metric.name), &[]) >= 1.0,
                "{} observed something",
                metric.name
            );
        }
    }
}

fn check_counts(e: &Exposition, stream: &str, missing: &str) {
    let on = [("stream_name", stream)];
    let items_sent = e.sum(names::PRODUCER_ITEMS_SENT, &on);
    let records_sent = e.sum(names::PRODUCER_RECORDS_SENT, &on);
    assert_eq!(items_sent, ITEMS as f64, "user records put = items sent");
    assert!(
        records_sent >= SHARDS as f64 && records_sent < items_sent,
        "JSON lines aggregate: {records_sent} Kinesis records for {items_sent} items"
    );
    assert_eq!(
        e.sum(names::CONSUMER_RECORDS_RECEIVED, &on),
        records_sent + 1.0,
        "every Kinesis record read, plus the undecodable one"
    );
    assert_eq!(
        e.sum(names::CONSUMER_RECORDS_PROCESSED, &on),
        ITEMS as f64,
        "every item passed to the application"
    );
    // Per shard, what the producer delivered is what the consumer passed on.
    for shard in e.label_values(names::PRODUCER_ITEMS_SENT, "shard_id") {
        let on_shard = [("stream_name", stream), ("shard_id", shard.as_str())];
        assert_eq!(
            e.sum(names::PRODUCER_ITEMS_SENT, &on_shard),
            e.sum(names::CONSUMER_RECORDS_PROCESSED, &on_shard),
            "{shard}"
        );
    }
    let poison_bytes = (b"{not json\n".len() + "poison".len()) as f64;
    assert_eq!(
        e.sum(names::CONSUMER_BYTES_RECEIVED, &on),
        e.sum(names::PRODUCER_BYTES_SENT, &on) + poison_bytes,
        "bytes read = bytes written"
    );
    let batch_sum = e.sum(&format!("{}_sum", names::PRODUCER_BATCH_SIZE), &on);
    assert_eq!(
        batch_sum, records_sent,
        "no retries: records per call add up"
    );
    assert_eq!(
        e.sum(&format!("{}_count", names::PRODUCER_PUT_LATENCY), &on),
        records_sent,
        "one put latency per Kinesis record"
    );
    assert_eq!(
        e.sum(&format!("{}_count", names::PRODUCER_FLUSH_DURATION), &on),
        e.sum(&format!("{}_count", names::PRODUCER_BATCH_SIZE), &on),
        "one duration per call"
    );
    assert_eq!(e.sum(names::PRODUCER_THROTTLES, &on), 0.0);
    assert_eq!(e.sum(names::PRODUCER_RETRIES, &on), 0.0);
    assert_eq!(e.sum(names::PRODUCER_QUEUE_BYTES, &on), 0.0);
    assert_eq!(
        e.sum(
            names::PRODUCER_ERRORS,
            &[("stream_name", missing), ("error_type", "not_found")]
        ),
        1.0,
        "the item put to a missing stream"
    );
    assert_eq!(
        e.sum(names::CONSUMER_ERRORS, &[("error_type", "poison")]),
        1.0
    );
    assert_eq!(
        e.sum(&format!("{}_count", names::CONSUMER_PROCESSING_TIME), &on),
        ITEMS as f64,
        "one processing time per item handed out"
    );
    let checkpoints = e.sum(names::CONSUMER_CHECKPOINT_SUCCESS, &on);
    assert!(checkpoints >= SHARDS as f64);
    assert_eq!(e.sum(names::CONSUMER_CHECKPOINT_FAILURE, &on), 0.0);
    assert_eq!(
        e.sum(
            &format!("{}_count", names::CONSUMER_CHECKPOINT_DURATION),
            &on
        ),
        checkpoints,
        "one duration per write"
    );
    let ages = e.values(names::CONSUMER_ITERATOR_AGE, &on);
    assert_eq!(
        ages.len(),
        SHARDS as usize,
        "millis behind latest per shard"
    );
    assert!(
        ages.iter().all(|age| (0.0..600_000.0).contains(age)),
        "{ages:?}"
    );
    assert_eq!(e.sum(names::CONSUMER_LEASES_HELD, &on), SHARDS as f64);
    assert_eq!(e.sum(names::CONSUMER_LEASES_TAKEN, &on), SHARDS as f64);
    assert_eq!(e.sum(names::CONSUMER_LEASES_HANDED_OFF, &on), 0.0);
    assert_eq!(e.sum(names::CONSUMER_LEASES_LOST, &on), 0.0);
    assert_eq!(e.sum(names::STREAM_SHARDS_ACTIVE, &on), SHARDS as f64);
    assert_eq!(e.sum(names::STREAM_SHARDS_CLOSED, &on), 0.0);
    assert_eq!(e.sum(names::STREAM_RESHARDING_EVENTS, &on), 0.0);
    assert_eq!(e.sum(names::CONSUMER_QUEUE_SIZE, &on), 0.0, "all taken");
    assert_eq!(e.sum(names::CONSUMER_QUEUE_BYTES, &on), 0.0);
}

#[tokio::test]
async fn a_taken_address_is_a_clear_error_and_installs_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let err = prometheus::serve(addr).expect_err("the address is taken");
    assert!(
        matches!(err, PrometheusError::AddressInUse { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot serve /metrics on {addr}: the address is already in use")
    );
    // Nothing was installed: serving on a free port still works, and answers.
    let server = prometheus::serve("127.0.0.1:0").expect("serve");
    metrics::counter!(names::CONSUMER_RECORDS_RECEIVED, "stream_name" => "s", "shard_id" => "a")
        .increment(2);
    let exposition = scrape(server.local_addr()).await;
    assert_eq!(exposition.sum(names::CONSUMER_RECORDS_RECEIVED, &[]), 2.0);
    let again = prometheus::serve("127.0.0.1:0").expect_err("one recorder per process");
    assert!(matches!(again, PrometheusError::RecorderAlreadyInstalled));
    let (status, _) = crate::metrics_support::get(server.local_addr(), "/other").await;
    assert_eq!(status, 404);
    server.shutdown().await;
    drop(taken);
}
