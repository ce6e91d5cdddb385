//! Private `redis-server` processes, for tests that stop, restart or reconfigure a server (the
//! shared one of `scripts/local-stack` must stay up for everyone else).
//!
//! Each [`RedisServer`] listens on a free 127.0.0.1 port with its own temporary directory (its
//! working directory, so AOF/RDB files and `nodes.conf` land there), and is killed and its
//! directory removed when dropped. [`RedisCluster`](crate::redis_cluster::RedisCluster) starts a
//! few of them as a Redis Cluster.
//!
//! The helpers block while a server starts or stops (tens of milliseconds); call them from
//! multi-threaded tokio tests or from plain threads.
//!
//! ```no_run
//! use testkit::redis_server::RedisServer;
//!
//! let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
//! let url = server.url(); // redis://127.0.0.1:<port>
//! server.stop(); // SIGTERM: the AOF is flushed
//! server.start(); // same port, same directory, same data
//! # drop(url);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after starting, or to exit after SIGTERM.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

/// A `redis-server` process owned by the test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port in a new temporary directory, with `extra_args` after
    /// the defaults (`--bind 127.0.0.1 --save "" --appendonly no`, so later arguments such as
    /// `--appendonly yes` or `--requirepass secret` override them), and waits until it answers.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not come up (the panic shows its log).
    pub fn spawn(extra_args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "testkit-redis-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create the server's temporary directory");
        let mut server = Self {
            port: 0,
            dir,
            args: extra_args.iter().map(|&arg| arg.to_owned()).collect(),
            child: None,
        };
        // A port found free can be taken before the server binds it: try a few.
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("redis-server did not start: {last_failure}");
    }

    /// Starts the server again after [`stop`](Self::stop) or [`kill`](Self::kill), on the same
    /// port and directory with the same arguments, and waits until it answers.
    ///
    /// # Panics
    /// When it is already running or does not come up.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        if let Err(failure) = self.try_start() {
            panic!(
                "redis-server did not restart on port {}: {failure}",
                self.port
            );
        }
    }

    /// Stops the server with SIGTERM (it flushes its AOF and exits cleanly) and waits for it to
    /// exit; SIGKILL if it has not exited in time. Does nothing when it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // std can only send SIGKILL; a clean shutdown needs SIGTERM.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with SIGKILL (a crash: writes not yet flushed are lost) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id while running, e.g. to freeze it with SIGSTOP.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, without credentials.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its working directory (data files, `nodes.conf`, `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn try_start(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let mut child = Command::new("redis-server")
            .current_dir(&self.dir)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run redis-server ({e}); install it or run `scripts/local-stack up`, \
                     which installs it"
                )
            })?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited with {status}; log:\n{}", read_log(&log)));
            }
            if answers(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {PATIENCE:?}; log:\n{}",
                    read_log(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// Sends one inline command and returns the raw reply (empty when nothing answered).
pub(crate) fn send(port: u16, command: &str) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream
        .write_all(format!("{command}\r\n").as_bytes())
        .is_err()
    {
        return String::new();
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // A reply ends with CRLF; bulk replies (CLUSTER INFO) carry their length first, but a
    // short read loop until the peer pauses is enough for these small replies.
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.ends_with(b"\r\n") && complete(&reply) {
            break;
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// Whether a RESP reply to a simple command is complete: a status or error line, or a bulk
/// string whose announced length has arrived.
fn complete(reply: &[u8]) -> bool {
    match reply.first() {
        Some(b'$') => {
            let text = String::from_utf8_lossy(reply);
            let Some((header, body)) = text.split_once("\r\n") else {
                return false;
            };
            header[1..]
                .parse::<usize>()
                .is_ok_and(|len| body.len() >= len + 2)
        }
        _ => true,
    }
}

/// A server that answers PING, even with "authentication required", is up; one still loading
/// its data is not yet.
fn answers(port: u16) -> bool {
    let reply = send(port, "PING");
    reply.starts_with("+PONG") || reply.starts_with("-NOAUTH")
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_restarts_on_its_port_and_keeps_its_aof() {
        let mut server = RedisServer::spawn(&["--appendonly", "yes"]);
        let port = server.port();
        assert!(send(port, "SET testkit-key kept").starts_with("+OK"));
        server.stop();
        assert!(!server.is_running());
        assert!(!answers(port), "stopped");
        server.start();
        assert_eq!(server.port(), port);
        assert!(
            send(port, "GET testkit-key").contains("kept"),
            "the AOF was replayed"
        );
        let dir = server.dir().to_owned();
        drop(server);
        assert!(!dir.exists(), "the directory is removed");
        assert!(!answers(port), "dropped servers are killed");
    }

    #[test]
    fn extra_arguments_override_the_defaults() {
        let server = RedisServer::spawn(&["--requirepass", "secret"]);
        assert!(send(server.port(), "GET x").starts_with("-NOAUTH"));
    }
}
