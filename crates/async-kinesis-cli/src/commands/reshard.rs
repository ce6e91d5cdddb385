//! `reshard STREAM --to N | --split SHARD | --merge A B`, then wait for ACTIVE.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Global, ReshardArgs};
use crate::error::CliError;
use crate::output;

pub(crate) async fn run(global: &Global, args: ReshardArgs) -> Result<(), CliError> {
    let client = global.stream_client(&args.stream).await?;
    // An unknown stream is named before anything else is checked.
    client.describe().await?;
    let what = match (&args.to, &args.split, &args.merge) {
        (Some(n), _, _) => {
            client.update_shard_count(*n).await?;
            format!("scaling {} to {n} shards", args.stream)
        }
        (_, Some(shard), _) => {
            client.split_shard(shard).await?;
            format!("splitting {shard} of {}", args.stream)
        }
        (_, _, Some(pair)) => match pair.as_slice() {
            [a, b] => {
                client.merge_shards(a, b).await?;
                format!("merging {a} and {b} of {}", args.stream)
            }
            _ => return Err(CliError::Usage("--merge takes two shard ids".into())),
        },
        // clap requires one of the three.
        _ => return Err(CliError::Usage("give --to, --split or --merge".into())),
    };
    let spinner = if global.chatty() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(format!("{what}: waiting for ACTIVE"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    // The service answers once the stream is UPDATING; it is ACTIVE again when the change is done.
    let summary = client.wait_until_active(args.timeout).await;
    spinner.finish_and_clear();
    let summary = summary?;
    let shards = client.list_shards().await?;
    let open: Vec<_> = shards.iter().filter(|s| s.is_open()).collect();
    #[derive(serde::Serialize)]
    struct Done<'a> {
        stream: &'a str,
        status: String,
        open_shards: Vec<&'a str>,
    }
    let done = Done {
        stream: &summary.name,
        status: summary.status.to_string(),
        open_shards: open.iter().map(|s| s.shard_id.as_str()).collect(),
    };
    output::print(global.output, &done, |d| {
        format!(
            "{} is {} with {} open shards: {}",
            d.stream,
            d.status,
            d.open_shards.len(),
            d.open_shards.join(", ")
        )
    })
}
