//! The proxy enforces AWS's per-shard limits: naive clients are throttled at the documented rates,
//! clients under the limits never are, and routing follows the emulator's real shard map.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use common::{
    create_stream, delete_stream, entry, kinesalite, kinesis_mock, put_all, put_records,
    random_stream, trim_horizon_iterator,
};
use testkit::proxy::{Limits, LimitsProxy, MIB, ProxyConfig, SecondCounters, sdk_client};

const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// A proxy with AWS's limits in front of kinesalite, a client through it, and a new one-shard
/// stream named after `prefix`.
async fn one_shard_behind_limits(prefix: &str) -> (LimitsProxy, aws_sdk_kinesis::Client, String) {
    let proxy = LimitsProxy::start(&kinesalite(), config(Limits::default()))
        .await
        .expect("proxy");
    let client = proxy.client();
    let stream = random_stream(prefix);
    create_stream(&client, &stream, 1).await;
    (proxy, client, stream)
}

fn config(limits: Limits) -> ProxyConfig {
    ProxyConfig {
        limits,
        ..ProxyConfig::default()
    }
}

/// Tests that saturate a shard measure rates; running them one at a time keeps sibling tests' CPU load
/// out of the measurement.
static SATURATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Checks the per-second counts of whole seconds: the median is within 5% of `rate`, and no second
/// exceeds what a token bucket allows (one second of rate plus one second of burst, plus one item).
fn assert_per_second(values: &[u64], rate: f64, item: f64) {
    assert!(!values.is_empty(), "need whole seconds of traffic");
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2] as f64;
    assert!(
        within(median, rate, 0.05),
        "median {median} vs rate {rate}: {values:?}"
    );
    for v in values {
        assert!(
            *v as f64 <= 2.0 * rate + item,
            "{v} > rate + burst: {values:?}"
        );
    }
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected * tolerance
}

/// The per-second slots strictly between the first and last busy ones: traffic covered them fully.
fn full_seconds(
    per_second: &[SecondCounters],
    busy: impl Fn(&SecondCounters) -> bool,
) -> Vec<SecondCounters> {
    let first = per_second.iter().position(&busy).expect("some traffic");
    let last = per_second.iter().rposition(&busy).expect("some traffic");
    per_second[first + 1..last].to_vec()
}

/// Sends PutRecords of `batch` records of `size` bytes from `tasks` concurrent tasks for `run`,
/// ignoring throttling. Returns (accepted, throttled, elapsed) as the client saw them.
async fn naive_writer(
    client: &Client,
    stream: &str,
    tasks: usize,
    batch: usize,
    size: usize,
    run: Duration,
) -> (u64, u64, Duration) {
    let accepted = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (client, stream) = (client.clone(), stream.to_owned());
        let (accepted, throttled) = (accepted.clone(), throttled.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run {
                let records = (0..batch)
                    .map(|i| entry(vec![b'x'; size], format!("k{task}-{n}-{i}")))
                    .collect::<Vec<_>>();
                n += 1;
                let out = put_records(
                    &client,
                    &stream,
                    records,
                    "PutRecords answers even when throttled",
                )
                .await;
                let failed = out
                    .records()
                    .iter()
                    .filter(|r| r.error_code().is_some())
                    .count();
                assert_eq!(out.failed_record_count(), Some(failed as i32));
                for r in out.records().iter().filter(|r| r.error_code().is_some()) {
                    assert_eq!(r.error_code(), Some(THROTTLED));
                    let message = r.error_message().unwrap_or_default();
                    assert!(
                        message.starts_with("Rate exceeded for shard shardId-"),
                        "{message}"
                    );
                    assert!(
                        message.contains(&format!("in stream {stream} under account")),
                        "{message}"
                    );
                }
                accepted.fetch_add((batch - failed) as u64, Ordering::Relaxed);
                throttled.fetch_add(failed as u64, Ordering::Relaxed);
            }
        }));
    }
    for handle in handles {
        handle.await.expect("writer task");
    }
    (
        accepted.load(Ordering::Relaxed),
        throttled.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_writer_is_throttled_at_1000_records_per_second() {
    let _serial = SATURATING.lock().await;
    let (proxy, client, stream) = one_shard_behind_limits("proxy-wrec").await;

    let (accepted, throttled, elapsed) =
        naive_writer(&client, &stream, 4, 500, 10, Duration::from_secs(4)).await;

    let counters = proxy.counters();
    let shard = counters
        .shard(&stream, "shardId-000000000000")
        .expect("shard counted");
    assert_eq!(shard.total.accepted_records, accepted);
    assert_eq!(shard.total.throttled_records, throttled);
    assert!(
        throttled > accepted,
        "a naive writer must be throttled: {accepted} / {throttled}"
    );
    // One second of burst, then 1,000 records/s.
    let expected = 1_000.0 * (1.0 + elapsed.as_secs_f64());
    assert!(
        within(accepted as f64, expected, 0.05),
        "accepted {accepted}, expected {expected:.0}"
    );
    let full = full_seconds(&shard.per_second, |s| s.accepted_records > 0);
    let values: Vec<u64> = full.iter().map(|s| s.accepted_records).collect();
    assert_per_second(&values, 1_000.0, 1.0);
    assert_eq!(counters.routing_mismatches(), 0);
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_writer_is_throttled_at_1_mib_per_second() {
    let _serial = SATURATING.lock().await;
    let (proxy, client, stream) = one_shard_behind_limits("proxy-wbytes").await;

    let (accepted, throttled, elapsed) =
        naive_writer(&client, &stream, 4, 50, 10 * 1024, Duration::from_secs(4)).await;

    let counters = proxy.counters();
    let shard = counters
        .shard(&stream, "shardId-000000000000")
        .expect("shard counted");
    assert_eq!(shard.total.accepted_records, accepted);
    assert!(throttled > 0);
    let bytes = shard.total.accepted_bytes as f64;
    let expected = MIB as f64 * (1.0 + elapsed.as_secs_f64());
    assert!(
        within(bytes, expected, 0.05),
        "accepted {bytes} bytes, expected {expected:.0}"
    );
    let full = full_seconds(&shard.per_second, |s| s.accepted_records > 0);
    let values: Vec<u64> = full.iter().map(|s| s.accepted_bytes).collect();
    assert_per_second(&values, MIB as f64, 10.0 * 1024.0 + 16.0);
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_reader_is_throttled_at_5_calls_per_second() {
    let _serial = SATURATING.lock().await;
    let (proxy, client, stream) = one_shard_behind_limits("proxy-rcalls").await;
    let it = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;

    let run = Duration::from_secs(7);
    let start = Instant::now();
    let (mut ok, mut throttled) = (0u64, 0u64);
    while start.elapsed() < run {
        match client.get_records().shard_iterator(&it).send().await {
            Ok(_) => ok += 1,
            Err(err) => {
                assert_eq!(err.code(), Some(THROTTLED), "{err:?}");
                throttled += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();

    let counters = proxy.counters();
    let shard = counters
        .shard(&stream, "shardId-000000000000")
        .expect("shard counted");
    assert_eq!(shard.total.get_records_calls, ok);
    assert_eq!(shard.total.throttled_get_records, throttled);
    assert!(throttled > ok);
    let expected = 5.0 * (1.0 + elapsed);
    assert!(
        within(ok as f64, expected, 0.05),
        "{ok} calls answered, expected {expected:.1}"
    );
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_reader_is_throttled_at_2_mib_per_second() {
    let _serial = SATURATING.lock().await;
    let upstream = kinesalite();
    let limits = Limits {
        read_calls_per_sec: None,
        ..Limits::default()
    };
    let proxy = LimitsProxy::start(&upstream, config(limits))
        .await
        .expect("proxy");
    let client = proxy.client();
    let direct = sdk_client(&upstream);
    let stream = random_stream("proxy-rbytes");
    create_stream(&direct, &stream, 1).await;
    // 12 MiB of 10 KiB records, written straight to the emulator.
    for batch in 0..3 {
        let records = (0..400)
            .map(|i| entry(vec![b'r'; 10 * 1024], format!("{batch}-{i}")))
            .collect::<Vec<_>>();
        put_all(&direct, &stream, records).await;
    }

    let mut it = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;
    let run = Duration::from_secs(4);
    let start = Instant::now();
    let mut read_bytes = 0u64;
    while start.elapsed() < run {
        match client
            .get_records()
            .shard_iterator(&it)
            .limit(5)
            .send()
            .await
        {
            Ok(page) => {
                read_bytes += page
                    .records()
                    .iter()
                    .map(|r| {
                        (r.data().as_ref().len() + r.partition_key().map_or(0, str::len)) as u64
                    })
                    .sum::<u64>();
                it = page.next_shard_iterator.expect("open shard");
            }
            Err(err) => assert_eq!(err.code(), Some(THROTTLED), "{err:?}"),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();

    let counters = proxy.counters();
    let shard = counters
        .shard(&stream, "shardId-000000000000")
        .expect("shard counted");
    assert_eq!(shard.total.read_bytes, read_bytes);
    assert!(shard.total.throttled_get_records > 0);
    let expected = 2.0 * MIB as f64 * (1.0 + elapsed);
    assert!(
        within(read_bytes as f64, expected, 0.05),
        "read {read_bytes}, expected {expected:.0}"
    );
    let full = full_seconds(&shard.per_second, |s| s.read_bytes > 0);
    let values: Vec<u64> = full.iter().map(|s| s.read_bytes).collect();
    assert_per_second(&values, 2.0 * MIB as f64, 5.0 * (10.0 * 1024.0 + 16.0));
    delete_stream(&direct, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_under_the_limits_is_never_throttled() {
    let _serial = SATURATING.lock().await;
    let (proxy, client, stream) = one_shard_behind_limits("proxy-under").await;
    let mut it = trim_horizon_iterator(&client, &stream, "shardId-000000000000").await;

    // 900 records/s of 1 KiB (0.9 MiB/s) and 4 GetRecords/s for 3 s, paced every 100 ms / 250 ms.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = 0u64;
    for step in 0..30u64 {
        tick.tick().await;
        let records = (0..90)
            .map(|i| entry(vec![b'u'; 1024 - 8], format!("k{step:03}-{i:02}")))
            .collect::<Vec<_>>();
        put_all(&client, &stream, records).await;
        sent += 90;
        if step % 3 == 0 {
            let page = client
                .get_records()
                .shard_iterator(&it)
                .send()
                .await
                .expect("GetRecords under the limit");
            it = page.next_shard_iterator.expect("open shard");
        }
    }

    let counters = proxy.counters();
    let shard = counters
        .shard(&stream, "shardId-000000000000")
        .expect("shard counted");
    assert_eq!(shard.total.accepted_records, sent);
    assert_eq!(shard.total.throttled_records, 0);
    assert_eq!(shard.total.throttled_get_records, 0);
    assert_eq!(shard.total.get_records_calls, 10);
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_has_its_own_limits_and_routing_matches_the_emulator() {
    let upstream = kinesis_mock();
    // 20 records per shard per second, so one call of 200 records fills every shard's bucket.
    let limits = Limits {
        write_records_per_sec: Some(20.0),
        ..Limits::default()
    };
    let proxy = LimitsProxy::start(&upstream, config(limits))
        .await
        .expect("proxy");
    let client = proxy.client();
    let stream = random_stream("proxy-route");
    create_stream(&client, &stream, 4).await;

    // Explicit hash keys override the partition key: both ends of the key space, first in the call so
    // they are admitted before the buckets run dry.
    let mut records = Vec::new();
    for ehk in ["0", "340282366920938463463374607431768211455"] {
        for i in 0..2 {
            let mut e = entry(format!("e{ehk}-{i}"), "same-key");
            e.explicit_hash_key = Some(ehk.to_owned());
            records.push(e);
        }
    }
    records.extend((0..196).map(|i| entry(format!("d{i}"), format!("pk-{i}"))));
    let out = put_records(&client, &stream, records, "PutRecords").await;

    let counters = proxy.counters();
    assert_eq!(
        counters.routing_mismatches(),
        0,
        "the proxy routes as the emulator does"
    );
    let mut accepted_by_shard = std::collections::BTreeMap::<String, u64>::new();
    for r in out.records().iter().filter(|r| r.error_code().is_none()) {
        *accepted_by_shard
            .entry(r.shard_id().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    assert_eq!(accepted_by_shard.len(), 4);
    for (shard_id, accepted) in &accepted_by_shard {
        let c = counters.shard(&stream, shard_id).expect("shard counted");
        assert_eq!(c.total.accepted_records, *accepted);
        // Every shard got more than 20 records, so each admitted exactly its 20.
        assert_eq!(c.total.accepted_records, 20, "{shard_id}: {c:?}");
        assert!(c.total.throttled_records > 0);
    }
    let ehk_results = &out.records()[..4];
    assert!(ehk_results[0].error_code().is_none() && ehk_results[2].error_code().is_none());
    assert_eq!(ehk_results[0].shard_id(), Some("shardId-000000000000"));
    assert_eq!(ehk_results[2].shard_id(), Some("shardId-000000000003"));
    // The throttle message names the shard the record was routed to.
    for r in out.records().iter().filter(|r| r.error_code().is_some()) {
        let message = r.error_message().unwrap_or_default();
        assert!(
            message.contains(&format!("in stream {stream}")),
            "{message}"
        );
    }
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_map_follows_a_split_made_through_the_proxy() {
    let upstream = kinesis_mock();
    let proxy = LimitsProxy::start(&upstream, config(Limits::unlimited()))
        .await
        .expect("proxy");
    let client = proxy.client();
    let stream = random_stream("proxy-split");
    create_stream(&client, &stream, 1).await;
    let put = |tag: &'static str| {
        let (client, stream) = (client.clone(), stream.clone());
        async move {
            let records = (0..40)
                .map(|i| entry(format!("{tag}{i}"), format!("{tag}-{i}")))
                .collect();
            put_all(&client, &stream, records).await;
        }
    };
    put("before").await;
    client
        .split_shard()
        .stream_name(&stream)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .expect("SplitShard");
    common::wait_active(&client, &stream).await;
    put("after").await;

    let counters = proxy.counters();
    assert_eq!(counters.routing_mismatches(), 0);
    let parent = counters
        .shard(&stream, "shardId-000000000000")
        .expect("parent");
    assert_eq!(parent.total.accepted_records, 40);
    let children: u64 = ["shardId-000000000001", "shardId-000000000002"]
        .iter()
        .map(|id| {
            counters
                .shard(&stream, id)
                .map_or(0, |c| c.total.accepted_records)
        })
        .sum();
    assert_eq!(children, 40);
    assert!(counters.shard(&stream, "shardId-000000000001").is_some());
    assert!(counters.shard(&stream, "shardId-000000000002").is_some());
    delete_stream(&client, &stream).await;
    proxy.shutdown().await.expect("proxy ran without failures");
}
