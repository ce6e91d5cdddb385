//! Simple aggregator: one item per record.

use super::aggregator::{Aggregator, RecordWriter};
use super::error::{DecodeError, ReadError, RejectReason, Rejected};
use super::record::{Frame, OutgoingRecord, check_keys};
use super::serializer::Serializer;
use bytes::Bytes;
use std::marker::PhantomData;
use std::sync::Arc;

/// No aggregation: each item is a record of its own (the Python library's `SimpleAggregator`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleAggregator;

/// Writer of [`SimpleAggregator`]: every push emits its record at once.
#[derive(Debug)]
pub struct SimpleWriter<Tag> {
    max_record_size: usize,
    _tag: PhantomData<fn() -> Tag>,
}

impl<Tag: Send + 'static> RecordWriter<Tag> for SimpleWriter<Tag> {
    fn push(
        &mut self,
        tag: Tag,
        data: Bytes,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
    ) -> Result<Option<OutgoingRecord<Tag>>, Rejected<Tag>> {
        if let Err(reason) = check_keys(partition_key, explicit_hash_key) {
            return Err(Rejected::new(tag, data, reason));
        }
        let size = data.len() + partition_key.len();
        if size > self.max_record_size {
            let reason = RejectReason::TooLarge {
                size,
                max: self.max_record_size,
            };
            return Err(Rejected::new(tag, data, reason));
        }
        Ok(Some(OutgoingRecord {
            data,
            partition_key: partition_key.to_owned(),
            explicit_hash_key: explicit_hash_key.map(str::to_owned),
            tags: vec![tag],
        }))
    }

    fn flush(&mut self) -> Vec<OutgoingRecord<Tag>> {
        Vec::new()
    }

    fn buffered_items(&self) -> usize {
        0
    }

    fn buffered_bytes(&self) -> usize {
        0
    }

    fn max_record_size(&self) -> usize {
        self.max_record_size
    }
}

impl Aggregator for SimpleAggregator {
    type Writer<Tag: Send + 'static> = SimpleWriter<Tag>;
    type Frames = std::iter::Once<Result<Frame, ReadError>>;
    type Output<T: Send + 'static> = T;

    fn writer<Tag: Send + 'static>(&self, max_record_size: usize) -> SimpleWriter<Tag> {
        SimpleWriter {
            max_record_size,
            _tag: PhantomData,
        }
    }

    fn frames(&self, data: &Bytes, partition_key: &str) -> Self::Frames {
        std::iter::once(Ok(Frame::new(0, Arc::from(partition_key), data.clone())))
    }

    fn decode<S: Serializer>(&self, serializer: &S, data: &Bytes) -> Result<S::Item, DecodeError> {
        serializer.deserialize(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_push_is_a_record() {
        let mut writer = SimpleAggregator.writer::<u32>(10);
        let record = writer
            .push(7, Bytes::from_static(b"abc"), "key", Some("12"))
            .expect("fits")
            .expect("emitted");
        assert_eq!(record.tags, vec![7]);
        assert_eq!(&record.data[..], b"abc");
        assert_eq!(record.partition_key, "key");
        assert_eq!(record.explicit_hash_key.as_deref(), Some("12"));
        assert_eq!(record.size(), 6);
        assert!(writer.flush().is_empty());
    }

    #[test]
    fn size_counts_the_partition_key() {
        let mut writer = SimpleAggregator.writer::<u32>(10);
        // 7 + 3 = 10 fits exactly; 8 + 3 does not.
        assert!(
            writer
                .push(1, Bytes::from_static(b"1234567"), "key", None)
                .is_ok()
        );
        let err = writer
            .push(2, Bytes::from_static(b"12345678"), "key", None)
            .expect_err("too large");
        assert_eq!(err.tag, 2);
        assert_eq!(&err.data[..], b"12345678");
        assert_eq!(err.reason, RejectReason::TooLarge { size: 11, max: 10 });
        let err = writer
            .push(3, Bytes::from_static(b"1"), "", None)
            .expect_err("empty key");
        assert_eq!(err.reason, RejectReason::EmptyPartitionKey);
    }
}
