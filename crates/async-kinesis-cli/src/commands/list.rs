//! `list`: every stream of the account and region.

use async_kinesis::{StreamMode, StreamSummary, Streams};
use serde::Serialize;

use crate::cli::Global;
use crate::error::CliError;
use crate::output::{self, bytes, duration, or_dash};

/// One stream in the listing.
#[derive(Debug, Serialize)]
pub(crate) struct StreamRow {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) status: String,
    pub(crate) mode: &'static str,
    pub(crate) open_shards: u32,
    pub(crate) retention_hours: u64,
    pub(crate) fan_out_consumers: Option<u32>,
    pub(crate) max_record_bytes: usize,
    pub(crate) distribution: Option<String>,
    pub(crate) encrypted: bool,
}

impl StreamRow {
    pub(crate) fn of(summary: &StreamSummary) -> Self {
        Self {
            name: summary.name.clone(),
            arn: summary.arn.clone(),
            status: summary.status.to_string(),
            mode: mode_name(summary.mode),
            open_shards: summary.open_shard_count,
            retention_hours: summary.retention.as_secs() / 3600,
            fan_out_consumers: summary.consumer_count,
            max_record_bytes: summary.max_record_bytes,
            distribution: distribution(summary),
            encrypted: summary.encrypted,
        }
    }
}

/// The stream's record distribution strategy as the service names it (`USER_PARTITION_KEY`,
/// also when the service does not report one, or `AUTO`).
///
/// The one place the `distribution` column is filled from.
pub(crate) fn distribution(summary: &StreamSummary) -> Option<String> {
    Some(summary.record_distribution.to_string())
}

pub(crate) fn mode_name(mode: StreamMode) -> &'static str {
    match mode {
        StreamMode::Provisioned => "provisioned",
        StreamMode::OnDemand => "on-demand",
    }
}

pub(crate) async fn run(global: &Global) -> Result<(), CliError> {
    let streams = Streams::connect(&global.connect_options()).await?;
    let rows: Vec<StreamRow> = streams.list().await?.iter().map(StreamRow::of).collect();
    output::print(global.output, &rows, |rows| {
        let mut table = output::table([
            "name",
            "status",
            "mode",
            "open shards",
            "retention",
            "fan-out consumers",
            "max record",
            "distribution",
        ]);
        for row in rows {
            table.add_row([
                row.name.clone(),
                row.status.clone(),
                row.mode.to_owned(),
                row.open_shards.to_string(),
                duration(std::time::Duration::from_secs(row.retention_hours * 3600)),
                or_dash(row.fan_out_consumers),
                bytes(row.max_record_bytes),
                row.distribution.clone().unwrap_or_default(),
            ]);
        }
        if rows.is_empty() {
            "no streams".to_owned()
        } else {
            table.to_string()
        }
    })
}
