//! Value parsers for partition keys and explicit hash keys given on the command line.

use async_kinesis::partition_key::check_partition_key;
use async_kinesis::stream::shard_map::parse_hash_key;

/// A partition key as Kinesis accepts it (1–256 UTF-16 code units).
///
/// # Errors
/// Why Kinesis would refuse it.
pub(crate) fn partition_key(text: &str) -> Result<String, String> {
    check_partition_key(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}

/// An explicit hash key: decimal, 0..=2^128-1.
///
/// # Errors
/// Why it is not one.
pub(crate) fn explicit_hash_key(text: &str) -> Result<String, String> {
    parse_hash_key(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_as_kinesis_does() {
        assert_eq!(partition_key("k"), Ok("k".to_owned()));
        assert!(partition_key("").expect_err("empty").contains("empty"));
        let long = "\u{1F600}".repeat(129);
        assert!(partition_key(&long).expect_err("long").contains("258"));
        assert!(explicit_hash_key("0").is_ok());
        assert!(explicit_hash_key("-1").is_err());
        assert!(explicit_hash_key("340282366920938463463374607431768211456").is_err());
    }
}
