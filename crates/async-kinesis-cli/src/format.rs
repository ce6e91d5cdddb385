//! `-f/--format`: how `tail` prints each item. Pure: writes into a buffer.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::item::Data;

/// Where an item came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta<'a> {
    pub(crate) shard: &'a str,
    pub(crate) seq: &'a str,
    pub(crate) sub: u64,
    pub(crate) key: &'a str,
    pub(crate) explicit_hash_key: Option<&'a str>,
    pub(crate) arrival: Option<SystemTime>,
}

/// A `tail` output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// One JSON object per line: metadata and data.
    Jsonl,
    /// The same object, indented.
    JsonPretty,
    /// The item's bytes, then a newline.
    Raw,
    /// The item's bytes in base64, one per line.
    Base64,
    /// The item's bytes in hex, one per line.
    Hex,
    /// A template, then a newline.
    Template(Vec<Segment>),
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Data,
    Key,
    Seq,
    Sub,
    Shard,
    Ts,
}

/// Parses `-f`.
///
/// # Errors
/// A message naming the unknown placeholder or the accepted names.
pub(crate) fn parse_format(text: &str) -> Result<OutputFormat, String> {
    Ok(match text {
        "jsonl" => OutputFormat::Jsonl,
        "json-pretty" => OutputFormat::JsonPretty,
        "raw" => OutputFormat::Raw,
        "base64" => OutputFormat::Base64,
        "hex" => OutputFormat::Hex,
        template if template.contains('{') => OutputFormat::Template(parse_template(template)?),
        other => {
            return Err(format!(
                "{other:?}: a format is jsonl, json-pretty, raw, base64, hex, or a template \
                 with {{data}} {{key}} {{seq}} {{sub}} {{shard}} {{ts}}"
            ));
        }
    })
}

fn parse_template(text: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                literal.push(c);
            }
            ('\\', Some('n')) => {
                chars.next();
                literal.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                literal.push('\t');
            }
            ('{', _) => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let segment = match name.as_str() {
                    "data" => Segment::Data,
                    "key" => Segment::Key,
                    "seq" => Segment::Seq,
                    "sub" => Segment::Sub,
                    "shard" => Segment::Shard,
                    "ts" => Segment::Ts,
                    other => {
                        return Err(format!(
                            "unknown placeholder {{{other}}}: use {{data}} {{key}} {{seq}} {{sub}} \
                             {{shard}} {{ts}} (and {{{{ }}}} for braces)"
                        ));
                    }
                };
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(segment);
            }
            ('}', _) => return Err("a lone } in the template: write }} for a brace".into()),
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

/// The `jsonl` object. `data` is JSON for JSON items and text, `data_base64` for bytes.
#[derive(Serialize)]
struct JsonLine<'a> {
    shard: &'a str,
    seq: &'a str,
    sub: u64,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit_hash_key: Option<&'a str>,
    ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// The time as RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl OutputFormat {
    /// Appends one item, with its line break, to `out`.
    ///
    /// # Errors
    /// Only if JSON text of the item is not valid JSON, which the processors never yield.
    pub(crate) fn write(
        &self,
        meta: &Meta<'_>,
        data: &Data<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        match self {
            Self::Jsonl | Self::JsonPretty => {
                let text_json;
                let (json, base64) = match data {
                    Data::Json(text) => (Some(text.as_ref().to_owned()), None),
                    Data::Text(text) => {
                        text_json = serde_json::to_string(text.as_ref())?;
                        (Some(text_json), None)
                    }
                    Data::Binary(bytes) => (None, Some(BASE64.encode(bytes))),
                };
                let raw = json.map(RawValue::from_string).transpose()?;
                let line = JsonLine {
                    shard: meta.shard,
                    seq: meta.seq,
                    sub: meta.sub,
                    key: meta.key,
                    explicit_hash_key: meta.explicit_hash_key,
                    ts: meta.arrival.map(rfc3339),
                    data: raw.as_deref(),
                    data_base64: base64,
                };
                if matches!(self, Self::Jsonl) {
                    serde_json::to_writer(&mut *out, &line)?;
                } else {
                    serde_json::to_writer_pretty(&mut *out, &line)?;
                }
            }
            Self::Raw => out.extend_from_slice(data.bytes()),
            Self::Base64 => out.extend_from_slice(BASE64.encode(data.bytes()).as_bytes()),
            Self::Hex => {
                for byte in data.bytes() {
                    out.extend_from_slice(format!("{byte:02x}").as_bytes());
                }
            }
            Self::Template(segments) => {
                for segment in segments {
                    match segment {
                        Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
                        Segment::Data => match data {
                            Data::Binary(bytes) => {
                                out.extend_from_slice(BASE64.encode(bytes).as_bytes());
                            }
                            other => out.extend_from_slice(other.bytes()),
                        },
                        Segment::Key => out.extend_from_slice(meta.key.as_bytes()),
                        Segment::Seq => out.extend_from_slice(meta.seq.as_bytes()),
                        Segment::Sub => out.extend_from_slice(meta.sub.to_string().as_bytes()),
                        Segment::Shard => out.extend_from_slice(meta.shard.as_bytes()),
                        Segment::Ts => {
                            let ts = meta.arrival.map(rfc3339).unwrap_or_default();
                            out.extend_from_slice(ts.as_bytes());
                        }
                    }
                }
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::Duration;

    fn meta() -> Meta<'static> {
        Meta {
            shard: "shardId-000000000001",
            seq: "4959",
            sub: 2,
            key: "k\"1",
            explicit_hash_key: None,
            arrival: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_564_800_123)),
        }
    }

    fn render(format: &str, data: Data<'_>) -> String {
        let mut out = Vec::new();
        parse_format(format)
            .expect("valid format")
            .write(&meta(), &data, &mut out)
            .expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn jsonl_carries_metadata_and_exact_data() {
        let line = render(
            "jsonl",
            Data::Json(Cow::Borrowed("{\"n\": 1180591620717411303424}")),
        );
        assert_eq!(
            line,
            "{\"shard\":\"shardId-000000000001\",\"seq\":\"4959\",\"sub\":2,\"key\":\"k\\\"1\",\
             \"ts\":\"2024-05-01T12:00:00.123Z\",\"data\":{\"n\": 1180591620717411303424}}\n"
        );
        let text = render("jsonl", Data::Text(Cow::Borrowed("a\nb")));
        assert!(text.contains("\"data\":\"a\\nb\""), "{text}");
        let binary = render("jsonl", Data::Binary(Cow::Borrowed(&[0xff, 0])));
        assert!(binary.contains("\"data_base64\":\"/wA=\""), "{binary}");
    }

    #[test]
    fn byte_formats() {
        let data = || Data::Binary(Cow::Borrowed(&[0xde, 0xad]));
        assert_eq!(render("hex", data()), "dead\n");
        assert_eq!(render("base64", data()), "3q0=\n");
        assert_eq!(render("raw", Data::Text(Cow::Borrowed("hi"))), "hi\n");
    }

    #[test]
    fn templates() {
        let out = render(
            "{shard}/{seq}/{sub} {key}\\t{data} {{x}} {ts}",
            Data::Text(Cow::Borrowed("hi")),
        );
        assert_eq!(
            out,
            "shardId-000000000001/4959/2 k\"1\thi {x} 2024-05-01T12:00:00.123Z\n"
        );
        assert!(
            parse_format("{nope}")
                .expect_err("unknown")
                .contains("unknown placeholder {nope}")
        );
        assert!(parse_format("{data} }").is_err());
        assert!(
            parse_format("xml")
                .expect_err("unknown")
                .contains("jsonl, json-pretty")
        );
    }
}
