//! A position inside a shard: a sequence number, and the user record inside an aggregate.

use crate::ids::SequenceNumber;
use std::cmp::Ordering;
use std::fmt;

/// Everything up to and including this point of a shard was processed.
///
/// `sub_sequence` is `None` when the whole Kinesis record at `sequence_number` was processed (resume
/// with AFTER_SEQUENCE_NUMBER), or `Some(n)` when only its user records `0..=n` were (resume with
/// AT_SEQUENCE_NUMBER and skip those).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The Kinesis record's sequence number (a decimal string).
    pub sequence_number: SequenceNumber,
    /// The last processed user record inside that record, or `None` for all of them.
    pub sub_sequence: Option<u64>,
}

impl Position {
    /// The whole record at `sequence_number` was processed.
    pub fn after(sequence_number: impl Into<SequenceNumber>) -> Self {
        Self {
            sequence_number: sequence_number.into(),
            sub_sequence: None,
        }
    }

    /// User records `0..=sub_sequence` of the record at `sequence_number` were processed.
    pub fn within(sequence_number: impl Into<SequenceNumber>, sub_sequence: u64) -> Self {
        Self {
            sequence_number: sequence_number.into(),
            sub_sequence: Some(sub_sequence),
        }
    }

    /// Refuses a position no store could read back (a sequence number that is not decimal),
    /// before it is written: a store holding one would call the shard's entry damaged.
    pub(crate) fn check(&self, operation: &'static str) -> Result<(), super::CheckpointError> {
        if super::StartingPoint::is_valid_sequence(&self.sequence_number) {
            return Ok(());
        }
        Err(super::CheckpointError::Store {
            operation,
            source: format!(
                "sequence number {:?} is not a decimal number",
                self.sequence_number
            )
            .into(),
            retryable: false,
        })
    }
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_sequence_numbers(&self.sequence_number, &other.sequence_number).then_with(|| {
            match (self.sub_sequence, other.sub_sequence) {
                (None, None) => Ordering::Equal,
                // A whole record is past any part of it.
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(&b),
            }
        })
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub_sequence {
            None => f.write_str(&self.sequence_number),
            Some(sub) => write!(f, "{}/{sub}", self.sequence_number),
        }
    }
}

/// Compares two Kinesis sequence numbers (decimal strings of up to 128 digits) as numbers.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("010", "10"), Ordering::Equal);
        assert_eq!(
            compare_sequence_numbers(
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692540925702759324208523137515618"
            ),
            Ordering::Less
        );
        assert_eq!(compare_sequence_numbers("0", ""), Ordering::Equal);
    }

    #[test]
    fn a_whole_record_is_past_its_parts_and_before_the_next_record() {
        let part0 = Position::within("100", 0);
        let part5 = Position::within("100", 5);
        let whole = Position::after("100");
        let next = Position::within("101", 0);
        assert!(part0 < part5 && part5 < whole && whole < next);
        assert_eq!(whole.to_string(), "100");
        assert_eq!(part5.to_string(), "100/5");
    }
}
