//! Serve `/metrics` for Prometheus while a producer writes and a consumer reads: what the CLI's
//! `--metrics-addr HOST:PORT` does for `put` and `tail`.
//!
//! ```text
//! cargo run -p async-kinesis --features prometheus --example metrics_server -- \
//!     --metrics-addr 127.0.0.1:9898 --endpoint http://127.0.0.1:4568 --seconds 60
//! curl http://127.0.0.1:9898/metrics
//! ```
//!
//! Without `--endpoint` it talks to AWS with the default credential chain and region. It creates
//! a two-shard stream, writes an item every few milliseconds for `--seconds`, reads them back,
//! and deletes the stream at the end.

use std::net::SocketAddr;
use std::time::Duration;

use async_kinesis::consumer::Consumer;
use async_kinesis::metrics::prometheus;
use async_kinesis::producer::Producer;
use async_kinesis::{ConnectOptions, CreateStream, StreamClient};
use futures::StreamExt;
use serde_json::json;

struct Args {
    metrics_addr: String,
    endpoint: Option<String>,
    seconds: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        metrics_addr: "127.0.0.1:9898".into(),
        endpoint: None,
        seconds: 60,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--metrics-addr" => args.metrics_addr = value()?,
            "--endpoint" => args.endpoint = Some(value()?),
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    // First, so that every metric of the run is recorded; a taken address fails here.
    let server = prometheus::serve(args.metrics_addr.as_str())?;
    let addr: SocketAddr = server.local_addr();
    println!("scrape http://{addr}/metrics");

    let mut options = ConnectOptions::default();
    if let Some(endpoint) = &args.endpoint {
        options = options.region("us-east-1").endpoint_url(endpoint);
    }
    let stream_name = format!("async-kinesis-metrics-{}", std::process::id());
    let client = StreamClient::connect(stream_name.as_str(), &options).await?;
    client
        .create_if_missing(
            CreateStream::Provisioned { shards: 2 },
            Duration::from_secs(60),
        )
        .await?;

    let producer = Producer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .buffer_time(Duration::from_millis(100))
        .build()
        .await?;
    let mut consumer = Consumer::builder(stream_name.as_str())
        .connect_options(options.clone())
        .build()
        .await?;
    let reader = tokio::spawn(async move {
        let mut read = 0u64;
        while let Some(record) = consumer.next().await {
            match record {
                Ok(_) => read += 1,
                Err(err) => eprintln!("{err}"),
            }
        }
        read
    });

    let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let mut written = 0u64;
    while tokio::time::Instant::now() < until {
        let item = json!({ "n": written, "at": format!("{:?}", std::time::SystemTime::now()) });
        // The receipt is not awaited here: delivery is counted by producer_items_sent_total.
        drop(
            producer
                .put_with_key(item, format!("user-{}", written % 7))
                .await?,
        );
        written += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    producer.close().await?;
    println!("wrote {written} items; reading the rest for 5 s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    reader.abort();
    client.delete().await?;
    server.shutdown().await;
    Ok(())
}
