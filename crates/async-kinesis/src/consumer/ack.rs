//! Acknowledgements: which records of a shard the user is done with, and how far a checkpoint may
//! go. The tracker is pure; [`Acker`] is the user's handle onto it.
//!
//! Records of a shard are numbered in the order they are read. The checkpoint may move only over
//! the contiguous prefix of acknowledged records: an acknowledged record behind an unacknowledged
//! one waits until the gap is closed, so a checkpoint never passes a record the user has not
//! finished.
//!
//! A negative acknowledgement ([`Acker::nack`]) rewinds the shard: every record after the
//! acknowledged prefix is dropped from the tracker (their ackers go stale) and the reader reads
//! them again from there, so the nacked record and everything read after it come again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
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
    fn next_index(&self) -> u64 {
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

/// The flag bit of [`ShardAcks::handed_out`].
const REVOKED: u64 = 1 << 63;

/// A shard's tracker shared between its reader, the user's ackers and the checkpoint writer.
#[derive(Debug)]
pub(crate) struct ShardAcks {
    tracker: Mutex<AckTracker>,
    /// Highest index handed to the user, plus one (0: none); the [`REVOKED`] bit once the lease
    /// is given up or lost, after which nothing more of the shard is handed out.
    handed_out: AtomicU64,
    /// Until when the lease is surely ours, in nanoseconds after `created`. Checked at every
    /// hand-out, so a supervisor held up in a slow store call cannot let records out after the
    /// lease could have passed to another worker.
    lease_until: AtomicU64,
    created: Instant,
    /// Wakes the checkpoint writer when enough was acknowledged.
    wake: Arc<Notify>,
    wake_after: u64,
    /// Read to its end: the last acknowledgement wakes the checkpoint writer at once, to
    /// record SHARD_END (the shard's children wait for it).
    drained: AtomicBool,
    /// Wakes the reader waiting for acknowledgements (room under `max_unacked_records`, the
    /// end of a drained shard) or a rewind; notified only while `reader_waits`.
    progress: Notify,
    reader_waits: AtomicBool,
    /// A record was nacked: the reader reads on from the acknowledged prefix.
    rewind: AtomicBool,
    /// Records below this index were read before the last rewind: they are read again, so
    /// these copies are not handed out.
    rewound_below: AtomicU64,
    /// The index of the oldest unacknowledged record last warned about (`u64::MAX`: none).
    warned_about: AtomicU64,
}

impl ShardAcks {
    /// A shard whose lease is ours until `lease_until`.
    pub(crate) fn new(
        tracker: AckTracker,
        wake: Arc<Notify>,
        wake_after: u64,
        lease_until: Instant,
    ) -> Self {
        let created = Instant::now();
        Self {
            tracker: Mutex::new(tracker),
            handed_out: AtomicU64::new(0),
            lease_until: AtomicU64::new(nanos_after(created, lease_until)),
            created,
            wake,
            wake_after: wake_after.max(1),
            drained: AtomicBool::new(false),
            progress: Notify::new(),
            reader_waits: AtomicBool::new(false),
            rewind: AtomicBool::new(false),
            rewound_below: AtomicU64::new(0),
            warned_about: AtomicU64::new(u64::MAX),
        }
    }

    /// The shard was read to its end: from now on, the acknowledgement that leaves nothing
    /// outstanding wakes the checkpoint writer.
    pub(crate) fn set_drained(&self) {
        self.drained.store(true, Ordering::Release);
    }

    /// Until when the lease is surely ours.
    pub(crate) fn lease_until(&self) -> Instant {
        self.created + Duration::from_nanos(self.lease_until.load(Ordering::Acquire))
    }

    /// A renewal sent at `until − session` was accepted: the lease is ours until `until`.
    pub(crate) fn extend_lease(&self, until: Instant) {
        self.lease_until
            .fetch_max(nanos_after(self.created, until), Ordering::AcqRel);
    }

    /// Whether nothing more of the shard is handed out (given up, lost, or its lease ran out
    /// before the supervisor renewed it).
    pub(crate) fn is_revoked(&self) -> bool {
        self.handed_out.load(Ordering::Acquire) & REVOKED != 0
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, AckTracker> {
        // Every tracker update is a handful of field writes that cannot panic halfway in a way
        // that breaks its invariants, so a poisoned lock still guards a usable tracker.
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ack(&self, index: u64) {
        let (grew, wake) = {
            let mut tracker = self.lock();
            let grew = tracker.ack(index);
            let wake = grew
                && (tracker.acked_since_write() >= self.wake_after
                    || (self.drained.load(Ordering::Acquire) && tracker.outstanding() == 0));
            (grew, wake)
        };
        if wake {
            self.wake.notify_one();
        }
        if grew {
            self.wake_reader();
        }
    }

    /// Wakes the reader if it waits. The reader announces that it waits before it checks under
    /// the tracker's lock, and this runs after the change under that lock, so a wake-up is
    /// never missed.
    fn wake_reader(&self) {
        if self.reader_waits.load(Ordering::SeqCst) {
            self.progress.notify_waiters();
        }
    }

    /// Asks the reader to read on from the acknowledged prefix, unless the record `index` is
    /// acknowledged already or was read before the last rewind. Returns whether it was asked.
    fn nack(&self, index: u64) -> bool {
        {
            let tracker = self.lock();
            if tracker.acked_through(index) || index < self.rewound_below.load(Ordering::Acquire) {
                return false;
            }
            // Every record read so far is read again: from now on none of them is handed
            // out, and the reader registers nothing more before it rewinds.
            self.rewound_below
                .store(tracker.next_index(), Ordering::Release);
            self.rewind.store(true, Ordering::Release);
        }
        self.wake_reader();
        true
    }

    /// Whether a rewind was asked and not yet done; checked by the reader under the tracker's
    /// lock (which `nack` holds to ask), so a batch registered after a nack never is.
    pub(crate) fn rewind_asked(&self) -> bool {
        self.rewind.load(Ordering::Acquire)
    }

    /// For the reader: when a rewind was asked, forgets every record after the acknowledged
    /// prefix and returns where to read on (see [`AckTracker::rewind`]).
    pub(crate) fn take_rewind(&self) -> Option<Option<Position>> {
        if !self.rewind.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut tracker = self.lock();
        self.rewound_below
            .store(tracker.next_index(), Ordering::Release);
        Some(tracker.rewind())
    }

    /// For the reader: waits until `done` holds for the tracker or a rewind is asked.
    pub(crate) async fn wait_until(&self, done: impl Fn(&AckTracker) -> bool) {
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.reader_waits.store(true, Ordering::SeqCst);
            if self.rewind.load(Ordering::Acquire) || done(&self.lock()) {
                self.reader_waits.store(false, Ordering::SeqCst);
                return;
            }
            notified.await;
        }
    }

    /// The oldest unacknowledged record, when it was read at or before `stale_at` and was not
    /// warned about yet: its index and when it was read (each record is warned about once).
    pub(crate) fn stale_unacked(&self, stale_at: Instant) -> Option<(u64, Instant)> {
        let (index, read_at) = self.lock().oldest_unacked()?;
        (read_at <= stale_at && self.warned_about.swap(index, Ordering::AcqRel) != index)
            .then_some((index, read_at))
    }

    /// Notes that the record `index` reaches the user; `false` (and nothing noted) when the
    /// shard's lease was given up: the record is after the last checkpoint, so the shard's next
    /// owner delivers it, and handing it out here would only duplicate it.
    pub(crate) fn handed_out(&self, index: u64) -> bool {
        if index < self.rewound_below.load(Ordering::Acquire) {
            return false; // read again after a rewind: that copy is handed out instead
        }
        if Instant::now() >= self.lease_until() {
            // Final: records refused here stay unacknowledged, so no checkpoint passes them
            // and the shard's next claim reads them again.
            self.revoke();
            return false;
        }
        self.handed_out
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current & REVOKED == 0).then_some(current.max(index + 1))
            })
            .is_ok()
    }

    /// The record `index`, the last handed out, comes back unprocessed (a shutdown under
    /// `OnNextPoll`): it no longer counts as handed out, so the shutdown does not wait for its
    /// acknowledgement, and it stays unacknowledged, so the shard's next reader reads it again.
    /// Nothing changes when a later record of the shard was handed out since.
    fn hand_back(&self, index: u64) {
        let _ = self
            .handed_out
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current & !REVOKED == index + 1).then_some((current & REVOKED) | index)
            });
    }

    /// Stops handing out the shard's records (atomically with [`ShardAcks::handed_out`]): from
    /// now on the set of handed-out records only shrinks by acknowledgement.
    pub(crate) fn revoke(&self) {
        self.handed_out.fetch_or(REVOKED, Ordering::AcqRel);
    }

    fn handed_out_count(&self) -> u64 {
        self.handed_out.load(Ordering::Acquire) & !REVOKED
    }

    /// Records handed to the user and not acknowledged.
    pub(crate) fn unacked_handed_out(&self) -> usize {
        let handed_out = self.handed_out_count();
        let tracker = self.lock();
        usize::try_from(handed_out.saturating_sub(tracker.base)).unwrap_or(usize::MAX)
    }

    /// Whether every record handed to the user was acknowledged.
    pub(crate) fn all_handed_out_acked(&self) -> bool {
        match self.handed_out_count() {
            0 => true,
            n => self.lock().acked_through(n - 1),
        }
    }
}

fn nanos_after(start: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}

/// Acknowledges one record. Cheap to clone; acknowledging twice is harmless.
#[derive(Debug, Clone)]
pub struct Acker {
    shard: Arc<ShardAcks>,
    index: u64,
}

impl Acker {
    pub(crate) fn new(shard: Arc<ShardAcks>, index: u64) -> Self {
        Self { shard, index }
    }

    /// Marks the record as processed: checkpoints may now move over it (once every earlier
    /// record of its shard is processed too).
    pub fn ack(&self) {
        self.shard.ack(self.index);
    }

    /// Marks the record as **not** processed: its shard is read again from the first record
    /// not acknowledged, so this record and every record of the shard read after it come
    /// again (those acknowledged already too: the at-least-once cost of a rewind). Their
    /// earlier copies' acknowledgements change nothing any more. Returns `false`, and changes
    /// nothing, when the record was acknowledged already, or comes again anyway (an earlier
    /// record of its shard was nacked since it was read).
    ///
    /// Under [`AckPolicy::OnNextPoll`](super::AckPolicy::OnNextPoll) call it before asking
    /// for the next item, which would acknowledge the record.
    pub fn nack(&self) -> bool {
        self.shard.nack(self.index)
    }

    /// `false` when the record must not reach the user (see [`ShardAcks::handed_out`]).
    pub(crate) fn mark_handed_out(&self) -> bool {
        self.shard.handed_out(self.index)
    }

    /// The record comes back unprocessed (see [`ShardAcks::hand_back`]); `false` when it was
    /// acknowledged already (it is then processed, and nothing changes).
    #[must_use = "false: it was acknowledged already"]
    pub(crate) fn hand_back(&self) -> bool {
        if self.shard.lock().acked_through(self.index) {
            return false;
        }
        self.shard.hand_back(self.index);
        true
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

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_handed_out_once_the_lease_could_have_expired() {
        let lease_until = Instant::now() + Duration::from_secs(10);
        let shard = Arc::new(ShardAcks::new(
            AckTracker::default(),
            Arc::default(),
            100,
            lease_until,
        ));
        let ackers: Vec<Acker> = (1..=4)
            .map(|s| {
                Acker::new(
                    shard.clone(),
                    shard.lock().push(pos(s), false, Instant::now()),
                )
            })
            .collect();
        assert!(ackers[0].mark_handed_out());
        // A renewal extends the lease; an older answer arriving late does not shorten it.
        shard.extend_lease(lease_until + Duration::from_secs(5));
        shard.extend_lease(lease_until);
        tokio::time::advance(Duration::from_secs(12)).await;
        assert!(ackers[1].mark_handed_out(), "renewed until 15 s");
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            !ackers[2].mark_handed_out(),
            "the lease may be another's now"
        );
        assert!(shard.is_revoked());
        // Final: a renewal answered after that changes nothing, the gap stays unacknowledged.
        shard.extend_lease(Instant::now() + Duration::from_secs(60));
        assert!(!ackers[3].mark_handed_out());
        ackers[0].ack();
        ackers[1].ack();
        assert_eq!(shard.lock().to_write(), Some(&pos(2)));
    }

    #[tokio::test]
    async fn ackers_wake_the_writer_after_enough_acks_and_track_hand_out() {
        let wake = Arc::new(Notify::new());
        let shard = Arc::new(ShardAcks::new(
            AckTracker::default(),
            wake.clone(),
            2,
            far(),
        ));
        let ackers: Vec<Acker> = (1..=3)
            .map(|s| {
                Acker::new(
                    shard.clone(),
                    shard.lock().push(pos(s), false, Instant::now()),
                )
            })
            .collect();
        assert!(shard.all_handed_out_acked());
        assert!(ackers[0].mark_handed_out());
        assert!(ackers[1].mark_handed_out());
        assert!(!shard.all_handed_out_acked());
        ackers[0].ack();
        ackers[1].ack();
        // Two acks reached the threshold: the writer is woken (the permit is stored).
        tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
            .await
            .expect("woken");
        assert!(shard.all_handed_out_acked());
        assert_eq!(shard.lock().outstanding(), 1);
    }

    #[test]
    fn a_record_handed_back_is_neither_waited_for_nor_acknowledged() {
        let shard = Arc::new(ShardAcks::new(
            AckTracker::default(),
            Arc::default(),
            100,
            far(),
        ));
        let ackers: Vec<Acker> = (1..=3)
            .map(|s| {
                Acker::new(
                    shard.clone(),
                    shard.lock().push(pos(s), false, Instant::now()),
                )
            })
            .collect();
        assert!(ackers[0].mark_handed_out());
        assert!(ackers[1].mark_handed_out());
        ackers[0].ack();
        assert!(!shard.all_handed_out_acked());
        // Only the last one handed out, unacknowledged, can come back.
        assert!(!ackers[0].hand_back(), "acknowledged already");
        assert!(!shard.all_handed_out_acked());
        assert!(ackers[1].hand_back());
        assert!(
            shard.all_handed_out_acked(),
            "nothing handed out is unacked"
        );
        assert_eq!(shard.unacked_handed_out(), 0);
        assert_eq!(
            shard.lock().to_write(),
            Some(&pos(1)),
            "the checkpoint stops before it"
        );
        // A revoked shard stays revoked.
        assert!(ackers[1].mark_handed_out());
        shard.revoke();
        assert!(ackers[1].hand_back());
        assert!(shard.is_revoked());
        assert!(!ackers[2].mark_handed_out());
    }

    #[test]
    fn a_revoked_shard_hands_out_nothing_more_and_its_acks_still_count() {
        let shard = Arc::new(ShardAcks::new(
            AckTracker::default(),
            Arc::default(),
            100,
            far(),
        ));
        let ackers: Vec<Acker> = (1..=3)
            .map(|s| {
                Acker::new(
                    shard.clone(),
                    shard.lock().push(pos(s), false, Instant::now()),
                )
            })
            .collect();
        assert!(ackers[0].mark_handed_out());
        shard.revoke();
        assert!(!ackers[1].mark_handed_out());
        assert!(!ackers[2].mark_handed_out());
        assert_eq!(shard.unacked_handed_out(), 1);
        assert!(!shard.all_handed_out_acked());
        ackers[0].ack();
        assert!(shard.all_handed_out_acked());
        assert_eq!(shard.lock().to_write(), Some(&pos(1)));
    }

    fn shard_of(records: u64) -> (Arc<ShardAcks>, Vec<Acker>) {
        let shard = Arc::new(ShardAcks::new(
            AckTracker::default(),
            Arc::default(),
            100,
            far(),
        ));
        let ackers = (1..=records)
            .map(|s| {
                let index = shard.lock().push(pos(s), false, Instant::now());
                Acker::new(shard.clone(), index)
            })
            .collect();
        (shard, ackers)
    }

    #[test]
    fn a_nack_rewinds_to_the_acknowledged_prefix_and_stales_the_copies_read_before() {
        let (shard, ackers) = shard_of(4);
        for acker in &ackers[..3] {
            assert!(acker.mark_handed_out());
        }
        ackers[0].ack();
        ackers[2].ack(); // behind the gap at 1: read again too
        assert!(!ackers[0].nack(), "acknowledged already");
        assert!(shard.take_rewind().is_none(), "nothing asked");
        assert!(ackers[1].nack());
        assert!(
            !ackers[3].nack(),
            "a later record of the same rewind comes again anyway"
        );
        assert!(shard.rewind_asked());
        assert!(
            !ackers[3].mark_handed_out(),
            "refused from the nack on, before the rewind"
        );
        assert_eq!(
            shard.take_rewind(),
            Some(Some(pos(1))),
            "read on after record 1"
        );
        assert!(!shard.rewind_asked());
        assert_eq!(shard.take_rewind(), None, "once");
        // Nothing read before the rewind is outstanding, waited for, or handed out any more.
        assert_eq!(shard.lock().outstanding(), 0);
        assert!(shard.all_handed_out_acked());
        assert_eq!(shard.unacked_handed_out(), 0);
        assert!(
            !ackers[3].mark_handed_out(),
            "its copy read again is handed out instead"
        );
        assert!(!shard.is_revoked(), "the shard goes on");
        ackers[1].ack();
        assert_eq!(
            shard.lock().to_write(),
            Some(&pos(1)),
            "stale acks change nothing"
        );
        // The records read again count from where the old ones stopped.
        let again = shard.lock().push(pos(2), false, Instant::now());
        assert_eq!(again, 4);
        let again = Acker::new(shard.clone(), again);
        assert!(again.mark_handed_out());
        again.ack();
        assert_eq!(shard.lock().to_write(), Some(&pos(2)));
    }

    #[test]
    fn a_nack_before_anything_was_acknowledged_rewinds_to_the_start() {
        let (shard, ackers) = shard_of(2);
        assert!(ackers[1].nack());
        assert_eq!(shard.take_rewind(), Some(None));
        // Resuming from a stored checkpoint, the prefix starts there.
        let resumed = Arc::new(ShardAcks::new(
            AckTracker::resuming(Some(pos(9))),
            Arc::default(),
            100,
            far(),
        ));
        let index = resumed.lock().push(pos(10), false, Instant::now());
        assert!(Acker::new(resumed.clone(), index).nack());
        assert_eq!(resumed.take_rewind(), Some(Some(pos(9))));
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_unacknowledged_record_is_warned_about_once() {
        let start = Instant::now();
        let (shard, ackers) = shard_of(2);
        assert_eq!(shard.lock().oldest_unacked(), Some((0, start)));
        assert_eq!(
            shard.stale_unacked(start - Duration::from_secs(1)),
            None,
            "not old yet"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(shard.stale_unacked(start), Some((0, start)));
        assert_eq!(shard.stale_unacked(start), None, "warned already");
        ackers[0].ack();
        assert_eq!(
            shard.stale_unacked(start),
            Some((1, start)),
            "the next one is stuck too"
        );
        ackers[1].ack();
        assert_eq!(shard.lock().oldest_unacked(), None);
        assert_eq!(shard.stale_unacked(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_reader_waits_for_acknowledgements_or_a_rewind() {
        let (shard, ackers) = shard_of(3);
        let below = |limit: usize| move |t: &AckTracker| t.outstanding() < limit;
        // Done already: no wait.
        tokio::time::timeout(Duration::from_secs(1), shard.wait_until(below(4)))
            .await
            .expect("room already");
        let waiting = tokio::spawn({
            let shard = shard.clone();
            async move { shard.wait_until(below(2)).await }
        });
        tokio::task::yield_now().await;
        ackers[1].ack(); // behind the gap: the prefix does not grow, no room yet
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        ackers[0].ack(); // 0 and 1 leave: one outstanding
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken by the acknowledgement")
            .expect("no panic");
        let waiting = tokio::spawn({
            let shard = shard.clone();
            async move { shard.wait_until(|t| t.outstanding() == 0).await }
        });
        tokio::task::yield_now().await;
        assert!(ackers[2].nack());
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken by the nack")
            .expect("no panic");
        assert_eq!(shard.take_rewind(), Some(Some(pos(2))));
    }
}
