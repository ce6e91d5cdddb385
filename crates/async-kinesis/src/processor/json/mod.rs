//! JSON items: what each item type holds, and how values stay exactly as written.

mod numbers;
mod read_guard;
mod write_guard;

use super::error::{DecodeError, SerializeError};
use super::serializer::Serializer;
use bytes::Bytes;
use read_guard::GuardedError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// JSON through serde (the Python library's `JsonSerializer`). Writes compact JSON; reads any
/// valid JSON, including the `", "`/`": "` separators of Python's `json` module.
///
/// `T` defaults to [`serde_json::Value`] for untyped items.
///
/// # Numbers come back as written
///
/// Python's `json` writes every float with the 17 significant digits that identify it and
/// every integer with all its digits; reading and writing here keep them exactly, or the item is
/// an error — a number is never changed silently:
///
/// - **Floats** are parsed to the nearest `f64` (serde_json's `float_roundtrip`, always on):
///   every float Python writes, subnormals and `-0.0` included, is the same `f64` here, and what
///   we write Python reads as the same float. Floats are written in their shortest exact form
///   (`1e16` where Python writes `1e+16`: the same number).
/// - **Integers of up to 64 bits** (`i64::MIN ..= u64::MAX`) are read as integers by every item
///   type that holds them.
/// - **Wider integers** (Python writes 2^70 as `1180591620717411303424`) are held exactly by
///   `i128`/`u128` fields (up to their range), by [`serde_json::value::RawValue`] (the text as
///   written), and by `serde_json::Value` / `serde_json::Number` when serde_json's
///   `arbitrary_precision` is on (this crate's feature `json-arbitrary-precision`, see below).
///   Any other item type would get them as a rounded float: that item is a
///   [`DecodeError::WideInteger`] instead, saying which integer and where.
/// - **`-0`** is read as the integer 0, as Python reads it.
/// - **`NaN`, `Infinity`, `-Infinity`**, which Python's `json.dumps` writes for non-finite
///   floats unless `allow_nan=False`, are not JSON and no item type reads them: the item is a
///   [`DecodeError::NonFiniteNumber`]. Writing a non-finite `f64`/`f32`, which serde_json would
///   write as `null`, is a [`SerializeError::NonFiniteFloat`], so the producer hands the item
///   back.
///
/// | item type | 64-bit integers | wider integers | floats |
/// | --- | --- | --- | --- |
/// | `serde_json::Value`, default | exact | error | exact `f64` |
/// | `serde_json::Value`, `json-arbitrary-precision` | exact | exact, any size | exact, text kept as written |
/// | `serde_json::value::RawValue` | text kept | text kept | text kept |
/// | `i64` / `u64` fields | exact, or serde's range error | error | serde's type error |
/// | `i128` / `u128` fields | exact | exact up to 2^127 / 2^128 (else serde's range error) | serde's type error |
/// | `f64` fields | converted as serde does (`n as f64`) | error | exact `f64` |
///
/// An error item comes out of the reader as [`ReadError::Item`](super::ReadError::Item)
/// (the consumer makes it a poison record carrying the raw record); the other items of the
/// record are still read.
///
/// # The feature `json-arbitrary-precision`
///
/// It turns on serde_json's `arbitrary_precision`, and cargo turns a feature on for the whole
/// build: every crate that uses serde_json in the same binary gets it. Then a
/// `serde_json::Number` keeps the text of the number it was read from (`1e+16` stays `1e+16`,
/// and `Value` equality compares that text: read `1.0` and `1.00` are unequal values, compare
/// numbers with `as_f64`/`as_i64`), parsing a `Value` allocates per float, and serde cannot
/// read floats or integers beyond 64 bits inside `#[serde(flatten)]` fields, untagged or
/// internally tagged enums through serde_json (serde_json hands them over as a private map
/// there; 64-bit integers are not affected). What this crate reads and writes
/// does not depend on the feature apart from the table above; check the build you run with
/// [`serde_json_keeps_wide_integers`].
///
/// ```
/// use async_kinesis::processor::{DecodeError, JsonSerializer, Serializer, serde_json_keeps_wide_integers};
/// use bytes::Bytes;
///
/// let value = JsonSerializer::<serde_json::Value>::new();
/// let wide = Bytes::from_static(b"{\"n\": 1180591620717411303424, \"f\": 966.5522268360373}");
/// match value.deserialize(&wide) {
///     Ok(item) => {
///         assert!(serde_json_keeps_wide_integers());
///         assert_eq!(item["n"].to_string(), "1180591620717411303424");
///         assert_eq!(item["f"].as_f64(), Some(966.5522268360373));
///     }
///     Err(DecodeError::WideInteger { digits, offset, .. }) => {
///         assert!(!serde_json_keeps_wide_integers());
///         assert_eq!((digits.as_str(), offset), ("1180591620717411303424", 6));
///     }
///     Err(other) => panic!("{other}"),
/// }
///
/// // An i128 field holds it in any build.
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Counter { n: i128, f: f64 }
/// let serializer: JsonSerializer<Counter> = JsonSerializer::new();
/// let counter = serializer.deserialize(&wide).expect("fits i128");
/// assert_eq!((counter.n, counter.f), (1 << 70, 966.5522268360373));
/// ```
pub struct JsonSerializer<T = serde_json::Value> {
    // fn() -> T: the serializer holds no T, so it is Send + Sync whatever T is.
    _item: PhantomData<fn() -> T>,
}

impl<T> JsonSerializer<T> {
    /// A JSON serializer for items of type `T`.
    pub const fn new() -> Self {
        Self { _item: PhantomData }
    }
}

impl<T> Default for JsonSerializer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerializer<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for JsonSerializer<T> {}

impl<T> fmt::Debug for JsonSerializer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerializer<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serializer for JsonSerializer<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = T;
    fn serialize(&self, item: &T) -> Result<Bytes, SerializeError> {
        let refused = Cell::new(None);
        super::scratch::write_bytes(|buf| {
            let mut json = serde_json::Serializer::new(buf);
            write_guard::serialize_finite(item, &mut json, &refused)
        })
        .map_err(|e| match refused.get() {
            Some(value) => SerializeError::NonFiniteFloat { value },
            None => SerializeError::Json(e),
        })
    }
    fn deserialize(&self, data: &Bytes) -> Result<T, DecodeError> {
        let wide = numbers::integers_read_as_floats(data);
        if wide.is_empty() {
            return serde_json::from_slice(data).map_err(|e| explain(data, e));
        }
        read_guard::from_slice_guarded(data, &wide).map_err(|e| match e {
            GuardedError::Refused(span) => DecodeError::WideInteger {
                digits: String::from_utf8_lossy(&data[span.clone()]).into_owned(),
                offset: span.start,
            },
            GuardedError::Json(e) => explain(data, e),
        })
    }
}

/// Whether `serde_json::Value` keeps integers beyond 64 bits in this build: true when
/// serde_json's `arbitrary_precision` is on, through this crate's feature
/// `json-arbitrary-precision` or any other crate of the build.
pub fn serde_json_keeps_wide_integers() -> bool {
    // Without arbitrary_precision serde_json parses 2^64 into an f64.
    serde_json::from_str::<serde_json::Number>("18446744073709551616").is_ok_and(|n| !n.is_f64())
}

/// serde_json's error, or a clearer one when it stopped at a bare `NaN` / `Infinity`.
pub(super) fn explain(data: &[u8], error: serde_json::Error) -> DecodeError {
    if error.is_syntax()
        && let Some(span) = numbers::first_non_finite_literal(data)
        && let Some(at) = byte_offset(data, error.line(), error.column())
        && (span.start..=span.end).contains(&at)
    {
        return DecodeError::NonFiniteNumber {
            literal: String::from_utf8_lossy(&data[span.clone()]).into_owned(),
            offset: span.start,
        };
    }
    DecodeError::Json(error)
}

/// The byte offset of serde_json's 1-based line and byte column.
fn byte_offset(data: &[u8], line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', data).nth(line - 2)? + 1
    };
    Some(line_start + column.saturating_sub(1))
}

#[cfg(test)]
mod tests;
