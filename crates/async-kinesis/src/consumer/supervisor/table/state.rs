//! A shard's state in this worker, and the lease it holds while reading.

use tokio::time::Instant;

use crate::checkpoint::Lease;

/// A lease held by this worker, with the handle of its reader (`R`: opaque to the table).
#[derive(Debug)]
pub(crate) struct Held<R> {
    pub(crate) lease: Lease,
    /// Until when the lease is surely ours: one session timeout after the last successful
    /// claim or renewal was sent.
    pub(crate) until: Instant,
    pub(crate) handle: R,
    /// Claimed above the share (a shard nobody else claimed for too long): handed off last
    /// when above the share, or it would be claimed again once it sat unclaimed long enough.
    pub(super) extra: bool,
}

/// What follows once a handed-off lease is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRelease {
    /// Claimable again (by any worker, this one included).
    Wait,
    /// Never claimed again by this worker: its reader panicked here.
    GiveUp,
}

/// Where a shard stands in this worker.
#[derive(Debug)]
pub(crate) enum State<R> {
    /// Not read here: parents not ended, not claimed yet, or held by another worker.
    Waiting,
    /// A claim is on its way to the store.
    Claiming { extra: bool },
    /// Read here.
    Reading(Held<R>),
    /// Read to its end here; its records are being acknowledged before SHARD_END is recorded.
    Draining(Held<R>),
    /// Nothing more is read or handed out; once the records handed out are acknowledged (or
    /// the instant passed) the checkpoint is written and the lease released.
    HandingOff(Held<R>, Instant, AfterRelease),
    /// Stopped by an error (reported); its acknowledged records are still checkpointed, and
    /// its lease is handed off at the instant (for another try, here or elsewhere).
    Stopped(Held<R>, Instant),
    /// Read to its end (here or elsewhere), or nothing to read in it.
    Ended,
    /// Given up after its reader panicked; its lease was released for another worker.
    GivenUp,
}

/// The kind of a [`State`], for matching without the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Waiting,
    Claiming,
    Reading,
    Draining,
    HandingOff,
    Stopped,
    Ended,
    GivenUp,
}

impl<R> State<R> {
    pub(super) fn phase(&self) -> Phase {
        match self {
            Self::Waiting => Phase::Waiting,
            Self::Claiming { .. } => Phase::Claiming,
            Self::Reading(_) => Phase::Reading,
            Self::Draining(_) => Phase::Draining,
            Self::HandingOff(..) => Phase::HandingOff,
            Self::Stopped(..) => Phase::Stopped,
            Self::Ended => Phase::Ended,
            Self::GivenUp => Phase::GivenUp,
        }
    }

    pub(super) fn held(&self) -> Option<&Held<R>> {
        match self {
            Self::Reading(h)
            | Self::Draining(h)
            | Self::Stopped(h, _)
            | Self::HandingOff(h, ..) => Some(h),
            _ => None,
        }
    }

    pub(super) fn held_mut(&mut self) -> Option<&mut Held<R>> {
        match self {
            Self::Reading(h)
            | Self::Draining(h)
            | Self::Stopped(h, _)
            | Self::HandingOff(h, ..) => Some(h),
            _ => None,
        }
    }

    pub(super) fn into_held(self) -> Option<Held<R>> {
        match self {
            Self::Reading(h)
            | Self::Draining(h)
            | Self::Stopped(h, _)
            | Self::HandingOff(h, ..) => Some(h),
            _ => None,
        }
    }
}

impl Phase {
    /// Read to its end and recorded so, here or elsewhere: its children may go.
    pub(crate) fn ended(self) -> bool {
        self == Self::Ended
    }

    /// Counts as this worker's work toward its share.
    pub(super) fn works(self) -> bool {
        matches!(self, Self::Reading | Self::Stopped)
    }
}
