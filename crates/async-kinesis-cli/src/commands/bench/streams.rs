//! The bench streams: each run gets a fresh one, and every one created is deleted again, also
//! when the run fails or is interrupted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_kinesis::{CreateStream, ErrorClass, StreamClient};

use crate::cli::Global;
use crate::error::CliError;

/// How long a new stream may take to become ACTIVE.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// The streams this bench created and has not deleted yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    live: Arc<Mutex<Vec<StreamClient>>>,
    made: Arc<AtomicU64>,
}

impl Ledger {
    /// Creates a fresh stream of `shards` shards for a run of `label` and waits until it is
    /// ACTIVE. It is in the ledger from before the create call on, so an interruption at any
    /// point still deletes it.
    pub(crate) async fn create(
        &self,
        global: &Global,
        label: &str,
        shards: u32,
    ) -> Result<StreamClient, CliError> {
        let name = self.fresh_name(label);
        let client = global.stream_client(&name).await?;
        self.lock().push(client.clone());
        let created = async {
            client.create(CreateStream::Provisioned { shards }).await?;
            client.wait_until_active(CREATE_TIMEOUT).await
        };
        if let Err(err) = created.await {
            // The stream most likely does not exist (e.g. the endpoint did not answer): try
            // once to delete it anyway, then forget it.
            let _ = self.delete(&client).await;
            return Err(CliError::Failed(format!(
                "cannot create the bench stream {name}: {}",
                crate::error::one_line(&err)
            )));
        }
        Ok(client)
    }

    /// Deletes one stream of the ledger.
    pub(crate) async fn delete(&self, client: &StreamClient) -> Result<(), CliError> {
        let result = client.delete().await;
        self.lock()
            .retain(|c| c.stream().name() != client.stream().name());
        match result {
            Ok(()) => Ok(()),
            Err(err) if err.class() == ErrorClass::NotFound => Ok(()),
            Err(err) => Err(CliError::Failed(format!(
                "cannot delete the bench stream {}: {}",
                client.stream().name(),
                crate::error::one_line(&err)
            ))),
        }
    }

    /// Deletes every stream still in the ledger; the ones that could not be deleted are named.
    pub(crate) async fn delete_all(&self) -> Vec<String> {
        let live: Vec<StreamClient> = self.lock().clone();
        let mut problems = Vec::new();
        for client in live {
            if let Err(err) = self.delete(&client).await {
                problems.push(err.message().unwrap_or_default().to_owned());
            }
        }
        problems
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StreamClient>> {
        // A panic elsewhere leaves the list itself intact.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `async-kinesis-bench-<label>-<pid>-<time>-<n>`: unique per process and run.
    fn fresh_name(&self, label: &str) -> String {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() % 1_000_000_000_000);
        format!(
            "async-kinesis-bench-{label}-{}-{micros:x}-{n}",
            std::process::id()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fresh_and_valid() {
        let ledger = Ledger::default();
        let a = ledger.fresh_name("kplstring");
        let b = ledger.fresh_name("kplstring");
        assert_ne!(a, b);
        for name in [a, b] {
            let prefix = format!("async-kinesis-bench-kplstring-{}-", std::process::id());
            assert!(name.starts_with(&prefix), "{name}");
            assert!(name.len() <= async_kinesis::stream::limits::STREAM_NAME_MAX_LEN);
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            );
        }
    }
}
