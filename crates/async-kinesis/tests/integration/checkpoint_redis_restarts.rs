//! `RedisStore` through outages and restarts of private redis-server processes, on a local
//! Redis Cluster, and over TLS.
#![cfg(feature = "redis")]

use crate::redis_support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, LeaseTiming, Position, Progress,
    RedisStore, WorkerId,
};
use redis::AsyncCommands;
use redis_support::*;
use testkit::random_stream_name;
use testkit::redis_cluster::RedisCluster;
use testkit::redis_server::RedisServer;
use testkit::store_contract::{self, CONTRACT_TIMING};

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
    expect_checkpoint(&store, "s", "shard-0", "300").await;
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
        (claimed_at + timing.session_timeout() + Duration::from_millis(200))
            .saturating_duration_since(Instant::now()),
    )
    .await;
    let taken = acquire(&store_b, "s", "shard-0", &b).await;
    assert!(taken.token > lease.token);
    match store_a.checkpoint(&lease, &Position::after("30")).await {
        Err(CheckpointError::NotOwned { owner, .. }) => assert_eq!(owner, Some(b.clone())),
        other => panic!("the old owner wrote after the takeover: {other:?}"),
    }
    expect_checkpoint(&store_b, "s", "shard-0", "20").await;
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
        Box::pin(store_contract::finished_and_released_shards_are_pruned_once(open_cluster)),
        Box::pin(
            store_contract::held_finished_shards_are_kept_until_their_lease_expires(open_cluster),
        ),
        Box::pin(store_contract::pruning_leaves_other_streams_and_apps_alone(
            open_cluster,
        )),
    ];
    let count = cases.len();
    futures::future::join_all(cases).await;
    eprintln!(
        "{count} contract cases ran on the cluster in {:?}",
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

/// The master of a group's slot is killed and its replica takes over: calls fail retryably while
/// the slot has no master, then the same store works on the promoted replica, with the lease and
/// checkpoint written before the failure intact and fencing as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_master_failing_over_to_its_replica() {
    let started = Instant::now();
    let mut cluster = RedisCluster::spawn_with_replicas(3, Duration::from_millis(1_000));
    eprintln!(
        "cluster of 3 masters + 3 replicas formed in {:?}",
        started.elapsed()
    );
    let app = app_name("failover");
    let stream = random_stream_name("failover");
    let shard_key = format!("async-kinesis:{{{app}:{stream}}}:shard:shard-0");
    let master = cluster.master_of(&shard_key);
    // A replica outlives the master's death, so it is a seed for the whole test.
    let seed = cluster.replica_urls()[0].clone();
    let store = RedisStore::builder(&app)
        .url(seed)
        .is_cluster(true)
        .timing(CONTRACT_TIMING)
        .connect()
        .await
        .expect("connect to the cluster");
    let a = WorkerId::new("a");
    let lease = claim_while_settling(&store, &stream, "shard-0", &a).await;
    store
        .checkpoint(&lease, &Position::after("100"))
        .await
        .expect("write");
    // Replication is asynchronous: let the replica catch up, as a failover test of lost writes
    // is not what this is.
    tokio::time::sleep(Duration::from_millis(300)).await;

    cluster.nodes_mut()[master].kill();
    let killed = Instant::now();
    let mut failures = 0;
    loop {
        match store.progress(&stream, "shard-0").await {
            Ok(progress) => {
                assert_eq!(progress, Progress::At(Position::after("100")));
                break;
            }
            Err(error) => {
                failures += 1;
                assert!(
                    matches!(
                        error,
                        CheckpointError::Store {
                            retryable: true,
                            ..
                        }
                    ),
                    "a failover is retryable: {error:?}"
                );
                assert!(
                    killed.elapsed() < Duration::from_secs(30),
                    "no recovery 30 s after the master died: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tokio::task::block_in_place(|| cluster.await_failover(&shard_key, master));
    eprintln!(
        "served again {:?} after the kill, {failures} retryable failures meanwhile",
        killed.elapsed()
    );

    // The lease may have expired during the failover (the contract session is short); the
    // holder's writes still count as long as nobody else claimed it.
    store
        .checkpoint(&lease, &Position::after("200"))
        .await
        .expect("the holder writes on the promoted replica");
    tokio::time::sleep(CONTRACT_TIMING.session_timeout() + Duration::from_millis(300)).await;
    let b = WorkerId::new("b");
    let taken = claim_while_settling(&store, &stream, "shard-0", &b).await;
    assert!(taken.token > lease.token, "{taken:?} after {lease:?}");
    assert!(matches!(
        store.checkpoint(&lease, &Position::after("300")).await,
        Err(CheckpointError::NotOwned { .. })
    ));
    expect_checkpoint(&store, &stream, "shard-0", "200").await;
}

/// Claims `shard` for `worker`, retrying while the cluster settles.
async fn claim_while_settling(
    store: &RedisStore,
    stream: &str,
    shard: &str,
    worker: &WorkerId,
) -> async_kinesis::checkpoint::Lease {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.claim(stream, shard, worker).await {
            Ok(Claim::Acquired { lease, .. }) => return lease,
            Ok(other) => panic!("{worker} expected {shard}, got {other:?}"),
            Err(error) if Instant::now() < deadline => {
                eprintln!("claim retried: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("claim: {error:?}"),
        }
    }
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
    expect_checkpoint(&store, "s", "shard-0", "42").await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
