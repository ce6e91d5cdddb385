//! A loopback HTTP proxy that makes a local Kinesis emulator behave like the service at its limits.
//!
//! No emulator throttles, fails single records of a PutRecords, or expires iterators on demand, yet
//! those are the paths where Kinesis clients lose data. [`LimitsProxy`] sits between a client and
//! kinesis-mock or kinesalite, forwards the Kinesis JSON protocol (awsJson1.1 over HTTP/1.1, and
//! SubscribeToShard's event stream, streamed through untouched unless a stream fault shapes it), and
//! adds:
//!
//! - **Per-shard limits modelled on AWS** ([`Limits`], default = the AWS numbers): writes 1,000
//!   records/s and 1 MiB/s (data + partition key), reads 5 GetRecords calls/s and 2 MiB/s. Records are
//!   routed like Kinesis does, by md5(partition key) or `ExplicitHashKey`, over the stream's real open
//!   shards (read from the emulator with ListShards, re-read after resharding and every
//!   [`ProxyConfig::shard_map_max_age`]). A throttled record of a PutRecords gets a
//!   `ProvisionedThroughputExceededException` entry in a successful response (`FailedRecordCount`
//!   counts it, entries stay in request order, and only the accepted records reach the emulator); a
//!   throttled PutRecord or GetRecords fails as a whole with HTTP 400 and the AWS JSON error shape.
//!   GetRecords is charged to the shard its iterator was issued for (learned from GetShardIterator
//!   and `NextShardIterator`).
//! - **Scripted faults** ([`Fault`], [`Schedule`]): fail exactly N% / every k-th / the first n records
//!   with any error code, expire iterators, answer 5xx, reset connections, or add latency, for chosen
//!   operations and streams, each with [`FaultStats`]; and inside a SubscribeToShard event stream,
//!   cut, stall or end it after n messages ([`Fault::cut_stream_after`] and its siblings).
//! - **Counters** ([`CountersSnapshot`]): calls per operation; per shard the accepted, throttled and
//!   fault-failed records, bytes written and read, GetRecords calls — in total and per second.
//!
//! Requests the proxy cannot interpret (not JSON, missing fields, a stream the emulator does not know,
//! an invalid explicit hash key) are forwarded unchanged and the emulator answers them. Failures of the
//! proxy itself (emulator unreachable, an answer it cannot read) reach the client as HTTP 502
//! `KinesisLimitsProxyFailure` and are kept in [`LimitsProxy::failures`]; [`LimitsProxy::shutdown`]
//! returns them as an error, so a test that ends with it cannot pass over a broken proxy.
//!
//! The proxy ignores request signatures (the emulators do too) and may rewrite bodies.
//!
//! # Example
//!
//! ```no_run
//! use testkit::proxy::{Fault, Limits, LimitsProxy, ProxyConfig, Schedule};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ProxyConfig { limits: Limits::default().scaled(0.1), ..ProxyConfig::default() };
//! let proxy = LimitsProxy::start("http://127.0.0.1:4568", config).await?;
//! // Every 10th record fails with InternalFailure, on top of the (scaled) AWS limits.
//! let fault = proxy.add_fault(Fault::fail_records("InternalFailure").schedule(Schedule::Every(10)));
//!
//! let kinesis = proxy.client(); // an aws_sdk_kinesis::Client pointed at the proxy, retries off
//! // ... create a stream and run the code under test against `kinesis` ...
//!
//! let counters = proxy.counters();
//! println!("PutRecords calls: {}", counters.calls("PutRecords"));
//! println!("records failed by the fault: {}", proxy.fault_stats(fault).fired);
//! proxy.shutdown().await?; // Err if the proxy itself failed at any point
//! # let _ = kinesis;
//! # Ok(())
//! # }
//! ```
//!
//! For benchmarks, the `kinesis-limits-proxy` binary runs the same proxy and prints its address.

mod config;
mod counters;
mod event_stream;
mod faults;
mod forward;
mod limits;
mod read;
mod routing;
mod server;
mod state;
mod wire;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Limits, MIB, ProxyConfig};
pub use counters::{CountersSnapshot, SecondCounters, ShardCounters, ShardKey};
pub use faults::{Fault, FaultAction, FaultId, FaultStats, Schedule};

use state::{State, lock};

/// The proxy could not start, or failed while it ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream URL is not a plain `http://host:port` URL.
    #[error("invalid upstream: {0}")]
    InvalidUpstream(String),
    /// Binding 127.0.0.1 failed.
    #[error("binding the proxy's listening socket failed")]
    Bind(#[source] std::io::Error),
    /// The proxy failed while it ran (each failure was also answered to its client as HTTP 502).
    #[error("the proxy failed {} time(s); first: {}", .0.len(), .0.first().map_or("", String::as_str))]
    Failed(Vec<String>),
}

/// A running proxy bound to `127.0.0.1` on an ephemeral port. Dropping it stops it.
pub struct LimitsProxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LimitsProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitsProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// An SDK client for `endpoint_url` with static test credentials, region us-east-1 and retries
/// disabled (so every throttle and fault reaches the caller exactly once).
pub fn sdk_client(endpoint_url: &str) -> aws_sdk_kinesis::Client {
    sdk_client_with_retries(endpoint_url, RetryConfig::disabled())
}

fn sdk_client_with_retries(endpoint_url: &str, retry: RetryConfig) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint_url)
        .retry_config(retry)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

impl LimitsProxy {
    /// Starts a proxy in front of the emulator at `upstream` (e.g. `http://127.0.0.1:4568`).
    ///
    /// # Errors
    ///
    /// [`ProxyError::InvalidUpstream`] for a URL that is not plain `http://host:port`, and
    /// [`ProxyError::Bind`] when no loopback port can be bound.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped, no proxy is left running.
    pub async fn start(upstream: &str, config: ProxyConfig) -> Result<Self, ProxyError> {
        let forwarder = forward::Upstream::new(upstream).map_err(ProxyError::InvalidUpstream)?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ProxyError::Bind)?;
        let addr = listener.local_addr().map_err(ProxyError::Bind)?;
        // The proxy's own ListShards calls go straight to the emulator, with the SDK's retries.
        let lister = sdk_client_with_retries(upstream, RetryConfig::standard());
        let shard_maps = routing::ShardMaps::new(lister, config.shard_map_max_age);
        let state = Arc::new(State::new(config, forwarder, shard_maps, Instant::now()));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::serve(listener, state.clone(), shutdown.clone()));
        Ok(Self {
            addr,
            state,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for an SDK client's `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SDK client pointed at the proxy (see [`sdk_client`]).
    pub fn client(&self) -> aws_sdk_kinesis::Client {
        sdk_client(&self.endpoint_url())
    }

    /// Adds a fault; faults are consulted in the order they were added.
    pub fn add_fault(&self, fault: Fault) -> FaultId {
        lock(&self.state.faults).add(fault)
    }

    /// How often a fault matched and fired (also after it was removed).
    pub fn fault_stats(&self, id: FaultId) -> FaultStats {
        lock(&self.state.faults).stats(id).unwrap_or_default()
    }

    /// Removes a fault, returning its final stats.
    pub fn remove_fault(&self, id: FaultId) -> Option<FaultStats> {
        lock(&self.state.faults).remove(id)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// A copy of the counters.
    pub fn counters(&self) -> CountersSnapshot {
        lock(&self.state.counters).snapshot()
    }

    /// Zeroes the counters (per-second slots keep counting from the proxy's start).
    pub fn reset_counters(&self) {
        lock(&self.state.counters).reset();
    }

    /// The proxy's own failures so far (each was answered to its client as HTTP 502).
    pub fn failures(&self) -> Vec<String> {
        lock(&self.state.failures).clone()
    }

    /// Stops the proxy.
    ///
    /// # Errors
    ///
    /// [`ProxyError::Failed`] with every failure of the proxy itself, if there were any.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the proxy is told to stop before the first await.
    pub async fn shutdown(mut self) -> Result<(), ProxyError> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            // The accept loop only ends on cancellation; a panic in it is a proxy failure.
            if let Err(err) = task.await {
                self.state
                    .record_failure(format!("the accept loop panicked: {err}"));
            }
        }
        let failures = self.failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ProxyError::Failed(failures))
        }
    }
}

impl Drop for LimitsProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
