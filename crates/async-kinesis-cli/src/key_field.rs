//! `--key-field JSON.PATH`: a record's partition key taken from a field of its JSON line.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// A dotted path into a JSON object, e.g. `customer.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyField {
    path: Vec<String>,
}

impl KeyField {
    /// Parses `a.b.c` (no empty parts).
    ///
    /// # Errors
    /// A message when a part is empty.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let path: Vec<String> = text.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?}: a JSON path is field names joined by dots, e.g. customer.id"
            ));
        }
        Ok(Self { path })
    }

    /// The key in `line`: a string field as is; a number or boolean as written.
    ///
    /// # Errors
    /// Why there is no key: not JSON, not an object, the field missing, or a null, object or
    /// array value.
    pub(crate) fn key_of(&self, line: &str) -> Result<String, String> {
        let mut value: Box<RawValue> = serde_json::from_str(line)
            .map_err(|e| format!("not JSON ({e}), so it has no key field"))?;
        for (depth, name) in self.path.iter().enumerate() {
            let mut object: BTreeMap<String, Box<RawValue>> = serde_json::from_str(value.get())
                .map_err(|_| format!("{} is not a JSON object", self.prefix(depth)))?;
            value = object
                .remove(name)
                .ok_or_else(|| format!("key field {} is missing", self.prefix(depth + 1)))?;
        }
        let text = value.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text).map_err(|e| e.to_string()),
            Some(b'{' | b'[') | Some(b'n') => Err(format!(
                "key field {} is {}, not a string or number",
                self.prefix(self.path.len()),
                text
            )),
            _ => Ok(text.to_owned()),
        }
    }

    fn prefix(&self, depth: usize) -> String {
        if depth == 0 {
            "the line".to_owned()
        } else {
            self.path[..depth].join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_fields() {
        let field = KeyField::parse("customer.id").expect("valid");
        assert_eq!(
            field.key_of(r#"{"customer": {"id": "c-7"}}"#),
            Ok("c-7".into())
        );
        // Numbers keep their written form, even beyond 64 bits.
        assert_eq!(
            field.key_of(r#"{"customer":{"id":1180591620717411303424}}"#),
            Ok("1180591620717411303424".into())
        );
        assert!(
            field
                .key_of(r#"{"customer":{}}"#)
                .expect_err("missing")
                .contains("customer.id is missing")
        );
        assert!(
            field
                .key_of(r#"{"customer":3}"#)
                .expect_err("not object")
                .contains("customer is not")
        );
        assert!(
            field
                .key_of(r#"{"customer":{"id":null}}"#)
                .expect_err("null")
                .contains("not a string")
        );
        assert!(
            field
                .key_of("nope")
                .expect_err("not json")
                .contains("not JSON")
        );
        assert!(KeyField::parse("a..b").is_err());
    }
}
