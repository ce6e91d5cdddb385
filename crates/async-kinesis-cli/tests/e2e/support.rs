//! Running the binary against the local services, and reading its JSON lines.

use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use testkit::{KinesisEndpoint, Services, TestStream};

/// How long one run of the binary may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The local services, required up.
pub fn services() -> Services {
    Services::from_env()
}

/// kinesis-mock (fails the test if it is down).
pub fn kinesis() -> KinesisEndpoint {
    services().kinesis_mock()
}

/// Environment for the binary: kinesis-mock, static test credentials, us-east-1.
fn environment(command: &mut std::process::Command, services: &Services) {
    command
        .env("AWS_ENDPOINT_URL_KINESIS", &services.kinesis_mock)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &services.dynamodb)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG");
}

/// The binary, ready to run against the local services.
pub fn cli() -> Command {
    let services = services();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("async-kinesis"));
    environment(&mut command, &services);
    let mut command = Command::from_std(command);
    command.timeout(RUN_TIMEOUT);
    command
}

/// The binary as a tokio child process (for runs that go on while the test acts).
pub fn spawn(args: &[&str]) -> tokio::process::Child {
    let services = services();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("async-kinesis"));
    environment(&mut command, &services);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    command.spawn().expect("the binary starts")
}

/// Sends SIGINT (Ctrl-C) to a child.
pub fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("still running");
    // std can only send SIGKILL; Ctrl-C is SIGINT.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGINT delivered to {pid}");
}

/// A new stream with `shards` shards.
pub async fn stream(prefix: &str, shards: u32) -> TestStream {
    TestStream::create(&kinesis(), &format!("cli-{prefix}"), shards).await
}

/// Runs the binary with `args` (blocking: call from `spawn_blocking` in async tests).
pub fn run(args: &[&str]) -> assert_cmd::assert::Assert {
    cli().args(args).assert()
}

/// Runs with `stdin` as input.
pub fn run_with_input(args: &[&str], stdin: &str) -> assert_cmd::assert::Assert {
    cli().args(args).write_stdin(stdin.to_owned()).assert()
}

/// Runs `args` on a blocking thread (the binary's run blocks).
pub async fn run_async(args: Vec<String>) -> assert_cmd::assert::Assert {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("the run finishes")
}

/// `args` as owned strings.
pub fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// The stdout of a finished run.
pub fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf-8 stdout")
}

/// The stderr of a finished run.
pub fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// Each stdout line parsed as JSON.
pub fn json_lines(assert: &assert_cmd::assert::Assert) -> Vec<Value> {
    stdout(assert)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

/// A temporary file holding `content`, removed when dropped.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "async-kinesis-cli-{}-{name}",
            testkit::random_stream_name("f")
        ));
        std::fs::write(&path, content).expect("temp file written");
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The exact text of the `data` field of a `jsonl` line (JSON numbers as written).
pub fn raw_data(line: &str) -> String {
    let fields: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    fields["data"].get().to_owned()
}
