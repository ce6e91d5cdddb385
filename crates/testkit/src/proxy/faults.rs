//! Scripted faults: which calls or records fail, how, and how often. Pure: the proxy asks, the rules
//! answer and count.

use std::time::Duration;

const SUBSCRIBE: &str = "SubscribeToShard";

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
    /// Forwards this many messages of a SubscribeToShard event stream, then fails the body (the
    /// client's connection is closed mid-stream). See [`Fault::cut_stream_after`].
    CutStream {
        /// Messages forwarded first (every message counts, an `initial-response` too).
        after: u64,
    },
    /// Forwards this many messages of a SubscribeToShard event stream, then nothing more, keeping
    /// the response open. See [`Fault::stall_stream_after`].
    StallStream {
        /// Messages forwarded first (every message counts, an `initial-response` too).
        after: u64,
    },
    /// Forwards this many messages of a SubscribeToShard event stream, then ends the body cleanly.
    /// See [`Fault::end_stream_after`].
    EndStream {
        /// Messages forwarded first (every message counts, an `initial-response` too).
        after: u64,
    },
}

impl FaultAction {
    /// Whether it shapes a subscription's event stream rather than the call.
    fn shapes_stream(&self) -> bool {
        matches!(
            self,
            Self::CutStream { .. } | Self::StallStream { .. } | Self::EndStream { .. }
        )
    }
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

    /// Answers with HTTP `status` and an AWS JSON error of type `error_type`. On SubscribeToShard
    /// too: the call is answered, not forwarded (AWS refuses a subscription this way, e.g. 400
    /// `ResourceInUseException`; kinesis-mock refuses inside a 200 event stream instead).
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

    /// SubscribeToShard only: forwards the first `n_events` messages of the event stream, then
    /// fails the response body, so the client sees its connection reset mid-subscription.
    ///
    /// `n_events` counts every message the emulator sends, an `initial-response` included where
    /// there is one: on AWS, `cut_stream_after(1)` forwards only the initial response and
    /// `cut_stream_after(3)` it and two `SubscribeToShardEvent`s. kinesis-mock sends no initial
    /// response, so there `n_events` counts `SubscribeToShardEvent`s (one a second, records or
    /// not). Whole messages only; after the last one the proxy waits briefly, so that it reaches
    /// the client before the cut.
    ///
    /// The schedule counts the subscriptions the emulator accepted, known by the first message
    /// being an event: a refused one (an error answer, or the `ResourceInUseException` message
    /// kinesis-mock refuses a second subscription with) passes through untouched and does not
    /// count. Once the fault acts, the proxy closes its connection to the emulator, so the
    /// emulator's subscription ends too (kinesis-mock notices within a few seconds).
    ///
    /// ```
    /// use testkit::proxy::{Fault, Schedule};
    ///
    /// // The first subscription breaks after two messages.
    /// let fault = Fault::cut_stream_after(2).schedule(Schedule::First(1));
    /// # let _ = fault;
    /// ```
    pub fn cut_stream_after(n_events: u64) -> Self {
        Self::new(FaultAction::CutStream { after: n_events }).on(SUBSCRIBE)
    }

    /// SubscribeToShard only: forwards the first `n_events` messages (counted as in
    /// [`Fault::cut_stream_after`]), then nothing more while keeping the response open until the
    /// client drops it or the proxy shuts down — a stalled subscription.
    pub fn stall_stream_after(n_events: u64) -> Self {
        Self::new(FaultAction::StallStream { after: n_events }).on(SUBSCRIBE)
    }

    /// SubscribeToShard only: forwards the first `n_events` messages (counted as in
    /// [`Fault::cut_stream_after`]), then ends the response cleanly — a subscription that ends
    /// early, as when its 5 minutes are up. On AWS `end_stream_after(1)` forwards only the initial
    /// response.
    pub fn end_stream_after(n_events: u64) -> Self {
        Self::new(FaultAction::EndStream { after: n_events }).on(SUBSCRIBE)
    }

    /// Only for this operation (the `X-Amz-Target` suffix, e.g. `"PutRecords"`).
    pub fn on(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Only for this stream (by name; stream ARNs, and the consumer ARNs of SubscribeToShard and
    /// the consumer calls, are matched by the stream they name).
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
            FaultAction::ExpireIterator
            | FaultAction::Reset
            | FaultAction::Latency(_)
            | FaultAction::CutStream { .. }
            | FaultAction::StallStream { .. }
            | FaultAction::EndStream { .. } => {}
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
            FaultAction::CutStream { .. }
            | FaultAction::StallStream { .. }
            | FaultAction::EndStream { .. } => operation == SUBSCRIBE,
            FaultAction::Error { .. } | FaultAction::Reset | FaultAction::Latency(_) => true,
        };
        kind_ok
            && self.operation.as_deref().is_none_or(|op| op == operation)
            && self
                .stream
                .as_deref()
                .is_none_or(|want| stream == Some(want))
    }

    /// Consulted once per call, before it is forwarded.
    fn is_call_level(&self) -> bool {
        !matches!(self.action, FaultAction::FailRecords { .. }) && !self.action.shapes_stream()
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

    /// Runs the stream faults for one subscription the emulator accepted: the first that fires
    /// wins, later ones are not consulted.
    pub(crate) fn on_subscription(&mut self, stream: Option<&str>) -> Option<FaultAction> {
        self.rules
            .iter_mut()
            .filter(|r| r.fault.action.shapes_stream() && r.fault.applies(SUBSCRIBE, stream))
            .find_map(|rule| rule.tick().then(|| rule.fault.action.clone()))
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
    fn stream_faults_count_accepted_subscriptions_only() {
        let mut set = FaultSet::default();
        let cut = set.add(Fault::cut_stream_after(2).schedule(Schedule::First(1)));
        let end = set.add(Fault::end_stream_after(1).stream("s"));
        let elsewhere = set.add(Fault::stall_stream_after(0).on("GetRecords"));
        // Not consulted before forwarding: the emulator must accept the subscription first.
        assert_eq!(
            set.on_call("SubscribeToShard", Some("s")),
            CallVerdict::default()
        );
        assert_eq!(
            set.on_subscription(Some("s")),
            Some(FaultAction::CutStream { after: 2 })
        );
        assert_eq!(set.on_subscription(Some("other")), None);
        assert_eq!(
            set.on_subscription(Some("s")),
            Some(FaultAction::EndStream { after: 1 })
        );
        let stats = |id| set.stats(id).expect("added");
        assert_eq!(
            stats(cut),
            FaultStats {
                matched: 3,
                fired: 1
            }
        );
        // The cut won the first subscription, so the end was not consulted for it.
        assert_eq!(
            stats(end),
            FaultStats {
                matched: 1,
                fired: 1
            }
        );
        assert_eq!(stats(elsewhere), FaultStats::default());
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
