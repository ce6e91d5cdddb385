//! `put STREAM [DATA]`: one record per line of stdin or `--file`, or DATA.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_kinesis::partition_key::check_partition_key;
use async_kinesis::processor::Processor;
use async_kinesis::producer::{Delivery, Producer, PutError};
use async_kinesis::{CreateStream, Error as KinesisError};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::cli::{Global, PutArgs};
use crate::error::{CliError, one_line};
use crate::item::FromLine;
use crate::output;
use crate::processor_kind::with_processor;

/// How long `--create` waits for the new stream.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) async fn run(global: &Global, args: PutArgs) -> Result<(), CliError> {
    with_processor!(args.processor, |p| put_with(global, &args, p).await)
}

/// A line that did not become a record.
#[derive(Debug, Serialize)]
struct Failure {
    line: u64,
    reason: String,
}

/// The outcome of a `put`.
#[derive(Debug, Default, Serialize)]
struct Summary {
    stream: String,
    sent: u64,
    failed: u64,
    empty_lines_skipped: u64,
    interrupted: bool,
    failures: Vec<Failure>,
}

type Pending<T> =
    FuturesUnordered<futures::future::BoxFuture<'static, (u64, Result<Delivery, PutError<T>>)>>;

async fn put_with<P>(global: &Global, args: &PutArgs, processor: P) -> Result<(), CliError>
where
    P: Processor,
    P::Item: FromLine,
{
    if args.explicit_hash_key.is_some() && args.key.is_none() && args.key_field.is_none() {
        return Err(CliError::Usage(
            "--explicit-hash-key needs a partition key: give -k KEY or --key-field PATH".into(),
        ));
    }
    let client = global.stream_client(&args.stream).await?;
    if args.create {
        let spec = if args.on_demand {
            CreateStream::OnDemand
        } else {
            CreateStream::Provisioned {
                shards: args.shards.unwrap_or(1),
            }
        };
        client.create_if_missing(spec, CREATE_TIMEOUT).await?;
    } else {
        client.describe().await?; // names an unknown stream in one line
    }
    let retried = Arc::new(AtomicU64::new(0));
    let counter = retried.clone();
    let producer = Producer::builder(args.stream.as_str())
        .connect_options(global.connect_options())
        .processor(processor)
        .after_flush(move |report| {
            counter.fetch_add(report.retried as u64, Ordering::Relaxed);
        })
        .build()
        .await?;
    let (input, size): (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>) =
        match (&args.data, &args.file) {
            (Some(data), _) => (
                Box::new(std::io::Cursor::new(data.clone().into_bytes())),
                None,
            ),
            (None, Some(path)) => {
                let file = tokio::fs::File::open(path).await.map_err(|e| {
                    CliError::Failed(format!("cannot open {}: {e}", path.display()))
                })?;
                let size = file.metadata().await.ok().map(|m| m.len());
                (Box::new(BufReader::new(file)), size)
            }
            (None, None) => (Box::new(BufReader::new(tokio::io::stdin())), None),
        };
    let bar = progress_bar(global, size);
    let mut summary = Summary {
        stream: args.stream.clone(),
        ..Summary::default()
    };
    let mut pending: Pending<P::Item> = FuturesUnordered::new();
    let interrupted = send_lines(
        args,
        &producer,
        input,
        &bar,
        &retried,
        &mut summary,
        &mut pending,
    )
    .await?;
    // A second Ctrl-C while the accepted records are delivered stops at once.
    let hurry = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    bar.set_message("delivering the last records");
    let closed = producer.close().await;
    while let Some((line, result)) = pending.next().await {
        settle(line, result, &mut summary, &bar);
    }
    hurry.abort();
    bar.finish_and_clear();
    closed.map_err(|e: KinesisError| CliError::Failed(one_line(&e)))?;
    summary.interrupted = interrupted;
    let retried = retried.load(Ordering::Relaxed);
    output::print(global.output, &summary, |s| {
        let mut line = format!(
            "{} record(s) put to {}, {} failed",
            s.sent, s.stream, s.failed
        );
        if s.empty_lines_skipped > 0 {
            line.push_str(&format!(
                ", {} empty line(s) skipped",
                s.empty_lines_skipped
            ));
        }
        if retried > 0 {
            line.push_str(&format!(", {retried} retried after throttling or errors"));
        }
        if s.interrupted {
            line.push_str(" (interrupted: the rest of the input was not read)");
        }
        line
    })?;
    if interrupted {
        Err(CliError::Interrupted)
    } else if summary.failed > 0 {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

/// Reads and puts every line; `true` when Ctrl-C stopped it.
async fn send_lines<P>(
    args: &PutArgs,
    producer: &Producer<P>,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    bar: &ProgressBar,
    retried: &AtomicU64,
    summary: &mut Summary,
    pending: &mut Pending<P::Item>,
) -> Result<bool, CliError>
where
    P: Processor,
    P::Item: FromLine,
{
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let started = Instant::now();
    let (mut line_no, mut bytes_read, mut records) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            biased;
            _ = &mut ctrl_c => return Ok(true),
            read = input.read_until(b'\n', &mut line) => read?,
        };
        if read == 0 {
            return Ok(false);
        }
        line_no += 1;
        bytes_read += read as u64;
        let content = strip_line_break(&line);
        if content.is_empty() {
            summary.empty_lines_skipped += 1;
            continue;
        }
        let prepared =
            P::Item::from_line(content).and_then(|item| Ok((item, key_of(args, content)?)));
        let (item, key) = match prepared {
            Ok(prepared) => prepared,
            Err(reason) => {
                fail(summary, bar, line_no, reason);
                continue;
            }
        };
        if let Some(rate) = args.rate {
            tokio::time::sleep_until(started + rate.due(records)).await;
        }
        records += 1;
        let put = match (key, &args.explicit_hash_key) {
            (None, _) => producer.put(item).await,
            (Some(key), None) => producer.put_with_key(item, key).await,
            (Some(key), Some(hash_key)) => producer.put_with_hash_key(item, key, hash_key).await,
        };
        match put {
            Ok(receipt) => pending.push(async move { (line_no, receipt.await) }.boxed()),
            Err(err) => fail(summary, bar, line_no, one_line(err.kind())),
        }
        while let Some(Some((line, result))) = pending.next().now_or_never() {
            settle(line, result, summary, bar);
        }
        bar.set_position(bytes_read);
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{records} records, {:.0}/s, {} sent, {} failed, {} throttled/retried",
            records as f64 / seconds,
            summary.sent,
            summary.failed,
            retried.load(Ordering::Relaxed)
        ));
    }
}

/// The line without its `\n` or `\r\n`.
fn strip_line_break(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The partition key of a line: `-k`, `--key-field`, or none (the producer picks one).
fn key_of(args: &PutArgs, line: &[u8]) -> Result<Option<String>, String> {
    match (&args.key, &args.key_field) {
        (Some(key), _) => Ok(Some(key.clone())),
        (None, Some(field)) => {
            let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8 text: {e}"))?;
            let key = field.key_of(text)?;
            check_partition_key(&key).map_err(|e| e.to_string())?;
            Ok(Some(key))
        }
        (None, None) => Ok(None),
    }
}

fn settle<T>(
    line: u64,
    result: Result<Delivery, PutError<T>>,
    summary: &mut Summary,
    bar: &ProgressBar,
) {
    match result {
        Ok(_) => summary.sent += 1,
        Err(err) => fail(summary, bar, line, one_line(err.kind())),
    }
}

fn fail(summary: &mut Summary, bar: &ProgressBar, line: u64, reason: String) {
    bar.suspend(|| eprintln!("put: line {line}: {reason}"));
    summary.failed += 1;
    summary.failures.push(Failure { line, reason });
}

/// A progress bar over the input file's bytes, when there is a file and stderr is for people.
fn progress_bar(global: &Global, size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) if global.chatty() => {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        _ => ProgressBar::hidden(),
    }
}
