//! The proxy is transparent where it should be: SubscribeToShard streams through, malformed requests
//! reach the emulator unchanged, and the proxy's own failures surface as errors.

use crate::common;

use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use bytes::Bytes;
use common::{
    create_stream, delete_stream, entry, kinesalite, kinesis_mock, put_all, random_stream,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use testkit::proxy::{LimitsProxy, ProxyConfig, ProxyError, sdk_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_shard_streams_through_the_proxy() {
    let upstream = kinesis_mock();
    let proxy = LimitsProxy::start(&upstream, ProxyConfig::default())
        .await
        .expect("proxy");
    let client = proxy.client();
    let stream = random_stream("proxy-efo");
    create_stream(&client, &stream, 1).await;
    let summary = client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .expect("describe");
    let stream_arn = summary
        .stream_description_summary()
        .expect("summary")
        .stream_arn()
        .to_owned();
    let consumer = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("proxy-test")
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer
        .expect("consumer");
    let consumer_arn = consumer.consumer_arn().to_owned();
    for _ in 0..100 {
        let described = client
            .describe_stream_consumer()
            .consumer_arn(&consumer_arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        if described
            .consumer_description()
            .map(|d| d.consumer_status())
            == Some(&ConsumerStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let put = |from: usize| {
        let (client, stream) = (client.clone(), stream.clone());
        async move {
            let records = (from..from + 10)
                .map(|i| entry(format!("efo-{i}"), format!("k{i}")))
                .collect();
            put_all(&client, &stream, records).await;
        }
    };
    put(0).await;
    let position = StartingPosition::builder()
        .r#type(ShardIteratorType::TrimHorizon)
        .build()
        .expect("type is set");
    let mut subscription = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(position)
        .send()
        .await
        .expect("SubscribeToShard");

    let mut received = Vec::new();
    let mut put_more = true;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while received.len() < 20 {
        let event = tokio::time::timeout_at(deadline, subscription.event_stream.recv())
            .await
            .expect("records arrive while the subscription is open (the proxy must not buffer it)")
            .expect("event stream intact");
        let Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)) = event else {
            panic!("the subscription ended early: {event:?}");
        };
        received.extend(event.records().iter().map(|r| r.data().as_ref().to_vec()));
        // Records written after subscribing arrive on the same open stream.
        if put_more && received.len() >= 10 {
            put_more = false;
            put(10).await;
        }
    }
    let expected: Vec<Vec<u8>> = (0..20).map(|i| format!("efo-{i}").into_bytes()).collect();
    assert_eq!(received, expected);
    assert_eq!(proxy.counters().calls("SubscribeToShard"), 1);
    drop(subscription);
    client
        .delete_stream()
        .stream_name(&stream)
        .enforce_consumer_deletion(true)
        .send()
        .await
        .expect("DeleteStream");
    proxy.shutdown().await.expect("proxy ran without failures");
}

/// POSTs `body` with `target` and returns (status, `__type`).
async fn raw_post(
    endpoint: &str,
    target: Option<&str>,
    body: &'static str,
) -> (u16, Option<String>) {
    let http = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        )
        .header("x-amz-date", "20250101T000000Z");
    if let Some(target) = target {
        request = request.header("x-amz-target", target);
    }
    let response = http
        .request(
            request
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .expect("request"),
        )
        .await
        .expect("an HTTP answer");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let error_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_owned));
    (status, error_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_reach_the_emulator_unchanged() {
    for upstream in [kinesalite(), kinesis_mock()] {
        let proxy = LimitsProxy::start(&upstream, ProxyConfig::default())
            .await
            .expect("proxy");
        let cases: [(Option<&str>, &'static str); 5] = [
            (Some("Kinesis_20131202.PutRecords"), "{not json"),
            (
                Some("Kinesis_20131202.PutRecords"),
                r#"{"StreamName": "x", "Records": "nope"}"#,
            ),
            (Some("Kinesis_20131202.PutRecord"), r#"{"StreamName": 5}"#),
            (Some("Kinesis_20131202.NoSuchOperation"), "{}"),
            (None, "{}"),
        ];
        for (target, body) in cases {
            let direct = raw_post(&upstream, target, body).await;
            let proxied = raw_post(&proxy.endpoint_url(), target, body).await;
            assert_eq!(proxied, direct, "{upstream} {target:?} {body}");
            assert!(direct.0 >= 400, "the emulator rejects it: {direct:?}");
        }

        // Well-formed JSON the emulator rejects: a bad explicit hash key, an unknown stream.
        let client = proxy.client();
        let direct_client = sdk_client(&upstream);
        let stream = random_stream("proxy-bad");
        create_stream(&direct_client, &stream, 1).await;
        let mut bad = entry("x", "k");
        bad.explicit_hash_key = Some("not-a-number".to_owned());
        let via_proxy = client
            .put_records()
            .stream_name(&stream)
            .records(bad.clone())
            .send()
            .await
            .expect_err("invalid explicit hash key");
        let direct = direct_client
            .put_records()
            .stream_name(&stream)
            .records(bad)
            .send()
            .await
            .expect_err("invalid explicit hash key");
        assert_eq!(via_proxy.code(), direct.code());
        let missing = client
            .put_records()
            .stream_name(random_stream("proxy-missing"))
            .records(entry("x", "k"))
            .send()
            .await
            .expect_err("no such stream");
        assert_eq!(missing.code(), Some("ResourceNotFoundException"));
        // kinesis-mock answers a garbage iterator with an empty HTTP 500, kinesalite with a 400.
        type GetRecordsError = aws_sdk_kinesis::error::SdkError<
            aws_sdk_kinesis::operation::get_records::GetRecordsError,
            aws_sdk_kinesis::config::http::HttpResponse,
        >;
        let status = |err: &GetRecordsError| err.raw_response().map(|r| r.status().as_u16());
        let garbage = client
            .get_records()
            .shard_iterator("garbage-iterator")
            .send()
            .await;
        let direct = direct_client
            .get_records()
            .shard_iterator("garbage-iterator")
            .send()
            .await;
        let (garbage, direct) = (garbage.expect_err("invalid"), direct.expect_err("invalid"));
        assert_eq!(
            (status(&garbage), garbage.code()),
            (status(&direct), direct.code())
        );
        delete_stream(&direct_client, &stream).await;
        assert_eq!(proxy.failures(), Vec::<String>::new());
        proxy
            .shutdown()
            .await
            .expect("forwarding bad input is not a proxy failure");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_failures_are_errors_not_silent_passes() {
    let invalid = LimitsProxy::start("https://127.0.0.1:4568", ProxyConfig::default()).await;
    assert!(
        matches!(invalid, Err(ProxyError::InvalidUpstream(_))),
        "{invalid:?}"
    );

    // An upstream that is not listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let proxy = LimitsProxy::start(&format!("http://127.0.0.1:{port}"), ProxyConfig::default())
        .await
        .expect("proxy");
    let client = proxy.client();
    let err = client
        .describe_stream_summary()
        .stream_name("s")
        .send()
        .await
        .expect_err("nothing to forward to");
    assert_eq!(err.code(), Some("KinesisLimitsProxyFailure"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(502));
    let err = client
        .put_records()
        .stream_name("s")
        .records(entry("x", "k"))
        .send()
        .await
        .expect_err("no shard map without an upstream");
    assert_eq!(err.code(), Some("KinesisLimitsProxyFailure"));
    assert_eq!(proxy.failures().len(), 2, "{:?}", proxy.failures());
    match proxy.shutdown().await {
        Err(ProxyError::Failed(failures)) => assert_eq!(failures.len(), 2),
        other => panic!("shutdown must report the failures: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_binary_prints_its_address_and_proxies() {
    use std::io::BufRead;
    let upstream = kinesalite();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kinesis-limits-proxy"))
        .args(["--upstream", &upstream, "--scale", "0.5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kinesis-limits-proxy");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    let listed = sdk_client(&url).list_streams().send().await;
    // Stop our own child by its handle before asserting, so a failure does not leak it.
    child.kill().expect("stop the proxy");
    child.wait().expect("reap the proxy");
    listed.expect("ListStreams through the binary");
}
