//! `--metrics-addr`: `tail` serves `/metrics` while it runs; a taken address fails at once.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{interrupt, run, run_with_input, spawn, stderr, stream};

/// `GET /metrics`: the body of a 200 answer.
async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = testkit::http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The sum of every sample of `metric` labelled with `stream`.
fn total(exposition: &str, metric: &str, stream: &str) -> f64 {
    let label = format!("stream_name=\"{stream}\"");
    exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && line.contains(&label))
        .map(|line| {
            let (_, value) = line.rsplit_once(' ').expect("series value");
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value of {line}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_serves_metrics_counting_what_it_printed() {
    let stream = stream("metrics", 2).await;
    let name = stream.name().to_owned();
    let lines: String = (0..50).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let input = lines.clone();
    let put_name = name.clone();
    tokio::task::spawn_blocking(move || run_with_input(&["put", &put_name], &input).success())
        .await
        .unwrap();

    let mut tail = spawn(&["tail", &name, "--metrics-addr", "127.0.0.1:0", "-f", "raw"]);
    let mut err_lines = BufReader::new(tail.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), err_lines.next_line())
            .await
            .expect("tail names its metrics address within 60 s")
            .unwrap()
            .expect("tail still running");
        if let Some(url) = line.strip_prefix("metrics: http://") {
            break url
                .trim_end_matches("/metrics")
                .parse()
                .expect("an address");
        }
    };
    let mut out_lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    for _ in 0..50 {
        tokio::time::timeout(Duration::from_secs(60), out_lines.next_line())
            .await
            .expect("tail prints within 60 s")
            .unwrap()
            .expect("tail still running");
    }
    // Counted when handed to the printer: all 50 are in once the 50th line is out, give or
    // take the record being printed; scrape until the count settles at 50.
    let mut processed = 0.0;
    for _ in 0..100 {
        let body = scrape(addr).await;
        processed = total(&body, "consumer_records_processed_total", &name);
        if processed >= 50.0 {
            assert!(
                body.contains("# TYPE consumer_records_received_total counter"),
                "{body}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processed, 50.0, "records processed as counted by /metrics");
    interrupt(&tail);
    let status = tokio::time::timeout(Duration::from_secs(30), tail.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130));
    stream.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_taken_metrics_address_fails_before_sending() {
    let stream = stream("metrics-taken", 1).await;
    let name = stream.name().to_owned();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let put_name = name.clone();
    let assert = tokio::task::spawn_blocking(move || {
        run(&["put", &put_name, "--metrics-addr", &addr, "never sent"])
    })
    .await
    .unwrap()
    .failure()
    .code(1);
    let message = stderr(&assert);
    assert!(message.contains("--metrics-addr"), "{message}");
    assert!(message.contains("in use"), "{message}");
    assert_eq!(
        testkit::read_stream(stream.client()).await.len(),
        0,
        "nothing was sent"
    );
    drop(taken);
    stream.delete().await;
}
