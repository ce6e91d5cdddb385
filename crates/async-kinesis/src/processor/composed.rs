//! A processor built from any serializer and any aggregator.

use super::Processor;
use super::aggregator::Aggregator;
use super::error::{ConfigError, ReadError, SerializeError};
use super::record::{DEFAULT_MAX_RECORD_SIZE, Decoded, check_max_record_size};
use super::serializer::Serializer;
use bytes::Bytes;

/// A processor made of a serializer `S` and an aggregator `A`. The seven named processors are
/// aliases of it; compose your own the same way:
///
/// ```
/// use async_kinesis::processor::{BytesSerializer, Composed, NetstringAggregator, Processor};
///
/// // Raw bytes framed as netstrings, records of at most 256 KiB.
/// let processor = Composed::new(BytesSerializer, NetstringAggregator)
///     .with_max_record_size(256 * 1024)
///     .expect("valid size");
/// assert_eq!(processor.max_record_size(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Composed<S, A> {
    serializer: S,
    aggregator: A,
    max_record_size: usize,
}

impl<S: Serializer, A: Aggregator> Composed<S, A> {
    /// A processor with the default maximum record size (1 MiB, data plus partition key).
    pub fn new(serializer: S, aggregator: A) -> Self {
        Self {
            serializer,
            aggregator,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }

    /// Sets the maximum record size, data plus partition key: `1 ..= 10 MiB`. Use the stream's
    /// `MaxRecordSizeInKiB` when it was raised above 1 MiB.
    pub fn with_max_record_size(mut self, max_record_size: usize) -> Result<Self, ConfigError> {
        self.max_record_size = check_max_record_size(max_record_size)?;
        Ok(self)
    }

    /// The serializer.
    pub fn serializer(&self) -> &S {
        &self.serializer
    }

    /// The aggregator.
    pub fn aggregator(&self) -> &A {
        &self.aggregator
    }
}

impl<S: Serializer + Default, A: Aggregator + Default> Default for Composed<S, A> {
    fn default() -> Self {
        Self::new(S::default(), A::default())
    }
}

/// Iterator over the items of one record, returned by [`Processor::read`] on [`Composed`].
#[derive(Debug)]
pub struct ComposedReader<'a, S, A: Aggregator> {
    frames: A::Frames,
    serializer: &'a S,
    aggregator: &'a A,
}

impl<S: Serializer, A: Aggregator> Iterator for ComposedReader<'_, S, A> {
    type Item = Result<Decoded<A::Output<S::Item>>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = match self.frames.next()? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e)),
        };
        Some(match self.aggregator.decode(self.serializer, &frame.data) {
            Ok(item) => Ok(Decoded {
                sub_sequence: frame.sub_sequence,
                partition_key: frame.partition_key,
                explicit_hash_key: frame.explicit_hash_key,
                item,
            }),
            Err(source) => Err(ReadError::Item {
                sub_sequence: frame.sub_sequence,
                source,
            }),
        })
    }
}

impl<S: Serializer, A: Aggregator> Processor for Composed<S, A> {
    type Item = S::Item;
    type Output = A::Output<S::Item>;
    type Writer<Tag: Send + 'static> = A::Writer<Tag>;
    type Reader<'a> = ComposedReader<'a, S, A>;

    fn serialize(&self, item: &S::Item) -> Result<Bytes, SerializeError> {
        self.serializer.serialize(item)
    }

    fn writer<Tag: Send + 'static>(&self) -> A::Writer<Tag> {
        self.aggregator.writer(self.max_record_size)
    }

    fn read<'a>(&'a self, data: &Bytes, partition_key: &str) -> ComposedReader<'a, S, A> {
        ComposedReader {
            frames: self.aggregator.frames(data, partition_key),
            serializer: &self.serializer,
            aggregator: &self.aggregator,
        }
    }

    fn max_record_size(&self) -> usize {
        self.max_record_size
    }
}
