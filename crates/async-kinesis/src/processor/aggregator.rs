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

/// How a producer wants its records shaped, beyond the maximum record size.
///
/// See [`Aggregator::shaped_writer`]. Formats that hold one item per record ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterShape {
    /// An aggregate is sealed before it would grow past this many bytes (data plus partition
    /// key). An item that needs more alone still gets a record of its own, up to the maximum
    /// record size. Smaller aggregates pass a shard's per-second byte budget in smaller steps.
    pub aggregate_bytes: usize,
    /// The stream's service places records itself and ignores partition and explicit hash
    /// keys (record distribution strategy `AUTO`). Formats whose readers check each item's key
    /// against the shard (KPL: the KCL drops items that do not belong to the shard) then write
    /// every item as a plain record of its own, which every reader accepts. Formats without
    /// per-item keys aggregate as usual.
    pub service_distributes: bool,
}

impl WriterShape {
    /// Aggregates of up to `aggregate_bytes`, on a stream that routes by key.
    pub fn aggregates_of(aggregate_bytes: usize) -> Self {
        Self {
            aggregate_bytes,
            service_distributes: false,
        }
    }

    /// The same, for a stream whose service ignores keys (see
    /// [`WriterShape::service_distributes`]).
    pub fn service_distributing(mut self, service_distributes: bool) -> Self {
        self.service_distributes = service_distributes;
        self
    }
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

    /// A new, empty writer emitting records of at most `max_record_size` bytes, shaped as
    /// `shape` asks. The default ignores the shape (formats of one item per record).
    fn shaped_writer<Tag: Send + 'static>(
        &self,
        max_record_size: usize,
        shape: WriterShape,
    ) -> Self::Writer<Tag> {
        let _ = shape;
        self.writer(max_record_size)
    }

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
