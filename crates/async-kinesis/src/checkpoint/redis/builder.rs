//! Configuring and connecting a [`RedisStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::RedisStore;
use super::connection::{Connection, Link, configuration_error, no_answer, redis_error};
use crate::checkpoint::{CheckpointError, LeaseTiming};

/// Each attempt to open a connection gives up after this long (default).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Each command gives up after this long without an answer (default).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Configures a [`RedisStore`]; made by [`RedisStore::builder`].
///
/// Where the server is, by precedence: [`client`](Self::client) or
/// [`cluster_client`](Self::cluster_client), else [`url`](Self::url), else the environment
/// variables of the Python library:
///
/// | variable | default |
/// | --- | --- |
/// | `REDIS_HOST` | `localhost` |
/// | `REDIS_PORT` | `6379` |
/// | `REDIS_PASSWORD` | none |
/// | `REDIS_DB` | `0` (ignored for a cluster) |
#[must_use = "a builder does nothing until connect() is awaited"]
pub struct RedisStoreBuilder {
    app: String,
    target: Target,
    is_cluster: bool,
    session_timeout: Duration,
    heartbeat_frequency: Duration,
    connection_timeout: Duration,
    response_timeout: Duration,
}

enum Target {
    Environment,
    Url(String),
    Client(Box<redis::Client>),
    ClusterClient(Box<ClusterClient>),
}

impl RedisStoreBuilder {
    pub(super) fn new(app: String) -> Self {
        let timing = LeaseTiming::default();
        Self {
            app,
            target: Target::Environment,
            is_cluster: false,
            session_timeout: timing.session_timeout(),
            heartbeat_frequency: timing.heartbeat_frequency(),
            connection_timeout: CONNECTION_TIMEOUT,
            response_timeout: RESPONSE_TIMEOUT,
        }
    }

    /// The server: `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS
    /// (verified against the web PKI roots; add `#insecure` to skip hostname checks). For a
    /// cluster, any one node.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Target::Url(url.into());
        self
    }

    /// Uses this client (its address, credentials, TLS and protocol settings) instead of a URL.
    /// With [`is_cluster`](Self::is_cluster), its address is the seed node of the cluster.
    pub fn client(mut self, client: redis::Client) -> Self {
        self.target = Target::Client(Box::new(client));
        self
    }

    /// Uses this cluster client (several seed nodes, its own TLS and retry settings); implies
    /// [`is_cluster`](Self::is_cluster). Its own timeouts apply to its connections.
    pub fn cluster_client(mut self, client: ClusterClient) -> Self {
        self.target = Target::ClusterClient(Box::new(client));
        self.is_cluster = true;
        self
    }

    /// Whether the server is a Redis Cluster (default `false`). All keys of one application and
    /// stream share a hash tag, so every script runs on one node.
    pub fn is_cluster(mut self, is_cluster: bool) -> Self {
        self.is_cluster = is_cluster;
        self
    }

    /// How long a lease and a worker's registration live without renewal (default 60 s).
    pub fn session_timeout(mut self, session_timeout: Duration) -> Self {
        self.session_timeout = session_timeout;
        self
    }

    /// How often workers renew leases and registrations (default 15 s); at most half the
    /// session timeout.
    pub fn heartbeat_frequency(mut self, heartbeat_frequency: Duration) -> Self {
        self.heartbeat_frequency = heartbeat_frequency;
        self
    }

    /// Both lease durations at once.
    pub fn timing(mut self, timing: LeaseTiming) -> Self {
        self.session_timeout = timing.session_timeout();
        self.heartbeat_frequency = timing.heartbeat_frequency();
        self
    }

    /// How long one attempt to open a connection may take (default 2 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long one command may wait for its answer (default 2 s).
    ///
    /// A store call is bounded by `connection_timeout + 3 × response_timeout` in all (a
    /// reconnect, and a script reloaded after a server restart and run again), so a dead server
    /// fails calls with a retryable error instead of hanging them.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects and checks the server answers (PING), so an unreachable server, refused
    /// credentials or a malformed URL fail here.
    ///
    /// # Errors
    /// [`CheckpointError::Store`] with operation `"connect"`, naming the password-redacted
    /// address: retryable when the server could not be reached or did not answer, not retryable
    /// for invalid settings or refused credentials.
    pub async fn connect(self) -> Result<RedisStore, CheckpointError> {
        let timing = LeaseTiming::new(self.session_timeout, self.heartbeat_frequency).map_err(
            |problem| CheckpointError::Store {
                operation: "connect",
                source: Box::new(crate::InvalidConfig::new(
                    problem.option(),
                    problem.to_string(),
                )),
                retryable: false,
            },
        )?;
        let call_timeout = self.connection_timeout + self.response_timeout * 3;
        let (link, cluster) = match self.resolve()? {
            Resolved::Node(info) => {
                let address = redact_info(&info);
                let client = redis::Client::open(*info).map_err(|error| {
                    configuration_error(&address, "invalid settings", Some(error))
                })?;
                // Every call reconnects on its own; the consumer retries on its own schedule,
                // so one attempt per call keeps a call's time bounded.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connection_timeout))
                    .set_response_timeout(Some(self.response_timeout))
                    .set_number_of_retries(0);
                let manager =
                    ConnectionManager::new_lazy_with_config(client, config).map_err(|error| {
                        configuration_error(&address, "invalid settings", Some(error))
                    })?;
                let link = Link {
                    connection: Connection::Node(manager),
                    address: address.into(),
                    call_timeout,
                };
                (link, false)
            }
            Resolved::Cluster(address, client) => {
                let address: Arc<str> = address.into();
                let connecting = tokio::time::timeout(call_timeout, client.get_async_connection());
                let connection = match connecting.await {
                    Ok(Ok(connection)) => connection,
                    Ok(Err(error)) => return Err(redis_error("connect", &address, error)),
                    Err(_) => return Err(no_answer("connect", &address, call_timeout)),
                };
                let link = Link {
                    connection: Connection::Cluster(connection),
                    address,
                    call_timeout,
                };
                (link, true)
            }
        };
        let pong: String = link
            .call("connect", true, |mut connection| async move {
                redis::cmd("PING").query_async(&mut connection).await
            })
            .await?;
        if pong != "PONG" {
            return Err(link.failure("connect", format!("PING answered {pong:?}")));
        }
        Ok(RedisStore::new(self.app, link, cluster, timing))
    }

    fn resolve(&self) -> Result<Resolved, CheckpointError> {
        let info = match &self.target {
            Target::ClusterClient(client) => {
                return Ok(Resolved::Cluster(
                    "the nodes of the given cluster client".into(),
                    client.clone(),
                ));
            }
            Target::Client(client) => client.get_connection_info().clone(),
            Target::Url(url) => url.as_str().into_connection_info().map_err(|error| {
                configuration_error(&redact_url(url), "the URL did not parse", Some(error))
            })?,
            Target::Environment => info_from_env(|name| std::env::var(name).ok(), self.is_cluster)?,
        };
        if !self.is_cluster {
            return Ok(Resolved::Node(Box::new(info)));
        }
        let address = redact_info(&info);
        let client = ClusterClientBuilder::new([info])
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.response_timeout)
            // Slot moves and failovers are retried inside the cluster client, within the call
            // timeout.
            .retries(3)
            .build()
            .map_err(|error| configuration_error(&address, "invalid settings", Some(error)))?;
        Ok(Resolved::Cluster(address, Box::new(client)))
    }
}

enum Resolved {
    Node(Box<ConnectionInfo>),
    /// Password-redacted seed address, client.
    Cluster(String, Box<ClusterClient>),
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Environment => "REDIS_HOST/REDIS_PORT/REDIS_DB".to_owned(),
            Target::Url(url) => redact_url(url),
            Target::Client(client) => redact_info(client.get_connection_info()),
            Target::ClusterClient(_) => "a cluster client".to_owned(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("app", &self.app)
            .field("target", &target)
            .field("is_cluster", &self.is_cluster)
            .field("session_timeout", &self.session_timeout)
            .field("heartbeat_frequency", &self.heartbeat_frequency)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// The server named by `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD` and `REDIS_DB`, as `env`
/// reads them.
fn info_from_env(
    env: impl Fn(&str) -> Option<String>,
    is_cluster: bool,
) -> Result<ConnectionInfo, CheckpointError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let host = var("REDIS_HOST").unwrap_or_else(|| "localhost".to_owned());
    let port = match var("REDIS_PORT") {
        None => 6379,
        Some(port) => port.parse::<u16>().map_err(|_| {
            configuration_error(&host, format!("REDIS_PORT={port:?} is not a port"), None)
        })?,
    };
    let mut settings = RedisConnectionInfo::default();
    if let Some(password) = var("REDIS_PASSWORD") {
        settings = settings.set_password(password);
    }
    // A cluster has only database 0, as in the Python library.
    if !is_cluster && let Some(db) = var("REDIS_DB") {
        let db = db.parse::<i64>().map_err(|_| {
            configuration_error(&host, format!("REDIS_DB={db:?} is not a number"), None)
        })?;
        settings = settings.set_db(db);
    }
    let info = ConnectionAddr::Tcp(host.clone(), port)
        .into_connection_info()
        .map_err(|error| configuration_error(&host, "invalid settings", Some(error)))?;
    Ok(info.set_redis_settings(settings))
}

/// `redis[s]://[user][:***@]host:port/db`: the address without the password.
pub(super) fn redact_info(info: &ConnectionInfo) -> String {
    let settings = info.redis_settings();
    let credentials = match (settings.username(), settings.password()) {
        (None, None) => String::new(),
        (Some(user), None) => format!("{user}@"),
        (user, Some(_)) => format!("{}:***@", user.unwrap_or_default()),
    };
    match info.addr() {
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{credentials}{host}:{port}/{}", settings.db())
        }
        ConnectionAddr::Unix(path) => format!("unix://{credentials}{}", path.display()),
        addr => format!("redis://{credentials}{addr}/{}", settings.db()),
    }
}

/// A URL as given, with any password replaced by `***` (for URLs that did not parse).
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last '@' ends the credentials even when an unencoded password holds '/' or '@'.
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_never_show_passwords() {
        let info = "redis://:s3cret@db.internal:6380/2"
            .into_connection_info()
            .expect("url");
        assert_eq!(redact_info(&info), "redis://:***@db.internal:6380/2");
        let info = "rediss://app:s3cret@cache:6379"
            .into_connection_info()
            .expect("url");
        assert_eq!(redact_info(&info), "rediss://app:***@cache:6379/0");
        let info = "redis://127.0.0.1".into_connection_info().expect("url");
        assert_eq!(redact_info(&info), "redis://127.0.0.1:6379/0");
        assert_eq!(
            redact_url("redis://user:p@ss:w0rd@host:1/0"),
            "redis://user:***@host:1/0"
        );
        assert_eq!(redact_url("redis://:pw@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://:pa/ss@host"), "redis://:***@host");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("redis://host:1/0"), "redis://host:1/0");
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_environment_names_the_server_as_in_the_python_library() {
        let info = info_from_env(env(&[]), false).expect("defaults");
        assert_eq!(redact_info(&info), "redis://localhost:6379/0");
        let info = info_from_env(
            env(&[
                ("REDIS_HOST", "cache"),
                ("REDIS_PORT", "6380"),
                ("REDIS_PASSWORD", "s3cret"),
                ("REDIS_DB", "3"),
            ]),
            false,
        )
        .expect("all set");
        assert_eq!(info.redis_settings().password(), Some("s3cret"));
        assert_eq!(redact_info(&info), "redis://:***@cache:6380/3");
        let cluster = info_from_env(env(&[("REDIS_DB", "3")]), true).expect("cluster");
        assert_eq!(cluster.redis_settings().db(), 0, "a cluster has only db 0");
        let bad_port = info_from_env(env(&[("REDIS_PORT", "http")]), false);
        let error = bad_port.expect_err("not a port");
        assert!(!error.is_retryable());
        let text = std::error::Error::source(&error)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(text.contains("REDIS_PORT=\"http\""), "{text}");
        assert!(info_from_env(env(&[("REDIS_DB", "x")]), false).is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let builder = RedisStore::builder("app").url("redis://:s3cret@host:1/0");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redis://:***@host:1/0"), "{shown}");
    }
}
