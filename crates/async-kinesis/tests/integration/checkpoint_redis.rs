//! `RedisStore` against real redis-server processes: the store contract on the shared server of
//! `scripts/local-stack`, key layout, and connections that fail (unreachable, frozen, bad
//! password or settings).
#![cfg(feature = "redis")]

use crate::redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointStore, Claim, Position, Progress, RedisStore, WorkerId,
};
use redis::AsyncCommands;
use redis_support::*;
use testkit::random_stream_name;
use testkit::redis_server::RedisServer;
use testkit::store_contract::{self, CONTRACT_TIMING};

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
    let session_ms = i64::try_from(CONTRACT_TIMING.session_timeout().as_millis()).expect("ms");
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
    tokio::time::sleep(CONTRACT_TIMING.session_timeout() + Duration::from_millis(300)).await;
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
    expect_checkpoint(&app, &stream, "shard-0", "10").await;
    expect_checkpoint(&app, &other_stream, "shard-0", "20").await;
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
        text.contains("at least three times heartbeat_frequency"),
        "{text}"
    );
}

/// An entry damaged by hand (a sequence that is not a number, a token that is not one) is left
/// out of `list`, which still answers the good entries exactly; calls about the damaged shard
/// fail naming it, and the damaged fields are left as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_entries_are_left_out_of_list_and_named_by_calls_about_them() {
    let url = shared_url();
    let app = app_name("damaged");
    let stream = random_stream_name("damaged");
    let store = connect(&url, &app, CONTRACT_TIMING).await;
    let damaged = ["shard-bad-sequence", "shard-bad-token"];
    store_contract::checkpoint_shards(&store, &stream, &["shard-good", damaged[0], damaged[1]])
        .await;
    let mut redis = plain(&url).await;
    let key = |shard: &str| format!("async-kinesis:{{{app}:{stream}}}:shard:{shard}");
    let () = redis
        .hset(key("shard-bad-sequence"), "sequence", "12x4")
        .await
        .expect("hset");
    let () = redis
        .hset(key("shard-bad-token"), "token", "not-a-number")
        .await
        .expect("hset");

    store_contract::assert_damaged_left_out(&store, &stream, "shard-good", &damaged).await;
    let sequence: String = redis
        .hget(key("shard-bad-sequence"), "sequence")
        .await
        .expect("hget");
    assert_eq!(sequence, "12x4", "left as it was");
    let token: String = redis
        .hget(key("shard-bad-token"), "token")
        .await
        .expect("hget");
    assert_eq!(token, "not-a-number", "left as it was");
    let owner: Option<String> = redis
        .hget(key("shard-bad-token"), "owner")
        .await
        .expect("hget");
    assert_eq!(owner, None, "the refused claim took nothing");
}
