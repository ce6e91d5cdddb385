//! Scripted faults: which calls or records fail, how, and how often. Pure: the proxy asks, the rules
//! answer and count.

use std::time::Duration;

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Fails records of PutRecords (as per-record entries in a successful response) and PutRecord (as
    /// the call's error) with this error code. The schedule counts records.
    FailRecords {
        /// The `ErrorCode`, e.g. `ProvisionedThroughputExceededException` or `InternalFailure`.
        error_code: String,
        /// The `ErrorMessage`.
        message: String,
    },
    /// Answers GetRecords with ExpiredIteratorException. The schedule counts GetRecords calls.
    ExpireIterator,
    /// Answers the call with an AWS JSON error (`{"__type": .., "message": ..}`) and this HTTP status.
    Error {
        /// The HTTP status, e.g. 500 or 503.
        status: u16,
        /// The error type, e.g. `InternalFailure` or `ServiceUnavailable`.
        error_type: String,
        /// The message.
        message: String,
    },
    /// Closes the connection without answering.
    Reset,
    /// Waits this long before handling the call (other faults and the limits still apply).
    Latency(Duration),
}

/// Which of the matching items (records or calls) a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schedule {
    /// Every one.
    Always,
    /// The first `n`, then none.
    First(u64),
    /// The k-th, 2k-th, 3k-th, … (1-based; `Every(1)` is every one, `Every(0)` none).
    Every(u64),
    /// Exactly ⌊n × p / 100⌋ of the first n, spread evenly (deterministic, not random).
    Percent(u32),
}

impl Schedule {
    /// Whether the item with 0-based index `index` among the matching ones is hit.
    pub fn hits(self, index: u64) -> bool {
        match self {
            Schedule::Always => true,
            Schedule::First(n) => index < n,
            Schedule::Every(k) => k != 0 && (index + 1).is_multiple_of(k),
            Schedule::Percent(p) => {
                let p = u128::from(p.min(100));
                let i = u128::from(index);
                (i + 1) * p / 100 > i * p / 100
            }
        }
    }
}

/// One scripted fault: an action, the calls it applies to, and a schedule.
///
/// ```
/// use testkit::proxy::{Fault, Schedule};
///
/// // Every 10th record of PutRecords/PutRecord fails with InternalFailure.
/// let fault = Fault::fail_records("InternalFailure").schedule(Schedule::Every(10));
/// // The first two DescribeStreamSummary calls answer HTTP 503.
/// let outage = Fault::http_error(503, "ServiceUnavailable")
///     .on("DescribeStreamSummary")
///     .schedule(Schedule::First(2));
/// # let _ = (fault, outage);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub(crate) action: FaultAction,
    pub(crate) operation: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) partition_key: Option<String>,
    pub(crate) schedule: Schedule,
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Self {
            action,
            operation: None,
            stream: None,
            partition_key: None,
            schedule: Schedule::Always,
        }
    }

    /// Fails records with `error_code` and an AWS-like message for it.
    pub fn fail_records(error_code: impl Into<String>) -> Self {
        let error_code = error_code.into();
        let message = match error_code.as_str() {
            "InternalFailure" => "Internal service failure.".to_owned(),
            "ProvisionedThroughputExceededException" => {
                "Rate exceeded for shard (injected fault).".to_owned()
            }
            other => format!("Injected fault: {other}."),
        };
        Self::new(FaultAction::FailRecords {
            error_code,
            message,
        })
    }

    /// Answers GetRecords with ExpiredIteratorException.
    pub fn expire_iterators() -> Self {
        Self::new(FaultAction::ExpireIterator).on("GetRecords")
    }

    /// Answers with HTTP `status` and an AWS JSON error of type `error_type`.
    pub fn http_error(status: u16, error_type: impl Into<String>) -> Self {
        let error_type = error_type.into();
        let message = format!("Injected fault: {error_type}.");
        Self::new(FaultAction::Error {
            status,
            error_type,
            message,
        })
    }

    /// Closes the connection without an answer.
    pub fn reset() -> Self {
        Self::new(FaultAction::Reset)
    }

    /// Delays the call by `delay`.
    pub fn latency(delay: Duration) -> Self {
        Self::new(FaultAction::Latency(delay))
    }

    /// Only for this operation (the `X-Amz-Target` suffix, e.g. `"PutRecords"`).
    pub fn on(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Only for this stream (by name; ARNs are matched by the name they end with).
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// Only for calls holding a record with this partition key (PutRecords, PutRecord): a call
    /// the service refuses as a whole for one record's input, like a key it counts differently.
    /// `{record}` in an error's message becomes the 1-based index of the first such record in
    /// the call, as the service's validation messages name it (`'records.{record}.member…'`).
    pub fn holding_partition_key(mut self, key: impl Into<String>) -> Self {
        self.partition_key = Some(key.into());
        self
    }

    /// Which matching items are hit (default: [`Schedule::Always`]).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Replaces the message of a record failure or an HTTP error.
    pub fn message(mut self, text: impl Into<String>) -> Self {
        match &mut self.action {
            FaultAction::FailRecords { message, .. } | FaultAction::Error { message, .. } => {
                *message = text.into();
            }
            FaultAction::ExpireIterator | FaultAction::Reset | FaultAction::Latency(_) => {}
        }
        self
    }

    /// The action.
    pub fn action(&self) -> &FaultAction {
        &self.action
    }

    fn applies(&self, operation: &str, stream: Option<&str>) -> bool {
        let kind_ok = match self.action {
            FaultAction::FailRecords { .. } => {
                operation == "PutRecords" || operation == "PutRecord"
            }
            FaultAction::ExpireIterator => operation == "GetRecords",
            FaultAction::Error { .. } | FaultAction::Reset | FaultAction::Latency(_) => true,
        };
        kind_ok
            && self.operation.as_deref().is_none_or(|op| op == operation)
            && self
                .stream
                .as_deref()
                .is_none_or(|want| stream == Some(want))
    }

    fn is_call_level(&self) -> bool {
        !matches!(self.action, FaultAction::FailRecords { .. })
    }
}

/// How often a fault matched and how often it fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Items (records or calls) that matched the fault's operation and stream.
    pub matched: u64,
    /// Items the fault hit.
    pub fired: u64,
}

/// Identifies a fault added to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(pub(crate) u64);

#[derive(Debug)]
struct Rule {
    id: FaultId,
    fault: Fault,
    stats: FaultStats,
}

impl Rule {
    fn tick(&mut self) -> bool {
        let hit = self.fault.schedule.hits(self.stats.matched);
        self.stats.matched += 1;
        if hit {
            self.stats.fired += 1;
        }
        hit
    }
}

/// The faults of one proxy, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    next_id: u64,
    rules: Vec<Rule>,
    removed: Vec<(FaultId, FaultStats)>,
}

/// What the call-level faults decided for one call.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct CallVerdict {
    /// Total latency to add before going on.
    pub(crate) delay: Duration,
    /// A fault that ends the call (error, reset or expired iterator), if one fired.
    pub(crate) end: Option<FaultAction>,
}

impl FaultSet {
    pub(crate) fn add(&mut self, fault: Fault) -> FaultId {
        let id = FaultId(self.next_id);
        self.next_id += 1;
        self.rules.push(Rule {
            id,
            fault,
            stats: FaultStats::default(),
        });
        id
    }

    pub(crate) fn remove(&mut self, id: FaultId) -> Option<FaultStats> {
        let pos = self.rules.iter().position(|r| r.id == id)?;
        let rule = self.rules.remove(pos);
        self.removed.push((id, rule.stats));
        Some(rule.stats)
    }

    pub(crate) fn clear(&mut self) {
        let ids: Vec<_> = self.rules.iter().map(|r| r.id).collect();
        for id in ids {
            self.remove(id);
        }
    }

    pub(crate) fn stats(&self, id: FaultId) -> Option<FaultStats> {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.stats)
            .or_else(|| {
                self.removed
                    .iter()
                    .find(|(rid, _)| *rid == id)
                    .map(|(_, s)| *s)
            })
    }

    /// Runs the call-level faults for one call: latencies add up, the first ending fault that fires
    /// wins (later ending faults are not consulted, so their schedules do not advance).
    #[cfg(test)]
    pub(crate) fn on_call(&mut self, operation: &str, stream: Option<&str>) -> CallVerdict {
        self.on_call_holding(operation, stream, &[])
    }

    /// As `on_call`, for a call holding records with `partition_keys`.
    pub(crate) fn on_call_holding(
        &mut self,
        operation: &str,
        stream: Option<&str>,
        partition_keys: &[&str],
    ) -> CallVerdict {
        let mut verdict = CallVerdict::default();
        for rule in self.rules.iter_mut().filter(|r| {
            r.fault.is_call_level()
                && r.fault.applies(operation, stream)
                && r.fault
                    .partition_key
                    .as_deref()
                    .is_none_or(|want| partition_keys.contains(&want))
        }) {
            if let FaultAction::Latency(delay) = rule.fault.action {
                if rule.tick() {
                    verdict.delay += delay;
                }
            } else if verdict.end.is_none() && rule.tick() {
                let mut action = rule.fault.action.clone();
                if let (FaultAction::Error { message, .. }, Some(want)) =
                    (&mut action, rule.fault.partition_key.as_deref())
                    && let Some(at) = partition_keys.iter().position(|key| *key == want)
                {
                    // As the service names a record refused for its input: 1-based.
                    *message = message.replace("{record}", &(at + 1).to_string());
                }
                verdict.end = Some(action);
            }
        }
        verdict
    }

    /// Runs the record faults for one record: `Some((error_code, message))` when one fires.
    pub(crate) fn on_record(
        &mut self,
        operation: &str,
        stream: Option<&str>,
    ) -> Option<(String, String)> {
        let mut failure = None;
        for rule in self
            .rules
            .iter_mut()
            .filter(|r| !r.fault.is_call_level() && r.fault.applies(operation, stream))
        {
            if failure.is_none()
                && rule.tick()
                && let FaultAction::FailRecords {
                    error_code,
                    message,
                } = &rule.fault.action
            {
                failure = Some((error_code.clone(), message.clone()));
            }
        }
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(schedule: Schedule, n: u64) -> Vec<u64> {
        (0..n).filter(|&i| schedule.hits(i)).collect()
    }

    #[test]
    fn schedules_hit_exactly_as_described() {
        assert_eq!(hits(Schedule::Always, 3), [0, 1, 2]);
        assert_eq!(hits(Schedule::First(2), 5), [0, 1]);
        assert_eq!(hits(Schedule::First(0), 5), Vec::<u64>::new());
        assert_eq!(hits(Schedule::Every(3), 10), [2, 5, 8]);
        assert_eq!(hits(Schedule::Every(1), 3), [0, 1, 2]);
        assert_eq!(hits(Schedule::Every(0), 3), Vec::<u64>::new());
        assert_eq!(hits(Schedule::Percent(0), 100).len(), 0);
        assert_eq!(hits(Schedule::Percent(100), 100).len(), 100);
        assert_eq!(hits(Schedule::Percent(250), 7).len(), 7);
        assert_eq!(hits(Schedule::Percent(10), 30), [9, 19, 29]);
        for p in 0..=100u32 {
            for n in [1u64, 7, 99, 100, 1_001] {
                let expected = n * u64::from(p) / 100;
                assert_eq!(
                    hits(Schedule::Percent(p), n).len() as u64,
                    expected,
                    "p={p} n={n}"
                );
            }
        }
    }

    #[test]
    fn record_faults_filter_by_operation_and_stream_and_count() {
        let mut set = FaultSet::default();
        let id = set.add(
            Fault::fail_records("InternalFailure")
                .stream("s")
                .schedule(Schedule::Every(2)),
        );
        assert_eq!(set.on_record("PutRecords", Some("other")), None);
        assert_eq!(set.on_record("GetRecords", Some("s")), None);
        assert_eq!(set.on_record("PutRecords", Some("s")), None);
        let (code, message) = set.on_record("PutRecord", Some("s")).expect("2nd record");
        assert_eq!(code, "InternalFailure");
        assert_eq!(message, "Internal service failure.");
        assert_eq!(
            set.stats(id),
            Some(FaultStats {
                matched: 2,
                fired: 1
            })
        );
        assert_eq!(set.on_call("PutRecords", Some("s")), CallVerdict::default());
        assert_eq!(set.remove(id).map(|s| s.fired), Some(1));
        assert_eq!(set.on_record("PutRecords", Some("s")), None);
        assert_eq!(set.stats(id).map(|s| s.matched), Some(2));
    }

    #[test]
    fn call_faults_add_latency_and_first_ending_fault_wins() {
        let mut set = FaultSet::default();
        let slow = set.add(Fault::latency(Duration::from_millis(5)).on("ListShards"));
        let slower = set.add(Fault::latency(Duration::from_millis(7)));
        let err = set.add(
            Fault::http_error(503, "ServiceUnavailable")
                .on("ListShards")
                .schedule(Schedule::First(1)),
        );
        let reset = set.add(Fault::reset().on("ListShards"));
        let v = set.on_call("ListShards", None);
        assert_eq!(v.delay, Duration::from_millis(12));
        assert!(matches!(
            v.end,
            Some(FaultAction::Error { status: 503, .. })
        ));
        let v = set.on_call("ListShards", None);
        assert_eq!(v.end, Some(FaultAction::Reset));
        let v = set.on_call("DescribeStream", None);
        assert_eq!(v.delay, Duration::from_millis(7));
        assert_eq!(v.end, None);
        let fired = |id| set.stats(id).map(|s| s.fired);
        assert_eq!(fired(slow), Some(2));
        assert_eq!(fired(slower), Some(3));
        assert_eq!(fired(err), Some(1));
        // The reset was not consulted while the error fired.
        assert_eq!(set.stats(reset).map(|s| s.matched), Some(1));
        set.clear();
        assert_eq!(set.on_call("ListShards", None), CallVerdict::default());
        // A fault for calls holding a key fires only on those.
        let mut set = FaultSet::default();
        set.add(
            Fault::http_error(400, "ValidationException")
                .on("PutRecords")
                .holding_partition_key("bad"),
        );
        assert_eq!(
            set.on_call_holding("PutRecords", None, &["a", "b"]).end,
            None
        );
        assert!(
            set.on_call_holding("PutRecords", None, &["a", "bad"])
                .end
                .is_some()
        );
        // The message can name the record, 1-based, as the service does.
        let mut set = FaultSet::default();
        set.add(
            Fault::http_error(400, "ValidationException")
                .holding_partition_key("bad")
                .message("Value at 'records.{record}.member.partitionKey'"),
        );
        match set
            .on_call_holding("PutRecords", None, &["a", "b", "bad"])
            .end
        {
            Some(FaultAction::Error { message, .. }) => {
                assert_eq!(message, "Value at 'records.3.member.partitionKey'");
            }
            other => panic!("expected the error, got {other:?}"),
        }
    }

    #[test]
    fn expired_iterators_only_hit_get_records() {
        let mut set = FaultSet::default();
        set.add(Fault::expire_iterators().schedule(Schedule::First(1)));
        assert_eq!(set.on_call("GetShardIterator", None).end, None);
        assert_eq!(
            set.on_call("GetRecords", None).end,
            Some(FaultAction::ExpireIterator)
        );
        assert_eq!(set.on_call("GetRecords", None).end, None);
    }

    #[test]
    fn custom_messages_and_codes() {
        let fault = Fault::fail_records("Custom").message("boom");
        assert_eq!(
            fault.action(),
            &FaultAction::FailRecords {
                error_code: "Custom".into(),
                message: "boom".into()
            }
        );
        let fault = Fault::http_error(500, "InternalFailure");
        assert!(
            matches!(fault.action(), FaultAction::Error { message, .. } if message.contains("InternalFailure"))
        );
    }
}
