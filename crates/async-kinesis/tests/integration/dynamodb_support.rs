//! Shared helpers of the DynamoDB store tests.

use std::collections::HashMap;
use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_kinesis::checkpoint::{
    CheckpointError, CheckpointStore, Claim, DynamoDbError, DynamoDbStore, Lease, WorkerId,
};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use testkit::store_contract::CONTRACT_TIMING;
use testkit::{Service, Services};

/// Beyond a contract session timeout, with room for a slow machine.
pub const EXPIRED: Duration = Duration::from_millis(2_300);

pub fn shared_config() -> SdkConfig {
    Services::from_env().sdk_config(Service::DynamoDb)
}

/// A store of `app` on `table` of the shared server, with the contract timing.
pub async fn store_on(table: &str, app: &str) -> DynamoDbStore {
    DynamoDbStore::builder(app)
        .table_name(table)
        .sdk_config(&shared_config())
        .timing(CONTRACT_TIMING)
        .build()
        .await
        .expect("open the store")
}

pub async fn drop_table(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
}

pub async fn acquire(store: &DynamoDbStore, stream: &str, shard: &str, worker: &WorkerId) -> Lease {
    match store.claim(stream, shard, worker).await.expect("claim") {
        Claim::Acquired { lease, .. } => lease,
        other => panic!("{worker} expected the lease of {shard}, got {other:?}"),
    }
}

/// The DynamoDB failure inside a store error.
pub fn dynamo_source(err: &CheckpointError) -> &DynamoDbError {
    err.source()
        .and_then(|source| source.downcast_ref::<DynamoDbError>())
        .unwrap_or_else(|| panic!("no DynamoDbError inside {err:?}"))
}

pub fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {item:?}"))
}

pub fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("{name} is not a string in {item:?}"))
}

pub async fn partition(
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
