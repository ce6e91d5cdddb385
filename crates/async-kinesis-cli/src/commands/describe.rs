//! `describe STREAM`: the summary and every shard.

use async_kinesis::Shard;
use serde::Serialize;

use super::list::StreamRow;
use crate::cli::{DescribeArgs, Global};
use crate::error::CliError;
use crate::output::{self, bytes, duration, or_dash};

/// One shard of the description.
#[derive(Debug, Serialize)]
struct ShardRow {
    shard_id: String,
    open: bool,
    parent_shard_id: Option<String>,
    adjacent_parent_shard_id: Option<String>,
    starting_hash_key: String,
    ending_hash_key: String,
    key_space_percent: f64,
    starting_sequence_number: String,
    ending_sequence_number: Option<String>,
}

impl ShardRow {
    fn of(shard: &Shard) -> Self {
        Self {
            shard_id: shard.shard_id.to_string(),
            open: shard.is_open(),
            parent_shard_id: shard.parent_shard_id.as_ref().map(String::from),
            adjacent_parent_shard_id: shard.adjacent_parent_shard_id.as_ref().map(String::from),
            starting_hash_key: shard.starting_hash_key.to_string(),
            ending_hash_key: shard.ending_hash_key.to_string(),
            key_space_percent: key_space_percent(shard),
            starting_sequence_number: shard.starting_sequence_number.to_string(),
            ending_sequence_number: shard.ending_sequence_number.as_ref().map(String::from),
        }
    }
}

/// The share of the 2^128 hash keys the shard owns, in percent.
fn key_space_percent(shard: &Shard) -> f64 {
    let width = (shard.ending_hash_key - shard.starting_hash_key) as f64 + 1.0;
    width / 2f64.powi(128) * 100.0
}

#[derive(Debug, Serialize)]
struct Description {
    #[serde(flatten)]
    stream: StreamRow,
    shards: Vec<ShardRow>,
}

pub(crate) async fn run(global: &Global, args: DescribeArgs) -> Result<(), CliError> {
    let client = global.stream_client(&args.stream).await?;
    let summary = client.describe().await?;
    let shards = client.list_shards().await?;
    let description = Description {
        stream: StreamRow::of(&summary),
        shards: shards.iter().map(ShardRow::of).collect(),
    };
    output::print(global.output, &description, |d| {
        let s = &d.stream;
        let mut summary = output::table(["stream", &s.name]);
        for (field, value) in [
            ("arn", s.arn.clone()),
            ("status", s.status.clone()),
            ("mode", s.mode.to_owned()),
            ("open shards", s.open_shards.to_string()),
            (
                "retention",
                duration(std::time::Duration::from_secs(s.retention_hours * 3600)),
            ),
            ("fan-out consumers", or_dash(s.fan_out_consumers)),
            ("max record", bytes(s.max_record_bytes)),
            ("distribution", s.distribution.clone().unwrap_or_default()),
            ("encrypted", s.encrypted.to_string()),
        ] {
            summary.add_row([field.to_owned(), value]);
        }
        let mut table = output::table([
            "shard",
            "state",
            "parent",
            "adjacent parent",
            "hash keys",
            "key space",
            "sequence numbers",
        ]);
        for shard in &d.shards {
            table.add_row([
                shard.shard_id.clone(),
                if shard.open { "open" } else { "closed" }.to_owned(),
                or_dash(shard.parent_shard_id.as_deref()),
                or_dash(shard.adjacent_parent_shard_id.as_deref()),
                format!("{}..{}", shard.starting_hash_key, shard.ending_hash_key),
                format!("{:.2}%", shard.key_space_percent),
                format!(
                    "{}..{}",
                    shard.starting_sequence_number,
                    shard.ending_sequence_number.as_deref().unwrap_or("")
                ),
            ]);
        }
        format!("{summary}\n{table}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_space_shares() {
        let shard = |start, end| Shard {
            shard_id: "s".into(),
            parent_shard_id: None,
            adjacent_parent_shard_id: None,
            starting_hash_key: start,
            ending_hash_key: end,
            starting_sequence_number: "1".into(),
            ending_sequence_number: None,
        };
        assert!((key_space_percent(&shard(0, u128::MAX)) - 100.0).abs() < 1e-9);
        assert!((key_space_percent(&shard(0, u128::MAX / 2)) - 50.0).abs() < 1e-9);
    }
}
