//! `RedisStore` against real redis-server processes: the store contract on the shared server of
//! `scripts/local-stack`, and key layout, failures, restarts and a cluster on private servers.
#![cfg(feature = "redis")]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, Lease, LeaseTiming, Position, Progress,
    RedisStore, WorkerId,
};
use redis::AsyncCommands;
use testkit::redis_server::{RedisCluster, RedisServer};
use testkit::store_contract::{self, CONTRACT_TIMING};
use testkit::{Service, Services, random_stream_name};

/// Application names carry a per-process prefix, so runs never meet earlier runs' keys.
fn app_name(app: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
    format!("test-{run}-{app}")
}

fn shared_url() -> String {
    let services = Services::from_env();
    services.require(Service::Redis);
    services.redis_url
}

fn open(app: &str) -> BoxFuture<'static, Arc<dyn CheckpointStore>> {
    let app = app_name(app);
    Box::pin(async move {
        let store = RedisStore::builder(app)
            .url(shared_url())
            .timing(CONTRACT_TIMING)
            .connect()
            .await
            .expect("connect to the shared redis");
        Arc::new(store) as Arc<dyn CheckpointStore>
    })
}

testkit::store_contract_tests!(open);

async fn connect(url: &str, app: &str, timing: LeaseTiming) -> RedisStore {
    RedisStore::builder(app)
        .url(url)
        .timing(timing)
        .connect()
        .await
        .expect("connect")
}

async fn plain(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("plain connection")
}

async fn acquire(store: &RedisStore, stream: &str, shard: &str, worker: &WorkerId) -> Lease {
    match store.claim(stream, shard, worker).await.expect("claim") {
        Claim::Acquired { lease, .. } => lease,
        other => panic!("{worker} expected {shard}, got {other:?}"),
    }
}

/// The error's whole chain, as a log line would show it.
fn chain(error: &CheckpointError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn expect_store_error(
    result: Result<impl std::fmt::Debug, CheckpointError>,
    operation: &str,
    retryable: bool,
) -> String {
    let error = result.expect_err("the call should fail");
    let text = chain(&error);
    match &error {
        CheckpointError::Store {
            operation: failed,
            retryable: can_retry,
            ..
        } => {
            assert_eq!(*failed, operation, "{text}");
            assert_eq!(*can_retry, retryable, "{text}");
        }
        other => panic!("expected a Store error of {operation}, got {other:?}"),
    }
    text
}

/// Every key of a group is `async-kinesis:{<app>:<stream>}:…`; progress never expires, the
/// lease and the worker registry do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_app_and_stream_and_checkpoints_never_expire() {
    let url = shared_url();
    let app = app_name("layout");
    let stream = random_stream_name("layout");
    let store = connect(&url, &app, CONTRACT_TIMING).await;
    let a = WorkerId::new("a");
    let lease = acquire(&store, &stream, "shardId-000000000000", &a).await;
    store
        .checkpoint(
            &lease,
            &Position::within("4959033827149025660855969253836157", 2),
        )
        .await
        .expect("checkpoint");
    store.heartbeat(&stream, &a).await.expect("heartbeat");

    let mut redis = plain(&url).await;
    let prefix = format!("async-kinesis:{{{app}:{stream}}}:");
    let mut keys: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("keys");
    keys.sort();
    let expected = |suffix: &str| format!("{prefix}{suffix}");
    assert_eq!(
        keys,
        [
            expected("lease:shardId-000000000000"),
            expected("shard:shardId-000000000000"),
            expected("shards"),
            expected("workers"),
        ]
    );
    let session_ms = i64::try_from(CONTRACT_TIMING.session_timeout.as_millis()).expect("ms");
    let pttl = |key: String| {
        let mut redis = redis.clone();
        async move { redis.pttl::<_, i64>(key).await.expect("pttl") }
    };
    assert_eq!(pttl(expected("shard:shardId-000000000000")).await, -1);
    assert_eq!(pttl(expected("shards")).await, -1);
    for key in [expected("lease:shardId-000000000000"), expected("workers")] {
        let ttl = pttl(key.clone()).await;
        assert!(0 < ttl && ttl <= session_ms, "{key}: {ttl} ms");
    }
    let mut entry: Vec<(String, String)> = redis
        .hgetall(expected("shard:shardId-000000000000"))
        .await
        .expect("hgetall");
    entry.sort();
    assert_eq!(
        entry,
        [
            ("owner".to_owned(), "a".to_owned()),
            (
                "sequence".to_owned(),
                "4959033827149025660855969253836157".to_owned()
            ),
            ("sub_sequence".to_owned(), "2".to_owned()),
            ("token".to_owned(), lease.token.0.to_string()),
        ]
    );

    // Past the session timeout the lease and the registry are gone; the checkpoint stays.
    tokio::time::sleep(CONTRACT_TIMING.session_timeout + Duration::from_millis(300)).await;
    let mut left: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("keys");
    left.sort();
    assert_eq!(
        left,
        [expected("shard:shardId-000000000000"), expected("shards")]
    );
    assert_eq!(
        store
            .progress(&stream, "shardId-000000000000")
            .await
            .expect("progress"),
        Progress::At(Position::within("4959033827149025660855969253836157", 2))
    );
    let listed = store.list(&stream).await.expect("list");
    assert_eq!(listed[0].owner, None, "expired");

    // Release keeps the token and the progress; only the owner goes.
    store
        .release(&lease)
        .await
        .expect("release of an unclaimed expired lease");
    let owner: Option<String> = redis
        .hget(expected("shard:shardId-000000000000"), "owner")
        .await
        .expect("hget");
    assert_eq!(owner, None);
    let token: u64 = redis
        .hget(expected("shard:shardId-000000000000"), "token")
        .await
        .expect("hget");
    assert_eq!(token, lease.token.0);
}

/// One application on two streams, and names that only differ by where a `:` falls, keep
/// separate keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_never_share_keys() {
    let url = shared_url();
    let run = app_name("");
    let stream = random_stream_name("groups");
    let other_stream = random_stream_name("groups");
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let app = connect(&url, &format!("{run}x"), CONTRACT_TIMING).await;
    let one = acquire(&app, &stream, "shard-0", &a).await;
    let two = acquire(&app, &other_stream, "shard-0", &b).await;
    app.checkpoint(&one, &Position::after("10"))
        .await
        .expect("write");
    app.checkpoint(&two, &Position::after("20"))
        .await
        .expect("write");
    assert_eq!(
        app.progress(&stream, "shard-0").await.expect("progress"),
        Progress::At(Position::after("10"))
    );
    assert_eq!(
        app.progress(&other_stream, "shard-0")
            .await
            .expect("progress"),
        Progress::At(Position::after("20"))
    );
    assert_eq!(app.list(&stream).await.expect("list").len(), 1);

    // "<run>a:b" reading "s" and "<run>a" reading "b:s" would both be "<run>a:b:s" unescaped.
    let colon_app = connect(&url, &format!("{run}a:b"), CONTRACT_TIMING).await;
    let plain_app = connect(&url, &format!("{run}a"), CONTRACT_TIMING).await;
    let colon_stream = stream.clone();
    let joined_stream = format!("b:{stream}");
    let x = acquire(&colon_app, &colon_stream, "shard-0", &a).await;
    colon_app
        .checkpoint(&x, &Position::after("5"))
        .await
        .expect("write");
    match plain_app
        .claim(&joined_stream, "shard-0", &b)
        .await
        .expect("claim")
    {
        Claim::Acquired { progress, .. } => assert_eq!(progress, Progress::None),
        other => panic!("another group's lease leaked: {other:?}"),
    }
}

/// Sub-sequence numbers past 2^53 (where a Lua number loses precision) and 56-digit sequence
/// numbers compare exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_compare_exactly_beyond_double_precision() {
    let url = shared_url();
    let store = connect(&url, &app_name("precision"), CONTRACT_TIMING).await;
    let stream = random_stream_name("precision");
    let lease = acquire(&store, &stream, "shard-0", &WorkerId::new("a")).await;
    let seq = "49590338271490256608559692538361571095921575989136588898";
    let next = "49590338271490256608559692538361571095921575989136588899";
    let big = 1u64 << 53;
    for (write, expect) in [
        (
            Position::within(seq, big + 1),
            Position::within(seq, big + 1),
        ),
        // Equal as doubles, smaller as integers.
        (Position::within(seq, big), Position::within(seq, big + 1)),
        (
            Position::within(seq, u64::MAX - 1),
            Position::within(seq, u64::MAX - 1),
        ),
        (
            Position::within(seq, u64::MAX),
            Position::within(seq, u64::MAX),
        ),
        (Position::after(seq), Position::after(seq)),
        (Position::within(seq, u64::MAX), Position::after(seq)),
        (Position::within(next, 0), Position::within(next, 0)),
        (Position::after(seq), Position::within(next, 0)),
    ] {
        store.checkpoint(&lease, &write).await.expect("write");
        assert_eq!(
            store.progress(&stream, "shard-0").await.expect("progress"),
            Progress::At(expect),
            "after writing {write}"
        );
    }
}

/// A closed port fails `connect` at once with a retryable error naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_connect_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let started = Instant::now();
    let result = RedisStore::builder("app")
        .url(format!("redis://:hunter2@127.0.0.1:{port}/0"))
        .connect()
        .await;
    let elapsed = started.elapsed();
    let text = expect_store_error(result, "connect", true);
    eprintln!("closed port: failed after {elapsed:?}: {text}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert!(
        text.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

/// A server that accepts connections but never answers fails `connect` within the configured
/// timeouts instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_connect_within_the_timeouts() {
    let server = RedisServer::spawn(&[]);
    signal(&server, "-STOP");
    let started = Instant::now();
    let result = RedisStore::builder("app")
        .url(server.url())
        .connection_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await;
    let elapsed = started.elapsed();
    signal(&server, "-CONT");
    let text = expect_store_error(result, "connect", true);
    eprintln!("frozen server: failed after {elapsed:?}: {text}");
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
    assert!(text.contains(&server.url()), "{text}");
}

fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Refused credentials are not retryable and say so; the password never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_passwords_fail_connect_clearly() {
    let server = RedisServer::spawn(&["--requirepass", "right-password"]);
    let port = server.port();
    let wrong = RedisStore::builder("app")
        .url(format!("redis://:wrong-password@127.0.0.1:{port}"))
        .connect()
        .await;
    let text = expect_store_error(wrong, "connect", false);
    eprintln!("wrong password: {text}");
    assert!(text.contains("authentication"), "{text}");
    assert!(!text.contains("wrong-password"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");

    let missing = RedisStore::builder("app").url(server.url()).connect().await;
    let text = expect_store_error(missing, "connect", false);
    eprintln!("no password: {text}");
    assert!(text.contains("authentication"), "{text}");

    let store = RedisStore::builder("app")
        .url(format!("redis://:right-password@127.0.0.1:{port}/2"))
        .connect()
        .await
        .expect("the right password");
    let shown = format!("{store:?}");
    assert!(!shown.contains("right-password"), "{shown}");
    assert!(
        shown.contains(&format!("redis://:***@127.0.0.1:{port}/2")),
        "{shown}"
    );
    acquire(&store, "s", "shard-0", &WorkerId::new("a")).await;
    // Database 2, as the URL says.
    let mut redis = plain(&format!("redis://:right-password@127.0.0.1:{port}/2")).await;
    let keys: Vec<String> = redis.keys("async-kinesis:*").await.expect("keys");
    assert_eq!(keys.len(), 3, "{keys:?}");
}

/// URLs that do not parse, and invalid lease timing, fail `connect` without a network call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_settings_fail_connect() {
    for url in [
        "redis://:s3cret@127.0.0.1:notaport/0",
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:6379/notadb",
        "no scheme at all",
    ] {
        let result = RedisStore::builder("app").url(url).connect().await;
        let text = expect_store_error(result, "connect", false);
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("did not parse"), "{url}: {text}");
    }
    let result = RedisStore::builder("app")
        .url(shared_url())
        .session_timeout(Duration::from_secs(10))
        .heartbeat_frequency(Duration::from_secs(6))
        .connect()
        .await;
    let text = expect_store_error(result, "connect", false);
    assert!(
        text.contains("at least twice heartbeat_frequency"),
        "{text}"
    );
}

/// While the server is down every call fails fast with a retryable error; once it is back the
/// same store works again without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_an_outage_fail_retryably_and_the_store_recovers() {
    let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
    let store = connect(&server.url(), "outage", CONTRACT_TIMING).await;
    let a = WorkerId::new("a");
    let lease = acquire(&store, "s", "shard-0", &a).await;
    store
        .checkpoint(&lease, &Position::after("100"))
        .await
        .expect("write");

    server.stop();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let result = store.renew(&lease).await;
        slowest = slowest.max(started.elapsed());
        expect_store_error(result, "renew", true);
        let started = Instant::now();
        let result = store.checkpoint(&lease, &Position::after("200")).await;
        slowest = slowest.max(started.elapsed());
        expect_store_error(result, "checkpoint", true);
    }
    eprintln!("outage: slowest failed call {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");

    server.start();
    let started = Instant::now();
    store
        .renew(&lease)
        .await
        .expect("the first call after the restart");
    eprintln!("first call after the restart took {:?}", started.elapsed());
    store
        .checkpoint(&lease, &Position::after("300"))
        .await
        .expect("write");
    assert_eq!(
        store.progress("s", "shard-0").await.expect("progress"),
        Progress::At(Position::after("300"))
    );
}

/// A server that stops answering (frozen) fails calls within the call timeout; they work again
/// once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_frozen_server_time_out() {
    let server = RedisServer::spawn(&[]);
    let store = RedisStore::builder("frozen")
        .url(server.url())
        .timing(CONTRACT_TIMING)
        .connection_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let a = WorkerId::new("a");
    let lease = acquire(&store, "s", "shard-0", &a).await;
    signal(&server, "-STOP");
    let started = Instant::now();
    let result = store.renew(&lease).await;
    let elapsed = started.elapsed();
    signal(&server, "-CONT");
    let text = expect_store_error(result, "renew", true);
    eprintln!("frozen server: renew failed after {elapsed:?}: {text}");
    assert!(elapsed < Duration::from_millis(1_500), "{elapsed:?}");
    store.renew(&lease).await.expect("answers again");
}

/// Progress, tokens, ended shards and the shard index survive a restart of a server that keeps
/// an append-only file; scripts are reloaded on the fresh server without help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart_with_appendonly() {
    let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
    let store = connect(&server.url(), "durable", CONTRACT_TIMING).await;
    let a = WorkerId::new("a");
    let first = acquire(&store, "s", "shard-0", &a).await;
    let second = acquire(&store, "s", "shard-0", &a).await;
    store
        .checkpoint(&second, &Position::within("777", 3))
        .await
        .expect("write");
    store.release(&second).await.expect("release");
    let ended = acquire(&store, "s", "shard-1", &a).await;
    store.mark_shard_end(&ended).await.expect("end");

    server.stop();
    server.start();

    let fresh = connect(&server.url(), "durable", CONTRACT_TIMING).await;
    for store in [&store, &fresh] {
        let listed = store.list("s").await.expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].token, second.token);
        assert_eq!(listed[0].progress, Progress::At(Position::within("777", 3)));
        assert_eq!(listed[1].progress, Progress::ShardEnd);
    }
    let third = acquire(&fresh, "s", "shard-0", &WorkerId::new("b")).await;
    assert_eq!(third.token.0, second.token.0 + 1, "tokens continue");
    assert!(first.token < second.token);
    assert_eq!(
        fresh.claim("s", "shard-1", &a).await.expect("claim"),
        Claim::Finished
    );
}

/// A live lease is still held after a restart (its expiry is persisted), fenced tokens stay
/// fenced, and the lease expires on schedule for a takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_fencing_hold_across_a_restart() {
    let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
    let timing = LeaseTiming::new(Duration::from_secs(3), Duration::from_secs(1)).expect("timing");
    let store_a = connect(&server.url(), "fenced", timing).await;
    let store_b = connect(&server.url(), "fenced", timing).await;
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let stale = acquire(&store_a, "s", "shard-0", &a).await;
    let lease = acquire(&store_a, "s", "shard-0", &a).await;
    store_a
        .checkpoint(&lease, &Position::after("10"))
        .await
        .expect("write");
    let claimed_at = Instant::now();

    server.stop();
    server.start();
    eprintln!("restart took {:?}", claimed_at.elapsed());

    assert_eq!(
        store_b.claim("s", "shard-0", &b).await.expect("claim"),
        Claim::HeldBy { owner: a.clone() },
        "the lease survived the restart"
    );
    match store_a.checkpoint(&stale, &Position::after("99")).await {
        Err(CheckpointError::NotOwned { owner, .. }) => assert_eq!(owner, Some(a.clone())),
        other => panic!("the stale token wrote: {other:?}"),
    }
    store_a
        .checkpoint(&lease, &Position::after("20"))
        .await
        .expect("the current token writes");

    // Not renewed: it expires one session timeout after the claim, restart included.
    tokio::time::sleep(
        (claimed_at + timing.session_timeout + Duration::from_millis(200))
            .saturating_duration_since(Instant::now()),
    )
    .await;
    let taken = acquire(&store_b, "s", "shard-0", &b).await;
    assert!(taken.token > lease.token);
    match store_a.checkpoint(&lease, &Position::after("30")).await {
        Err(CheckpointError::NotOwned { owner, .. }) => assert_eq!(owner, Some(b.clone())),
        other => panic!("the old owner wrote after the takeover: {other:?}"),
    }
    assert_eq!(
        store_b.progress("s", "shard-0").await.expect("progress"),
        Progress::At(Position::after("20"))
    );
}

/// The contract holds on a three-node Redis Cluster, with every key of a group in one slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_a_cluster() {
    static SEED: OnceLock<String> = OnceLock::new();
    let started = Instant::now();
    let cluster = RedisCluster::spawn(3);
    eprintln!("cluster formed in {:?}", started.elapsed());
    let seed = SEED.get_or_init(|| cluster.urls()[1].clone()).clone();

    fn open_cluster(app: &str) -> BoxFuture<'static, Arc<dyn CheckpointStore>> {
        let app = app_name(app);
        Box::pin(async move {
            let seed = SEED.get().expect("seed").clone();
            let store = RedisStore::builder(app)
                .url(seed)
                .is_cluster(true)
                .timing(CONTRACT_TIMING)
                .connect()
                .await
                .expect("connect to the cluster");
            Arc::new(store) as Arc<dyn CheckpointStore>
        })
    }

    let cases: Vec<BoxFuture<'static, ()>> = vec![
        Box::pin(store_contract::a_fresh_shard_is_claimed_with_no_progress(
            open_cluster,
        )),
        Box::pin(
            store_contract::a_held_lease_is_refused_then_taken_over_after_expiry(open_cluster),
        ),
        Box::pin(store_contract::a_renewed_lease_is_never_taken(open_cluster)),
        Box::pin(store_contract::reclaiming_fences_the_previous_claim(
            open_cluster,
        )),
        Box::pin(store_contract::checkpoints_only_move_forward(open_cluster)),
        Box::pin(store_contract::a_released_lease_is_free_at_once_and_keeps_progress(open_cluster)),
        Box::pin(store_contract::shard_end_is_final(open_cluster)),
        Box::pin(store_contract::writes_without_a_claim_are_refused(
            open_cluster,
        )),
        Box::pin(store_contract::streams_and_apps_do_not_collide(
            open_cluster,
        )),
        Box::pin(store_contract::live_workers_follow_heartbeats(open_cluster)),
        Box::pin(store_contract::concurrent_claims_have_one_winner(
            open_cluster,
        )),
        Box::pin(store_contract::list_reports_every_shard_sorted(
            open_cluster,
        )),
    ];
    futures::future::join_all(cases).await;
    eprintln!(
        "12 contract cases ran on the cluster in {:?}",
        started.elapsed()
    );

    // A group's keys: one slot, whichever node holds it.
    let store = open_cluster("slots").await;
    let stream = random_stream_name("slots");
    let a = WorkerId::new("a");
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        store.claim(&stream, shard, &a).await.expect("claim");
    }
    store.heartbeat(&stream, &a).await.expect("heartbeat");
    let app = app_name("slots");
    let prefix = format!("async-kinesis:{{{app}:{stream}}}:");
    let mut redis = plain(&seed).await;
    let mut slots = Vec::new();
    for suffix in [
        "shard:shardId-000000000000",
        "lease:shardId-000000000001",
        "shards",
        "workers",
    ] {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{prefix}{suffix}"))
            .query_async(&mut redis)
            .await
            .expect("keyslot");
        slots.push(slot);
    }
    assert!(slots.iter().all(|slot| *slot == slots[0]), "{slots:?}");
    let mut found = 0;
    for url in cluster.urls() {
        let mut node = plain(&url).await;
        let keys: Vec<String> = node.keys(format!("{prefix}*")).await.expect("keys");
        found += keys.len();
    }
    assert_eq!(found, 6, "2 entries, 2 leases, the index and the registry");
}

/// A CA and a server certificate for 127.0.0.1 in `dir` (with the openssl command line);
/// returns the CA's PEM.
fn make_certificates(dir: &std::path::Path) -> Vec<u8> {
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl command line tool (Debian package openssl)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    std::fs::read(dir.join("ca.crt")).expect("ca.crt")
}

/// `rediss://` through an injected client that trusts a private CA; without that CA the
/// certificate is refused at connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_through_an_injected_client() {
    let dir = std::env::temp_dir().join(format!("ak-redis-tls-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = make_certificates(&dir);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
        .to_string();
    let path = |file: &str| dir.join(file).to_string_lossy().into_owned();
    let (cert, key) = (path("server.crt"), path("server.key"));
    let server = RedisServer::spawn(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}/0");

    let untrusted = RedisStore::builder("tls").url(url.as_str()).connect().await;
    let text = expect_store_error(untrusted, "connect", false);
    eprintln!("untrusted certificate: {text}");
    assert!(text.contains(&url), "{text}");

    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .expect("tls client");
    let store = RedisStore::builder("tls")
        .client(client)
        .timing(CONTRACT_TIMING)
        .connect()
        .await
        .expect("connect over TLS");
    assert!(format!("{store:?}").contains(&url));
    let lease = acquire(&store, "s", "shard-0", &WorkerId::new("a")).await;
    store
        .checkpoint(&lease, &Position::after("42"))
        .await
        .expect("write");
    assert_eq!(
        store.progress("s", "shard-0").await.expect("progress"),
        Progress::At(Position::after("42"))
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
