//! What the supervisor and every shard reader share.

use std::sync::Arc;

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};

use super::config::ConsumerConfig;
use super::error::ConsumeError;
use super::queue::{QueueBudget, Sender, error_delivery};
use super::status::StatusBoard;
use crate::StreamClient;
use crate::checkpoint::{CheckpointStore, WorkerId};
use crate::error::Error;
use crate::metrics::StreamLabels;
use crate::processor::Processor;

pub(crate) struct Context<P: Processor> {
    pub(crate) client: StreamClient,
    /// The stream's name (the store's key and the metrics label).
    pub(crate) stream_name: Arc<str>,
    pub(crate) config: ConsumerConfig,
    pub(crate) processor: P,
    pub(crate) out: Sender<P::Output>,
    pub(crate) budget: Arc<QueueBudget>,
    pub(crate) labels: StreamLabels,
    pub(crate) status: Arc<StatusBoard>,
    pub(crate) store: Arc<dyn CheckpointStore>,
    pub(crate) worker: WorkerId,
    /// The registered stream consumer's ARN, when reading over enhanced fan-out.
    pub(crate) fan_out_arn: Option<Arc<str>>,
}

impl<P: Processor> Context<P> {
    /// Reports an error as an item of the stream, a metric and a log line.
    pub(crate) fn report(&self, error: ConsumeError) {
        let shard = error.shard_id().unwrap_or("").to_owned();
        self.labels.consumer_error(&shard, error.metric_label());
        tracing::warn!(stream = %self.stream_name, shard = %shard, error = %error, "consumer error");
        // Without a receiver the consumer is gone and nobody is left to tell.
        let _ = self.out.send(error_delivery(error));
    }

    pub(crate) fn sdk_error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: crate::error::RawStatus + std::fmt::Debug + Send + Sync + 'static,
    {
        self.client.error(operation, err)
    }
}
