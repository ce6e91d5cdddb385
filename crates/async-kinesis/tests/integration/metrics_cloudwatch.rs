//! The CloudWatch exporter against moto server: what a produce + consume run on kinesis-mock
//! recorded is read back with GetMetricData and ListMetrics; an unreachable CloudWatch and
//! refused credentials are counted and logged once per period while the data path is untouched.

use crate::consumer_support::init_tracing;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_kinesis::consumer::Consumer;
use async_kinesis::metrics::cloudwatch::{CloudWatchExporter, CloudWatchHandle, ExportStats};
use async_kinesis::metrics::names;
use async_kinesis::processor::JsonProcessor;
use async_kinesis::producer::Producer;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use futures::StreamExt;
use serde_json::json;
use testkit::moto_server::MotoServer;
use testkit::{Service, Services, TestStream, random_stream_name, sdk_config_for};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const ITEMS: u64 = 120;

/// Produces `ITEMS` numbered items into a new one-shard stream and reads them all back,
/// checking every value arrived exactly once; `exporter` flushes before the consumer stops.
async fn produce_and_consume(prefix: &str, exporter: Option<&CloudWatchHandle>) -> TestStream {
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, prefix, 1).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::new())
        .buffer_time(Duration::from_millis(50))
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for n in 0..ITEMS {
        receipts.push(producer.put(json!({ "n": n })).await.expect("accepted"));
    }
    for receipt in receipts {
        receipt.await.expect("delivered");
    }
    producer.close().await.expect("close");
    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::new())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .checkpoint_interval(Duration::from_millis(100))
        .build()
        .await
        .expect("consumer");
    let mut seen = BTreeSet::new();
    while (seen.len() as u64) < ITEMS {
        let record = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .expect("every item in time")
            .expect("stream open")
            .expect("a decodable item");
        let n = record.item["n"].as_u64().expect("numbered");
        assert!(seen.insert(n), "item {n} twice");
    }
    assert_eq!(seen, (0..ITEMS).collect(), "every item, exactly once");
    if let Some(exporter) = exporter {
        exporter.flush().await;
    }
    consumer.shutdown(Duration::from_secs(5)).await;
    stream
}

struct Reader {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    from: SystemTime,
}

impl Reader {
    /// `stat` of `name` with exactly these dimensions, over the whole test.
    async fn stat(&self, name: &str, dimensions: &[(&str, &str)], stat: &str) -> Vec<f64> {
        let metric = Metric::builder()
            .namespace(&self.namespace)
            .metric_name(name)
            .set_dimensions(Some(
                dimensions
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
                    .collect(),
            ))
            .build();
        let query = MetricDataQuery::builder()
            .id("q")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(60)
                    .stat(stat)
                    .build(),
            )
            .build();
        let answer = self
            .client
            .get_metric_data()
            .metric_data_queries(query)
            .start_time(DateTime::from(self.from - Duration::from_secs(120)))
            .end_time(DateTime::from(SystemTime::now() + Duration::from_secs(120)))
            .send()
            .await
            .expect("GetMetricData");
        answer
            .metric_data_results()
            .iter()
            .flat_map(|r| r.values().to_vec())
            .collect()
    }

    async fn sum(&self, name: &str, dimensions: &[(&str, &str)]) -> f64 {
        self.stat(name, dimensions, "Sum").await.iter().sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_recorded_is_read_back_from_cloudwatch() {
    init_tracing();
    let services = Services::from_env();
    let aws = services.sdk_config(Service::CloudWatch);
    let namespace = format!("AsyncKinesisTest/{}", random_stream_name("cw"));
    let from = SystemTime::now();
    let exporter = CloudWatchExporter::new(&aws)
        .namespace(&namespace)
        .app("it-app")
        .worker("it-worker")
        .flush_interval(Duration::from_secs(1))
        .install()
        .expect("install the exporter");

    let stream = produce_and_consume("metrics-cw", Some(&exporter)).await;
    let stats = exporter.shutdown().await;
    assert_eq!(stats.failed_calls, 0, "{stats:?}");
    assert_eq!(stats.data_dropped, 0, "{stats:?}");
    assert!(stats.data_sent > 0 && stats.calls > 0, "{stats:?}");

    let reader = Reader {
        client: aws_sdk_cloudwatch::Client::new(&aws),
        namespace: namespace.clone(),
        from,
    };
    let shard = stream.shards().await.remove(0).shard_id;
    let on_shard = [
        ("app", "it-app"),
        ("shard_id", shard.as_str()),
        ("stream_name", stream.name()),
        ("worker", "it-worker"),
    ];
    let on_stream = [
        ("app", "it-app"),
        ("stream_name", stream.name()),
        ("worker", "it-worker"),
    ];
    let items = ITEMS as f64;
    assert_eq!(
        reader.sum(names::PRODUCER_ITEMS_SENT, &on_shard).await,
        items
    );
    assert_eq!(
        reader.sum(names::PRODUCER_RECORDS_SENT, &on_shard).await,
        items
    );
    assert_eq!(
        reader
            .sum(names::CONSUMER_RECORDS_RECEIVED, &on_shard)
            .await,
        items
    );
    assert_eq!(
        reader
            .sum(names::CONSUMER_RECORDS_PROCESSED, &on_shard)
            .await,
        items
    );
    let bytes = reader.sum(names::PRODUCER_BYTES_SENT, &on_shard).await;
    assert!(bytes > items * 8.0, "{bytes}");
    assert_eq!(
        reader.sum(names::CONSUMER_BYTES_RECEIVED, &on_shard).await,
        bytes
    );
    // Histograms: values with counts, so Sum is the sum of all samples.
    assert_eq!(
        reader.sum(names::PRODUCER_BATCH_SIZE, &on_shard).await,
        items,
        "records per call add up to the records sent"
    );
    let calls: f64 = reader
        .stat(names::PRODUCER_BATCH_SIZE, &on_shard, "SampleCount")
        .await
        .iter()
        .sum();
    let durations: f64 = reader
        .stat(names::PRODUCER_FLUSH_DURATION, &on_shard, "SampleCount")
        .await
        .iter()
        .sum();
    assert!(
        calls >= 1.0 && calls == durations,
        "{calls} calls, {durations} durations"
    );
    let latencies: f64 = reader
        .stat(names::PRODUCER_PUT_LATENCY, &on_shard, "SampleCount")
        .await
        .iter()
        .sum();
    assert_eq!(latencies, items, "one put latency per record");
    let held = reader
        .stat(names::CONSUMER_LEASES_HELD, &on_stream, "Maximum")
        .await;
    assert!(held.contains(&1.0), "{held:?}");
    assert_eq!(
        reader.sum(names::CONSUMER_LEASES_TAKEN, &on_stream).await,
        1.0
    );
    assert!(
        !reader
            .stat(names::CONSUMER_ITERATOR_AGE, &on_shard, "Maximum")
            .await
            .is_empty(),
        "millis behind latest per shard"
    );
    assert!(
        reader
            .sum(names::CONSUMER_CHECKPOINT_SUCCESS, &on_shard)
            .await
            >= 1.0
    );

    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = reader
            .client
            .list_metrics()
            .namespace(&namespace)
            .set_next_token(token)
            .send()
            .await
            .expect("ListMetrics");
        listed.extend(page.metrics().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let listed_names: BTreeSet<&str> = listed.iter().filter_map(|m| m.metric_name()).collect();
    for expected in [
        names::PRODUCER_QUEUE_SIZE,
        names::PRODUCER_QUEUE_BYTES,
        names::CONSUMER_CHECKPOINT_DURATION,
        names::CONSUMER_PROCESSING_TIME,
        names::CONSUMER_LAG_RECORDS,
        names::STREAM_SHARDS_ACTIVE,
    ] {
        assert!(
            listed_names.contains(expected),
            "{expected} in {listed_names:?}"
        );
    }
    for metric in &listed {
        let dimensions: BTreeSet<&str> = metric
            .dimensions()
            .iter()
            .filter_map(|d| d.name())
            .collect();
        assert!(
            dimensions.contains("app")
                && dimensions.contains("worker")
                && dimensions.contains("stream_name"),
            "{metric:?}"
        );
    }
    assert!(
        !listed_names.contains(names::PRODUCER_THROTTLES),
        "a counter that never counted is not sent"
    );
    stream.delete().await;
}

/// Counts the exporter's warnings.
#[derive(Clone, Default)]
struct Warnings(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN
            && meta
                .target()
                .starts_with("async_kinesis::metrics::cloudwatch")
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn count_warnings() -> Warnings {
    let warnings = Warnings::default();
    tracing_subscriber::registry()
        .with(warnings.clone())
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .try_init()
        .expect("the only subscriber of this test process");
    warnings
}

/// Waits until the exporter has failed in `periods` periods (at most 60 s).
async fn failed_periods(exporter: &CloudWatchHandle, periods: u64) -> ExportStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats = exporter.stats();
        if stats.failed_calls >= periods || tokio::time::Instant::now() >= deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cloudwatch_is_counted_and_logged_once_per_period_and_the_data_flows() {
    let warnings = count_warnings();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let exporter = CloudWatchExporter::new(&sdk_config_for(&endpoint))
        .flush_interval(Duration::from_secs(1))
        .call_timeout(Duration::from_secs(2))
        .max_retained(40)
        .install()
        .expect("install the exporter");

    // The data path is untouched: every item goes through (checked inside).
    let stream = produce_and_consume("metrics-cw-down", None).await;
    let stats = failed_periods(&exporter, 3).await;
    assert!(stats.failed_calls >= 3, "{stats:?}");
    assert_eq!(stats.data_sent, 0);
    assert!(
        stats.data_pending > 0 && stats.data_pending <= 40,
        "kept, bounded: {stats:?}"
    );
    assert!(
        stats.data_dropped > 0,
        "past the bound, dropped and counted: {stats:?}"
    );
    let final_stats = exporter.shutdown().await;
    // A retryable failure stops the period's sending: one failed call, one warning, per period.
    assert_eq!(
        warnings.0.load(Ordering::SeqCst),
        final_stats.failed_calls,
        "{final_stats:?}"
    );
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_counted_logged_and_the_data_dropped() {
    let warnings = count_warnings();
    // This moto checks credentials, and knows none.
    let moto = MotoServer::spawn_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await;
    let exporter = CloudWatchExporter::new(&moto.sdk_config())
        .flush_interval(Duration::from_secs(1))
        .install()
        .expect("install the exporter");
    metrics::counter!(names::CONSUMER_RECORDS_RECEIVED, "stream_name" => "s", "shard_id" => "a")
        .increment(5);
    metrics::gauge!(names::CONSUMER_LEASES_HELD, "stream_name" => "s").set(2.0);
    let stats = failed_periods(&exporter, 2).await;
    assert!(stats.failed_calls >= 2, "{stats:?}");
    assert_eq!(stats.data_sent, 0);
    assert_eq!(
        stats.data_pending, 0,
        "refused data are not sent again: {stats:?}"
    );
    assert!(stats.data_dropped >= 2, "{stats:?}");
    let final_stats = exporter.shutdown().await;
    assert_eq!(
        warnings.0.load(Ordering::SeqCst),
        final_stats.failed_calls,
        "one warning per failed period: {final_stats:?}"
    );
}
