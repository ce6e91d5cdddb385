//! The metrics documentation agrees with the code: the table of `docs/metrics.md` lists exactly
//! the catalog's metrics, with their type, labels, unit and meaning.

use std::path::PathBuf;

use async_kinesis::metrics::{MetricUnit, catalog};

/// A file of the repository, by its path from the root.
pub fn repository_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn unit_name(unit: MetricUnit) -> &'static str {
    match unit {
        MetricUnit::Count => "count",
        MetricUnit::Bytes => "bytes",
        MetricUnit::Seconds => "seconds",
        MetricUnit::Milliseconds => "milliseconds",
        other => panic!("no table name for {other:?}"),
    }
}

/// The rows of the metrics table: name, type, labels, unit, meaning.
fn table_rows(doc: &str) -> Vec<[String; 5]> {
    let start = doc
        .find("<!-- metrics-table")
        .expect("the metrics table marker");
    let end = doc.find("<!-- end of metrics-table").expect("its end");
    doc[start..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            assert_eq!(cells.len(), 5, "{line}");
            let name = cells[0].trim_matches('`').to_owned();
            [
                name,
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[4].clone(),
            ]
        })
        .collect()
}

#[test]
fn the_metrics_table_lists_exactly_the_catalog() {
    let rows = table_rows(&repository_file("docs/metrics.md"));
    let table: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let code: Vec<&str> = catalog().iter().map(|m| m.name).collect();
    assert_eq!(table, code, "same metrics, same order");
    for (row, metric) in rows.iter().zip(catalog()) {
        let labels = if metric.labels.is_empty() {
            "—".to_owned()
        } else {
            metric.labels.join(", ")
        };
        assert_eq!(
            row,
            &[
                metric.name.to_owned(),
                metric.kind.as_str().to_owned(),
                labels,
                unit_name(metric.unit).to_owned(),
                metric.meaning.to_owned(),
            ],
            "the row of {}",
            metric.name
        );
    }
}
