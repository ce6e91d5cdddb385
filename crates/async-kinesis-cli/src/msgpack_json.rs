//! Msgpack values to JSON text and back, only where the value survives exactly.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// JSON text for `value`, keeping map order; `None` when JSON cannot hold it exactly (binary,
/// ext, non-text or duplicate map keys, text that is not UTF-8, NaN or infinity).
pub(crate) fn msgpack_to_json(value: &rmpv::Value) -> Option<String> {
    let mut out = String::new();
    write_json(value, &mut out).then_some(out)
}

fn write_json(value: &rmpv::Value, out: &mut String) -> bool {
    use rmpv::Value as M;
    match value {
        M::Nil => out.push_str("null"),
        M::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        M::Integer(i) => out.push_str(&i.to_string()),
        M::F32(f) => return write_float(f64::from(*f), out),
        M::F64(f) => return write_float(*f, out),
        M::String(s) => match s.as_str() {
            Some(text) => out.push_str(&quote(text)),
            None => return false,
        },
        M::Binary(_) | M::Ext(..) => return false,
        M::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(item, out) {
                    return false;
                }
            }
            out.push(']');
        }
        M::Map(entries) => {
            let mut seen = std::collections::HashSet::new();
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                let Some(key) = key.as_str() else {
                    return false;
                };
                if !seen.insert(key) {
                    return false;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&quote(key));
                out.push(':');
                if !write_json(item, out) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    true
}

fn write_float(f: f64, out: &mut String) -> bool {
    // serde_json writes the shortest text that reads back as the same f64.
    match serde_json::Number::from_f64(f) {
        Some(number) => {
            out.push_str(&number.to_string());
            true
        }
        None => false,
    }
}

fn quote(text: &str) -> String {
    // A string always serializes.
    serde_json::to_string(text).unwrap_or_default()
}

/// The msgpack value of JSON text: integers as integers (refused beyond 64 bits, which msgpack
/// cannot hold), other numbers as f64, objects keeping their key order.
///
/// # Errors
/// A message for an integer out of msgpack's range.
pub(crate) fn json_to_msgpack(raw: &RawValue) -> Result<rmpv::Value, String> {
    use rmpv::Value as M;
    let text = raw.get();
    let invalid = |e: serde_json::Error| e.to_string();
    Ok(match text.as_bytes().first() {
        Some(b'{') => {
            let Entries(entries) = serde_json::from_str(text).map_err(invalid)?;
            M::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((M::from(k), json_to_msgpack(&v)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text).map_err(invalid)?;
            M::Array(
                items
                    .iter()
                    .map(|item| json_to_msgpack(item))
                    .collect::<Result<_, _>>()?,
            )
        }
        Some(b'"') => M::from(serde_json::from_str::<String>(text).map_err(invalid)?),
        Some(b't') => M::Boolean(true),
        Some(b'f') => M::Boolean(false),
        Some(b'n') => M::Nil,
        _ if text.contains(['.', 'e', 'E']) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => M::F64(f),
            _ => return Err(format!("number {text} does not fit a 64-bit float")),
        },
        _ => match (text.parse::<i64>(), text.parse::<u64>()) {
            (Ok(i), _) => M::from(i),
            (_, Ok(u)) => M::from(u),
            _ => {
                return Err(format!(
                    "integer {text} does not fit msgpack (-2^63 to 2^64-1)"
                ));
            }
        },
    })
}

/// A JSON object's entries in their written order.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value as M;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn round_trips_keep_values_and_order() {
        let text = r#"{"z":1,"a":[true,null,-9223372036854775808,18446744073709551615,0.1,"é"]}"#;
        let value = json_to_msgpack(&raw(text)).expect("fits");
        assert_eq!(msgpack_to_json(&value).as_deref(), Some(text));
    }

    #[test]
    fn what_does_not_fit_is_refused() {
        assert!(
            json_to_msgpack(&raw("18446744073709551616"))
                .expect_err("big")
                .contains("does not fit")
        );
        assert!(
            json_to_msgpack(&raw("1e400"))
                .expect_err("inf")
                .contains("64-bit float")
        );
        assert_eq!(msgpack_to_json(&M::Binary(vec![1])), None);
        assert_eq!(msgpack_to_json(&M::F64(f64::NAN)), None);
        assert_eq!(msgpack_to_json(&M::Map(vec![(M::from(1), M::Nil)])), None);
        let duplicate = M::Map(vec![(M::from("a"), M::Nil), (M::from("a"), M::Nil)]);
        assert_eq!(msgpack_to_json(&duplicate), None);
        assert_eq!(msgpack_to_json(&M::F64(0.1)).as_deref(), Some("0.1"));
    }
}
