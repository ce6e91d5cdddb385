//! How a command fails, and the exit code of each kind of failure.

use std::error::Error as StdError;

/// A failed command.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line asks for something impossible (exit 2, like clap's own errors).
    Usage(String),
    /// The command failed (exit 1).
    Failed(String),
    /// Some items failed; each was reported already (exit 1, no further message).
    Reported,
    /// Stopped by Ctrl-C (exit 130).
    Interrupted,
}

impl CliError {
    /// The exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) | Self::Reported => 1,
            Self::Interrupted => 130,
        }
    }

    /// The one-line message to print, if any.
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            Self::Usage(message) | Self::Failed(message) => Some(message),
            Self::Reported | Self::Interrupted => None,
        }
    }
}

/// An error and its causes on one line: `outer: cause: root cause`, without repeats.
pub(crate) fn one_line(err: &(dyn StdError + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = current.source();
    }
    line
}

impl From<async_kinesis::Error> for CliError {
    fn from(err: async_kinesis::Error) -> Self {
        Self::Failed(one_line(&err))
    }
}

impl From<async_kinesis::checkpoint::CheckpointError> for CliError {
    fn from(err: async_kinesis::checkpoint::CheckpointError) -> Self {
        Self::Failed(one_line(&err))
    }
}

impl From<async_kinesis::ConsumeError> for CliError {
    fn from(err: async_kinesis::ConsumeError) -> Self {
        // The stream's own error names it better than the consumer's wrapper.
        match err {
            async_kinesis::ConsumeError::Stream { source, .. } => source.into(),
            other => Self::Failed(one_line(&other)),
        }
    }
}

impl From<async_kinesis::consumer::BuildError> for CliError {
    fn from(err: async_kinesis::consumer::BuildError) -> Self {
        // The stream's own error names it better than the builder's wrapper.
        match err {
            async_kinesis::consumer::BuildError::Stream { source, .. } => source.into(),
            other => Self::Failed(one_line(&other)),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        Self::Failed(one_line(&err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CliError::Failed(String::new()).exit_code(), 1);
        assert_eq!(CliError::Reported.exit_code(), 1);
        assert_eq!(CliError::Interrupted.exit_code(), 130);
        assert_eq!(CliError::Interrupted.message(), None);
    }

    #[test]
    fn causes_join_on_one_line() {
        let err: CliError = async_kinesis::Error::StreamNotFound {
            stream: "orders".into(),
        }
        .into();
        assert_eq!(err.message(), Some("stream orders not found"));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(one_line(&io), "gone");
    }
}
