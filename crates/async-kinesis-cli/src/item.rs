//! Items as the tool shows them (`tail`) and makes them from input lines (`put`).
//!
//! Values are never changed on the way: JSON items keep their exact text; msgpack items are
//! shown as JSON only where JSON holds them exactly, otherwise as their msgpack bytes.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::msgpack_json::{json_to_msgpack, msgpack_to_json};

/// An item's content, for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data<'a> {
    /// JSON text (printed as JSON in `jsonl`).
    Json(Cow<'a, str>),
    /// Text (a JSON string in `jsonl`).
    Text(Cow<'a, str>),
    /// Bytes that are not text (base64 in `jsonl`).
    Binary(Cow<'a, [u8]>),
}

impl Data<'_> {
    /// The bytes `-f raw`, `base64` and `hex` print.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Json(text) | Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

/// A decoded item the tool can print.
pub(crate) trait ItemView {
    /// The item's content.
    fn data(&self) -> Data<'_>;
}

impl ItemView for Bytes {
    fn data(&self) -> Data<'_> {
        match std::str::from_utf8(self) {
            Ok(text) => Data::Text(Cow::Borrowed(text)),
            Err(_) => Data::Binary(Cow::Borrowed(self)),
        }
    }
}

impl ItemView for String {
    fn data(&self) -> Data<'_> {
        Data::Text(Cow::Borrowed(self))
    }
}

impl ItemView for Box<RawValue> {
    fn data(&self) -> Data<'_> {
        Data::Json(Cow::Borrowed(self.get()))
    }
}

impl ItemView for Vec<Box<RawValue>> {
    fn data(&self) -> Data<'_> {
        let items: Vec<&str> = self.iter().map(|item| item.get()).collect();
        Data::Json(Cow::Owned(format!("[{}]", items.join(","))))
    }
}

impl ItemView for rmpv::Value {
    fn data(&self) -> Data<'_> {
        match msgpack_to_json(self) {
            Some(json) => Data::Json(Cow::Owned(json)),
            None => {
                let mut bytes = Vec::new();
                // Writing into a Vec cannot fail.
                let _ = rmpv::encode::write_value(&mut bytes, self);
                Data::Binary(Cow::Owned(bytes))
            }
        }
    }
}

/// An item made from one input line.
pub(crate) trait FromLine: Sized {
    /// The item of `line` (without its line break).
    ///
    /// # Errors
    /// Why the line is not an item of this processor.
    fn from_line(line: &[u8]) -> Result<Self, String>;
}

/// The line as text, for the processors that take text.
fn text(line: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(line).map_err(|e| format!("not UTF-8 text: {e}"))
}

impl FromLine for Bytes {
    fn from_line(line: &[u8]) -> Result<Self, String> {
        Ok(Bytes::copy_from_slice(line))
    }
}

impl FromLine for String {
    fn from_line(line: &[u8]) -> Result<Self, String> {
        text(line).map(str::to_owned)
    }
}

impl FromLine for Box<RawValue> {
    fn from_line(line: &[u8]) -> Result<Self, String> {
        serde_json::from_str(text(line)?).map_err(|e| format!("not valid JSON: {e}"))
    }
}

impl FromLine for rmpv::Value {
    fn from_line(line: &[u8]) -> Result<Self, String> {
        let raw: Box<RawValue> =
            serde_json::from_str(text(line)?).map_err(|e| format!("not valid JSON: {e}"))?;
        json_to_msgpack(&raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_items_keep_their_text() {
        let item = Box::<RawValue>::from_line(br#"{"n": 1180591620717411303424, "f": 0.1}"#)
            .expect("valid");
        assert_eq!(
            item.data(),
            Data::Json(Cow::Borrowed(r#"{"n": 1180591620717411303424, "f": 0.1}"#))
        );
        assert!(
            Box::<RawValue>::from_line(b"{nope")
                .expect_err("bad")
                .contains("not valid JSON")
        );
    }

    #[test]
    fn text_processors_need_utf8() {
        assert!(
            String::from_line(&[0xff])
                .expect_err("not utf-8")
                .contains("not UTF-8")
        );
        assert_eq!(Bytes::from_line(&[0xff]), Ok(Bytes::from_static(&[0xff])));
    }

    #[test]
    fn bytes_are_text_when_they_can_be() {
        assert_eq!(
            Bytes::from_static(b"hi").data(),
            Data::Text(Cow::Borrowed("hi"))
        );
        let binary = Bytes::from_static(&[0xff, 0x00]);
        assert_eq!(binary.data().bytes(), &[0xff, 0x00]);
        assert!(matches!(binary.data(), Data::Binary(_)));
    }

    #[test]
    fn lists_print_as_arrays() {
        let items: Vec<Box<RawValue>> = vec![
            RawValue::from_string("1".into()).expect("json"),
            RawValue::from_string("{\"a\":2}".into()).expect("json"),
        ];
        assert_eq!(items.data(), Data::Json(Cow::Borrowed("[1,{\"a\":2}]")));
    }
}
