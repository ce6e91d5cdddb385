//! Resuming inside a KPL aggregate: the checkpoint holds the sub-sequence number, and a restart
//! skips the user records acknowledged before.

use crate::consumer_support;

use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointStore, MemoryStore, Position, Progress};
use async_kinesis::consumer::{AckPolicy, Consumer};
use async_kinesis::processor::{KplJsonProcessor, Processor, RecordWriter};
use consumer_support::{Outgoing, init_tracing, item, put};
use futures::StreamExt;
use testkit::{Services, TestStream};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_inside_a_kpl_aggregate_skips_the_acknowledged_user_records() {
    resume_inside_an_aggregate(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_fan_out_resuming_inside_a_kpl_aggregate_skips_the_acknowledged_user_records() {
    resume_inside_an_aggregate(Some("kpl-app")).await;
}

/// Polling, or over enhanced fan-out as the consumer `fan_out`.
async fn resume_inside_an_aggregate(fan_out: Option<&str>) {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-kpl", 1).await;
    let processor: KplJsonProcessor = KplJsonProcessor::default();
    // One aggregate of 10 user records, then a second one of 5.
    let aggregate = |range: std::ops::Range<u64>| {
        let mut writer = processor.writer::<()>();
        for n in range {
            let bytes = processor.serialize(&item("agg", n)).expect("serialize");
            assert!(writer.push((), bytes, "agg", None).expect("fits").is_none());
        }
        let mut records = writer.flush();
        assert_eq!(records.len(), 1);
        Outgoing {
            key: "agg".into(),
            data: records.remove(0).data,
        }
    };
    put(stream.client(), &[aggregate(0..10), aggregate(10..15)]).await;
    let store = MemoryStore::new();
    let build = || {
        let builder = Consumer::builder(stream.name())
            .sdk_config(kinesis.sdk_config())
            .processor(processor.clone())
            .checkpointer(store.clone())
            .ack_policy(AckPolicy::Explicit)
            .shard_fetch_rate(5)
            .sleep_time_no_records(Duration::from_millis(200));
        match fan_out {
            Some(name) => builder.enhanced_fan_out(name),
            None => builder,
        }
        .build()
    };
    let mut first = build().await.expect("build");
    let mut held = Vec::new();
    for n in 0..6u64 {
        let record = tokio::time::timeout(WAIT, first.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        assert_eq!(record.item["n"], n);
        assert_eq!(record.sub_sequence, n);
        if n < 4 {
            record.ack();
        } else {
            held.push(record); // handed out, never acknowledged
        }
    }
    let report = first.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.unacked_records, 2);
    let shard = &stream.shards().await[0].shard_id;
    let Progress::At(position) = store.progress(stream.name(), shard).await.expect("read") else {
        panic!("expected a checkpoint inside the aggregate");
    };
    assert_eq!(position.sub_sequence, Some(3));
    assert_eq!(
        position,
        Position::within(position.sequence_number.clone(), 3)
    );
    drop(held);

    // The restart delivers user records 4.. of the first aggregate, then the second one.
    let mut second = build().await.expect("build");
    let mut got = Vec::new();
    while got.len() < 11 {
        let record = tokio::time::timeout(WAIT, second.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        got.push(record.item["n"].as_u64().expect("n"));
        record.ack();
    }
    assert_eq!(got, (4..15).collect::<Vec<u64>>());
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(1), second.next()).await {
        panic!("unexpected extra item {item:?}");
    }
    second.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
