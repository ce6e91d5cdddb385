//! A processor built from any serializer and any aggregator.

use super::Processor;
use super::aggregator::{Aggregator, WriterShape};
use super::error::{ReadError, SerializeError};
use super::json::JsonSerializer;
#[cfg(feature = "msgpack")]
use super::msgpack::MsgpackSerializer;
use super::record::{DEFAULT_MAX_RECORD_SIZE, Decoded, check_max_record_size};
use super::serializer::{Serializer, StringSerializer};
use crate::invalid_config::InvalidConfig;
use bytes::Bytes;

/// A processor made of a serializer `S` and an aggregator `A`. The seven named processors are
/// aliases of it; compose your own the same way:
///
/// ```
/// use async_kinesis::processor::{BytesSerializer, Composed, NetstringAggregator, Processor};
///
/// // Raw bytes framed as netstrings, records of at most 256 KiB.
/// let processor = Composed::from_parts(BytesSerializer, NetstringAggregator)
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
    /// A processor of this serializer and aggregator, with the default maximum record size
    /// (1 MiB, data plus partition key).
    pub fn from_parts(serializer: S, aggregator: A) -> Self {
        Self {
            serializer,
            aggregator,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }

    /// Sets the maximum record size, data plus partition key: `1 ..= 10 MiB`. Use the stream's
    /// `MaxRecordSizeInKiB` when it was raised above 1 MiB.
    pub fn with_max_record_size(mut self, max_record_size: usize) -> Result<Self, InvalidConfig> {
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
        Self::from_parts(S::default(), A::default())
    }
}

/// `JsonProcessor::new()`, `JsonLineProcessor::new()`, `JsonListProcessor::new()`,
/// `KplJsonProcessor::new()`: items are untyped `serde_json::Value`s. `::of::<T>()` gives the
/// same processor for items of your type, so no type has to be written out twice:
///
/// ```
/// use async_kinesis::processor::{JsonLineProcessor, Processor};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order { id: u64 }
///
/// let untyped = JsonLineProcessor::new();
/// let typed = JsonLineProcessor::of::<Order>();
/// let order = typed.serialize(&Order { id: 7 }).expect("serializable");
/// let value = untyped.serialize(&serde_json::json!({"id": 7})).expect("serializable");
/// assert_eq!(order, value);
/// ```
impl<A: Aggregator + Default> Composed<JsonSerializer<serde_json::Value>, A> {
    /// The processor of untyped JSON values.
    pub fn new() -> Self {
        Self::default()
    }

    /// The processor of items of type `T`.
    pub fn of<T>() -> Composed<JsonSerializer<T>, A>
    where
        JsonSerializer<T>: Serializer,
    {
        Composed::default()
    }
}

/// `MsgpackProcessor::new()`: items are untyped `rmpv::Value`s; `::of::<T>()` for your type.
#[cfg(feature = "msgpack")]
impl<A: Aggregator + Default> Composed<MsgpackSerializer<rmpv::Value>, A> {
    /// The processor of untyped msgpack values.
    pub fn new() -> Self {
        Self::default()
    }

    /// The processor of items of type `T`.
    pub fn of<T>() -> Composed<MsgpackSerializer<T>, A>
    where
        MsgpackSerializer<T>: Serializer,
    {
        Composed::default()
    }
}

/// `StringProcessor::new()`, `KplStringProcessor::new()`.
impl<A: Aggregator + Default> Composed<StringSerializer, A> {
    /// The processor of strings.
    pub fn new() -> Self {
        Self::default()
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

    fn shaped_writer<Tag: Send + 'static>(&self, shape: WriterShape) -> A::Writer<Tag> {
        self.aggregator.shaped_writer(self.max_record_size, shape)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::error::DecodeError;
    use crate::processor::record::MAX_RECORD_SIZE_LIMIT;
    use crate::processor::{
        JsonLineProcessor, JsonListProcessor, JsonProcessor, RecordWriter, StringProcessor,
    };
    use serde_json::Value;

    fn assert_processor<P: Processor>() {}

    #[test]
    fn named_processors_are_send_sync_static() {
        assert_processor::<StringProcessor>();
        assert_processor::<JsonProcessor>();
        assert_processor::<JsonLineProcessor<Vec<u8>>>();
        assert_processor::<JsonListProcessor>();
    }

    #[test]
    fn default_and_configured_max_record_size() {
        let p: JsonProcessor = JsonProcessor::default();
        assert_eq!(p.max_record_size(), 1_048_576);
        assert_eq!(
            RecordWriter::<()>::max_record_size(&p.writer::<()>()),
            1_048_576
        );
        let p = p
            .with_max_record_size(MAX_RECORD_SIZE_LIMIT)
            .expect("10 MiB");
        assert_eq!(p.max_record_size(), 10 * 1_048_576);
        let err = StringProcessor::default()
            .with_max_record_size(MAX_RECORD_SIZE_LIMIT + 1)
            .expect_err("too large");
        assert_eq!(err.option, "with_max_record_size");
        assert_eq!(
            err.reason,
            format!(
                "{} is outside 1..={MAX_RECORD_SIZE_LIMIT}",
                MAX_RECORD_SIZE_LIMIT + 1
            )
        );
        assert!(StringProcessor::default().with_max_record_size(0).is_err());
    }

    #[test]
    fn invalid_utf8_is_an_item_error() {
        let p = StringProcessor::default();
        let data = Bytes::from_static(b"ok\xff");
        let read: Vec<_> = p.read(&data, "k").collect();
        assert!(matches!(
            read[..],
            [Err(ReadError::Item {
                sub_sequence: 0,
                source: DecodeError::Utf8(_)
            })]
        ));
    }

    #[test]
    fn bad_json_line_does_not_stop_the_rest() {
        let p: JsonLineProcessor = JsonLineProcessor::default();
        let data = Bytes::from_static(b"1\n{oops\n\"x\"\n");
        let read: Vec<_> = p.read(&data, "k").collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].as_ref().expect("ok").item, Value::from(1));
        assert!(matches!(
            read[1],
            Err(ReadError::Item {
                sub_sequence: 1,
                source: DecodeError::Json(_)
            })
        ));
        let last = read[2].as_ref().expect("ok");
        assert_eq!((last.sub_sequence, &last.item), (2, &Value::from("x")));
        assert_eq!(&*last.partition_key, "k");
    }

    #[test]
    fn json_list_reads_as_one_vec() {
        let p: JsonListProcessor = JsonListProcessor::default();
        let data = Bytes::from_static(b"[1, \"a\"]");
        let read: Vec<_> = p.read(&data, "k").map(|r| r.expect("list").item).collect();
        assert_eq!(read, vec![vec![Value::from(1), Value::from("a")]]);
        let not_list = Bytes::from_static(b"{}");
        assert!(matches!(
            p.read(&not_list, "k").next(),
            Some(Err(ReadError::Item { .. }))
        ));
    }
}
