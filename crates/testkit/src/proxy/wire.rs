//! The bits of the Kinesis awsJson1.1 protocol the proxy reads and writes. Pure.

use serde_json::{Value, json};

/// The `X-Amz-Target` prefix of every Kinesis operation.
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// The operation named by an `X-Amz-Target` header value.
pub(crate) fn operation(target: Option<&str>) -> Option<&str> {
    target?.strip_prefix(TARGET_PREFIX)
}

/// The stream a request names: by `StreamName`, else by `StreamARN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum StreamKey {
    Name(String),
    Arn(String),
}

impl StreamKey {
    pub(crate) fn from_request(body: &Value) -> Option<Self> {
        if let Some(name) = body.get("StreamName").and_then(Value::as_str) {
            return Some(Self::Name(name.to_owned()));
        }
        body.get("StreamARN")
            .and_then(Value::as_str)
            .map(|arn| Self::Arn(arn.to_owned()))
    }

    /// The stream name (an ARN's last path segment).
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Arn(arn) => arn.rsplit_once("stream/").map_or(arn.as_str(), |(_, n)| n),
        }
    }
}

/// The stream a `ConsumerARN` (`arn:…:stream/NAME/consumer/CONSUMER:CREATED`) belongs to.
pub(crate) fn consumer_stream_name(body: &Value) -> Option<&str> {
    let arn = body.get("ConsumerARN")?.as_str()?;
    let (_, rest) = arn.split_once(":stream/")?;
    let (name, _) = rest.split_once("/consumer/")?;
    Some(name)
}

/// The number of bytes a standard base64 string decodes to (padding aware; not validated, since the
/// emulator validates and answers malformed data itself).
pub(crate) fn base64_decoded_len(text: &str) -> u64 {
    let unpadded = text.trim_end_matches('=').len() as u64;
    unpadded * 3 / 4
}

/// What limits and faults need to know about one record of PutRecord(s) or GetRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordInfo {
    pub(crate) partition_key: String,
    pub(crate) explicit_hash_key: Option<String>,
    /// Data + partition key bytes.
    pub(crate) bytes: u64,
}

impl RecordInfo {
    /// Reads a record object; `None` when a field the proxy needs is missing or of the wrong type.
    pub(crate) fn from_json(record: &Value) -> Option<Self> {
        let partition_key = record.get("PartitionKey")?.as_str()?.to_owned();
        let data = record.get("Data")?.as_str()?;
        let explicit_hash_key = match record.get("ExplicitHashKey") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str()?.to_owned()),
        };
        let bytes = base64_decoded_len(data) + partition_key.len() as u64;
        Some(Self {
            partition_key,
            explicit_hash_key,
            bytes,
        })
    }
}

/// An AWS JSON error body: `{"__type": .., "message": ..}`.
pub(crate) fn error_body(error_type: &str, message: &str) -> Vec<u8> {
    json!({ "__type": error_type, "message": message })
        .to_string()
        .into_bytes()
}

/// The message AWS gives a throttled write or read.
pub(crate) fn throttle_message(shard_id: &str, stream: &str, account_id: &str) -> String {
    format!("Rate exceeded for shard {shard_id} in stream {stream} under account {account_id}.")
}

/// A failed PutRecords result entry.
pub(crate) fn failed_entry(error_code: &str, message: &str) -> Value {
    json!({ "ErrorCode": error_code, "ErrorMessage": message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_operation_from_the_target_header() {
        assert_eq!(
            operation(Some("Kinesis_20131202.PutRecords")),
            Some("PutRecords")
        );
        assert_eq!(operation(Some("DynamoDB_20120810.GetItem")), None);
        assert_eq!(operation(None), None);
    }

    #[test]
    fn stream_key_prefers_the_name_and_reads_arns() {
        let by_name =
            json!({"StreamName": "a", "StreamARN": "arn:aws:kinesis:us-east-1:1:stream/b"});
        assert_eq!(
            StreamKey::from_request(&by_name),
            Some(StreamKey::Name("a".into()))
        );
        let by_arn = json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/b"});
        let key = StreamKey::from_request(&by_arn).expect("arn");
        assert_eq!(key.name(), "b");
        assert_eq!(StreamKey::from_request(&json!({})), None);
        assert_eq!(StreamKey::from_request(&json!({"StreamName": 3})), None);
    }

    #[test]
    fn consumer_arns_name_their_stream() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s-1/consumer/stream:1700000000";
        assert_eq!(
            consumer_stream_name(&json!({"ConsumerARN": arn})),
            Some("s-1")
        );
        let stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s-1";
        assert_eq!(
            consumer_stream_name(&json!({"ConsumerARN": stream_arn})),
            None
        );
        assert_eq!(consumer_stream_name(&json!({"StreamARN": arn})), None);
    }

    #[test]
    fn base64_lengths() {
        for (text, len) in [
            ("", 0),
            ("YQ==", 1),
            ("YWI=", 2),
            ("YWJj", 3),
            ("YWJjZA==", 4),
        ] {
            assert_eq!(base64_decoded_len(text), len, "{text}");
        }
    }

    #[test]
    fn record_info_counts_data_and_key_bytes() {
        let r =
            RecordInfo::from_json(&json!({"Data": "YWJj", "PartitionKey": "é"})).expect("valid");
        assert_eq!(r.bytes, 3 + 2);
        assert_eq!(r.explicit_hash_key, None);
        let r = RecordInfo::from_json(
            &json!({"Data": "", "PartitionKey": "k", "ExplicitHashKey": "5"}),
        )
        .expect("valid");
        assert_eq!(r.explicit_hash_key.as_deref(), Some("5"));
        assert_eq!(RecordInfo::from_json(&json!({"Data": "YQ=="})), None);
        assert_eq!(
            RecordInfo::from_json(&json!({"Data": 1, "PartitionKey": "k"})),
            None
        );
        assert_eq!(
            RecordInfo::from_json(&json!({"Data": "", "PartitionKey": "k", "ExplicitHashKey": 5})),
            None
        );
    }

    #[test]
    fn error_shapes() {
        let body: Value = serde_json::from_slice(&error_body("T", "m")).expect("json");
        assert_eq!(body, json!({"__type": "T", "message": "m"}));
        assert_eq!(
            throttle_message("shardId-1", "s", "000000000000"),
            "Rate exceeded for shard shardId-1 in stream s under account 000000000000."
        );
        assert_eq!(
            failed_entry("C", "m"),
            json!({"ErrorCode": "C", "ErrorMessage": "m"})
        );
    }
}
