//! Errors of the processors: serializing, pushing into an aggregator, reading a record.

use bytes::Bytes;
use std::fmt;

/// Boxed error of a user-supplied serializer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An item could not be serialized. The caller still owns the item (serializers borrow it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerializeError {
    /// serde_json refused the item (e.g. a map with non-string keys).
    #[error("item could not be serialized as JSON")]
    Json(#[source] serde_json::Error),
    /// The item holds a NaN or infinite float, which JSON cannot hold (serde_json would write
    /// `null` in its place).
    #[error("item holds the non-finite float {value}, which JSON cannot hold")]
    NonFiniteFloat {
        /// The float refused.
        value: f64,
    },
    /// rmp-serde refused the item.
    #[cfg(feature = "msgpack")]
    #[error("item could not be serialized as msgpack")]
    Msgpack(#[source] rmp_serde::encode::Error),
    /// A custom serializer failed.
    #[error("item could not be serialized")]
    Custom(#[source] BoxError),
}

/// The bytes of one item could not be decoded into the item type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid UTF-8.
    #[error("invalid UTF-8")]
    Utf8(#[source] std::str::Utf8Error),
    /// The bytes are not valid JSON for the item type.
    #[error("invalid JSON")]
    Json(#[source] serde_json::Error),
    /// An integer beyond 64 bits that the item type would receive as a rounded float; see
    /// [`JsonSerializer`](super::JsonSerializer) for the item types that hold it.
    #[error("{}", wide_integer_message(digits, *offset))]
    WideInteger {
        /// The integer as written.
        digits: String,
        /// Its byte offset in the item.
        offset: usize,
    },
    /// A bare `NaN`, `Infinity` or `-Infinity` (Python's `json.dumps` writes them for
    /// non-finite floats unless `allow_nan=False`): not JSON, no item type reads it.
    #[error(
        "`{literal}` at byte {offset} is not a JSON number (Python's json.dumps writes it for a non-finite float unless allow_nan=False)"
    )]
    NonFiniteNumber {
        /// The literal as written.
        literal: String,
        /// Its byte offset in the item.
        offset: usize,
    },
    /// The bytes are not valid msgpack for the item type.
    #[cfg(feature = "msgpack")]
    #[error("invalid msgpack")]
    Msgpack(#[source] rmp_serde::decode::Error),
    /// A custom serializer failed.
    #[error("item could not be decoded")]
    Custom(#[source] BoxError),
}

/// What [`DecodeError::WideInteger`] says: the integer (shortened when huge), where, and what
/// holds it in this build.
fn wide_integer_message(digits: &str, offset: usize) -> String {
    const SHOWN: usize = 60;
    let shown = if digits.len() <= SHOWN {
        digits.to_owned()
    } else {
        let head: String = digits.chars().take(SHOWN - 12).collect();
        let tail: String = digits.chars().skip(digits.chars().count() - 8).collect();
        format!("{head}…{tail} ({} characters)", digits.len())
    };
    let hint = if super::serde_json_keeps_wide_integers() {
        "the item type would read it as a rounded float; read it into serde_json::Value, an i128/u128 field or Box<RawValue>"
    } else {
        "enable feature `json-arbitrary-precision` to keep it in serde_json::Value, or read it into an i128/u128 field or Box<RawValue>"
    };
    format!("integer {shown} at byte {offset} does not fit a 64-bit number; {hint}")
}

/// Why an aggregator refused an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The item alone, framed, plus its partition key exceeds the maximum record size.
    #[error(
        "item needs {size} bytes (data + partition key), more than the maximum record size of {max} bytes"
    )]
    TooLarge {
        /// Bytes the item would need in a record of its own, partition key included.
        size: usize,
        /// The configured maximum record size.
        max: usize,
    },
    /// Kinesis requires a partition key of at least one character.
    #[error("partition key is empty")]
    EmptyPartitionKey,
    /// Kinesis allows at most 256 characters in a partition key, counted in UTF-16 code units
    /// (a character outside the Basic Multilingual Plane, like an emoji, counts twice).
    #[error(
        "partition key has {chars} characters counted as Kinesis counts them (UTF-16 code units), more than 256"
    )]
    PartitionKeyTooLong {
        /// Length of the key in UTF-16 code units.
        chars: usize,
    },
    /// An explicit hash key must be a decimal integer in 0 ..= 2^128 - 1.
    #[error("explicit hash key {0:?} is not a decimal integer in 0..=2^128-1")]
    InvalidExplicitHashKey(String),
}

/// An aggregator refused an item; the item's tag and bytes are handed back.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rejected<Tag> {
    /// The caller's tag of the refused item.
    pub tag: Tag,
    /// The serialized item.
    pub data: Bytes,
    /// Why it was refused.
    pub reason: RejectReason,
}

impl<Tag> Rejected<Tag> {
    pub(crate) fn new(tag: Tag, data: Bytes, reason: RejectReason) -> Self {
        Self { tag, data, reason }
    }
}

impl<Tag> fmt::Display for Rejected<Tag> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "item of {} bytes refused by the aggregator",
            self.data.len()
        )
    }
}

impl<Tag: fmt::Debug> std::error::Error for Rejected<Tag> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

/// What is wrong with a netstring frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringProblem {
    /// No `:` after the length digits.
    MissingColon,
    /// The length is empty, not decimal digits, or too large.
    BadLength,
    /// The record ends before the announced number of bytes.
    Truncated,
    /// The item is not followed by `,`.
    MissingComma,
}

impl fmt::Display for NetstringProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingColon => "missing ':' after the length",
            Self::BadLength => "length is not a decimal number",
            Self::Truncated => "record ends inside the item",
            Self::MissingComma => "item not followed by ','",
        })
    }
}

/// One record (or one item inside it) could not be read. The reader only borrows the record's
/// data, so the caller keeps the raw record to report, retry or dead-letter it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The record starts with the KPL magic but is too short to hold a digest.
    #[error("KPL record of {len} bytes is too short for magic, message and digest")]
    KplTooShort {
        /// Length of the record's data.
        len: usize,
    },
    /// The MD5 digest at the end of a KPL record does not match its message.
    #[error("KPL record digest mismatch (corrupt aggregate)")]
    KplDigestMismatch,
    /// The KPL protobuf message is malformed or truncated.
    #[cfg(feature = "kpl")]
    #[error("KPL record holds an invalid protobuf message")]
    KplProtobuf(#[source] prost::DecodeError),
    /// One user record inside an otherwise valid aggregate is malformed; the others are read.
    #[cfg(feature = "kpl")]
    #[error("KPL user record {sub_sequence} is an invalid protobuf message")]
    KplUserRecord {
        /// Position of the user record inside the aggregate.
        sub_sequence: u64,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// A user record's partition key index points outside the table.
    #[error(
        "KPL user record {sub_sequence}: partition key index {index} outside the table of {table_len}"
    )]
    KplPartitionKeyIndex {
        /// Position of the user record inside the aggregate.
        sub_sequence: u64,
        /// The index found.
        index: u64,
        /// Length of the partition key table.
        table_len: usize,
    },
    /// A user record's explicit hash key index points outside the table.
    #[error(
        "KPL user record {sub_sequence}: explicit hash key index {index} outside the table of {table_len}"
    )]
    KplExplicitHashKeyIndex {
        /// Position of the user record inside the aggregate.
        sub_sequence: u64,
        /// The index found.
        index: u64,
        /// Length of the explicit hash key table.
        table_len: usize,
    },
    /// The netstring framing is broken; the rest of the record cannot be read.
    #[error("netstring framing broken at byte {offset}: {problem}")]
    Netstring {
        /// Byte offset in the record where the bad frame starts.
        offset: usize,
        /// What is wrong.
        problem: NetstringProblem,
    },
    /// A JSON-list record is not a JSON array.
    #[error("JSON-list record is not a JSON array")]
    NotAJsonList(#[source] DecodeError),
    /// One item could not be decoded; the other items of the record are still read.
    #[error("item {sub_sequence} of the record could not be decoded")]
    Item {
        /// Position of the item inside the record.
        sub_sequence: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
}
