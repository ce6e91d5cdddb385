//! Room in the producer's queue: what an accepted item holds until it is resolved
//! ([`Permits`]), and room reserved ahead of the item ([`Permit`], from
//! [`Producer::reserve`]), so that waiting for room never holds an item.

use tokio::sync::OwnedSemaphorePermit;

use super::{Producer, PutError, Receipt};
use crate::processor::Processor;

/// Room an accepted item holds in the producer until it is resolved: one item slot and its
/// bytes of the byte budget.
pub(crate) struct Permits {
    pub(crate) _items: OwnedSemaphorePermit,
    pub(crate) bytes: OwnedSemaphorePermit,
}

impl Permits {
    /// Keeps `size` bytes of the byte room and gives the rest back at once.
    pub(crate) fn keep_bytes(mut self, size: usize) -> Self {
        // `split` fails only when asked for more than is held; then everything is kept (the
        // item's room is a little too large until it is resolved, nothing is lost).
        if let Some(kept) = self.bytes.split(size) {
            // Dropping the rest returns it to the semaphore.
            self.bytes = kept;
        }
        self
    }
}

/// Room for one item in a [`Producer`], reserved by [`Producer::reserve`]: one item slot and
/// the bytes of the largest item the producer accepts.
///
/// Putting through a permit does not wait: the room is already there. The put keeps the bytes
/// the item needs and gives the rest back at once. Dropping an unused permit gives all of its
/// room back.
///
/// ```no_run
/// use async_kinesis::producer::Producer;
///
/// # async fn demo(producer: Producer<async_kinesis::processor::JsonProcessor>)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// // Waiting for room holds no item: cancelling `reserve` loses nothing.
/// let permit = producer.reserve().await?;
/// let receipt = permit.put_with_key(serde_json::json!({"order": 1}), "customer-7")?;
/// receipt.await?;
/// # Ok(()) }
/// ```
#[must_use = "a permit holds room in the producer until it is used or dropped"]
pub struct Permit<'a, P: Processor> {
    producer: &'a Producer<P>,
    room: Permits,
}

impl<P: Processor> std::fmt::Debug for Permit<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("stream", self.producer.stream())
            .field("bytes", &self.room.bytes.num_permits())
            .finish()
    }
}

impl<'a, P: Processor> Permit<'a, P> {
    pub(crate) fn new(producer: &'a Producer<P>, room: Permits) -> Self {
        Self { producer, room }
    }

    /// Puts an item under a partition key the producer chooses, as [`Producer::put`] does,
    /// without waiting.
    ///
    /// # Errors
    /// As for [`Producer::put`]: the item comes back in the [`PutError`] when it cannot be
    /// serialized, is too large, or the producer was closed after the permit was reserved.
    /// The permit's room is given back.
    pub fn put(self, item: P::Item) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(item, None, None)
    }

    /// Puts an item under `partition_key`, as [`Producer::put_with_key`] does, without
    /// waiting.
    ///
    /// # Errors
    /// As for [`Permit::put`], and for an invalid key.
    pub fn put_with_key(
        self,
        item: P::Item,
        partition_key: impl Into<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(item, Some(partition_key.into()), None)
    }

    /// Puts an item under `partition_key`, routed by `explicit_hash_key`, as
    /// [`Producer::put_with_hash_key`] does, without waiting.
    ///
    /// # Errors
    /// As for [`Permit::put_with_key`], and for an invalid explicit hash key.
    pub fn put_with_hash_key(
        self,
        item: P::Item,
        partition_key: impl Into<String>,
        explicit_hash_key: impl Into<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        self.put_inner(
            item,
            Some(partition_key.into()),
            Some(explicit_hash_key.into()),
        )
    }

    fn put_inner(
        self,
        item: P::Item,
        partition_key: Option<String>,
        explicit_hash_key: Option<String>,
    ) -> Result<Receipt<P::Item>, PutError<P::Item>> {
        // On an error the permit is dropped here, and its room with it.
        let prepared = self
            .producer
            .prepare(item, partition_key, explicit_hash_key)?;
        // `prepare` refuses items over the maximum record size, which the permit holds.
        let room = self.room.keep_bytes(prepared.size);
        self.producer.send(prepared, room)
    }
}

/// Why [`Producer::try_reserve`] returned no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryReserveError {
    /// The producer has no room now: its queue holds `max_queue_size` items or
    /// `max_queue_bytes` bytes (counting held permits as maximum-size items).
    #[error("the producer's queue is full")]
    Full,
    /// The producer is closed.
    #[error("the producer is closed")]
    Closed,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    #[test]
    fn keeping_bytes_gives_the_rest_back() {
        let items = Arc::new(Semaphore::new(1));
        let bytes = Arc::new(Semaphore::new(100));
        let room = Permits {
            _items: items.clone().try_acquire_owned().expect("a slot"),
            bytes: bytes.clone().try_acquire_many_owned(60).expect("bytes"),
        };
        let room = room.keep_bytes(25);
        assert_eq!(room.bytes.num_permits(), 25);
        assert_eq!(bytes.available_permits(), 75, "35 given back at once");
        drop(room);
        assert_eq!(
            (items.available_permits(), bytes.available_permits()),
            (1, 100)
        );
    }

    #[test]
    fn keeping_all_or_more_bytes_than_held_keeps_everything() {
        let items = Arc::new(Semaphore::new(1));
        let bytes = Arc::new(Semaphore::new(100));
        let room = |n| Permits {
            _items: items.clone().try_acquire_owned().expect("a slot"),
            bytes: bytes.clone().try_acquire_many_owned(n).expect("bytes"),
        };
        let all = room(60).keep_bytes(60);
        assert_eq!(
            (all.bytes.num_permits(), bytes.available_permits()),
            (60, 40)
        );
        drop(all);
        let more = room(60).keep_bytes(61);
        assert_eq!(
            (more.bytes.num_permits(), bytes.available_permits()),
            (60, 40)
        );
    }
}
