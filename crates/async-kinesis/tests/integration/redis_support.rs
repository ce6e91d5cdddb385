//! Shared helpers of the Redis store tests.

use std::sync::OnceLock;

use async_kinesis::checkpoint::{
    CheckpointError, CheckpointStore, Claim, Lease, LeaseTiming, Position, Progress, RedisStore,
    WorkerId,
};
use testkit::group::error_chain;
use testkit::redis_server::RedisServer;
use testkit::{Service, Services};

/// Application names carry a per-process prefix, so runs never meet earlier runs' keys.
pub fn app_name(app: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
    format!("test-{run}-{app}")
}

pub fn shared_url() -> String {
    let services = Services::from_env();
    services.require(Service::Redis);
    services.redis_url
}

pub async fn connect(url: &str, app: &str, timing: LeaseTiming) -> RedisStore {
    RedisStore::builder(app)
        .url(url)
        .timing(timing)
        .connect()
        .await
        .expect("connect")
}

pub async fn plain(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("plain connection")
}

pub async fn acquire(store: &RedisStore, stream: &str, shard: &str, worker: &WorkerId) -> Lease {
    match store.claim(stream, shard, worker).await.expect("claim") {
        Claim::Acquired { lease, .. } => lease,
        other => panic!("{worker} expected {shard}, got {other:?}"),
    }
}

/// Checks that the store holds the checkpoint "after `sequence`" for the shard.
pub async fn expect_checkpoint(store: &RedisStore, stream: &str, shard: &str, sequence: &str) {
    assert_eq!(
        store.progress(stream, shard).await.expect("progress"),
        Progress::At(Position::after(sequence))
    );
}

pub fn expect_store_error(
    result: Result<impl std::fmt::Debug, CheckpointError>,
    operation: &str,
    retryable: bool,
) -> String {
    let error = result.expect_err("the call should fail");
    let text = error_chain(&error);
    match &error {
        CheckpointError::Store {
            operation: failed,
            retryable: can_retry,
            ..
        } => {
            assert_eq!(*failed, operation, "{text}");
            assert_eq!(*can_retry, retryable, "{text}");
        }
        other => panic!("expected a Store error of {operation}, got {other:?}"),
    }
    text
}

pub fn signal(server: &RedisServer, signal: &str) {
    let pid = server.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
