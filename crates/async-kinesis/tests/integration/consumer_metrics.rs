//! The consumer records its metrics (FORMATS.md names) through the `metrics` facade.

use crate::consumer_support;

use std::time::Duration;

use async_kinesis::consumer::{ConsumeError, Consumer};
use async_kinesis::metrics::names;
use async_kinesis::processor::JsonProcessor;
use bytes::Bytes;
use consumer_support::{Outgoing, init_tracing, json_records, put};
use futures::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use testkit::{Services, TestStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_checkpoints_errors_and_shards_are_measured() {
    init_tracing();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test process");

    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-metrics", 1).await;
    let mut records = json_records("k", 0..20);
    records.push(Outgoing {
        key: "k".into(),
        data: Bytes::from_static(b"not json"),
    });
    put(stream.client(), &records).await;
    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::new())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .checkpoint_interval(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let (mut items, mut poison) = (0, 0);
    while items < 20 || poison < 1 {
        match tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("in time")
            .expect("open")
        {
            Ok(_) => items += 1,
            Err(ConsumeError::Poison(_)) => poison += 1,
            Err(other) => panic!("{other}"),
        }
    }
    consumer.shutdown(Duration::from_secs(5)).await;

    let snapshot = snapshotter.snapshot().into_vec();
    let sum = |name: &str, label: Option<(&str, &str)>| -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .filter(|(key, ..)| {
                key.key()
                    .labels()
                    .any(|l| l.key() == "stream_name" && l.value() == stream.name())
            })
            .filter(|(key, ..)| {
                label
                    .is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
            })
            .map(|(_, _, _, value)| match value {
                DebugValue::Counter(c) => *c,
                DebugValue::Gauge(g) => g.into_inner() as u64,
                DebugValue::Histogram(h) => h.len() as u64,
            })
            .sum()
    };
    assert_eq!(sum(names::CONSUMER_RECORDS_RECEIVED, None), 21);
    assert!(sum(names::CONSUMER_BYTES_RECEIVED, None) > 21 * 10);
    assert!(sum(names::CONSUMER_CHECKPOINT_SUCCESS, None) >= 1);
    assert_eq!(
        sum(names::CONSUMER_ERRORS, Some(("error_type", "poison"))),
        1,
        "one undecodable record"
    );
    assert_eq!(sum(names::STREAM_SHARDS_ACTIVE, None), 1);
    assert!(sum(names::CONSUMER_PROCESSING_TIME, None) >= 20);
    assert!(
        snapshot
            .iter()
            .any(|(key, ..)| key.key().name() == names::CONSUMER_LAG_RECORDS)
    );
    stream.delete().await;
}
