//! How the worker settles a finished PutRecords call: each record delivered, retried or failed
//! with its items, and the shard's budget told what the service answered.

use super::*;

impl<P: Processor> Worker<P> {
    pub(super) fn on_call_done(&mut self, done: CallDone<P::Item>) {
        let CallDone {
            shard,
            batch,
            result,
            started,
        } = done;
        let now = Instant::now();
        let mut report = FlushReport {
            shard_id: (&shard).into(),
            records: batch.len(),
            accepted: 0,
            retried: 0,
            failed: 0,
            duration: now.saturating_duration_since(started),
        };
        let mut outcome = PutRecordsOutcome {
            records: batch.len(),
            seconds: report.duration.as_secs_f64(),
            ..PutRecordsOutcome::default()
        };
        let entries = match result {
            Ok(entries) if entries.len() == batch.len() => entries,
            Ok(entries) => {
                let error = Error::MalformedResponse {
                    operation: "PutRecords",
                    detail: format!("{} results for {} records", entries.len(), batch.len()),
                };
                return self.on_call_error(shard, batch, error, report, now);
            }
            Err(error) => return self.on_call_error(shard, batch, error, report, now),
        };
        let mut retry = Vec::new();
        let mut reshard_seen = false;
        let sent = batch.len();
        for (mut waiting, entry) in batch.into_iter().zip(entries) {
            let attempts = waiting.failed_attempts + 1;
            let refusal = match &entry {
                EntryResult::Refused { code, message } => Some(format!("{code}: {message}")),
                EntryResult::Accepted { .. } => None,
            };
            match after_entry(entry, attempts, &self.config.retry) {
                Next::Deliver {
                    shard_id,
                    sequence_number,
                } => {
                    reshard_seen |=
                        *shard_id != *shard && &*shard != UNROUTED && !self.service_distributes;
                    outcome.accepted_records += 1;
                    outcome.accepted_items += waiting.record.tags.len() as u64;
                    outcome.accepted_bytes += waiting.size as u64;
                    let waited = now.saturating_duration_since(waiting.queued_at);
                    outcome.put_latencies.push(waited.as_secs_f64());
                    report.accepted += 1;
                    let delivery = Delivery {
                        shard_id: shard_id.into(),
                        sequence_number: sequence_number.into(),
                    };
                    for ticket in waiting.record.tags {
                        self.resolve(ticket, Ok(delivery.clone()));
                    }
                }
                Next::Retry { throttled } => {
                    outcome.throttled_records += u64::from(throttled);
                    waiting.failed_attempts = attempts;
                    waiting.not_before = now + self.config.retry.jittered_delay(attempts);
                    waiting.last_error = refusal;
                    retry.push(waiting);
                }
                Next::Fail {
                    code,
                    message,
                    class,
                } => {
                    report.failed += 1;
                    self.labels
                        .producer_error(&class.to_string(), waiting.record.tags.len() as u64);
                    for ticket in waiting.record.tags {
                        let kind = PutErrorKind::Refused {
                            code: code.clone(),
                            message: message.clone(),
                            class,
                            attempts,
                        };
                        self.resolve(ticket, Err(kind));
                    }
                }
            }
        }
        report.retried = retry.len();
        outcome.retried_records = retry.len() as u64;
        if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
            if outcome.throttled_records > 0 {
                let fraction = outcome.throttled_records as f64 / sent as f64;
                queue.budget_mut().on_partly_throttled(now, fraction);
            } else {
                queue.budget_mut().on_accepted();
            }
            queue.resolved(sent - retry.len());
            queue.retry_front(retry);
            queue.finish_flight();
        }
        if reshard_seen {
            // A record landed on a shard other than the one its key maps to: re-read the map.
            self.refresh_at = now;
        }
        self.labels.put_records(&shard, outcome);
        self.after_flush(&report);
    }

    fn on_call_error(
        &mut self,
        shard: Arc<str>,
        mut batch: Vec<Waiting<Outgoing<P::Item>>>,
        error: Error,
        mut report: FlushReport,
        now: Instant,
    ) {
        let attempts = batch.iter().map(|w| w.failed_attempts).max().unwrap_or(0) + 1;
        tracing::warn!(stream = %self.client.stream(), shard = %shard, attempts, error = %error, "PutRecords failed");
        match after_call_error(&error, batch.len(), attempts, &self.config.retry) {
            CallFailure::Isolate => {
                let named = match &error {
                    Error::Service { message, .. } => records_named(message, batch.len()),
                    _ => None,
                };
                if let Some(bad) = named {
                    // The service named the bad records: they fail with its message, the
                    // others go again at once.
                    let (mut failed, mut good) = (Vec::new(), Vec::new());
                    for (index, waiting) in batch.into_iter().enumerate() {
                        if bad.binary_search(&index).is_ok() {
                            failed.push(waiting);
                        } else {
                            good.push(waiting);
                        }
                    }
                    tracing::warn!(stream = %self.client.stream(), shard = %shard, refused = failed.len(), error = %error, "PutRecords refused records by their input; sending the others again");
                    report.failed = failed.len();
                    report.retried = good.len();
                    self.labels
                        .records_retried(&shard, good.len() as u64, false);
                    self.labels
                        .producer_error(&error.class().to_string(), items_in(&failed));
                    if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
                        queue.resolved(failed.len());
                        queue.retry_front(good);
                        queue.finish_flight();
                    }
                    let source = Arc::new(error);
                    self.fail_records(failed, || PutErrorKind::Request {
                        source: source.clone(),
                        attempts,
                    });
                    self.after_flush(&report);
                    return;
                }
                // Refused as a whole for some record's input, not named: send the records
                // again in halves until the bad one is alone, so the others are delivered.
                report.retried = batch.len();
                tracing::warn!(stream = %self.client.stream(), shard = %shard, records = batch.len(), "PutRecords refused as a whole; splitting the call to isolate the record");
                self.labels
                    .records_retried(&shard, batch.len() as u64, false);
                if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
                    queue.isolate(batch.len());
                    queue.retry_front(batch);
                    queue.finish_flight();
                }
            }
            CallFailure::Split => {
                // The endpoint takes less than the configured request size (emulators, proxies):
                // halve the call size for good and send the same records again.
                let sent: usize = batch.iter().map(|w| w.size).sum();
                self.rules.max_bytes = (sent / 2).max(1);
                tracing::warn!(stream = %self.client.stream(), max_bytes = self.rules.max_bytes, "request too large; sending smaller PutRecords calls");
                report.retried = batch.len();
                self.labels
                    .records_retried(&shard, batch.len() as u64, false);
                if let Some(lane) = self.lanes.get_mut(&shard) {
                    lane.queue().retry_front(batch);
                    lane.queue().finish_flight();
                }
            }
            CallFailure::Retry { throttled } => {
                report.retried = batch.len();
                self.labels
                    .records_retried(&shard, batch.len() as u64, throttled);
                let delay = self.config.retry.jittered_delay(attempts);
                let last_error = error.to_string();
                for waiting in &mut batch {
                    waiting.failed_attempts = attempts;
                    waiting.not_before = now + delay;
                    waiting.last_error = Some(last_error.clone());
                }
                if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
                    if throttled {
                        queue.budget_mut().on_throttled(now);
                    }
                    queue.retry_front(batch);
                    queue.finish_flight();
                }
            }
            CallFailure::StreamGone => {
                report.failed = batch.len();
                self.labels.producer_error("not_found", items_in(&batch));
                self.stream_gone = true;
                // A stream created again under the name is noticed by the next listing.
                self.refresh_at = now + REFRESH_RETRY;
                if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
                    queue.resolved(batch.len());
                    queue.finish_flight();
                }
                let source = self.stream_gone_error();
                self.fail_records(batch, || PutErrorKind::Request {
                    source: source.clone(),
                    attempts,
                });
                self.fail_everything_waiting();
            }
            CallFailure::Fail => {
                report.failed = batch.len();
                if let Some(queue) = self.lanes.get_mut(&shard).map(Lane::queue) {
                    queue.resolved(batch.len());
                    queue.finish_flight();
                }
                self.labels
                    .producer_error(&error.class().to_string(), items_in(&batch));
                let source = Arc::new(error);
                self.fail_records(batch, || PutErrorKind::Request {
                    source: source.clone(),
                    attempts,
                });
            }
        }
        self.after_flush(&report);
    }
}
