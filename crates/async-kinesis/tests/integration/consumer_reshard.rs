//! Resharding while producing and consuming: split, merge, and UpdateShardCount 2→4→2 during a
//! run of over 20,000 items over more than 20 s. Every item arrives, per-key order holds across
//! parent→child, no child is read before its parents ended, and finished parents are recorded in
//! the store.

use crate::consumer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_kinesis::checkpoint::{CheckpointStore, MemoryStore, Progress};
use async_kinesis::consumer::Consumer;
use async_kinesis::processor::JsonLineProcessor;
use async_kinesis::{Shard, StreamClient};
use aws_sdk_kinesis::types::ScalingType;
use consumer_support::{Outgoing, Tally, init_tracing, json_line_record, keys, put};
use futures::StreamExt;
use testkit::{Services, TestStream};

const ITEMS_PER_RECORD: u64 = 5;
const ROUNDS: u64 = 220; // one record per key per round, a round every 100 ms: 22 s
const KEYS: usize = 20;

async fn open_shards(client: &StreamClient) -> Vec<Shard> {
    let shards = client.list_shards().await.expect("list");
    shards.into_iter().filter(Shard::is_open).collect()
}

async fn wait_active(client: &StreamClient) {
    client
        .wait_until_active(Duration::from_secs(30))
        .await
        .expect("ACTIVE again");
}

/// Split, merge, then 2→4→2, a few seconds apart.
async fn reshard(client: StreamClient) -> Vec<&'static str> {
    let sdk = client.sdk_client().clone();
    let name = client.stream().name().to_owned();
    let mut done = Vec::new();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = open_shards(&client).await.remove(0);
    let mid = first.starting_hash_key + (first.ending_hash_key - first.starting_hash_key) / 2;
    sdk.split_shard()
        .stream_name(&name)
        .shard_to_split(&first.shard_id)
        .new_starting_hash_key(mid.to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client).await;
    done.push("split");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let children: Vec<Shard> = open_shards(&client)
        .await
        .into_iter()
        .filter(|s| s.parent_shard_id.as_deref() == Some(first.shard_id.as_str()))
        .collect();
    assert_eq!(children.len(), 2, "the split made two children");
    sdk.merge_shards()
        .stream_name(&name)
        .shard_to_merge(&children[0].shard_id)
        .adjacent_shard_to_merge(&children[1].shard_id)
        .send()
        .await
        .expect("MergeShards");
    wait_active(&client).await;
    done.push("merge");

    for target in [4, 2] {
        tokio::time::sleep(Duration::from_secs(4)).await;
        sdk.update_shard_count()
            .stream_name(&name)
            .target_shard_count(target)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .expect("UpdateShardCount");
        wait_active(&client).await;
        assert_eq!(open_shards(&client).await.len(), target as usize);
        done.push(if target == 4 { "2->4" } else { "4->2" });
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_merge_and_update_shard_count_while_producing_and_consuming() {
    reshard_while_producing_and_consuming(None).await;
}

/// The same over enhanced fan-out: parents are subscribed to, and read to their end by
/// GetRecords once a listing shows them closed (kinesis-mock never sends ChildShards events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_fan_out_split_merge_and_update_shard_count_while_producing_and_consuming() {
    reshard_while_producing_and_consuming(Some("reshard-app")).await;
}

async fn reshard_while_producing_and_consuming(fan_out: Option<&str>) {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "cons-reshard", 2).await;
    let store = MemoryStore::new();
    let builder = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::default())
        .checkpointer(store.clone())
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(200))
        .shard_refresh_interval(Duration::from_secs(1))
        .checkpoint_interval(Duration::from_millis(200));
    let mut consumer = match fan_out {
        Some(name) => builder.enhanced_fan_out(name),
        None => builder,
    }
    .build()
    .await
    .expect("build");

    let keys = keys(KEYS);
    let started = tokio::time::Instant::now();
    let writer = {
        let client = stream.client().clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for round in 0..ROUNDS {
                tick.tick().await;
                let from = round * ITEMS_PER_RECORD;
                let records: Vec<Outgoing> = keys
                    .iter()
                    .map(|k| json_line_record(k, from..from + ITEMS_PER_RECORD))
                    .collect();
                put(&client, &records).await;
            }
        })
    };
    let resharding = tokio::spawn(reshard(stream.client().clone()));

    let total = (ROUNDS * ITEMS_PER_RECORD) as usize * KEYS;
    assert!(total >= 20_000);
    let mut tally = Tally::default();
    let mut writer = Some(writer);
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tally.items() < total {
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().expect("present").await.expect("writer");
            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(60));
        }
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {total} items", tally.items()))
            .expect("open");
        match next {
            Ok(record) => tally.add(&record),
            Err(err) => tally.errors.push(err),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "the run spans at least 20 s"
    );
    let done = resharding.await.expect("resharding");
    assert_eq!(done, ["split", "merge", "2->4", "4->2"]);
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        panic!("unexpected extra item {extra:?}");
    }

    // Every item, once, in order per key.
    let expected: BTreeMap<String, u64> = keys
        .iter()
        .map(|k| (k.clone(), ROUNDS * ITEMS_PER_RECORD))
        .collect();
    let (lost, duplicates) = tally.account(&expected);
    println!("items {total}, lost {lost}, duplicates {duplicates}");
    assert_eq!((lost, duplicates), (0, 0), "lost, duplicates");
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);

    // No child delivered anything before all of its parents delivered everything.
    let shards = stream.client().list_shards().await.expect("list");
    let mut checked = 0;
    for child in &shards {
        let Some(child_first) = tally
            .by_shard
            .get(child.shard_id.as_str())
            .and_then(|i| i.first())
        else {
            continue;
        };
        for parent in child.parents() {
            if let Some(parent_last) = tally.by_shard.get(parent).and_then(|i| i.last()) {
                assert!(
                    parent_last < child_first,
                    "{} read before its parent {parent} ended",
                    child.shard_id
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "parent→child pairs checked: {checked}");

    // Closed shards are recorded as finished once their records were acknowledged.
    let status = consumer.shard_status();
    assert_eq!(status.total_shards, shards.len());
    assert!(status.exhausted_parents >= 5, "{status:?}");
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    for shard in shards.iter().filter(|s| !s.is_open()) {
        let progress = store
            .progress(stream.name(), &shard.shard_id)
            .await
            .expect("progress");
        assert_eq!(progress, Progress::ShardEnd, "{}", shard.shard_id);
    }
    stream.delete().await;
}
