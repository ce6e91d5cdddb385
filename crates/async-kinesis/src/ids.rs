//! The identifiers Kinesis hands out: a shard's id and a record's sequence number.
//!
//! Both are cheap to clone (a shared string) and read as `&str` wherever a string is wanted
//! (`Deref`, `AsRef`, `Borrow`, `Display`), so maps keyed by them are looked up with a `&str`.
//! Their own types keep one from being passed where the other is meant.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, not `write_str`: width and fill apply as they do to a `str`.
                f.pad(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(Arc::from(id.as_str()))
            }
        }

        impl From<Box<str>> for $name {
            fn from(id: Box<str>) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<std::borrow::Cow<'_, str>> for $name {
            fn from(id: std::borrow::Cow<'_, str>) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(Arc::from(id))
            }
        }

        impl From<Arc<str>> for $name {
            fn from(id: Arc<str>) -> Self {
                Self(id)
            }
        }

        impl From<&Arc<str>> for $name {
            fn from(id: &Arc<str>) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for Arc<str> {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.to_string()
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> Self {
                id.0.to_string()
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                **self == *other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == &*other.0
            }
        }
    };
}

id_type!(
    /// A shard's id, as Kinesis names it (`shardId-000000000000`).
    ///
    /// ```
    /// use async_kinesis::ShardId;
    ///
    /// let shard = ShardId::from("shardId-000000000001");
    /// assert_eq!(shard, "shardId-000000000001");
    /// assert!(shard.ends_with("001")); // a &str where one is wanted
    /// let map: std::collections::HashMap<ShardId, u32> = [(shard.clone(), 1)].into();
    /// assert_eq!(map.get("shardId-000000000001"), Some(&1));
    /// ```
    ShardId
);

id_type!(
    /// A record's sequence number, as Kinesis writes it (a decimal number of up to 128 digits,
    /// unique within its shard, growing with time).
    ///
    /// Its `Ord` is the text's (so maps keyed by it can be looked up by `&str`), which is not
    /// the order of the numbers when lengths differ; compare positions with
    /// [`Position`](crate::checkpoint::Position), which orders them as numbers.
    ///
    /// ```
    /// use async_kinesis::{SequenceNumber, ShardId};
    ///
    /// let sequence = SequenceNumber::from("49590338271490256608559692538361571095921575989136588898");
    /// assert_eq!(sequence.len(), 56);
    /// // The two identifiers are different types: one cannot be passed for the other.
    /// fn read_from(_shard: &ShardId) {}
    /// read_from(&ShardId::from("shardId-000000000000"));
    /// ```
    ///
    /// ```compile_fail
    /// use async_kinesis::{SequenceNumber, ShardId};
    /// fn read_from(_shard: &ShardId) {}
    /// read_from(&SequenceNumber::from("1"));
    /// ```
    SequenceNumber
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn ids_read_as_strings_and_compare_both_ways() {
        let id = ShardId::from(String::from("shardId-000000000007"));
        assert_eq!(id.as_str(), "shardId-000000000007");
        assert_eq!(id, "shardId-000000000007");
        assert_eq!("shardId-000000000007", id);
        assert_eq!(id.to_string(), "shardId-000000000007");
        assert_eq!(format!("{id:?}"), "\"shardId-000000000007\"");
        assert_eq!(
            format!("[{id:>22}]"),
            "[  shardId-000000000007]",
            "width applies"
        );
        assert_eq!(ShardId::from(std::borrow::Cow::Borrowed("a")), "a");
        let shared: Arc<str> = id.clone().into();
        assert_eq!(ShardId::from(&shared), id);
    }

    #[test]
    fn maps_keyed_by_ids_are_looked_up_by_str() {
        let mut map = BTreeMap::new();
        map.insert(SequenceNumber::from("2"), "b");
        map.insert(SequenceNumber::from("1"), "a");
        assert_eq!(map.get("1"), Some(&"a"));
        assert_eq!(
            map.keys().map(SequenceNumber::as_str).collect::<Vec<_>>(),
            ["1", "2"]
        );
    }
}
