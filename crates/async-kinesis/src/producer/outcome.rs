//! What to do with each record after a PutRecords call: pure decisions, unit-tested.

use crate::error::{Error, ErrorClass, REQUEST_TOO_LARGE};
use crate::retry::RetryPolicy;

/// One entry of a PutRecords response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryResult {
    /// Stored: where.
    Accepted {
        shard_id: String,
        sequence_number: String,
    },
    /// Refused: the entry's error code and message.
    Refused { code: String, message: String },
}

/// What happens to a record next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Resolve its items as delivered.
    Deliver {
        shard_id: String,
        sequence_number: String,
    },
    /// Send it again after a backoff; `throttled` slows its shard down.
    Retry { throttled: bool },
    /// Resolve its items with this failure.
    Fail {
        code: String,
        message: String,
        class: ErrorClass,
    },
}

/// Decides a record's fate from its entry in the response; `attempts` counts this one.
pub(crate) fn after_entry(entry: EntryResult, attempts: u32, retry: &RetryPolicy) -> Next {
    match entry {
        EntryResult::Accepted {
            shard_id,
            sequence_number,
        } => Next::Deliver {
            shard_id,
            sequence_number,
        },
        EntryResult::Refused { code, message } => {
            let class = ErrorClass::of_code(&code);
            // A code this library does not know may be a new transient one: retried like the
            // consumer does, within the retry limit, rather than failing the item at once.
            let retryable = class.is_retryable() || class == ErrorClass::Unknown;
            if retryable && !retry.gives_up_after(attempts) {
                Next::Retry {
                    throttled: class == ErrorClass::Throttling,
                }
            } else {
                Next::Fail {
                    code,
                    message,
                    class,
                }
            }
        }
    }
}

/// What happens to a whole batch whose call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallFailure {
    /// Send the batch again after a backoff; `throttled` slows its shard down.
    Retry { throttled: bool },
    /// The request was too large for the endpoint: send the records again in smaller calls.
    Split,
    /// The call was refused as a whole for its input (a validation error), which one bad
    /// record causes: fail the records the service's message names and send the others again,
    /// or, when it names none, send the records again in halves until the bad one is alone.
    Isolate,
    /// The stream is gone: fail this batch and everything else waiting.
    StreamGone,
    /// Fail this batch's items with the error.
    Fail,
}

/// Decides a failed call's batch fate; `attempts` is the most attempts of its `records`.
pub(crate) fn after_call_error(
    error: &Error,
    records: usize,
    attempts: u32,
    retry: &RetryPolicy,
) -> CallFailure {
    if matches!(error, Error::StreamNotFound { .. }) {
        return CallFailure::StreamGone;
    }
    if error.code() == Some(REQUEST_TOO_LARGE) && records > 1 {
        return CallFailure::Split;
    }
    if error.class() == ErrorClass::Validation && records > 1 {
        return CallFailure::Isolate;
    }
    if error.is_retryable() && !retry.gives_up_after(attempts) {
        CallFailure::Retry {
            throttled: error.class() == ErrorClass::Throttling,
        }
    } else {
        CallFailure::Fail
    }
}

/// The records a call refused as a whole names as the bad ones: the service's validation message
/// points at each (`Value '…' at 'records.2.member.partitionKey' failed to satisfy constraint`,
/// 1-based). `None` when the message names none, or one the call did not hold (then the bad
/// record has to be isolated by halving the call). Only a complete ` at 'records.N.member.field'`
/// counts, so text of a value the message quotes is not taken for a name.
pub(crate) fn records_named(message: &str, records: usize) -> Option<Vec<usize>> {
    const MARK: &str = " at 'records.";
    let mut named = Vec::new();
    for (at, _) in message.match_indices(MARK) {
        let rest = &message[at + MARK.len()..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(field) = rest[digits..].strip_prefix(".member.") else {
            continue;
        };
        let field_len = field.len()
            - field
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric())
                .len();
        if field_len == 0 || !field[field_len..].starts_with('\'') {
            continue;
        }
        let index = rest[..digits].parse::<usize>().ok()?.checked_sub(1)?;
        if index >= records {
            return None;
        }
        named.push(index);
    }
    named.sort_unstable();
    named.dedup();
    (!named.is_empty()).then_some(named)
}

#[cfg(test)]
mod tests {

    fn limit(attempts: u32) -> RetryPolicy {
        RetryPolicy::default().retry_limit(Some(attempts))
    }

    #[test]
    fn a_request_too_large_is_split_unless_it_is_one_record() {
        let too_large = Error::Service {
            operation: "PutRecords",
            class: ErrorClass::Validation,
            code: REQUEST_TOO_LARGE.into(),
            message: String::new(),
        };
        assert_eq!(
            after_call_error(&too_large, 2, 1, &limit(3)),
            CallFailure::Split
        );
        assert_eq!(
            after_call_error(&too_large, 1, 1, &limit(3)),
            CallFailure::Fail
        );
    }

    #[test]
    fn a_call_refused_for_its_input_is_split_to_isolate_the_record() {
        let invalid = Error::Service {
            operation: "PutRecords",
            class: ErrorClass::Validation,
            code: "ValidationException".into(),
            message: "1 validation error detected: Value at 'records.3.member.partitionKey'".into(),
        };
        assert_eq!(
            after_call_error(&invalid, 7, 1, &limit(3)),
            CallFailure::Isolate
        );
        // Alone, the record is the bad one: it fails with the service's message.
        assert_eq!(
            after_call_error(&invalid, 1, 1, &limit(3)),
            CallFailure::Fail
        );
    }

    use super::*;

    #[test]
    fn the_records_a_validation_message_names_are_found() {
        let key = "Value 'kkk' at 'records.2.member.partitionKey' failed to satisfy constraint";
        assert_eq!(records_named(key, 3), Some(vec![1]));
        let two = "2 validation errors detected: Value at 'records.5.member.data' failed; \
                   Value 'x' at 'records.1.member.partitionKey' failed; again at 'records.5.member.data'";
        assert_eq!(records_named(two, 5), Some(vec![0, 4]));
        // A quoted value that looks like a name is not one.
        let quoted = "Value 'records.1.member.data' at 'records.3.member.partitionKey' failed";
        assert_eq!(records_named(quoted, 3), Some(vec![2]));
        // Names a record the call did not hold, or none, or not in the form: halve instead.
        assert_eq!(records_named(key, 1), None);
        assert_eq!(
            records_named("Partition key must be between 1 and 256 in length", 3),
            None
        );
        assert_eq!(records_named("at 'records.0.member.data'", 3), None);
        assert_eq!(records_named(" at 'records.0.member.data'", 3), None);
        assert_eq!(records_named(" at 'records.x.member.data'", 3), None);
        assert_eq!(
            records_named(" at 'records.99999999999999999999999.member.data'", 3),
            None
        );
        assert_eq!(records_named(" at 'records.2.other'", 3), None);
        assert_eq!(records_named(" at 'records.2.member.data", 3), None);
        assert_eq!(records_named(" at 'records.2.member.'", 3), None);
    }

    fn refused(code: &str) -> EntryResult {
        EntryResult::Refused {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn accepted_entries_are_delivered() {
        let next = after_entry(
            EntryResult::Accepted {
                shard_id: "s".into(),
                sequence_number: "1".into(),
            },
            1,
            &limit(3),
        );
        assert_eq!(
            next,
            Next::Deliver {
                shard_id: "s".into(),
                sequence_number: "1".into()
            }
        );
    }

    #[test]
    fn throttled_and_internal_failures_are_retried_until_the_limit() {
        assert_eq!(
            after_entry(
                refused("ProvisionedThroughputExceededException"),
                1,
                &limit(3)
            ),
            Next::Retry { throttled: true }
        );
        assert_eq!(
            after_entry(refused("InternalFailure"), 2, &limit(3)),
            Next::Retry { throttled: false }
        );
        assert!(matches!(
            after_entry(refused("InternalFailure"), 3, &limit(3)),
            Next::Fail {
                class: ErrorClass::Transient,
                ..
            }
        ));
    }

    #[test]
    fn unknown_codes_are_retried_until_the_limit() {
        assert_eq!(
            after_entry(refused("SomethingNew"), 1, &limit(3)),
            Next::Retry { throttled: false }
        );
        assert!(matches!(
            after_entry(refused("SomethingNew"), 3, &limit(3)),
            Next::Fail {
                class: ErrorClass::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn permanent_codes_fail_at_once() {
        for code in ["KMSAccessDeniedException", "ValidationException"] {
            match after_entry(refused(code), 1, &limit(10)) {
                Next::Fail { code: got, .. } => assert_eq!(got, code),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn call_errors_retry_transient_and_fail_the_rest() {
        let throttled = Error::Service {
            operation: "PutRecords",
            class: ErrorClass::Throttling,
            code: "LimitExceededException".into(),
            message: String::new(),
        };
        assert_eq!(
            after_call_error(&throttled, 10, 1, &limit(3)),
            CallFailure::Retry { throttled: true }
        );
        assert_eq!(
            after_call_error(&throttled, 10, 3, &limit(3)),
            CallFailure::Fail
        );
        let gone = Error::StreamNotFound { stream: "s".into() };
        assert_eq!(
            after_call_error(&gone, 10, 1, &limit(3)),
            CallFailure::StreamGone
        );
        let denied = Error::Service {
            operation: "PutRecords",
            class: ErrorClass::AccessDenied,
            code: "AccessDeniedException".into(),
            message: String::new(),
        };
        assert_eq!(
            after_call_error(&denied, 10, 1, &limit(3)),
            CallFailure::Fail
        );
    }
}
