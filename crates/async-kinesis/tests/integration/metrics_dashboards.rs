//! The Grafana dashboard and the Prometheus alert rules of `dashboards/` use only metrics and
//! labels that exist (a renamed metric would leave a panel or an alert silently empty).

use crate::metrics_docs::repository_file;

use std::collections::BTreeSet;

use async_kinesis::metrics::{MetricKind, find};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// Metric names and label names a PromQL expression uses (histogram series suffixes removed);
/// function names, keywords and string contents are left out.
fn promql_references(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut in_braces = false;
    let mut in_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            // Skip a string literal (label values, regexes).
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '$' {
            // A Grafana variable ($stream, $__rate_interval).
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if c == '{' {
            in_braces = true;
        } else if c == '}' {
            in_braces = false;
        } else if c == ')' {
            in_grouping = false;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if in_braces || in_grouping {
                labels.insert(word);
            } else if matches!(word.as_str(), "by" | "without" | "on" | "ignoring") {
                in_grouping = next == Some(&'(');
            } else if next == Some(&'(') {
                // a function or aggregation
            } else if word.contains('_') && !matches!(word.as_str(), "group_left" | "group_right") {
                metrics.insert(word);
            }
            continue;
        }
        // Durations and numbers: 5m, 0.95, 1e3.
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    (metrics, labels)
}

/// Checks that an expression's metrics exist and its labels belong to one of them.
fn check_expression(expr: &str, place: &str) -> BTreeSet<String> {
    let (metrics, labels) = promql_references(expr);
    assert!(!metrics.is_empty(), "{place}: no metric in {expr}");
    // Labels Prometheus adds to every scraped series.
    let mut known_labels: BTreeSet<&str> = BTreeSet::from(["instance", "job"]);
    for metric in &metrics {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                metric
                    .strip_suffix(suffix)
                    .filter(|base| find(base).is_some_and(|m| m.kind == MetricKind::Histogram))
            })
            .unwrap_or(metric);
        let info =
            find(base).unwrap_or_else(|| panic!("{place}: {metric} does not exist ({expr})"));
        known_labels.extend(info.labels);
        if metric.ends_with("_bucket") {
            known_labels.insert("le");
        }
    }
    for label in &labels {
        assert!(
            known_labels.contains(label.as_str()),
            "{place}: label {label} is not a label of {metrics:?} ({expr})"
        );
    }
    metrics
}

#[test]
fn the_expression_reader_finds_metrics_and_labels() {
    let (metrics, labels) = promql_references(
        r#"histogram_quantile(0.99, sum by (le, stream_name) (rate(producer_put_latency_seconds_bucket{stream_name=~"$stream", shard_id!="a"}[$__rate_interval]))) > 1e3"#,
    );
    assert_eq!(
        metrics,
        BTreeSet::from(["producer_put_latency_seconds_bucket".to_owned()])
    );
    assert_eq!(
        labels,
        BTreeSet::from(["le", "shard_id", "stream_name"].map(str::to_owned))
    );
}

#[test]
fn the_dashboard_uses_only_existing_metrics() {
    let dashboard: Value =
        serde_json::from_str(&repository_file("dashboards/async-kinesis.json")).expect("JSON");
    assert!(dashboard["title"].is_string() && dashboard["panels"].is_array());
    // Panel queries (`expr`) anywhere, and the queries of query variables.
    let mut expressions = Vec::new();
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        ("expr", Some(expr)) => out.push(expr.to_owned()),
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard["panels"], &mut expressions);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("template variables");
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        let query = variable["query"]
            .as_str()
            .expect("a query variable's query");
        expressions.push(query.to_owned());
    }
    let mut used = BTreeSet::new();
    for expr in expressions
        .iter()
        .filter(|e| !e.starts_with("label_values"))
    {
        used.extend(check_expression(expr, "dashboard"));
    }
    for expr in expressions.iter().filter(|e| e.starts_with("label_values")) {
        // label_values(metric, label): a template variable.
        let inner = expr
            .trim_start_matches("label_values(")
            .trim_end_matches(')');
        let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
        let (metric, label) = (metric.trim(), label.trim());
        let metric = metric.split('{').next().unwrap_or(metric);
        let info = find(metric).unwrap_or_else(|| panic!("variable on unknown {metric}"));
        assert!(
            info.labels.contains(&label),
            "{metric} has no label {label}"
        );
    }
    assert!(
        used.len() >= 20,
        "the dashboard shows most metrics: {used:?}"
    );
}

#[test]
fn the_alert_rules_use_only_existing_metrics_and_cover_lag_errors_leases_and_throttling() {
    let docs = YamlLoader::load_from_str(&repository_file("dashboards/alerts.yml")).expect("YAML");
    let groups = docs[0]["groups"].as_vec().expect("groups");
    let mut used = BTreeSet::new();
    let mut alerts = Vec::new();
    for group in groups {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("an alerting rule");
            let expr = rule["expr"].as_str().expect("expr");
            assert!(rule["for"].as_str().is_some(), "{name}: for");
            assert!(
                rule["labels"]["severity"].as_str().is_some(),
                "{name}: severity"
            );
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{name}: summary"
            );
            assert!(!matches!(rule["expr"], Yaml::BadValue));
            used.extend(check_expression(expr, name));
            alerts.push(name.to_owned());
        }
    }
    for needed in [
        "consumer_iterator_age_milliseconds",
        "consumer_errors_total",
        "producer_errors_total",
        "consumer_leases_lost_total",
        "producer_throttles_total",
    ] {
        assert!(used.contains(needed), "no alert on {needed}: {alerts:?}");
    }
}
