//! Shared helpers of the metrics tests: an HTTP GET (testkit's), and a reader of the Prometheus
//! text exposition format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

pub use testkit::http_get as get;

/// Scrapes `/metrics`, checking the status and the content type.
pub async fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Exposition::parse(&body)
}

/// One scrape: every sample line and the `# TYPE` of every metric.
#[derive(Debug, Default)]
pub struct Exposition {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    kinds: HashMap<String, String>,
}

impl Exposition {
    /// Reads the text format; a line it cannot read fails the test.
    pub fn parse(text: &str) -> Self {
        let mut exposition = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                exposition.kinds.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            exposition.samples.push((name.to_owned(), labels, value));
        }
        exposition
    }

    /// The `# TYPE` of `name`.
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.kinds.get(name).map(String::as_str)
    }

    /// Every sample of metric `name` (for a histogram: its `_bucket`, `_sum` and `_count`).
    pub fn series(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let histogram = self.kind(name) == Some("histogram");
        self.samples
            .iter()
            .filter(|(sample, ..)| {
                sample == name
                    || (histogram
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| sample.strip_suffix(suffix) == Some(name)))
            })
            .map(|(_, labels, value)| (labels.clone(), *value))
            .collect()
    }

    /// Values of the samples named exactly `name` whose labels include `filter`.
    pub fn values(&self, name: &str, filter: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(sample, labels, _)| {
                sample == name
                    && filter
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(.., value)| *value)
            .collect()
    }

    /// The sum of [`Exposition::values`].
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.values(name, filter).iter().sum()
    }

    /// The distinct values of label `label` on samples named `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let values: BTreeSet<String> = self
            .samples
            .iter()
            .filter(|(sample, ..)| sample == name)
            .filter_map(|(_, labels, _)| labels.get(label).cloned())
            .collect();
        values.into_iter().collect()
    }
}

/// `a="x",b="y"` (values escape `\`, `"` and newlines).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escaped character").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}
