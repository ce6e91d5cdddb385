//! `DynamoDbStore` over time against a real moto server: time to live kept ahead for a live
//! group, expiry judged by watching, racing claims and checkpoints, and a server that restarts
//! empty.
#![cfg(feature = "dynamodb")]

use crate::dynamodb_support;

use std::time::Duration;

use async_kinesis::checkpoint::{
    CheckpointError, CheckpointStore, Claim, DynamoDbError, DynamoDbStore, Position, Progress,
    WorkerId,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use dynamodb_support::*;
use testkit::moto_server::MotoServer;
use testkit::random_stream_name;
use testkit::store_contract::CONTRACT_TIMING;

/// A new client of the store on `table`, for group "ttl-app", with items expiring after an hour.
async fn ttl_store(table: &str) -> DynamoDbStore {
    DynamoDbStore::builder("ttl-app")
        .table_name(table)
        .sdk_config(&shared_config())
        .ttl_hours(Some(1))
        .build()
        .await
        .expect("build")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_enabled_and_kept_ahead_for_every_item_of_a_live_group() {
    let table = random_stream_name("ckpt-ttl");
    let client = Client::new(&shared_config());
    let store = ttl_store(&table).await;
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("describe ttl");
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    let stream = random_stream_name("ttl");
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    // A finished shard, a released one, a held one, and a registration.
    let finished = acquire(&store, &stream, "shard-0", &a).await;
    store
        .checkpoint(&finished, &Position::after("10"))
        .await
        .expect("checkpoint");
    store.mark_shard_end(&finished).await.expect("end");
    store.release(&finished).await.expect("release");
    let released = acquire(&store, &stream, "shard-1", &a).await;
    store.release(&released).await.expect("release");
    acquire(&store, &stream, "shard-2", &a).await;
    store.heartbeat(&stream, &a).await.expect("heartbeat");
    let group = format!("ttl-app:{stream}");
    let items = partition(&client, &table, &group).await;
    assert_eq!(items.len(), 4);
    let now = epoch_now();
    for item in &items {
        let at = number(item, "expires_at");
        assert!(at.abs_diff(now + 3600) < 120, "{item:?}");
    }

    // Let every expiry fall to ten minutes ahead: less than half the TTL.
    for item in &items {
        client
            .update_item()
            .table_name(&table)
            .key("app_stream", item["app_stream"].clone())
            .key("shard_id", item["shard_id"].clone())
            .update_expression("SET expires_at = :soon")
            .expression_attribute_values(":soon", AttributeValue::N((now + 600).to_string()))
            .send()
            .await
            .expect("age the item");
    }
    // Another live worker of the group (a new process) refreshes them all on its first
    // heartbeat, the finished shard's too.
    let other = ttl_store(&table).await;
    other.heartbeat(&stream, &b).await.expect("heartbeat");
    let items = partition(&client, &table, &group).await;
    assert_eq!(items.len(), 5);
    let now = epoch_now();
    for item in &items {
        let at = number(item, "expires_at");
        assert!(at.abs_diff(now + 3600) < 120, "not refreshed: {item:?}");
    }
    assert_eq!(
        other.progress(&stream, "shard-0").await.expect("progress"),
        Progress::ShardEnd
    );

    // A store without a TTL would stop refreshing them: refused.
    let err = DynamoDbStore::builder("ttl-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .build()
        .await
        .expect_err("ttl mismatch");
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::TtlMismatch { .. }),
        "{err:?}"
    );
    drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_an_expired_lease_have_one_winner() {
    let table = random_stream_name("ckpt-race");
    let holder = store_on(&table, "race-app").await;
    let stream = random_stream_name("race");
    let a = WorkerId::new("a");
    let old = acquire(&holder, &stream, "shard-0", &a).await;
    holder
        .checkpoint(&old, &Position::after("42"))
        .await
        .expect("checkpoint");
    let mut takers = Vec::new();
    for i in 0..8 {
        let store = store_on(&table, "race-app").await;
        let worker = WorkerId::new(format!("w{i}"));
        // Each taker starts watching the lease.
        assert_eq!(
            store
                .claim(&stream, "shard-0", &worker)
                .await
                .expect("claim"),
            Claim::HeldBy { owner: a.clone() }
        );
        takers.push((store, worker));
    }
    tokio::time::sleep(EXPIRED).await;
    let claims: Vec<_> = takers
        .into_iter()
        .map(|(store, worker)| {
            let stream = stream.clone();
            tokio::spawn(async move { store.claim(&stream, "shard-0", &worker).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refused_by = Vec::new();
    for claim in claims {
        match claim.await.expect("task").expect("claim") {
            Claim::Acquired { lease, progress } => {
                assert_eq!(progress, Progress::At(Position::after("42")));
                winners.push(lease);
            }
            Claim::HeldBy { owner } => refused_by.push(owner),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let winner = &winners[0];
    assert_eq!(winner.token.0, old.token.0 + 1);
    assert!(refused_by.iter().all(|owner| *owner == winner.owner));
    match holder.checkpoint(&old, &Position::after("99")).await {
        Err(CheckpointError::NotOwned { owner, .. }) => {
            assert_eq!(owner.as_ref(), Some(&winner.owner));
        }
        other => panic!("the old holder wrote: {other:?}"),
    }
    drop_table(holder.client(), &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_a_session_timeout_from_the_first_look() {
    let table = random_stream_name("ckpt-watch");
    let holder = store_on(&table, "watch-app").await;
    let stream = random_stream_name("watch");
    let a = WorkerId::new("a");
    acquire(&holder, &stream, "shard-0", &a).await;
    // The holder goes silent for longer than a session timeout before anyone looks.
    tokio::time::sleep(EXPIRED).await;
    let late = store_on(&table, "watch-app").await;
    let c = WorkerId::new("c");
    assert_eq!(
        late.claim(&stream, "shard-0", &c).await.expect("claim"),
        Claim::HeldBy { owner: a.clone() },
        "no clock is shared: a first look cannot tell how long the holder was silent"
    );
    assert_eq!(
        late.list(&stream).await.expect("list")[0].owner,
        Some(a.clone())
    );
    tokio::time::sleep(EXPIRED).await;
    assert_eq!(
        late.list(&stream).await.expect("list")[0].owner,
        None,
        "list hides an owner judged expired"
    );
    let lease = acquire(&late, &stream, "shard-0", &c).await;
    assert_eq!(lease.owner, c);
    drop_table(holder.client(), &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_a_renewing_owner_again() {
    let table = random_stream_name("ckpt-list");
    let (holder, watcher) = (
        store_on(&table, "list-app").await,
        store_on(&table, "list-app").await,
    );
    let stream = random_stream_name("list");
    let a = WorkerId::new("a");
    let lease = acquire(&holder, &stream, "shard-0", &a).await;
    assert_eq!(
        watcher.list(&stream).await.expect("list")[0].owner,
        Some(a.clone())
    );
    tokio::time::sleep(EXPIRED).await;
    assert_eq!(watcher.list(&stream).await.expect("list")[0].owner, None);
    // An expired lease nobody took still accepts its holder's writes.
    holder.renew(&lease).await.expect("renew");
    assert_eq!(watcher.list(&stream).await.expect("list")[0].owner, Some(a));
    drop_table(holder.client(), &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkpoints_keep_the_furthest() {
    let table = random_stream_name("ckpt-forward");
    let owner_store = store_on(&table, "forward-app").await;
    let stream = random_stream_name("forward");
    let lease = acquire(&owner_store, &stream, "shard-0", &WorkerId::new("a")).await;
    // Four clients of the same lease (as after a process was duplicated) race 40 positions.
    let mut stores = vec![owner_store.clone()];
    for _ in 0..3 {
        stores.push(store_on(&table, "forward-app").await);
    }
    let mut writes = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        let lease = lease.clone();
        writes.push(tokio::spawn(async move {
            // Interleaved and partly backwards: 4 writers, each its own order.
            let mut seqs: Vec<u64> = (0..10).map(|k| 1_000 + (k * 4 + i as u64)).collect();
            if i % 2 == 1 {
                seqs.reverse();
            }
            for seq in seqs {
                store
                    .checkpoint(&lease, &Position::within(seq.to_string(), seq % 3))
                    .await
                    .expect("checkpoint");
            }
        }));
    }
    for write in writes {
        write.await.expect("task");
    }
    assert_eq!(
        owner_store
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::At(Position::within("1039", 1039 % 3))
    );
    drop_table(owner_store.client(), &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_restarts_empty_is_survived() {
    let mut moto = MotoServer::spawn().await;
    let config = moto.sdk_config();
    let table = random_stream_name("ckpt-restart");
    let open = |create: bool| {
        DynamoDbStore::builder("restart-app")
            .table_name(&table)
            .sdk_config(&config)
            .timing(CONTRACT_TIMING)
            .create_table(create)
            .build()
    };
    let store = open(true).await.expect("build creates the table");
    let strict = open(false).await.expect("the table exists");
    let stream = random_stream_name("restart");
    let a = WorkerId::new("a");
    let lease = acquire(&store, &stream, "shard-0", &a).await;
    store
        .checkpoint(&lease, &Position::after("7"))
        .await
        .expect("checkpoint");

    moto.stop();
    let started = std::time::Instant::now();
    let err = store
        .checkpoint(&lease, &Position::after("8"))
        .await
        .expect_err("the server is down");
    println!("server down: error after {:?}", started.elapsed());
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        matches!(
            err,
            CheckpointError::Store {
                operation: "checkpoint",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::Unreachable { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    moto.start().await;
    // Without create_table the vanished table is a clear, final error.
    let err = strict
        .progress(&stream, "shard-0")
        .await
        .expect_err("no table");
    assert!(!err.is_retryable());
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::TableMissing { .. }),
        "{err:?}"
    );
    // With it, the failing call re-creates the table and may be repeated.
    let err = store.renew(&lease).await.expect_err("table gone");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::TableRecreated { .. }),
        "{err:?}"
    );
    // Everything starts from nothing: the old lease is unknown, the shard is claimed afresh.
    assert!(matches!(
        store.renew(&lease).await,
        Err(CheckpointError::UnknownShard { .. })
    ));
    match store.claim(&stream, "shard-0", &a).await.expect("claim") {
        Claim::Acquired { lease, progress } => {
            assert_eq!(progress, Progress::None);
            assert_eq!(lease.token.0, 1);
        }
        other => panic!("expected a fresh claim, got {other:?}"),
    }
    assert_eq!(
        strict.progress(&stream, "shard-0").await.expect("progress"),
        Progress::None
    );
}

/// The refresh writes at most 100 items per call: a group of 130 shards and a registration is
/// refreshed whole, every item of it, across calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_refresh_of_a_large_group_misses_no_item() {
    const SHARDS: usize = 130;
    let table = random_stream_name("ckpt-ttl-many");
    let client = Client::new(&shared_config());
    let store = ttl_store(&table).await;
    let stream = random_stream_name("ttl-many");
    let a = WorkerId::new("a");
    for n in 0..SHARDS {
        let lease = acquire(&store, &stream, &format!("shard-{n:03}"), &a).await;
        store
            .checkpoint(&lease, &Position::after(n.to_string()))
            .await
            .expect("checkpoint");
        store.release(&lease).await.expect("release");
    }
    store.heartbeat(&stream, &a).await.expect("heartbeat");
    let group = format!("ttl-app:{stream}");
    let items = partition(&client, &table, &group).await;
    assert_eq!(items.len(), SHARDS + 1);
    let soon = epoch_now() + 600;
    for item in &items {
        client
            .update_item()
            .table_name(&table)
            .key("app_stream", item["app_stream"].clone())
            .key("shard_id", item["shard_id"].clone())
            .update_expression("SET expires_at = :soon")
            .expression_attribute_values(":soon", AttributeValue::N(soon.to_string()))
            .send()
            .await
            .expect("age the item");
    }
    let b = WorkerId::new("b");
    let other = ttl_store(&table).await;
    other.heartbeat(&stream, &b).await.expect("heartbeat");
    let items = partition(&client, &table, &group).await;
    assert_eq!(items.len(), SHARDS + 2, "130 shards, two registrations");
    let now = epoch_now();
    let stale: Vec<&str> = items
        .iter()
        .filter(|item| number(item, "expires_at").abs_diff(now + 3600) >= 120)
        .map(|item| string(item, "shard_id"))
        .collect();
    assert!(stale.is_empty(), "not refreshed: {stale:?}");
    // The refresh changed nothing but the expiry.
    for n in [0, 99, 100, SHARDS - 1] {
        assert_eq!(
            other
                .progress(&stream, &format!("shard-{n:03}"))
                .await
                .expect("progress"),
            Progress::At(Position::after(n.to_string()))
        );
    }
    drop_table(&client, &table).await;
}
