//! The producer's pacing and accounting against kinesalite (behind the limits proxy where the
//! service's behaviour matters): keyless aggregated items spread evenly over the shards, a
//! close racing puts that wait for room hands every item back or delivers it, a call refused as
//! a whole for one record is split so the others are delivered, and a delivery timeout hands
//! items back with the last error. Rates are measured in the `pacing` benchmark, not here.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_kinesis::StreamClient;
use async_kinesis::processor::{JsonLineProcessor, Processor, StringProcessor};
use async_kinesis::producer::{Producer, PutErrorKind};
use serde_json::{Value, json};
use testkit::proxy::{Fault, Limits, LimitsProxy, ProxyConfig};
use testkit::{Services, TestStream, read_stream};

async fn proxy_with(config: ProxyConfig) -> LimitsProxy {
    let services = Services::from_env();
    services.kinesalite();
    LimitsProxy::start(&services.kinesalite, config)
        .await
        .expect("proxy")
}

/// ~1 KB JSON items, numbered.
fn item(n: u64) -> Value {
    json!({"n": n, "payload": "x".repeat(1_000)})
}

/// Puts `items` items without keys and returns how many each shard stored (by receipt).
async fn keyless_spread<P>(processor: P, stream: &TestStream, items: u64) -> BTreeMap<String, u64>
where
    P: Processor<Item = Value>,
{
    keyless_spread_in(
        processor,
        stream,
        items,
        async_kinesis::producer::DEFAULT_AGGREGATE_BYTES,
    )
    .await
}

/// As [`keyless_spread`], with aggregates of at most `aggregate_bytes`.
async fn keyless_spread_in<P>(
    processor: P,
    stream: &TestStream,
    items: u64,
    aggregate_bytes: usize,
) -> BTreeMap<String, u64>
where
    P: Processor<Item = Value>,
{
    let kinesalite = Services::from_env().kinesalite();
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(processor)
        .aggregate_bytes(aggregate_bytes)
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for n in 0..items {
        receipts.push(producer.put(item(n)).await.expect("accepted"));
    }
    let mut per_shard = BTreeMap::new();
    for receipt in receipts {
        let delivery = receipt.await.expect("delivered");
        *per_shard.entry(delivery.shard_id.to_string()).or_insert(0) += 1;
    }
    producer.close().await.expect("close");
    per_shard
}

/// Every record stored in `stream` decodes with `reader`, and the items are exactly `0..items`,
/// each once.
async fn assert_stored_once<P>(reader: &P, stream: &TestStream, items: u64)
where
    P: Processor<Output = Value>,
{
    let mut seen = Vec::new();
    for record in read_stream(stream.client()).await {
        for decoded in reader.read(&record.data, &record.partition_key) {
            let decoded = decoded.expect("stored record decodes");
            seen.push(decoded.item["n"].as_u64().expect("numbered"));
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..items).collect::<Vec<_>>(),
        "each item stored once"
    );
}

fn assert_even(per_shard: &BTreeMap<String, u64>, shards: usize, items: u64, what: &str) {
    assert_eq!(
        per_shard.len(),
        shards,
        "{what}: every shard used: {per_shard:?}"
    );
    assert_eq!(
        per_shard.values().sum::<u64>(),
        items,
        "{what}: all delivered"
    );
    let mean = items as f64 / shards as f64;
    for (shard, &n) in per_shard {
        let off = (n as f64 - mean).abs() / mean;
        assert!(
            off <= 0.10,
            "{what}: {shard} got {n} items, {:.1}% off the mean {mean}: {per_shard:?}",
            off * 100.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_json_lines_spread_within_ten_percent_over_four_shards() {
    const ITEMS: u64 = 8_000;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-keyless-jsonl", 4).await;
    let per_shard = keyless_spread(JsonLineProcessor::default(), &stream, ITEMS).await;
    assert_even(&per_shard, 4, ITEMS, "JsonLine");
    // Every stored record decodes to items, and the items are exactly the ones put.
    assert_stored_once(&JsonLineProcessor::new(), &stream, ITEMS).await;
    stream.delete().await;
}

#[cfg(feature = "kpl")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_kpl_items_spread_within_ten_percent_over_four_shards() {
    const ITEMS: u64 = 8_000;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-keyless-kpl", 4).await;
    let processor = async_kinesis::processor::KplJsonProcessor::default();
    let per_shard = keyless_spread(processor, &stream, ITEMS).await;
    assert_even(&per_shard, 4, ITEMS, "KplJson");
    stream.delete().await;
}

/// On 200 shards a drawn key rarely routes to the shard wanted: the keyless records go with an
/// explicit hash key inside its range, so every shard gets its even share, and every item
/// reads back from its KPL aggregate exactly once.
#[cfg(feature = "kpl")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_kpl_items_spread_within_ten_percent_over_two_hundred_shards() {
    const SHARDS: usize = 200;
    const ITEMS: u64 = 8_000;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-keyless-200", SHARDS as u32).await;
    let processor = async_kinesis::processor::KplJsonProcessor::default();
    // Aggregates of two ~1 KB items: 4,000 records, twenty per shard, so one record more or
    // less (a linger seal with one item) moves a shard's count by a few percent.
    let per_shard = keyless_spread_in(processor, &stream, ITEMS, 2 * 1_024 + 512).await;
    assert_even(&per_shard, SHARDS, ITEMS, "KplJson on 200 shards");
    let reader = async_kinesis::processor::KplJsonProcessor::new();
    assert_stored_once(&reader, &stream, ITEMS).await;
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_racing_a_thousand_waiting_puts_delivers_or_hands_back_every_item() {
    const PUTS: usize = 1_000;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-close-race", 1).await;
    // 20 records/s at the proxy and in the producer: the queue of 10 stays full, so the other
    // puts wait for room when close() comes.
    let proxy = proxy_with(ProxyConfig {
        limits: Limits {
            write_records_per_sec: Some(20.0),
            ..Limits::default()
        },
        ..ProxyConfig::default()
    })
    .await;
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .put_rate_limit_per_shard(20)
        .max_queue_size(10)
        .build()
        .await
        .expect("producer");
    let mut puts = Vec::new();
    for n in 0..PUTS {
        let producer = producer.clone();
        puts.push(tokio::spawn(async move {
            let item = format!("item-{n}");
            match producer.put(item.clone()).await {
                Ok(receipt) => match receipt.await {
                    Ok(delivery) => Ok((item, delivery.shard_id)),
                    Err(err) => Err((item, err.kind().to_string(), err.into_item())),
                },
                Err(err) => Err((item, err.kind().to_string(), err.into_item())),
            }
        }));
    }
    // Let some be accepted and the rest queue up behind the full queue.
    while proxy.counters().calls("PutRecords") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.close().await.expect("close");
    let (mut delivered, mut handed_back) = (Vec::new(), 0);
    for put in puts {
        match put.await.expect("put task") {
            Ok((item, _shard)) => delivered.push(item),
            Err((item, kind, back)) => {
                assert_eq!(kind, PutErrorKind::Closed.to_string(), "{item}");
                assert_eq!(back.as_deref(), Some(item.as_str()), "the item comes back");
                handed_back += 1;
            }
        }
    }
    assert_eq!(
        delivered.len() + handed_back,
        PUTS,
        "every put accounted for"
    );
    assert!(handed_back > 0, "some puts were waiting when close() came");
    assert!(!delivered.is_empty(), "the accepted ones were delivered");
    let mut stored: Vec<String> = read_stream(stream.client())
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.data.to_vec()).expect("utf-8"))
        .collect();
    stored.sort();
    delivered.sort();
    assert_eq!(stored, delivered, "stored = delivered, each once");
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

/// The service refuses any call holding one key, as kinesis-mock does for a key it counts as too
/// long, without naming the record: the producer halves the call until the record is alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_as_a_whole_for_one_record_delivers_the_others() {
    let calls = refused_for_one_record(
        "pacing-isolate",
        "1 validation error detected: Value at 'records.member.partitionKey' failed to satisfy \
         constraint",
    )
    .await;
    assert!(
        calls > 2,
        "halved down to the record: {calls} calls refused"
    );
}

/// The same refusal naming the record, as AWS and kinesalite do (`'records.N.member…'`): that
/// record alone fails, in one refused call, and the others go again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_naming_its_bad_record_fails_only_that_record_at_once() {
    let calls = refused_for_one_record(
        "pacing-isolate-named",
        "1 validation error detected: Value 'refused-key' at 'records.{record}.member.partitionKey' \
         failed to satisfy constraint",
    )
    .await;
    assert_eq!(
        calls, 1,
        "the named record was taken out of the first refused call"
    );
}

/// Puts 40 items, item 17 under a key every call holding it is refused for with `refusal`;
/// checks that only item 17 fails, with the service's message and its item, and that the
/// others are stored once. Returns how many calls were refused.
async fn refused_for_one_record(name: &str, refusal: &str) -> u64 {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, name, 1).await;
    let proxy = proxy_with(ProxyConfig {
        limits: Limits::unlimited(),
        ..ProxyConfig::default()
    })
    .await;
    let fault = proxy.add_fault(
        Fault::http_error(400, "ValidationException")
            .on("PutRecords")
            .holding_partition_key("refused-key")
            .message(refusal),
    );
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for n in 0..40 {
        let key = if n == 17 {
            "refused-key".to_owned()
        } else {
            format!("k-{n}")
        };
        receipts.push((
            n,
            producer
                .put_with_key(format!("item-{n}"), key)
                .await
                .expect("accepted"),
        ));
    }
    let mut delivered = Vec::new();
    for (n, receipt) in receipts {
        match receipt.await {
            Ok(_) => delivered.push(format!("item-{n}")),
            Err(err) => {
                assert_eq!(n, 17, "only the bad record fails: {err}");
                let message = format!(
                    "{err:?} {}",
                    std::error::Error::source(err.kind())
                        .map(ToString::to_string)
                        .unwrap_or_default()
                );
                assert!(message.contains("validation error detected"), "{message}");
                assert_eq!(err.into_item().as_deref(), Some("item-17"));
            }
        }
    }
    producer.close().await.expect("close");
    assert_eq!(delivered.len(), 39, "every other record delivered");
    let mut stored: Vec<String> = read_stream(stream.client())
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.data.to_vec()).expect("utf-8"))
        .collect();
    stored.sort();
    delivered.sort();
    assert_eq!(stored, delivered);
    let refused = proxy.fault_stats(fault).fired;
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_not_stored_within_its_delivery_timeout_comes_back_with_the_last_error() {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-timeout", 1).await;
    let proxy = proxy_with(ProxyConfig {
        limits: Limits::unlimited(),
        ..ProxyConfig::default()
    })
    .await;
    // Every record is refused with a retryable error: only the timeout can end its retries.
    proxy.add_fault(Fault::fail_records("InternalFailure"));
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .buffer_time(Duration::from_millis(50))
        .retry_limit(u32::MAX)
        .expo_backoff(Duration::from_millis(20))
        .expo_backoff_limit(Duration::from_millis(100))
        .delivery_timeout(Duration::from_millis(800))
        .build()
        .await
        .expect("producer");
    let receipt = producer
        .put_with_key("late".to_owned(), "k")
        .await
        .expect("accepted");
    let err = receipt.await.expect_err("never stored");
    match err.kind() {
        PutErrorKind::TimedOut {
            timeout,
            attempts,
            last_error,
        } => {
            assert_eq!(*timeout, Duration::from_millis(800));
            assert!(*attempts >= 1, "it was sent");
            let last = last_error.as_deref().unwrap_or_default();
            assert!(last.contains("InternalFailure"), "{last}");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert_eq!(err.into_item().as_deref(), Some("late"));
    producer.close().await.expect("close");
    assert!(
        read_stream(stream.client()).await.is_empty(),
        "nothing stored"
    );
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

/// An item whose call is still in flight when its delivery timeout passes is not reported failed:
/// the call may store it, so its receipt waits for the answer (bounded by the attempt timeout)
/// and says what happened — here, delivered, and stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_call_outlasts_its_delivery_timeout_is_delivered_when_stored() {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-timeout-flight", 1).await;
    let proxy = proxy_with(ProxyConfig {
        limits: Limits::unlimited(),
        ..ProxyConfig::default()
    })
    .await;
    proxy.add_fault(Fault::latency(Duration::from_millis(1_500)).on("PutRecords"));
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .buffer_time(Duration::from_millis(50))
        .delivery_timeout(Duration::from_millis(500))
        .build()
        .await
        .expect("producer");
    let receipt = producer
        .put_with_key("slow".to_owned(), "k")
        .await
        .expect("accepted");
    let delivery = receipt
        .await
        .expect("stored by the slow call, so delivered");
    assert!(!delivery.sequence_number.is_empty());
    producer.close().await.expect("close");
    let stored = read_stream(stream.client()).await;
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

/// A producer that skips DescribeStreamSummary cannot see an AUTO stream: told so by
/// `record_distribution`, it writes KPL items as plain records; not told, it aggregates.
#[cfg(feature = "kpl")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_skipping_describe_takes_the_distribution_it_is_told() {
    use async_kinesis::RecordDistribution;
    use async_kinesis::processor::{KPL_MAGIC, KplJsonProcessor};

    const ITEMS: u64 = 40;
    let kinesalite = Services::from_env().kinesalite();
    for (told, plain) in [(Some(RecordDistribution::Auto), true), (None, false)] {
        let stream = TestStream::create(&kinesalite, "pacing-skip-describe", 1).await;
        let mut builder = Producer::builder(stream.name())
            .sdk_config(kinesalite.sdk_config())
            .processor(KplJsonProcessor::default())
            .skip_describe_stream(true);
        if let Some(distribution) = told.clone() {
            builder = builder.record_distribution(distribution);
        }
        let producer = builder.build().await.expect("producer");
        let mut receipts = Vec::new();
        for n in 0..ITEMS {
            receipts.push(producer.put(item(n)).await.expect("accepted"));
        }
        for receipt in receipts {
            receipt.await.expect("delivered");
        }
        producer.close().await.expect("close");
        let records = read_stream(stream.client()).await;
        let aggregates = records
            .iter()
            .filter(|r| r.data.starts_with(&KPL_MAGIC))
            .count();
        if plain {
            assert_eq!(records.len() as u64, ITEMS, "{told:?}: one record per item");
            assert_eq!(aggregates, 0, "{told:?}: no KPL aggregate");
        } else {
            assert!(
                aggregates > 0 && (records.len() as u64) < ITEMS,
                "{told:?}: aggregated"
            );
        }
        assert_stored_once(&KplJsonProcessor::new(), &stream, ITEMS).await;
        stream.delete().await;
    }
}

/// A stream the service distributes itself (the proxy reports `AUTO`): the summary says so,
/// and a KPL producer writes plain records, one item each, that our KPL reader and Python's
/// aws-kinesis-agg both read back completely.
#[cfg(all(feature = "kpl", feature = "msgpack"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_auto_distributed_stream_kpl_items_are_plain_records_every_reader_accepts() {
    use async_kinesis::RecordDistribution;
    use async_kinesis::processor::{KPL_MAGIC, KplJsonProcessor};

    const ITEMS: u64 = 300;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "pacing-auto", 2).await;
    let proxy = proxy_with(ProxyConfig {
        limits: Limits::unlimited(),
        record_distribution: Some("AUTO".to_owned()),
        ..ProxyConfig::default()
    })
    .await;
    let through_proxy = StreamClient::new(proxy.client(), stream.name()).expect("client");
    let summary = through_proxy.describe().await.expect("describe");
    assert_eq!(summary.record_distribution, RecordDistribution::Auto);
    let direct = stream.client().describe().await.expect("describe");
    assert_eq!(direct.record_distribution, RecordDistribution::PartitionKey);

    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(KplJsonProcessor::default())
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for n in 0..ITEMS {
        let receipt = if n % 2 == 0 {
            producer.put(item(n)).await
        } else {
            producer
                .put_with_key(item(n), format!("key-{}", n % 7))
                .await
        };
        receipts.push(receipt.expect("accepted"));
    }
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    producer.close().await.expect("close");

    let records = read_stream(stream.client()).await;
    assert_eq!(records.len() as u64, ITEMS, "one record per item");
    assert!(
        records.iter().all(|r| !r.data.starts_with(&KPL_MAGIC)),
        "no KPL aggregate"
    );
    // Our KPL reader.
    let processor = KplJsonProcessor::new();
    let mut ours: Vec<u64> = Vec::new();
    for record in &records {
        for decoded in processor.read(&record.data, &record.partition_key) {
            ours.push(decoded.expect("decodes").item["n"].as_u64().expect("n"));
        }
    }
    ours.sort_unstable();
    assert_eq!(ours, (0..ITEMS).collect::<Vec<_>>());
    // Python's aws-kinesis-agg deaggregator (and the Python library's KPL processor).
    let wire: Vec<Value> = records
        .iter()
        .map(|r| json!({"data": crate::processor_interop::hex(&r.data), "partition_key": r.partition_key}))
        .collect();
    let answer = crate::processor_interop::ask_python(&json!({
        "read": [{"case": "auto", "processor": "aws_kinesis_agg", "records": wire}],
        "write": [],
    }));
    let kpl = answer["read"]["auto"]["kpl"]
        .as_array()
        .expect("kpl answer");
    let mut theirs: Vec<u64> = kpl
        .iter()
        .map(|user| {
            let data = user[3].as_str().expect("data");
            let value: Value = serde_json::from_str(data).expect("json item");
            value["n"].as_u64().expect("n")
        })
        .collect();
    theirs.sort_unstable();
    assert_eq!(
        theirs,
        (0..ITEMS).collect::<Vec<_>>(),
        "aws-kinesis-agg reads every item"
    );
    let by_key: HashMap<&str, usize> = records.iter().fold(HashMap::new(), |mut m, r| {
        *m.entry(r.partition_key.as_str()).or_default() += 1;
        m
    });
    assert!(by_key.len() > 7, "keyless items got keys of their own");
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}
