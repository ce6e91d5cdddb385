//! A shard's acknowledgements shared between its reader, the user's ackers and the checkpoint
//! writer: the tracker behind a lock, what was handed out, the lease deadline and the wake-ups.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::AckTracker;
use crate::checkpoint::Position;

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

    pub(super) fn ack(&self, index: u64) {
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
    pub(super) fn nack(&self, index: u64) -> bool {
        {
            let mut tracker = self.lock();
            if tracker.acked_through(index) || index < self.rewound_below.load(Ordering::Acquire) {
                return false;
            }
            // Every record read so far after the acknowledged prefix is read again: the
            // tracker forgets them now, so an acknowledgement of one of these copies (the
            // next poll's under OnNextPoll) cannot move the prefix past the nacked record
            // before the reader rewinds; none of them is handed out any more, and the reader
            // registers nothing more before it rewinds.
            tracker.rewind();
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

    /// For the reader: when a rewind was asked, returns where to read on (the end of the
    /// acknowledged prefix as the nack left it: see [`AckTracker::rewind`]).
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
    pub(super) fn hand_back(&self, index: u64) {
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
        usize::try_from(handed_out.saturating_sub(tracker.first_pending())).unwrap_or(usize::MAX)
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
