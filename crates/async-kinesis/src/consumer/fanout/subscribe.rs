//! Reading one shard over SubscribeToShard: the only code that calls it.
//!
//! One subscription at a time per shard, at most one SubscribeToShard per second. Reading goes
//! on after the last event's continuation sequence number, so an event without records still
//! moves the position (a LATEST start is never asked for twice once an event came). What ends a
//! subscription only renews it: its 5 minutes ending, a connection reset or 5xx (backoff), no
//! event for `fan_out_stall_timeout`, ResourceInUse (the previous subscription is still open:
//! wait, retry); a subscription that ends or stalls before its first event is renewed after a
//! growing pause. Records are decoded, acknowledged and checkpointed as when polling. While the
//! queue is full events are not read, so the service's sending waits for us (HTTP/2 flow
//! control) and nothing is dropped; while `max_unacked_records` wait for acknowledgement the
//! subscription is let go (holding it would hold its share of a connection that other shards'
//! subscriptions may share) and renewed once there is room.

use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::types::{StartingPosition, SubscribeToShardEventStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::FanOutShard;
use crate::consumer::config::AckPolicy;
use crate::consumer::shard_reader::{
    AtEnd, Origin, ReaderOutcome, ShardReader, Step, child_to_shard,
};
use crate::consumer::status::ReadMode;
use crate::error::{Error, ErrorClass};
use crate::processor::Processor;
use crate::retry::FailureRun;
use crate::stream::shard::Shard;

/// SubscribeToShard allows one call per second per shard and consumer.
const SUBSCRIBE_INTERVAL: Duration = Duration::from_secs(1);
const OP: &str = "SubscribeToShard";

/// How following one subscription ended.
enum Followed {
    /// The shard's end: the event named its children.
    Ended {
        children: Vec<Shard>,
    },
    /// Subscribe again (ended, stalled, a rewind, the shard closed, a long wait for room).
    Renew,
    /// Ended or stalled before its first event: renewed after a growing pause.
    Idle,
    /// The event stream failed.
    Failed(Error),
    Stop,
    Cancelled,
}

impl<P: Processor> ShardReader<P> {
    /// Reads until the shard ends, an error stops it, or it is cancelled.
    pub(in crate::consumer) async fn subscribe(
        mut self,
        mut fan_out: FanOutShard,
        on_subscribed: impl FnOnce() + Send,
    ) -> ReaderOutcome {
        let mut on_subscribed = Some(on_subscribed);
        let mut failures = FailureRun::default();
        let mut next_subscribe = Instant::now();
        self.ctx
            .status
            .shard(&self.shard_id, |s| s.read_mode = ReadMode::FanOut);
        loop {
            if *fan_out.closed.borrow() {
                return self.read_rest_by_polling(on_subscribed).await;
            }
            if !self.sleep_until(next_subscribe).await {
                return ReaderOutcome::Cancelled;
            }
            // No subscription is held while the shard has no room (see `follow`).
            if !self.wait_for_room().await {
                return ReaderOutcome::Cancelled;
            }
            self.rewound();
            next_subscribe = Instant::now() + SUBSCRIBE_INTERVAL;
            let origin = self.origin();
            let stall = self.ctx.config.fan_out_stall_timeout;
            // The SDK's `send` waits for the stream's first message, outside its attempt
            // timeout: a server silent after its headers is a stall too.
            let subscribed = tokio::select! {
                () = self.cancel.cancelled() => return ReaderOutcome::Cancelled,
                result = tokio::time::timeout(stall, self.open(&fan_out.consumer_arn, &origin)) => result,
            };
            let followed = match subscribed {
                Ok(Ok(mut events)) => {
                    let (followed, any_event) = self
                        .follow(&mut events, &mut fan_out.closed, &mut on_subscribed)
                        .await;
                    if any_event {
                        failures = FailureRun::default();
                    }
                    followed
                }
                Ok(Err(err)) => Followed::Failed(err),
                Err(_) => {
                    tracing::warn!(shard = %self.shard_id, after = ?stall, "no answer to SubscribeToShard; subscribing again");
                    self.ctx.labels.consumer_error(&self.shard_id, "stalled");
                    Followed::Idle
                }
            };
            self.ctx
                .status
                .shard(&self.shard_id, |s| s.has_iterator = false);
            match followed {
                Followed::Renew => {}
                Followed::Idle => {
                    // Renewing at once would repeat without end what brought nothing.
                    failures.fail(false);
                    let delay = self
                        .ctx
                        .config
                        .jittered_backoff(failures.in_a_row)
                        .max(SUBSCRIBE_INTERVAL);
                    next_subscribe = next_subscribe.max(Instant::now() + delay);
                }
                Followed::Failed(err) if err.class() == ErrorClass::NotFound => {
                    // The consumer was deregistered, or the shard is gone: polling finds out
                    // which, and reads on if the shard is there.
                    tracing::warn!(shard = %self.shard_id, error = %err, "fan-out subscription refused as not found; reading the shard by polling");
                    return self.read_rest_by_polling(on_subscribed).await;
                }
                Followed::Failed(err) => {
                    let waited = matches!(err.class(), ErrorClass::InUse | ErrorClass::Throttling);
                    failures.fail(!waited);
                    match self.subscribe_retry(err, failures) {
                        Some(delay) => next_subscribe = next_subscribe.max(Instant::now() + delay),
                        None => return self.stopped_or_cancelled(),
                    }
                }
                Followed::Ended { children } => match self.at_end().await {
                    AtEnd::Ended => return ReaderOutcome::Ended { children },
                    AtEnd::Cancelled => return ReaderOutcome::Cancelled,
                    // A record nacked before the end: read again by polling (the shard is closed).
                    AtEnd::ReadAgain => return self.read_rest_by_polling(on_subscribed).await,
                },
                Followed::Stop => return ReaderOutcome::Stopped,
                Followed::Cancelled => return ReaderOutcome::Cancelled,
            }
        }
    }

    /// A closed shard is read to its end by GetRecords, which always names the children
    /// (an emulator's subscription may never send the event that does).
    async fn read_rest_by_polling(
        self,
        mut on_iterator: Option<impl FnOnce() + Send>,
    ) -> ReaderOutcome {
        tracing::debug!(shard = %self.shard_id, "shard closed; reading the rest of it by GetRecords");
        self.ctx.status.shard(&self.shard_id, |s| {
            s.read_mode = ReadMode::Polling;
            s.has_iterator = false;
        });
        self.poll(move || {
            if let Some(ready) = on_iterator.take() {
                ready();
            }
        })
        .await
    }

    /// SubscribeToShard from `origin`. The SDK's retries are off for it: this reader owns them
    /// (the SDK's retry quota is one bucket per client, shared by every shard).
    async fn open(&self, consumer_arn: &str, origin: &Origin) -> Result<Events, Error> {
        let position = StartingPosition::builder()
            .r#type(origin.iterator_type())
            .set_sequence_number(origin.sequence().map(str::to_owned))
            .set_timestamp(origin.timestamp().map(Into::into))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("starting position: {e}")))?;
        let output = self
            .ctx
            .client
            .sdk_client()
            .subscribe_to_shard()
            .consumer_arn(consumer_arn)
            .shard_id(self.shard_id.as_ref())
            .starting_position(position)
            .customize()
            .config_override(
                aws_sdk_kinesis::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| self.ctx.sdk_error(OP, e))?;
        Ok(output.event_stream)
    }

    /// Under [`AckPolicy::Explicit`], waits until the shard has room for more records;
    /// `false` when cancelled.
    async fn wait_for_room(&self) -> bool {
        if self.ctx.config.ack_policy != AckPolicy::Explicit || self.room() > 0 {
            return true;
        }
        let max = self.ctx.config.max_unacked_records;
        self.ctx
            .status
            .shard(&self.shard_id, |s| s.waiting_for_acks = true);
        let waited = self.wait_for_acks(|t| t.outstanding() < max).await;
        self.ctx
            .status
            .shard(&self.shard_id, |s| s.waiting_for_acks = false);
        waited
    }

    /// Hands out the subscription's events until it ends; also says whether any event came.
    /// `ready` is called at the first event.
    async fn follow(
        &mut self,
        events: &mut Events,
        closed: &mut watch::Receiver<bool>,
        ready: &mut Option<impl FnOnce()>,
    ) -> (Followed, bool) {
        let stall = self.ctx.config.fan_out_stall_timeout;
        let mut any_event = false;
        let mut closed_known = false;
        loop {
            if self.ctx.config.ack_policy == AckPolicy::Explicit && self.room() == 0 {
                // Waiting with the subscription open would hold its share of the connection
                // (HTTP/2 flow control): other shards' subscriptions on it would stall too.
                // Let it go; the next one starts after the continuation once there is room.
                return (Followed::Renew, any_event);
            }
            if self.acks.rewind_asked() {
                return (Followed::Renew, any_event); // re-subscribed from the rewind
            }
            let next = tokio::select! {
                () = self.cancel.cancelled() => return (Followed::Cancelled, any_event),
                changed = closed.changed(), if !closed_known => {
                    match changed {
                        Ok(()) if *closed.borrow() => return (Followed::Renew, any_event),
                        Ok(()) => continue,
                        // Nobody left to say: go on without the signal.
                        Err(_) => { closed_known = true; continue }
                    }
                }
                next = tokio::time::timeout(stall, events.recv()) => next,
            };
            let event = match next {
                Err(_) => {
                    tracing::warn!(shard = %self.shard_id, after = ?stall, "no fan-out event; subscribing again");
                    self.ctx.labels.consumer_error(&self.shard_id, "stalled");
                    let renew = if any_event {
                        Followed::Renew
                    } else {
                        Followed::Idle
                    };
                    return (renew, any_event);
                }
                Ok(Ok(None)) if !any_event => return (Followed::Idle, any_event),
                Ok(Ok(None)) => return (Followed::Renew, any_event),
                Ok(Err(err)) => return (Followed::Failed(self.ctx.sdk_error(OP, err)), any_event),
                Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)))) => event,
                Ok(Ok(Some(other))) => {
                    tracing::debug!(shard = %self.shard_id, event = ?other, "unknown fan-out event ignored");
                    continue;
                }
            };
            if !any_event {
                self.ctx
                    .status
                    .shard(&self.shard_id, |s| s.has_iterator = true);
                if let Some(ready) = ready.take() {
                    ready();
                }
            }
            any_event = true;
            let millis_behind = event.millis_behind_latest;
            self.ctx.status.shard(&self.shard_id, |s| {
                s.success += 1;
                s.millis_behind_latest = Some(millis_behind);
            });
            let empty = event.records.is_empty();
            match self.deliver(event.records, Some(millis_behind)).await {
                Step::Continue => {}
                Step::Stop => return (Followed::Stop, any_event),
                Step::Cancelled => return (Followed::Cancelled, any_event),
            }
            if !event.continuation_sequence_number.is_empty() {
                self.last_read = Some(event.continuation_sequence_number.into());
            }
            let at_tip = empty && millis_behind == 0;
            self.ctx.status.shard(&self.shard_id, |s| s.at_tip = at_tip);
            if let Some(children) = event.child_shards.filter(|c| !c.is_empty()) {
                let children = children.iter().filter_map(child_to_shard).collect();
                return (Followed::Ended { children }, any_event);
            }
        }
    }

    /// The pause before subscribing again after `err`, or `None` when it is final (reported,
    /// the shard stopped). ResourceInUse (the previous subscription is still open, or it was
    /// asked for too soon) and throttling are always waited out.
    fn subscribe_retry(&mut self, err: Error, failures: FailureRun) -> Option<Duration> {
        let class = err.class();
        self.ctx
            .labels
            .consumer_error(&self.shard_id, &class.to_string());
        match class {
            ErrorClass::InUse | ErrorClass::Throttling => {
                if class == ErrorClass::Throttling {
                    self.ctx.status.shard(&self.shard_id, |s| s.throttled += 1);
                }
                tracing::debug!(shard = %self.shard_id, error = %err, "subscription refused for now; waiting");
                Some(
                    self.ctx
                        .config
                        .jittered_backoff(failures.in_a_row)
                        .max(SUBSCRIBE_INTERVAL),
                )
            }
            _ => match self.should_retry(&err, failures) {
                Some(delay) => Some(delay),
                None => {
                    self.fail(err);
                    None
                }
            },
        }
    }
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;
