//! One worker process of a consumer group.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_kinesis::checkpoint::LeaseTiming;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::{Event, GroupLog, StoreSpec};

/// What every worker of a group shares.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The `kinesis-group-worker` binary.
    pub bin: PathBuf,
    /// The stream's name.
    pub stream: String,
    /// The Kinesis endpoint.
    pub kinesis_endpoint: String,
    /// The application (group) name in the store.
    pub app: String,
    /// The shared store.
    pub store: StoreSpec,
    /// Lease timing.
    pub timing: LeaseTiming,
}

impl WorkerConfig {
    fn args(&self, worker: &str) -> Vec<String> {
        let mut args = vec![
            "--stream".into(),
            self.stream.clone(),
            "--kinesis-endpoint".into(),
            self.kinesis_endpoint.clone(),
            "--app".into(),
            self.app.clone(),
            "--worker".into(),
            worker.into(),
            "--session-ms".into(),
            self.timing.session_timeout().as_millis().to_string(),
            "--heartbeat-ms".into(),
            self.timing.heartbeat_frequency().as_millis().to_string(),
        ];
        args.extend(self.store.to_args());
        args
    }
}

/// A running worker. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct WorkerProcess {
    /// Its worker id.
    pub id: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl WorkerProcess {
    /// Starts a worker whose events go to `log`.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn(config: &WorkerConfig, id: &str, log: &GroupLog) -> Self {
        Self::spawn_with(config, id, log, &[])
    }

    /// Starts a worker with more arguments (e.g. `--latest`, `--panic-on KEY:N`; see the
    /// `kinesis-group-worker` binary).
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn_with(config: &WorkerConfig, id: &str, log: &GroupLog, extra: &[&str]) -> Self {
        let mut child = Command::new(&config.bin)
            .args(config.args(id))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", config.bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let log = log.clone();
        let worker = id.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Event>(&line) {
                    Ok(event) => log.push(event),
                    Err(_) => eprintln!("[{worker}] {line}"),
                }
            }
        });
        Self {
            id: id.to_owned(),
            stdin: child.stdin.take(),
            child,
        }
    }

    /// SIGKILL: no shutdown, no final checkpoint, no release.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Asks for a clean shutdown (closes the worker's stdin) and waits for the exit.
    ///
    /// # Panics
    /// When the worker does not exit within `deadline`.
    pub async fn stop(&mut self, deadline: Duration) {
        drop(self.stdin.take());
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("worker {} did not stop", self.id))
            .unwrap_or_else(|err| panic!("waiting for worker {}: {err}", self.id));
    }
}
