//! Which shard a request touches: shard maps read from the emulator with ListShards, and the shard each
//! iterator the proxy has seen belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_kinesis::stream::shard_map::ShardMap;
use async_kinesis::{Error, StreamClient};
use aws_smithy_types::error::display::DisplayErrorContext;

use super::counters::ShardKey;
use super::wire::StreamKey;

/// Iterators are forgotten after this long (AWS expires them after 5 minutes).
const ITERATOR_TTL: Duration = Duration::from_secs(6 * 60);

/// A shard map could not be read for a stream that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutingError(pub(crate) String);

struct CachedMap {
    map: Arc<ShardMap>,
    fetched: Instant,
}

/// Shard maps per stream, read lazily and re-read when stale or invalidated.
pub(crate) struct ShardMaps {
    client: aws_sdk_kinesis::Client,
    max_age: Duration,
    // A tokio mutex: a refresh holds it across ListShards so that concurrent requests wait for one read.
    maps: tokio::sync::Mutex<HashMap<StreamKey, CachedMap>>,
}

impl ShardMaps {
    pub(crate) fn new(client: aws_sdk_kinesis::Client, max_age: Duration) -> Self {
        Self {
            client,
            max_age,
            maps: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The stream's open shards, or `None` when the emulator does not know the stream (or it is still
    /// being created): the proxy then forwards requests unchanged and lets the emulator answer.
    pub(crate) async fn get(
        &self,
        stream: &StreamKey,
    ) -> Result<Option<Arc<ShardMap>>, RoutingError> {
        let mut maps = self.maps.lock().await;
        if let Some(cached) = maps.get(stream)
            && cached.fetched.elapsed() < self.max_age
        {
            return Ok(Some(cached.map.clone()));
        }
        match self.fetch(stream).await? {
            Some(map) => {
                let map = Arc::new(map);
                maps.insert(
                    stream.clone(),
                    CachedMap {
                        map: map.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(Some(map))
            }
            None => {
                maps.remove(stream);
                Ok(None)
            }
        }
    }

    /// Forgets every map of the stream named `name` (by name or ARN).
    pub(crate) async fn invalidate(&self, name: &str) {
        self.maps.lock().await.retain(|key, _| key.name() != name);
    }

    async fn fetch(&self, stream: &StreamKey) -> Result<Option<ShardMap>, RoutingError> {
        let id = match stream {
            StreamKey::Name(name) => name,
            StreamKey::Arn(arn) => arn,
        };
        // A name or ARN the library rejects cannot be routed; the emulator will answer it.
        let Ok(client) = StreamClient::new(self.client.clone(), id.as_str()) else {
            return Ok(None);
        };
        let shards = match client.list_shards().await {
            Ok(shards) => shards,
            Err(Error::StreamNotFound { .. }) => return Ok(None),
            Err(err) if err.code() == Some("ResourceInUseException") => return Ok(None),
            Err(err) => {
                return Err(RoutingError(format!(
                    "ListShards for stream {} failed: {}",
                    stream.name(),
                    DisplayErrorContext(&err)
                )));
            }
        };
        ShardMap::from_open_shards(&shards)
            .map(Some)
            .map_err(|e| RoutingError(format!("stream {}: {e}", stream.name())))
    }
}

/// A shard iterator the proxy has seen issued, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IteratorInfo {
    pub(crate) shard: ShardKey,
    pub(crate) issued: Instant,
}

/// Iterator → shard, learned from GetShardIterator and GetRecords responses.
#[derive(Debug, Default)]
pub(crate) struct Iterators {
    known: Mutex<HashMap<String, IteratorInfo>>,
}

impl Iterators {
    pub(crate) fn remember(&self, iterator: &str, shard: ShardKey, now: Instant) {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() > 10_000 {
            known.retain(|_, info| now.saturating_duration_since(info.issued) < ITERATOR_TTL);
        }
        known.insert(iterator.to_owned(), IteratorInfo { shard, issued: now });
    }

    pub(crate) fn lookup(&self, iterator: &str) -> Option<IteratorInfo> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(iterator)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_remember_their_shard_and_age() {
        let iterators = Iterators::default();
        let t0 = Instant::now();
        iterators.remember("it-1", ShardKey::new("s", "a"), t0);
        let info = iterators.lookup("it-1").expect("remembered");
        assert_eq!(info.shard, ShardKey::new("s", "a"));
        assert_eq!(info.issued, t0);
        assert_eq!(iterators.lookup("unknown"), None);
    }
}
