//! One consumer of a group, as its own process: reads a stream with a shared checkpoint store
//! and prints one JSON event per line (records handed out, checkpoints accepted, errors).
//! Closing its stdin asks for a clean shutdown.
//!
//! ```text
//! kinesis-group-worker --stream NAME --kinesis-endpoint URL --app APP --worker ID
//!     --session-ms N --heartbeat-ms N --store redis|redis-cluster|dynamodb --store-url URL [--table T]
//!     [--latest true] [--panic-on KEY:N]
//! ```
//!
//! `--latest true` starts shards without a checkpoint at LATEST; `--panic-on KEY:N` makes the
//! deserializer panic on item N of KEY (in this process only), as a user's code might.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_kinesis::checkpoint::{LeaseTiming, WorkerId};
use async_kinesis::consumer::{Consumer, IteratorType};
use async_kinesis::processor::{
    Composed, DecodeError, JsonSerializer, SerializeError, Serializer, SimpleAggregator,
};
use bytes::Bytes;
use futures::StreamExt;
use testkit::group::{Event, StoreSpec, error_chain};
use testkit::recording_store::{RecordingStore, now_ns};
use tokio::io::AsyncReadExt;

fn emit(event: &Event) {
    println!("{}", event.to_line());
}

/// JSON items; panics on one chosen item, as a user's deserializer with a bug would.
#[derive(Debug, Clone, Default)]
struct PanicsOn {
    json: JsonSerializer<serde_json::Value>,
    item: Option<(String, u64)>,
}

impl Serializer for PanicsOn {
    type Item = serde_json::Value;
    fn serialize(&self, item: &Self::Item) -> Result<Bytes, SerializeError> {
        self.json.serialize(item)
    }
    fn deserialize(&self, data: &Bytes) -> Result<Self::Item, DecodeError> {
        let item = self.json.deserialize(data)?;
        if let Some((key, n)) = &self.item
            && item["k"].as_str() == Some(key.as_str())
            && item["n"].as_u64() == Some(*n)
        {
            panic!("deserializer bug on {key}:{n}");
        }
        Ok(item)
    }
}

fn panic_on(text: Option<&String>) -> Result<Option<(String, u64)>, String> {
    let Some(text) = text else { return Ok(None) };
    let (key, n) = text.rsplit_once(':').ok_or("--panic-on wants KEY:N")?;
    let n = n.parse().map_err(|err| format!("--panic-on: {err}"))?;
    Ok(Some((key.to_owned(), n)))
}

fn millis(args: &HashMap<String, String>, name: &str) -> Result<Duration, String> {
    let text = args.get(name).ok_or(format!("--{name} is required"))?;
    text.parse()
        .map(Duration::from_millis)
        .map_err(|err| format!("--{name}: {err}"))
}

fn parse() -> Result<HashMap<String, String>, String> {
    let mut args = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or(format!("unexpected argument {flag}"))?;
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        args.insert(name.to_owned(), value);
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kinesis-group-worker: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse()?;
    let get = |name: &str| {
        args.get(name)
            .cloned()
            .ok_or(format!("--{name} is required"))
    };
    let worker = get("worker")?;
    let timing = LeaseTiming::new(millis(&args, "session-ms")?, millis(&args, "heartbeat-ms")?)
        .map_err(|problem| problem.to_string())?;
    let spec = StoreSpec::from_args(
        &get("store")?,
        args.get("store-url").cloned(),
        args.get("table").cloned(),
    )?;
    let inner = spec.open(&get("app")?, timing).await?;
    let store = RecordingStore::new(
        inner,
        Arc::new(|accepted| {
            emit(&Event::Checkpoint {
                shard: accepted.shard_id,
                owner: accepted.owner,
                token: accepted.token,
                position: accepted.position,
                started: accepted.started_ns,
                finished: accepted.finished_ns,
            });
        }),
    );
    let processor = Composed::from_parts(
        PanicsOn {
            item: panic_on(args.get("panic-on"))?,
            ..PanicsOn::default()
        },
        SimpleAggregator,
    );
    let iterator_type = match args.get("latest").map(String::as_str) {
        Some("true") => IteratorType::Latest,
        _ => IteratorType::TrimHorizon,
    };
    let mut consumer = Consumer::builder(get("stream")?)
        .sdk_config(&testkit::sdk_config_for(&get("kinesis-endpoint")?))
        .processor(processor)
        .iterator_type(iterator_type)
        .checkpointer(store)
        .worker_id(WorkerId::new(worker.clone()))
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100))
        .shard_refresh_interval(Duration::from_secs(1))
        .checkpoint_interval(Duration::from_millis(200))
        .build()
        .await
        .map_err(|err| err.to_string())?;
    // Ready once every shard it reads holds an iterator: with LATEST, records written after
    // this are delivered.
    consumer.ready().await.map_err(|err| err.to_string())?;
    emit(&Event::Ready {
        worker: worker.clone(),
    });
    let mut stdin_closed = Box::pin(async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    });
    loop {
        tokio::select! {
            () = &mut stdin_closed => break,
            item = consumer.next() => match item {
                Some(Ok(record)) => {
                    emit(&Event::Record {
                        worker: worker.clone(),
                        shard: record.shard_id.to_string(),
                        k: record.item["k"].as_str().unwrap_or_default().to_owned(),
                        n: record.item["n"].as_u64().unwrap_or(u64::MAX),
                        t: now_ns(),
                    });
                    // Emitted is processed: the shutdown does not acknowledge the last record.
                    record.ack();
                }
                Some(Err(err)) => emit(&Event::Error {
                    worker: worker.clone(),
                    message: error_chain(&err),
                }),
                None => break,
            },
        }
    }
    let report = consumer.shutdown(Duration::from_secs(5)).await;
    emit(&Event::Shutdown {
        worker,
        clean: report.is_clean(),
    });
    Ok(())
}
