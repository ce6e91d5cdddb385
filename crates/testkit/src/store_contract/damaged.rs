//! Entries damaged by hand in a store's backend: the halves of a damaged-entry test that do not
//! depend on the backend. The store's own test damages the entries between the two.

use async_kinesis::checkpoint::{CheckpointError, CheckpointStore, Position, Progress, WorkerId};

use super::acquire;

/// Where [`checkpoint_shards`] leaves every shard: a sequence number beyond `u64` and a
/// sub-sequence, so a store that loses either is caught.
pub fn damage_position() -> Position {
    Position::within("123456789012345678901234567890", 3)
}

/// Claims each shard, checkpoints it at [`damage_position`] and releases it: entries with every
/// field written, ready to be damaged.
pub async fn checkpoint_shards(store: &dyn CheckpointStore, stream: &str, shards: &[&str]) {
    let worker = WorkerId::new("a");
    for &shard in shards {
        let (lease, _) = acquire(store, stream, shard, &worker).await;
        store
            .checkpoint(&lease, &damage_position())
            .await
            .expect("checkpoint");
        store.release(&lease).await.expect("release");
    }
}

/// `list` answers exactly the `good` shard, at [`damage_position`], and leaves the damaged
/// ones out; a claim and a progress read of each damaged shard fail with
/// [`CheckpointError::UnreadableEntry`] naming it.
pub async fn assert_damaged_left_out(
    store: &dyn CheckpointStore,
    stream: &str,
    good: &str,
    damaged: &[&str],
) {
    let listed = store
        .list(stream)
        .await
        .expect("list answers the good entries");
    let shards: Vec<(&str, &Progress)> = listed
        .iter()
        .map(|l| (l.shard_id.as_str(), &l.progress))
        .collect();
    assert_eq!(shards, [(good, &Progress::At(damage_position()))]);
    let other = WorkerId::new("b");
    for &shard in damaged {
        let named = |call: &str, err: CheckpointError| match err {
            CheckpointError::UnreadableEntry { shard_id, detail } => {
                assert_eq!(shard_id, shard, "{call}");
                assert!(!detail.is_empty(), "{call}: the damage is described");
            }
            other => panic!("{call} of {shard}: expected UnreadableEntry, got {other:?}"),
        };
        named(
            "claim",
            store
                .claim(stream, shard, &other)
                .await
                .expect_err("claim of a damaged entry"),
        );
        named(
            "progress",
            store
                .progress(stream, shard)
                .await
                .expect_err("progress of a damaged entry"),
        );
    }
}
