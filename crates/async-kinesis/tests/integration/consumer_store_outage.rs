//! The consumer with its checkpoint store failing under it (a private redis-server stopped or
//! frozen mid-run, records written all along): checkpoint writes back off instead of hammering
//! the store, no record is handed out once its shard's lease could have passed to another
//! worker — even while a store call hangs — and every item still arrives.
#![cfg(feature = "redis")]

use crate::consumer_support;
use crate::redis_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_kinesis::StreamClient;
use async_kinesis::checkpoint::{CheckpointError, LeaseTiming, RedisStore, WorkerId};
use async_kinesis::consumer::{ConsumeError, Consumer};
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, keys, put};
use futures::StreamExt;
use testkit::recording_store::RecordingStore;
use testkit::redis_server::RedisServer;
use testkit::{Services, TestStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

/// Writes one item per key every 50 ms until stopped; returns how many each key got.
struct Writer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<BTreeMap<String, u64>>,
}

impl Writer {
    fn start(client: StreamClient, keys: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !flag.load(Ordering::Acquire) {
                let records: Vec<_> = keys
                    .iter()
                    .flat_map(|k| json_records(k, n..n + 1))
                    .collect();
                put(&client, &records).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            keys.into_iter().map(|k| (k, n)).collect()
        });
        Self { stop, task }
    }

    async fn finish(self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Release);
        self.task.await.expect("writer")
    }
}

/// What the test saw of the consumer.
#[derive(Default)]
struct Seen {
    tally: Tally,
    /// When each item arrived.
    arrivals: Vec<Instant>,
}

impl Seen {
    /// Takes items until `until`.
    async fn pump_until(&mut self, consumer: &mut Consumer<JsonProcessor>, until: Instant) {
        while let Ok(item) = tokio::time::timeout_at(until, consumer.next()).await {
            match item.expect("the stream stays open") {
                Ok(record) => {
                    self.tally.add(&record);
                    self.arrivals.push(Instant::now());
                }
                Err(err) => self.tally.errors.push(err),
            }
        }
    }

    /// Takes items until every written item arrived (or `WAIT` passed); returns
    /// (lost, duplicates).
    async fn pump_all(
        &mut self,
        consumer: &mut Consumer<JsonProcessor>,
        written: &BTreeMap<String, u64>,
    ) -> (u64, u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (lost, duplicates) = self.tally.account(written);
            if lost == 0 || Instant::now() >= deadline {
                return (lost, duplicates);
            }
            self.pump_until(consumer, Instant::now() + Duration::from_millis(500))
                .await;
        }
    }
}

async fn consumer(
    stream: &TestStream,
    store: RecordingStore,
    checkpoint_every: u64,
) -> Consumer<JsonProcessor> {
    Consumer::builder(stream.name())
        .sdk_config(Services::from_env().kinesis_mock().sdk_config())
        .processor(JsonProcessor::default())
        .checkpointer(store)
        .worker_id(WorkerId::new("only"))
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(50))
        .checkpoint_interval(Duration::from_millis(100))
        .checkpoint_every(checkpoint_every)
        .expo_backoff(Duration::from_millis(100))
        .build()
        .await
        .expect("build")
}

fn recording(store: RedisStore) -> RecordingStore {
    RecordingStore::new(Arc::new(store), Arc::new(|_| {}))
}

/// Redis down for 2.5 s under a consumer that wants a checkpoint after every record: the writes
/// back off (each failed round waits longer, up to a heartbeat) rather than going out with
/// every acknowledgement; the leases outlive the outage, so nothing is lost or read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_backs_checkpoint_writes_off() {
    const SHARDS: u64 = 4;
    const OUTAGE: Duration = Duration::from_millis(2_500);
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-store-down", SHARDS as u32).await;
    let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
    let timing = LeaseTiming::new(Duration::from_secs(8), Duration::from_secs(1)).expect("timing");
    let store = recording(redis_support::connect(&server.url(), "store-down", timing).await);
    let failed = store.failed_checkpoints();
    let mut consumer = consumer(&stream, store, 1).await;
    let writer = Writer::start(stream.client().clone(), keys(8));
    let mut seen = Seen::default();
    while seen.tally.items() < 80 {
        seen.pump_until(&mut consumer, Instant::now() + Duration::from_millis(200))
            .await;
    }

    let before = failed.load(Ordering::Relaxed);
    let down = Instant::now();
    server.stop();
    seen.pump_until(&mut consumer, down + OUTAGE).await;
    let read_while_down = seen.tally.items();
    server.start();
    let outage = down.elapsed();
    let failed_while_down = failed.load(Ordering::Relaxed) - before;

    let written = writer.finish().await;
    let (lost, duplicates) = seen.pump_all(&mut consumer, &written).await;
    eprintln!(
        "store down {outage:?}: {failed_while_down} failed checkpoint calls over {SHARDS} \
         shards, {read_while_down} items read by then; lost {lost}, duplicates {duplicates}"
    );
    // Waits of at least 50, 100, 200, 400, then 500 ms (half of a 1 s heartbeat) fit at most
    // 11 rounds into 3.5 s; without backoff every acknowledgement (~160 a second) sent a round.
    let bound_rounds = 11
        + outage
            .saturating_sub(Duration::from_millis(3_500))
            .as_millis() as u64
            / 500;
    assert!(failed_while_down > 0, "the outage was noticed");
    assert!(
        failed_while_down <= bound_rounds * SHARDS,
        "{failed_while_down} failed calls, at most {} expected",
        bound_rounds * SHARDS
    );
    assert!(seen.tally.errors.is_empty(), "{:?}", seen.tally.errors);
    assert_eq!((lost, duplicates), (0, 0));
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}

/// Redis frozen (SIGSTOP) for twice the session: the supervisor's renewals hang in the store
/// call, yet the consumer hands nothing out once the lease could have expired; after the thaw
/// the lease is given up, claimed again and read from its checkpoint — nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_store_stops_deliveries_before_the_lease_could_expire() {
    const SESSION: Duration = Duration::from_secs(3);
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-store-frozen", 2).await;
    let server = RedisServer::spawn(&[]);
    // A call may take 1 s + 3 × 2 s: longer than the session, as over a bad network.
    let store = RedisStore::builder("store-frozen")
        .url(server.url())
        .timing(LeaseTiming::new(SESSION, Duration::from_millis(500)).expect("timing"))
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let mut consumer = consumer(&stream, recording(store), 10).await;
    let writer = Writer::start(stream.client().clone(), keys(6));
    let mut seen = Seen::default();
    while seen.tally.items() < 60 {
        seen.pump_until(&mut consumer, Instant::now() + Duration::from_millis(200))
            .await;
    }

    let frozen = Instant::now();
    redis_support::signal(&server, "-STOP");
    seen.pump_until(&mut consumer, frozen + 2 * SESSION).await;
    redis_support::signal(&server, "-CONT");
    let thawed = Instant::now();

    let written = writer.finish().await;
    let (lost, duplicates) = seen.pump_all(&mut consumer, &written).await;
    // Every lease was last renewed before the freeze, so it is surely ours only until one
    // session after it (the margin covers an item handed out just before, seen just after).
    let lease_end = frozen + SESSION + Duration::from_millis(300);
    let after_lease_end = seen
        .arrivals
        .iter()
        .filter(|&&t| t > lease_end && t < thawed)
        .count();
    let while_frozen = seen
        .arrivals
        .iter()
        .filter(|&&t| t > frozen && t < thawed)
        .count();
    let lease_errors = seen
        .tally
        .errors
        .iter()
        .filter(|e| {
            matches!(
                e,
                ConsumeError::Checkpoint {
                    source: CheckpointError::LeaseExpired { .. } | CheckpointError::NotOwned { .. },
                    ..
                }
            )
        })
        .count();
    eprintln!(
        "frozen {:?}: {while_frozen} items arrived while frozen, {after_lease_end} of them after \
         the leases could have expired; {lease_errors} leases given up; lost {lost}, \
         duplicates {duplicates}",
        thawed - frozen
    );
    assert_eq!(after_lease_end, 0, "records handed out on expired leases");
    assert!(lease_errors >= 1, "{:?}", seen.tally.errors);
    assert_eq!(
        seen.tally.errors.len(),
        lease_errors,
        "{:?}",
        seen.tally.errors
    );
    assert_eq!(lost, 0);
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;
}
