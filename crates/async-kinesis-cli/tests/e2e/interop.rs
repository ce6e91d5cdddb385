//! `tail -p <processor>` reads what the Python library `async-kinesis` wrote with each of its
//! seven processors, value for value.

use serde_json::{Value, json};

use crate::support::*;

/// (Python processor, `-p` name, items written).
fn cases() -> Vec<(&'static str, &'static str, Vec<Value>)> {
    let objects: Vec<Value> = (0..6)
        .map(|n| json!({"n": n, "f": 0.1 + n as f64, "text": format!("é-{n}"), "nested": {"list": [n, null, true]}}))
        .collect();
    let strings: Vec<Value> = (0..6).map(|n| json!(format!("line {n} ✓"))).collect();
    vec![
        ("StringProcessor", "string", strings.clone()),
        ("JsonProcessor", "json", objects.clone()),
        ("JsonLineProcessor", "jsonline", objects.clone()),
        ("JsonListProcessor", "jsonlist", objects.clone()),
        ("MsgpackProcessor", "msgpack", objects.clone()),
        ("KPLJsonProcessor", "kpljson", objects),
        ("KPLStringProcessor", "kplstring", strings),
    ]
}

#[tokio::test]
async fn tail_reads_what_python_wrote_with_every_processor() {
    let services = services();
    let mut streams = Vec::new();
    let mut request = Vec::new();
    for (python, _, items) in cases() {
        let stream = stream(&python.to_lowercase(), 1).await;
        request.push(json!({"stream": stream.name(), "processor": python, "items": items}));
        streams.push(stream);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python_put.py");
    let body = json!({"endpoint": services.kinesis_mock, "cases": request}).to_string();
    let python = services.python.clone();
    assert!(
        python.exists(),
        "{} missing: run scripts/local-stack up",
        python.display()
    );
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(python)
            .arg(script)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    for ((python, processor, items), stream) in cases().into_iter().zip(&streams) {
        let tail = run_async(args(&["tail", stream.name(), "-p", processor, "-e"]))
            .await
            .success();
        let got: Vec<Value> = json_lines(&tail)
            .into_iter()
            .map(|l| l["data"].clone())
            .collect();
        let got = if processor == "jsonlist" {
            // The Python reader yields each record's list as one item: the lists concatenate to
            // what was written.
            got.into_iter()
                .flat_map(|list| list.as_array().unwrap().clone())
                .collect()
        } else {
            got
        };
        assert_eq!(got, items, "{python} via -p {processor}");
        if processor.starts_with("kpl") {
            // The default processor (raw) unpacks KPL aggregates too: each user record's bytes.
            let raw = run_async(args(&["tail", stream.name(), "-e"]))
                .await
                .success();
            let texts: Vec<Value> = json_lines(&raw)
                .into_iter()
                .map(|line| {
                    let text = line["data"]
                        .as_str()
                        .expect("user records are text")
                        .to_owned();
                    match processor {
                        "kpljson" => serde_json::from_str(&text).expect("JSON user record"),
                        _ => Value::String(text),
                    }
                })
                .collect();
            assert_eq!(texts, items, "{python} via the default raw processor");
        }
        stream.clone().delete().await;
    }
}
