//! Unit tests of the worker: keys, seals, deadlines and leftover puts, with no network.

use super::*;
use crate::processor::JsonLineProcessor;
use tokio::sync::Semaphore;

/// A worker over four even shards; nothing here reaches the network (no call is polled).
fn worker(config: ProducerConfig) -> Worker<JsonLineProcessor> {
    let sdk = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .build();
    let client = StreamClient::new(aws_sdk_kinesis::Client::from_conf(sdk), "s").expect("client");
    let width = u128::MAX / 4;
    let map = ShardMap::new((0..4u128).map(|i| {
        let end = if i == 3 {
            u128::MAX
        } else {
            (i + 1) * width - 1
        };
        (format!("shardId-{i:012}"), i * width, end)
    }))
    .expect("map");
    let config = Arc::new(config);
    Worker::new(client, config, &JsonLineProcessor::default(), map, false)
}

fn keyless(
    data: &'static [u8],
) -> (
    AcceptedItem<serde_json::Value>,
    oneshot::Receiver<DeliveryResult<serde_json::Value>>,
) {
    let (reply, receipt) = oneshot::channel();
    let items = Arc::new(Semaphore::new(1))
        .try_acquire_owned()
        .expect("permit");
    let bytes = Arc::new(Semaphore::new(data.len()))
        .try_acquire_many_owned(u32::try_from(data.len()).expect("small"))
        .expect("permits");
    let pending = AcceptedItem {
        item: serde_json::Value::Null,
        data: Bytes::from_static(data),
        partition_key: None,
        explicit_hash_key: None,
        reply,
        permits: Permits {
            _items: items,
            bytes,
        },
    };
    (pending, receipt)
}

#[test]
fn a_delivery_timeout_beyond_the_clock_is_no_deadline() {
    let mut worker = worker(ProducerConfig {
        delivery_timeout: Some(std::time::Duration::MAX),
        ..ProducerConfig::default()
    });
    let (pending, mut receipt) = keyless(b"{}");
    worker.on_put(pending);
    assert!(receipt.try_recv().is_err(), "queued, not resolved");
}

#[test]
fn every_seal_gives_keyless_items_a_new_key() {
    const ITEM: &[u8] = &[b'x'; 1_000];
    // Aggregates of 4 KiB hold four items: the fifth seals the record (and starts the next
    // under the same key), and the items after it get a new key.
    let mut worker = worker(ProducerConfig {
        aggregate_bytes: 4 * 1024,
        ..ProducerConfig::default()
    });
    let mut receipts = Vec::new();
    let mut keys = vec![worker.unkeyed_key.clone()];
    // Overflow seals: each sealed record's items move the key on.
    for _ in 0..40 {
        let (pending, receipt) = keyless(ITEM);
        receipts.push(receipt);
        worker.on_put(pending);
        if keys.last() != Some(&worker.unkeyed_key) {
            keys.push(worker.unkeyed_key.clone());
        }
    }
    assert_eq!(
        keys.len(),
        9,
        "a new key after each of the 8 sealed records"
    );
    // A timer seal (the linger passed) moves it on too.
    let before = worker.unkeyed_key.clone();
    let (pending, receipt) = keyless(ITEM);
    receipts.push(receipt);
    worker.on_put(pending);
    worker.turn(Instant::now() + worker.config.buffer_time);
    assert_ne!(
        worker.unkeyed_key, before,
        "the linger seal rotates the key"
    );
    // The keys went to every shard.
    let shards: std::collections::BTreeSet<String> =
        worker.lanes.keys().map(|shard| shard.to_string()).collect();
    assert_eq!(shards.len(), 4, "{shards:?}");
}

#[test]
fn puts_still_in_the_channel_when_the_worker_ends_come_back_closed() {
    let mut worker = worker(ProducerConfig::default());
    let (commands, mut receiver) = mpsc::unbounded_channel();
    let (pending, mut receipt) = keyless(b"{}");
    commands
        .send(Command::Put(Box::new(pending)))
        .expect("open");
    worker.refuse_late_commands(&mut receiver);
    let err = receipt
        .try_recv()
        .expect("resolved")
        .expect_err("not delivered");
    assert!(matches!(err.kind(), PutErrorKind::Closed), "{err}");
    assert_eq!(err.into_item(), Some(serde_json::Value::Null));
    let (late, _) = keyless(b"{}");
    assert!(
        commands.send(Command::Put(Box::new(late))).is_err(),
        "later puts are refused by the channel, their item handed back by put()"
    );
}
