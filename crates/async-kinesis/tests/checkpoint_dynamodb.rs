//! `DynamoDbStore` against a real moto server: the store contract (every `open` is a new client,
//! as another process would open it), then what is particular to DynamoDB: the item layout,
//! table creation, time to live, expiry judged by watching, an unreachable endpoint, and a
//! server that restarts empty.
#![cfg(feature = "dynamodb")]

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, DynamoDbError, DynamoDbStore, Lease,
    Position, Progress, WorkerId,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveStatus,
};
use testkit::moto_server::MotoServer;
use testkit::store_contract::CONTRACT_TIMING;
use testkit::{Service, Services, random_stream_name, sdk_config_for};

/// Beyond a contract session timeout, with room for a slow machine.
const EXPIRED: Duration = Duration::from_millis(2_300);

fn shared_config() -> SdkConfig {
    Services::from_env().sdk_config(Service::DynamoDb)
}

/// The contract cases' table, one per test process (apps and streams share it, as they would in
/// production).
fn contract_table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| random_stream_name("ckpt-contract"))
}

fn open(app: &str) -> BoxFuture<'static, Arc<dyn CheckpointStore>> {
    let app = app.to_owned();
    Box::pin(async move {
        let store = DynamoDbStore::builder(app)
            .table_name(contract_table())
            .sdk_config(&shared_config())
            .timing(CONTRACT_TIMING)
            .build()
            .await
            .expect("open the store");
        Arc::new(store) as Arc<dyn CheckpointStore>
    })
}

testkit::store_contract_tests!(open);

/// A store of `app` on `table` of the shared server, with the contract timing.
async fn store_on(table: &str, app: &str) -> DynamoDbStore {
    DynamoDbStore::builder(app)
        .table_name(table)
        .sdk_config(&shared_config())
        .timing(CONTRACT_TIMING)
        .build()
        .await
        .expect("open the store")
}

async fn drop_table(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
}

async fn acquire(store: &DynamoDbStore, stream: &str, shard: &str, worker: &WorkerId) -> Lease {
    match store.claim(stream, shard, worker).await.expect("claim") {
        Claim::Acquired { lease, .. } => lease,
        other => panic!("{worker} expected the lease of {shard}, got {other:?}"),
    }
}

/// The DynamoDB failure inside a store error.
fn dynamo_source(err: &CheckpointError) -> &DynamoDbError {
    err.source()
        .and_then(|source| source.downcast_ref::<DynamoDbError>())
        .unwrap_or_else(|| panic!("no DynamoDbError inside {err:?}"))
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {item:?}"))
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("{name} is not a string in {item:?}"))
}

async fn partition(
    client: &Client,
    table: &str,
    app_stream: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    client
        .query()
        .table_name(table)
        .key_condition_expression("app_stream = :g")
        .expression_attribute_values(":g", AttributeValue::S(app_stream.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_keyed_by_app_stream_and_shard_id() {
    let table = random_stream_name("ckpt-layout");
    let store = store_on(&table, "layout-app").await;
    let client = Client::new(&shared_config());
    let stream = random_stream_name("layout");
    let worker = WorkerId::new("host-1");
    let lease = acquire(&store, &stream, "shardId-000000000007", &worker).await;
    store
        .checkpoint(
            &lease,
            &Position::within(
                "49590338271490256608559692538361571095921575989136588898",
                2,
            ),
        )
        .await
        .expect("checkpoint");
    store.heartbeat(&stream, &worker).await.expect("heartbeat");

    let description = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let keys: Vec<(&str, &str)> = description
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("app_stream", "HASH"), ("shard_id", "RANGE")]);

    let group = format!("layout-app:{stream}");
    let items = partition(&client, &table, &group).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let shard = items
        .iter()
        .find(|i| string(i, "shard_id") == "shardId-000000000007")
        .expect("the shard's item");
    assert_eq!(string(shard, "app_stream"), group);
    assert_eq!(string(shard, "owner"), "host-1");
    assert_eq!(number(shard, "token"), lease.token.0);
    assert_eq!(number(shard, "token"), 1);
    assert_eq!(
        string(shard, "sequence_number"),
        "49590338271490256608559692538361571095921575989136588898"
    );
    assert_eq!(number(shard, "sub_sequence"), 2);
    assert!(!shard.contains_key("shard_end"));
    assert!(!shard.contains_key("expires_at"), "no TTL was asked for");
    let registration = items
        .iter()
        .find(|i| string(i, "shard_id") == "worker#host-1")
        .expect("the worker's registration");
    assert_eq!(string(registration, "worker"), "host-1");
    assert_eq!(number(registration, "beat"), 1);

    // A whole record drops the sub-sequence; SHARD_END is a flag; release drops the owner.
    store
        .checkpoint(
            &lease,
            &Position::after("49590338271490256608559692538361571095921575989136588898"),
        )
        .await
        .expect("checkpoint");
    store.mark_shard_end(&lease).await.expect("end");
    store.release(&lease).await.expect("release");
    let items = partition(&client, &table, &group).await;
    let shard = items
        .iter()
        .find(|i| string(i, "shard_id") == "shardId-000000000007")
        .expect("the shard's item");
    assert!(!shard.contains_key("sub_sequence"));
    assert!(!shard.contains_key("owner"));
    assert_eq!(shard.get("shard_end"), Some(&AttributeValue::Bool(true)));
    assert_eq!(number(shard, "token"), 1, "the token outlives the release");
    store.leave(&stream, &worker).await.expect("leave");
    assert_eq!(partition(&client, &table, &group).await.len(), 1);
    drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_created_pay_per_request() {
    let table = random_stream_name("ckpt-create");
    let client = Client::new(&shared_config());
    let store = DynamoDbStore::builder("create-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .create_table(true)
        .build()
        .await
        .expect("build creates the table");
    assert_eq!(store.table_name(), table);
    let description = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("the table exists")
        .table
        .expect("table");
    assert_eq!(
        description.table_status().map(|s| s.as_str()),
        Some("ACTIVE")
    );
    assert_eq!(
        description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    // Opening again finds it.
    DynamoDbStore::builder("create-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .create_table(false)
        .build()
        .await
        .expect("the table exists now");
    drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_table_name_follows_the_application_name() {
    let app = random_stream_name("ckpt-default");
    let store = DynamoDbStore::builder(app.as_str())
        .sdk_config(&shared_config())
        .build()
        .await
        .expect("build");
    assert_eq!(store.table_name(), format!("kinesis-checkpoints-{app}"));
    assert_eq!(store.app_name(), app);
    drop_table(store.client(), store.table_name()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_without_create_table_is_a_clear_error() {
    let table = random_stream_name("ckpt-missing");
    let err = DynamoDbStore::builder("missing-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .create_table(false)
        .build()
        .await
        .expect_err("no table");
    assert!(!err.is_retryable());
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::TableMissing { table: t } if *t == table),
        "{err:?}"
    );
    assert!(dynamo_source(&err).to_string().contains(&table));
    let client = Client::new(&shared_config());
    let describe = client.describe_table().table_name(&table).send().await;
    assert!(describe.is_err(), "the table was created anyway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_another_key_schema_is_refused() {
    // The Python library's layout: the shard id alone as the key.
    let table = random_stream_name("ckpt-python");
    let client = Client::new(&shared_config());
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("shard_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("shard_id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create");
    let err = DynamoDbStore::builder("python-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .build()
        .await
        .expect_err("wrong schema");
    assert!(!err.is_retryable());
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::WrongKeySchema { found, .. } if found == "shard_id HASH S"),
        "{err:?}"
    );
    drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_clearly_in_bounded_time() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let err = DynamoDbStore::builder("unreachable-app")
        .sdk_config(&sdk_config_for(&endpoint))
        .build()
        .await
        .expect_err("nothing listens there");
    let took = started.elapsed();
    println!("unreachable endpoint: error after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(err.is_retryable(), "a server that is down may come back");
    match dynamo_source(&err) {
        DynamoDbError::Unreachable {
            endpoint: e,
            operation,
            ..
        } => {
            assert_eq!(e, &endpoint);
            assert_eq!(*operation, "DescribeTable");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(dynamo_source(&err).to_string().contains(&endpoint));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_a_clear_error() {
    let config = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(Services::from_env().dynamodb)
        .build();
    let err = DynamoDbStore::builder("no-credentials-app")
        .sdk_config(&config)
        .build()
        .await
        .expect_err("no credentials");
    assert!(!err.is_retryable());
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::NoCredentials { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_refused_before_any_call() {
    let unreachable = sdk_config_for("http://127.0.0.1:1");
    let cases = [
        DynamoDbStore::builder("a:b").sdk_config(&unreachable),
        DynamoDbStore::builder("my app").sdk_config(&unreachable),
        DynamoDbStore::builder("app")
            .table_name("x")
            .sdk_config(&unreachable),
        DynamoDbStore::builder("app")
            .session_timeout(Duration::from_secs(10))
            .heartbeat_frequency(Duration::from_secs(6))
            .sdk_config(&unreachable),
        // 60 session timeouts of 2 minutes are 2 hours.
        DynamoDbStore::builder("app")
            .session_timeout(Duration::from_secs(120))
            .heartbeat_frequency(Duration::from_secs(30))
            .ttl_hours(Some(1))
            .sdk_config(&unreachable),
        DynamoDbStore::builder("app")
            .ttl_hours(Some(0))
            .sdk_config(&unreachable),
    ];
    for builder in cases {
        let err = builder.build().await.expect_err("invalid");
        assert!(!err.is_retryable());
        assert!(
            matches!(dynamo_source(&err), DynamoDbError::InvalidOption(_)),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstorable_arguments_are_refused_without_a_write() {
    let table = random_stream_name("ckpt-args");
    let store = store_on(&table, "args-app").await;
    let stream = random_stream_name("args");
    let a = WorkerId::new("a");
    let err = store
        .claim(&stream, "worker#a", &a)
        .await
        .expect_err("a registration's key");
    assert!(!err.is_retryable());
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::InvalidArgument(_)),
        "{err:?}"
    );
    let lease = acquire(&store, &stream, "shard-0", &a).await;
    store
        .checkpoint(&lease, &Position::after("12"))
        .await
        .expect("checkpoint");
    let err = store
        .checkpoint(&lease, &Position::after("9x"))
        .await
        .expect_err("not a sequence number");
    assert!(
        matches!(dynamo_source(&err), DynamoDbError::InvalidArgument(_)),
        "{err:?}"
    );
    assert_eq!(
        store.progress(&stream, "shard-0").await.expect("progress"),
        Progress::At(Position::after("12"))
    );
    drop_table(store.client(), &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_enabled_and_kept_ahead_for_every_item_of_a_live_group() {
    let table = random_stream_name("ckpt-ttl");
    let client = Client::new(&shared_config());
    let open = || {
        DynamoDbStore::builder("ttl-app")
            .table_name(&table)
            .sdk_config(&shared_config())
            .ttl_hours(Some(1))
            .build()
    };
    let store = open().await.expect("build");
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
    let other = open().await.expect("build");
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
