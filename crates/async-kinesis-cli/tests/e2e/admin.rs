//! `list`, `describe`, `shard-for` and `reshard`.

use async_kinesis::stream::shard_map::hash_key_for_partition_key;
use serde_json::Value;

use crate::support::*;

fn json(assert: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_str(&stdout(assert)).unwrap_or_else(|e| panic!("{e}: {}", stdout(assert)))
}

#[tokio::test]
async fn list_describe_and_shard_for() {
    let stream = stream("admin", 2).await;
    let name = stream.name().to_owned();
    let list = run_async(args(&["list", "--output", "json"]))
        .await
        .success();
    let listed = json(&list);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} listed: {listed}"));
    assert_eq!(row["status"], "ACTIVE");
    assert_eq!(row["mode"], "provisioned");
    assert_eq!(row["open_shards"], 2);
    assert_eq!(row["retention_hours"], 24);
    assert_eq!(row["max_record_bytes"], 1024 * 1024);
    assert_eq!(row["fan_out_consumers"], 0);
    let table = run_async(args(&["list"])).await.success();
    assert!(stdout(&table).contains(&name), "{}", stdout(&table));

    let arn = row["arn"].as_str().unwrap().to_owned();
    let described = json(
        &run_async(args(&["describe", &arn, "--output", "json"]))
            .await
            .success(),
    );
    assert_eq!(described["name"], name.as_str());
    let shards = described["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let share: f64 = shards
        .iter()
        .map(|s| s["key_space_percent"].as_f64().unwrap())
        .sum();
    assert!((share - 100.0).abs() < 1e-6, "{share}");
    assert_eq!(shards[0]["open"], true);

    let routed = json(
        &run_async(args(&["shard-for", &name, "a", "b", "--output", "json"]))
            .await
            .success(),
    );
    for (row, key) in routed.as_array().unwrap().iter().zip(["a", "b"]) {
        let hash = hash_key_for_partition_key(key);
        assert_eq!(row["md5"], format!("{hash:032x}"));
        assert_eq!(row["hash_key"], hash.to_string());
        let owner = shards
            .iter()
            .find(|s| {
                let start: u128 = s["starting_hash_key"].as_str().unwrap().parse().unwrap();
                let end: u128 = s["ending_hash_key"].as_str().unwrap().parse().unwrap();
                (start..=end).contains(&hash)
            })
            .unwrap();
        assert_eq!(row["shard_id"], owner["shard_id"]);
    }
    // The md5 of "a" is well known.
    assert_eq!(routed[0]["md5"], "0cc175b9c0f1b6a831c399e269772661");
    let by_hash = json(
        &run_async(args(&[
            "shard-for",
            &name,
            "--explicit-hash-key",
            "0",
            "--output",
            "json",
        ]))
        .await
        .success(),
    );
    assert_eq!(by_hash[0]["shard_id"], "shardId-000000000000");
    stream.delete().await;
}

#[tokio::test]
async fn reshard_to_a_count_and_merge_wait_for_active() {
    let stream = stream("reshard", 1).await;
    let name = stream.name().to_owned();
    let scaled = run_async(args(&["reshard", &name, "--to", "2", "--output", "json"]))
        .await
        .success();
    let scaled: Value = serde_json::from_str(&stdout(&scaled)).unwrap();
    assert_eq!(scaled["status"], "ACTIVE");
    let open: Vec<String> = scaled["open_shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(open.len(), 2, "{scaled}");
    let merged = run_async(args(&["reshard", &name, "--merge", &open[1], &open[0]]))
        .await
        .success();
    assert!(
        stdout(&merged).contains("is ACTIVE with 1 open shards"),
        "{}",
        stdout(&merged)
    );
    let refused = run_async(args(&["reshard", &name, "--split", &open[0]]))
        .await
        .code(1);
    assert!(
        stderr(&refused).contains("is closed; only open shards can be split"),
        "{}",
        stderr(&refused)
    );
    stream.delete().await;
}
