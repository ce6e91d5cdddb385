//! `put` then `tail`: every line comes back with its metadata; `--from`/`--until` start and end
//! where asked; a split while tailing is followed.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use async_kinesis::stream::shard_map::ShardMap;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

fn order(n: u64) -> String {
    // Numbers beyond 64 bits and floats must come back as written.
    format!(
        r#"{{"order": {n}, "customer": "c-{}", "total": 12.30, "big": 1180591620717411303424{n}}}"#,
        n % 4
    )
}

#[tokio::test]
async fn a_file_put_with_keys_comes_back_whole_with_metadata() {
    let stream = stream("roundtrip", 2).await;
    let name = stream.name().to_owned();
    let lines: Vec<String> = (0..20).map(order).collect();
    let file = TempFile::new("orders.jsonl", &(lines.join("\n") + "\n"));
    let put = run_async(args(&[
        "put",
        &name,
        "--file",
        file.path(),
        "-p",
        "jsonline",
        "--key-field",
        "customer",
    ]))
    .await
    .success();
    assert!(
        stdout(&put).contains("20 record(s) put to"),
        "{}",
        stdout(&put)
    );

    let tail = run_async(args(&["tail", &name, "-p", "jsonline", "-e"]))
        .await
        .success();
    let got = json_lines(&tail);
    let map = ShardMap::from_open_shards(&stream.shards().await).unwrap();
    let mut seen = BTreeSet::new();
    for (line, text) in got.iter().zip(stdout(&tail).lines()) {
        let n = line["data"]["order"].as_u64().unwrap();
        assert!(seen.insert(n), "order {n} twice");
        // The exact text back: numbers beyond 64 bits and 12.30 as written.
        assert_eq!(raw_data(text), lines[n as usize], "order {n}");
        let key = format!("c-{}", n % 4);
        assert_eq!(line["key"], key.as_str());
        let shard = map.shard_for_partition_key(&key).unwrap().shard_id();
        assert_eq!(line["shard"], shard, "order {n} routed by its key");
        assert!(
            line["seq"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert!(line["sub"].is_u64());
        humantime::parse_rfc3339(line["ts"].as_str().unwrap()).expect("RFC 3339 arrival time");
    }
    assert_eq!(
        seen.len(),
        20,
        "lost: {:?}",
        (0..20).filter(|n| !seen.contains(n)).collect::<Vec<_>>()
    );

    // One shard only, and a record routed by its explicit hash key.
    let first = "shardId-000000000000";
    let only = run_async(args(&[
        "tail", &name, "-p", "jsonline", "-e", "--shard", first,
    ]))
    .await
    .success();
    let only = json_lines(&only);
    assert!(!only.is_empty() && only.iter().all(|l| l["shard"] == first));
    assert_eq!(
        only.len(),
        got.iter().filter(|l| l["shard"] == first).count()
    );
    let ehk = run_async(args(&[
        "put",
        &name,
        "{\"order\":99}",
        "-p",
        "json",
        "-k",
        "c-1",
        "--explicit-hash-key",
        "0",
    ]))
    .await
    .success();
    assert!(stdout(&ehk).contains("1 record(s) put"), "{}", stdout(&ehk));
    let tail = run_async(args(&[
        "tail",
        &name,
        "-e",
        "--shard",
        first,
        "-f",
        "{key} {data}",
    ]))
    .await
    .success();
    assert!(
        stdout(&tail).ends_with("c-1 {\"order\":99}\n"),
        "{}",
        stdout(&tail)
    );
    let unknown = run_async(args(&["tail", &name, "--shard", "shardId-000000000009"]))
        .await
        .code(1);
    assert!(
        stderr(&unknown).contains("has no shard shardId-000000000009"),
        "{}",
        stderr(&unknown)
    );
    stream.delete().await;
}

#[tokio::test]
async fn from_a_time_or_a_sequence_number_and_until_a_time() {
    let stream = stream("from", 1).await;
    let name = stream.name().to_owned();
    let first: String = (0..5).map(|n| format!("early-{n}\n")).collect();
    run_with_input_async(&["put", &name, "-k", "k"], &first)
        .await
        .success();
    // The emulator stamps arrivals in milliseconds; leave a clear gap between the batches.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second: String = (0..5).map(|n| format!("late-{n}\n")).collect();
    run_with_input_async(&["put", &name, "-k", "k"], &second)
        .await
        .success();

    let data = |assert: &assert_cmd::assert::Assert| -> Vec<String> {
        json_lines(assert)
            .iter()
            .map(|l| l["data"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = run_async(args(&["tail", &name, "-e"])).await.success();
    let everything = data(&all);
    assert_eq!(everything.len(), 10);
    // The boundary on the emulator's clock (it can lag this machine's): between the arrivals
    // of the last early and the first late record.
    let arrival = |n: usize| -> SystemTime {
        humantime::parse_rfc3339(json_lines(&all)[n]["ts"].as_str().unwrap()).unwrap()
    };
    let gap = arrival(5)
        .duration_since(arrival(4))
        .expect("late after early");
    assert!(gap >= Duration::from_millis(2), "arrivals {gap:?} apart");
    let at = humantime::format_rfc3339_millis(arrival(4) + gap / 2).to_string();
    let from_time = run_async(args(&["tail", &name, "-e", "--from", &at]))
        .await
        .success();
    assert_eq!(data(&from_time), everything[5..], "from {at}");
    let until = run_async(args(&["tail", &name, "--until", &at]))
        .await
        .success();
    assert_eq!(data(&until), everything[..5], "until {at}");
    let from_age = run_async(args(&["tail", &name, "-e", "--from", "-1h"]))
        .await
        .success();
    assert_eq!(data(&from_age), everything);

    let third_seq = json_lines(&all)[2]["seq"].as_str().unwrap().to_owned();
    let from_seq = run_async(args(&[
        "tail",
        &name,
        "-e",
        "--from",
        &format!("seq:{third_seq}"),
    ]))
    .await
    .success();
    assert_eq!(data(&from_seq), everything[2..], "from seq:{third_seq}");
    let n = run_async(args(&["tail", &name, "-n", "3", "-f", "{data}"]))
        .await
        .success();
    assert_eq!(stdout(&n), "early-0\nearly-1\nearly-2\n");
    stream.delete().await;
}

async fn run_with_input_async(cmd: &[&str], input: &str) -> assert_cmd::assert::Assert {
    let cmd = args(cmd);
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        run_with_input(&cmd, &input)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn tail_follows_a_split_that_happens_while_it_runs() {
    let stream = stream("split", 1).await;
    let name = stream.name().to_owned();
    let keys: Vec<String> = (0..8).map(|k| format!("key-{k}")).collect();
    for k in &keys {
        run_with_input_async(&["put", &name, "-k", k], &format!("before {k}\n"))
            .await
            .success();
    }
    let mut tail = spawn(&["tail", &name, "-f", "{shard} {data}"]);
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut got = Vec::new();
    let mut read_line = async || -> String {
        tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("tail prints within 60 s")
            .unwrap()
            .expect("tail still running")
    };
    while got.len() < keys.len() {
        got.push(read_line().await);
    }
    run_async(args(&["reshard", &name, "--split", "shardId-000000000000"]))
        .await
        .success();
    for k in &keys {
        run_with_input_async(&["put", &name, "-k", k], &format!("after {k}\n"))
            .await
            .success();
    }
    while got.len() < 2 * keys.len() {
        got.push(read_line().await);
    }
    interrupt(&tail);
    let status = tokio::time::timeout(Duration::from_secs(30), tail.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C exits with 130");
    let children: BTreeSet<&str> = got[keys.len()..]
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert!(
        got[..keys.len()]
            .iter()
            .all(|l| l.starts_with("shardId-000000000000 before ")),
        "{got:?}"
    );
    assert!(
        !children.contains("shardId-000000000000"),
        "after the split only children: {children:?}"
    );
    assert_eq!(children.len(), 2, "both children read: {got:?}");
    let after: BTreeSet<&str> = got[keys.len()..]
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        after.len(),
        keys.len(),
        "every key after the split: {got:?}"
    );
    stream.delete().await;
}

#[tokio::test]
async fn tail_over_enhanced_fan_out_reads_every_line_and_leaves_the_consumer_registered() {
    let stream = stream("tail-efo", 2).await;
    let name = stream.name().to_owned();
    let lines: Vec<String> = (0..30).map(order).collect();
    let file = TempFile::new("efo.jsonl", &(lines.join("\n") + "\n"));
    run_async(args(&[
        "put",
        &name,
        "--file",
        file.path(),
        "-p",
        "jsonline",
        "--key-field",
        "customer",
    ]))
    .await
    .success();
    let tail = run_async(args(&[
        "tail", &name, "-p", "jsonline", "-e", "--efo", "tail-app",
    ]))
    .await
    .success();
    let mut seen: Vec<u64> = json_lines(&tail)
        .iter()
        .map(|line| line["data"]["order"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..30).collect::<Vec<u64>>());
    let consumers = stream
        .client()
        .sdk_client()
        .list_stream_consumers()
        .stream_arn(stream.arn().await)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = consumers
        .consumers()
        .iter()
        .map(|c| c.consumer_name())
        .collect();
    assert_eq!(names, ["tail-app"]);
    stream.delete().await;
}
