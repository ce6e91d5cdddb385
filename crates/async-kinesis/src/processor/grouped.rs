//! A writer for formats that cannot carry per-item keys: one buffer per partition key (and
//! explicit hash key), so every item lands in a record with its own keys.

use super::aggregator::{RecordWriter, WriterShape};
use super::error::{RejectReason, Rejected};
use super::record::{OutgoingRecord, check_keys};
use bytes::Bytes;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

/// How items are framed inside one record.
pub trait Framing: Send + Sync + 'static {
    /// Bytes a record adds once, whatever its items (e.g. a closing bracket).
    const RECORD_OVERHEAD: usize;
    /// Bytes the framing adds around an item of `len` bytes.
    fn item_overhead(len: usize) -> usize;
    /// Appends an item; `first` tells whether it is the record's first item.
    fn append(buf: &mut Vec<u8>, first: bool, item: &[u8]);
    /// Finishes a non-empty record.
    fn close(buf: &mut Vec<u8>);
}

struct Group<Tag> {
    explicit_hash_key: Option<String>,
    /// Creation order, so flush emits oldest groups first.
    seq: u64,
    data: Vec<u8>,
    tags: Vec<Tag>,
}

/// Writer that aggregates items with equal keys into records of framing `F`.
pub struct GroupedWriter<F, Tag> {
    max_record_size: usize,
    /// A group is emitted before it would grow past this (at most `max_record_size`).
    seal_at: usize,
    groups: HashMap<String, Vec<Group<Tag>>>,
    next_seq: u64,
    items: usize,
    bytes: usize,
    _framing: PhantomData<fn() -> F>,
}

impl<F, Tag> fmt::Debug for GroupedWriter<F, Tag> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupedWriter")
            .field("max_record_size", &self.max_record_size)
            .field("groups", &self.groups.len())
            .field("items", &self.items)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl<F: Framing, Tag> GroupedWriter<F, Tag> {
    pub(crate) fn new(max_record_size: usize) -> Self {
        Self::shaped(max_record_size, WriterShape::aggregates_of(max_record_size))
    }

    /// A writer whose groups are emitted before they grow past `shape.aggregate_bytes`.
    pub(crate) fn shaped(max_record_size: usize, shape: WriterShape) -> Self {
        Self {
            max_record_size,
            seal_at: shape.aggregate_bytes.min(max_record_size),
            groups: HashMap::new(),
            next_seq: 0,
            items: 0,
            bytes: 0,
            _framing: PhantomData,
        }
    }

    fn finish(partition_key: String, mut group: Group<Tag>) -> (u64, OutgoingRecord<Tag>) {
        F::close(&mut group.data);
        let record = OutgoingRecord {
            data: Bytes::from(group.data),
            partition_key,
            explicit_hash_key: group.explicit_hash_key,
            tags: group.tags,
        };
        (group.seq, record)
    }
}

impl<F: Framing, Tag: Send + 'static> RecordWriter<Tag> for GroupedWriter<F, Tag> {
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
        let framed = data.len() + F::item_overhead(data.len());
        let alone = framed + F::RECORD_OVERHEAD + partition_key.len();
        if alone > self.max_record_size {
            let reason = RejectReason::TooLarge {
                size: alone,
                max: self.max_record_size,
            };
            return Err(Rejected::new(tag, data, reason));
        }
        let groups = match self.groups.get_mut(partition_key) {
            Some(groups) => groups,
            None => self.groups.entry(partition_key.to_owned()).or_default(),
        };
        let index = match groups
            .iter()
            .position(|g| g.explicit_hash_key.as_deref() == explicit_hash_key)
        {
            Some(index) => index,
            None => {
                groups.push(Group {
                    explicit_hash_key: explicit_hash_key.map(str::to_owned),
                    seq: self.next_seq,
                    data: Vec::new(),
                    tags: Vec::new(),
                });
                self.next_seq += 1;
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        let mut emitted = None;
        let current = group.data.len() + F::RECORD_OVERHEAD + partition_key.len();
        if !group.tags.is_empty() && current + framed > self.seal_at {
            // Full: emit the group and start a fresh one (same slot, new creation order).
            let full = Group {
                explicit_hash_key: group.explicit_hash_key.clone(),
                seq: std::mem::replace(&mut group.seq, self.next_seq),
                data: std::mem::take(&mut group.data),
                tags: std::mem::take(&mut group.tags),
            };
            self.next_seq += 1;
            self.items -= full.tags.len();
            self.bytes -= current;
            emitted = Some(Self::finish(partition_key.to_owned(), full).1);
        }
        let first = group.tags.is_empty();
        F::append(&mut group.data, first, &data);
        group.tags.push(tag);
        self.items += 1;
        self.bytes += framed;
        if first {
            self.bytes += F::RECORD_OVERHEAD + partition_key.len();
        }
        Ok(emitted)
    }

    fn flush(&mut self) -> Vec<OutgoingRecord<Tag>> {
        let mut out: Vec<(u64, OutgoingRecord<Tag>)> = Vec::with_capacity(self.groups.len());
        for (key, groups) in self.groups.drain() {
            for group in groups {
                if !group.tags.is_empty() {
                    out.push(Self::finish(key.clone(), group));
                }
            }
        }
        out.sort_unstable_by_key(|(seq, _)| *seq);
        self.items = 0;
        self.bytes = 0;
        out.into_iter().map(|(_, record)| record).collect()
    }

    fn buffered_items(&self) -> usize {
        self.items
    }

    fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn max_record_size(&self) -> usize {
        self.max_record_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{NewlineFraming, WriterShape};

    #[test]
    fn groups_are_sealed_at_the_shape_size_and_a_larger_item_still_goes_alone() {
        let mut w: GroupedWriter<NewlineFraming, u32> =
            GroupedWriter::shaped(100_000, WriterShape::aggregates_of(4_096));
        let mut records = Vec::new();
        for tag in 0..40 {
            records.extend(
                w.push(tag, Bytes::from(vec![b'x'; 500]), "k", None)
                    .expect("fits"),
            );
        }
        records.extend(
            w.push(99, Bytes::from(vec![b'y'; 10_000]), "k", None)
                .expect("fits"),
        );
        records.extend(
            w.push(100, Bytes::from(vec![b'z'; 10]), "k", None)
                .expect("fits"),
        );
        records.extend(w.flush());
        for record in &records {
            if record.tags.contains(&99) {
                assert_eq!(record.tags, [99], "alone");
            } else {
                assert!(record.size() <= 4_096, "{}", record.size());
            }
        }
        let tags: Vec<u32> = records.iter().flat_map(|r| r.tags.clone()).collect();
        assert_eq!(tags, (0..40).chain([99, 100]).collect::<Vec<_>>());
        // 40 items of ~500 bytes in records of at most 4 KiB: at least five records.
        assert!(records.len() >= 7, "{}", records.len());
        assert!(
            w.push(1, Bytes::from(vec![b'x'; 100_001]), "k", None)
                .is_err()
        );
    }
}
