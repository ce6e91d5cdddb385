//! Listing every stream over pages, resharding (count, split, merge) with checks before any
//! call, and the lag probe of a checkpoint, against kinesis-mock.

use std::time::Duration;

use async_kinesis::checkpoint::{Position, Progress};
use async_kinesis::{Error, Streams};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use testkit::{KinesisEndpoint, Services, TestStream};

use crate::consumer_support::{json_records, put};

/// kinesis-mock keeps one namespace per 12-digit access key id: this test's own account, so
/// the listing holds exactly its streams.
fn own_account(services: &Services) -> aws_config::SdkConfig {
    let account: u64 = rand::random_range(100_000_000_000..999_999_999_999);
    testkit::sdk_config_for(&services.kinesis_mock)
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            account.to_string(),
            "test",
            None,
            None,
            "test",
        )))
        .build()
}

#[tokio::test]
async fn every_stream_is_listed_over_every_page() {
    let services = Services::from_env();
    services.require(testkit::Service::KinesisMock);
    let config = own_account(&services);
    let streams = Streams::from_sdk_config(&config)
        .expect("credentials")
        .with_page_size(1);
    let mut names = Vec::new();
    for i in 0..3 {
        let name = testkit::random_stream_name(&format!("list{i}"));
        let client = streams.stream(name.as_str()).expect("valid name");
        client
            .create_if_missing(
                async_kinesis::CreateStream::Provisioned { shards: 1 },
                Duration::from_secs(30),
            )
            .await
            .expect("created");
        names.push(name);
    }
    names.sort();
    assert_eq!(streams.list_names().await.expect("listed"), names);
    let summaries = streams.list().await.expect("described");
    let listed: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(summaries.iter().all(|s| s.open_shard_count == 1));
    for name in &names {
        streams
            .stream(name.as_str())
            .expect("valid")
            .delete()
            .await
            .expect("deleted");
    }
}

async fn open_shards(stream: &TestStream) -> Vec<String> {
    let shards = stream.shards().await;
    shards
        .into_iter()
        .filter(|s| s.is_open())
        .map(|s| s.shard_id.to_string())
        .collect()
}

#[tokio::test]
async fn split_merge_and_scale_wait_for_active() {
    let kinesis: KinesisEndpoint = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "reshard", 1).await;
    let client = stream.client();
    let timeout = Duration::from_secs(30);

    let err = client
        .split_shard("shardId-000000000009")
        .await
        .expect_err("unknown shard");
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("no shard shardId-000000000009")),
        "{err}"
    );

    client
        .split_shard("shardId-000000000000")
        .await
        .expect("split");
    client.wait_until_active(timeout).await.expect("active");
    let children = open_shards(&stream).await;
    assert_eq!(children.len(), 2, "{children:?}");
    let err = client
        .split_shard("shardId-000000000000")
        .await
        .expect_err("closed parent");
    assert!(err.to_string().contains("is closed"), "{err}");

    client
        .merge_shards(&children[1], &children[0])
        .await
        .expect("merge, either order");
    client.wait_until_active(timeout).await.expect("active");
    assert_eq!(open_shards(&stream).await.len(), 1);

    client.update_shard_count(2).await.expect("scale");
    client.wait_until_active(timeout).await.expect("active");
    assert_eq!(open_shards(&stream).await.len(), 2);
    let err = client.update_shard_count(0).await.expect_err("zero shards");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    stream.delete().await;
}

#[tokio::test]
async fn lag_of_a_checkpoint_is_how_far_the_tip_is_ahead() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "lag", 1).await;
    let client = stream.client();
    let shard = "shardId-000000000000";
    put(client, &json_records("k", 0..1)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    put(client, &json_records("k", 1..2)).await;
    let records = testkit::read_shard(client, shard).await;
    assert_eq!(records.len(), 2);
    let behind = client
        .millis_behind_latest(shard, &Progress::None)
        .await
        .expect("probe");
    assert!(
        behind.is_some_and(|ms| ms >= 1000),
        "from the start: {behind:?}"
    );
    let at_last = Progress::At(Position::after(records[1].sequence_number.as_str()));
    assert_eq!(
        client
            .millis_behind_latest(shard, &at_last)
            .await
            .expect("probe"),
        Some(0)
    );
    assert_eq!(
        client
            .millis_behind_latest(shard, &Progress::ShardEnd)
            .await
            .expect("no call"),
        Some(0)
    );
    stream.delete().await;
}
