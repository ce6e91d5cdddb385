//! KPL aggregation (feature `kpl`): many user records, each with its own partition key, in one
//! Kinesis record, readable by the KCL, `aws-kinesis-agg` and the Python library.
//!
//! Layout of an aggregated record: the 4 magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord` message, and the 16-byte MD5 digest of that message.

mod proto;
mod reader;
mod writer;

pub use reader::KplFrames;
pub use writer::KplWriter;

use super::aggregator::{Aggregator, WriterShape};
use super::error::DecodeError;
use super::serializer::Serializer;
use bytes::Bytes;

/// The first bytes of every KPL aggregated record.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 digest that ends a KPL aggregated record.
pub const KPL_DIGEST_LEN: usize = 16;

/// Which partition key each user record carries inside an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InnerKeys {
    /// Each user record keeps its own partition key (what the KPL does). Default.
    #[default]
    Real,
    /// Every user record gets the key `"a"`, byte for byte what the Python library's
    /// `KPLAggregator` writes. The outer record still uses the first item's real key.
    PythonCompatible,
}

/// KPL aggregated records (the Python library's `KPLAggregator`, which wraps
/// `aws-kinesis-agg`).
///
/// Writing: one buffer for all items; the record's partition key and explicit hash key are
/// those of its first item (as the KPL does), every user record keeps its own keys in the
/// tables. Items are routed to the shard of the record's key, so to keep per-key ordering across
/// shards, use one writer per shard.
///
/// Reading: a record without the magic prefix is a plain record and yields one item
/// (sub-sequence 0, the record's key). An aggregate yields its user records in order, each with
/// its sub-sequence number and its own keys; its digest is verified first.
#[derive(Debug, Clone, Copy, Default)]
pub struct KplAggregator {
    inner_keys: InnerKeys,
}

impl KplAggregator {
    /// Aggregator keeping each user record's own partition key.
    pub const fn new() -> Self {
        Self {
            inner_keys: InnerKeys::Real,
        }
    }

    /// Aggregator writing the inner key `"a"` for every user record, like the Python library.
    pub const fn python_compatible() -> Self {
        Self {
            inner_keys: InnerKeys::PythonCompatible,
        }
    }

    /// The inner-key mode.
    pub const fn inner_keys(&self) -> InnerKeys {
        self.inner_keys
    }
}

impl Aggregator for KplAggregator {
    type Writer<Tag: Send + 'static> = KplWriter<Tag>;
    type Frames = KplFrames;
    type Output<T: Send + 'static> = T;

    fn writer<Tag: Send + 'static>(&self, max_record_size: usize) -> KplWriter<Tag> {
        KplWriter::new(max_record_size, self.inner_keys)
    }

    fn shaped_writer<Tag: Send + 'static>(
        &self,
        max_record_size: usize,
        shape: WriterShape,
    ) -> KplWriter<Tag> {
        KplWriter::shaped(max_record_size, self.inner_keys, shape)
    }

    fn frames(&self, data: &Bytes, partition_key: &str) -> KplFrames {
        KplFrames::new(data, partition_key)
    }

    fn decode<S: Serializer>(&self, serializer: &S, data: &Bytes) -> Result<S::Item, DecodeError> {
        serializer.deserialize(data)
    }
}

#[cfg(test)]
mod tests;
