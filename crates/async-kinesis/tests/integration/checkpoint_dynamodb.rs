//! `DynamoDbStore` against a real moto server: the store contract (every `open` is a new client,
//! as another process would open it), the item layout, table creation, and what fails clearly
//! (missing table, foreign schema, unreachable endpoint, no credentials, bad options).
#![cfg(feature = "dynamodb")]

use crate::dynamodb_support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_kinesis::RetryPolicy;
use async_kinesis::checkpoint::{
    BoxFuture, CheckpointStore, DynamoDbError, DynamoDbStore, Position, Progress, WorkerId,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use dynamodb_support::*;
use testkit::store_contract::{self, CONTRACT_TIMING};
use testkit::{Services, random_stream_name, sdk_config_for};

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
        // The SDK retries a bounded number of times.
        DynamoDbStore::builder("app")
            .retry(RetryPolicy::default())
            .sdk_config(&unreachable),
        DynamoDbStore::builder("app")
            .retry(RetryPolicy::default().retry_limit(Some(0)))
            .sdk_config(&unreachable),
    ];
    for builder in cases {
        let err = builder.build().await.expect_err("invalid");
        assert!(!err.is_retryable());
        assert!(
            matches!(dynamo_source(&err), DynamoDbError::InvalidConfig(_)),
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

/// Workers registering while others list the live workers: every registration is read whole.
/// An upserting UpdateItem is not one step on moto (it stores the bare key, then the
/// attributes), which let `live_workers` meet a registration without its worker and fail a whole
/// consumer group with `MalformedItem`; registrations are now created with one PutItem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_never_read_half_written() {
    let table = random_stream_name("ckpt-registrations");
    // Registrations outlive the test however slow the machine: only reading is under test.
    let store = DynamoDbStore::builder("registrations-app")
        .table_name(&table)
        .sdk_config(&shared_config())
        .session_timeout(Duration::from_secs(600))
        .heartbeat_frequency(Duration::from_secs(60))
        .build()
        .await
        .expect("open the store");
    let stream = random_stream_name("registrations");
    let registrars: Vec<_> = (0..2)
        .map(|task| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    let worker = WorkerId::new(format!("w{task}-{i:02}"));
                    store.heartbeat(&stream, &worker).await.expect("register");
                    store.heartbeat(&stream, &worker).await.expect("renew");
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut reads = 0_u32;
            let mut failures = Vec::new();
            while reads < 1_000 {
                match store.live_workers(&stream).await {
                    Ok(live) if live.len() == 80 => break,
                    Ok(_) => {}
                    Err(err) => failures.push(err.to_string()),
                }
                reads += 1;
            }
            failures
        })
    };
    for registrar in registrars {
        registrar.await.expect("registrar");
    }
    let failures = reader.await.expect("reader");
    assert!(
        failures.is_empty(),
        "{} reads failed: {failures:?}",
        failures.len()
    );
    let live = store.live_workers(&stream).await.expect("live");
    assert_eq!(live.len(), 80, "{live:?}");
}

/// An item damaged by hand (a token that is not a number, a sequence that is not one) is left
/// out of `list`, which still answers the good items exactly; calls about the damaged shard
/// fail naming it, and the damaged item is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_items_are_left_out_of_list_and_named_by_calls_about_them() {
    let table = random_stream_name("ckpt-damaged");
    let client = Client::new(&shared_config());
    let store = store_on(&table, "damaged-app").await;
    let stream = random_stream_name("damaged");
    let damaged = ["shard-bad-token", "shard-bad-sequence"];
    store_contract::checkpoint_shards(&store, &stream, &["shard-good", damaged[0], damaged[1]])
        .await;
    let group = format!("damaged-app:{stream}");
    let damage = |shard: &'static str, attribute: &'static str, value: AttributeValue| {
        let (client, table, group) = (client.clone(), table.clone(), group.clone());
        async move {
            client
                .update_item()
                .table_name(&table)
                .key("app_stream", AttributeValue::S(group))
                .key("shard_id", AttributeValue::S(shard.to_owned()))
                .update_expression("SET #a = :v")
                .expression_attribute_names("#a", attribute)
                .expression_attribute_values(":v", value)
                .send()
                .await
                .expect("damage the item");
        }
    };
    damage("shard-bad-token", "token", AttributeValue::S("nine".into())).await;
    damage(
        "shard-bad-sequence",
        "sequence_number",
        AttributeValue::S("12x4".into()),
    )
    .await;
    let before = partition(&client, &table, &group).await;

    store_contract::assert_damaged_left_out(&store, &stream, "shard-good", &damaged).await;
    let mut after = partition(&client, &table, &group).await;
    let mut before = before;
    let key = |item: &std::collections::HashMap<String, AttributeValue>| {
        string(item, "shard_id").to_owned()
    };
    before.sort_by_key(key);
    after.sort_by_key(key);
    assert_eq!(after, before, "nothing was written over");
    drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_policy_configures_the_client_the_store_builds() {
    let table = random_stream_name("ckpt-retry");
    let retry = RetryPolicy::default()
        .expo_backoff(Duration::from_millis(20))
        .expo_backoff_limit(Duration::from_millis(500))
        .retry_limit(Some(2));
    let store = DynamoDbStore::builder("retry-app")
        .table_name(&table)
        .retry(retry)
        .sdk_config(&shared_config())
        .build()
        .await
        .expect("store");
    let sdk = store
        .client()
        .config()
        .retry_config()
        .expect("a retry config");
    assert_eq!(sdk.max_attempts(), 2);
    assert_eq!(sdk.initial_backoff(), Duration::from_millis(20));
    assert_eq!(sdk.max_backoff(), Duration::from_millis(500));
    // And the store works with it.
    let worker = WorkerId::new("w");
    acquire(&store, "s", "shardId-000000000000", &worker).await;
    drop_table(store.client(), &table).await;
}
