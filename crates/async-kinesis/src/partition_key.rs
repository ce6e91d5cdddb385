//! Partition keys as Kinesis checks them: 1 to 256 characters, counted in UTF-16 code units.
//!
//! The service is JVM-based: a character outside the Basic Multilingual Plane (an emoji) counts
//! twice. Checking the same way here refuses a key before it reaches the service, with a reason.

use crate::stream::limits::{PARTITION_KEY_MAX_CHARS, PARTITION_KEY_MIN_CHARS};

/// A partition key Kinesis would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionKeyError {
    /// The key is empty.
    #[error("partition key is empty (Kinesis needs 1 to 256 characters)")]
    Empty,
    /// The key is longer than 256 UTF-16 code units.
    #[error(
        "partition key is {utf16_units} characters long counted as Kinesis counts them \
         (UTF-16 code units), more than 256"
    )]
    TooLong {
        /// The key's length in UTF-16 code units.
        utf16_units: usize,
    },
}

/// Checks a partition key as Kinesis does.
///
/// # Errors
/// [`PartitionKeyError::Empty`] or [`PartitionKeyError::TooLong`].
///
/// ```
/// use async_kinesis::partition_key::{PartitionKeyError, check_partition_key};
///
/// assert!(check_partition_key("customer-7").is_ok());
/// assert_eq!(check_partition_key(""), Err(PartitionKeyError::Empty));
/// // 200 emoji are 200 chars but 400 UTF-16 units.
/// let emoji = "\u{1F600}".repeat(200);
/// assert_eq!(
///     check_partition_key(&emoji),
///     Err(PartitionKeyError::TooLong { utf16_units: 400 })
/// );
/// ```
pub fn check_partition_key(key: &str) -> Result<(), PartitionKeyError> {
    let utf16_units = key.encode_utf16().count();
    if utf16_units < PARTITION_KEY_MIN_CHARS {
        return Err(PartitionKeyError::Empty);
    }
    if utf16_units > PARTITION_KEY_MAX_CHARS {
        return Err(PartitionKeyError::TooLong { utf16_units });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(check_partition_key("a"), Ok(()));
        assert_eq!(check_partition_key(&"a".repeat(256)), Ok(()));
        assert_eq!(
            check_partition_key(&"a".repeat(257)),
            Err(PartitionKeyError::TooLong { utf16_units: 257 })
        );
        // 128 emoji = 256 units: still valid; one more BMP character is not.
        let emoji = "\u{1F600}".repeat(128);
        assert_eq!(check_partition_key(&emoji), Ok(()));
        assert_eq!(
            check_partition_key(&format!("{emoji}x")),
            Err(PartitionKeyError::TooLong { utf16_units: 257 })
        );
        // Multi-byte BMP characters count once each.
        assert_eq!(check_partition_key(&"é".repeat(256)), Ok(()));
        assert_eq!(check_partition_key(""), Err(PartitionKeyError::Empty));
    }
}
