//! Registering the stream consumer a fan-out reader subscribes as, and deregistering it.
//!
//! RegisterStreamConsumer allows 5 calls per second per account and at most 5 consumers being
//! created at once: LimitExceeded is retried with backoff until the build's `describe_timeout`.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::ConsumerStatus;
use tokio::time::Instant;

use crate::StreamClient;
use crate::error::{Error, ErrorClass};

/// The stream consumer to read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FanOutConsumer {
    /// Registered under this name if the stream has no consumer of that name yet.
    Name(String),
    /// An existing consumer of the stream, by ARN.
    Arn(String),
}

/// Longest pause between two looks at a consumer being created.
const POLL_LIMIT: Duration = Duration::from_secs(2);

impl FanOutConsumer {
    /// Why the name or ARN cannot be a stream consumer's, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            Self::Name(name) => {
                let valid_chars = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                (!(1..=128).contains(&name.len()) || !valid_chars).then(|| {
                    format!(
                        "{name:?} is not a stream consumer name (1 to 128 of a-z, A-Z, 0-9, '_', '.', '-')"
                    )
                })
            }
            Self::Arn(arn) => {
                let shaped = arn.starts_with("arn:")
                    && arn.split(':').nth(5).is_some_and(|resource| {
                        let parts: Vec<&str> = resource.split('/').collect();
                        parts.len() >= 4 && parts[0] == "stream" && parts[2] == "consumer"
                    });
                (!shaped || arn.len() > 2048).then(|| {
                    format!(
                        "{arn:?} is not a stream consumer ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/STREAM/consumer/NAME:TIMESTAMP)"
                    )
                })
            }
        }
    }
}

/// The ARN of `consumer`, registered on the stream `stream_arn` if it is a name not registered
/// yet, once it is ACTIVE (waiting at most `timeout`).
///
/// # Errors
/// A consumer ARN of another stream or unknown to the service; AccessDenied and other errors
/// that retrying cannot mend; [`Error::WaitTimeout`] when it is not ACTIVE in time.
pub(crate) async fn ensure_registered(
    client: &StreamClient,
    stream_arn: &str,
    consumer: &FanOutConsumer,
    timeout: Duration,
) -> Result<Arc<str>, Error> {
    let deadline = Instant::now() + timeout;
    let mut attempt = 0u32;
    let mut last_status = String::from("not registered");
    loop {
        attempt += 1;
        match describe(client, stream_arn, consumer).await {
            Ok((arn, of_stream, status)) => {
                if of_stream != stream_arn {
                    return Err(Error::InvalidArgument(format!(
                        "stream consumer {arn} belongs to the stream {of_stream}, not {stream_arn}"
                    )));
                }
                if status == ConsumerStatus::Active {
                    return Ok(arn.into());
                }
                last_status = status.as_str().to_owned();
            }
            Err(err) if err.class() == ErrorClass::NotFound => match consumer {
                FanOutConsumer::Arn(arn) => {
                    return Err(Error::InvalidArgument(format!(
                        "no stream consumer {arn} is registered"
                    )));
                }
                FanOutConsumer::Name(name) => match register(client, stream_arn, name).await {
                    Ok(()) => last_status = "CREATING".into(),
                    // Registered meanwhile (another worker of the group), or being deleted.
                    Err(err) if err.class() == ErrorClass::InUse => {}
                    Err(err) if err.class() == ErrorClass::Throttling => {
                        last_status = format!("registration throttled ({err})");
                    }
                    Err(err) => return Err(err),
                },
            },
            Err(err) if err.is_retryable() => last_status = format!("describe failed ({err})"),
            Err(err) => return Err(err),
        }
        let pause =
            (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(8))).min(POLL_LIMIT);
        if Instant::now() + pause > deadline {
            return Err(Error::WaitTimeout {
                stream: stream_arn.to_owned(),
                wanted: "a stream consumer ACTIVE for enhanced fan-out",
                last_status,
                waited: timeout,
            });
        }
        tokio::time::sleep(pause).await;
    }
}

/// DescribeStreamConsumer: the consumer's ARN, its stream's ARN and its status.
async fn describe(
    client: &StreamClient,
    stream_arn: &str,
    consumer: &FanOutConsumer,
) -> Result<(String, String, ConsumerStatus), Error> {
    let request = client.sdk_client().describe_stream_consumer();
    let request = match consumer {
        FanOutConsumer::Name(name) => request.stream_arn(stream_arn).consumer_name(name),
        FanOutConsumer::Arn(arn) => request.consumer_arn(arn),
    };
    let output = request
        .send()
        .await
        .map_err(|e| client.error("DescribeStreamConsumer", e))?;
    let description = output
        .consumer_description()
        .ok_or(Error::MalformedResponse {
            operation: "DescribeStreamConsumer",
            detail: "no ConsumerDescription".into(),
        })?;
    Ok((
        description.consumer_arn().to_owned(),
        description.stream_arn().to_owned(),
        description.consumer_status().clone(),
    ))
}

async fn register(client: &StreamClient, stream_arn: &str, name: &str) -> Result<(), Error> {
    tracing::info!(stream = %stream_arn, consumer = %name, "registering the stream consumer for enhanced fan-out");
    client
        .sdk_client()
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| client.error("RegisterStreamConsumer", e))
}

/// DeregisterStreamConsumer; a consumer already gone counts as done.
pub(crate) async fn deregister(client: &StreamClient, consumer_arn: &str) -> Result<(), Error> {
    match client
        .sdk_client()
        .deregister_stream_consumer()
        .consumer_arn(consumer_arn)
        .send()
        .await
        .map_err(|e| client.error("DeregisterStreamConsumer", e))
    {
        Ok(_) => Ok(()),
        Err(err) if err.class() == ErrorClass::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_are_checked_before_any_call() {
        let name = |n: &str| FanOutConsumer::Name(n.into()).problem();
        assert_eq!(name("orders-app_v1.2"), None);
        assert!(name("").is_some());
        assert!(name("has space").is_some());
        assert!(name("slash/name").is_some());
        assert!(name(&"a".repeat(129)).is_some());
        assert_eq!(name(&"a".repeat(128)), None);
        let arn = |a: &str| FanOutConsumer::Arn(a.into()).problem();
        assert_eq!(
            arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1700000000"),
            None
        );
        assert!(arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders").is_some());
        assert!(arn("orders-app").is_some());
    }
}
