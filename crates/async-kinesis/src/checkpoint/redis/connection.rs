//! The link to the server: a reconnecting single-node connection or a cluster connection, every
//! call bounded in time, every failure mapped to a [`CheckpointError`] that names the server.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, ServerErrorKind, Value};

use crate::checkpoint::CheckpointError;

/// One node (reconnects by itself after the connection drops) or a cluster (follows the slot
/// map, reconnects to nodes). Clones share the connection.
#[derive(Clone)]
pub(super) enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(node) => node.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(node) => node.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(node) => node.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}

/// A connection with the address to name in errors and a bound on every call.
#[derive(Clone)]
pub(super) struct Link {
    pub(super) connection: Connection,
    /// Password-redacted.
    pub(super) address: Arc<str>,
    /// No call, reconnecting and reloading scripts included, takes longer.
    pub(super) call_timeout: Duration,
}

impl Link {
    /// Runs `request` on the connection, within the call timeout.
    ///
    /// A request that failed because the connection was gone is repeated once, on the
    /// connection the manager re-opens: after a server restart the first request finds the old
    /// connection closed, and a failed reconnect of an outage that has since ended is stale.
    /// Only `repeatable` requests (those whose second run changes nothing the first did not)
    /// are repeated when the connection dropped mid-request; any request is repeated when its
    /// connection was refused, as it never reached the server.
    pub(super) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: bool,
        request: F,
    ) -> Result<T, CheckpointError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempts = async {
            match request(self.connection.clone()).await {
                Err(error)
                    if error.is_connection_refusal()
                        || (repeatable && error.is_connection_dropped()) =>
                {
                    request(self.connection.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.call_timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(redis_error(operation, &self.address, error)),
            Err(_) => Err(no_answer(operation, &self.address, self.call_timeout)),
        }
    }

    /// A store error for a failure that is not a Redis error (a malformed reply).
    pub(super) fn failure(
        &self,
        operation: &'static str,
        problem: impl fmt::Display,
    ) -> CheckpointError {
        CheckpointError::Store {
            operation,
            source: Box::new(Failure {
                address: self.address.clone(),
                problem: problem.to_string(),
                source: None,
            }),
            retryable: false,
        }
    }
}

/// What went wrong, and whether it can pass: connections, timeouts, a server loading its data
/// or a cluster moving slots pass; refused credentials and failing scripts do not.
fn classify(error: &RedisError) -> (&'static str, bool) {
    let code = error.code().unwrap_or_default();
    match error.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => {
            ("authentication or permission refused", false)
        }
        _ if matches!(code, "NOAUTH" | "WRONGPASS") => ("authentication refused", false),
        ErrorKind::Io if error.is_timeout() => ("timed out", true),
        // Rejected certificates and TLS handshakes fail the same way on every attempt.
        ErrorKind::Io
            if matches!(
                io_kind(error),
                Some(io::ErrorKind::InvalidData | io::ErrorKind::PermissionDenied)
            ) =>
        {
            ("TLS or protocol failure", false)
        }
        ErrorKind::Io => ("connection failed", true),
        ErrorKind::Server(ServerErrorKind::BusyLoading) => ("the server is loading its data", true),
        ErrorKind::Server(
            ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        )
        | ErrorKind::ClusterConnectionNotFound => ("the cluster is reconfiguring", true),
        // Still missing after the automatic load: a failover or flush between load and call.
        ErrorKind::Server(ServerErrorKind::NoScript) => ("script cache was flushed", true),
        _ if code == "BUSY" => ("the server is busy running another script", true),
        _ if code == "MISCONF" => ("the server cannot persist writes", true),
        ErrorKind::InvalidClientConfig => ("invalid configuration", false),
        ErrorKind::Server(ServerErrorKind::ResponseError) => ("the server refused the call", false),
        _ => ("the call failed", false),
    }
}

/// The kind of the I/O error inside a Redis error. redis-rs keeps it behind an `Arc`; should
/// that change, this finds nothing and the error counts as a connection failure.
fn io_kind(error: &RedisError) -> Option<io::ErrorKind> {
    let source = std::error::Error::source(error)?;
    let shared = source.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()?;
    let inner: &(dyn std::error::Error + 'static) = &**shared;
    inner.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// A failure of the Redis store: the server's (password-redacted) address and the problem, with
/// the Redis error as the source when there is one.
#[derive(Debug)]
struct Failure {
    address: Arc<str>,
    problem: String,
    source: Option<RedisError>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis at {}: {}", self.address, self.problem)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

/// Maps a Redis error of `operation` to a store error, with whether repeating can help.
pub(super) fn redis_error(
    operation: &'static str,
    address: &Arc<str>,
    error: RedisError,
) -> CheckpointError {
    let (problem, retryable) = classify(&error);
    CheckpointError::Store {
        operation,
        source: Box::new(Failure {
            address: address.clone(),
            problem: problem.to_owned(),
            source: Some(error),
        }),
        retryable,
    }
}

/// `operation` did not finish within `timeout` (retryable).
pub(super) fn no_answer(
    operation: &'static str,
    address: &Arc<str>,
    timeout: Duration,
) -> CheckpointError {
    CheckpointError::Store {
        operation,
        source: Box::new(Failure {
            address: address.clone(),
            problem: format!("no answer within {timeout:?}"),
            source: None,
        }),
        retryable: true,
    }
}

/// A configuration problem found before connecting (not retryable).
pub(super) fn configuration_error(
    address: &str,
    problem: impl fmt::Display,
    source: Option<RedisError>,
) -> CheckpointError {
    CheckpointError::Store {
        operation: "connect",
        source: Box::new(Failure {
            address: address.into(),
            problem: problem.to_string(),
            source,
        }),
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_retryable_and_credentials_are_not() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), ("connection failed", true));
        let timeout = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(classify(&timeout), ("timed out", true));
        let certificate = RedisError::from(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ));
        assert_eq!(classify(&certificate), ("TLS or protocol failure", false));
        let auth = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        assert!(!classify(&auth).1);
        let noauth = redis::make_extension_error("NOAUTH".into(), Some("required".into()));
        assert_eq!(classify(&noauth), ("authentication refused", false));
        let busy = redis::make_extension_error("BUSY".into(), None);
        assert!(classify(&busy).1);
        let config = RedisError::from((ErrorKind::InvalidClientConfig, "Redis URL did not parse"));
        assert!(!classify(&config).1);
    }

    #[test]
    fn failures_name_the_server_and_keep_the_cause() {
        let error = configuration_error(
            "redis://:***@db:6379/0",
            "the URL did not parse",
            Some(RedisError::from((ErrorKind::InvalidClientConfig, "bad"))),
        );
        let CheckpointError::Store {
            source, retryable, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert!(!retryable);
        assert_eq!(
            source.to_string(),
            "redis at redis://:***@db:6379/0: the URL did not parse"
        );
        assert!(std::error::Error::source(&**source).is_some());
    }
}
