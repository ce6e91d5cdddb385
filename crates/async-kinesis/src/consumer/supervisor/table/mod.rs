//! The shard table: every known shard's state in this worker and the rules that move it. Pure:
//! no I/O and no clock (the time is passed in), so every transition is unit-tested.
//!
//! ```text
//!            claim sent           claim acquired           read to its end
//!  Waiting ─────────────▶ Claiming ─────────────▶ Reading ─────────────▶ Draining ──▶ Ended
//!     ▲  ◀── refused / failed ──┘                 │  │  │  (or a closed shard that is gone)
//!     │                                           │  │  └─ read error ─▶ Stopped
//!     │◀──────── released ◀── HandingOff ◀── above the share, or Stopped past its backoff
//!     │◀──────── lost / expiring (any state holding a lease)
//!     └───────── GivenUp ◀── released ◀── HandingOff ◀── the reader panicked
//! ```
//!
//! A shard may start once every parent still listed has ended (both parents of a merge) —
//! ended, not drained: its SHARD_END is recorded, so no restart can read a parent's records
//! again after its children's; a parent that left the listing (trimmed after the retention
//! period) does not block. Each
//! reader is tagged with its lease's fencing token: an outcome carrying another token is of an
//! earlier reader of the shard and changes nothing.

mod events;
mod state;

pub(crate) use events::{Applied, Due, GroupEntry, Merged, ReaderEnd};
pub(crate) use state::{AfterRelease, Held, Phase, State};

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::super::balance;
use super::super::topology::Topology;
use crate::checkpoint::{FencingToken, Lease, WorkerId};
use crate::stream::shard::Shard;

/// The lease timing the table reasons with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// A lease not renewed for this long may be taken by another worker.
    pub(crate) session_timeout: Duration,
    /// How often leases are renewed.
    pub(crate) heartbeat: Duration,
}

impl Timing {
    /// How long a handed-off shard's records already handed out get to be acknowledged.
    fn hand_off_grace(self) -> Duration {
        self.heartbeat / 2
    }

    /// A shard no worker claimed for this long, while readable, is claimed even above this
    /// worker's share: some worker cannot read it (it gave it up), and every share is full.
    fn unclaimed_too_long(self) -> Duration {
        self.session_timeout + self.heartbeat * 2
    }

    /// How long a shard stopped by an error keeps its lease before it is released for another
    /// try (here or by another worker), after `stops` earlier stops of it here: a heartbeat,
    /// doubling with each stop, at most [`MAX_STOPPED`].
    fn stopped_backoff(self, stops: u32) -> Duration {
        self.heartbeat
            .saturating_mul(1 << stops.min(16))
            .min(MAX_STOPPED)
    }
}

/// The longest a stopped shard waits before it is tried again.
pub(crate) const MAX_STOPPED: Duration = Duration::from_secs(5 * 60);

struct Entry<R> {
    shard: Shard,
    state: State<R>,
    /// Since when no worker is known to hold it (while waiting here).
    unclaimed_since: Option<Instant>,
    /// Times its reader stopped on an error here, for the backoff before the next try.
    stops: u32,
    /// Claims of it the store answered with an error that retrying at once would not mend (an
    /// unreadable entry), and until when it is not claimed again.
    claim_errors: u32,
    claim_again_at: Option<Instant>,
    /// When it became known here: a listing sent before then may not show it yet.
    added_at: Instant,
}

/// Every known shard of the stream and its state in this worker.
pub(crate) struct ShardTable<R> {
    entries: BTreeMap<String, Entry<R>>,
    topology: Topology,
    timing: Timing,
    /// This worker's fair share, from the last balance (`usize::MAX` before the first).
    target: usize,
    /// `max_shard_consumers`: never more readers than this.
    max_readers: Option<usize>,
}

impl<R> ShardTable<R> {
    pub(crate) fn new(timing: Timing, max_readers: Option<usize>) -> Self {
        Self {
            entries: BTreeMap::new(),
            topology: Topology::default(),
            timing,
            target: max_readers.unwrap_or(usize::MAX),
            max_readers,
        }
    }

    // --- facts -----------------------------------------------------------------------------

    pub(crate) fn phase(&self, shard_id: &str) -> Option<Phase> {
        self.entries.get(shard_id).map(|e| e.state.phase())
    }

    pub(crate) fn held(&self, shard_id: &str) -> Option<&Held<R>> {
        self.entries.get(shard_id).and_then(|e| e.state.held())
    }

    /// Every lease held here: shard, phase, lease.
    pub(crate) fn leases(&self) -> impl Iterator<Item = (&str, Phase, &Held<R>)> {
        self.entries
            .iter()
            .filter_map(|(id, e)| e.state.held().map(|h| (id.as_str(), e.state.phase(), h)))
    }

    pub(crate) fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The known shards, by id.
    pub(crate) fn shards(&self) -> BTreeMap<String, Shard> {
        self.entries
            .iter()
            .map(|(id, e)| (id.clone(), e.shard.clone()))
            .collect()
    }

    pub(crate) fn shard(&self, shard_id: &str) -> Option<&Shard> {
        self.entries.get(shard_id).map(|e| &e.shard)
    }

    /// Leases held for reading (what the `consumer_leases_held` gauge shows).
    pub(crate) fn working(&self) -> usize {
        self.count(|e| e.state.phase().works())
    }

    /// This worker's share, from the last balance.
    pub(crate) fn target(&self) -> usize {
        self.target
    }

    pub(crate) fn count_phase(&self, phase: Phase) -> usize {
        self.count(|e| e.state.phase() == phase)
    }

    /// Below its share (or allowed more readers): worth looking for free leases.
    pub(crate) fn wants_more(&self) -> bool {
        self.share_used() < self.target
    }

    fn count(&self, f: impl Fn(&Entry<R>) -> bool) -> usize {
        self.entries.values().filter(|e| f(e)).count()
    }

    /// Work counted toward the share: leases read here and claims on their way (not those
    /// going out as extras).
    fn share_used(&self) -> usize {
        self.count(|e| match &e.state {
            State::Claiming { extra } => !extra,
            State::Reading(h) | State::Stopped(h, _) => !h.extra,
            _ => false,
        })
    }

    /// Readers and claims of any kind (bounded by `max_readers`).
    fn readers(&self) -> usize {
        self.count(|e| matches!(e.state, State::Claiming { .. }) || e.state.phase().works())
    }

    /// Whether every listed parent of the shard ended.
    pub(crate) fn can_start(&self, shard_id: &str) -> bool {
        let ended = |id: &str| self.phase(id).is_some_and(Phase::ended);
        self.topology.can_start(shard_id, ended)
    }

    // --- listing ---------------------------------------------------------------------------

    /// A full listing of the stream, asked for at `sent`: adds new shards, updates known ones
    /// (the listing has the sequence ranges ChildShards lacks) and forgets those gone from it
    /// that are not held. A shard learnt of after `sent` (a child announced at a parent's end
    /// while the listing was on its way) is kept: the listing may predate it.
    pub(crate) fn listed(&mut self, shards: Vec<Shard>, sent: Instant) -> Merged {
        let present: HashSet<String> = shards.iter().map(|s| s.shard_id.to_string()).collect();
        let pruned: Vec<String> = self
            .entries
            .iter()
            .filter(|(id, e)| !present.contains(*id) && e.state.held().is_none())
            .filter(|(_, e)| e.added_at <= sent)
            .filter(|(_, e)| !matches!(e.state, State::Claiming { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &pruned {
            self.entries.remove(id);
        }
        let new_children = self.add(shards, true, sent);
        Merged {
            new_children,
            pruned,
        }
    }

    /// Adds shards (known here from `now`); `true` when any unknown one has a parent.
    fn add(&mut self, shards: Vec<Shard>, update: bool, now: Instant) -> bool {
        let mut new_children = false;
        for shard in shards {
            match self.entries.get_mut(shard.shard_id.as_str()) {
                Some(entry) => {
                    if update {
                        entry.shard = shard;
                    }
                }
                None => {
                    new_children |= shard.parent_shard_id.is_some();
                    self.entries.insert(
                        shard.shard_id.to_string(),
                        Entry {
                            shard,
                            state: State::Waiting,
                            unclaimed_since: None,
                            stops: 0,
                            claim_errors: 0,
                            claim_again_at: None,
                            added_at: now,
                        },
                    );
                }
            }
        }
        self.topology = Topology::build(self.entries.values().map(|e| &e.shard));
        new_children
    }

    // --- the group -------------------------------------------------------------------------

    /// The store's view of the group: shards finished elsewhere end here too; shards no worker
    /// holds start their unclaimed clock.
    pub(crate) fn observe_group(&mut self, leases: &[GroupEntry], me: &WorkerId, now: Instant) {
        let mut held_elsewhere = HashSet::new();
        for info in leases {
            if info.owner.as_ref().is_some_and(|o| o != me) {
                held_elsewhere.insert(info.shard_id.as_str());
            }
            if info.finished
                && let Some(entry) = self.entries.get_mut(&info.shard_id)
                && matches!(entry.state, State::Waiting | State::GivenUp)
            {
                entry.state = State::Ended;
            }
        }
        for (id, entry) in &mut self.entries {
            if !matches!(entry.state, State::Waiting) || held_elsewhere.contains(id.as_str()) {
                entry.unclaimed_since = None;
            } else {
                entry.unclaimed_since.get_or_insert(now);
            }
        }
    }

    /// Recomputes this worker's share of the shards readable now among the `live` workers;
    /// the shards to hand off (above the share) move to handing off, and are returned.
    pub(crate) fn rebalance(
        &mut self,
        me: &WorkerId,
        live: &[WorkerId],
        now: Instant,
    ) -> Vec<String> {
        let available = self
            .entries
            .iter()
            .filter(|(id, e)| {
                matches!(
                    e.state.phase(),
                    Phase::Waiting
                        | Phase::Claiming
                        | Phase::Reading
                        | Phase::Stopped
                        | Phase::HandingOff
                        | Phase::GivenUp
                ) && self.can_start(id)
            })
            .count();
        let share = balance::fair_share(me, live, available);
        self.target = self.max_readers.map_or(share, |max| share.min(max));
        // Extras are handed off last: another worker above its share hands off first, and
        // one that gave a shard up would not take it back (it would only be claimed here
        // again once it sat unclaimed long enough).
        let (mut extras, mut counted) = (Vec::new(), Vec::new());
        for (id, e) in &self.entries {
            if let Some(h) = e.state.held().filter(|_| e.state.phase().works()) {
                if h.extra { &mut extras } else { &mut counted }.push(id.clone());
            }
        }
        let mut shed = balance::to_shed(&counted, self.target.saturating_sub(extras.len()));
        shed.extend(balance::to_shed(&extras, self.target));
        for id in &shed {
            self.hand_off(id, now, AfterRelease::Wait);
        }
        // An extra kept holds a place within the share now: counted as regular work, or the
        // shard just handed off in its place would be claimed back here at once.
        for id in extras.iter().filter(|id| !shed.contains(id)) {
            if let Some(h) = self.entries.get_mut(id).and_then(|e| e.state.held_mut()) {
                h.extra = false;
            }
        }
        shed
    }

    /// Stops reading a shard: nothing more of it is handed out; once its handed-out records
    /// are acknowledged (or a grace period passed) its lease is released.
    fn hand_off(&mut self, shard_id: &str, now: Instant, then: AfterRelease) -> bool {
        let Some(entry) = self.entries.get_mut(shard_id) else {
            return false;
        };
        let state = std::mem::replace(&mut entry.state, State::Waiting);
        entry.state = match state {
            State::Reading(h) | State::Stopped(h, _) | State::Draining(h) => {
                State::HandingOff(h, now + self.timing.hand_off_grace(), then)
            }
            State::HandingOff(h, until, before) => {
                let then = if then == AfterRelease::GiveUp {
                    then
                } else {
                    before
                };
                State::HandingOff(h, until, then)
            }
            other => {
                entry.state = other;
                return false;
            }
        };
        true
    }

    // --- claims ----------------------------------------------------------------------------

    /// The shards to claim now, marked as claiming: waiting, readable, up to the share (and
    /// `max_readers`). With `only_unclaimed`, only shards no other worker is known to hold.
    /// Shards no worker claimed for too long are claimed even above the share (as extras).
    pub(crate) fn next_claims(&mut self, now: Instant, only_unclaimed: bool) -> Vec<String> {
        let max = self.max_readers.unwrap_or(usize::MAX);
        let mut room = self.target.saturating_sub(self.share_used());
        let mut readers = self.readers();
        let waiting: Vec<(String, Option<Instant>)> = self
            .entries
            .iter()
            .filter(|(id, e)| matches!(e.state, State::Waiting) && self.can_start(id))
            .filter(|(_, e)| e.claim_again_at.is_none_or(|at| now >= at))
            .filter(|(_, e)| !only_unclaimed || e.unclaimed_since.is_some())
            .map(|(id, e)| (id.clone(), e.unclaimed_since))
            .collect();
        let mut claims = Vec::new();
        for (id, unclaimed_since) in waiting {
            if readers >= max {
                break;
            }
            let extra = if room > 0 {
                room -= 1;
                false
            } else if unclaimed_since.is_some_and(|at| now >= at + self.timing.unclaimed_too_long())
            {
                true
            } else {
                continue;
            };
            readers += 1;
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.state = State::Claiming { extra };
            }
            claims.push(id);
        }
        claims
    }

    /// The claim was refused (held by another worker) or failed: the shard waits again.
    pub(crate) fn claim_failed(&mut self, shard_id: &str) {
        if let Some(entry) = self.entries.get_mut(shard_id)
            && matches!(entry.state, State::Claiming { .. })
        {
            entry.state = State::Waiting;
            entry.unclaimed_since = None;
        }
    }

    /// The claim failed with an error that retrying at once would not mend (the store cannot
    /// read the shard's entry): the shard waits, and is not claimed again here for a
    /// heartbeat, doubling with each such failure (at most [`MAX_STOPPED`]), so a damaged entry
    /// costs a claim and an error item now and then, not every tick.
    pub(crate) fn claim_errored(&mut self, shard_id: &str, now: Instant) {
        self.claim_failed(shard_id);
        if let Some(entry) = self.entries.get_mut(shard_id) {
            entry.claim_again_at = Some(now + self.timing.stopped_backoff(entry.claim_errors));
            entry.claim_errors = entry.claim_errors.saturating_add(1);
        }
    }

    /// The store says the shard was read to its end (or there is nothing to read in it).
    pub(crate) fn claim_finished(&mut self, shard_id: &str) {
        if let Some(entry) = self.entries.get_mut(shard_id)
            && matches!(entry.state, State::Claiming { .. } | State::Waiting)
        {
            entry.state = State::Ended;
        }
    }

    /// The claim sent at `sent` was acquired and a reader started with `handle`.
    /// `false` (and nothing changed) when the shard was not being claimed.
    pub(crate) fn reading(
        &mut self,
        shard_id: &str,
        lease: Lease,
        sent: Instant,
        handle: R,
    ) -> bool {
        let until = sent + self.timing.session_timeout;
        match self.entries.get_mut(shard_id) {
            Some(entry) => match entry.state {
                State::Claiming { extra } => {
                    // Held, an extra claim counts like any lease toward the readers, but it is
                    // handed off only after every other lease above the share.
                    entry.state = State::Reading(Held {
                        lease,
                        until,
                        handle,
                        extra,
                    });
                    entry.unclaimed_since = None;
                    entry.claim_errors = 0;
                    entry.claim_again_at = None;
                    true
                }
                _ => false,
            },
            None => false,
        }
    }

    // --- readers ---------------------------------------------------------------------------

    /// Applies how the reader of lease `token` ended. An outcome of an earlier lease's reader
    /// is ignored: its shard may be read under a newer lease by now.
    pub(crate) fn reader_ended(
        &mut self,
        shard_id: &str,
        token: FencingToken,
        end: ReaderEnd,
        now: Instant,
    ) -> Applied {
        let closed = self.shard(shard_id).is_some_and(|s| !s.is_open());
        let Some(entry) = self.entries.get_mut(shard_id) else {
            return Applied::Nothing;
        };
        if entry.state.held().is_none_or(|h| h.lease.token != token) {
            return Applied::Nothing;
        }
        let reading = matches!(entry.state, State::Reading(_));
        match end {
            ReaderEnd::Panicked(_) => {
                self.hand_off(shard_id, now, AfterRelease::GiveUp);
                Applied::GivingUp
            }
            ReaderEnd::Cancelled => Applied::Nothing,
            _ if !reading => Applied::Nothing,
            ReaderEnd::Ended { children } => {
                entry.stops = 0;
                Self::swap(entry, State::Draining);
                let new_children = self.add(children, false, now);
                Applied::Changed { new_children }
            }
            // A closed shard whose records are gone (trimmed) has nothing more to give: it
            // counts as read to its end so its children start.
            ReaderEnd::Gone if closed => {
                Self::swap(entry, State::Draining);
                Applied::Changed {
                    new_children: false,
                }
            }
            ReaderEnd::Gone | ReaderEnd::Stopped => {
                let retry_at = now + self.timing.stopped_backoff(entry.stops);
                entry.stops = entry.stops.saturating_add(1);
                let state = std::mem::replace(&mut entry.state, State::Waiting);
                if let Some(held) = state.into_held() {
                    entry.state = State::Stopped(held, retry_at);
                }
                Applied::Changed {
                    new_children: false,
                }
            }
        }
    }

    /// Moves a held lease into another holding state (callers checked that one is held).
    fn swap(entry: &mut Entry<R>, to: fn(Held<R>) -> State<R>) {
        let state = std::mem::replace(&mut entry.state, State::Waiting);
        if let Some(held) = state.into_held() {
            entry.state = to(held);
        }
    }

    // --- leases ----------------------------------------------------------------------------

    /// A renewal of lease `token` sent at `sent` went through. `false` when the lease is not
    /// held here any more.
    pub(crate) fn renewed(&mut self, shard_id: &str, token: FencingToken, sent: Instant) -> bool {
        let session = self.timing.session_timeout;
        match self.held_entry_mut(shard_id, token) {
            Some(held) => {
                held.until = held.until.max(sent + session);
                true
            }
            None => false,
        }
    }

    fn held_entry_mut(&mut self, shard_id: &str, token: FencingToken) -> Option<&mut Held<R>> {
        self.entries
            .get_mut(shard_id)
            .and_then(|e| e.state.held_mut())
            .filter(|h| h.lease.token == token)
    }

    /// The lease `token` is (or may be) another worker's: the shard waits again here; the held
    /// lease is returned so its reader can be stopped.
    pub(crate) fn lost(&mut self, shard_id: &str, token: FencingToken) -> Option<Held<R>> {
        self.held_entry_mut(shard_id, token)?;
        let entry = self.entries.get_mut(shard_id)?;
        let given_up = matches!(entry.state, State::HandingOff(_, _, AfterRelease::GiveUp));
        let to = if given_up {
            State::GivenUp
        } else {
            State::Waiting
        };
        entry.unclaimed_since = None;
        std::mem::replace(&mut entry.state, to).into_held()
    }

    /// Leases that would expire before the next renewal (one heartbeat from `now`): reading on
    /// would risk two readers once another worker claims them. They are given up (as
    /// [`Self::lost`]) and returned.
    pub(crate) fn expiring(&mut self, now: Instant) -> Vec<(String, Held<R>)> {
        let deadline = now + self.timing.heartbeat;
        let ids: Vec<(String, FencingToken)> = self
            .leases()
            .filter(|(_, _, h)| h.until <= deadline)
            .map(|(id, _, h)| (id.to_owned(), h.lease.token))
            .collect();
        ids.into_iter()
            .filter_map(|(id, token)| self.lost(&id, token).map(|h| (id, h)))
            .collect()
    }

    /// Shards stopped by an error whose backoff passed: handed off (their lease is released
    /// once their handed-out records are acknowledged), so this or another worker tries them
    /// again from their checkpoint. Returned, to stop their readers' hand-outs.
    pub(crate) fn retry_stopped(&mut self, now: Instant) -> Vec<String> {
        let due: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Stopped(_, at) if now >= at))
            .map(|(id, _)| id.clone())
            .collect();
        due.into_iter()
            .filter(|id| self.hand_off(id, now, AfterRelease::Wait))
            .collect()
    }

    /// Leases to finish now: drained shards whose records were all acknowledged
    /// (`outstanding` answers for a handle), handed-off shards whose handed-out records were
    /// acknowledged (`acked`) or whose grace period passed.
    pub(crate) fn due(
        &self,
        now: Instant,
        outstanding: impl Fn(&R) -> usize,
        acked: impl Fn(&R) -> bool,
    ) -> Vec<Due> {
        self.entries
            .iter()
            .filter_map(|(id, e)| match &e.state {
                State::Draining(h) if outstanding(&h.handle) == 0 => {
                    Some(Due::ShardEnd(id.clone()))
                }
                State::HandingOff(h, until, _) if acked(&h.handle) || now >= *until => {
                    Some(Due::Release(id.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// SHARD_END was recorded for lease `token` and the lease released.
    pub(crate) fn shard_ended(&mut self, shard_id: &str, token: FencingToken) -> Option<Held<R>> {
        self.finish_lease(shard_id, token, State::Ended)
    }

    /// The handed-off lease `token` was released.
    pub(crate) fn released(&mut self, shard_id: &str, token: FencingToken) -> Option<Held<R>> {
        let then = match self.entries.get(shard_id).map(|e| &e.state) {
            Some(State::HandingOff(_, _, then)) => *then,
            _ => return None,
        };
        let to = match then {
            AfterRelease::Wait => State::Waiting,
            AfterRelease::GiveUp => State::GivenUp,
        };
        self.finish_lease(shard_id, token, to)
    }

    fn finish_lease(
        &mut self,
        shard_id: &str,
        token: FencingToken,
        to: State<R>,
    ) -> Option<Held<R>> {
        self.held_entry_mut(shard_id, token)?;
        let entry = self.entries.get_mut(shard_id)?;
        entry.unclaimed_since = None;
        std::mem::replace(&mut entry.state, to).into_held()
    }

    /// Shutdown: every held lease leaves the table (to be checkpointed and released).
    pub(crate) fn take_all(&mut self) -> Vec<(String, Held<R>)> {
        self.entries
            .iter_mut()
            .filter(|(_, e)| e.state.held().is_some())
            .filter_map(|(id, e)| {
                std::mem::replace(&mut e.state, State::Waiting)
                    .into_held()
                    .map(|h| (id.clone(), h))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
