//! Addressing a stream by name or by ARN, validated before any call is made.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::stream::limits::STREAM_NAME_MAX_LEN;

/// A stream, addressed by name or by ARN.
///
/// With an ARN, every call that accepts `StreamARN` uses it, so a client can reach a stream of
/// another account or region that the ARN names (cross-account access through a resource policy).
///
/// ```
/// use async_kinesis::StreamRef;
///
/// let by_name: StreamRef = "orders".parse()?;
/// assert_eq!(by_name.name(), "orders");
/// assert_eq!(by_name.arn(), None);
///
/// let by_arn: StreamRef = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders".parse()?;
/// assert_eq!(by_arn.name(), "orders");
/// assert_eq!(by_arn.region(), Some("eu-west-1"));
/// # Ok::<(), async_kinesis::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRef {
    name: String,
    arn: Option<StreamArn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StreamArn {
    full: String,
    region: String,
    account: String,
}

impl StreamRef {
    /// A stream addressed by name.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`] unless the name has 1–128 characters from `a-zA-Z0-9_.-`.
    pub fn name_only(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Self { name, arn: None })
    }

    /// A stream addressed by ARN: `arn:<partition>:kinesis:<region>:<account>:stream/<name>`.
    ///
    /// # Errors
    /// [`Error::InvalidStreamArn`] when the ARN is malformed or names something other than a stream.
    pub fn from_arn(arn: impl Into<String>) -> Result<Self, Error> {
        let full = arn.into();
        let invalid = |reason| Error::InvalidStreamArn {
            arn: full.clone(),
            reason,
        };
        let parts: Vec<&str> = full.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(invalid(
                "expected arn:<partition>:kinesis:<region>:<account>:stream/<name>",
            ));
        };
        if prefix != "arn" {
            return Err(invalid("does not start with \"arn:\""));
        }
        if partition.is_empty() || !partition.starts_with("aws") {
            return Err(invalid("unknown partition"));
        }
        if service != "kinesis" {
            return Err(invalid("not a Kinesis ARN"));
        }
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("missing or malformed region"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("account id must be 12 digits"));
        }
        let Some(name) = resource.strip_prefix("stream/") else {
            return Err(invalid("resource is not stream/<name>"));
        };
        if name.contains('/') {
            return Err(invalid(
                "names a stream consumer or sub-resource, not a stream",
            ));
        }
        validate_name(name).map_err(|_| invalid("the stream name part is not a valid name"))?;
        Ok(Self {
            name: name.to_owned(),
            arn: Some(StreamArn {
                region: region.to_owned(),
                account: account.to_owned(),
                full,
            }),
        })
    }

    /// The stream's name (taken from the ARN when addressed by ARN).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream's ARN, when addressed by ARN.
    pub fn arn(&self) -> Option<&str> {
        self.arn.as_ref().map(|arn| arn.full.as_str())
    }

    /// The region named by the ARN, when addressed by ARN.
    pub fn region(&self) -> Option<&str> {
        self.arn.as_ref().map(|arn| arn.region.as_str())
    }

    /// The account id named by the ARN, when addressed by ARN.
    pub fn account(&self) -> Option<&str> {
        self.arn.as_ref().map(|arn| arn.account.as_str())
    }

    /// `(StreamName, StreamARN)` for a request: exactly one of them is set.
    pub(crate) fn request_ids(&self) -> (Option<String>, Option<String>) {
        match self.arn() {
            Some(arn) => (None, Some(arn.to_owned())),
            None => (Some(self.name.clone()), None),
        }
    }
}

impl FromStr for StreamRef {
    type Err = Error;

    /// Parses an ARN (anything starting with `arn:`) or else a stream name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("arn:") {
            Self::from_arn(s)
        } else {
            Self::name_only(s)
        }
    }
}

impl TryFrom<&str> for StreamRef {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<String> for StreamRef {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.arn().unwrap_or(&self.name))
    }
}

/// Anything that names a stream: a [`StreamRef`], or a name or ARN as text (validated).
pub trait IntoStreamRef {
    /// Validates and converts.
    ///
    /// # Errors
    /// [`Error::InvalidStreamName`] or [`Error::InvalidStreamArn`].
    fn into_stream_ref(self) -> Result<StreamRef, Error>;
}

impl IntoStreamRef for StreamRef {
    fn into_stream_ref(self) -> Result<StreamRef, Error> {
        Ok(self)
    }
}

impl IntoStreamRef for &StreamRef {
    fn into_stream_ref(self) -> Result<StreamRef, Error> {
        Ok(self.clone())
    }
}

impl IntoStreamRef for &str {
    fn into_stream_ref(self) -> Result<StreamRef, Error> {
        self.parse()
    }
}

impl IntoStreamRef for String {
    fn into_stream_ref(self) -> Result<StreamRef, Error> {
        self.parse()
    }
}

impl IntoStreamRef for &String {
    fn into_stream_ref(self) -> Result<StreamRef, Error> {
        self.parse()
    }
}

fn validate_name(name: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidStreamName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > STREAM_NAME_MAX_LEN {
        return Err(invalid("longer than 128 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(invalid("only a-z, A-Z, 0-9, '_', '.' and '-' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_error(input: &str) -> &'static str {
        match StreamRef::name_only(input) {
            Err(Error::InvalidStreamName { reason, .. }) => reason,
            other => panic!("expected InvalidStreamName for {input:?}, got {other:?}"),
        }
    }

    fn arn_error(input: &str) -> &'static str {
        match StreamRef::from_arn(input) {
            Err(Error::InvalidStreamArn { reason, .. }) => reason,
            other => panic!("expected InvalidStreamArn for {input:?}, got {other:?}"),
        }
    }

    #[test]
    fn valid_names_are_accepted() {
        for name in ["a", "orders", "my_stream.v2-prod", &"x".repeat(128)] {
            let stream = StreamRef::name_only(name).expect(name);
            assert_eq!(stream.name(), name);
            assert_eq!(stream.arn(), None);
            assert_eq!(stream.request_ids(), (Some(name.to_owned()), None));
        }
    }

    #[test]
    fn invalid_names_are_rejected_with_a_reason() {
        assert_eq!(name_error(""), "empty");
        assert_eq!(name_error(&"x".repeat(129)), "longer than 128 characters");
        for bad in ["with space", "slash/name", "colon:name", "ünïcode", "tab\t"] {
            assert!(name_error(bad).starts_with("only"), "{bad}");
        }
    }

    #[test]
    fn a_stream_arn_is_parsed() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders-1";
        let stream: StreamRef = arn.parse().expect("valid ARN");
        assert_eq!(stream.name(), "orders-1");
        assert_eq!(stream.arn(), Some(arn));
        assert_eq!(stream.region(), Some("us-east-1"));
        assert_eq!(stream.account(), Some("000000000000"));
        assert_eq!(stream.request_ids(), (None, Some(arn.to_owned())));
        assert_eq!(stream.to_string(), arn);
    }

    #[test]
    fn other_partitions_are_accepted() {
        for partition in ["aws-cn", "aws-us-gov", "aws-iso"] {
            let arn = format!("arn:{partition}:kinesis:cn-north-1:123456789012:stream/s");
            assert!(StreamRef::from_arn(&arn).is_ok(), "{arn}");
        }
    }

    #[test]
    fn malformed_arns_are_rejected_with_a_reason() {
        let cases = [
            ("arn:aws:kinesis", "expected"),
            (
                "urn:aws:kinesis:us-east-1:123456789012:stream/s",
                "does not",
            ),
            ("arn::kinesis:us-east-1:123456789012:stream/s", "unknown"),
            (
                "arn:aws:sqs:us-east-1:123456789012:stream/s",
                "not a Kinesis",
            ),
            ("arn:aws:kinesis::123456789012:stream/s", "missing"),
            ("arn:aws:kinesis:us-east-1:1234:stream/s", "account"),
            ("arn:aws:kinesis:us-east-1:12345678901x:stream/s", "account"),
            ("arn:aws:kinesis:us-east-1:123456789012:table/s", "resource"),
            (
                "arn:aws:kinesis:us-east-1:123456789012:stream/",
                "the stream",
            ),
            (
                "arn:aws:kinesis:us-east-1:123456789012:stream/b@d",
                "the stream",
            ),
            (
                "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1",
                "names a stream consumer",
            ),
        ];
        for (arn, reason) in cases {
            let got = arn_error(arn);
            assert!(got.starts_with(reason), "{arn}: {got}");
        }
    }

    #[test]
    fn parse_chooses_by_prefix() {
        assert!(
            "arn:aws:kinesis:us-east-1:123456789012:stream/s"
                .parse::<StreamRef>()
                .expect("arn")
                .arn()
                .is_some()
        );
        assert!(matches!(
            "arn-like-name".parse::<StreamRef>(),
            Ok(StreamRef { arn: None, .. })
        ));
        assert!(matches!(
            "arn:broken".parse::<StreamRef>(),
            Err(Error::InvalidStreamArn { .. })
        ));
    }
}
