//! Every item accounted for: which of the ids `0..expected` came back, how many twice, and how
//! many items were not ours at all.

use serde::Serialize;

/// Counts the ids seen of `0..expected`.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    seen: Vec<bool>,
    unique: u64,
    duplicates: u64,
    foreign: u64,
}

/// The outcome of a [`Tally`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Accounting {
    /// Distinct items received.
    pub(crate) received: u64,
    /// Items never received.
    pub(crate) lost: u64,
    /// Items received more than once (each extra copy counts).
    pub(crate) duplicates: u64,
    /// Items that carried no id of this run (undecodable or not ours).
    pub(crate) foreign: u64,
}

impl Tally {
    /// A tally expecting the ids `0..expected`.
    pub(crate) fn new(expected: u64) -> Self {
        Self {
            seen: vec![false; usize::try_from(expected).unwrap_or(usize::MAX)],
            unique: 0,
            duplicates: 0,
            foreign: 0,
        }
    }

    /// Records one received item.
    pub(crate) fn see(&mut self, id: Option<u64>) {
        let slot = id
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|i| self.seen.get_mut(i));
        match slot {
            Some(seen) if *seen => self.duplicates += 1,
            Some(seen) => {
                *seen = true;
                self.unique += 1;
            }
            None => self.foreign += 1,
        }
    }

    /// Whether every expected id was seen.
    pub(crate) fn complete(&self) -> bool {
        self.unique == self.seen.len() as u64
    }

    /// Distinct items seen so far.
    pub(crate) fn unique(&self) -> u64 {
        self.unique
    }

    /// The accounting so far.
    pub(crate) fn accounting(&self) -> Accounting {
        Accounting {
            received: self.unique,
            lost: self.seen.len() as u64 - self.unique,
            duplicates: self.duplicates,
            foreign: self.foreign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_duplicates_and_foreign_items() {
        let mut tally = Tally::new(4);
        for id in [Some(0), Some(2), Some(2), None, Some(9), Some(3), Some(2)] {
            tally.see(id);
        }
        assert!(!tally.complete());
        assert_eq!(
            tally.accounting(),
            Accounting {
                received: 3,
                lost: 1,
                duplicates: 2,
                foreign: 2
            }
        );
        tally.see(Some(1));
        assert!(tally.complete());
        assert_eq!(tally.accounting().lost, 0);
        assert_eq!(tally.unique(), 4);
    }

    #[test]
    fn nothing_expected_is_complete_at_once() {
        let tally = Tally::new(0);
        assert!(tally.complete());
        assert_eq!(tally.accounting(), Accounting::default());
    }
}
