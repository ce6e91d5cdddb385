//! JSON-list aggregators: the items of a record written as one JSON array.

use super::aggregator::{Aggregator, WriterShape};
use super::error::{DecodeError, ReadError};
use super::grouped::{Framing, GroupedWriter};
use super::json;
use super::record::Frame;
use super::serializer::Serializer;
use bytes::Bytes;
use serde_json::value::RawValue;
use std::sync::Arc;

/// The items of a record as one JSON array (the Python library's `ListAggregator`). The
/// reader yields the whole array as **one** item, a `Vec` of the serializer's items, as Python
/// does; [`ListItemsAggregator`] reads item by item instead.
///
/// Items must be JSON values (use it with [`JsonSerializer`](super::JsonSerializer)).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListAggregator;

/// Same records as [`ListAggregator`], read one array element per item.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListItemsAggregator;

/// Framing of the list aggregators: `[`, items separated by `,`, `]`.
#[derive(Debug)]
pub struct ListFraming;

impl Framing for ListFraming {
    const RECORD_OVERHEAD: usize = 1;
    fn item_overhead(_len: usize) -> usize {
        1
    }
    fn append(buf: &mut Vec<u8>, first: bool, item: &[u8]) {
        buf.push(if first { b'[' } else { b',' });
        buf.extend_from_slice(item);
    }
    fn close(buf: &mut Vec<u8>) {
        buf.push(b']');
    }
}

/// Splits a JSON array into its elements' bytes (slices of `data`, no copies, numbers as
/// written).
fn elements(data: &Bytes) -> Result<Vec<Bytes>, DecodeError> {
    let raw: Vec<&RawValue> = serde_json::from_slice(data).map_err(|e| json::explain(data, e))?;
    Ok(raw
        .into_iter()
        .map(|value| data.slice_ref(value.get().as_bytes()))
        .collect())
}

impl Aggregator for ListAggregator {
    type Writer<Tag: Send + 'static> = GroupedWriter<ListFraming, Tag>;
    type Frames = std::iter::Once<Result<Frame, ReadError>>;
    type Output<T: Send + 'static> = Vec<T>;

    fn writer<Tag: Send + 'static>(&self, max_record_size: usize) -> Self::Writer<Tag> {
        GroupedWriter::new(max_record_size)
    }

    fn shaped_writer<Tag: Send + 'static>(
        &self,
        max_record_size: usize,
        shape: WriterShape,
    ) -> Self::Writer<Tag> {
        GroupedWriter::shaped(max_record_size, shape)
    }

    fn frames(&self, data: &Bytes, partition_key: &str) -> Self::Frames {
        std::iter::once(Ok(Frame::new(0, Arc::from(partition_key), data.clone())))
    }

    fn decode<S: Serializer>(
        &self,
        serializer: &S,
        data: &Bytes,
    ) -> Result<Vec<S::Item>, DecodeError> {
        elements(data)?
            .iter()
            .map(|element| serializer.deserialize(element))
            .collect()
    }
}

/// Items of one JSON-list record read element by element.
pub type ListItemFrames = std::vec::IntoIter<Result<Frame, ReadError>>;

impl Aggregator for ListItemsAggregator {
    type Writer<Tag: Send + 'static> = GroupedWriter<ListFraming, Tag>;
    type Frames = ListItemFrames;
    type Output<T: Send + 'static> = T;

    fn writer<Tag: Send + 'static>(&self, max_record_size: usize) -> Self::Writer<Tag> {
        GroupedWriter::new(max_record_size)
    }

    fn shaped_writer<Tag: Send + 'static>(
        &self,
        max_record_size: usize,
        shape: WriterShape,
    ) -> Self::Writer<Tag> {
        GroupedWriter::shaped(max_record_size, shape)
    }

    fn frames(&self, data: &Bytes, partition_key: &str) -> ListItemFrames {
        let key: Arc<str> = Arc::from(partition_key);
        let frames: Vec<_> = match elements(data) {
            Ok(elements) => (0u64..)
                .zip(elements)
                .map(|(i, data)| Ok(Frame::new(i, key.clone(), data)))
                .collect(),
            Err(e) => vec![Err(ReadError::NotAJsonList(e))],
        };
        frames.into_iter()
    }

    fn decode<S: Serializer>(&self, serializer: &S, data: &Bytes) -> Result<S::Item, DecodeError> {
        serializer.deserialize(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{JsonSerializer, RecordWriter};
    use serde_json::{Value, json};

    #[test]
    fn writes_a_json_array_with_exact_size() {
        // "[1,22]" = 6 bytes + key "k" = 7.
        let mut w = ListAggregator.writer::<u8>(7);
        assert!(
            w.push(1, Bytes::from_static(b"1"), "k", None)
                .expect("ok")
                .is_none()
        );
        assert!(
            w.push(2, Bytes::from_static(b"22"), "k", None)
                .expect("ok")
                .is_none()
        );
        assert_eq!(w.buffered_bytes(), 7);
        let full = w
            .push(3, Bytes::from_static(b"3"), "k", None)
            .expect("ok")
            .expect("emitted");
        assert_eq!(&full.data[..], b"[1,22]");
        assert_eq!(&w.flush()[0].data[..], b"[3]");
    }

    #[test]
    fn reads_whole_list_or_items() {
        let data = Bytes::from_static(b"[1, {\"a\": [2]}, \"x\"]");
        let ser = JsonSerializer::<Value>::new();
        let whole = ListAggregator.decode(&ser, &data).expect("list");
        assert_eq!(whole, vec![json!(1), json!({"a": [2]}), json!("x")]);
        let items: Vec<Value> = ListItemsAggregator
            .frames(&data, "k")
            .map(|f| ser.deserialize(&f.expect("frame").data).expect("item"))
            .collect();
        assert_eq!(items, whole);
        let bad = Bytes::from_static(b"{\"not\": \"a list\"}");
        assert!(ListAggregator.decode(&ser, &bad).is_err());
        let mut frames = ListItemsAggregator.frames(&bad, "k");
        assert!(matches!(
            frames.next(),
            Some(Err(ReadError::NotAJsonList(_)))
        ));
        assert!(frames.next().is_none());
    }
}
