//! Errors, and the retry classification of AWS error codes.
//!
//! Every fallible call of the stream layer returns [`Error`]. [`Error::class`] says what kind of
//! failure it is and [`Error::is_retryable`] whether repeating the same call later can succeed.
//! [`ErrorClass::of_code`] classifies a bare AWS error code, as found in a failed call or in a
//! single failed entry of a PutRecords response.

use std::error::Error as StdError;
use std::fmt;

use crate::invalid_config::InvalidConfig;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an error is; drives retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The service asked us to slow down (per-shard throughput, API rate limits).
    Throttling,
    /// A temporary service-side or network failure; the same call may succeed later.
    Transient,
    /// A shard iterator or pagination token that is no longer valid; get a fresh one.
    Expired,
    /// The stream (or shard, consumer) does not exist.
    NotFound,
    /// The stream is being created, updated or deleted; the call may succeed once it settles.
    InUse,
    /// The request is invalid; repeating it cannot succeed.
    Validation,
    /// Credentials are missing, wrong, expired, or lack permission (including KMS keys).
    AccessDenied,
    /// The call timed out on our side before an answer came.
    Timeout,
    /// An error code this library does not know. It may be a new transient one: the producer
    /// and the consumer retry it within their retry limits.
    Unknown,
}

impl ErrorClass {
    /// Classifies an AWS error code such as `ProvisionedThroughputExceededException`.
    ///
    /// Codes are matched exactly; a code this library does not know is [`ErrorClass::Unknown`].
    pub fn of_code(code: &str) -> Self {
        match code {
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "KMSThrottlingException"
            // Kinesis answers API rate limits (DescribeStream 10/s, ListShards ...) with this code.
            | "LimitExceededException" => Self::Throttling,
            "InternalFailure"
            | "InternalFailureException"
            | "InternalServerError"
            | "InternalError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "KMSUnavailableException"
            // DynamoDB (checkpoint store): a concurrent transaction or replica write won.
            | "TransactionConflictException"
            | "ReplicatedWriteConflictException" => Self::Transient,
            "ExpiredIteratorException" | "ExpiredNextTokenException" => Self::Expired,
            "ResourceNotFoundException" => Self::NotFound,
            "ResourceInUseException" => Self::InUse,
            "InvalidArgumentException"
            | "ValidationException"
            | "SerializationException"
            | "InvalidParameterValueException"
            | "MissingParameter"
            | "UnknownOperationException" => Self::Validation,
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSInvalidStateException"
            | "KMSNotFoundException"
            | "KMSOptInRequired" => Self::AccessDenied,
            _ => Self::Unknown,
        }
    }

    /// Whether repeating the call unchanged, after a pause, can succeed.
    ///
    /// [`ErrorClass::Expired`] is not retryable as such: the caller must fetch a fresh iterator or
    /// token first.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttling | Self::Transient | Self::InUse | Self::Timeout
        )
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Throttling => "throttling",
            Self::Transient => "transient",
            Self::Expired => "expired",
            Self::NotFound => "not_found",
            Self::InUse => "in_use",
            Self::Validation => "validation",
            Self::AccessDenied => "access_denied",
            Self::Timeout => "timeout",
            Self::Unknown => "unknown",
        };
        f.write_str(name)
    }
}

/// An error of the stream layer.
///
/// `Display` describes this error alone; the underlying cause, where there is one, is available
/// through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stream name that Kinesis would reject; no call was made.
    #[error("invalid stream name {name:?}: {reason}")]
    InvalidStreamName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A malformed stream ARN; no call was made.
    #[error("invalid stream ARN {arn:?}: {reason}")]
    InvalidStreamArn {
        /// The rejected ARN.
        arn: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An invalid argument; no call was made.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An option out of range, or options that contradict each other; nothing was started.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
    /// The stream does not exist.
    #[error("stream {stream} not found")]
    StreamNotFound {
        /// The stream's name or ARN as addressed.
        stream: String,
    },
    /// The stream already exists (on create).
    #[error("stream {stream} already exists")]
    StreamExists {
        /// The stream's name.
        stream: String,
    },
    /// The producer or consumer was closed (or its background task ended).
    #[error("the {what} is closed")]
    Closed {
        /// What was closed.
        what: &'static str,
    },
    /// A wait for a stream state ran past its deadline.
    #[error(
        "stream {stream} did not become {wanted} within {waited:?} (last status: {last_status})"
    )]
    WaitTimeout {
        /// The stream's name or ARN as addressed.
        stream: String,
        /// The state waited for.
        wanted: &'static str,
        /// The status seen last.
        last_status: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// A wait of the producer ([`Producer::flush_within`](crate::Producer::flush_within),
    /// [`Producer::close_within`](crate::Producer::close_within)) ran past its deadline. The
    /// flush or close itself goes on in the background, and every item's receipt still
    /// resolves. Waiting again can succeed: flush again, or await the receipts (a timed-out
    /// close has closed the producer all the same).
    #[error("the {what} did not finish within {waited:?}")]
    Timeout {
        /// What was waited for: `"producer flush"` or `"producer close"`.
        what: &'static str,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// No AWS credentials could be found or loaded.
    #[error(
        "no AWS credentials for {operation}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or a role"
    )]
    NoCredentials {
        /// The operation that needed them.
        operation: &'static str,
        /// What the credential provider said, when a call was attempted.
        #[source]
        source: Option<BoxError>,
    },
    /// The endpoint could not be reached (connection refused, DNS, timeout before any answer).
    #[error("cannot reach Kinesis at {endpoint} for {operation}")]
    Unreachable {
        /// The operation attempted.
        operation: &'static str,
        /// The endpoint the client was configured with (or the AWS default for the region).
        endpoint: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// The service answered with an error.
    #[error("{operation} failed: {code}: {message}")]
    Service {
        /// The operation attempted.
        operation: &'static str,
        /// What kind of failure.
        class: ErrorClass,
        /// The AWS error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The service answered with something this library cannot use.
    #[error("{operation} returned a malformed response: {detail}")]
    MalformedResponse {
        /// The operation attempted.
        operation: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Any other failure of the AWS client (request construction, unparsable response, ...).
    #[error("{operation} failed")]
    Client {
        /// The operation attempted.
        operation: &'static str,
        /// What kind of failure, as far as it can be told.
        class: ErrorClass,
        /// The client's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// What kind of failure this is.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidStreamName { .. }
            | Self::InvalidStreamArn { .. }
            | Self::InvalidArgument(_)
            | Self::InvalidConfig(_) => ErrorClass::Validation,
            Self::StreamNotFound { .. } => ErrorClass::NotFound,
            Self::StreamExists { .. } => ErrorClass::InUse,
            Self::Closed { .. } => ErrorClass::Validation,
            Self::WaitTimeout { .. } | Self::Timeout { .. } => ErrorClass::Timeout,
            Self::NoCredentials { .. } => ErrorClass::AccessDenied,
            Self::Unreachable { .. } => ErrorClass::Transient,
            Self::MalformedResponse { .. } => ErrorClass::Unknown,
            Self::Service { class, .. } | Self::Client { class, .. } => *class,
        }
    }

    /// Whether repeating the failed call later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            // Creating an existing stream never succeeds, although "in use" usually settles.
            Self::StreamExists { .. } => false,
            other => other.class().is_retryable(),
        }
    }

    /// The AWS error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Converts an AWS SDK error of `operation` on `stream` into our error.
    ///
    /// `endpoint` names where the client sends requests, for the `Unreachable` message.
    pub(crate) fn from_sdk<E, R>(
        operation: &'static str,
        stream: &str,
        endpoint: &str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: RawStatus + fmt::Debug + Send + Sync + 'static,
    {
        if let Some(source) = credentials_failure(&err) {
            return Self::NoCredentials {
                operation,
                source: Some(source),
            };
        }
        match err {
            SdkError::ServiceError(context) => {
                let status = context.raw().http_status();
                let err = context.into_err();
                let message = err.message().unwrap_or_default().to_owned();
                let (code, class) = match err.code() {
                    Some(code) => (code.to_owned(), ErrorClass::of_code(code)),
                    // No AWS error code (an empty or non-JSON body): judge by the HTTP status.
                    None => code_of_status(status),
                };
                if class == ErrorClass::NotFound && operation_targets_stream(operation) {
                    return Self::StreamNotFound {
                        stream: stream.to_owned(),
                    };
                }
                Self::Service {
                    operation,
                    class,
                    code,
                    message,
                }
            }
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                Self::Unreachable {
                    operation,
                    endpoint: endpoint.to_owned(),
                    source: Box::new(SdkError::<E, R>::DispatchFailure(failure)),
                }
            }
            // E.g. a connection closed before the answer came: the same call may succeed.
            SdkError::DispatchFailure(failure)
                if failure.as_other()
                    == Some(aws_smithy_types::retry::ErrorKind::TransientError) =>
            {
                Self::Client {
                    operation,
                    class: ErrorClass::Transient,
                    source: Box::new(SdkError::<E, R>::DispatchFailure(failure)),
                }
            }
            SdkError::TimeoutError(_) => Self::Unreachable {
                operation,
                endpoint: endpoint.to_owned(),
                source: Box::new(err),
            },
            // An error status whose body could not be read as an AWS error (e.g. an empty 413
            // body): judge by the status, as for a service error without a code.
            SdkError::ResponseError(ref context)
                if context
                    .raw()
                    .http_status()
                    .is_some_and(|status| status >= 400) =>
            {
                let (code, class) = code_of_status(context.raw().http_status());
                Self::Service {
                    operation,
                    class,
                    code,
                    message: String::new(),
                }
            }
            SdkError::ResponseError(_) => Self::Client {
                operation,
                class: ErrorClass::Transient,
                source: Box::new(err),
            },
            other => Self::Client {
                operation,
                class: ErrorClass::Unknown,
                source: Box::new(other),
            },
        }
    }
}

/// The HTTP status of a raw response.
pub(crate) trait RawStatus {
    /// The status code, when there is one.
    fn http_status(&self) -> Option<u16>;
}

impl RawStatus for aws_smithy_runtime_api::http::Response {
    fn http_status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

/// An event-stream message (SubscribeToShard's events) has no HTTP status of its own.
impl RawStatus for aws_smithy_types::event_stream::RawMessage {
    fn http_status(&self) -> Option<u16> {
        None
    }
}

/// A code and class for an error answer that carries no AWS error code.
fn code_of_status(status: Option<u16>) -> (String, ErrorClass) {
    match status {
        // Too large a request: the caller may send less (the producer splits its batch).
        Some(413) => (REQUEST_TOO_LARGE.to_owned(), ErrorClass::Validation),
        Some(429) => ("TooManyRequests".to_owned(), ErrorClass::Throttling),
        Some(status @ 500..=599) => (format!("HTTP{status}"), ErrorClass::Transient),
        Some(status) => (format!("HTTP{status}"), ErrorClass::Unknown),
        None => ("Unknown".to_owned(), ErrorClass::Unknown),
    }
}

/// The code given to an answer of HTTP 413 without an AWS error code.
pub(crate) const REQUEST_TOO_LARGE: &str = "RequestEntityTooLarge";

/// Stream-level operations, where "resource not found" means the stream is missing.
fn operation_targets_stream(operation: &str) -> bool {
    matches!(
        operation,
        "DescribeStreamSummary"
            | "DescribeStream"
            | "ListShards"
            | "DeleteStream"
            | "PutRecords"
            | "PutRecord"
            | "GetShardIterator"
            | "UpdateShardCount"
    )
}

/// Finds a credentials-provider failure anywhere in the error's source chain.
fn credentials_failure<E, R>(err: &SdkError<E, R>) -> Option<BoxError>
where
    E: StdError + 'static,
    R: fmt::Debug + 'static,
{
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(creds) =
            current.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(creds.to_string().into());
        }
        // Without any credentials provider the SDK cannot pick an auth scheme.
        let text = current.to_string();
        if text.contains("no auth scheme") || text.contains("identity resolver") {
            return Some(text.into());
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_retryable() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "LimitExceededException",
            "KMSThrottlingException",
        ] {
            assert_eq!(ErrorClass::of_code(code), ErrorClass::Throttling, "{code}");
            assert!(ErrorClass::of_code(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn transient_codes_are_retryable() {
        for code in [
            "InternalFailure",
            "ServiceUnavailable",
            "KMSUnavailableException",
            "TransactionConflictException",
            "ReplicatedWriteConflictException",
        ] {
            assert_eq!(ErrorClass::of_code(code), ErrorClass::Transient, "{code}");
            assert!(ErrorClass::of_code(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn permanent_codes_are_not_retryable() {
        let cases = [
            ("ResourceNotFoundException", ErrorClass::NotFound),
            ("InvalidArgumentException", ErrorClass::Validation),
            ("ValidationException", ErrorClass::Validation),
            ("AccessDeniedException", ErrorClass::AccessDenied),
            ("KMSAccessDeniedException", ErrorClass::AccessDenied),
            ("UnrecognizedClientException", ErrorClass::AccessDenied),
            ("ExpiredIteratorException", ErrorClass::Expired),
            ("SomethingNewException", ErrorClass::Unknown),
            ("", ErrorClass::Unknown),
        ];
        for (code, class) in cases {
            assert_eq!(ErrorClass::of_code(code), class, "{code}");
            assert!(!class.is_retryable(), "{code}");
        }
    }

    #[test]
    fn in_use_is_retryable_but_stream_exists_is_not() {
        assert!(ErrorClass::of_code("ResourceInUseException").is_retryable());
        let exists = Error::StreamExists { stream: "s".into() };
        assert_eq!(exists.class(), ErrorClass::InUse);
        assert!(!exists.is_retryable());
    }

    #[test]
    fn codes_match_exactly() {
        // A prefix or different case is a different code.
        assert_eq!(
            ErrorClass::of_code("throttlingexception"),
            ErrorClass::Unknown
        );
        assert_eq!(ErrorClass::of_code("Internal"), ErrorClass::Unknown);
    }

    #[test]
    fn local_validation_errors_are_validation_class() {
        let err = Error::InvalidStreamName {
            name: String::new(),
            reason: "empty",
        };
        assert_eq!(err.class(), ErrorClass::Validation);
        assert!(!err.is_retryable());
        assert_eq!(err.code(), None);
    }

    #[test]
    fn service_error_reports_its_code_and_class() {
        let err = Error::Service {
            operation: "PutRecord",
            class: ErrorClass::Throttling,
            code: "ProvisionedThroughputExceededException".into(),
            message: "Rate exceeded".into(),
        };
        assert!(err.is_retryable());
        assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
        assert_eq!(
            err.to_string(),
            "PutRecord failed: ProvisionedThroughputExceededException: Rate exceeded"
        );
    }

    #[test]
    fn answers_without_a_code_are_judged_by_status() {
        assert_eq!(
            code_of_status(Some(413)),
            (REQUEST_TOO_LARGE.to_owned(), ErrorClass::Validation)
        );
        assert_eq!(code_of_status(Some(429)).1, ErrorClass::Throttling);
        assert_eq!(
            code_of_status(Some(503)),
            ("HTTP503".to_owned(), ErrorClass::Transient)
        );
        assert_eq!(code_of_status(Some(404)).1, ErrorClass::Unknown);
        assert_eq!(code_of_status(None).1, ErrorClass::Unknown);
    }

    #[test]
    fn class_names_are_metric_label_friendly() {
        assert_eq!(ErrorClass::Throttling.to_string(), "throttling");
        assert_eq!(ErrorClass::AccessDenied.to_string(), "access_denied");
    }
}
