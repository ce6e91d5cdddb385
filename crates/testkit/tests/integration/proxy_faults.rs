//! Scripted faults appear exactly as scripted, and only the records the client was told succeeded
//! reach the emulator.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use common::{
    create_stream, delete_stream, entry, kinesalite, put_records, random_stream, read_shard,
    trim_horizon_iterator,
};
use testkit::proxy::{Fault, FaultStats, Limits, LimitsProxy, ProxyConfig, Schedule, sdk_client};

async fn unlimited_proxy(upstream: &str) -> LimitsProxy {
    let config = ProxyConfig {
        limits: Limits::unlimited(),
        ..ProxyConfig::default()
    };
    LimitsProxy::start(upstream, config).await.expect("proxy")
}

async fn put_batch(client: &Client, stream: &str, from: usize, n: usize) -> Vec<Option<String>> {
    let records = (from..from + n)
        .map(|i| entry(format!("rec-{i:04}"), format!("k{i}")))
        .collect::<Vec<_>>();
    let out = put_records(client, stream, records, "PutRecords").await;
    let codes: Vec<_> = out
        .records()
        .iter()
        .map(|r| r.error_code().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), n, "one entry per record, in request order");
    let failed = codes.iter().filter(|c| c.is_some()).count();
    assert_eq!(out.failed_record_count(), Some(failed as i32));
    for r in out.records().iter().filter(|r| r.error_code().is_none()) {
        assert!(r.sequence_number().is_some() && r.shard_id().is_some());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_of_records_fail_exactly_and_only_accepted_records_are_stored() {
    let upstream = kinesalite();
    let proxy = unlimited_proxy(&upstream).await;
    let client = proxy.client();
    let stream = random_stream("proxy-pct");
    create_stream(&client, &stream, 1).await;
    let fault = proxy.add_fault(
        Fault::fail_records("ProvisionedThroughputExceededException")
            .schedule(Schedule::Percent(10)),
    );

    let mut codes = Vec::new();
    for call in 0..4 {
        codes.extend(put_batch(&client, &stream, call * 50, 50).await);
    }

    let failed: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, (0..20).map(|k| k * 10 + 9).collect::<Vec<_>>());
    assert!(
        codes
            .iter()
            .flatten()
            .all(|c| c == "ProvisionedThroughputExceededException")
    );
    assert_eq!(
        proxy.fault_stats(fault),
        FaultStats {
            matched: 200,
            fired: 20
        }
    );
    let counters = proxy.counters();
    assert_eq!(counters.stream_faulted_records(&stream), 20);
    assert_eq!(counters.stream_total(&stream).accepted_records, 180);
    assert_eq!(counters.stream_total(&stream).throttled_records, 0);

    // The emulator holds exactly the records reported as accepted, in request order.
    let stored = read_shard(&sdk_client(&upstream), &stream, "shardId-000000000000").await;
    let expected: Vec<Vec<u8>> = (0..200)
        .filter(|i| codes[*i].is_none())
        .map(|i| format!("rec-{i:04}").into_bytes())
        .collect();
    assert_eq!(stored, expected);
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_n_and_every_kth_faults_with_any_error_code() {
    let upstream = kinesalite();
    let proxy = unlimited_proxy(&upstream).await;
    let client = proxy.client();
    let stream = random_stream("proxy-kth");
    create_stream(&client, &stream, 1).await;
    let first =
        proxy.add_fault(Fault::fail_records("InternalFailure").schedule(Schedule::First(3)));
    let every = proxy.add_fault(
        Fault::fail_records("KMSThrottlingException")
            .message("custom message")
            .schedule(Schedule::Every(4)),
    );
    // A fault for another stream never matches.
    let other = proxy.add_fault(Fault::fail_records("Nope").stream("some-other-stream"));

    let codes = put_batch(&client, &stream, 0, 12).await;
    // Records 0-2 hit the first fault; the second fault sees records 3.. and hits its 4th and 8th.
    let expected: Vec<Option<&str>> = (0..12)
        .map(|i| match i {
            0..=2 => Some("InternalFailure"),
            6 | 10 => Some("KMSThrottlingException"),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes.iter().map(Option::as_deref).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        proxy.fault_stats(first),
        FaultStats {
            matched: 12,
            fired: 3
        }
    );
    assert_eq!(
        proxy.fault_stats(every),
        FaultStats {
            matched: 9,
            fired: 2
        }
    );
    assert_eq!(proxy.fault_stats(other), FaultStats::default());

    // PutRecord fails as a whole call: InternalFailure is HTTP 500, others 400.
    proxy.clear_faults();
    proxy.add_fault(
        Fault::fail_records("InternalFailure")
            .on("PutRecord")
            .schedule(Schedule::First(1)),
    );
    let put = || {
        client
            .put_record()
            .stream_name(&stream)
            .data(Blob::new("single"))
            .partition_key("p")
            .send()
    };
    let err = put().await.expect_err("injected InternalFailure");
    assert_eq!(err.code(), Some("InternalFailure"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    put().await.expect("the fault fired once");
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_is_throttled_as_a_whole_call() {
    let upstream = kinesalite();
    // One record per 10 s: the second call in a row is throttled whatever the timing.
    let limits = Limits {
        write_records_per_sec: Some(0.1),
        burst: Duration::from_secs(10),
        ..Limits::default()
    };
    let config = ProxyConfig {
        limits,
        ..ProxyConfig::default()
    };
    let proxy = LimitsProxy::start(&upstream, config).await.expect("proxy");
    let client = proxy.client();
    let stream = random_stream("proxy-put1");
    create_stream(&client, &stream, 1).await;
    let put = || {
        client
            .put_record()
            .stream_name(&stream)
            .data(Blob::new("one"))
            .partition_key("p")
            .send()
    };
    put().await.expect("within the limit");
    let err = put().await.expect_err("over the limit");
    assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let expected = format!(
        "Rate exceeded for shard shardId-000000000000 in stream {stream} under account 000000000000."
    );
    assert_eq!(err.message(), Some(expected.as_str()));
    let shard = proxy.counters();
    let shard = shard
        .shard(&stream, "shardId-000000000000")
        .expect("counted");
    assert_eq!(
        (shard.total.accepted_records, shard.total.throttled_records),
        (1, 1)
    );
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterators_expire_on_script_and_by_age() {
    let upstream = kinesalite();
    let config = ProxyConfig {
        limits: Limits::unlimited(),
        iterator_max_age: Some(Duration::from_millis(300)),
        ..ProxyConfig::default()
    };
    let proxy = LimitsProxy::start(&upstream, config).await.expect("proxy");
    let client = proxy.client();
    let stream = random_stream("proxy-expire");
    create_stream(&client, &stream, 1).await;

    let fault = proxy.add_fault(Fault::expire_iterators().schedule(Schedule::First(2)));
    let it = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;
    for _ in 0..2 {
        let err = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .expect_err("expired");
        assert_eq!(err.code(), Some("ExpiredIteratorException"));
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_expired_iterator_exception())
        );
    }
    client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .expect("fault spent");
    assert_eq!(
        proxy.fault_stats(fault),
        FaultStats {
            matched: 3,
            fired: 2
        }
    );

    // By age: an iterator older than iterator_max_age is expired, a fresh one is not.
    let old = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = client
        .get_records()
        .shard_iterator(&old)
        .send()
        .await
        .expect_err("too old");
    assert_eq!(err.code(), Some("ExpiredIteratorException"));
    let fresh = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;
    client
        .get_records()
        .shard_iterator(&fresh)
        .send()
        .await
        .expect("fresh iterator");
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_resets_and_latency_hit_matching_operations_only() {
    let upstream = kinesalite();
    let proxy = unlimited_proxy(&upstream).await;
    let client = proxy.client();
    let stream = random_stream("proxy-5xx");
    create_stream(&client, &stream, 1).await;
    proxy.reset_counters();

    let outage = proxy.add_fault(
        Fault::http_error(503, "ServiceUnavailable")
            .on("DescribeStreamSummary")
            .schedule(Schedule::First(2)),
    );
    let describe = || client.describe_stream_summary().stream_name(&stream).send();
    for _ in 0..2 {
        let err = describe().await.expect_err("injected 503");
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    }
    describe().await.expect("outage over");
    assert_eq!(
        proxy.fault_stats(outage),
        FaultStats {
            matched: 3,
            fired: 2
        }
    );

    let reset = proxy.add_fault(Fault::reset().on("ListShards").schedule(Schedule::First(1)));
    let err = client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect_err("reset");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "a reset connection is a transport error: {err:?}"
    );
    client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("reset spent");
    assert_eq!(proxy.fault_stats(reset).fired, 1);

    let delay = Duration::from_millis(300);
    let slow = proxy.add_fault(
        Fault::latency(delay)
            .on("ListShards")
            .schedule(Schedule::First(1)),
    );
    let started = Instant::now();
    client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("slow but fine");
    assert!(started.elapsed() >= delay, "the injected delay was applied");
    client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .expect("fast again");
    assert_eq!(
        proxy.fault_stats(slow),
        FaultStats {
            matched: 2,
            fired: 1
        }
    );

    let counters = proxy.counters();
    assert_eq!(counters.calls("DescribeStreamSummary"), 3);
    assert_eq!(counters.calls("ListShards"), 4);
    assert_eq!(counters.calls("PutRecords"), 0);
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}
