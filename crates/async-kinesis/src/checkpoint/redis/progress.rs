//! Reading a shard entry's fields back as progress. The scripts check the fields before acting
//! on an entry; this is where their values are parsed, and refused when they do not fit.

use super::scripts::ProgressFields;
use crate::checkpoint::{Position, Progress, StartingPoint};

/// The progress recorded in an entry's fields; what is wrong with them when they do not parse.
pub(super) fn progress_of(fields: ProgressFields) -> Result<Progress, String> {
    let ProgressFields {
        sequence,
        sub_sequence,
        ended,
        start_timestamp_ns,
        start_sequence,
    } = fields;
    if ended {
        return Ok(Progress::ShardEnd);
    }
    let Some(sequence) = sequence else {
        return start_of(start_timestamp_ns, start_sequence);
    };
    if !StartingPoint::is_valid_sequence(&sequence) {
        return Err(format!("sequence {sequence:?} is not a decimal number"));
    }
    let sub_sequence = sub_sequence
        .map(|sub| {
            sub.parse::<u64>()
                .map_err(|_| format!("sub_sequence {sub:?} is not a 64-bit unsigned number"))
        })
        .transpose()?;
    Ok(Progress::At(Position {
        sequence_number: sequence.into(),
        sub_sequence,
    }))
}

/// The recorded start of an entry without a checkpoint.
fn start_of(timestamp_ns: Option<String>, sequence: Option<String>) -> Result<Progress, String> {
    match (timestamp_ns, sequence) {
        (None, None) => Ok(Progress::None),
        (Some(nanos), None) => nanos
            .parse::<u128>()
            .ok()
            .and_then(StartingPoint::from_epoch_nanos)
            .map(|at| Progress::Started(StartingPoint::AtTimestamp(at)))
            .ok_or_else(|| format!("start_timestamp_ns {nanos:?} is not a time in nanoseconds")),
        (None, Some(sequence)) if StartingPoint::is_valid_sequence(&sequence) => {
            Ok(Progress::Started(StartingPoint::AtSequence(sequence)))
        }
        (None, Some(sequence)) => Err(format!(
            "start_sequence {sequence:?} is not a decimal number"
        )),
        (Some(_), Some(_)) => Err("both start_timestamp_ns and start_sequence are set".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(sequence: Option<&str>, sub_sequence: Option<&str>, ended: bool) -> ProgressFields {
        ProgressFields {
            sequence: sequence.map(str::to_owned),
            sub_sequence: sub_sequence.map(str::to_owned),
            ended,
            ..ProgressFields::default()
        }
    }

    #[test]
    fn entries_read_back_as_progress() {
        assert_eq!(
            progress_of(fields(None, None, false)).ok(),
            Some(Progress::None)
        );
        assert_eq!(
            progress_of(fields(Some("12"), Some("3"), false)).ok(),
            Some(Progress::At(Position::within("12", 3)))
        );
        assert_eq!(
            progress_of(fields(Some("12"), None, false)).ok(),
            Some(Progress::At(Position::after("12")))
        );
        assert_eq!(
            progress_of(fields(Some("12"), None, true)).ok(),
            Some(Progress::ShardEnd)
        );
        assert!(progress_of(fields(Some("12"), Some("x"), false)).is_err());
        assert!(progress_of(fields(Some("12"), Some("18446744073709551616"), false)).is_err());
        assert_eq!(
            progress_of(fields(Some("1x"), None, false)),
            Err("sequence \"1x\" is not a decimal number".to_owned())
        );
    }

    #[test]
    fn a_recorded_start_reads_back_until_the_first_checkpoint() {
        let started = |timestamp: Option<&str>, sequence: Option<&str>| ProgressFields {
            start_timestamp_ns: timestamp.map(str::to_owned),
            start_sequence: sequence.map(str::to_owned),
            ..ProgressFields::default()
        };
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(1_764_000_000, 5);
        assert_eq!(
            progress_of(started(Some("1764000000000000005"), None)).ok(),
            Some(Progress::Started(StartingPoint::AtTimestamp(at)))
        );
        assert_eq!(
            progress_of(started(None, Some("4959"))).ok(),
            Some(Progress::Started(StartingPoint::AtSequence("4959".into())))
        );
        let checkpointed = ProgressFields {
            sequence: Some("5000".into()),
            ..started(None, Some("4959"))
        };
        assert_eq!(
            progress_of(checkpointed).ok(),
            Some(Progress::At(Position::after("5000")))
        );
        for garbage in [
            started(Some("soon"), None),
            started(None, Some("12a")),
            started(Some("1"), Some("2")),
        ] {
            assert!(progress_of(garbage.clone()).is_err(), "{garbage:?}");
        }
    }
}
