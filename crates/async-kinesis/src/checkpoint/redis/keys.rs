//! The key names of one group (application and stream); the layout is described in the
//! [module docs](super).

use std::borrow::Cow;

/// Every key of an application's group reading one stream. They share one hash tag, so in a
/// cluster they live in one slot and one script may touch them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupKeys {
    /// `async-kinesis:{<app>:<stream>}:`
    prefix: String,
}

impl GroupKeys {
    pub(super) fn new(app: &str, stream: &str) -> Self {
        Self {
            prefix: format!("async-kinesis:{{{}:{}}}:", escape(app), escape(stream)),
        }
    }

    /// The shard's entry (a hash that never expires): owner, token, progress.
    pub(super) fn shard(&self, shard_id: &str) -> String {
        format!("{}shard:{shard_id}", self.prefix)
    }

    /// The shard's lease: exists, with a TTL of one session timeout, while the lease is live.
    pub(super) fn lease(&self, shard_id: &str) -> String {
        format!("{}lease:{shard_id}", self.prefix)
    }

    /// The sorted set of the group's shard ids (all scored 0, so ordered by id).
    pub(super) fn shards(&self) -> String {
        format!("{}shards", self.prefix)
    }

    /// The sorted set of live workers, scored by registration expiry (server time, ms).
    pub(super) fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }
}

/// Percent-encodes the characters that would make two groups' names collide (`:` separates the
/// application from the stream) or move the hash tag (`{`, `}`); `%` itself, so the encoding is
/// unambiguous. Ordinary names are unchanged.
fn escape(part: &str) -> Cow<'_, str> {
    if !part.contains(['%', ':', '{', '}']) {
        return Cow::Borrowed(part);
    }
    let mut escaped = String::with_capacity(part.len() + 8);
    for c in part.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            ':' => escaped.push_str("%3A"),
            '{' => escaped.push_str("%7B"),
            '}' => escaped.push_str("%7D"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot's hash tag as Redis Cluster finds it: between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("open");
        let close = key[open + 1..].find('}').expect("close") + open + 1;
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_a_group_shares_one_hash_tag() {
        let keys = GroupKeys::new("billing", "orders");
        assert_eq!(
            keys.shard("shardId-000000000001"),
            "async-kinesis:{billing:orders}:shard:shardId-000000000001"
        );
        assert_eq!(
            keys.lease("shardId-000000000001"),
            "async-kinesis:{billing:orders}:lease:shardId-000000000001"
        );
        assert_eq!(keys.shards(), "async-kinesis:{billing:orders}:shards");
        assert_eq!(keys.workers(), "async-kinesis:{billing:orders}:workers");
        for key in [
            keys.shard("s"),
            keys.lease("s"),
            keys.shards(),
            keys.workers(),
        ] {
            assert_eq!(hash_tag(&key), "billing:orders");
        }
    }

    #[test]
    fn separators_and_braces_in_names_cannot_collide_or_break_the_tag() {
        assert_ne!(GroupKeys::new("a:b", "c"), GroupKeys::new("a", "b:c"));
        assert_ne!(GroupKeys::new("a%3Ab", "c"), GroupKeys::new("a:b", "c"));
        let braces = GroupKeys::new("}app{", "arn:aws:kinesis:us-east-1:1:stream/s");
        let shard = braces.shard("s");
        assert_eq!(
            hash_tag(&shard),
            "%7Dapp%7B:arn%3Aaws%3Akinesis%3Aus-east-1%3A1%3Astream/s"
        );
        assert_eq!(hash_tag(&shard), hash_tag(&braces.workers()));
    }
}
