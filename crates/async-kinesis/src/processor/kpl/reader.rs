//! Reading KPL aggregated records.

use super::proto::{RecordPb, ShallowAggregatedRecordPb};
use super::{KPL_DIGEST_LEN, KPL_MAGIC};
use crate::processor::error::ReadError;
use crate::processor::record::Frame;
use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;
use std::sync::Arc;

/// Items of one record read by [`KplAggregator`](super::KplAggregator).
#[derive(Debug)]
pub struct KplFrames(State);

#[derive(Debug)]
enum State {
    /// A plain record, or an error about the whole record: one result, then done.
    One(Option<Result<Frame, ReadError>>),
    Aggregate {
        records: std::vec::IntoIter<Bytes>,
        partition_keys: Vec<Arc<str>>,
        explicit_hash_keys: Vec<Arc<str>>,
        next_sub_sequence: u64,
    },
}

impl KplFrames {
    pub(super) fn new(data: &Bytes, partition_key: &str) -> Self {
        if !data.starts_with(&KPL_MAGIC) {
            let frame = Frame::new(0, Arc::from(partition_key), data.clone());
            return Self(State::One(Some(Ok(frame))));
        }
        match parse(data) {
            Ok(message) => Self(State::Aggregate {
                records: message.records.into_iter(),
                partition_keys: message
                    .partition_key_table
                    .into_iter()
                    .map(Arc::from)
                    .collect(),
                explicit_hash_keys: message
                    .explicit_hash_key_table
                    .into_iter()
                    .map(Arc::from)
                    .collect(),
                next_sub_sequence: 0,
            }),
            Err(e) => Self(State::One(Some(Err(e)))),
        }
    }
}

fn parse(data: &Bytes) -> Result<ShallowAggregatedRecordPb, ReadError> {
    let len = data.len();
    if len < KPL_MAGIC.len() + KPL_DIGEST_LEN {
        return Err(ReadError::KplTooShort { len });
    }
    let body = data.slice(KPL_MAGIC.len()..len - KPL_DIGEST_LEN);
    let digest = Md5::digest(&body);
    if digest[..] != data[len - KPL_DIGEST_LEN..] {
        return Err(ReadError::KplDigestMismatch);
    }
    ShallowAggregatedRecordPb::decode(body).map_err(ReadError::KplProtobuf)
}

fn lookup(table: &[Arc<str>], index: u64) -> Option<Arc<str>> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
}

impl Iterator for KplFrames {
    type Item = Result<Frame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            State::One(result) => result.take(),
            State::Aggregate {
                records,
                partition_keys,
                explicit_hash_keys,
                next_sub_sequence,
            } => {
                let encoded = records.next()?;
                let sub_sequence = *next_sub_sequence;
                *next_sub_sequence += 1;
                let record = match RecordPb::decode(encoded) {
                    Ok(record) => record,
                    Err(source) => {
                        return Some(Err(ReadError::KplUserRecord {
                            sub_sequence,
                            source,
                        }));
                    }
                };
                let Some(partition_key) = lookup(partition_keys, record.partition_key_index) else {
                    return Some(Err(ReadError::KplPartitionKeyIndex {
                        sub_sequence,
                        index: record.partition_key_index,
                        table_len: partition_keys.len(),
                    }));
                };
                let explicit_hash_key = match record.explicit_hash_key_index {
                    None => None,
                    Some(index) => match lookup(explicit_hash_keys, index) {
                        Some(key) => Some(key),
                        None => {
                            return Some(Err(ReadError::KplExplicitHashKeyIndex {
                                sub_sequence,
                                index,
                                table_len: explicit_hash_keys.len(),
                            }));
                        }
                    },
                };
                let mut frame = Frame::new(sub_sequence, partition_key, record.data);
                frame.explicit_hash_key = explicit_hash_key;
                Some(Ok(frame))
            }
        }
    }
}
