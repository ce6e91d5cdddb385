//! Processors: how items become Kinesis records and back.
//!
//! A processor is a [`Serializer`] (one item ⇄ bytes) plus an [`Aggregator`] (many items' bytes
//! ⇄ one Kinesis record). Both sides are pure and synchronous: no I/O, no clock.
//!
//! | processor | aggregator | serializer | feature |
//! | --- | --- | --- | --- |
//! | [`StringProcessor`] | [`SimpleAggregator`] | [`StringSerializer`] | |
//! | [`JsonProcessor`] | [`SimpleAggregator`] | [`JsonSerializer`] | |
//! | [`JsonLineProcessor`] | [`NewlineAggregator`] | [`JsonSerializer`] | |
//! | [`JsonListProcessor`] | [`ListAggregator`] | [`JsonSerializer`] | |
//! | `MsgpackProcessor` | [`NetstringAggregator`] | `MsgpackSerializer` | `msgpack` |
//! | `KplJsonProcessor` | `KplAggregator` | [`JsonSerializer`] | `kpl` |
//! | `KplStringProcessor` | `KplAggregator` | [`StringSerializer`] | `kpl` |
//!
//! They read and write the same bytes as the Python library `async-kinesis` 3.x, and KPL records
//! are read and written like the KPL / `aws-kinesis-agg` (each user record keeps its own partition
//! key; `KplAggregator::python_compatible` writes the Python library's inner key `"a"`).
//!
//! The JSON and msgpack processors take the item type as a parameter defaulting to an untyped
//! value: `JsonLineProcessor::new()` reads and writes `serde_json::Value`s,
//! `JsonLineProcessor::of::<Order>()` your `Order`s (see [`Composed`]).
//!
//! JSON numbers come back exactly as written (floats to the last bit, integers digit for digit)
//! or the item is an error; [`JsonSerializer`] says which item types hold which numbers.
//!
//! Any serializer goes with any aggregator through [`Composed`]; implement [`Serializer`] or
//! [`Aggregator`] for your own formats, and use [`BytesSerializer`] for raw bytes.
//!
//! # Writing
//!
//! ```
//! use async_kinesis::processor::{JsonLineProcessor, Processor, RecordWriter};
//! use serde_json::json;
//!
//! let processor = JsonLineProcessor::new(); // items: serde_json::Value
//! let mut writer = processor.writer::<u32>(); // tag each item, here with a number
//! for (tag, n) in [(1, 10), (2, 20)] {
//!     let bytes = processor.serialize(&json!({ "n": n })).expect("serializable");
//!     // A record is returned once a buffer is full; an item that can never fit comes back.
//!     assert!(writer.push(tag, bytes, "key", None).expect("fits").is_none());
//! }
//! let records = writer.flush();
//! assert_eq!(&records[0].data[..], b"{\"n\":10}\n{\"n\":20}\n");
//! assert_eq!(records[0].tags, vec![1, 2]);
//! ```
//!
//! # Reading
//!
//! ```
//! use async_kinesis::processor::{JsonLineProcessor, Processor};
//! use bytes::Bytes;
//!
//! let processor = JsonLineProcessor::new(); // items: serde_json::Value
//! let data = Bytes::from_static(b"{\"n\": 10}\nnot json\n{\"n\": 20}\n");
//! let items: Vec<_> = processor.read(&data, "key").collect();
//! assert_eq!(items.len(), 3);
//! assert_eq!(items[0].as_ref().expect("valid").item["n"], 10);
//! assert!(items[1].is_err()); // the bad item is an error; the others still decode
//! assert_eq!(items[2].as_ref().expect("valid").sub_sequence, 2);
//! ```

mod aggregator;
mod composed;
mod error;
mod grouped;
mod json;
#[cfg(feature = "kpl")]
mod kpl;
mod list;
#[cfg(feature = "msgpack")]
mod msgpack;
mod netstring;
mod newline;
mod record;
mod scratch;
mod serializer;
mod simple;

pub use aggregator::{Aggregator, RecordWriter, WriterShape};
pub use composed::{Composed, ComposedReader};
pub use error::{
    BoxError, DecodeError, NetstringProblem, ReadError, RejectReason, Rejected, SerializeError,
};
pub use grouped::{Framing, GroupedWriter};
pub use json::{JsonSerializer, serde_json_keeps_wide_integers};
#[cfg(feature = "kpl")]
pub use kpl::{InnerKeys, KPL_DIGEST_LEN, KPL_MAGIC, KplAggregator, KplFrames, KplWriter};
pub use list::{ListAggregator, ListFraming, ListItemFrames, ListItemsAggregator};
#[cfg(feature = "msgpack")]
pub use msgpack::MsgpackSerializer;
pub use netstring::{NetstringAggregator, NetstringFrames, NetstringFraming};
pub use newline::{NewlineAggregator, NewlineFrames, NewlineFraming};
pub(crate) use record::check_keys;
pub use record::{
    DEFAULT_MAX_RECORD_SIZE, Decoded, Frame, MAX_PARTITION_KEY_CHARS, MAX_RECORD_SIZE_LIMIT,
    OutgoingRecord,
};
pub use serializer::{BytesSerializer, Serializer, StringSerializer};
pub use simple::{SimpleAggregator, SimpleWriter};

use bytes::Bytes;

/// Serializes and aggregates items for the producer, reads records for the consumer.
///
/// Implemented by [`Composed`]; the named processors are aliases of it. A processor is
/// `Send + Sync + 'static` and cheap to clone.
pub trait Processor: Clone + Send + Sync + 'static {
    /// What the producer puts.
    type Item: Send + 'static;
    /// What the reader yields per item (the item type, or a `Vec` of it for [`ListAggregator`]).
    type Output: Send + 'static;
    /// The aggregating writer, generic over the caller's per-item tag.
    type Writer<Tag: Send + 'static>: RecordWriter<Tag>;
    /// Iterator over the items of one record.
    type Reader<'a>: Iterator<Item = Result<Decoded<Self::Output>, ReadError>>
    where
        Self: 'a;

    /// Serializes one item. The item is borrowed: on error the caller still owns it.
    fn serialize(&self, item: &Self::Item) -> Result<Bytes, SerializeError>;

    /// A new, empty writer for this processor's format and maximum record size.
    fn writer<Tag: Send + 'static>(&self) -> Self::Writer<Tag>;

    /// A new, empty writer shaped as `shape` asks (see [`Aggregator::shaped_writer`]). The
    /// default ignores the shape.
    fn shaped_writer<Tag: Send + 'static>(&self, shape: WriterShape) -> Self::Writer<Tag> {
        let _ = shape;
        self.writer()
    }

    /// Reads one Kinesis record (its data and partition key) into items, in order. Errors are
    /// items of the iterator and never panics; the record is only borrowed, so the caller keeps
    /// the raw record for reporting.
    fn read<'a>(&'a self, data: &Bytes, partition_key: &str) -> Self::Reader<'a>;

    /// The largest record the writer emits, data plus partition key.
    fn max_record_size(&self) -> usize;
}

/// UTF-8 strings, one per record.
pub type StringProcessor = Composed<StringSerializer, SimpleAggregator>;
/// JSON items, one per record. `T` defaults to [`serde_json::Value`].
pub type JsonProcessor<T = serde_json::Value> = Composed<JsonSerializer<T>, SimpleAggregator>;
/// JSON items, newline-separated, many per record.
pub type JsonLineProcessor<T = serde_json::Value> = Composed<JsonSerializer<T>, NewlineAggregator>;
/// JSON items as one JSON array per record; the reader yields the whole array as one `Vec<T>`.
pub type JsonListProcessor<T = serde_json::Value> = Composed<JsonSerializer<T>, ListAggregator>;
/// Msgpack items in netstrings, many per record. `T` defaults to [`rmpv::Value`].
#[cfg(feature = "msgpack")]
pub type MsgpackProcessor<T = rmpv::Value> = Composed<MsgpackSerializer<T>, NetstringAggregator>;
/// JSON items in KPL aggregated records.
#[cfg(feature = "kpl")]
#[doc(alias = "KPLJsonProcessor")]
pub type KplJsonProcessor<T = serde_json::Value> = Composed<JsonSerializer<T>, KplAggregator>;
/// UTF-8 strings in KPL aggregated records.
#[cfg(feature = "kpl")]
#[doc(alias = "KPLStringProcessor")]
pub type KplStringProcessor = Composed<StringSerializer, KplAggregator>;
