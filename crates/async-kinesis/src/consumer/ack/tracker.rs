//! The pure per-shard ledger: positions read, which are acknowledged, how far the contiguous
//! acknowledged prefix reaches and what the store holds.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::checkpoint::Position;

/// Per shard: positions read but not yet covered by the acknowledged prefix.
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    /// Index of `pending[0]`.
    base: u64,
    pending: VecDeque<Slot>,
    /// The end of the acknowledged prefix.
    acked_to: Option<Position>,
    /// What the store holds (as far as this process wrote it).
    written: Option<Position>,
    /// Acknowledged records since the last write.
    acked_since_write: u64,
}

#[derive(Debug)]
struct Slot {
    position: Position,
    acked: bool,
    /// When its batch was read.
    read_at: Instant,
}

impl AckTracker {
    /// A tracker whose store already holds `written`.
    pub(crate) fn resuming(written: Option<Position>) -> Self {
        Self {
            acked_to: written.clone(),
            written,
            ..Self::default()
        }
    }

    /// Registers the next record read; returns its index. `acked` for records nobody has to
    /// acknowledge (skipped poison, records without items).
    pub(crate) fn push(&mut self, position: Position, acked: bool, read_at: Instant) -> u64 {
        let index = self.next_index();
        self.pending.push_back(Slot {
            position,
            acked,
            read_at,
        });
        if acked {
            self.advance();
        }
        index
    }

    /// Acknowledges the record `index`; repeated and unknown indexes are ignored.
    /// Returns whether the acknowledged prefix grew.
    pub(crate) fn ack(&mut self, index: u64) -> bool {
        let Some(offset) = index.checked_sub(self.base) else {
            return false; // already behind the prefix
        };
        let Ok(offset) = usize::try_from(offset) else {
            return false;
        };
        match self.pending.get_mut(offset) {
            Some(slot) if !slot.acked => {
                slot.acked = true;
                self.advance()
            }
            _ => false,
        }
    }

    fn advance(&mut self) -> bool {
        let mut grew = false;
        while self.pending.front().is_some_and(|slot| slot.acked) {
            if let Some(slot) = self.pending.pop_front() {
                self.base += 1;
                self.acked_since_write += 1;
                self.acked_to = Some(slot.position);
                grew = true;
            }
        }
        grew
    }

    /// The position to write, if the prefix moved past what was written.
    pub(crate) fn to_write(&self) -> Option<&Position> {
        match (&self.acked_to, &self.written) {
            (Some(acked), Some(written)) if acked <= written => None,
            (acked, _) => acked.as_ref(),
        }
    }

    /// Records that `position` was written.
    pub(crate) fn written(&mut self, position: Position) {
        if self.written.as_ref().is_none_or(|w| *w < position) {
            self.written = Some(position);
        }
        self.acked_since_write = 0;
    }

    /// Acknowledged records not yet written.
    pub(crate) fn acked_since_write(&self) -> u64 {
        self.acked_since_write
    }

    /// Records read and not yet acknowledged (including ones waiting behind a gap).
    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Whether every record up to `index` (inclusive) is acknowledged.
    pub(crate) fn acked_through(&self, index: u64) -> bool {
        self.base > index
    }

    /// The index the next record read gets.
    /// The index of the oldest record not covered by the acknowledged prefix (or of the next
    /// record, when every record read is covered).
    pub(crate) fn first_pending(&self) -> u64 {
        self.base
    }

    pub(crate) fn next_index(&self) -> u64 {
        self.base + self.pending.len() as u64
    }

    /// The oldest record not acknowledged (the first of the pending ones: acknowledged records
    /// at the front leave at once): its index and when it was read.
    pub(crate) fn oldest_unacked(&self) -> Option<(u64, Instant)> {
        self.pending.front().map(|slot| (self.base, slot.read_at))
    }

    /// Forgets every record after the acknowledged prefix: their indexes fall behind the
    /// prefix, so their ackers change nothing any more. Returns where reading must go on
    /// (the end of the prefix; `None`: where the shard's reading started).
    pub(crate) fn rewind(&mut self) -> Option<Position> {
        self.base = self.next_index();
        self.pending.clear();
        self.acked_to.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(seq: u64) -> Position {
        Position::after(seq.to_string())
    }

    #[test]
    fn the_checkpoint_follows_the_contiguous_acked_prefix() {
        let mut t = AckTracker::default();
        let ids: Vec<u64> = (1..=5)
            .map(|s| t.push(pos(s), false, Instant::now()))
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(t.to_write(), None);
        // Acks out of order: 2 and 4 first; nothing may be written past the gap at 1.
        assert!(!t.ack(1));
        assert!(!t.ack(3));
        assert_eq!(t.to_write(), None);
        assert!(t.ack(0));
        assert_eq!(t.to_write(), Some(&pos(2)));
        assert!(t.ack(2));
        assert_eq!(t.to_write(), Some(&pos(4)));
        assert_eq!(t.outstanding(), 1);
        t.written(pos(4));
        assert_eq!(t.to_write(), None);
        assert_eq!(t.acked_since_write(), 0);
        assert!(t.ack(4));
        assert_eq!(t.to_write(), Some(&pos(5)));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn repeated_and_stale_acks_are_ignored() {
        let mut t = AckTracker::default();
        let a = t.push(pos(1), false, Instant::now());
        assert!(t.ack(a));
        assert!(!t.ack(a));
        assert!(!t.ack(99));
        assert_eq!(t.to_write(), Some(&pos(1)));
        assert_eq!(t.acked_since_write(), 1);
    }

    #[test]
    fn pre_acked_records_pass_once_the_gap_before_them_closes() {
        let mut t = AckTracker::default();
        let a = t.push(pos(1), false, Instant::now());
        t.push(pos(2), true, Instant::now()); // skipped poison
        assert_eq!(t.to_write(), None);
        t.ack(a);
        assert_eq!(t.to_write(), Some(&pos(2)));
        // A pre-acked record with nothing before it moves the prefix at once.
        t.push(pos(3), true, Instant::now());
        assert_eq!(t.to_write(), Some(&pos(3)));
    }

    #[test]
    fn parts_of_an_aggregate_checkpoint_inside_the_record() {
        let mut t = AckTracker::default();
        let a = t.push(Position::within("7", 0), false, Instant::now());
        let b = t.push(Position::within("7", 1), false, Instant::now());
        let c = t.push(Position::after("7"), false, Instant::now());
        t.ack(a);
        t.ack(b);
        assert_eq!(t.to_write(), Some(&Position::within("7", 1)));
        t.ack(c);
        assert_eq!(t.to_write(), Some(&Position::after("7")));
    }

    #[test]
    fn a_resumed_tracker_does_not_rewrite_the_stored_position() {
        let mut t = AckTracker::resuming(Some(pos(10)));
        assert_eq!(t.to_write(), None);
        let a = t.push(pos(11), false, Instant::now());
        assert_eq!(a, 0);
        assert!(!t.acked_through(a));
        t.ack(a);
        assert!(t.acked_through(a));
        assert_eq!(t.to_write(), Some(&pos(11)));
        // Writing an older position does not move the record of what is stored back.
        t.written(pos(11));
        t.written(pos(3));
        assert_eq!(t.written, Some(pos(11)));
    }
}
