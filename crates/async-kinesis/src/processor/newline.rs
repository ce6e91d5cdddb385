//! Newline aggregator: items each followed by `\n`.

use super::aggregator::{Aggregator, WriterShape};
use super::error::{DecodeError, ReadError};
use super::grouped::{Framing, GroupedWriter};
use super::record::Frame;
use super::serializer::Serializer;
use bytes::Bytes;
use std::sync::Arc;

/// Items each followed by `\n` (the Python library's `NewlineAggregator`, for JSON lines).
/// The reader splits on `\n` and skips empty lines. Items must not contain `\n` themselves
/// (compact JSON never does).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewlineAggregator;

/// Framing of [`NewlineAggregator`].
#[derive(Debug)]
pub struct NewlineFraming;

impl Framing for NewlineFraming {
    const RECORD_OVERHEAD: usize = 0;
    fn item_overhead(_len: usize) -> usize {
        1
    }
    fn append(buf: &mut Vec<u8>, _first: bool, item: &[u8]) {
        buf.extend_from_slice(item);
        buf.push(b'\n');
    }
    fn close(_buf: &mut Vec<u8>) {}
}

/// Items of one newline-framed record.
#[derive(Debug)]
pub struct NewlineFrames {
    data: Bytes,
    pos: usize,
    next_sub_sequence: u64,
    partition_key: Arc<str>,
}

impl Iterator for NewlineFrames {
    type Item = Result<Frame, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.data.len() {
            let rest = &self.data[self.pos..];
            let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let start = self.pos;
            self.pos += len + 1;
            if len > 0 {
                let sub_sequence = self.next_sub_sequence;
                self.next_sub_sequence += 1;
                let data = self.data.slice(start..start + len);
                return Some(Ok(Frame::new(
                    sub_sequence,
                    self.partition_key.clone(),
                    data,
                )));
            }
        }
        None
    }
}

impl Aggregator for NewlineAggregator {
    type Writer<Tag: Send + 'static> = GroupedWriter<NewlineFraming, Tag>;
    type Frames = NewlineFrames;
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

    fn frames(&self, data: &Bytes, partition_key: &str) -> NewlineFrames {
        NewlineFrames {
            data: data.clone(),
            pos: 0,
            next_sub_sequence: 0,
            partition_key: Arc::from(partition_key),
        }
    }

    fn decode<S: Serializer>(&self, serializer: &S, data: &Bytes) -> Result<S::Item, DecodeError> {
        serializer.deserialize(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::RecordWriter;

    fn frames(data: &'static [u8]) -> Vec<(u64, Bytes)> {
        NewlineAggregator
            .frames(&Bytes::from_static(data), "k")
            .map(|f| f.map(|f| (f.sub_sequence, f.data)).expect("frame"))
            .collect()
    }

    #[test]
    fn splits_and_skips_empty_lines() {
        assert_eq!(
            frames(b"a\n\nbc\nd"),
            vec![
                (0, Bytes::from_static(b"a")),
                (1, Bytes::from_static(b"bc")),
                (2, Bytes::from_static(b"d"))
            ]
        );
        assert!(frames(b"").is_empty());
        assert!(frames(b"\n\n").is_empty());
    }

    #[test]
    fn writer_groups_by_key_and_respects_size() {
        // max 8: key "k" (1) + "aa\n" (3) + "bb\n" (3) = 7; a third item overflows.
        let mut w = NewlineAggregator.writer::<u8>(8);
        assert!(
            w.push(1, Bytes::from_static(b"aa"), "k", None)
                .expect("ok")
                .is_none()
        );
        assert!(
            w.push(2, Bytes::from_static(b"xx"), "j", None)
                .expect("ok")
                .is_none()
        );
        assert!(
            w.push(3, Bytes::from_static(b"bb"), "k", None)
                .expect("ok")
                .is_none()
        );
        assert_eq!(w.buffered_items(), 3);
        assert_eq!(w.buffered_bytes(), 7 + 4);
        let full = w
            .push(4, Bytes::from_static(b"cc"), "k", None)
            .expect("ok")
            .expect("emitted");
        assert_eq!(&full.data[..], b"aa\nbb\n");
        assert_eq!(full.tags, vec![1, 3]);
        assert_eq!(full.partition_key, "k");
        let rest = w.flush();
        // "j" was created before the second "k" group.
        assert_eq!(rest.len(), 2);
        assert_eq!(
            (rest[0].tags.clone(), rest[0].partition_key.as_str()),
            (vec![2], "j")
        );
        assert_eq!(
            (rest[1].tags.clone(), &rest[1].data[..]),
            (vec![4], &b"cc\n"[..])
        );
        assert_eq!(w.buffered_items(), 0);
        assert_eq!(w.buffered_bytes(), 0);
        assert!(w.flush().is_empty());
    }

    #[test]
    fn explicit_hash_keys_are_separate_groups() {
        let mut w = NewlineAggregator.writer::<u8>(100);
        for (tag, ehk) in [(1, None), (2, Some("5")), (3, None), (4, Some("5"))] {
            assert!(
                w.push(tag, Bytes::from_static(b"x"), "k", ehk)
                    .expect("ok")
                    .is_none()
            );
        }
        let out = w.flush();
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].tags.clone(), out[0].explicit_hash_key.clone()),
            (vec![1, 3], None)
        );
        assert_eq!(
            (out[1].tags.clone(), out[1].explicit_hash_key.as_deref()),
            (vec![2, 4], Some("5"))
        );
    }

    #[test]
    fn too_large_item_is_returned() {
        let mut w = NewlineAggregator.writer::<u8>(4);
        // "abc\n" + "k" = 5 > 4.
        let err = w
            .push(9, Bytes::from_static(b"abc"), "k", None)
            .expect_err("too large");
        assert_eq!(err.tag, 9);
        assert_eq!(w.buffered_items(), 0);
    }
}
