//! Writing KPL aggregated records. The protobuf is encoded incrementally so the exact size of
//! the record is known before each item is added.

use super::{InnerKeys, KPL_DIGEST_LEN, KPL_MAGIC};
use crate::processor::aggregator::{RecordWriter, WriterShape};
use crate::processor::error::{RejectReason, Rejected};
use crate::processor::record::{OutgoingRecord, check_keys};
use bytes::Bytes;
use md5::{Digest, Md5};
use prost::encoding::{encode_varint, encoded_len_varint};
use std::collections::HashMap;
use std::fmt;

// Protobuf field keys (field number << 3 | wire type).
const PARTITION_KEY_TABLE: u8 = 0x0A; // 1, length-delimited
const EXPLICIT_HASH_KEY_TABLE: u8 = 0x12; // 2, length-delimited
const RECORDS: u8 = 0x1A; // 3, length-delimited
const RECORD_PARTITION_KEY_INDEX: u8 = 0x08; // 1, varint
const RECORD_EXPLICIT_HASH_KEY_INDEX: u8 = 0x10; // 2, varint
const RECORD_DATA: u8 = 0x1A; // 3, length-delimited

const FRAME_OVERHEAD: usize = KPL_MAGIC.len() + KPL_DIGEST_LEN;

fn len_u64(n: usize) -> u64 {
    // usize always fits in u64 on supported targets.
    n as u64
}

/// A key table being built: key → index, and the encoded table entries.
#[derive(Debug, Default)]
struct KeyTable {
    index: HashMap<String, u64>,
    encoded: Vec<u8>,
}

impl KeyTable {
    /// Index the key has or would get, and the bytes adding it would cost.
    fn cost(&self, key: &str) -> (u64, usize) {
        match self.index.get(key) {
            Some(&i) => (i, 0),
            None => (
                len_u64(self.index.len()),
                1 + encoded_len_varint(len_u64(key.len())) + key.len(),
            ),
        }
    }

    fn add(&mut self, field: u8, key: &str) -> u64 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = len_u64(self.index.len());
        self.index.insert(key.to_owned(), i);
        self.encoded.push(field);
        encode_varint(len_u64(key.len()), &mut self.encoded);
        self.encoded.extend_from_slice(key.as_bytes());
        i
    }

    fn clear(&mut self) {
        self.index.clear();
        self.encoded.clear();
    }
}

/// Writer of [`KplAggregator`](super::KplAggregator).
pub struct KplWriter<Tag> {
    max_record_size: usize,
    /// An aggregate is emitted before it would grow past this (at most `max_record_size`).
    seal_at: usize,
    /// Every item as a plain record of its own (the stream ignores keys; see
    /// [`WriterShape::service_distributes`]).
    plain: bool,
    inner_keys: InnerKeys,
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    records: Vec<u8>,
    tags: Vec<Tag>,
    outer_key: String,
    outer_explicit_hash_key: Option<String>,
}

impl<Tag> fmt::Debug for KplWriter<Tag> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KplWriter")
            .field("max_record_size", &self.max_record_size)
            .field("inner_keys", &self.inner_keys)
            .field("items", &self.tags.len())
            .finish()
    }
}

/// What adding one item costs, computed before anything changes.
struct Plan {
    added: usize,
    record_entry_len: usize,
    inner_len: usize,
}

impl<Tag> KplWriter<Tag> {
    pub(super) fn new(max_record_size: usize, inner_keys: InnerKeys) -> Self {
        Self::shaped(
            max_record_size,
            inner_keys,
            WriterShape::aggregates_of(max_record_size),
        )
    }

    pub(super) fn shaped(
        max_record_size: usize,
        inner_keys: InnerKeys,
        shape: WriterShape,
    ) -> Self {
        Self {
            max_record_size,
            seal_at: shape.aggregate_bytes.min(max_record_size),
            plain: shape.service_distributes,
            inner_keys,
            partition_keys: KeyTable::default(),
            explicit_hash_keys: KeyTable::default(),
            records: Vec::new(),
            tags: Vec::new(),
            outer_key: String::new(),
            outer_explicit_hash_key: None,
        }
    }

    fn body_len(&self) -> usize {
        self.partition_keys.encoded.len()
            + self.explicit_hash_keys.encoded.len()
            + self.records.len()
    }

    /// Current record size, data plus outer partition key (0 when empty).
    fn size(&self) -> usize {
        if self.tags.is_empty() {
            0
        } else {
            FRAME_OVERHEAD + self.body_len() + self.outer_key.len()
        }
    }

    fn plan(&self, data_len: usize, inner_key: &str, ehk: Option<&str>) -> Plan {
        let (pk_index, pk_cost) = self.partition_keys.cost(inner_key);
        let mut inner_len = 1 + encoded_len_varint(pk_index);
        let mut added = pk_cost;
        if let Some(ehk) = ehk {
            let (ehk_index, ehk_cost) = self.explicit_hash_keys.cost(ehk);
            added += ehk_cost;
            inner_len += 1 + encoded_len_varint(ehk_index);
        }
        inner_len += 1 + encoded_len_varint(len_u64(data_len)) + data_len;
        let record_entry_len = 1 + encoded_len_varint(len_u64(inner_len)) + inner_len;
        Plan {
            added: added + record_entry_len,
            record_entry_len,
            inner_len,
        }
    }

    /// One item as a plain (non-aggregated) record: KPL readers pass such records through.
    fn plain_record(
        &self,
        tag: Tag,
        data: Bytes,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
    ) -> Result<Option<OutgoingRecord<Tag>>, Rejected<Tag>> {
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

    fn take_record(&mut self) -> Option<OutgoingRecord<Tag>> {
        if self.tags.is_empty() {
            return None;
        }
        let mut data = Vec::with_capacity(FRAME_OVERHEAD + self.body_len());
        data.extend_from_slice(&KPL_MAGIC);
        data.extend_from_slice(&self.partition_keys.encoded);
        data.extend_from_slice(&self.explicit_hash_keys.encoded);
        data.extend_from_slice(&self.records);
        let digest = Md5::digest(&data[KPL_MAGIC.len()..]);
        data.extend_from_slice(&digest);
        self.partition_keys.clear();
        self.explicit_hash_keys.clear();
        self.records.clear();
        Some(OutgoingRecord {
            data: Bytes::from(data),
            partition_key: std::mem::take(&mut self.outer_key),
            explicit_hash_key: self.outer_explicit_hash_key.take(),
            tags: std::mem::take(&mut self.tags),
        })
    }
}

impl<Tag: Send + 'static> RecordWriter<Tag> for KplWriter<Tag> {
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
        if self.plain {
            return self.plain_record(tag, data, partition_key, explicit_hash_key);
        }
        let inner_key = match self.inner_keys {
            InnerKeys::Real => partition_key,
            InnerKeys::PythonCompatible => "a",
        };
        // Size of a record holding this item alone, with its key as the outer key.
        let alone = {
            let fresh = Self::new(self.max_record_size, self.inner_keys);
            FRAME_OVERHEAD
                + fresh.plan(data.len(), inner_key, explicit_hash_key).added
                + partition_key.len()
        };
        if alone > self.max_record_size {
            let reason = RejectReason::TooLarge {
                size: alone,
                max: self.max_record_size,
            };
            return Err(Rejected::new(tag, data, reason));
        }
        let mut emitted = None;
        let mut plan = self.plan(data.len(), inner_key, explicit_hash_key);
        if !self.tags.is_empty() && self.size() + plan.added > self.seal_at {
            emitted = self.take_record();
            plan = self.plan(data.len(), inner_key, explicit_hash_key);
        }
        if self.tags.is_empty() {
            partition_key.clone_into(&mut self.outer_key);
            self.outer_explicit_hash_key = explicit_hash_key.map(str::to_owned);
        }
        let pk_index = self.partition_keys.add(PARTITION_KEY_TABLE, inner_key);
        let ehk_index =
            explicit_hash_key.map(|k| self.explicit_hash_keys.add(EXPLICIT_HASH_KEY_TABLE, k));
        let before = self.records.len();
        self.records.reserve(plan.record_entry_len);
        self.records.push(RECORDS);
        encode_varint(len_u64(plan.inner_len), &mut self.records);
        self.records.push(RECORD_PARTITION_KEY_INDEX);
        encode_varint(pk_index, &mut self.records);
        if let Some(i) = ehk_index {
            self.records.push(RECORD_EXPLICIT_HASH_KEY_INDEX);
            encode_varint(i, &mut self.records);
        }
        self.records.push(RECORD_DATA);
        encode_varint(len_u64(data.len()), &mut self.records);
        self.records.extend_from_slice(&data);
        debug_assert_eq!(self.records.len() - before, plan.record_entry_len);
        self.tags.push(tag);
        Ok(emitted)
    }

    fn flush(&mut self) -> Vec<OutgoingRecord<Tag>> {
        self.take_record().into_iter().collect()
    }

    fn buffered_items(&self) -> usize {
        self.tags.len()
    }

    fn buffered_bytes(&self) -> usize {
        self.size()
    }

    fn max_record_size(&self) -> usize {
        self.max_record_size
    }
}
