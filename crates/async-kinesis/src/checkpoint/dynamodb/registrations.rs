//! Worker registrations: heartbeats, the live workers of a group, leaving. A registration is an
//! item of the group whose sort key is `worker#<worker id>`; its `beat` grows every heartbeat.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::ReturnValue;
use tokio::time::Instant;

use super::error::DynamoDbError;
use super::item::{BEAT, WORKER, WORKER_PREFIX, WorkerItem, key, n, s, worker_key};
use super::ops::MAX_ATTEMPTS;
use super::write::{Write, Written};
use super::{Fail, Inner};
use crate::checkpoint::WorkerId;

impl Inner {
    pub(super) async fn heartbeat(&self, stream: &str, worker: &WorkerId) -> Result<(), Fail> {
        let group = self.group(stream);
        let sort_key = worker_key(worker);
        for _ in 0..MAX_ATTEMPTS {
            let now = Instant::now();
            // A registration is bumped only when it exists, and created whole with PutItem: an
            // upserting UpdateItem is not one step on every implementation (moto stores the bare
            // key first and the attributes after), and a concurrent `live_workers` must never
            // meet a registration without its worker.
            let bump = Write::condition(format!("#{WORKER} = :worker"))
                .set(format!("#{BEAT} = #{BEAT} + :one"))
                .value(":worker", s(worker.as_str()))
                .value(":one", n(1));
            let item = match self
                .update(&group, &sort_key, bump, ReturnValue::AllNew)
                .await?
            {
                Written::Done(item) => item,
                Written::Refused(Some(found)) => {
                    let detail = match WorkerItem::parse(&found) {
                        Ok(other) => format!("{WORKER} is {}, not {worker}", other.worker),
                        Err(detail) => detail,
                    };
                    return Err(self.malformed(&group, &sort_key, detail).into());
                }
                Written::Refused(None) => match self.create_registration(&group, worker).await? {
                    Written::Done(item) => item,
                    // Created meanwhile (a repeated call): bump it.
                    Written::Refused(_) => continue,
                },
            };
            let registration = WorkerItem::parse(&item)
                .map_err(|detail| self.malformed(&group, &sort_key, detail))?;
            self.observer
                .wrote(&group, &sort_key, registration.version(), now);
            if let Err(err) = self.refresh_expiry(&group).await {
                // The registration went through; a refresh not made now is made at the next
                // heartbeat (its record of the sweep is dropped on failure), long before any
                // item nears its expiry.
                tracing::warn!(group = %group, error = %err, "refreshing the expiry of the group's items failed; trying again at the next heartbeat");
            }
            return Ok(());
        }
        Err(DynamoDbError::Contention {
            operation: "heartbeat",
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Creates `worker`'s registration, whole, unless it exists; answers the item written.
    async fn create_registration(
        &self,
        group: &str,
        worker: &WorkerId,
    ) -> Result<Written, DynamoDbError> {
        let mut item = key(group, &worker_key(worker));
        item.insert(WORKER.to_owned(), s(worker.as_str()));
        item.insert(BEAT.to_owned(), n(1));
        self.put_new(item).await
    }

    pub(super) async fn live_workers(&self, stream: &str) -> Result<Vec<WorkerId>, Fail> {
        let group = self.group(stream);
        let items = self.query(&group, Some(WORKER_PREFIX)).await?;
        let now = Instant::now();
        let mut live = Vec::new();
        let mut present = HashSet::new();
        let mut unreadable = Vec::new();
        for item in &items {
            let Some(sort_key) = super::item::sort_key(item) else {
                continue;
            };
            // One damaged registration must not hide every worker: it is left out (and counts
            // as no live worker), with a warning.
            let registration = match WorkerItem::parse(item) {
                Ok(registration) => registration,
                Err(detail) => {
                    unreadable.push(format!("{sort_key}: {detail}"));
                    continue;
                }
            };
            if self
                .observer
                .expired(&group, sort_key, registration.version(), now)
            {
                // Unchanged for a session timeout: remove it unless it was renewed meanwhile.
                let condition = format!("#{BEAT} = :beat");
                let values = HashMap::from([(":beat".to_owned(), n(registration.beat))]);
                match self.delete(&group, sort_key, &condition, values).await? {
                    Written::Done(_) | Written::Refused(None) => {
                        self.observer.forget(&group, sort_key);
                    }
                    // It beat in the meantime: live.
                    Written::Refused(Some(item)) => {
                        let renewed = match WorkerItem::parse(&item) {
                            Ok(renewed) => renewed,
                            Err(detail) => {
                                unreadable.push(format!("{sort_key}: {detail}"));
                                continue;
                            }
                        };
                        self.observer
                            .wrote(&group, sort_key, renewed.version(), now);
                        present.insert(sort_key.to_owned());
                        live.push(renewed.worker);
                    }
                }
            } else {
                present.insert(sort_key.to_owned());
                live.push(registration.worker);
            }
        }
        if !unreadable.is_empty() {
            tracing::warn!(
                store = "dynamodb",
                stream,
                "left {} unreadable worker registrations out (repair or delete them): {}",
                unreadable.len(),
                unreadable.join("; ")
            );
        }
        self.observer
            .retain(&group, |key| key.starts_with(WORKER_PREFIX), &present);
        live.sort();
        live.dedup();
        Ok(live)
    }

    pub(super) async fn leave(&self, stream: &str, worker: &WorkerId) -> Result<(), Fail> {
        let group = self.group(stream);
        let sort_key = worker_key(worker);
        let condition = format!("#{WORKER} = :worker");
        let values = HashMap::from([(":worker".to_owned(), s(worker.as_str()))]);
        // Refused: there was no registration to remove.
        self.delete(&group, &sort_key, &condition, values).await?;
        self.observer.forget(&group, &sort_key);
        Ok(())
    }
}
