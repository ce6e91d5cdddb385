//! Enhanced fan-out against kinesis-mock (which implements RegisterStreamConsumer and
//! SubscribeToShard): start positions, resume after a restart, many shards, bad input. Every
//! test counts every item. Faults inside subscriptions: `consumer_fanout_faults`.

use crate::consumer_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_kinesis::InvalidConfig;
use async_kinesis::checkpoint::MemoryStore;
use async_kinesis::consumer::{BuildError, Consumer, ConsumerBuilder, IteratorType, ReadMode};
use async_kinesis::processor::JsonProcessor;
use bytes::Bytes;
use consumer_support::{
    Outgoing, Tally, assert_quiet, init_tracing, json_records, keys, put, read_items,
};
use futures::StreamExt;
use testkit::group::error_chain as chain;
use testkit::{KinesisEndpoint, Services, TestStream, arrival_boundary};

const WAIT: Duration = Duration::from_secs(60);

pub fn fan_out_builder(
    endpoint: &KinesisEndpoint,
    stream: &str,
    name: &str,
) -> ConsumerBuilder<JsonProcessor> {
    Consumer::builder(stream)
        .sdk_config(endpoint.sdk_config())
        .enhanced_fan_out(name)
        .checkpoint_interval(Duration::from_millis(200))
        .shard_refresh_interval(Duration::from_secs(1))
}

/// Items `from..to` for each key, one JSON record each, keys interleaved.
pub fn numbered(keys: &[String], from: u64, to: u64) -> Vec<Outgoing> {
    let mut records = Vec::new();
    for n in from..to {
        for key in keys {
            records.extend(json_records(key, n..n + 1));
        }
    }
    records
}

/// The next item, which must be a record and come within `WAIT`.
async fn next_record(
    consumer: &mut Consumer,
) -> async_kinesis::consumer::Record<serde_json::Value> {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("no errors")
}

fn expected(keys: &[String], to: u64) -> BTreeMap<String, u64> {
    keys.iter().map(|k| (k.clone(), to)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_horizon_over_fan_out_reads_every_shard_and_shows_the_mode() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-th", 4).await;
    let keys = keys(16);
    put(stream.client(), &numbered(&keys, 0, 40)).await;

    let mut consumer = fan_out_builder(&kinesis, stream.name(), "th-app")
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 640, WAIT).await;
    // Written while subscribed: pushed on the open subscriptions.
    put(stream.client(), &numbered(&keys, 40, 50)).await;
    read_items(&mut consumer, &mut tally, 800, WAIT).await;
    assert_quiet(&mut consumer, Duration::from_secs(2)).await;
    assert_eq!(
        tally.account(&expected(&keys, 50)),
        (0, 0),
        "lost, duplicates"
    );
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);

    let status = consumer.shard_status();
    assert_eq!(status.allocated_shards, 4);
    for shard in &status.shard_details {
        assert_eq!(shard.read_mode, ReadMode::FanOut, "{shard:?}");
        assert!(shard.has_iterator && shard.stats.success > 0, "{shard:?}");
    }
    let json = serde_json::to_value(&status).expect("serializable");
    assert_eq!(json["shard_details"][0]["read_mode"], "fan_out");
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_at_timestamp_over_fan_out_read_exactly_what_was_written_after() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-latest", 2).await;
    let keys = keys(8);
    let first = numbered(&keys, 0, 10);
    put(stream.client(), &first).await;

    // LATEST: nothing written before the start; everything after.
    let mut latest = fan_out_builder(&kinesis, stream.name(), "latest-app")
        .iterator_type(IteratorType::Latest)
        .build()
        .await
        .expect("build");
    latest.ready().await.expect("subscribed");
    assert_quiet(&mut latest, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    put(stream.client(), &numbered(&keys, 10, 30)).await;
    let mut tally = Tally::default();
    read_items(&mut latest, &mut tally, 160, WAIT).await;
    assert_quiet(&mut latest, Duration::from_secs(2)).await;
    for (key, got) in &tally.received {
        assert_eq!(got, &(10..30).collect::<Vec<u64>>(), "key {key}");
    }
    assert!(latest.shutdown(Duration::from_secs(5)).await.is_clean());

    // AT_TIMESTAMP between the two batches: exactly the second one.
    let early: HashSet<Bytes> = first.iter().map(|r| r.data.clone()).collect();
    let after = arrival_boundary(stream.client(), |r| early.contains(&r.data)).await;
    let mut at = fan_out_builder(&kinesis, stream.name(), "timestamp-app")
        .timestamp(after)
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_items(&mut at, &mut tally, 160, WAIT).await;
    assert_quiet(&mut at, Duration::from_secs(2)).await;
    for (key, got) in &tally.received {
        assert_eq!(got, &(10..30).collect::<Vec<u64>>(), "key {key}");
    }
    assert!(at.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_over_fan_out_resumes_after_the_checkpoint() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-resume", 2).await;
    let keys = keys(6);
    put(stream.client(), &numbered(&keys, 0, 20)).await;
    let store = MemoryStore::new();

    let mut first = fan_out_builder(&kinesis, stream.name(), "resume-app")
        .checkpointer(store.clone())
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    while tally.items() < 120 {
        let record = tokio::time::timeout(WAIT, first.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no errors");
        tally.add(&record);
        record.ack();
    }
    assert!(first.shutdown(Duration::from_secs(5)).await.is_clean());

    put(stream.client(), &numbered(&keys, 20, 35)).await;
    let mut second = fan_out_builder(&kinesis, stream.name(), "resume-app")
        .checkpointer(store.clone())
        .build()
        .await
        .expect("build");
    read_items(&mut second, &mut tally, 210, WAIT).await;
    assert_quiet(&mut second, Duration::from_secs(2)).await;
    // Everything acknowledged was checkpointed at the shutdown: nothing comes twice.
    assert_eq!(
        tally.account(&expected(&keys, 35)),
        (0, 0),
        "lost, duplicates"
    );
    assert!(second.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

/// Every processor reads the same over fan-out as when polling: the records' bytes are the
/// same, decoded by the same code; this checks the aggregated ones end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_records_over_fan_out_are_split_into_their_items() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-lines", 2).await;
    let keys = keys(5);
    let records: Vec<Outgoing> = (0..10u64)
        .flat_map(|round| {
            keys.iter()
                .map(move |k| consumer_support::json_line_record(k, round * 7..round * 7 + 7))
                .collect::<Vec<_>>()
        })
        .collect();
    put(stream.client(), &records).await;
    let mut consumer = fan_out_builder(&kinesis, stream.name(), "lines-app")
        .processor(async_kinesis::processor::JsonLineProcessor::default())
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally.items() < 350 {
        let record = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 350", tally.items()))
            .expect("open")
            .expect("no errors");
        tally.add(&record);
    }
    assert_eq!(
        tally.account(&expected(&keys, 70)),
        (0, 0),
        "lost, duplicates"
    );
    assert!(consumer.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_shards_over_one_fan_out_consumer_are_all_followed() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-200", 200).await;
    let keys = keys(1_000);
    put(stream.client(), &numbered(&keys, 0, 2)).await;
    let rss_before = testkit::process::rss_mib();
    let mut consumer = fan_out_builder(&kinesis, stream.name(), "wide-app")
        .shard_refresh_interval(Duration::from_secs(5))
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 2_000, WAIT).await;
    assert_quiet(&mut consumer, Duration::from_secs(2)).await;
    assert_eq!(
        tally.account(&expected(&keys, 2)),
        (0, 0),
        "lost, duplicates"
    );
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    let status = consumer.shard_status();
    let followed = status
        .shard_details
        .iter()
        .filter(|s| s.read_mode == ReadMode::FanOut && s.has_iterator)
        .count();
    let with_items = tally.by_shard.len();
    println!(
        "200 shards: {followed} subscribed, {with_items} with items, RSS {rss_before:.1} → {:.1} MiB",
        testkit::process::rss_mib()
    );
    assert_eq!(followed, 200);
    assert!(with_items >= 190, "{with_items} shards delivered items");
    assert!(consumer.shutdown(Duration::from_secs(10)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fan_out_settings_fail_the_build_with_clear_errors() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-bad", 1).await;
    let other = TestStream::create(&kinesis, "efo-other", 1).await;

    let invalid = fan_out_builder(&kinesis, stream.name(), "no spaces allowed")
        .build()
        .await
        .expect_err("invalid name");
    assert!(
        matches!(
            &invalid,
            BuildError::InvalidConfig(InvalidConfig {
                option: "enhanced_fan_out",
                ..
            })
        ),
        "{invalid}"
    );

    let missing = fan_out_builder(&kinesis, "efo-no-such-stream", "app")
        .build()
        .await
        .expect_err("no stream");
    assert!(matches!(missing, BuildError::Stream { .. }), "{missing}");

    // A consumer of the other stream, by ARN.
    let other_arn = other.arn().await;
    let registered = other
        .client()
        .sdk_client()
        .register_stream_consumer()
        .stream_arn(&other_arn)
        .consumer_name("theirs")
        .send()
        .await
        .expect("register");
    let theirs = registered
        .consumer()
        .expect("consumer")
        .consumer_arn()
        .to_owned();
    let wrong = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .enhanced_fan_out_arn(&theirs)
        .build()
        .await
        .expect_err("another stream's consumer");
    let message = chain(&wrong);
    assert!(
        message.contains("belongs to the stream") && message.contains(&other_arn),
        "{message}"
    );
    other.delete().await;
    stream.delete().await;
}

/// Puts `items` with the producer of `processor` and reads them back over fan-out; returns
/// the items read, as `show` prints them.
async fn through_fan_out<P>(
    kinesis: &KinesisEndpoint,
    processor: P,
    items: Vec<P::Item>,
    show: impl Fn(&P::Output) -> Vec<String>,
) -> Vec<String>
where
    P: async_kinesis::processor::Processor + Clone,
{
    let stream = TestStream::create(kinesis, "efo-proc", 2).await;
    let producer = async_kinesis::Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(processor.clone())
        .build()
        .await
        .expect("producer");
    let count = items.len();
    let mut receipts = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("key-{}", i % 7);
        receipts.push(producer.put_with_key(item, key).await.expect("accepted"));
    }
    producer.close().await.expect("closed");
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(processor)
        .enhanced_fan_out("proc-app")
        .build()
        .await
        .expect("build");
    let mut read = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while read.len() < count {
        let record = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} items", read.len()))
            .expect("open")
            .expect("no errors");
        read.extend(show(&record.item));
    }
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        panic!("unexpected extra item {:?}", extra.map(|r| show(&r.item)));
    }
    assert!(consumer.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
    read.sort();
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_processor_reads_the_same_items_over_fan_out() {
    use async_kinesis::processor::{
        JsonLineProcessor, JsonListProcessor, JsonProcessor, StringProcessor,
    };
    use serde_json::{Value, json};
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let values: Vec<Value> = (0..60u64)
        .map(|n| json!({"n": n, "x": 0.1 * n as f64, "s": format!("é-{n}")}))
        .collect();
    let texts: Vec<String> = (0..60u64).map(|n| format!("line {n} ✓")).collect();
    let mut want_values: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    want_values.sort();
    let mut want_texts: Vec<String> = texts.iter().map(|t| format!("{t:?}")).collect();
    want_texts.sort();
    let one = |v: &Value| vec![format!("{v:?}")];

    let got = through_fan_out(&kinesis, JsonProcessor::default(), values.clone(), one).await;
    assert_eq!(got, want_values, "json");
    let got = through_fan_out(&kinesis, JsonLineProcessor::default(), values.clone(), one).await;
    assert_eq!(got, want_values, "jsonline");
    let got = through_fan_out(
        &kinesis,
        JsonListProcessor::default(),
        values.clone(),
        |list| list.iter().map(|v| format!("{v:?}")).collect(),
    )
    .await;
    assert_eq!(got, want_values, "jsonlist");
    let text = |t: &String| vec![format!("{t:?}")];
    let got = through_fan_out(&kinesis, StringProcessor::default(), texts.clone(), text).await;
    assert_eq!(got, want_texts, "string");
    #[cfg(feature = "kpl")]
    {
        use async_kinesis::processor::{KplJsonProcessor, KplStringProcessor};
        let got = through_fan_out(&kinesis, KplJsonProcessor::default(), values.clone(), one).await;
        assert_eq!(got, want_values, "kpljson");
        let got = through_fan_out(&kinesis, KplStringProcessor::default(), texts, text).await;
        assert_eq!(got, want_texts, "kplstring");
    }
    #[cfg(feature = "msgpack")]
    {
        use async_kinesis::processor::MsgpackProcessor;
        let packed: Vec<rmpv::Value> = (0..60i64)
            .map(|n| rmpv::Value::Array(vec![n.into(), format!("m-{n}").into()]))
            .collect();
        let mut want: Vec<String> = packed.iter().map(|v| format!("{v:?}")).collect();
        want.sort();
        let got = through_fan_out(&kinesis, MsgpackProcessor::default(), packed, |v| {
            vec![format!("{v:?}")]
        })
        .await;
        assert_eq!(got, want, "msgpack");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_acks_over_fan_out_pause_at_max_unacked_and_a_nack_reads_again() {
    use async_kinesis::consumer::AckPolicy;
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-acks", 1).await;
    let key = vec!["only".to_owned()];
    let mut consumer = fan_out_builder(&kinesis, stream.name(), "acks-app")
        .ack_policy(AckPolicy::Explicit)
        .max_unacked_records(5)
        .build()
        .await
        .expect("build");
    consumer.ready().await.expect("subscribed");
    put(stream.client(), &numbered(&key, 0, 10)).await;
    // Held unacknowledged: one event may bring more than the room, but no further one comes.
    let mut held = Vec::new();
    while held.len() < 10 {
        held.push(next_record(&mut consumer).await);
    }
    put(stream.client(), &numbered(&key, 10, 20)).await;
    if let Ok(extra) = tokio::time::timeout(Duration::from_secs(3), consumer.next()).await {
        panic!("read on past max_unacked_records: {extra:?}");
    }
    let paused = consumer.shard_status();
    assert_eq!(paused.shard_details[0].unacked_records, 10, "{paused:?}");
    let got: Vec<u64> = held
        .iter()
        .map(|r| r.item["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<u64>>());
    // Acknowledge 0..9, nack 9: it comes again, then the rest in order.
    let last = held.pop().expect("held");
    for record in &held {
        record.ack();
    }
    assert!(last.nack());
    let mut after = Vec::new();
    while after.len() < 11 {
        let record = next_record(&mut consumer).await;
        after.push(record.item["n"].as_u64().expect("n"));
        record.ack();
    }
    assert_eq!(after, (9..20).collect::<Vec<u64>>(), "after the nack");
    assert_quiet(&mut consumer, Duration::from_secs(2)).await;
    assert!(consumer.shutdown(Duration::from_secs(5)).await.is_clean());
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregister_on_shutdown_removes_the_stream_consumer() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-dereg", 1).await;
    let keys = keys(2);
    put(stream.client(), &numbered(&keys, 0, 5)).await;
    let arn = stream.arn().await;
    let registered = || async {
        let listed = stream
            .client()
            .sdk_client()
            .list_stream_consumers()
            .stream_arn(&arn)
            .send()
            .await
            .expect("ListStreamConsumers");
        listed
            .consumers()
            .iter()
            .filter(|c| c.consumer_status().as_str() != "DELETING")
            .map(|c| c.consumer_name().to_owned())
            .collect::<Vec<_>>()
    };
    let mut consumer = fan_out_builder(&kinesis, stream.name(), "dereg-app")
        .deregister_on_shutdown(true)
        .build()
        .await
        .expect("build");
    assert_eq!(registered().await, ["dereg-app"]);
    let mut tally = Tally::default();
    read_items(&mut consumer, &mut tally, 10, WAIT).await;
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !registered().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "still registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stream.delete().await;
}
