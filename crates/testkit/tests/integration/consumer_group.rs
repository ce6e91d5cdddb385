//! Consumer groups across processes: three `kinesis-group-worker` processes share one stream
//! through Redis or DynamoDB (moto), against kinesis-mock. Every item is counted end to end
//! (lost must be 0; duplicates are reported), every accepted checkpoint is checked for fencing,
//! and each key's items must be delivered in order across all processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_kinesis::StreamClient;
use async_kinesis::checkpoint::{CheckpointStore, LeaseTiming};
use async_kinesis::producer::Producer;
use serde_json::json;
use testkit::group::{Accounting, GroupLog, StoreSpec, WorkerConfig, WorkerProcess};
use testkit::moto_server::MotoServer;
use testkit::recording_store::now_ns;
use testkit::redis_cluster::RedisCluster;
use testkit::redis_server::RedisServer;
use testkit::{KinesisEndpoint, Service, Services, TestStream, random_stream_name};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(90);

fn timing() -> LeaseTiming {
    LeaseTiming::new(Duration::from_secs(4), Duration::from_secs(1)).expect("timing")
}

fn worker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kinesis-group-worker"))
}

/// A stream, its group of worker processes, and a view of the group's store.
struct Group {
    kinesis: KinesisEndpoint,
    stream: TestStream,
    config: WorkerConfig,
    log: GroupLog,
    workers: Vec<WorkerProcess>,
    view: Arc<dyn CheckpointStore>,
    /// Key → items put so far.
    put: BTreeMap<String, u64>,
    /// When the store lost all its data (wall-clock ns): fencing is checked per store life.
    store_resets: Vec<u64>,
}

impl Group {
    async fn new(store: StoreSpec, shards: u32) -> Self {
        let kinesis = Services::from_env().kinesis_mock();
        let stream = TestStream::create(&kinesis, "group", shards).await;
        let app = random_stream_name("app");
        let view = store.open(&app, timing()).await.expect("open the store");
        let config = WorkerConfig {
            bin: worker_bin(),
            stream: stream.name().to_owned(),
            kinesis_endpoint: Services::from_env().kinesis_mock,
            app,
            store,
            timing: timing(),
        };
        Self {
            kinesis,
            stream,
            config,
            log: GroupLog::default(),
            workers: Vec::new(),
            view,
            put: BTreeMap::new(),
            store_resets: Vec::new(),
        }
    }

    async fn spawn(&mut self, ids: &[&str]) {
        self.spawn_with(ids, &[]).await;
    }

    /// Starts workers with more arguments (see `kinesis-group-worker`) and waits until they
    /// are ready.
    async fn spawn_with(&mut self, ids: &[&str], args: &[&str]) {
        for id in ids {
            self.workers
                .push(WorkerProcess::spawn_with(&self.config, id, &self.log, args));
        }
        let deadline = Instant::now() + WAIT;
        while !ids.iter().all(|id| self.log.is_ready(id)) {
            assert!(
                Instant::now() < deadline,
                "workers not ready: {:?}",
                self.log.errors()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `items` more items for each of `keys` keys.
    async fn put(&mut self, keys: usize, items: u64) {
        put_items(
            &self.kinesis,
            self.stream.name(),
            &mut self.put,
            keys,
            items,
        )
        .await;
    }

    /// Leases per live worker, sorted by count.
    async fn lease_counts(&self) -> (Vec<usize>, BTreeMap<String, usize>) {
        let leases = self.view.list(self.stream.name()).await.expect("list");
        let live = self
            .view
            .live_workers(self.stream.name())
            .await
            .expect("live");
        let mut per_worker: BTreeMap<String, usize> =
            live.iter().map(|w| (w.to_string(), 0)).collect();
        for owner in leases.iter().filter_map(|l| l.owner.as_ref()) {
            *per_worker.entry(owner.to_string()).or_default() += 1;
        }
        let mut counts: Vec<usize> = per_worker.values().copied().collect();
        counts.sort_unstable();
        (counts, per_worker)
    }

    /// Claims of the stream's leases so far: the sum of their fencing tokens (each claim
    /// raises its shard's token by one, from 0 before the first).
    async fn claims(&self) -> u64 {
        let leases = self.view.list(self.stream.name()).await.expect("list");
        leases.iter().map(|l| l.token.0).sum()
    }

    /// Waits until the leases are spread as `expected` (sorted counts); returns how long it took.
    async fn await_balance(&self, expected: &[usize]) -> Duration {
        let started = Instant::now();
        loop {
            let (counts, per_worker) = self.lease_counts().await;
            if counts == expected {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < WAIT,
                "leases {per_worker:?}, expected {expected:?}; errors {:?}",
                self.log.errors()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every item put was delivered at least once.
    async fn await_delivery(&self) {
        let total: u64 = self.put.values().sum();
        let deadline = Instant::now() + WAIT;
        while (self.log.distinct_items() as u64) < total {
            assert!(
                Instant::now() < deadline,
                "{} of {total} items delivered; errors {:?}",
                self.log.distinct_items(),
                self.log.errors()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every worker cleanly; checks fencing; returns the accounting.
    async fn finish(mut self, name: &str) -> Accounting {
        for worker in &mut self.workers {
            worker.stop(Duration::from_secs(20)).await;
        }
        let mut lives = vec![0];
        lives.extend(&self.store_resets);
        lives.push(u64::MAX);
        let accepted: usize = lives
            .windows(2)
            .map(|life| {
                self.log
                    .check_fencing_between(life[0], life[1])
                    .unwrap_or_else(|violations| panic!("fencing violated: {violations:#?}"))
            })
            .sum();
        let accounting = self.log.account(&self.put);
        eprintln!(
            "{name}: {} items put, {} deliveries, lost {}, duplicates {}, {accepted} checkpoints accepted, {} error items",
            self.put.values().sum::<u64>(),
            accounting.delivered,
            accounting.lost,
            accounting.duplicates,
            self.log.errors().len()
        );
        assert_eq!(accounting.lost, 0, "{name}: items lost");
        assert!(accepted > 0, "{name}: no checkpoint was written");
        self.stream.delete().await;
        accounting
    }
}

async fn put_items(
    kinesis: &KinesisEndpoint,
    stream: &str,
    put: &mut BTreeMap<String, u64>,
    keys: usize,
    items: u64,
) {
    let producer = Producer::builder(stream)
        .sdk_config(kinesis.sdk_config())
        .buffer_time(Duration::from_millis(20))
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for key in (0..keys).map(|i| format!("key-{i:03}")) {
        let next = put.entry(key.clone()).or_default();
        for n in *next..*next + items {
            let receipt = producer
                .put_with_key(json!({"k": key, "n": n}), key.clone())
                .await
                .expect("put");
            receipts.push(receipt);
        }
        *next += items;
    }
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    producer.close().await.expect("close");
}

/// Puts items in the background until stopped; returns the keys' counts.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, u64>>,
    rounds: Arc<AtomicU64>,
}

impl Writer {
    fn start(kinesis: KinesisEndpoint, stream: String, keys: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, rounds) = (stop.clone(), rounds.clone());
            async move {
                let mut put = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    put_items(&kinesis, &stream, &mut put, keys, 5).await;
                    rounds.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                put
            }
        });
        Self { stop, task, rounds }
    }

    async fn wait_rounds(&self, rounds: u64) {
        let target = self.rounds.load(Ordering::Relaxed) + rounds;
        while self.rounds.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

fn shared_redis() -> StoreSpec {
    let services = Services::from_env();
    services.require(Service::Redis);
    StoreSpec::Redis {
        url: services.redis_url,
    }
}

fn shared_dynamodb() -> StoreSpec {
    let services = Services::from_env();
    services.require(Service::DynamoDb);
    StoreSpec::DynamoDb {
        endpoint: services.dynamodb,
        table: random_stream_name("leases"),
    }
}

async fn three_processes_share_sixteen_shards(store: StoreSpec, name: &str) {
    let mut group = Group::new(store, 16).await;
    group.put(48, 10).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    let started = Instant::now();
    let took = group.await_balance(&[5, 5, 6]).await;
    let heartbeat = timing().heartbeat_frequency();
    eprintln!(
        "{name}: 16 leases spread 5/5/6 {took:?} after the workers were ready (heartbeat {heartbeat:?})"
    );
    // By design within 1¼ heartbeats of the last worker's start (the shedder's next heartbeat,
    // then a claimer's catch-up claim a quarter heartbeat later); on a loaded machine that
    // takes any time, so the bound is on the work instead: every claim raises the shard's
    // fencing token. Workers that start one after another take the most claims: 16 by the
    // first, 8 by the second (half of them handed off), 5 by the third — 29. Leases moving back
    // and forth (thrashing) exceed 32.
    let claims = group.claims().await;
    assert!(
        claims <= 32,
        "{claims} claims to converge: leases moved back and forth"
    );
    // Balanced, they stay balanced while reading more: not one lease moves.
    group.put(48, 10).await;
    group.await_delivery().await;
    assert_eq!(group.lease_counts().await.0, [5, 5, 6]);
    assert_eq!(group.claims().await, claims, "a lease moved once balanced");
    assert!(started.elapsed() < WAIT);
    group.finish(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_redis_converge_to_five_five_six_and_never_share_a_shard() {
    three_processes_share_sixteen_shards(shared_redis(), "redis 3×16").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_dynamodb_converge_to_five_five_six_and_never_share_a_shard() {
    three_processes_share_sixteen_shards(shared_dynamodb(), "dynamodb 3×16").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_shards_are_taken_over_after_the_session_timeout() {
    let mut group = Group::new(shared_redis(), 8).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    group.await_balance(&[2, 3, 3]).await;
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 16);
    writer.wait_rounds(3).await;
    group.workers[0].kill().await;
    let took = group.await_balance(&[4, 4]).await;
    let (_, per_worker) = group.lease_counts().await;
    assert!(!per_worker.contains_key("worker-a"), "{per_worker:?}");
    eprintln!(
        "SIGKILL: the dead worker's leases were taken over {took:?} after the kill (session timeout {:?})",
        timing().session_timeout()
    );
    // Its leases lived until they expired: nobody took them earlier.
    // The last renewal came at most one heartbeat before the kill; allow one more for a late tick.
    assert!(
        took >= timing().session_timeout() - timing().heartbeat_frequency() * 2,
        "taken over {took:?} after the kill, before the leases could expire"
    );
    writer.wait_rounds(3).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    let accounting = group.finish("SIGKILL").await;
    eprintln!(
        "SIGKILL: {} duplicates (the killed worker's un-acked window)",
        accounting.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_loses_nothing() {
    let mut redis = RedisServer::spawn(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut group = Group::new(StoreSpec::Redis { url: redis.url() }, 6).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    group.await_balance(&[2, 2, 2]).await;
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 12);
    writer.wait_rounds(3).await;
    // Down for longer than a session: every worker must give its leases up, then recover.
    redis.stop();
    tokio::time::sleep(timing().session_timeout() + Duration::from_secs(1)).await;
    redis.start();
    writer.wait_rounds(3).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    group.await_balance(&[2, 2, 2]).await;
    let errors = group.log.errors();
    assert!(
        errors
            .iter()
            .any(|(_, message)| message.contains("expired")),
        "no worker gave up a lease during the outage: {errors:?}"
    );
    group.finish("redis restart").await;
}

/// The master of the group's slot dies mid-run and its replica takes over (node timeout 1 s,
/// well inside the 4 s session): the workers ride it out and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_failover_mid_run_loses_nothing() {
    let mut cluster = RedisCluster::spawn_with_replicas(3, Duration::from_secs(1));
    let seed = cluster.replica_urls()[0].clone();
    let mut group = Group::new(StoreSpec::RedisCluster { seed }, 6).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    group.await_balance(&[2, 2, 2]).await;
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 12);
    writer.wait_rounds(3).await;
    let slot_key = format!(
        "async-kinesis:{{{}:{}}}:shards",
        group.config.app,
        group.stream.name()
    );
    let master = cluster.master_of(&slot_key);
    cluster.nodes_mut()[master].kill();
    let killed = Instant::now();
    let promoted = tokio::task::block_in_place(|| cluster.await_failover(&slot_key, master));
    eprintln!(
        "node {promoted} took the slot over {:?} after the kill",
        killed.elapsed()
    );
    writer.wait_rounds(3).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    group.await_balance(&[2, 2, 2]).await;
    group.finish("redis cluster failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moto_restart_mid_run_loses_nothing() {
    let mut moto = MotoServer::spawn().await;
    let store = StoreSpec::DynamoDb {
        endpoint: moto.endpoint(),
        table: random_stream_name("leases"),
    };
    let mut group = Group::new(store, 6).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    group.await_balance(&[2, 2, 2]).await;
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 12);
    writer.wait_rounds(3).await;
    // moto keeps everything in memory: the restart loses the table and every checkpoint, so
    // the workers re-create it and read again from the start (duplicates, never loss).
    moto.stop();
    group.store_resets.push(now_ns());
    tokio::time::sleep(Duration::from_secs(2)).await;
    moto.start().await;
    writer.wait_rounds(3).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    group.await_balance(&[2, 2, 2]).await;
    let accounting = group.finish("moto restart").await;
    eprintln!(
        "moto restart: {} duplicates (checkpoints lost with moto's memory)",
        accounting.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_during_a_three_worker_run_reads_children_after_their_parents() {
    let mut group = Group::new(shared_redis(), 3).await;
    group.spawn(&["worker-a", "worker-b", "worker-c"]).await;
    group.await_balance(&[1, 1, 1]).await;
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 24);
    writer.wait_rounds(3).await;
    split_every_shard(group.stream.client()).await;
    writer.wait_rounds(5).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    // Six open children over three workers, once the parents are finished.
    group.await_balance(&[2, 2, 2]).await;
    // `account` checks that each key's items were first delivered in order across all
    // processes: a child read before its parent ended would deliver a key's later items first.
    group.finish("resharding").await;
}

/// Splits every open shard in two, one after another.
async fn split_every_shard(client: &StreamClient) {
    let sdk = client.sdk_client().clone();
    let name = client.stream().name().to_owned();
    let shards = client.list_shards().await.expect("list");
    for shard in shards.iter().filter(|s| s.is_open()) {
        let mid = shard.starting_hash_key + (shard.ending_hash_key - shard.starting_hash_key) / 2;
        sdk.split_shard()
            .stream_name(&name)
            .shard_to_split(&shard.shard_id)
            .new_starting_hash_key(mid.to_string())
            .send()
            .await
            .expect("SplitShard");
        client
            .wait_until_active(Duration::from_secs(30))
            .await
            .expect("ACTIVE again");
    }
}

/// Sends `signal` (e.g. `-STOP`, `-CONT`) to a Redis server started by the test.
fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

const LATEST: &[&str] = &["--latest", "true"];

/// LATEST, two (then three) processes and a writer running: leases handed off before and after
/// their shard's first checkpoint, back and forth, then all of them lost to a store frozen for
/// longer than a session. Every item written after the first worker was ready arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_hand_offs_back_and_forth_and_a_lease_lost_to_a_frozen_store_skip_nothing() {
    let redis = RedisServer::spawn(&[]);
    let mut group = Group::new(StoreSpec::Redis { url: redis.url() }, 4).await;
    // Alone on the idle stream: every shard starts at LATEST, before any record exists.
    group.spawn_with(&["worker-a"], LATEST).await;
    group.await_balance(&[4]).await;
    // A writer and a second worker start together: shards move before their first checkpoint.
    let writer = Writer::start(group.kinesis.clone(), group.stream.name().to_owned(), 16);
    group.spawn_with(&["worker-b"], LATEST).await;
    group.await_balance(&[2, 2]).await;
    writer.wait_rounds(3).await;
    // Back: the second worker stops; the first takes its shards after their checkpoints.
    group.workers[1].stop(Duration::from_secs(20)).await;
    group.await_balance(&[4]).await;
    writer.wait_rounds(3).await;
    // And forth again.
    group.spawn_with(&["worker-c"], LATEST).await;
    group.await_balance(&[2, 2]).await;
    writer.wait_rounds(3).await;
    // The store freezes for longer than a session: every lease is given up, then claimed again.
    signal(&redis, "-STOP");
    tokio::time::sleep(timing().session_timeout() + Duration::from_secs(1)).await;
    signal(&redis, "-CONT");
    writer.wait_rounds(3).await;
    group.await_balance(&[2, 2]).await;
    writer.wait_rounds(3).await;
    group.put = writer.stop().await;
    group.await_delivery().await;
    let errors = group.log.errors();
    assert!(
        errors
            .iter()
            .any(|(_, message)| message.contains("expired")),
        "no lease was given up while the store was frozen: {errors:?}"
    );
    let accounting = group.finish("LATEST hand-offs").await;
    eprintln!(
        "LATEST hand-offs: {} duplicates (re-reads from recorded starts and checkpoints)",
        accounting.duplicates
    );
}

/// A deserializer that panics on one record of 40 in one process: an error item names the
/// shard, the process's other shards go on, and the other process takes the shard's lease and
/// delivers the rest, the panicking record included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_panic_hands_its_shard_to_the_other_process_which_delivers_the_rest() {
    let mut group = Group::new(shared_redis(), 4).await;
    group.put(4, 10).await; // 40 items: key-000..key-003, 10 each
    group
        .spawn_with(&["worker-a"], &["--panic-on", "key-000:3"])
        .await;
    let deadline = Instant::now() + WAIT;
    let shard = loop {
        let panicked = group
            .log
            .errors()
            .into_iter()
            .find(|(_, message)| message.contains("panicked"));
        if let Some((worker, message)) = panicked {
            assert_eq!(worker, "worker-a");
            assert!(
                message.contains("deserializer bug on key-000:3"),
                "{message}"
            );
            let shard = message
                .split_whitespace()
                .find(|word| word.starts_with("shardId-"))
                .expect("the error names the shard")
                .to_owned();
            break shard;
        }
        assert!(
            Instant::now() < deadline,
            "no panic reported: {:?}",
            group.log.errors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The other shards go on: items written now arrive.
    group.put(48, 2).await;
    group.spawn(&["worker-b"]).await;
    group.await_delivery().await;
    let leases = group.view.list(group.stream.name()).await.expect("list");
    let owner = leases
        .iter()
        .find(|l| l.shard_id == shard)
        .and_then(|l| l.owner.clone());
    assert_eq!(owner.map(|o| o.to_string()).as_deref(), Some("worker-b"));
    let panics = group
        .log
        .errors()
        .iter()
        .filter(|(_, message)| message.contains("panicked"))
        .count();
    assert_eq!(panics, 1, "worker-a never claimed the shard again");
    group.finish("reader panic").await;
}
