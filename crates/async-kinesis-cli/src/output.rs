//! Printing results: tables for people, JSON for programs, and formatting helpers.

use std::time::Duration;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::cli::Output;
use crate::error::CliError;

/// A table with the house style.
pub(crate) fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Prints `value` as JSON, or runs `people` for a table.
pub(crate) fn print<T: Serialize>(
    output: Output,
    value: &T,
    people: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?,
        Output::Table => people(value),
    };
    println!("{text}");
    Ok(())
}

/// A duration for people: `24h`, `7d`, `1.5s`, `250ms`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        format!("{}h", secs / 3_600)
    } else if secs >= 60 {
        humantime::format_duration(Duration::from_secs(secs)).to_string()
    } else if secs >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Bytes for people: `1 MiB`, `512 KiB`, `100 B`.
pub(crate) fn bytes(n: usize) -> String {
    const KIB: usize = 1024;
    if n >= KIB * KIB && n.is_multiple_of(KIB * KIB) {
        format!("{} MiB", n / (KIB * KIB))
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

/// `-` for nothing.
pub(crate) fn or_dash(text: Option<impl ToString>) -> String {
    text.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_units() {
        assert_eq!(duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(duration(Duration::from_secs(24 * 3600 * 7)), "7d");
        assert_eq!(duration(Duration::from_secs(3_600 * 25)), "25h");
        assert_eq!(duration(Duration::from_millis(1_500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(bytes(1024 * 1024), "1 MiB");
        assert_eq!(bytes(10 * 1024 * 1024), "10 MiB");
        assert_eq!(bytes(512 * 1024), "512 KiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(or_dash(None::<&str>), "-");
    }
}
