//! The Lua scripts (one per operation, each with the shared helpers prepended) and their
//! replies.
//!
//! Every read-modify-write runs inside one script, so Redis executes it atomically: a write is
//! checked against the lease's owner and fencing token in the same step that makes it.

use std::sync::LazyLock;

use redis::{Script, Value};

const COMMON: &str = include_str!("lua/common.lua");

/// The store's scripts, hashed once per process.
pub(super) struct Scripts {
    pub(super) claim: Script,
    pub(super) renew: Script,
    pub(super) checkpoint: Script,
    pub(super) record_start: Script,
    pub(super) mark_shard_end: Script,
    pub(super) release: Script,
    pub(super) list: Script,
    pub(super) heartbeat: Script,
    pub(super) live_workers: Script,
    pub(super) prune: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| Script::new(&[COMMON, body].concat());
    Scripts {
        claim: script(include_str!("lua/claim.lua")),
        renew: script(include_str!("lua/renew.lua")),
        checkpoint: script(include_str!("lua/checkpoint.lua")),
        record_start: script(include_str!("lua/record_start.lua")),
        mark_shard_end: script(include_str!("lua/mark_shard_end.lua")),
        release: script(include_str!("lua/release.lua")),
        list: script(include_str!("lua/list.lua")),
        heartbeat: script(include_str!("lua/heartbeat.lua")),
        live_workers: script(include_str!("lua/live_workers.lua")),
        prune: script(include_str!("lua/prune.lua")),
    }
});

/// The progress fields of a shard entry, as a script read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ProgressFields {
    pub(super) sequence: Option<String>,
    pub(super) sub_sequence: Option<String>,
    pub(super) ended: bool,
    pub(super) start_timestamp_ns: Option<String>,
    pub(super) start_sequence: Option<String>,
}

/// The answer of a fenced write (renew, checkpoint, record start, mark SHARD_END, release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriteReply {
    Done,
    /// Another claim (or a release) happened since; the entry's owner now.
    NotOwned {
        owner: Option<String>,
    },
    /// The shard has no entry.
    UnknownShard,
    /// The entry cannot be read; what is wrong with it.
    Unreadable {
        detail: String,
    },
}

/// The answer of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClaimReply {
    Acquired {
        token: u64,
        progress: ProgressFields,
    },
    HeldBy {
        owner: String,
    },
    Finished,
    /// The entry cannot be read; what is wrong with it.
    Unreadable {
        detail: String,
    },
    /// The token cannot grow any more.
    Exhausted {
        token: u64,
    },
}

/// One shard's entry as `list` reads it, or what makes it unreadable.
pub(super) type Listed = Result<ListedEntry, String>;

/// One shard's entry as `list` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListedEntry {
    pub(super) live_owner: Option<String>,
    pub(super) token: u64,
    pub(super) progress: ProgressFields,
}

/// A reply of unexpected shape (a different script under the same hash, a corrupted entry).
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from a checkpoint script: {0}")]
pub(super) struct BadReply(String);

impl BadReply {
    pub(super) fn new(problem: String) -> Self {
        Self(problem)
    }
}

fn bad(reply: &[Value]) -> BadReply {
    BadReply(format!("{reply:?}"))
}

/// What a script said is wrong with an entry. Stored bytes may be anything, so they are shown
/// lossily rather than refused.
fn problem(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => text(other)
            .ok()
            .flatten()
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

/// Text of a string reply; `None` for nil (a Lua `false`).
pub(super) fn text(value: &Value) -> Result<Option<String>, BadReply> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map(Some)
            .map_err(|_| BadReply(format!("{value:?} is not UTF-8"))),
        Value::SimpleString(s) => Ok(Some(s.clone())),
        Value::Int(n) => Ok(Some(n.to_string())),
        other => Err(BadReply(format!("{other:?} is not text"))),
    }
}

fn number(value: &Value) -> Result<u64, BadReply> {
    match value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| BadReply(format!("token {n}"))),
        other => text(other)?
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BadReply(format!("{other:?} is not a token"))),
    }
}

fn tag(reply: &[Value]) -> Result<String, BadReply> {
    reply
        .first()
        .map(text)
        .transpose()?
        .flatten()
        .ok_or_else(|| bad(reply))
}

impl WriteReply {
    pub(super) fn parse(reply: &[Value]) -> Result<Self, BadReply> {
        match (tag(reply)?.as_str(), reply.len()) {
            ("ok", 1) => Ok(Self::Done),
            ("unknown", 1) => Ok(Self::UnknownShard),
            ("not_owned", 2) => Ok(Self::NotOwned {
                owner: text(&reply[1])?,
            }),
            // A nil owner ends a Lua array early.
            ("not_owned", 1) => Ok(Self::NotOwned { owner: None }),
            ("unreadable", 2) => Ok(Self::Unreadable {
                detail: problem(&reply[1]),
            }),
            _ => Err(bad(reply)),
        }
    }
}

impl ClaimReply {
    pub(super) fn parse(reply: &[Value]) -> Result<Self, BadReply> {
        match tag(reply)?.as_str() {
            "finished" if reply.len() == 1 => Ok(Self::Finished),
            "unreadable" if reply.len() == 2 => Ok(Self::Unreadable {
                detail: problem(&reply[1]),
            }),
            "exhausted" if reply.len() == 2 => Ok(Self::Exhausted {
                token: number(&reply[1])?,
            }),
            "held" if reply.len() == 2 => Ok(Self::HeldBy {
                owner: text(&reply[1])?.ok_or_else(|| bad(reply))?,
            }),
            "acquired" if (2..=6).contains(&reply.len()) => {
                let field = |at: usize| reply.get(at).map(text).transpose().map(Option::flatten);
                Ok(Self::Acquired {
                    token: number(&reply[1])?,
                    progress: ProgressFields {
                        sequence: field(2)?,
                        sub_sequence: field(3)?,
                        // A claim never answers for an ended shard.
                        ended: false,
                        start_timestamp_ns: field(4)?,
                        start_sequence: field(5)?,
                    },
                })
            }
            _ => Err(bad(reply)),
        }
    }
}

impl ListedEntry {
    /// Eight values per shard, in the order `list.lua` writes them. An entry the script found
    /// unreadable, or whose values are not text, is an `Err` of its own; only a reply of the
    /// wrong length fails the whole call.
    pub(super) fn parse_all(reply: &[Value], shards: usize) -> Result<Vec<Listed>, BadReply> {
        if reply.len() != shards * 8 {
            return Err(BadReply(format!(
                "{} values for {shards} shards",
                reply.len()
            )));
        }
        Ok(reply.chunks_exact(8).map(Self::parse).collect())
    }

    fn parse(entry: &[Value]) -> Listed {
        if entry[0] != Value::Nil {
            return Err(problem(&entry[0]));
        }
        let field = |at: usize| text(&entry[at]).map_err(|bad| bad.0.clone());
        Ok(Self {
            live_owner: field(1)?,
            token: number(&entry[2]).map_err(|bad| bad.0)?,
            progress: ProgressFields {
                sequence: field(3)?,
                sub_sequence: field(4)?,
                ended: field(5)?.as_deref() == Some("1"),
                start_timestamp_ns: field(6)?,
                start_sequence: field(7)?,
            },
        })
    }
}

/// The answer of `prune.lua`: how many entries it deleted, and the unreadable ones it left.
pub(super) fn parse_prune(reply: &[Value]) -> Result<(usize, Vec<String>), BadReply> {
    let Some(Value::Int(pruned)) = reply.first() else {
        return Err(bad(reply));
    };
    let pruned = usize::try_from(*pruned).map_err(|_| bad(reply))?;
    let unreadable = reply[1..].iter().map(problem).collect();
    Ok((pruned, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn write_replies_distinguish_refusals() {
        assert_eq!(
            WriteReply::parse(&[bulk("ok")]).ok(),
            Some(WriteReply::Done)
        );
        assert_eq!(
            WriteReply::parse(&[bulk("not_owned"), bulk("b")]).ok(),
            Some(WriteReply::NotOwned {
                owner: Some("b".into())
            })
        );
        assert_eq!(
            WriteReply::parse(&[bulk("not_owned"), Value::Nil]).ok(),
            Some(WriteReply::NotOwned { owner: None })
        );
        assert_eq!(
            WriteReply::parse(&[bulk("unknown")]).ok(),
            Some(WriteReply::UnknownShard)
        );
        assert_eq!(
            WriteReply::parse(&[bulk("unreadable"), Value::BulkString(vec![b'x', 0xff])]).ok(),
            Some(WriteReply::Unreadable {
                detail: "x\u{fffd}".into()
            })
        );
        assert!(WriteReply::parse(&[bulk("acquired")]).is_err());
        assert!(WriteReply::parse(&[]).is_err());
    }

    #[test]
    fn claim_replies_carry_token_and_progress() {
        assert_eq!(
            ClaimReply::parse(&[bulk("acquired"), Value::Int(7), bulk("123"), Value::Nil]).ok(),
            Some(ClaimReply::Acquired {
                token: 7,
                progress: ProgressFields {
                    sequence: Some("123".into()),
                    ..ProgressFields::default()
                }
            })
        );
        assert_eq!(
            ClaimReply::parse(&[
                bulk("acquired"),
                Value::Int(8),
                Value::Nil,
                Value::Nil,
                bulk("1764000000123456789"),
                Value::Nil
            ])
            .ok(),
            Some(ClaimReply::Acquired {
                token: 8,
                progress: ProgressFields {
                    start_timestamp_ns: Some("1764000000123456789".into()),
                    ..ProgressFields::default()
                }
            })
        );
        assert_eq!(
            ClaimReply::parse(&[bulk("held"), bulk("a")]).ok(),
            Some(ClaimReply::HeldBy { owner: "a".into() })
        );
        assert!(ClaimReply::parse(&[bulk("acquired"), Value::Int(-1)]).is_err());
        assert_eq!(
            ClaimReply::parse(&[bulk("unreadable"), bulk("no token")]).ok(),
            Some(ClaimReply::Unreadable {
                detail: "no token".into()
            })
        );
        assert_eq!(
            ClaimReply::parse(&[bulk("exhausted"), bulk("9223372036854775807")]).ok(),
            Some(ClaimReply::Exhausted {
                token: 9_223_372_036_854_775_807
            })
        );
        assert!(ClaimReply::parse(&[bulk("held")]).is_err());
    }

    #[test]
    fn listed_entries_fail_one_by_one() {
        let readable = [
            Value::Nil,
            bulk("a"),
            bulk("3"),
            bulk("12"),
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
        ];
        let mut reply = readable.to_vec();
        reply.push(bulk("token \"x\" is not a 64-bit unsigned number"));
        reply.extend(std::iter::repeat_n(Value::Nil, 7));
        let mut not_text = readable.to_vec();
        not_text[1] = Value::BulkString(vec![0xff]);
        reply.extend(not_text);
        let listed = ListedEntry::parse_all(&reply, 3).expect("shape");
        assert_eq!(listed[0].as_ref().map(|entry| entry.token), Ok(3));
        assert_eq!(
            listed[1],
            Err("token \"x\" is not a 64-bit unsigned number".to_owned())
        );
        assert!(listed[2].is_err());
        assert!(ListedEntry::parse_all(&reply, 2).is_err(), "wrong length");
        assert_eq!(
            parse_prune(&[Value::Int(2), bulk("shard-9")]).ok(),
            Some((2, vec!["shard-9".to_owned()]))
        );
        assert!(parse_prune(&[]).is_err());
    }
}
