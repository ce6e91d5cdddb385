//! Bad input: clear one-line errors and the right exit codes; nothing good is lost.

use predicates::prelude::*;

use crate::support::*;

#[tokio::test]
async fn an_unknown_stream_is_named_in_one_line_with_exit_1() {
    let missing = testkit::random_stream_name("cli-missing");
    for command in [
        vec!["describe", missing.as_str()],
        vec!["tail", missing.as_str(), "-e"],
        vec!["shard-for", missing.as_str(), "k"],
        vec!["reshard", missing.as_str(), "--to", "2"],
    ] {
        let assert = run_async(args(&command)).await.code(1);
        let err = stderr(&assert);
        assert_eq!(
            err,
            format!("error: stream {missing} not found\n"),
            "{command:?}"
        );
    }
    let put = run_with_input(&["put", &missing], "x\n").code(1);
    assert_eq!(stderr(&put), format!("error: stream {missing} not found\n"));
}

#[test]
fn malformed_options_are_usage_errors() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["tail", "s", "--from", "yesterday"],
            "--from takes trim-horizon",
        ),
        (
            &["tail", "s", "--from", "seq:12ab"],
            "a sequence number is decimal digits",
        ),
        (&["tail", "s", "--until", "latest"], "--until takes"),
        (&["tail", "s", "-f", "{nope}"], "unknown placeholder {nope}"),
        (&["put", "s", "-k", ""], "partition key is empty"),
        (
            &["shard-for", "s", &"\u{1F600}".repeat(129)],
            "258 characters long",
        ),
        (
            &["put", "s", "--rate", "fast"],
            "a rate is a positive number",
        ),
    ];
    for (command, message) in cases {
        run(command)
            .code(2)
            .stderr(predicate::str::contains(message));
    }
    let long_key = "k".repeat(257);
    run(&["put", "s", "-k", &long_key])
        .code(2)
        .stderr(predicate::str::contains("257 characters long"));
    run(&["shard-for", "s", "k", "--explicit-hash-key", "-1"])
        .code(2)
        .stderr(predicate::str::contains("invalid hash key"));
    run(&["tail"]).code(2);
    run(&["--version"])
        .success()
        .stdout(predicate::str::starts_with("async-kinesis "));
}

#[tokio::test]
async fn bad_lines_of_put_are_reported_by_number_and_the_rest_are_sent() {
    let stream = stream("badlines", 1).await;
    let name = stream.name().to_owned();
    let too_long = "x".repeat(300);
    let input = format!(
        "{{\"k\":\"a\",\"n\":1}}\nnot json\n{{\"n\":3}}\n{{\"k\":\"{too_long}\",\"n\":4}}\n\n{{\"k\":\"b\",\"n\":6}}\n"
    );
    let name2 = name.clone();
    let put = tokio::task::spawn_blocking(move || {
        run_with_input(&["put", &name2, "-p", "json", "--key-field", "k"], &input)
    })
    .await
    .unwrap()
    .code(1);
    let err = stderr(&put);
    assert!(err.contains("put: line 2: not valid JSON"), "{err}");
    assert!(err.contains("put: line 3: key field k is missing"), "{err}");
    assert!(
        err.contains("put: line 4: partition key is 300 characters long"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(
        stdout(&put).contains("2 record(s) put to"),
        "{}",
        stdout(&put)
    );
    assert!(
        stdout(&put).contains("3 failed, 1 empty line(s) skipped"),
        "{}",
        stdout(&put)
    );

    let tail = run_async(args(&["tail", &name, "-p", "json", "-e"]))
        .await
        .success();
    let items: Vec<i64> = json_lines(&tail)
        .iter()
        .map(|l| l["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(items, [1, 6]);
    stream.delete().await;
}

#[tokio::test]
async fn undecodable_records_under_tail_json_are_reported_and_tail_goes_on() {
    let stream = stream("poison", 1).await;
    let name = stream.name().to_owned();
    let name2 = name.clone();
    tokio::task::spawn_blocking(move || {
        run_with_input(
            &["put", &name2, "-k", "k"],
            "{\"n\":1}\nnot json\n{\"n\":3}\n",
        )
    })
    .await
    .unwrap()
    .success();
    let tail = run_async(args(&["tail", &name, "-p", "json", "-e"]))
        .await
        .code(1);
    let items: Vec<i64> = json_lines(&tail)
        .iter()
        .map(|l| l["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(items, [1, 3], "the records around the bad one are printed");
    let err = stderr(&tail);
    let poison: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("undecodable record"))
        .collect();
    assert_eq!(poison.len(), 1, "{err}");
    assert!(
        poison[0].contains("in shard shardId-000000000000 at sequence "),
        "{err}"
    );
    assert!(
        poison[0].contains("sub-sequence 0 (key \"k\", 8 bytes"),
        "{err}"
    );
    stream.delete().await;
}
