//! A private moto server (DynamoDB) that a test owns: it can stop it and start it again on the
//! same port, to see what clients do while their server is gone and after it comes back empty
//! (moto keeps everything in memory).
//!
//! The shared server of `scripts/local-stack` must never be stopped by a test; use this one
//! instead.
//!
//! ```no_run
//! # async fn demo() {
//! let mut moto = testkit::moto_server::MotoServer::spawn().await;
//! let config = moto.sdk_config(); // static test credentials, us-east-1, this server
//! moto.stop(); // connections are refused from now on
//! moto.start().await; // same port, empty state
//! # drop(config);
//! # }
//! ```
//!
//! # Where the binary comes from
//!
//! `ASYNC_KINESIS_MOTO_SERVER` (a path to `moto_server`) when set; otherwise the moto virtualenv
//! that `scripts/local-stack install` creates: under `$LOCAL_STACK_DIR`, under `.local-stack/` at
//! the repository root, or next to the interop virtualenv named by `ASYNC_KINESIS_PY_INTEROP`
//! (the variable `scripts/local-stack env` prints, which also covers git worktrees whose own
//! `.local-stack/` is absent).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::SdkConfig;

use crate::services::{repo_root, sdk_config_for};

/// How long a starting server may take to accept connections (Python imports are slow on a busy
/// machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A moto server process on a port of its own, killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    binary: PathBuf,
    port: u16,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl MotoServer {
    /// Starts a moto server on a free 127.0.0.1 port and waits until it accepts connections.
    ///
    /// # Panics
    /// When the binary cannot be found or the server does not answer in time, with the
    /// server's log and how to install it.
    pub async fn spawn() -> Self {
        Self::spawn_with_env(&[]).await
    }

    /// Like [`MotoServer::spawn`], with environment variables for the server, e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0` to make it check credentials (and refuse the test ones).
    ///
    /// # Panics
    /// As [`MotoServer::spawn`].
    pub async fn spawn_with_env(env: &[(&str, &str)]) -> Self {
        let binary = Self::binary();
        assert!(
            binary.is_file(),
            "moto_server not found at {}. Install it with `scripts/local-stack install`, or set \
             ASYNC_KINESIS_MOTO_SERVER to a moto_server binary.",
            binary.display()
        );
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("testkit-moto-{}-{port}.log", std::process::id()));
        let mut server = Self {
            binary,
            port,
            log,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        server.start().await;
        server
    }

    /// The `moto_server` binary this helper runs (see the [module docs](self)).
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("ASYNC_KINESIS_MOTO_SERVER") {
            return PathBuf::from(path);
        }
        let in_state = |state: &Path| state.join("moto/bin/moto_server");
        let mut candidates = Vec::new();
        if let Some(state) = std::env::var_os("LOCAL_STACK_DIR") {
            candidates.push(in_state(Path::new(&state)));
        }
        candidates.push(in_state(&repo_root().join(".local-stack")));
        // <state>/py-interop/bin/python → <state>/moto/bin/moto_server
        if let Some(python) = std::env::var_os("ASYNC_KINESIS_PY_INTEROP")
            && let Some(state) = Path::new(&python).ancestors().nth(3)
        {
            candidates.push(in_state(state));
        }
        candidates
            .iter()
            .find(|path| path.is_file())
            .unwrap_or(&candidates[0])
            .clone()
    }

    /// The server's port on 127.0.0.1 (it stays the same across [`MotoServer::start`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// AWS configuration for this server: static test credentials, us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint())
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the server and waits until it has exited; connections to its port are refused from
    /// then on and everything it stored is gone. Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port, empty, and waits until it accepts
    /// connections. Does nothing when it is running.
    ///
    /// # Panics
    /// When it cannot be started or does not answer in time.
    pub async fn start(&mut self) {
        if self.is_running() {
            return;
        }
        let log = File::create(&self.log)
            .unwrap_or_else(|e| panic!("create moto log {}: {e}", self.log.display()));
        let err_log = log
            .try_clone()
            .unwrap_or_else(|e| panic!("moto log {}: {e}", self.log.display()));
        let child = Command::new(&self.binary)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            let exited = !self.is_running();
            if exited || tokio::time::Instant::now() >= deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                self.stop();
                panic!(
                    "moto_server on port {} {}; its log:\n{log}",
                    self.port,
                    if exited {
                        "exited"
                    } else {
                        "did not answer in time"
                    }
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A port nobody listens on right now (the kernel's choice of an ephemeral port).
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("find a free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_server_refuses_and_comes_back_on_its_port() {
        let mut moto = MotoServer::spawn().await;
        let addr = SocketAddr::from(([127, 0, 0, 1], moto.port()));
        assert!(moto.is_running());
        moto.stop();
        assert!(!moto.is_running());
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        moto.start().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        assert_eq!(moto.endpoint(), format!("http://127.0.0.1:{}", moto.port()));
    }
}
