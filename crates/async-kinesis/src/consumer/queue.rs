//! The channel from shard readers to the user, bounded by items and by bytes.
//!
//! Readers reserve room before they send a batch; the consumer gives the room back when it takes
//! the batch off the channel. A slow user therefore stops the readers (they wait for room, and do
//! not fetch more), and nothing read is ever dropped.

use tokio::sync::{Semaphore, mpsc};

use super::error::ConsumeError;
use super::record::Record;

/// Items of one shard, read by one GetRecords call, in order.
#[derive(Debug)]
pub(crate) struct ShardBatch<T> {
    pub(crate) items: Vec<Result<Record<T>, ConsumeError>>,
    item_permits: u32,
    byte_permits: u32,
}

/// Room in the queue.
#[derive(Debug)]
pub(crate) struct QueueBudget {
    items: Semaphore,
    bytes: Semaphore,
    max_items: u32,
    max_bytes: u32,
}

/// A reservation for one batch. Dropping it unused gives the room back.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a QueueBudget,
    items: u32,
    bytes: u32,
}

impl Reservation<'_> {
    /// Turns the reservation into a delivery; the room is given back when the consumer takes it.
    pub(crate) fn deliver<T>(
        mut self,
        items: Vec<Result<Record<T>, ConsumeError>>,
    ) -> ShardBatch<T> {
        let delivery = ShardBatch {
            items,
            item_permits: self.items,
            byte_permits: self.bytes,
        };
        self.items = 0;
        self.bytes = 0;
        delivery
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.items, self.bytes);
    }
}

impl QueueBudget {
    pub(crate) fn new(max_items: usize, max_bytes: usize) -> Self {
        let max_items = u32::try_from(max_items)
            .unwrap_or(u32::MAX)
            .min(MAX_PERMITS);
        let max_bytes = u32::try_from(max_bytes)
            .unwrap_or(u32::MAX)
            .min(MAX_PERMITS);
        Self {
            items: Semaphore::new(max_items as usize),
            bytes: Semaphore::new(max_bytes as usize),
            max_items,
            max_bytes,
        }
    }

    /// Waits for room for `items` items of `bytes` bytes. A batch larger than the whole queue
    /// waits for the queue to be empty and then takes all of it.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until the future completes.
    pub(crate) async fn reserve(&self, items: usize, bytes: usize) -> Reservation<'_> {
        let items = u32::try_from(items).unwrap_or(u32::MAX).min(self.max_items);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.max_bytes);
        // The semaphores are never closed, so acquiring only fails if they were; then there is
        // nothing to wait for and the batch goes through unbounded.
        let item_permit = self.items.acquire_many(items).await;
        let mut reservation = Reservation {
            budget: self,
            items: 0,
            bytes: 0,
        };
        if let Ok(permit) = item_permit {
            permit.forget();
            reservation.items = items;
        }
        if let Ok(permit) = self.bytes.acquire_many(bytes).await {
            permit.forget();
            reservation.bytes = bytes;
        }
        reservation
    }

    /// Gives the room of a taken delivery back.
    pub(crate) fn release<T>(&self, delivery: &ShardBatch<T>) {
        self.give_back(delivery.item_permits, delivery.byte_permits);
    }

    fn give_back(&self, items: u32, bytes: u32) {
        self.items.add_permits(items as usize);
        self.bytes.add_permits(bytes as usize);
    }

    /// Items waiting in the queue (as reserved).
    pub(crate) fn queued_items(&self) -> usize {
        (self.max_items as usize).saturating_sub(self.items.available_permits())
    }

    /// Bytes of the items waiting in the queue (as reserved).
    pub(crate) fn queued_bytes(&self) -> usize {
        (self.max_bytes as usize).saturating_sub(self.bytes.available_permits())
    }
}

/// Tokio semaphores hold at most this many permits.
const MAX_PERMITS: u32 = u32::MAX >> 4;

/// The sending side, shared by all readers and the supervisor.
pub(crate) type Sender<T> = mpsc::UnboundedSender<ShardBatch<T>>;
/// The receiving side, owned by the consumer.
pub(crate) type Receiver<T> = mpsc::UnboundedReceiver<ShardBatch<T>>;

/// An error item outside any batch (it takes no room: errors are rare and must not wait).
pub(crate) fn error_delivery<T>(error: ConsumeError) -> ShardBatch<T> {
    ShardBatch {
        items: vec![Err(error)],
        item_permits: 0,
        byte_permits: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_blocks_until_the_consumer_takes_a_batch() {
        let budget = QueueBudget::new(10, 1_000);
        let first = budget.reserve(8, 100).await.deliver::<()>(Vec::new());
        assert_eq!(budget.queued_items(), 8);
        // 3 more items do not fit.
        let blocked = tokio::time::timeout(Duration::from_secs(5), budget.reserve(3, 10)).await;
        assert!(blocked.is_err());
        budget.release(&first);
        let second = budget.reserve(3, 10).await.deliver::<()>(Vec::new());
        assert_eq!(budget.queued_items(), 3);
        budget.release(&second);
        assert_eq!(budget.queued_items(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_bound_the_queue_too_and_oversized_batches_take_everything() {
        let budget = QueueBudget::new(100, 1_000);
        let big = budget.reserve(1, 5_000).await.deliver::<()>(Vec::new());
        let blocked = tokio::time::timeout(Duration::from_secs(5), budget.reserve(1, 1)).await;
        assert!(blocked.is_err());
        budget.release(&big);
        drop(budget.reserve(1, 1).await);
        // A dropped reservation gave its room back.
        assert_eq!(budget.queued_items(), 0);
    }
}
