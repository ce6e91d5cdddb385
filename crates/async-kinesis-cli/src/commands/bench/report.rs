//! One row per run, and how rows are printed: a table, markdown or JSON. Pure: rows in, text out.

use serde::Serialize;

use super::latency::Percentiles;
use super::tally::Accounting;
use crate::cli::BenchMode;

/// Below this share of one core the client was mostly waiting: the endpoint set the pace.
const WAITING_SHARE: f64 = 0.5;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) processor: &'static str,
    pub(crate) phase: BenchMode,
    pub(crate) iteration: u32,
    /// Shards of the bench stream; `None` in a dry run.
    pub(crate) shards: Option<u32>,
    pub(crate) items: u64,
    /// When the measured phase started (seconds since the Unix epoch).
    pub(crate) started_unix_s: f64,
    pub(crate) seconds: f64,
    pub(crate) items_per_sec: f64,
    /// Item bytes (the JSON text of each item) per second, in MB (10^6 bytes).
    pub(crate) user_mb_per_sec: f64,
    /// Kinesis records written or read.
    pub(crate) kinesis_records: u64,
    /// Kinesis bytes (record data plus partition keys) per second, in MB.
    pub(crate) kinesis_mb_per_sec: f64,
    /// Client CPU time (user + system, whole process) per item.
    pub(crate) cpu_us_per_item: f64,
    /// The floor of the phase per item, measured in the same process.
    pub(crate) floor_us_per_item: f64,
    /// Client CPU seconds per wall second: 1.0 is one core busy all the time.
    pub(crate) client_cores: f64,
    pub(crate) peak_rss_mib: f64,
    /// From `put` to its receipt.
    pub(crate) put_latency: Option<Percentiles>,
    /// From `put` to the consumer handing the item out.
    pub(crate) end_to_end_latency: Option<Percentiles>,
    pub(crate) throttles: u64,
    pub(crate) retries: u64,
    /// Items whose receipt was an error, or error items of the consumer.
    pub(crate) failed: u64,
    #[serde(flatten)]
    pub(crate) accounting: Accounting,
    /// Why the items/s figure is not the client's (e.g. the endpoint set the pace).
    pub(crate) note: Option<String>,
}

impl Row {
    /// Client CPU per item over the floor.
    pub(crate) fn over_floor(&self) -> f64 {
        if self.floor_us_per_item > 0.0 {
            self.cpu_us_per_item / self.floor_us_per_item
        } else {
            0.0
        }
    }
}

/// The note of a networked run: throttling, or a client that mostly waited.
pub(crate) fn bottleneck_note(throttles: u64, client_cores: f64) -> Option<String> {
    if throttles > 0 {
        Some(format!(
            "throttled {throttles} time(s): the endpoint's limits set the pace, compare CPU per item"
        ))
    } else if client_cores < WAITING_SHARE {
        Some(format!(
            "endpoint-bound: the client was busy {:.0}% of one core, so items/s is the endpoint's pace; compare CPU per item",
            client_cores * 100.0
        ))
    } else {
        None
    }
}

fn phase_name(phase: BenchMode) -> &'static str {
    match phase {
        BenchMode::Produce => "produce",
        BenchMode::Consume => "consume",
        BenchMode::Roundtrip => "roundtrip",
    }
}

fn latency(p: Option<Percentiles>) -> String {
    p.map_or_else(
        || "-".to_owned(),
        |p| format!("{:.1}/{:.1}/{:.1}", p.p50_ms, p.p95_ms, p.p99_ms),
    )
}

const HEADER: [&str; 17] = [
    "processor",
    "phase",
    "items/s",
    "MB/s user",
    "MB/s Kinesis",
    "CPU µs/item",
    "floor µs",
    "× floor",
    "cores",
    "peak RSS MiB",
    "put ms p50/95/99",
    "e2e ms p50/95/99",
    "throttles",
    "retries",
    "failed",
    "lost",
    "dup",
];

fn cells(row: &Row) -> [String; 17] {
    [
        row.processor.to_owned(),
        phase_name(row.phase).to_owned(),
        format!("{:.0}", row.items_per_sec),
        format!("{:.2}", row.user_mb_per_sec),
        format!("{:.2}", row.kinesis_mb_per_sec),
        format!("{:.1}", row.cpu_us_per_item),
        format!("{:.1}", row.floor_us_per_item),
        format!("{:.1}", row.over_floor()),
        format!("{:.2}", row.client_cores),
        format!("{:.0}", row.peak_rss_mib),
        latency(row.put_latency),
        latency(row.end_to_end_latency),
        row.throttles.to_string(),
        row.retries.to_string(),
        row.failed.to_string(),
        row.accounting.lost.to_string(),
        row.accounting.duplicates.to_string(),
    ]
}

/// The rows as a table for people, each note under it.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut table = crate::output::table(HEADER);
    for row in rows {
        table.add_row(cells(row));
    }
    let mut text = table.to_string();
    push_notes(rows, &mut text);
    text
}

/// The rows as a markdown table, each note under it.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut text = format!("| {} |\n", HEADER.join(" | "));
    text.push_str("| --- | --- |");
    text.push_str(&" ---: |".repeat(HEADER.len() - 2));
    text.push('\n');
    for row in rows {
        text.push_str(&format!("| {} |\n", cells(row).join(" | ")));
    }
    push_notes(rows, &mut text);
    text
}

fn push_notes(rows: &[Row], text: &mut String) {
    for row in rows {
        if let Some(note) = &row.note {
            text.push_str(&format!(
                "\n{} {} (run {}): {note}",
                row.processor,
                phase_name(row.phase),
                row.iteration
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(note: Option<String>) -> Row {
        Row {
            processor: "json",
            phase: BenchMode::Produce,
            iteration: 1,
            shards: Some(1),
            items: 1_000,
            started_unix_s: 0.0,
            seconds: 0.5,
            items_per_sec: 2_000.0,
            user_mb_per_sec: 2.0,
            kinesis_records: 1_000,
            kinesis_mb_per_sec: 2.1,
            cpu_us_per_item: 6.0,
            floor_us_per_item: 2.0,
            client_cores: 0.9,
            peak_rss_mib: 30.0,
            put_latency: Some(Percentiles {
                p50_ms: 1.0,
                p95_ms: 2.0,
                p99_ms: 3.0,
            }),
            end_to_end_latency: None,
            throttles: 0,
            retries: 4,
            failed: 0,
            accounting: Accounting {
                received: 1_000,
                ..Accounting::default()
            },
            note,
        }
    }

    #[test]
    fn the_note_names_throttling_or_a_waiting_client() {
        assert!(
            bottleneck_note(3, 0.9)
                .expect("note")
                .starts_with("throttled 3")
        );
        assert!(
            bottleneck_note(0, 0.2)
                .expect("note")
                .contains("busy 20% of one core")
        );
        assert_eq!(bottleneck_note(0, 0.8), None);
    }

    #[test]
    fn markdown_has_a_header_a_row_and_the_notes() {
        let text = markdown(&[row(None), row(Some("endpoint-bound".into()))]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("| processor | phase | items/s |"));
        assert_eq!(lines[1].matches('|').count(), lines[0].matches('|').count());
        assert!(lines[2].contains("| json | produce | 2000 |"));
        assert!(lines[2].contains("| 3.0 |"), "× floor: {}", lines[2]);
        assert!(lines[2].contains("| 1.0/2.0/3.0 | - |"));
        assert!(text.ends_with("json produce (run 1): endpoint-bound"));
    }

    #[test]
    fn the_table_shows_every_row() {
        let text = table(&[row(None)]);
        assert!(text.contains("json") && text.contains("2000") && text.contains("1.0/2.0/3.0"));
    }
}
