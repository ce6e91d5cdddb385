//! Reading a stream up to its end: `caught_up()`, a subset of shards, a start at a sequence
//! number.

use std::time::Duration;

use async_kinesis::consumer::Consumer;
use futures::StreamExt;
use serde_json::Value;
use testkit::{Services, TestStream};

use crate::consumer_support::{json_records, put};

/// Reads until `caught_up()` says everything was read; the items' `n` and shard in order.
async fn read_to_the_end(consumer: &mut Consumer) -> Vec<(String, u64)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not caught up within 60 s: {got:?}"
        );
        match tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
            Ok(Some(Ok(record))) => {
                let item: &Value = &record.item;
                got.push((record.shard_id.to_string(), item["n"].as_u64().expect("n")));
            }
            Ok(Some(Err(err))) => panic!("error item: {err}"),
            Ok(None) => panic!("the consumer ended"),
            Err(_) => {
                if consumer.caught_up().await.expect("store answers") {
                    return got;
                }
            }
        }
    }
}

fn consumer(stream: &TestStream) -> async_kinesis::consumer::ConsumerBuilder {
    Consumer::builder(stream.name()).sdk_config(Services::from_env().kinesis_mock().sdk_config())
}

#[tokio::test]
async fn caught_up_once_every_record_was_handed_out() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "caughtup", 2).await;
    for key in ["a", "b", "c", "d"] {
        put(stream.client(), &json_records(key, 0..5)).await;
    }
    let mut reader = consumer(&stream).build().await.expect("built");
    assert!(
        !reader.caught_up().await.expect("answers"),
        "nothing read yet"
    );
    let got = read_to_the_end(&mut reader).await;
    assert_eq!(got.len(), 20, "{got:?}");
    let status = reader.shard_status();
    assert!(
        status
            .shard_details
            .iter()
            .all(|d| d.at_tip && d.is_read_up()),
        "{status:?}"
    );
    reader.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

#[tokio::test]
async fn only_the_named_shards_are_read() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "onlyshards", 2).await;
    for key in ["a", "b", "c", "d", "e", "f"] {
        put(stream.client(), &json_records(key, 0..2)).await;
    }
    let mut reader = consumer(&stream)
        .only_shards(["shardId-000000000001"])
        .build()
        .await
        .expect("built");
    let got = read_to_the_end(&mut reader).await;
    assert!(!got.is_empty());
    assert!(
        got.iter().all(|(shard, _)| shard == "shardId-000000000001"),
        "{got:?}"
    );
    let all = testkit::read_shard(stream.client(), "shardId-000000000001").await;
    assert_eq!(got.len(), all.len(), "every record of the named shard");
    assert_eq!(reader.shard_status().total_shards, 1);
    reader.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

#[tokio::test]
async fn a_shard_starts_at_the_sequence_number_given() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "atseq", 1).await;
    put(stream.client(), &json_records("k", 0..6)).await;
    let shard = "shardId-000000000000";
    let stored = testkit::read_shard(stream.client(), shard).await;
    let mut reader = consumer(&stream)
        .start_at_sequence_number(shard, stored[3].sequence_number.as_str())
        .build()
        .await
        .expect("built");
    let got: Vec<u64> = read_to_the_end(&mut reader)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(got, [3, 4, 5]);
    reader.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
