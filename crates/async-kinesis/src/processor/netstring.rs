//! Netstring aggregator: `<decimal length>:<bytes>,` per item.

use super::aggregator::{Aggregator, WriterShape};
use super::error::{DecodeError, NetstringProblem, ReadError};
use super::grouped::{Framing, GroupedWriter};
use super::record::Frame;
use super::serializer::Serializer;
use bytes::Bytes;
use std::io::Write;
use std::sync::Arc;

/// Netstrings concatenated, `5:hello,` per item (the Python library's `NetstringAggregator`,
/// used by `MsgpackProcessor`). Items may hold any bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetstringAggregator;

/// Framing of [`NetstringAggregator`].
#[derive(Debug)]
pub struct NetstringFraming;

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

impl Framing for NetstringFraming {
    const RECORD_OVERHEAD: usize = 0;
    fn item_overhead(len: usize) -> usize {
        decimal_digits(len) + 2
    }
    fn append(buf: &mut Vec<u8>, _first: bool, item: &[u8]) {
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{}:", item.len());
        buf.extend_from_slice(item);
        buf.push(b',');
    }
    fn close(_buf: &mut Vec<u8>) {}
}

/// Longest length prefix accepted: 10 digits covers every Kinesis record size.
const MAX_LENGTH_DIGITS: usize = 10;

/// Items of one netstring record. After a framing error the iterator ends.
#[derive(Debug)]
pub struct NetstringFrames {
    data: Bytes,
    pos: usize,
    next_sub_sequence: u64,
    partition_key: Arc<str>,
    failed: bool,
}

impl NetstringFrames {
    fn parse_one(&self) -> Result<(Bytes, usize), NetstringProblem> {
        let rest = &self.data[self.pos..];
        let colon = rest
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|&b| b == b':');
        let colon = match colon {
            Some(c) => c,
            None if rest
                .iter()
                .take(MAX_LENGTH_DIGITS + 1)
                .all(u8::is_ascii_digit) =>
            {
                if rest.len() > MAX_LENGTH_DIGITS {
                    return Err(NetstringProblem::BadLength);
                }
                return Err(NetstringProblem::MissingColon);
            }
            None => return Err(NetstringProblem::BadLength),
        };
        let digits = &rest[..colon];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(NetstringProblem::BadLength);
        }
        let len = digits
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        let start = colon + 1;
        let end = start.checked_add(len).ok_or(NetstringProblem::BadLength)?;
        if end >= rest.len() {
            return Err(NetstringProblem::Truncated);
        }
        if rest[end] != b',' {
            return Err(NetstringProblem::MissingComma);
        }
        let item = self.data.slice(self.pos + start..self.pos + end);
        Ok((item, end + 1))
    }
}

impl Iterator for NetstringFrames {
    type Item = Result<Frame, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        match self.parse_one() {
            Ok((item, consumed)) => {
                self.pos += consumed;
                let sub_sequence = self.next_sub_sequence;
                self.next_sub_sequence += 1;
                Some(Ok(Frame::new(
                    sub_sequence,
                    self.partition_key.clone(),
                    item,
                )))
            }
            Err(problem) => {
                self.failed = true;
                Some(Err(ReadError::Netstring {
                    offset: self.pos,
                    problem,
                }))
            }
        }
    }
}

impl Aggregator for NetstringAggregator {
    type Writer<Tag: Send + 'static> = GroupedWriter<NetstringFraming, Tag>;
    type Frames = NetstringFrames;
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

    fn frames(&self, data: &Bytes, partition_key: &str) -> NetstringFrames {
        NetstringFrames {
            data: data.clone(),
            pos: 0,
            next_sub_sequence: 0,
            partition_key: Arc::from(partition_key),
            failed: false,
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

    fn read(data: &[u8]) -> Vec<Result<Bytes, (usize, NetstringProblem)>> {
        NetstringAggregator
            .frames(&Bytes::copy_from_slice(data), "k")
            .map(|f| match f {
                Ok(f) => Ok(f.data),
                Err(ReadError::Netstring { offset, problem }) => Err((offset, problem)),
                Err(other) => panic!("unexpected {other}"),
            })
            .collect()
    }

    #[test]
    fn reads_items() {
        assert_eq!(
            read(b"5:hello,0:,3:a,b,"),
            vec![
                Ok(Bytes::from_static(b"hello")),
                Ok(Bytes::new()),
                Ok(Bytes::from_static(b"a,b"))
            ]
        );
        assert!(read(b"").is_empty());
    }

    #[test]
    fn bad_frames_are_errors_and_end_the_record() {
        use NetstringProblem::*;
        assert_eq!(read(b"5:hello"), vec![Err((0, Truncated))]);
        assert_eq!(read(b"5:hello;"), vec![Err((0, MissingComma))]);
        assert_eq!(read(b"x:hello,"), vec![Err((0, BadLength))]);
        assert_eq!(read(b":,"), vec![Err((0, BadLength))]);
        assert_eq!(read(b"+1:a,"), vec![Err((0, BadLength))]);
        assert_eq!(read(b"12"), vec![Err((0, MissingColon))]);
        assert_eq!(read(b"99999999999999999999:"), vec![Err((0, BadLength))]);
        assert_eq!(read(b"9999999999:x,"), vec![Err((0, Truncated))]);
        assert_eq!(
            read(b"1:a,2:b"),
            vec![Ok(Bytes::from_static(b"a")), Err((4, Truncated))]
        );
    }

    #[test]
    fn writer_frames_and_counts_length_digits() {
        assert_eq!(NetstringFraming::item_overhead(9), 3);
        assert_eq!(NetstringFraming::item_overhead(10), 4);
        // "k" + "10:0123456789," = 1 + 14 = 15.
        let mut w = NetstringAggregator.writer::<u8>(15);
        assert!(
            w.push(1, Bytes::from_static(b"0123456789"), "k", None)
                .expect("fits")
                .is_none()
        );
        let out = w.flush();
        assert_eq!(&out[0].data[..], b"10:0123456789,");
        let mut w = NetstringAggregator.writer::<u8>(14);
        assert!(
            w.push(1, Bytes::from_static(b"0123456789"), "k", None)
                .is_err()
        );
    }
}
