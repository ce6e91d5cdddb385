//! The table's items: attribute names, keys, and reading items back into leases and
//! registrations. The layout is described in the [store's docs](super).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::checkpoint::{Position, Progress, StartingPoint, WorkerId};

/// An item as the SDK returns it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Partition key (S): `<application name>:<stream>`.
pub(super) const APP_STREAM: &str = "app_stream";
/// Sort key (S): the shard id, or [`WORKER_PREFIX`] + worker id for a registration.
pub(super) const SHARD_ID: &str = "shard_id";
/// The lease holder (S); absent while the lease is free.
pub(super) const OWNER: &str = "owner";
/// The fencing token (N): +1 on every claim, kept across release.
pub(super) const TOKEN: &str = "token";
/// The lease or registration counter (N): +1 on every claim, renew, release, heartbeat.
pub(super) const BEAT: &str = "beat";
/// The checkpoint's sequence number (S); absent before the first checkpoint.
pub(super) const SEQUENCE_NUMBER: &str = "sequence_number";
/// The checkpoint's sub-sequence (N); absent when the whole record was processed.
pub(super) const SUB_SEQUENCE: &str = "sub_sequence";
/// Where reading started before the first checkpoint (N): `AT_TIMESTAMP` in nanoseconds since
/// the Unix epoch.
pub(super) const START_TIMESTAMP_NS: &str = "start_timestamp_ns";
/// Where reading started before the first checkpoint (S): the first record's sequence number.
pub(super) const START_SEQUENCE: &str = "start_sequence";
/// `true` (BOOL) once the shard was read to its end.
pub(super) const SHARD_END: &str = "shard_end";
/// A registration's worker id (S).
pub(super) const WORKER: &str = "worker";
/// Time to live (N, epoch seconds), when the store has one.
pub(super) const EXPIRES_AT: &str = "expires_at";
/// Sort-key prefix of worker registrations.
pub(super) const WORKER_PREFIX: &str = "worker#";

/// The partition key of `app`'s items for `stream`.
pub(super) fn app_stream(app: &str, stream: &str) -> String {
    format!("{app}:{stream}")
}

/// The sort key of `worker`'s registration.
pub(super) fn worker_key(worker: &WorkerId) -> String {
    format!("{WORKER_PREFIX}{worker}")
}

/// The primary key of an item.
pub(super) fn key(app_stream: &str, sort_key: &str) -> Item {
    HashMap::from([
        (APP_STREAM.to_owned(), s(app_stream)),
        (SHARD_ID.to_owned(), s(sort_key)),
    ])
}

/// A string value.
pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number value.
pub(super) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Expression attribute names for every `#name` placeholder in `expressions`: each placeholder
/// is the attribute's own name (DynamoDB refuses unused names, and several of ours, `owner`
/// for one, are reserved words).
pub(super) fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for expression in expressions {
        let mut rest = *expression;
        while let Some(at) = rest.find('#') {
            let after = &rest[at + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len > 0 {
                names.insert(format!("#{}", &after[..len]), after[..len].to_owned());
            }
            rest = &after[len..];
        }
    }
    names
}

/// What a shard's item says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LeaseItem {
    pub(super) owner: Option<WorkerId>,
    pub(super) token: u64,
    pub(super) beat: u64,
    pub(super) progress: Progress,
}

/// What changes whenever a lease is claimed, renewed or released: while it stays the same, the
/// holder is silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Version {
    owner: Option<WorkerId>,
    token: u64,
    beat: u64,
}

impl LeaseItem {
    /// Reads a shard's item.
    pub(super) fn parse(item: &Item) -> Result<Self, String> {
        let progress = if item
            .get(SHARD_END)
            .is_some_and(|v| v.as_bool() == Ok(&true))
        {
            Progress::ShardEnd
        } else {
            match optional_string(item, SEQUENCE_NUMBER)? {
                None => start(item)?,
                Some(sequence_number) => {
                    if sequence_number.is_empty()
                        || !sequence_number.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(format!(
                            "{SEQUENCE_NUMBER} {sequence_number:?} is not a decimal number"
                        ));
                    }
                    Progress::At(Position {
                        sequence_number: sequence_number.into(),
                        sub_sequence: optional_number(item, SUB_SEQUENCE)?,
                    })
                }
            }
        };
        Ok(Self {
            owner: optional_string(item, OWNER)?.map(WorkerId::new),
            token: number(item, TOKEN)?,
            beat: number(item, BEAT)?,
            progress,
        })
    }

    /// The part of the item that shows whether its holder is alive.
    pub(super) fn version(&self) -> Version {
        Version {
            owner: self.owner.clone(),
            token: self.token,
            beat: self.beat,
        }
    }
}

/// The recorded start of an item without a checkpoint.
fn start(item: &Item) -> Result<Progress, String> {
    let timestamp = match item.get(START_TIMESTAMP_NS) {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::N(nanos)) => Some(
            nanos
                .parse::<u128>()
                .ok()
                .and_then(StartingPoint::from_epoch_nanos)
                .ok_or_else(|| format!("{START_TIMESTAMP_NS} {nanos:?} is not a time"))?,
        ),
        Some(other) => return Err(format!("{START_TIMESTAMP_NS} is not a number: {other:?}")),
    };
    let sequence = optional_string(item, START_SEQUENCE)?;
    match (timestamp, sequence) {
        (None, None) => Ok(Progress::None),
        (Some(at), None) => Ok(Progress::Started(StartingPoint::AtTimestamp(at))),
        (None, Some(sequence)) if StartingPoint::is_valid_sequence(&sequence) => {
            Ok(Progress::Started(StartingPoint::AtSequence(sequence)))
        }
        (None, Some(sequence)) => Err(format!(
            "{START_SEQUENCE} {sequence:?} is not a decimal number"
        )),
        (Some(_), Some(_)) => Err(format!(
            "both {START_TIMESTAMP_NS} and {START_SEQUENCE} are set"
        )),
    }
}

/// What a worker's registration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WorkerItem {
    pub(super) worker: WorkerId,
    pub(super) beat: u64,
}

impl WorkerItem {
    /// Reads a registration.
    pub(super) fn parse(item: &Item) -> Result<Self, String> {
        let worker = optional_string(item, WORKER)?.ok_or_else(|| format!("no {WORKER}"))?;
        Ok(Self {
            worker: WorkerId::new(worker),
            beat: number(item, BEAT)?,
        })
    }

    /// The part of the registration that shows whether its worker is alive.
    pub(super) fn version(&self) -> Version {
        Version {
            owner: Some(self.worker.clone()),
            token: 0,
            beat: self.beat,
        }
    }
}

/// An item's sort key, if it has one.
pub(super) fn sort_key(item: &Item) -> Option<&str> {
    item.get(SHARD_ID)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// An item's expiry (epoch seconds), if it has one.
pub(super) fn expires_at(item: &Item) -> Option<u64> {
    item.get(EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn optional_string(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
        Some(other) => Err(format!("{name} is not a string: {other:?}")),
    }
}

fn optional_number(item: &Item, name: &str) -> Result<Option<u64>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} {value:?} is not an unsigned integer")),
        Some(other) => Err(format!("{name} is not a number: {other:?}")),
    }
}

fn number(item: &Item, name: &str) -> Result<u64, String> {
    optional_number(item, name)?.ok_or_else(|| format!("no {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(pairs: &[(&str, AttributeValue)]) -> Item {
        let mut item = key("app:stream", "shardId-000000000001");
        item.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        item
    }

    #[test]
    fn a_lease_item_reads_back_its_progress() {
        let base = [(TOKEN, n(3)), (BEAT, n(9))];
        let fresh = LeaseItem::parse(&lease(&base)).expect("parse");
        assert_eq!(fresh.owner, None);
        assert_eq!((fresh.token, fresh.beat), (3, 9));
        assert_eq!(fresh.progress, Progress::None);

        let mut at = base.to_vec();
        at.extend([
            (OWNER, s("w")),
            (
                SEQUENCE_NUMBER,
                s("49590338271490256608559692538361571095921575989136588898"),
            ),
            (SUB_SEQUENCE, n(4)),
        ]);
        let at = LeaseItem::parse(&lease(&at)).expect("parse");
        assert_eq!(at.owner, Some(WorkerId::new("w")));
        assert_eq!(
            at.progress,
            Progress::At(Position::within(
                "49590338271490256608559692538361571095921575989136588898",
                4
            ))
        );

        let mut ended = base.to_vec();
        ended.extend([
            (SEQUENCE_NUMBER, s("5")),
            (SHARD_END, AttributeValue::Bool(true)),
        ]);
        assert_eq!(
            LeaseItem::parse(&lease(&ended)).expect("parse").progress,
            Progress::ShardEnd
        );
    }

    #[test]
    fn a_recorded_start_reads_back_until_the_first_checkpoint() {
        let base = [(TOKEN, n(3)), (BEAT, n(9))];
        let mut timed = base.to_vec();
        timed.push((
            START_TIMESTAMP_NS,
            AttributeValue::N("1764000000000000005".into()),
        ));
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_764_000_000, 5);
        assert_eq!(
            LeaseItem::parse(&lease(&timed)).expect("parse").progress,
            Progress::Started(StartingPoint::AtTimestamp(at))
        );
        let mut sequenced = base.to_vec();
        sequenced.push((START_SEQUENCE, s("4959")));
        assert_eq!(
            LeaseItem::parse(&lease(&sequenced))
                .expect("parse")
                .progress,
            Progress::Started(StartingPoint::AtSequence("4959".into()))
        );
        sequenced.push((SEQUENCE_NUMBER, s("5000")));
        assert_eq!(
            LeaseItem::parse(&lease(&sequenced))
                .expect("parse")
                .progress,
            Progress::At(Position::after("5000"))
        );
        let mut both = timed.clone();
        both.push((START_SEQUENCE, s("1")));
        assert!(LeaseItem::parse(&lease(&both)).is_err());
        let mut bad = base.to_vec();
        bad.push((START_TIMESTAMP_NS, AttributeValue::N("-1".into())));
        assert!(LeaseItem::parse(&lease(&bad)).is_err());
        let mut bad = base.to_vec();
        bad.push((START_SEQUENCE, s("x")));
        assert!(LeaseItem::parse(&lease(&bad)).is_err());
    }

    #[test]
    fn malformed_items_are_reported() {
        assert!(
            LeaseItem::parse(&lease(&[(BEAT, n(1))])).is_err(),
            "no token"
        );
        let bad_sequence = [(TOKEN, n(1)), (BEAT, n(1)), (SEQUENCE_NUMBER, s("12a"))];
        assert!(LeaseItem::parse(&lease(&bad_sequence)).is_err());
        let bad_token = [(TOKEN, s("1")), (BEAT, n(1))];
        assert!(LeaseItem::parse(&lease(&bad_token)).is_err());
        assert!(
            WorkerItem::parse(&lease(&[(BEAT, n(1))])).is_err(),
            "no worker"
        );
    }

    #[test]
    fn placeholders_name_their_attributes() {
        let names = names_in(&[
            "SET #owner = :w, #beat = #beat + :one",
            "attribute_not_exists(#shard_id) OR #owner = :w",
        ]);
        assert_eq!(names.len(), 3);
        assert_eq!(names["#owner"], "owner");
        assert_eq!(names["#shard_id"], "shard_id");
        assert!(names_in(&["#", ":a"]).is_empty());
    }

    #[test]
    fn keys_carry_the_group_and_the_shard() {
        assert_eq!(app_stream("orders-app", "orders"), "orders-app:orders");
        assert_eq!(worker_key(&WorkerId::new("host-1")), "worker#host-1");
        let key = key("a:s", "shardId-0");
        assert_eq!(key[APP_STREAM], s("a:s"));
        assert_eq!(key[SHARD_ID], s("shardId-0"));
    }
}
