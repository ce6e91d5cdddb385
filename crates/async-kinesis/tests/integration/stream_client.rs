//! The stream client against kinesis-mock: create, describe, paginated listing, ARN addressing,
//! waits, and the errors for missing streams, bad input and unreachable endpoints.

use std::collections::HashSet;
use std::time::Duration;

use async_kinesis::{CreateStream, Error, ShardListing, StreamClient, StreamMode, StreamStatus};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use testkit::{Services, TestStream, random_stream_name, sdk_config_for};

/// No call in these tests may hang: each is bounded well above its normal duration.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
}

#[tokio::test]
async fn provisioned_stream_is_created_and_described() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "describe", 3).await;

    let summary = stream.client().describe().await.expect("describe");
    assert_eq!(summary.name, stream.name());
    assert_eq!(summary.status, StreamStatus::Active);
    assert_eq!(summary.mode, StreamMode::Provisioned);
    assert_eq!(summary.open_shard_count, 3);
    assert_eq!(
        summary.max_record_bytes,
        async_kinesis::stream::limits::DEFAULT_MAX_RECORD_BYTES
    );
    assert_eq!(
        summary.retention,
        async_kinesis::stream::limits::DEFAULT_RETENTION
    );
    assert!(
        summary.arn.ends_with(&format!(":stream/{}", stream.name())),
        "{}",
        summary.arn
    );

    let shards = stream.shards().await;
    assert_eq!(shards.len(), 3);
    assert!(
        shards
            .iter()
            .all(|s| s.is_open() && s.parents().next().is_none())
    );
    stream.delete().await;
}

#[tokio::test]
async fn on_demand_stream_is_created() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create_with(&kinesis, "ondemand", CreateStream::OnDemand).await;
    let summary = stream.client().describe().await.expect("describe");
    assert_eq!(summary.mode, StreamMode::OnDemand);
    assert!(summary.open_shard_count >= 1);
    assert_eq!(stream.shards().await.len() as u32, summary.open_shard_count);
    stream.delete().await;
}

#[tokio::test]
async fn creating_an_existing_stream_is_stream_exists_and_create_if_missing_is_not() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "exists", 1).await;
    let err = stream
        .client()
        .create(CreateStream::Provisioned { shards: 1 })
        .await
        .expect_err("exists");
    assert!(matches!(err, Error::StreamExists { .. }), "{err:?}");
    let summary = stream
        .client()
        .create_if_missing(
            CreateStream::Provisioned { shards: 5 },
            Duration::from_secs(30),
        )
        .await
        .expect("existing stream is fine");
    assert_eq!(
        summary.open_shard_count, 1,
        "the existing stream is kept as it is"
    );
    stream.delete().await;
}

/// Shards listed over many pages: all present, each once, covering the whole hash key space.
fn assert_complete_shard_list(shards: &[async_kinesis::Shard], expected: usize) {
    assert_eq!(shards.len(), expected);
    let ids: HashSet<_> = shards.iter().map(|s| &s.shard_id).collect();
    assert_eq!(ids.len(), expected, "no shard listed twice");
    let mut ranges: Vec<_> = shards
        .iter()
        .map(|s| (s.starting_hash_key, s.ending_hash_key))
        .collect();
    ranges.sort();
    assert_eq!(ranges.first().map(|r| r.0), Some(0));
    assert_eq!(ranges.last().map(|r| r.1), Some(u128::MAX));
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].1 + 1, pair[1].0, "ranges are contiguous");
    }
}

#[tokio::test]
async fn list_shards_follows_every_page() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "paginate", 250).await;
    // The emulator really pages: a first page of 7 comes with a token for the next.
    let first_page = stream
        .client()
        .sdk_client()
        .list_shards()
        .stream_name(stream.name())
        .max_results(7)
        .send()
        .await
        .expect("first page");
    assert_eq!(first_page.shards().len(), 7);
    assert!(first_page.next_token().is_some());

    let by_list_shards = bounded(
        "ListShards",
        stream.client().list_shards_with(ShardListing {
            use_list_shards: true,
            page_size: 7,
        }),
    )
    .await
    .expect("ListShards pages");
    assert_complete_shard_list(&by_list_shards, 250);

    let by_describe = bounded(
        "DescribeStream",
        stream.client().list_shards_with(ShardListing {
            use_list_shards: false,
            page_size: 100,
        }),
    )
    .await
    .expect("DescribeStream pages");
    assert_complete_shard_list(&by_describe, 250);
    assert_eq!(by_list_shards, by_describe, "both listings agree");
    stream.delete().await;
}

#[tokio::test]
async fn a_stream_addressed_by_arn_works_end_to_end() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "arn", 2).await;
    let arn = stream.arn().await;

    let by_arn = kinesis.client(&arn);
    assert_eq!(by_arn.stream().arn(), Some(arn.as_str()));
    assert_eq!(by_arn.stream().name(), stream.name());
    let summary = by_arn.describe().await.expect("describe by ARN");
    assert_eq!(summary.arn, arn);
    assert_eq!(
        by_arn.list_shards().await.expect("ListShards by ARN").len(),
        2
    );
    assert_eq!(
        by_arn
            .list_shards_with(ShardListing {
                use_list_shards: false,
                page_size: 1
            })
            .await
            .expect("DescribeStream by ARN")
            .len(),
        2
    );
    by_arn.delete().await.expect("delete by ARN");
    let gone = by_arn.wait_until_active(Duration::from_secs(5)).await;
    assert!(
        matches!(gone, Err(Error::StreamNotFound { .. })),
        "{gone:?}"
    );
}

#[tokio::test]
async fn an_arn_of_a_missing_stream_is_not_found() {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "arn-missing", 1).await;
    let arn = stream
        .arn()
        .await
        .replace(stream.name(), &random_stream_name("nope"));
    let err = kinesis.client(&arn).describe().await.expect_err("missing");
    assert!(
        matches!(err, Error::StreamNotFound { ref stream } if stream == &arn),
        "{err:?}"
    );
    stream.delete().await;
}

#[tokio::test]
async fn a_missing_stream_is_stream_not_found_everywhere() {
    let kinesis = Services::from_env().kinesis_mock();
    let client = kinesis.client(&random_stream_name("missing"));
    let name = client.stream().name().to_owned();
    let is_not_found = |result: Result<(), Error>| match result {
        Err(Error::StreamNotFound { stream }) => assert_eq!(stream, name),
        other => panic!("expected StreamNotFound, got {other:?}"),
    };
    is_not_found(bounded("describe", client.describe()).await.map(drop));
    is_not_found(bounded("list", client.list_shards()).await.map(drop));
    is_not_found(
        bounded(
            "describe-list",
            client.list_shards_with(ShardListing {
                use_list_shards: false,
                page_size: 10,
            }),
        )
        .await
        .map(drop),
    );
    is_not_found(
        bounded("wait", client.wait_until_active(Duration::from_secs(5)))
            .await
            .map(drop),
    );
    is_not_found(bounded("delete", client.delete()).await);
}

#[tokio::test]
async fn waiting_for_active_past_the_deadline_is_a_timeout() {
    let kinesis = Services::from_env().kinesis_mock();
    // kinesis-mock turns a stream ACTIVE about 100 ms after CreateStream, so the first describe
    // usually sees CREATING. On a loaded machine it may not: try a few fresh streams.
    let mut saw_timeout = false;
    for _ in 0..5 {
        let client = kinesis.client(&random_stream_name("wait"));
        client
            .create(CreateStream::Provisioned { shards: 1 })
            .await
            .expect("create");
        match client.wait_until_active(Duration::ZERO).await {
            Err(Error::WaitTimeout {
                wanted,
                last_status,
                ..
            }) => {
                assert_eq!(wanted, "ACTIVE");
                assert_eq!(last_status, "CREATING");
                saw_timeout = true;
            }
            Ok(summary) => assert_eq!(summary.status, StreamStatus::Active),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
        client
            .wait_until_active(Duration::from_secs(30))
            .await
            .expect("becomes active");
        client.delete().await.expect("delete");
        if saw_timeout {
            break;
        }
    }
    assert!(saw_timeout, "never observed a stream still CREATING");
}

#[tokio::test]
async fn invalid_names_and_arns_fail_before_any_call() {
    // The endpoint does not exist: had a call been made, the error would be Unreachable.
    let config = sdk_config_for("http://127.0.0.1:1");
    for name in ["", "has space", &"x".repeat(129)] {
        let err = StreamClient::from_sdk_config(&config, name).expect_err(name);
        assert!(
            matches!(err, Error::InvalidStreamName { .. }),
            "{name:?}: {err:?}"
        );
    }
    for arn in [
        "arn:aws:kinesis:us-east-1:1:stream/s",
        "arn:aws:s3:::bucket",
        "arn:aws:kinesis:us-east-1:123456789012:stream/",
    ] {
        let err = StreamClient::from_sdk_config(&config, arn).expect_err(arn);
        assert!(
            matches!(err, Error::InvalidStreamArn { .. }),
            "{arn}: {err:?}"
        );
    }
    let valid = StreamClient::from_sdk_config(&config, "valid").expect("valid name");
    assert!(matches!(
        valid.for_stream("bad name"),
        Err(Error::InvalidStreamName { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_quickly_naming_the_endpoint() {
    let endpoint = "http://127.0.0.1:1";
    let client =
        StreamClient::from_sdk_config(&sdk_config_for(endpoint), "stream").expect("client");
    let err = bounded("refused connection", client.describe())
        .await
        .expect_err("unreachable");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(endpoint), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out_naming_the_endpoint() {
    // A listener that accepts connections and never responds.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = sdk_config_for(&endpoint)
        .into_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(500))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    let client = StreamClient::from_sdk_config(&config, "stream").expect("client");
    let err = bounded("silent endpoint", client.list_shards())
        .await
        .expect_err("no answer");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
    hold.abort();
}

#[tokio::test]
async fn missing_credentials_are_a_clear_error() {
    let kinesis = Services::from_env().kinesis_mock();
    let mut without_provider = kinesis.sdk_config().to_builder();
    without_provider.set_credentials_provider(None);
    let without_provider = without_provider.build();
    let err = StreamClient::from_sdk_config(&without_provider, "stream").expect_err("no provider");
    assert!(matches!(err, Error::NoCredentials { .. }), "{err:?}");

    // A real provider that finds nothing: a profile that no (empty) profile file defines.
    let empty_files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .with_contents(EnvConfigFileKind::Credentials, "")
        .build();
    let nothing = ProfileFileCredentialsProvider::builder()
        .profile_files(empty_files)
        .profile_name("absent")
        .build();
    let config = kinesis
        .sdk_config()
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(nothing))
        .build();
    let client = StreamClient::from_sdk_config(&config, "stream").expect("client");
    let err = bounded("no credentials", client.describe())
        .await
        .expect_err("no credentials");
    assert!(matches!(err, Error::NoCredentials { .. }), "{err:?}");
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}
