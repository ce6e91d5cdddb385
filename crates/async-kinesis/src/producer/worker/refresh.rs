//! The worker's shard map kept current: listings in the background, retried when they fail.

use super::*;

impl<P: Processor> Worker<P> {
    pub(super) fn start_refresh(&mut self) {
        let client = self.client.clone();
        let listing = self.config.setup.listing;
        self.refreshing = Some(Box::pin(
            async move { client.list_shards_with(listing).await },
        ));
    }

    pub(super) fn on_shards(&mut self, shards: Result<Vec<Shard>, Error>) {
        let now = Instant::now();
        match shards.map(|shards| ShardMap::from_open_shards(&shards)) {
            Ok(Ok(map)) => {
                if self.stream_gone {
                    tracing::info!(stream = %self.client.stream(), "the stream exists again; sending to it");
                    self.stream_gone = false;
                }
                if map.ranges() != self.shard_map.ranges() {
                    tracing::info!(stream = %self.client.stream(), shards = map.len(), "shard map changed");
                    self.keyless.restart();
                }
                self.shard_map = map;
                // Lanes of shards that are gone and have nothing left are dropped.
                let open: Vec<&str> = self
                    .shard_map
                    .ranges()
                    .iter()
                    .map(|r| r.shard_id())
                    .collect();
                let unkeyed_shard = self.unkeyed_shard.clone();
                self.lanes.retain(|shard, lane| {
                    open.contains(&&**shard) || !lane.is_idle() || *shard == unkeyed_shard
                });
                let mut index = 0;
                while index < self.lane_order.len() {
                    if self.lanes.contains_key(&self.lane_order[index]) {
                        index += 1;
                    } else {
                        self.lane_order.remove(index);
                        self.rotation.removed(index);
                    }
                }
                self.refresh_at = now + self.config.setup.shard_refresh_interval;
                // Keyless items go to an open shard of the new map from now on.
                self.rotate_keyless(now);
            }
            Ok(Err(err)) => {
                tracing::warn!(stream = %self.client.stream(), error = %err, "inconsistent shard map; keeping the old one");
                self.refresh_at = now + REFRESH_RETRY;
            }
            Err(err) => {
                tracing::warn!(stream = %self.client.stream(), error = %err, "listing shards failed; keeping the old map");
                self.refresh_at = now + REFRESH_RETRY;
            }
        }
    }
}
