//! The command line: global options and one struct per command (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::checkpoint_spec::CheckpointSpec;
use crate::format::OutputFormat;
use crate::processor_kind::ProcessorKind;
use crate::rate::Rate;
use crate::time_spec::{StartSpec, UntilSpec};

/// Look at, read, write and reshard AWS Kinesis data streams.
#[derive(Debug, Parser)]
#[command(name = "async-kinesis", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Kinesis endpoint, e.g. a local emulator (default: the region's AWS endpoint).
    #[arg(
        long,
        global = true,
        env = "AWS_ENDPOINT_URL_KINESIS",
        value_name = "URL"
    )]
    pub(crate) endpoint_url: Option<String>,
    /// AWS region (default: from the environment or profile).
    #[arg(long, global = true, env = "AWS_REGION", value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// Named profile of the AWS config files.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// No progress bars or notes on stderr; errors are still reported.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
}

/// How command results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Tables and lines for people.
    Table,
    /// JSON for programs.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every stream of the account and region, with its status, mode and limits.
    List,
    /// One stream: its summary and every shard.
    Describe(DescribeArgs),
    /// Which shard a partition key (or explicit hash key) goes to.
    ShardFor(ShardForArgs),
    /// Read a stream: every shard, children after their parents, KPL aggregates unpacked.
    Tail(TailArgs),
    /// Write records: one per line of stdin or of a file, or DATA.
    Put(PutArgs),
    /// A consumer group as its checkpoint store sees it: workers, leases, checkpoints, lag.
    Status(StatusArgs),
    /// Change a stream's shards and wait until it is ACTIVE again.
    Reshard(ReshardArgs),
    /// Measure the processors, the producer and the consumer: items/s, client CPU per item,
    /// latency, and every item accounted for (on streams it creates and deletes).
    Bench(BenchArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `describe`.
#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// Stream name or ARN.
    pub(crate) stream: String,
}

/// `shard-for`.
#[derive(Debug, Args)]
pub(crate) struct ShardForArgs {
    /// Stream name or ARN.
    pub(crate) stream: String,
    /// Partition keys (1–256 characters, counted as Kinesis does).
    #[arg(required_unless_present = "explicit_hash_key", value_parser = crate::keys::partition_key)]
    pub(crate) keys: Vec<String>,
    /// Route by this hash key (decimal, 0..=2^128-1) instead.
    #[arg(
        long,
        value_name = "HASH_KEY",
        allow_hyphen_values = true,
        value_parser = crate::keys::explicit_hash_key
    )]
    pub(crate) explicit_hash_key: Option<String>,
}

/// `tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Stream name or ARN.
    pub(crate) stream: String,
    /// Where shards without a checkpoint start: trim-horizon, latest, an RFC 3339 time, an age
    /// such as -15m, or seq:N for the record with sequence number N (of one shard, see --shard).
    #[arg(
        long,
        default_value = "trim-horizon",
        allow_hyphen_values = true,
        value_parser = crate::time_spec::parse_start
    )]
    pub(crate) from: StartSpec,
    /// Stop at this time (RFC 3339 or an age such as -5m): later records are not printed, and
    /// the command exits once everything before it was read.
    #[arg(
        long,
        allow_hyphen_values = true,
        value_parser = crate::time_spec::parse_until,
        conflicts_with = "to_end"
    )]
    pub(crate) until: Option<UntilSpec>,
    /// Exit at the end: once every shard was read up to its tip (or its end).
    #[arg(short = 'e', long = "exit")]
    pub(crate) to_end: bool,
    /// Exit after this many items.
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub(crate) count: Option<u64>,
    /// Read only this shard (repeat for more); its children are not followed.
    #[arg(long = "shard", value_name = "SHARD_ID")]
    pub(crate) shards: Vec<String>,
    /// Read over enhanced fan-out as the stream consumer NAME (registered if missing; it
    /// stays registered): records are pushed as they are written instead of polled.
    #[arg(long, value_name = "NAME")]
    pub(crate) efo: Option<String>,
    /// How records are decoded.
    #[arg(short, long, value_enum, default_value_t = ProcessorKind::Raw)]
    pub(crate) processor: ProcessorKind,
    /// How items are printed: jsonl (with metadata), json-pretty, raw, base64, hex, or a
    /// template with {data} {key} {seq} {sub} {shard} {ts} (and \n, \t, {{, }}).
    #[arg(short, long, default_value = "jsonl", value_parser = crate::format::parse_format)]
    pub(crate) format: OutputFormat,
    #[command(flatten)]
    pub(crate) group: GroupArgs,
    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,
}

/// Serving metrics while a command runs (`tail`, `put`).
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Serve Prometheus metrics on http://HOST:PORT/metrics while the command runs (port 0
    /// picks a free port; the address is printed on stderr).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) metrics_addr: Option<String>,
}

/// Consumer-group options of `tail`.
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    /// Resume from and write checkpoints to a shared store: redis://HOST:PORT, rediss://…, or
    /// dynamodb:TABLE. Needs --app.
    #[arg(long, value_name = "STORE", value_parser = crate::checkpoint_spec::parse, requires = "app")]
    pub(crate) checkpoint: Option<CheckpointSpec>,
    /// The application (group) name in the checkpoint store.
    #[arg(long, value_name = "NAME", requires = "checkpoint")]
    pub(crate) app: Option<String>,
    /// A lease not renewed for this long may be taken over by another member (heartbeats every
    /// quarter of it).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) session_timeout: std::time::Duration,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// Options of the checkpoint store connection.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// DynamoDB endpoint for a dynamodb: store, e.g. a local emulator.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB", value_name = "URL")]
    pub(crate) dynamodb_endpoint_url: Option<String>,
}

/// `put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// Stream name or ARN.
    pub(crate) stream: String,
    /// One record's data; without it, one record per line of stdin (or of --file).
    #[arg(conflicts_with = "file")]
    pub(crate) data: Option<String>,
    /// Read records from this file, one per line (shows a progress bar).
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Partition key of every record (default: a random key per record).
    #[arg(short = 'k', long = "key", value_parser = crate::keys::partition_key, conflicts_with = "key_field")]
    pub(crate) key: Option<String>,
    /// Take each record's partition key from this field of its JSON line, e.g. customer.id.
    #[arg(long, value_name = "JSON.PATH", value_parser = crate::key_field::KeyField::parse)]
    pub(crate) key_field: Option<crate::key_field::KeyField>,
    /// Route every record by this hash key (decimal, 0..=2^128-1); needs -k or --key-field.
    #[arg(
        long,
        value_name = "HASH_KEY",
        allow_hyphen_values = true,
        value_parser = crate::keys::explicit_hash_key
    )]
    pub(crate) explicit_hash_key: Option<String>,
    /// How records are encoded.
    #[arg(short, long, value_enum, default_value_t = ProcessorKind::Raw)]
    pub(crate) processor: ProcessorKind,
    /// At most this many records per second, e.g. 100/s.
    #[arg(long, value_name = "N/s", value_parser = crate::rate::Rate::parse)]
    pub(crate) rate: Option<Rate>,
    /// Create the stream if it is missing.
    #[arg(long)]
    pub(crate) create: bool,
    /// Shards of a stream created by --create (default 1).
    #[arg(long, requires = "create", conflicts_with = "on_demand")]
    pub(crate) shards: Option<u32>,
    /// Create an on-demand stream with --create.
    #[arg(long, requires = "create")]
    pub(crate) on_demand: bool,
    #[command(flatten)]
    pub(crate) metrics: MetricsArgs,
}

/// `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The application (group) name.
    pub(crate) app: String,
    /// Stream name or ARN.
    #[arg(long)]
    pub(crate) stream: String,
    /// The group's store: redis://HOST:PORT, rediss://…, or dynamodb:TABLE.
    #[arg(long, value_name = "STORE", value_parser = crate::checkpoint_spec::parse)]
    pub(crate) checkpoint: CheckpointSpec,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// `reshard`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).args(["to", "split", "merge"]))]
pub(crate) struct ReshardArgs {
    /// Stream name or ARN.
    pub(crate) stream: String,
    /// A new number of open shards (uniform scaling).
    #[arg(long, value_name = "N")]
    pub(crate) to: Option<u32>,
    /// Split this shard into two halves of its hash key range.
    #[arg(long, value_name = "SHARD_ID")]
    pub(crate) split: Option<String>,
    /// Merge these two adjacent shards.
    #[arg(long, num_args = 2, value_names = ["SHARD_A", "SHARD_B"])]
    pub(crate) merge: Option<Vec<String>>,
    /// How long to wait for ACTIVE, e.g. 2m.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) timeout: std::time::Duration,
}

/// `bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// What to measure: produce (put, then read back untimed to count every item), consume
    /// (write untimed, then read), roundtrip (put and read at once: end-to-end latency).
    #[arg(value_enum, default_values_t = [BenchMode::Produce, BenchMode::Consume])]
    pub(crate) modes: Vec<BenchMode>,
    /// Processors to measure, comma-separated: raw, string, json, jsonline, jsonlist, msgpack,
    /// kpljson, kplstring, or all.
    #[arg(long, value_delimiter = ',', default_value = "json,kpljson,msgpack")]
    pub(crate) processors: Vec<String>,
    /// Items per run.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) records: u64,
    /// Bytes of each item (its JSON text; each carries a numeric id).
    #[arg(long, default_value_t = 1_000, value_name = "BYTES")]
    pub(crate) record_size: usize,
    /// Shards of each bench stream.
    #[arg(long, default_value_t = 1)]
    pub(crate) shards: u32,
    /// Runs per processor and mode (each on a fresh stream).
    #[arg(long, default_value_t = 1)]
    pub(crate) iterations: u32,
    /// The processors only, in this process: serialize + aggregate, then read; no network.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the results as a markdown table.
    #[arg(long, conflicts_with = "json")]
    pub(crate) markdown: bool,
    /// Print the results as JSON (same as --output json).
    #[arg(long)]
    pub(crate) json: bool,
    /// Run roundtrip a second time with the consumer over enhanced fan-out, as the stream
    /// consumer NAME (registered on the bench stream): put → receive latency of fan-out next
    /// to polling's, in the same run.
    #[arg(long, value_name = "NAME")]
    pub(crate) efo: Option<String>,
    /// Put at most this many items per second (all shards together), so end-to-end latency is
    /// the pipeline's, not a backlog's (default: as fast as the endpoint takes them).
    #[arg(long, value_name = "ITEMS_PER_SEC")]
    pub(crate) put_rate: Option<u32>,
}

/// A `bench` measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BenchMode {
    /// The producer: put every item and await its receipt.
    Produce,
    /// The consumer: read every item of a stream written beforehand.
    Consume,
    /// Producer and consumer at once: put → receive latency.
    Roundtrip,
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}
