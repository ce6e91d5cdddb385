//! Conditional writes: an update expression, its condition and their values, built up clause by
//! clause.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{Item, SEQUENCE_NUMBER, SHARD_END, SUB_SEQUENCE, n, s};
use crate::checkpoint::{Lease, Progress};

/// The outcome of a conditional write.
pub(super) enum Written {
    /// Done; the attributes asked for.
    Done(Item),
    /// The condition did not hold; the item as it was, when DynamoDB returned it.
    Refused(Option<Item>),
}

/// An update expression, its condition and their values. Attribute names are written as
/// `#name` placeholders (see [`names_in`](super::item::names_in)).
#[derive(Default)]
pub(super) struct Write {
    set: Vec<String>,
    remove: Vec<&'static str>,
    pub(super) condition: String,
    pub(super) values: Item,
}

impl Write {
    /// A write on `condition`.
    pub(super) fn condition(condition: impl Into<String>) -> Self {
        Self::default().and(condition)
    }

    /// Adds `condition`, which must hold as well.
    pub(super) fn and(mut self, condition: impl Into<String>) -> Self {
        let condition = condition.into();
        self.condition = if self.condition.is_empty() {
            condition
        } else {
            format!("{} AND {condition}", self.condition)
        };
        self
    }

    /// Adds a `SET` clause.
    pub(super) fn set(mut self, clause: impl Into<String>) -> Self {
        self.set.push(clause.into());
        self
    }

    /// Removes an attribute.
    pub(super) fn remove(mut self, attribute: &'static str) -> Self {
        self.remove.push(attribute);
        self
    }

    /// Gives a `:placeholder` its value.
    pub(super) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// Adds the condition that `lease` (owner and token) still holds the item.
    pub(super) fn held_by(self, lease: &Lease) -> Self {
        self.and("#owner = :owner AND #token = :token")
            .value(":owner", s(lease.owner.as_str()))
            .value(":token", n(lease.token.0))
    }

    /// Adds the condition that the item's checkpoint is still `progress` (and not SHARD_END).
    pub(super) fn expecting(self, progress: &Progress) -> Self {
        let write = self.and(format!("attribute_not_exists(#{SHARD_END})"));
        match progress {
            Progress::At(at) => {
                let write = write
                    .and(format!("#{SEQUENCE_NUMBER} = :old_sequence_number"))
                    .value(":old_sequence_number", s(at.sequence_number.as_str()));
                match at.sub_sequence {
                    Some(sub) => write
                        .and(format!("#{SUB_SEQUENCE} = :old_sub_sequence"))
                        .value(":old_sub_sequence", n(sub)),
                    None => write.and(format!("attribute_not_exists(#{SUB_SEQUENCE})")),
                }
            }
            // A recorded start is no checkpoint.
            Progress::None | Progress::Started(_) | Progress::ShardEnd => {
                write.and(format!("attribute_not_exists(#{SEQUENCE_NUMBER})"))
            }
        }
    }

    /// `SET ... REMOVE ...`.
    pub(super) fn update_expression(&self) -> String {
        let mut clauses = Vec::new();
        if !self.set.is_empty() {
            clauses.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            let removes: Vec<String> = self.remove.iter().map(|a| format!("#{a}")).collect();
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        clauses.join(" ")
    }
}

/// `Some(map)` unless it is empty: DynamoDB refuses empty expression maps.
pub(super) fn non_empty<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{FencingToken, Position, WorkerId};

    #[test]
    fn update_expressions_put_set_before_remove() {
        let write = Write::default()
            .remove("owner")
            .set("#beat = #beat + :one")
            .set("#expires_at = :expires_at");
        assert_eq!(
            write.update_expression(),
            "SET #beat = #beat + :one, #expires_at = :expires_at REMOVE #owner"
        );
        assert_eq!(
            Write::default().remove("sub_sequence").update_expression(),
            "REMOVE #sub_sequence"
        );
    }

    #[test]
    fn lease_writes_require_owner_and_token() {
        let lease = Lease {
            stream: "s".into(),
            shard_id: "shard-0".into(),
            owner: WorkerId::new("a"),
            token: FencingToken(3),
        };
        let write = Write::condition("attribute_exists(#shard_id)").held_by(&lease);
        assert_eq!(
            write.condition,
            "attribute_exists(#shard_id) AND #owner = :owner AND #token = :token"
        );
        assert_eq!(write.values[":owner"], s("a"));
        assert_eq!(write.values[":token"], n(3));
    }

    #[test]
    fn checkpoints_are_written_against_the_progress_read() {
        let none = Write::default().expecting(&Progress::None);
        assert_eq!(
            none.condition,
            "attribute_not_exists(#shard_end) AND attribute_not_exists(#sequence_number)"
        );
        let whole = Write::default().expecting(&Progress::At(Position::after("12")));
        assert_eq!(
            whole.condition,
            "attribute_not_exists(#shard_end) AND #sequence_number = :old_sequence_number \
             AND attribute_not_exists(#sub_sequence)"
        );
        assert_eq!(whole.values[":old_sequence_number"], s("12"));
        let part = Write::default().expecting(&Progress::At(Position::within("12", 4)));
        assert!(
            part.condition
                .ends_with("#sub_sequence = :old_sub_sequence")
        );
        assert_eq!(part.values[":old_sub_sequence"], n(4));
    }

    #[test]
    fn empty_maps_are_left_out() {
        assert_eq!(non_empty(HashMap::<String, u8>::new()), None);
        assert!(non_empty(HashMap::from([("a".to_owned(), 1)])).is_some());
    }
}
