//! `status APP --stream S --checkpoint STORE`: the group as its store sees it.

use std::collections::BTreeMap;

use async_kinesis::checkpoint::{LeaseInfo, Progress};
use futures::StreamExt;
use serde::Serialize;

use crate::checkpoint_spec;
use crate::cli::{Global, StatusArgs};
use crate::error::CliError;
use crate::output::{self, or_dash};

/// Lag probes in flight (each is two calls on its shard).
const PROBES_IN_FLIGHT: usize = 4;

#[derive(Debug, Serialize)]
struct GroupView {
    app: String,
    stream: String,
    workers: Vec<WorkerRow>,
    shards: Vec<ShardRow>,
}

#[derive(Debug, Serialize)]
struct WorkerRow {
    worker: String,
    leases: usize,
}

#[derive(Debug, Serialize)]
struct ShardRow {
    shard_id: String,
    open: Option<bool>,
    owner: Option<String>,
    /// When the owner's lease runs out if not renewed; see [`lease_expiry`].
    lease_expires_in_ms: Option<u64>,
    checkpoint: Option<String>,
    lag_ms: Option<i64>,
    lag_error: Option<String>,
}

/// How long the lease has left, once the store reports it.
///
/// The one place the lease-expiry column is filled from: the store's `LeaseInfo` does not carry
/// the lease's remaining time yet, so nothing is shown rather than a guess.
fn lease_expiry(_lease: &LeaseInfo) -> Option<u64> {
    None
}

fn progress_text(progress: &Progress) -> Option<String> {
    match progress {
        // A recorded start is where reading began, not a checkpoint.
        Progress::None | Progress::Started(_) => None,
        Progress::At(position) => Some(position.to_string()),
        Progress::ShardEnd => Some("SHARD_END".to_owned()),
    }
}

pub(crate) async fn run(global: &Global, args: StatusArgs) -> Result<(), CliError> {
    let client = global.stream_client(&args.stream).await?;
    let summary = client.describe().await?;
    let stream_name = summary.name.clone();
    let timing =
        checkpoint_spec::timing(std::time::Duration::from_secs(60)).map_err(CliError::Usage)?;
    let store = args
        .checkpoint
        .connect(
            &args.app,
            global.aws_options(),
            args.store.dynamodb_endpoint_url.as_deref(),
            timing,
        )
        .await?;
    let workers = store.live_workers(&stream_name).await?;
    let leases = store.list(&stream_name).await?;
    let shards = client.list_shards().await?;
    let open: BTreeMap<&str, bool> = shards
        .iter()
        .map(|s| (s.shard_id.as_str(), s.is_open()))
        .collect();
    let mut by_shard: BTreeMap<String, Option<&LeaseInfo>> = shards
        .iter()
        .map(|s| (s.shard_id.to_string(), None))
        .collect();
    for lease in &leases {
        by_shard.insert(lease.shard_id.to_string(), Some(lease));
    }
    let rows: Vec<ShardRow> = futures::stream::iter(by_shard)
        .map(|(shard_id, lease)| {
            let client = &client;
            let open = open.get(shard_id.as_str()).copied();
            async move {
                let progress = lease.map_or(Progress::None, |l| l.progress.clone());
                // A shard past retention cannot be probed; its checkpoint still shows.
                let lag = match open {
                    Some(_) => client.millis_behind_latest(&shard_id, &progress).await,
                    None => Ok(None),
                };
                let (lag_ms, lag_error) = match lag {
                    Ok(lag) => (lag, None),
                    Err(err) => (None, Some(crate::error::one_line(&err))),
                };
                ShardRow {
                    open,
                    owner: lease
                        .and_then(|l| l.owner.as_ref())
                        .map(ToString::to_string),
                    lease_expires_in_ms: lease.and_then(lease_expiry),
                    checkpoint: progress_text(&progress),
                    lag_ms,
                    lag_error,
                    shard_id,
                }
            }
        })
        .buffered(PROBES_IN_FLIGHT)
        .collect()
        .await;
    let mut counts: BTreeMap<String, usize> = workers.iter().map(|w| (w.to_string(), 0)).collect();
    for owner in rows.iter().filter_map(|r| r.owner.clone()) {
        *counts.entry(owner).or_default() += 1;
    }
    let view = GroupView {
        app: args.app,
        stream: stream_name,
        workers: counts
            .into_iter()
            .map(|(worker, leases)| WorkerRow { worker, leases })
            .collect(),
        shards: rows,
    };
    output::print(global.output, &view, render)
}

fn render(view: &GroupView) -> String {
    let mut workers = output::table(["worker", "leases"]);
    for w in &view.workers {
        workers.add_row([w.worker.clone(), w.leases.to_string()]);
    }
    let mut shards = output::table([
        "shard",
        "state",
        "owner",
        "lease expires",
        "checkpoint",
        "lag",
    ]);
    for s in &view.shards {
        shards.add_row([
            s.shard_id.clone(),
            match s.open {
                Some(true) => "open",
                Some(false) => "closed",
                None => "expired",
            }
            .to_owned(),
            or_dash(s.owner.as_deref()),
            s.lease_expires_in_ms
                .map(|ms| output::duration(std::time::Duration::from_millis(ms)))
                .unwrap_or_default(),
            or_dash(s.checkpoint.as_deref()),
            match (&s.lag_ms, &s.lag_error) {
                (Some(ms), _) => output::duration(std::time::Duration::from_millis(
                    u64::try_from(*ms).unwrap_or(0),
                )),
                (None, Some(err)) => format!("unknown ({err})"),
                (None, None) => "-".to_owned(),
            },
        ]);
    }
    let workers = if view.workers.is_empty() {
        "no live workers".to_owned()
    } else {
        workers.to_string()
    };
    format!(
        "group {} on {}: {} live worker(s)\n{workers}\n{shards}",
        view.app,
        view.stream,
        view.workers.len()
    )
}
