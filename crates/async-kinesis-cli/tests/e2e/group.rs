//! Consumer groups: `status` over a group of two `tail` processes sharing Redis, Ctrl-C
//! releasing their leases, and checkpoints in DynamoDB resumed by the next run.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn status_json(app: &str, stream: &str, store: &str) -> Value {
    let assert = run(&[
        "status",
        app,
        "--stream",
        stream,
        "--checkpoint",
        store,
        "--output",
        "json",
    ])
    .success();
    serde_json::from_str(&stdout(&assert)).unwrap()
}

async fn status(app: &str, stream: &str, store: &str) -> Value {
    let (app, stream, store) = (app.to_owned(), stream.to_owned(), store.to_owned());
    tokio::task::spawn_blocking(move || status_json(&app, &stream, &store))
        .await
        .unwrap()
}

#[tokio::test]
async fn status_shows_a_group_of_two_tail_processes_and_ctrl_c_releases_their_leases() {
    let services = services();
    services.require(testkit::Service::Redis);
    let stream = stream("group", 2).await;
    let name = stream.name().to_owned();
    let app = testkit::random_stream_name("app");
    let redis = services.redis_url.clone();
    let input: String = (0..8).map(|n| format!("{n}\n")).collect();
    let name2 = name.clone();
    tokio::task::spawn_blocking(move || run_with_input(&["put", &name2], &input))
        .await
        .unwrap()
        .success();
    let member = || {
        spawn(&[
            "tail",
            &name,
            "--checkpoint",
            &redis,
            "--app",
            &app,
            "--session-timeout",
            "4s",
            "-f",
            "{data}",
        ])
    };
    let mut first = member();
    let mut second = member();
    let mut view = Value::Null;
    let balanced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            view = status(&app, &name, &redis).await;
            let leases: Vec<u64> = view["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["leases"].as_u64().unwrap())
                .collect();
            if leases == [1, 1] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        balanced.is_ok(),
        "two workers with one lease each: {view:#}"
    );
    let owners: Vec<&str> = view["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["owner"].as_str().unwrap())
        .collect();
    assert_ne!(owners[0], owners[1], "{view:#}");
    let table = tokio::task::spawn_blocking({
        let (app, name, redis) = (app.clone(), name.clone(), redis.clone());
        move || stdout(&run(&["status", &app, "--stream", &name, "--checkpoint", &redis]).success())
    })
    .await
    .unwrap();
    assert!(table.contains("2 live worker(s)"), "{table}");
    assert!(
        table.contains(owners[0]) && table.contains(owners[1]),
        "{table}"
    );

    for child in [&first, &second] {
        interrupt(child);
    }
    for child in [&mut first, &mut second] {
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(130), "Ctrl-C exits with 130");
    }
    let after = status(&app, &name, &redis).await;
    assert_eq!(
        after["workers"],
        serde_json::json!([]),
        "both left the group: {after:#}"
    );
    for shard in after["shards"].as_array().unwrap() {
        assert!(shard["owner"].is_null(), "lease released: {after:#}");
    }
    stream.delete().await;
}

#[tokio::test]
async fn checkpoints_in_dynamodb_are_shown_by_status_and_resumed() {
    let services = services();
    services.require(testkit::Service::DynamoDb);
    let stream = stream("dynamo", 1).await;
    let name = stream.name().to_owned();
    let app = testkit::random_stream_name("app");
    let table = format!("dynamodb:{}", testkit::random_stream_name("cli"));
    let name2 = name.clone();
    tokio::task::spawn_blocking(move || run_with_input(&["put", &name2, "-k", "k"], "a\nb\nc\n"))
        .await
        .unwrap()
        .success();
    let tail_args = args(&["tail", &name, "-e", "--checkpoint", &table, "--app", &app]);
    let first = run_async(tail_args.clone()).await.success();
    let read = json_lines(&first);
    assert_eq!(read.len(), 3);
    let view = status(&app, &name, &table).await;
    let shard = &view["shards"][0];
    assert_eq!(shard["checkpoint"], read[2]["seq"], "{view:#}");
    assert_eq!(shard["lag_ms"], 0, "{view:#}");
    assert!(shard["owner"].is_null(), "{view:#}");
    let again = run_async(tail_args).await.success();
    assert_eq!(
        stdout(&again),
        "",
        "a second run resumes after the checkpoint"
    );
    stream.delete().await;
}
