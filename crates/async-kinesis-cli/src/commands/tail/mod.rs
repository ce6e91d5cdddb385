//! `tail STREAM`: the library's consumer, printed item by item.

mod until;

use std::io::Write;
use std::time::{Duration, SystemTime};

use async_kinesis::consumer::{ConsumeError, Consumer, IteratorType, PoisonRecord};
use async_kinesis::processor::Processor;
use async_kinesis::{Record, Shard};
use futures::StreamExt;

use crate::checkpoint_spec;
use crate::cli::{Global, TailArgs};
use crate::error::{CliError, one_line};
use crate::format::Meta;
use crate::item::ItemView;
use crate::processor_kind::with_reader;
use crate::time_spec::StartSpec;
use until::{ShardFacts, Until};

/// How often the end conditions are checked and output is flushed.
const TICK: Duration = Duration::from_millis(250);

/// How long a clean stop waits for the last checkpoints and lease releases.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Output is written out once this much is buffered (and at every tick).
const FLUSH_BYTES: usize = 64 * 1024;

pub(crate) async fn run(global: &Global, args: TailArgs) -> Result<(), CliError> {
    with_reader!(args.processor, |p| tail_with(global, &args, p).await)
}

/// Why reading stopped.
enum Stop {
    /// An end condition was met (`-e`, `-n`, `--until`) or stdout was closed.
    Done,
    /// Ctrl-C.
    Interrupted,
    /// The consumer ended by itself (the stream is gone; the reason was reported).
    Ended,
}

async fn tail_with<P>(global: &Global, args: &TailArgs, processor: P) -> Result<(), CliError>
where
    P: Processor,
    P::Output: ItemView,
{
    let client = global.stream_client(&args.stream).await?;
    client.describe().await?; // names an unknown stream in one line
    let shards = client.list_shards().await?;
    for shard_id in &args.shards {
        if !shards.iter().any(|s| &s.shard_id == shard_id) {
            return Err(CliError::Failed(format!(
                "stream {} has no shard {shard_id} (shards: {})",
                args.stream,
                shard_names(&shards)
            )));
        }
    }
    let mut builder = Consumer::builder(args.stream.as_str())
        .connect_options(global.connect_options())
        .processor(processor);
    builder = match &args.from {
        StartSpec::TrimHorizon => builder.iterator_type(IteratorType::TrimHorizon),
        StartSpec::Latest => builder.iterator_type(IteratorType::Latest),
        StartSpec::At(at) => builder.timestamp(at.resolve(SystemTime::now())),
        StartSpec::Sequence(sequence) => {
            let shard = sequence_shard(args, &shards)?;
            builder.start_at_sequence_number(shard, sequence)
        }
    };
    if !args.shards.is_empty() {
        builder = builder.only_shards(args.shards.iter().cloned());
    }
    if let Some(name) = &args.efo {
        builder = builder.enhanced_fan_out(name);
    }
    if let (Some(spec), Some(app)) = (&args.group.checkpoint, &args.group.app) {
        let timing =
            checkpoint_spec::timing(args.group.session_timeout).map_err(CliError::Usage)?;
        let store = spec
            .connect(
                app,
                global.aws_options(),
                args.group.store.dynamodb_endpoint_url.as_deref(),
                timing,
            )
            .await?;
        builder = builder.checkpointer_arc(store);
    }
    let mut consumer = builder.build().await?;
    let mut printer = Printer::new(args);
    let stop = read(&mut consumer, args, &mut printer).await;
    let flushed = printer.flush();
    // A second Ctrl-C while the last checkpoints are written stops at once.
    let hurry = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    let report = consumer.shutdown(SHUTDOWN_DEADLINE).await;
    hurry.abort();
    for err in &report.errors {
        eprintln!("tail: {}", one_line(err));
        printer.errors += 1;
    }
    let stop = stop?;
    if let Err(err) = flushed
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(err.into());
    }
    if global.chatty() && !matches!(stop, Stop::Interrupted) && ends_by_itself(args) {
        eprintln!(
            "tail: {} item(s), {} error(s), {} lease(s) released",
            printer.items, printer.errors, report.leases_released
        );
    }
    match stop {
        Stop::Interrupted => Err(CliError::Interrupted),
        Stop::Ended => Err(CliError::Failed(format!(
            "the consumer of {} stopped (see the errors above)",
            args.stream
        ))),
        Stop::Done if printer.errors > 0 => Err(CliError::Reported),
        Stop::Done => Ok(()),
    }
}

fn ends_by_itself(args: &TailArgs) -> bool {
    args.to_end || args.until.is_some() || args.count.is_some()
}

/// Reads until an end condition, Ctrl-C, or the consumer's end.
async fn read<P>(
    consumer: &mut Consumer<P>,
    args: &TailArgs,
    printer: &mut Printer,
) -> Result<Stop, CliError>
where
    P: Processor,
    P::Output: ItemView,
{
    let mut until = args
        .until
        .map(|spec| Until::new(spec.resolve(SystemTime::now())));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            // Biased: the tick branch runs only when no item is ready, so the queue is empty
            // whenever the end conditions are checked.
            biased;
            _ = &mut ctrl_c => return Ok(Stop::Interrupted),
            item = consumer.next() => match item {
                Some(Ok(record)) => {
                    let admitted = until
                        .as_mut()
                        .is_none_or(|u| u.admits(&record.shard_id, record.arrival_time));
                    if admitted {
                        if !printer.item(&record) {
                            return Ok(Stop::Done); // stdout is closed
                        }
                        // Printed: a shutdown right after it must not deliver it again.
                        record.ack();
                    }
                    if args.count.is_some_and(|n| printer.items >= n) {
                        return Ok(Stop::Done);
                    }
                }
                Some(Err(err)) => printer.error(&err),
                None => return Ok(Stop::Ended),
            },
            _ = tick.tick() => {
                if printer.flush().is_err() {
                    return Ok(Stop::Done);
                }
                if let Some(until) = &until {
                    let status = consumer.shard_status();
                    let facts: Vec<ShardFacts> = status
                        .shard_details
                        .iter()
                        .map(|d| ShardFacts {
                            shard_id: d.shard_id.to_string(),
                            done: d.is_finished || d.is_stopped,
                            at_tip: d.is_read_up(),
                        })
                        .collect();
                    if until.reached(&facts, &status.topology.child_parent_map, SystemTime::now()) {
                        return Ok(Stop::Done);
                    }
                } else if args.to_end && consumer.caught_up().await? {
                    return Ok(Stop::Done);
                }
            }
        }
    }
}

/// The shard a `--from seq:` names: the one `--shard`, or the stream's only shard.
fn sequence_shard(args: &TailArgs, shards: &[Shard]) -> Result<String, CliError> {
    match (args.shards.as_slice(), shards) {
        ([shard], _) => Ok(shard.clone()),
        ([], [only]) => Ok(only.shard_id.to_string()),
        _ => Err(CliError::Usage(format!(
            "--from seq: is a position in one shard: name it with one --shard (shards of {}: {})",
            args.stream,
            shard_names(shards)
        ))),
    }
}

fn shard_names(shards: &[Shard]) -> String {
    shards
        .iter()
        .map(|s| s.shard_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats items into a buffer written to stdout; reports error items on stderr.
struct Printer {
    format: crate::format::OutputFormat,
    buffer: Vec<u8>,
    items: u64,
    errors: u64,
}

impl Printer {
    fn new(args: &TailArgs) -> Self {
        Self {
            format: args.format.clone(),
            buffer: Vec::with_capacity(FLUSH_BYTES * 2),
            items: 0,
            errors: 0,
        }
    }

    /// Prints one item; `false` once stdout is closed.
    fn item<T: ItemView>(&mut self, record: &Record<T>) -> bool {
        let meta = Meta {
            shard: &record.shard_id,
            seq: &record.sequence_number,
            sub: record.sub_sequence,
            key: &record.partition_key,
            explicit_hash_key: record.explicit_hash_key.as_deref(),
            arrival: record.arrival_time,
        };
        if let Err(err) = self
            .format
            .write(&meta, &record.item.data(), &mut self.buffer)
        {
            // Only JSON the processor produced goes in; say so rather than drop the item.
            eprintln!(
                "tail: cannot print the item at {}/{}/{}: {err}",
                record.shard_id, record.sequence_number, record.sub_sequence
            );
            self.errors += 1;
            return true;
        }
        self.items += 1;
        self.buffer.len() < FLUSH_BYTES || self.flush().is_ok()
    }

    fn error(&mut self, err: &ConsumeError) {
        self.errors += 1;
        match err {
            ConsumeError::Poison(poison) => eprintln!("tail: {}", poison_line(poison)),
            other => eprintln!("tail: {}", one_line(other)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        let result = stdout.write_all(&self.buffer).and_then(|()| stdout.flush());
        self.buffer.clear();
        result
    }
}

/// One line for an undecodable record: where it is and why.
fn poison_line(poison: &PoisonRecord) -> String {
    format!(
        "undecodable record in shard {} at sequence {} sub-sequence {} (key {:?}, {} bytes, {:?}): {}",
        poison.shard_id,
        poison.sequence_number,
        poison.sub_sequence,
        poison.partition_key.as_ref(),
        poison.data.len(),
        poison.action,
        one_line(&poison.error)
    )
}
