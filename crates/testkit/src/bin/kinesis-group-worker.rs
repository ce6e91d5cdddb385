//! One consumer of a group, as its own process: reads a stream with a shared checkpoint store
//! and prints one JSON event per line (records handed out, checkpoints accepted, errors).
//! Closing its stdin asks for a clean shutdown.
//!
//! ```text
//! kinesis-group-worker --stream NAME --kinesis-endpoint URL --app APP --worker ID
//!     --session-ms N --heartbeat-ms N --store redis|redis-cluster|dynamodb --store-url URL [--table T]
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_kinesis::checkpoint::{LeaseTiming, WorkerId};
use async_kinesis::consumer::Consumer;
use async_kinesis::processor::JsonProcessor;
use futures::StreamExt;
use testkit::group::{Event, StoreSpec, error_chain};
use testkit::recording_store::{RecordingStore, now_ns};
use tokio::io::AsyncReadExt;

fn emit(event: &Event) {
    println!("{}", event.to_line());
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
    let mut consumer = Consumer::builder(get("stream")?)
        .sdk_config(&testkit::sdk_config_for(&get("kinesis-endpoint")?))
        .processor(JsonProcessor::<serde_json::Value>::default())
        .checkpointer(store)
        .worker_id(WorkerId::new(worker.clone()))
        .shard_fetch_rate(5)
        .sleep_time_no_records(Duration::from_millis(100))
        .shard_refresh_interval(Duration::from_secs(1))
        .checkpoint_interval(Duration::from_millis(200))
        .build()
        .await
        .map_err(|err| err.to_string())?;
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
