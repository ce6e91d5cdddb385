//! The KPL protobuf messages (proto2), decoded with prost.

use bytes::Bytes;

/// `AggregatedRecord` with its user records left undecoded (an embedded message is
/// length-delimited like `bytes`), so each user record is decoded on its own and a malformed one
/// fails alone.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ShallowAggregatedRecordPb {
    #[prost(string, repeated, tag = "1")]
    pub(super) partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub(super) explicit_hash_key_table: Vec<String>,
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub(super) records: Vec<Bytes>,
}

/// `AggregatedRecord` of the KPL aggregation format.
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct AggregatedRecordPb {
    #[prost(string, repeated, tag = "1")]
    pub(super) partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub(super) explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub(super) records: Vec<RecordPb>,
}

/// `Record` of the KPL aggregation format.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RecordPb {
    #[prost(uint64, required, tag = "1")]
    pub(super) partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub(super) explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", required, tag = "3")]
    pub(super) data: Bytes,
    #[prost(message, repeated, tag = "4")]
    pub(super) tags: Vec<TagPb>,
}

/// `Tag` of the KPL aggregation format (read and ignored).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct TagPb {
    #[prost(string, required, tag = "1")]
    pub(super) key: String,
    #[prost(string, optional, tag = "2")]
    pub(super) value: Option<String>,
}
