//! The aggregator traits: how items are packed into Kinesis records and split back out.

use super::error::{DecodeError, ReadError, Rejected};
use super::record::{Frame, OutgoingRecord};
use super::serializer::Serializer;
use bytes::Bytes;
use std::fmt;

/// The write side of an aggregator: buffers serialized items and emits Kinesis records.
///
/// `Tag` is an opaque value the caller attaches to each item (a receipt sender, an index…);
/// every emitted record lists the tags of the items inside it, in order, so the caller can
/// account for each item. Nothing is dropped: an item is either in a returned record, still
/// buffered (see [`flush`](Self::flush)), or handed back in a [`Rejected`].
pub trait RecordWriter<Tag>: Send {
    /// Adds one serialized item with its partition key and optional explicit hash key.
    ///
    /// Returns a record that became complete (at most one per push), or the item back when it
    /// can never fit in a record or its keys are invalid. The writer is unchanged on error.
    fn push(
        &mut self,
        tag: Tag,
        data: Bytes,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
    ) -> Result<Option<OutgoingRecord<Tag>>, Rejected<Tag>>;

    /// Emits everything buffered, oldest group first, and leaves the writer empty.
    fn flush(&mut self) -> Vec<OutgoingRecord<Tag>>;

    /// Number of items buffered.
    fn buffered_items(&self) -> usize;

    /// Bytes the buffered items would take as records (data plus partition keys).
    fn buffered_bytes(&self) -> usize;

    /// The largest record this writer emits, data plus partition key.
    fn max_record_size(&self) -> usize;
}

/// A record format: writes items into records ([`RecordWriter`]) and splits records into items.
///
/// Implementations: [`SimpleAggregator`](super::SimpleAggregator),
/// [`NewlineAggregator`](super::NewlineAggregator), [`ListAggregator`](super::ListAggregator),
/// [`ListItemsAggregator`](super::ListItemsAggregator),
/// [`NetstringAggregator`](super::NetstringAggregator) and, with feature `kpl`, `KplAggregator`.
pub trait Aggregator: Clone + Send + Sync + fmt::Debug + 'static {
    /// The writer type, generic over the caller's per-item tag.
    type Writer<Tag: Send + 'static>: RecordWriter<Tag>;
    /// Iterator over the items' bytes of one record.
    type Frames: Iterator<Item = Result<Frame, ReadError>> + Send + 'static;
    /// What the reader yields per frame for a serializer's item type `T` (usually `T`).
    type Output<T: Send + 'static>: Send + 'static;

    /// A new, empty writer emitting records of at most `max_record_size` bytes (data plus
    /// partition key). The size is validated by the caller
    /// ([`Composed::with_max_record_size`](super::Composed::with_max_record_size)).
    fn writer<Tag: Send + 'static>(&self, max_record_size: usize) -> Self::Writer<Tag>;

    /// Splits one Kinesis record (its data and partition key) into item frames, in order.
    /// Framing errors are items of the iterator; the iterator ends after an error it cannot
    /// read past.
    fn frames(&self, data: &Bytes, partition_key: &str) -> Self::Frames;

    /// Decodes one frame's bytes with the serializer.
    fn decode<S: Serializer>(
        &self,
        serializer: &S,
        data: &Bytes,
    ) -> Result<Self::Output<S::Item>, DecodeError>;
}
