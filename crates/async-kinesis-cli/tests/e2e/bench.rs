//! `bench`: the dry run (what CI runs), bad input, one small networked run on kinesalite with
//! every item accounted for, and Ctrl-C deleting the bench streams.

use std::time::Duration;

use async_kinesis::Streams;
use serde_json::Value;

use crate::support::*;

/// The processors `all` stands for.
const ALL: [&str; 8] = [
    "raw",
    "string",
    "json",
    "jsonline",
    "jsonlist",
    "msgpack",
    "kpljson",
    "kplstring",
];

fn results(assert: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_str(&stdout(assert)).expect("bench --json prints one JSON document")
}

#[test]
fn the_dry_run_measures_every_processor_and_counts_every_item() {
    let assert = run(&[
        "bench",
        "--dry-run",
        "--processors",
        "all",
        "--records",
        "2000",
        "--json",
    ])
    .success();
    let results = results(&assert);
    assert_eq!(results["dry_run"], true);
    assert!(
        results["floor"]["plain"]["produce_us"]
            .as_f64()
            .expect("floor")
            > 0.0
    );
    let runs = results["runs"].as_array().expect("runs");
    assert_eq!(
        runs.len(),
        ALL.len() * 2,
        "a produce and a consume row each"
    );
    for (processor, pair) in ALL.iter().zip(runs.chunks(2)) {
        for (row, phase) in pair.iter().zip(["produce", "consume"]) {
            assert_eq!(row["processor"], *processor);
            assert_eq!(row["phase"], phase);
            assert_eq!(row["items"], 2000);
            assert_eq!(row["received"], 2000, "{processor} {phase}");
            assert_eq!(row["lost"], 0, "{processor} {phase}");
            assert_eq!(row["duplicates"], 0, "{processor} {phase}");
            assert_eq!(row["failed"], 0, "{processor} {phase}");
            assert!(row["items_per_sec"].as_f64().expect("rate") > 0.0);
            assert!(row["cpu_us_per_item"].as_f64().expect("cpu") > 0.0);
        }
    }
    let aggregated = |name: &str| {
        runs.iter()
            .find(|r| r["processor"] == name)
            .and_then(|r| r["kinesis_records"].as_u64())
            .expect("row")
    };
    assert_eq!(aggregated("json"), 2000, "one record per item");
    assert!(
        aggregated("kpljson") < 100,
        "KPL aggregates many items per record"
    );
}

#[test]
fn the_dry_run_prints_a_table_and_markdown() {
    let table = run(&[
        "bench",
        "--dry-run",
        "--processors",
        "json",
        "--records",
        "300",
    ])
    .success();
    let text = stdout(&table);
    assert!(text.contains("items/s") && text.contains("json"), "{text}");
    assert!(text.contains("floor per 1000-byte item"), "{text}");
    let md = run(&[
        "bench",
        "--dry-run",
        "--processors",
        "msgpack",
        "--records",
        "300",
        "--markdown",
        "consume",
    ])
    .success();
    let text = stdout(&md);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("| processor | phase | items/s |"),
        "{text}"
    );
    assert!(lines[1].starts_with("| --- | --- | ---: |"), "{text}");
    assert!(lines[2].starts_with("| msgpack | consume |"), "{text}");
    assert!(!text.contains("| produce |"), "only the asked mode: {text}");
}

#[tokio::test]
async fn bad_input_is_one_line_with_exit_1_and_creates_nothing() {
    let kinesalite = services().kinesalite;
    let cases: [(&[&str], &str); 4] = [
        (
            &["--record-size", "2000000"],
            "error: --record-size 2000000 is above the maximum",
        ),
        (
            &["--processors", "json,yaml"],
            "error: unknown processor 'yaml' (processors: raw, string, json,",
        ),
        (&["--records", "0"], "error: --records must be at least 1"),
        (
            &["--endpoint-url", "http://127.0.0.1:9"],
            "error: cannot create the bench stream async-kinesis-bench-json-",
        ),
    ];
    for (extra, message) in cases {
        let mut command = vec!["bench"];
        command.extend_from_slice(extra);
        for (flag, default) in [("--endpoint-url", kinesalite.as_str()), ("--records", "10")] {
            if !extra.contains(&flag) {
                command.extend([flag, default]);
            }
        }
        let assert = run_async(args(&command)).await.code(1);
        let err = stderr(&assert);
        assert!(err.starts_with(message), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: one line: {err}");
    }
}

async fn bench_streams_of(pid: u32) -> Vec<String> {
    let kinesalite = services().kinesalite();
    let streams = Streams::from_sdk_config(kinesalite.sdk_config()).expect("client");
    let names = streams.list_names().await.expect("list streams");
    names
        .into_iter()
        .filter(|n| n.starts_with("async-kinesis-bench-") && n.contains(&format!("-{pid}-")))
        .collect()
}

#[tokio::test]
async fn a_networked_run_accounts_for_every_item_and_deletes_its_streams() {
    let kinesalite = services().kinesalite;
    let assert = run_async(args(&[
        "bench",
        "produce",
        "consume",
        "roundtrip",
        "--endpoint-url",
        &kinesalite,
        "--processors",
        "json,kpljson",
        "--records",
        "1500",
        "--shards",
        "2",
        "--json",
    ]))
    .await
    .success();
    let results = results(&assert);
    let runs = results["runs"].as_array().expect("runs");
    assert_eq!(
        runs.len(),
        6,
        "produce, consume and roundtrip of two processors"
    );
    for row in runs {
        let what = format!("{} {}", row["processor"], row["phase"]);
        assert_eq!(row["shards"], 2, "{what}");
        assert_eq!(row["received"], 1500, "{what}");
        assert_eq!(row["lost"], 0, "{what}");
        assert_eq!(row["failed"], 0, "{what}");
        assert!(
            row["kinesis_records"].as_u64().expect("records") > 0,
            "{what}"
        );
        assert!(
            row["kinesis_mb_per_sec"].as_f64().expect("MB/s") > 0.0,
            "{what}"
        );
        match row["phase"].as_str() {
            Some("produce") => assert!(row["put_latency"]["p99_ms"].as_f64().is_some(), "{what}"),
            Some("roundtrip") => {
                assert!(row["put_latency"]["p50_ms"].as_f64().is_some(), "{what}");
                assert!(
                    row["end_to_end_latency"]["p95_ms"].as_f64().is_some(),
                    "{what}"
                );
            }
            _ => assert!(row["put_latency"].is_null(), "{what}"),
        }
    }
    let json_produce = &runs[0];
    assert_eq!(json_produce["kinesis_records"], 1500, "one record per item");
    let pid_line = stderr(&assert);
    assert!(!pid_line.contains("cannot delete"), "{pid_line}");
}

#[tokio::test]
async fn ctrl_c_deletes_the_bench_streams() {
    let kinesalite = services().kinesalite;
    let mut child = spawn(&[
        "bench",
        "produce",
        "--endpoint-url",
        &kinesalite,
        "--processors",
        "json",
        "--records",
        "300000",
        "--record-size",
        "100",
    ]);
    let pid = child.id().expect("running");
    // The stream exists once the bench is under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while bench_streams_of(pid).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bench stream appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(90), child.wait())
        .await
        .expect("the bench stops after Ctrl-C")
        .expect("exit status");
    assert_eq!(status.code(), Some(130));
    // Deleted streams may be listed as DELETING for a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = bench_streams_of(pid).await;
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
