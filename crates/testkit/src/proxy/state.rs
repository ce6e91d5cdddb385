//! The state shared by every connection of one proxy.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hyper::Response;

use super::config::ProxyConfig;
use super::counters::Counters;
use super::faults::FaultSet;
use super::forward::{ProxyBody, Upstream, aws_error};
use super::limits::Limiter;
use super::routing::{Iterators, ShardMaps};

/// Locks a mutex; a panic elsewhere while holding it leaves plain counters that are still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct State {
    pub(crate) config: ProxyConfig,
    pub(crate) upstream: Upstream,
    pub(crate) shard_maps: ShardMaps,
    pub(crate) iterators: Iterators,
    pub(crate) limiter: Mutex<Limiter>,
    pub(crate) faults: Mutex<FaultSet>,
    pub(crate) counters: Mutex<Counters>,
    pub(crate) failures: Mutex<Vec<String>>,
}

impl State {
    pub(crate) fn new(
        config: ProxyConfig,
        upstream: Upstream,
        shard_maps: ShardMaps,
        epoch: Instant,
    ) -> Self {
        Self {
            limiter: Mutex::new(Limiter::new(config.limits)),
            config,
            upstream,
            shard_maps,
            iterators: Iterators::default(),
            faults: Mutex::new(FaultSet::default()),
            counters: Mutex::new(Counters::new(epoch)),
            failures: Mutex::new(Vec::new()),
        }
    }

    /// Records a failure of the proxy itself.
    pub(crate) fn record_failure(&self, message: String) {
        lock(&self.failures).push(message);
    }

    /// Records a failure of the proxy itself and answers the call with HTTP 502, so the client sees an
    /// error instead of a silently wrong answer.
    pub(crate) fn fail(&self, message: String) -> Response<ProxyBody> {
        let response = aws_error(502, "KinesisLimitsProxyFailure", &message);
        self.record_failure(message);
        response
    }
}
