//! The producer against AWS's per-shard write limits, enforced by the limits proxy in front of
//! kinesalite: it writes at the limit for a long run with few throttles and without losing
//! anything, a hot key is held to its shard's budget while other shards go on, and closing under
//! load loses nothing.
//!
//! The bounds here hold on a loaded machine: they tell a producer that respects the budget from
//! one that does not (which is throttled on most of its records), not a fast run from a slow one.
//! How much of the budget the producer uses is measured by the `pacing` benchmark.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_kinesis::processor::StringProcessor;
use async_kinesis::producer::{Producer, PutErrorKind};
use async_kinesis::stream::shard_map::ShardMap;
use testkit::proxy::{Limits, LimitsProxy, ProxyConfig};
use testkit::{Services, TestStream, read_stream};

async fn proxy_for(limits: Limits) -> LimitsProxy {
    let services = Services::from_env();
    services.kinesalite();
    let config = ProxyConfig {
        limits,
        ..ProxyConfig::default()
    };
    LimitsProxy::start(&services.kinesalite, config)
        .await
        .expect("proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_settings_write_at_the_shard_limits_for_30_seconds_without_loss() {
    const SHARDS: usize = 4;
    const RUN: Duration = Duration::from_secs(30);
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "limits-sustain", SHARDS as u32).await;
    let proxy = proxy_for(Limits::default()).await;
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .build()
        .await
        .expect("producer");

    // Writers put as fast as back-pressure lets them, with the producer choosing the keys.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (producer, stop, delivered) = (producer.clone(), stop.clone(), delivered.clone());
        writers.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                receipts.push(
                    producer
                        .put(format!("{writer}-{n}"))
                        .await
                        .expect("accepted"),
                );
                n += 1;
            }
            for receipt in receipts {
                receipt.await.expect("delivered");
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            n
        }));
    }
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let mut put = 0;
    for writer in writers {
        put += writer.await.expect("writer");
    }
    producer.close().await.expect("close");
    assert_eq!(
        delivered.load(Ordering::Relaxed),
        put,
        "every receipt delivered"
    );

    let counters = proxy.counters();
    let mut accepted_in_full_seconds = 0;
    let mut full_seconds = usize::MAX;
    let (mut accepted, mut throttled) = (0, 0);
    for shard in stream.shards().await {
        let shard = counters
            .shard(stream.name(), &shard.shard_id)
            .expect("shard counted");
        accepted += shard.total.accepted_records;
        throttled += shard.total.throttled_records;
        // Seconds 2..=29: past the initial burst, before the writers stop.
        let steady =
            &shard.per_second[2.min(shard.per_second.len())..shard.per_second.len().min(29)];
        full_seconds = full_seconds.min(steady.len());
        accepted_in_full_seconds += steady.iter().map(|s| s.accepted_records).sum::<u64>();
    }
    let limit = (SHARDS as u64 * 1_000) as f64;
    let rate = accepted_in_full_seconds as f64 / full_seconds as f64;
    println!(
        "put {put}, accepted {accepted}, throttled {throttled}, steady rate {rate:.0}/s = {:.1}% of {limit}/s",
        100.0 * rate / limit
    );
    assert!(
        full_seconds >= 20,
        "too few full seconds counted: {full_seconds}"
    );
    // Calls that arrive closer together than they were sent (a loaded machine delays one and
    // not the next) meet a proxy bucket with less in it than the producer's: a few throttles.
    // A producer ignoring the budget would be throttled on more records than it stores.
    assert!(
        (throttled as f64) < 0.10 * accepted as f64,
        "{throttled} throttled of {accepted}"
    );
    assert_eq!(accepted, put, "the proxy accepted each record once");
    assert_eq!(
        read_stream(stream.client()).await.len() as u64,
        put,
        "every item stored once"
    );
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_is_held_to_its_shard_while_other_shards_go_on() {
    const HOT_ITEMS: u64 = 3_000;
    const COLD_ITEMS: u64 = 300;
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "limits-hot", 4).await;
    let map = ShardMap::from_open_shards(&stream.shards().await).expect("shard map");
    let hot_shard = map
        .shard_for_partition_key("hot")
        .expect("routed")
        .shard_id()
        .to_owned();
    let cold_keys: Vec<String> = (0..1_000)
        .map(|n| format!("cold-{n}"))
        .filter(|key| map.shard_for_partition_key(key).expect("routed").shard_id() != hot_shard)
        .take(30)
        .collect();
    let proxy = proxy_for(Limits::default()).await;
    let producer = Producer::builder(stream.name())
        .client(proxy.client())
        .processor(StringProcessor::default())
        .build()
        .await
        .expect("producer");

    let hot_resolved = Arc::new(AtomicU64::new(0));
    let mut hot = Vec::new();
    for n in 0..HOT_ITEMS {
        let receipt = producer
            .put_with_key(format!("hot-{n}"), "hot")
            .await
            .expect("accepted");
        let resolved = hot_resolved.clone();
        hot.push(tokio::spawn(async move {
            let delivery = receipt.await.expect("hot item delivered");
            resolved.fetch_add(1, Ordering::SeqCst);
            delivery.shard_id
        }));
    }
    let mut cold = Vec::new();
    for n in 0..COLD_ITEMS {
        let key = &cold_keys[n as usize % cold_keys.len()];
        cold.push(
            producer
                .put_with_key(format!("cold-{n}"), key)
                .await
                .expect("accepted"),
        );
    }
    for receipt in cold {
        let delivery = receipt.await.expect("cold item delivered");
        assert_ne!(*delivery.shard_id, hot_shard);
    }
    // The cold items did not wait for the hot shard's backlog.
    let hot_done_when_cold_finished = hot_resolved.load(Ordering::SeqCst);
    for task in hot {
        assert_eq!(*task.await.expect("hot task"), hot_shard);
    }
    producer.close().await.expect("close");
    // The hot shard's budget needs two seconds for the items beyond its first second's burst;
    // the cold items need one call per shard, so they finish first unless they queue behind it.
    assert!(
        hot_done_when_cold_finished < HOT_ITEMS,
        "cold items finished only after all {HOT_ITEMS} hot items"
    );

    let counters = proxy.counters();
    let hot_counters = counters
        .shard(stream.name(), &hot_shard)
        .expect("hot shard counted");
    assert_eq!(hot_counters.total.accepted_records, HOT_ITEMS);
    // Held to the budget: a producer sending the hot key's 3,000 records as fast as calls go
    // would be throttled on thousands of records; timing jitter on a loaded machine costs a few.
    assert!(
        hot_counters.total.throttled_records * 10 < HOT_ITEMS,
        "{} hot records throttled",
        hot_counters.total.throttled_records
    );
    proxy.shutdown().await.expect("proxy");
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_under_heavy_traffic_loses_nothing() {
    let kinesalite = Services::from_env().kinesalite();
    let stream = TestStream::create(&kinesalite, "limits-close", 2).await;
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesalite.sdk_config())
        .processor(StringProcessor::default())
        .build()
        .await
        .expect("producer");

    let mut writers = Vec::new();
    for writer in 0..8 {
        let producer = producer.clone();
        writers.push(tokio::spawn(async move {
            let (mut delivered, mut refused, mut n) = (0u64, 0u64, 0u64);
            let mut receipts = Vec::new();
            loop {
                match producer.put(format!("{writer}-{n}")).await {
                    Ok(receipt) => receipts.push(receipt),
                    Err(err) => {
                        assert!(matches!(err.kind(), PutErrorKind::Closed), "{err}");
                        assert_eq!(err.into_item(), Some(format!("{writer}-{n}")));
                        refused += 1;
                        break;
                    }
                }
                n += 1;
            }
            for receipt in receipts {
                receipt.await.expect("accepted before close, so delivered");
                delivered += 1;
            }
            (delivered, refused)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    producer.close().await.expect("close");
    let (mut delivered, mut refused) = (0, 0);
    for writer in writers {
        let (d, r) = writer.await.expect("writer");
        delivered += d;
        refused += r;
    }
    assert_eq!(refused, 8, "each writer's first put after close came back");
    assert!(delivered > 1_000, "heavy traffic: {delivered}");
    assert_eq!(
        read_stream(stream.client()).await.len() as u64,
        delivered,
        "stored = delivered"
    );
    stream.delete().await;
}
