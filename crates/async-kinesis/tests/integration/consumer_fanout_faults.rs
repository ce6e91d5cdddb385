//! Enhanced fan-out through the fault proxy in front of kinesis-mock: subscriptions reset, cut,
//! stalled, ended early or refused while items are written. Every item arrives, none twice (a
//! subscription is renewed after the last event's continuation sequence number), and a refused
//! shard is an error item while the other shards go on. After each cut or end kinesis-mock
//! itself refuses the next subscription for about 3 s (ResourceInUse inside the event stream),
//! which the reader waits out too.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::{LeaseTiming, MemoryStore};
use async_kinesis::consumer::{BuildError, ConsumeError, Consumer};
use async_kinesis::processor::JsonProcessor;
use consumer_support::{Tally, init_tracing, json_records, keys, put};
use futures::StreamExt;
use testkit::group::error_chain as chain;
use testkit::proxy::{Fault, LimitsProxy, ProxyConfig, Schedule};
use testkit::{Services, TestStream};

const WAIT: Duration = Duration::from_secs(90);
const ROUNDS: u64 = 30;

fn consumer_over(
    proxy: &LimitsProxy,
    stream: &str,
    name: &str,
) -> async_kinesis::consumer::ConsumerBuilder<JsonProcessor> {
    Consumer::builder(stream)
        .client(proxy.client())
        .enhanced_fan_out(name)
        // kinesis-mock sends an event every second.
        .fan_out_stall_timeout(Duration::from_secs(3))
        .expo_backoff(Duration::from_millis(50))
        .expo_backoff_limit(Duration::from_millis(500))
        .checkpoint_interval(Duration::from_millis(200))
        .shard_refresh_interval(Duration::from_secs(1))
}

/// Writes `ROUNDS` rounds of one item per key, 200 ms apart, while `consumer` reads; returns
/// what was read and the errors seen.
async fn write_and_read(stream: &TestStream, consumer: &mut Consumer, keys: &[String]) -> Tally {
    let writer = {
        let client = stream.client().clone();
        let keys = keys.to_vec();
        tokio::spawn(async move {
            for n in 0..ROUNDS {
                let records: Vec<_> = keys
                    .iter()
                    .flat_map(|k| json_records(k, n..n + 1))
                    .collect();
                put(&client, &records).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let total = ROUNDS as usize * keys.len();
    let mut tally = Tally::default();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tally.items() < total {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {total} items ({:?})", tally.items(), tally.errors))
            .expect("open");
        match next {
            Ok(record) => {
                tally.add(&record);
                record.ack();
            }
            Err(err) => tally.errors.push(err),
        }
    }
    writer.await.expect("writer");
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        match extra {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
    tally
}

/// Runs a 2-shard stream under `fault` (on SubscribeToShard); returns (lost, duplicates,
/// subscribe calls, times the fault fired).
async fn under(fault: Fault, prefix: &str) -> (u64, u64, u64, u64) {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, prefix, 2).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    let id = proxy.add_fault(fault.on("SubscribeToShard"));
    let mut consumer = consumer_over(&proxy, stream.name(), "faults-app")
        .build()
        .await
        .expect("build");
    let keys = keys(8);
    let tally = write_and_read(&stream, &mut consumer, &keys).await;
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), ROUNDS)).collect();
    let (lost, duplicates) = tally.account(&expected);
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    let subscribes = proxy.counters().calls("SubscribeToShard");
    let fired = proxy.fault_stats(id).fired;
    proxy.shutdown().await.expect("proxy worked");
    stream.delete().await;
    println!(
        "{prefix}: lost {lost}, duplicates {duplicates}, SubscribeToShard {subscribes}, fault fired {fired}"
    );
    (lost, duplicates, subscribes, fired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_mid_subscription_lose_and_repeat_nothing() {
    let (lost, duplicates, subscribes, fired) = under(
        Fault::cut_stream_after(4).schedule(Schedule::First(4)),
        "efo-cut",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 4);
    assert!(subscribes >= 6, "{subscribes} subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_resets_on_subscribe_are_retried() {
    let (lost, duplicates, _, fired) = under(
        Fault::http_error(500, "InternalFailure").schedule(Schedule::First(3)),
        "efo-5xx",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 3);
    let (lost, duplicates, _, fired) =
        under(Fault::reset().schedule(Schedule::First(3)), "efo-reset").await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_in_use_is_waited_out() {
    let (lost, duplicates, subscribes, fired) = under(
        Fault::http_error(400, "ResourceInUseException").schedule(Schedule::First(6)),
        "efo-inuse",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 6);
    assert!(subscribes >= 8, "{subscribes} subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscription_is_renewed_after_the_stall_timeout() {
    let (lost, duplicates, subscribes, fired) = under(
        Fault::stall_stream_after(3).schedule(Schedule::First(2)),
        "efo-stall",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 2);
    assert!(subscribes >= 4, "{subscribes} subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_ending_early_are_renewed_from_the_continuation() {
    let (lost, duplicates, subscribes, fired) = under(
        Fault::end_stream_after(3).schedule(Schedule::Every(1)),
        "efo-end",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert!(fired >= 2, "fired {fired}");
    assert!(subscribes >= 4, "{subscribes} subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_an_error_item_and_the_shard_is_retried() {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-denied", 2).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    proxy.add_fault(
        Fault::http_error(400, "AccessDeniedException")
            .on("SubscribeToShard")
            .schedule(Schedule::First(1)),
    );
    let timing =
        LeaseTiming::new(Duration::from_secs(3), Duration::from_millis(300)).expect("timing");
    let mut consumer = consumer_over(&proxy, stream.name(), "denied-app")
        .checkpointer(MemoryStore::with_timing(timing))
        .build()
        .await
        .expect("build");
    let keys = keys(8);
    let tally = write_and_read(&stream, &mut consumer, &keys).await;
    let expected: BTreeMap<String, u64> = keys.iter().map(|k| (k.clone(), ROUNDS)).collect();
    assert_eq!(tally.account(&expected), (0, 0), "lost, duplicates");
    assert_eq!(tally.errors.len(), 1, "{:?}", tally.errors);
    let error = &tally.errors[0];
    assert!(matches!(error, ConsumeError::Shard { .. }), "{error}");
    assert!(chain(error).contains("AccessDenied"), "{}", chain(error));
    consumer.shutdown(Duration::from_secs(5)).await;
    proxy.shutdown().await.expect("proxy worked");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_on_registration_fails_the_build() {
    init_tracing();
    let services = Services::from_env();
    let kinesis = services.kinesis_mock();
    let stream = TestStream::create(&kinesis, "efo-noreg", 1).await;
    let proxy = LimitsProxy::start(&services.kinesis_mock, ProxyConfig::default())
        .await
        .expect("proxy");
    proxy.add_fault(Fault::http_error(400, "AccessDeniedException").on("RegisterStreamConsumer"));
    let err = consumer_over(&proxy, stream.name(), "noreg-app")
        .build()
        .await
        .expect_err("registration refused");
    assert!(matches!(err, BuildError::Stream { .. }), "{err}");
    assert!(chain(&err).contains("AccessDenied"), "{}", chain(&err));
    proxy.shutdown().await.expect("proxy worked");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_silent_after_its_headers_is_renewed() {
    // The SDK's `send` waits for the first message: without a timeout around it this hung.
    let (lost, duplicates, subscribes, fired) = under(
        Fault::stall_stream_after(0).schedule(Schedule::First(2)),
        "efo-silent",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 2);
    assert!(subscribes >= 4, "{subscribes} subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_ending_before_any_event_are_renewed_with_backoff() {
    let (lost, duplicates, subscribes, fired) = under(
        Fault::end_stream_after(0).schedule(Schedule::First(6)),
        "efo-empty",
    )
    .await;
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert_eq!(fired, 6);
    assert!(subscribes >= 8, "{subscribes} subscriptions");
}
