//! The shard lifecycle under failures the happy path never meets: a reader that panics, shard
//! discovery refused for half a minute, and a closed parent whose records are gone. Every item
//! is counted.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointStore, MemoryStore};
use async_kinesis::consumer::{ConsumeError, Consumer};
use async_kinesis::processor::{
    Composed, DecodeError, JsonSerializer, SerializeError, Serializer, SimpleAggregator,
};
use bytes::Bytes;
use consumer_support::{Tally, init_tracing, json_records, keys, put, split_the_only_shard};
use futures::StreamExt;
use testkit::proxy::{Fault, LimitsProxy, ProxyConfig, Schedule};
use testkit::{Services, TestStream};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(90);

/// JSON items; panics on one chosen item, as a user's deserializer with a bug would.
#[derive(Debug, Clone, Default)]
struct PanicsOn {
    json: JsonSerializer<serde_json::Value>,
    item: Option<(String, u64)>,
}

impl Serializer for PanicsOn {
    type Item = serde_json::Value;
    fn serialize(&self, item: &Self::Item) -> Result<Bytes, SerializeError> {
        self.json.serialize(item)
    }
    fn deserialize(&self, data: &Bytes) -> Result<Self::Item, DecodeError> {
        let item = self.json.deserialize(data)?;
        if let Some((key, n)) = &self.item
            && item["k"].as_str() == Some(key.as_str())
            && item["n"].as_u64() == Some(*n)
        {
            panic!("deserializer bug on {key}:{n}");
        }
        Ok(item)
    }
}

fn panics_on(item: Option<(&str, u64)>) -> Composed<PanicsOn, SimpleAggregator> {
    Composed::from_parts(
        PanicsOn {
            item: item.map(|(k, n)| (k.to_owned(), n)),
            ..PanicsOn::default()
        },
        SimpleAggregator,
    )
}

/// Reads until `done` says so (or panics after `WAIT`), tallying items and errors.
async fn read_until<P>(
    consumer: &mut Consumer<P>,
    tally: &mut Tally,
    mut done: impl FnMut(&Tally) -> bool,
) where
    P: async_kinesis::processor::Processor<Output = serde_json::Value>,
{
    let deadline = Instant::now() + WAIT;
    while !done(tally) {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} items so far; errors {:?}", tally.items(), tally.errors))
            .expect("the stream goes on");
        match next {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_deserializer_stops_its_shard_releases_it_and_the_next_consumer_reads_the_rest()
{
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-panic", 2).await;
    // 40 items: 4 keys × 10; the deserializer panics on one of them.
    let keys = keys(4);
    let records: Vec<_> = keys.iter().flat_map(|k| json_records(k, 0..10)).collect();
    put(stream.client(), &records).await;
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), 10)).collect();
    let store: Arc<dyn CheckpointStore> = Arc::new(MemoryStore::new());

    let mut first = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .processor(panics_on(Some(("key-000", 3))))
        .checkpointer_arc(store.clone())
        .sleep_time_no_records(Duration::from_millis(100))
        .checkpoint_interval(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    tokio::time::timeout(WAIT, first.ready())
        .await
        .expect("ready() resolves although a reader panics")
        .expect("ready");
    let mut tally = Tally::default();
    // The error item of the panic. (Items of the batch it met are not handed out.)
    read_until(&mut first, &mut tally, |t| {
        t.errors
            .iter()
            .any(|e| matches!(e, ConsumeError::ReaderPanicked { .. }))
    })
    .await;
    let panic = tally
        .errors
        .iter()
        .find_map(|e| match e {
            ConsumeError::ReaderPanicked { shard_id, message } => {
                Some((shard_id.clone(), message.clone()))
            }
            _ => None,
        })
        .expect("a panic error item");
    assert!(
        panic.1.contains("deserializer bug on key-000:3"),
        "{panic:?}"
    );
    let handed_out = tally.received.get("key-000").cloned().unwrap_or_default();
    assert!(
        handed_out.iter().all(|&n| n < 3),
        "nothing at or after the panicking record was handed out: {handed_out:?}"
    );
    // The lease is released (so another worker may take it), the shard shows stopped.
    let deadline = Instant::now() + WAIT;
    loop {
        let leases = store.list(stream.name()).await.expect("list");
        let lease = leases
            .iter()
            .find(|l| l.shard_id == panic.0)
            .expect("lease");
        if lease.owner.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "lease never released: {lease:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = first.shard_status();
    let detail = status
        .shard_details
        .iter()
        .find(|d| d.shard_id == panic.0)
        .expect("detail");
    assert!(detail.is_stopped && !detail.is_allocated, "{detail:?}");
    // The other shard goes on: items written now still come from it.
    let other_shard = first
        .shard_status()
        .shard_details
        .iter()
        .map(|d| d.shard_id.to_string())
        .find(|id| *id != panic.0)
        .expect("two shards");
    let before = tally.by_shard.get(&other_shard).map_or(0, Vec::len);
    let late_keys: Vec<String> = (100..120).map(|i| format!("key-{i:03}")).collect();
    let more: Vec<_> = late_keys
        .iter()
        .flat_map(|k| json_records(k, 0..5))
        .collect();
    put(stream.client(), &more).await;
    read_until(&mut first, &mut tally, |t| {
        t.by_shard.get(&other_shard).map_or(0, Vec::len) > before
    })
    .await;
    let mut expected_all = expected.clone();
    expected_all.extend(late_keys.iter().map(|k| (k.clone(), 5)));

    // A second consumer (another worker of the group) takes the shard and reads the rest,
    // the panicking record included; the first one goes on with its shard.
    let mut second = Consumer::builder(stream.name())
        .client(stream.client().sdk_client().clone())
        .processor(panics_on(None))
        .checkpointer_arc(store.clone())
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let mut second_tally = Tally::default();
    let deadline = Instant::now() + WAIT;
    while lost_between(&[&tally, &second_tally], &expected_all) > 0 {
        assert!(
            Instant::now() < deadline,
            "lost {}; errors {:?} / {:?}",
            lost_between(&[&tally, &second_tally], &expected_all),
            tally.errors,
            second_tally.errors
        );
        tokio::select! {
            Some(item) = first.next() => match item {
                Ok(record) => tally.add(&record),
                Err(err) => tally.errors.push(err),
            },
            Some(item) = second.next() => match item {
                Ok(record) => second_tally.add(&record),
                Err(err) => second_tally.errors.push(err),
            },
        }
    }
    assert!(
        second_tally.by_shard.contains_key(panic.0.as_str()),
        "the second consumer read the given-up shard"
    );
    assert!(
        second_tally.received["key-000"].contains(&3),
        "the panicking record came"
    );
    let panics = tally
        .errors
        .iter()
        .filter(|e| matches!(e, ConsumeError::ReaderPanicked { .. }))
        .count();
    assert_eq!(
        panics, 1,
        "the first consumer never claimed the shard again"
    );
    eprintln!(
        "panic: {} + {} deliveries, lost 0",
        tally.delivered, second_tally.delivered
    );
    first.shutdown(Duration::from_secs(5)).await;
    second.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

/// Items of `expected` none of the tallies received.
fn lost_between(tallies: &[&Tally], expected: &BTreeMap<String, u64>) -> usize {
    expected
        .iter()
        .map(|(key, &count)| {
            (0..count)
                .filter(|n| {
                    !tallies
                        .iter()
                        .any(|t| t.received.get(key).is_some_and(|ns| ns.contains(n)))
                })
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_discovery_refused_for_thirty_seconds_keeps_the_consumer_reading() {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-denied", 2).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    let mut consumer = Consumer::builder(stream.name())
        .client(proxy.client())
        .processor(panics_on(None))
        .shard_refresh_interval(Duration::from_secs(1))
        .sleep_time_no_records(Duration::from_millis(100))
        .expo_backoff(Duration::from_millis(100))
        .expo_backoff_limit(Duration::from_secs(2))
        .build()
        .await
        .expect("build");
    consumer.ready().await.expect("ready");
    // A writer: one item per key every 250 ms, for as long as the test runs.
    let keys = keys(4);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = {
        let (client, keys) = (stream.client().clone(), keys.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !*stopped.borrow() {
                let records: Vec<_> = keys
                    .iter()
                    .flat_map(|k| json_records(k, n..n + 1))
                    .collect();
                put(&client, &records).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            n
        })
    };
    let mut tally = Tally::default();
    read_until(&mut consumer, &mut tally, |t| t.items() >= 20).await;
    // Listing answers AccessDenied (an expired token, say) for 30 s.
    let denied: Vec<_> = ["ListShards", "DescribeStream", "DescribeStreamSummary"]
        .into_iter()
        .map(|op| proxy.add_fault(Fault::http_error(400, "AccessDeniedException").on(op)))
        .collect();
    let outage_end = Instant::now() + Duration::from_secs(30);
    let before = tally.items();
    while Instant::now() < outage_end {
        tokio::select! {
            () = tokio::time::sleep_until(outage_end) => {}
            item = consumer.next() => match item.expect("the stream goes on during the outage") {
                Ok(record) => tally.add(&record),
                Err(err) => tally.errors.push(err),
            },
        }
    }
    let during = tally.items() - before;
    let refused: u64 = denied
        .into_iter()
        .filter_map(|id| proxy.remove_fault(id))
        .map(|stats| stats.fired)
        .sum();
    let listings_after = proxy.counters().calls("ListShards");
    stop.send(true).expect("writer running");
    let written = writer.await.expect("writer");
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), written)).collect();
    read_until(&mut consumer, &mut tally, |t| t.account(&expected).0 == 0).await;
    // Listing works again.
    let deadline = Instant::now() + WAIT;
    while proxy.counters().calls("ListShards") <= listings_after + 1 {
        assert!(Instant::now() < deadline, "no listing after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lost, duplicates) = tally.account(&expected);
    eprintln!(
        "listing denied 30 s: {refused} listings refused, {during} items read meanwhile, \
         {} items, lost {lost}, duplicates {duplicates}, errors {:?}",
        tally.items(),
        tally.errors
    );
    assert_eq!(lost, 0);
    assert!(
        refused >= 2,
        "the listing was retried during the outage ({refused})"
    );
    assert!(during > 0, "reading went on during the outage");
    assert!(
        tally
            .errors
            .iter()
            .all(|e| matches!(e, ConsumeError::Stream { .. })),
        "{:?}",
        tally.errors
    );
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    proxy.shutdown().await.expect("proxy ran cleanly");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_parent_whose_records_are_gone_lets_its_children_be_read() {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-trimmed", 1).await;
    let keys = keys(8);
    let old: Vec<_> = keys.iter().flat_map(|k| json_records(k, 0..5)).collect();
    put(stream.client(), &old).await;
    let parent = split_the_only_shard(stream.client()).await;
    let new: Vec<_> = keys.iter().flat_map(|k| json_records(k, 5..10)).collect();
    put(stream.client(), &new).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    // The parent's records were trimmed: its iterator answers ResourceNotFound. (Children
    // wait for their parent, so the first GetShardIterator call is the parent's.)
    let trimmed = proxy.add_fault(
        Fault::http_error(400, "ResourceNotFoundException")
            .on("GetShardIterator")
            .schedule(Schedule::First(1)),
    );
    let mut consumer = Consumer::builder(stream.name())
        .client(proxy.client())
        .processor(panics_on(None))
        .sleep_time_no_records(Duration::from_millis(100))
        .build()
        .await
        .expect("build");
    let mut tally = Tally::default();
    read_until(&mut consumer, &mut tally, |t| {
        keys.iter().all(|k| {
            t.received
                .get(k)
                .is_some_and(|ns| (5..10).all(|n| ns.contains(&n)))
        })
    })
    .await;
    assert_eq!(proxy.fault_stats(trimmed).fired, 1);
    assert!(
        tally.received.values().flatten().all(|&n| n >= 5),
        "the parent was not read: its records are gone"
    );
    assert!(
        tally.errors.iter().any(
            |e| matches!(e, ConsumeError::ShardGone { shard_id, .. } if *shard_id == parent.shard_id)
        ),
        "the gone parent is reported: {:?}",
        tally.errors
    );
    let children: Vec<String> = tally.by_shard.keys().cloned().collect();
    assert_eq!(children.len(), 2, "both children were read: {children:?}");
    assert!(!children.contains(&parent.shard_id.to_string()));
    consumer.shutdown(Duration::from_secs(5)).await;
    proxy.shutdown().await.expect("proxy ran cleanly");
    stream.delete().await;
}
