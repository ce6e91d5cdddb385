//! Where a claimed shard starts reading, from what the store recorded and the configuration.
//! Pure.
//!
//! A shard with no checkpoint that starts at LATEST (or AT_TIMESTAMP) has its starting point
//! recorded in the store before its first record is read, and every later claim (a hand-off, a
//! lease lost to a slow store, a restart before the first checkpoint) starts there: a second
//! LATEST would skip what was written in between.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::super::config::IteratorType;
use super::super::shard_reader::StartAt;
use crate::checkpoint::Progress;

/// How much earlier than the LATEST iterator request the recorded start lies.
///
/// Kinesis compares AT_TIMESTAMP with the records' arrival time, on the service's clock; the
/// recorded start is taken from this host's clock. A host clock ahead of the service's by more
/// than the margin would make a later claim skip the records that arrived in that gap, so the
/// margin must exceed any skew a working client can have: AWS refuses signed requests from
/// clocks more than 5 minutes off, so 5 minutes covers every clock that could read the stream
/// at all. Skew within it costs the opposite — records up to the margin older than the start
/// are delivered on a later claim that starts from the recorded point (at-least-once: extra
/// deliveries, never a skip) — and only until the shard's first checkpoint.
pub(crate) const LATEST_SKEW_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The recorded start that means the shard's beginning (TRIM_HORIZON): AT_TIMESTAMP 0 is
/// before every record.
pub(crate) const SHARD_BEGINNING: SystemTime = SystemTime::UNIX_EPOCH;

/// What the consumer was configured to do with shards without a checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct StartConfig {
    pub(crate) iterator_type: IteratorType,
    /// AT_SEQUENCE_NUMBER for this shard, as the user asked.
    pub(crate) sequence: Option<Arc<str>>,
    /// The shard was in the consumer's first listing (LATEST applies to those only; shards
    /// created later are read from their start).
    pub(crate) initial: bool,
    /// The shard is open.
    pub(crate) open: bool,
}

/// What to do with a claimed shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing to read: SHARD_END recorded, or closed before a LATEST start.
    Finish,
    /// Read from `at`; first record `record` (an AT_TIMESTAMP) as the shard's starting point
    /// when set.
    Read {
        at: StartAt,
        record: Option<SystemTime>,
    },
}

/// The plan for a shard claimed with `progress` at `now` (this host's clock).
pub(crate) fn plan(progress: &Progress, config: &StartConfig, now: SystemTime) -> Plan {
    let read = |at| Plan::Read { at, record: None };
    match progress {
        Progress::ShardEnd => Plan::Finish,
        Progress::At(position) => read(StartAt::Resume(position.clone())),
        // An earlier reader recorded where it started, before any checkpoint: start there.
        Progress::Started(point) => read(StartAt::from(point.clone())),
        Progress::None => match (&config.sequence, config.iterator_type) {
            (Some(sequence), _) => read(StartAt::AtSequence(sequence.clone())),
            // Closed before a LATEST start, and nobody recorded a start: nothing in it is new.
            (None, IteratorType::Latest) if config.initial && !config.open => Plan::Finish,
            (None, IteratorType::Latest) if config.initial => Plan::Read {
                at: StartAt::Latest,
                record: Some(now.checked_sub(LATEST_SKEW_MARGIN).unwrap_or(now)),
            },
            (None, IteratorType::AtTimestamp(at)) => Plan::Read {
                at: StartAt::AtTimestamp(at),
                record: Some(at),
            },
            // A shard created after a LATEST start is read from its beginning, and that is
            // recorded too: to a worker that did not see it created (one that joined later, or
            // this one restarted) it would look like a shard of its first listing, to start at
            // LATEST, skipping what was not checkpointed yet.
            (None, IteratorType::Latest) => Plan::Read {
                at: StartAt::TrimHorizon,
                record: Some(SHARD_BEGINNING),
            },
            // Nothing else depends on who claims the shard: its beginning, nothing skipped.
            (None, IteratorType::TrimHorizon) => read(StartAt::TrimHorizon),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Position, StartingPoint};

    fn at_timestamp() -> IteratorType {
        IteratorType::AtTimestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
    }

    fn config(iterator_type: IteratorType, initial: bool, open: bool) -> StartConfig {
        StartConfig {
            iterator_type,
            sequence: None,
            initial,
            open,
        }
    }

    #[test]
    fn a_checkpoint_or_shard_end_wins_over_the_configuration() {
        let now = SystemTime::now();
        for kind in [
            IteratorType::TrimHorizon,
            IteratorType::Latest,
            at_timestamp(),
        ] {
            let c = config(kind, true, true);
            assert_eq!(plan(&Progress::ShardEnd, &c, now), Plan::Finish);
            let at = Position::after("42");
            assert_eq!(
                plan(&Progress::At(at.clone()), &c, now),
                Plan::Read {
                    at: StartAt::Resume(at),
                    record: None
                }
            );
        }
    }

    #[test]
    fn a_recorded_start_is_where_every_later_claim_starts() {
        let now = SystemTime::now();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(77);
        for kind in [
            IteratorType::TrimHorizon,
            IteratorType::Latest,
            at_timestamp(),
        ] {
            // Closed or open, initial or not: the recorded point wins, nothing is recorded.
            for (initial, open) in [(true, true), (true, false), (false, true)] {
                let c = config(kind, initial, open);
                let started = Progress::Started(StartingPoint::AtTimestamp(at));
                assert_eq!(
                    plan(&started, &c, now),
                    Plan::Read {
                        at: StartAt::AtTimestamp(at),
                        record: None
                    }
                );
            }
        }
    }

    #[test]
    fn a_first_latest_start_records_a_point_one_margin_earlier() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let c = config(IteratorType::Latest, true, true);
        assert_eq!(
            plan(&Progress::None, &c, now),
            Plan::Read {
                at: StartAt::Latest,
                record: Some(now - LATEST_SKEW_MARGIN)
            }
        );
        // Closed before the start: nothing new in it.
        let closed = config(IteratorType::Latest, true, false);
        assert_eq!(plan(&Progress::None, &closed, now), Plan::Finish);
        // A shard created after the start is read from its beginning.
        // A shard created after the start is read from its beginning, which is recorded so
        // that no later claim takes it for a first-listing shard and starts it at LATEST.
        let child = config(IteratorType::Latest, false, true);
        assert_eq!(
            plan(&Progress::None, &child, now),
            Plan::Read {
                at: StartAt::TrimHorizon,
                record: Some(SHARD_BEGINNING)
            }
        );
        let recorded = Progress::Started(StartingPoint::AtTimestamp(SHARD_BEGINNING));
        for (initial, open) in [(true, true), (true, false)] {
            assert_eq!(
                plan(&recorded, &config(IteratorType::Latest, initial, open), now),
                Plan::Read {
                    at: StartAt::TrimHorizon,
                    record: None
                },
                "a later claim reads it from its beginning"
            );
        }
    }

    #[test]
    fn at_timestamp_records_the_timestamp_and_a_sequence_is_used_as_given() {
        let now = SystemTime::now();
        let c = config(at_timestamp(), false, true);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            plan(&Progress::None, &c, now),
            Plan::Read {
                at: StartAt::AtTimestamp(at),
                record: Some(at)
            }
        );
        let mut c = config(IteratorType::Latest, true, true);
        c.sequence = Some(Arc::from("77"));
        assert_eq!(
            plan(&Progress::None, &c, now),
            Plan::Read {
                at: StartAt::AtSequence(Arc::from("77")),
                record: None
            }
        );
        let c = config(IteratorType::TrimHorizon, true, true);
        assert_eq!(
            plan(&Progress::None, &c, now),
            Plan::Read {
                at: StartAt::TrimHorizon,
                record: None
            }
        );
    }
}
