//! `--from` and `--until`: where reading starts and ends. Pure: the current time is passed in.

use std::time::{Duration, SystemTime};

/// Where shards without a checkpoint start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartSpec {
    /// The oldest record kept.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// Records that arrived at or after this time.
    At(TimeSpec),
    /// From this record on (a sequence number of one shard).
    Sequence(String),
}

/// A point in time: absolute, or an age relative to when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSpec {
    /// An RFC 3339 time.
    Absolute(SystemTime),
    /// This long before now.
    Ago(Duration),
}

impl TimeSpec {
    /// The time this stands for, `now` being when the command runs.
    pub(crate) fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            Self::Absolute(at) => at,
            // Kinesis knows no time before 1970; older ages start there.
            Self::Ago(age) => now
                .checked_sub(age)
                .filter(|at| *at >= SystemTime::UNIX_EPOCH)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }
}

/// Where reading ends (`--until`).
pub(crate) type UntilSpec = TimeSpec;

/// Parses `--from`.
///
/// # Errors
/// A message saying what forms are accepted.
pub(crate) fn parse_start(text: &str) -> Result<StartSpec, String> {
    match text {
        "trim-horizon" | "TRIM_HORIZON" => return Ok(StartSpec::TrimHorizon),
        "latest" | "LATEST" => return Ok(StartSpec::Latest),
        _ => {}
    }
    if let Some(sequence) = text.strip_prefix("seq:") {
        if sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{text:?}: a sequence number is decimal digits, e.g. seq:49590338271490256608559692538361571095921575989136588898"
            ));
        }
        return Ok(StartSpec::Sequence(sequence.to_owned()));
    }
    parse_time(text).map(StartSpec::At).map_err(|reason| {
        format!(
            "{reason}; --from takes trim-horizon, latest, an RFC 3339 time \
             (2024-05-01T12:00:00Z), an age (-15m, -2h30m) or seq:<sequence number>"
        )
    })
}

/// Parses `--until`.
///
/// # Errors
/// A message saying what forms are accepted.
pub(crate) fn parse_until(text: &str) -> Result<UntilSpec, String> {
    parse_time(text).map_err(|reason| {
        format!("{reason}; --until takes an RFC 3339 time (2024-05-01T12:00:00Z) or an age (-5m)")
    })
}

/// An RFC 3339 time, or `-<duration>` for that long ago.
fn parse_time(text: &str) -> Result<TimeSpec, String> {
    if let Some(age) = text.strip_prefix('-') {
        return humantime::parse_duration(age)
            .map(TimeSpec::Ago)
            .map_err(|e| format!("{text:?} is not an age: {e}"));
    }
    humantime::parse_rfc3339_weak(text)
        .map(TimeSpec::Absolute)
        .map_err(|e| format!("{text:?} is not a time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_starts_and_sequences() {
        assert_eq!(parse_start("trim-horizon"), Ok(StartSpec::TrimHorizon));
        assert_eq!(parse_start("latest"), Ok(StartSpec::Latest));
        assert_eq!(
            parse_start("seq:4959"),
            Ok(StartSpec::Sequence("4959".into()))
        );
        assert!(parse_start("seq:").is_err());
        assert!(parse_start("seq:12x").is_err());
    }

    #[test]
    fn times_and_ages() {
        let at = parse_start("2024-05-01T12:00:00Z").expect("rfc 3339");
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        assert_eq!(at, StartSpec::At(TimeSpec::Absolute(expected)));
        let ago = parse_start("-15m").expect("age");
        assert_eq!(ago, StartSpec::At(TimeSpec::Ago(Duration::from_secs(900))));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            TimeSpec::Ago(Duration::from_secs(900)).resolve(now),
            SystemTime::UNIX_EPOCH + Duration::from_secs(9_100)
        );
        assert_eq!(
            TimeSpec::Ago(Duration::from_secs(20_000)).resolve(now),
            SystemTime::UNIX_EPOCH
        );
        assert_eq!(
            parse_until("-5m"),
            Ok(TimeSpec::Ago(Duration::from_secs(300)))
        );
    }

    #[test]
    fn malformed_times_say_what_is_accepted() {
        for bad in ["yesterday", "-15x", "2024-13-01T00:00:00Z", ""] {
            let err = parse_start(bad).expect_err(bad);
            assert!(err.contains("--from takes trim-horizon"), "{bad}: {err}");
        }
        assert!(
            parse_until("latest")
                .expect_err("not a time")
                .contains("--until takes")
        );
    }
}
