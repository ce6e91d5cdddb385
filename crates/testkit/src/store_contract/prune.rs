//! The contract of [`CheckpointStore::prune_finished`]: only finished shards that no worker
//! holds are deleted, whole, and nothing else is touched.

use async_kinesis::checkpoint::{CheckpointStore, Position, Progress, StartingPoint, WorkerId};

use super::{EXPIRED, OpenStore, acquire, assert_refused, stream};

fn ids(shards: &[&str]) -> Vec<String> {
    shards.iter().map(|&shard| shard.to_owned()).collect()
}

/// Claims `shard`, checkpoints it, records SHARD_END and releases it.
async fn finish(store: &dyn CheckpointStore, stream: &str, shard: &str) {
    let (lease, _) = acquire(store, stream, shard, &WorkerId::new("a")).await;
    store
        .checkpoint(&lease, &Position::after("5"))
        .await
        .expect("checkpoint");
    store.mark_shard_end(&lease).await.expect("end");
    store.release(&lease).await.expect("release");
}

async fn prune(store: &dyn CheckpointStore, stream: &str, shards: &[&str]) -> usize {
    store
        .prune_finished(stream, &ids(shards))
        .await
        .expect("prune_finished")
}

/// A finished, released shard is deleted whole (listed no more, no progress); repeating the
/// call, or naming the shard twice, deletes nothing more.
pub async fn finished_and_released_shards_are_pruned_once(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    finish(&*store_a, &stream, "shard-0").await;
    finish(&*store_a, &stream, "shard-1").await;
    assert_eq!(store_b.list(&stream).await.expect("list").len(), 2);
    assert_eq!(prune(&*store_b, &stream, &["shard-0"]).await, 1);
    let listed = store_a.list(&stream).await.expect("list");
    let left: Vec<&str> = listed.iter().map(|l| l.shard_id.as_str()).collect();
    assert_eq!(left, ["shard-1"]);
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::None,
        "nothing of the shard is left"
    );
    assert_eq!(
        prune(&*store_b, &stream, &["shard-0"]).await,
        0,
        "idempotent"
    );
    assert_eq!(prune(&*store_a, &stream, &["shard-1", "shard-1"]).await, 1);
    assert!(store_b.list(&stream).await.expect("list").is_empty());
}

/// Shards without SHARD_END are kept, whatever else they record, held or not, live or expired.
pub async fn unfinished_shards_are_never_pruned(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let a = WorkerId::new("a");
    let (checkpointed, _) = acquire(&*store, &stream, "checkpointed", &a).await;
    store
        .checkpoint(&checkpointed, &Position::within("9", 2))
        .await
        .expect("checkpoint");
    store.release(&checkpointed).await.expect("release");
    let (started, _) = acquire(&*store, &stream, "started", &a).await;
    store
        .record_start(&started, &StartingPoint::AtSequence("4".into()))
        .await
        .expect("start");
    store.release(&started).await.expect("release");
    let (fresh, _) = acquire(&*store, &stream, "fresh", &a).await;
    store.release(&fresh).await.expect("release");
    let (held, _) = acquire(&*store, &stream, "held", &a).await;
    store
        .checkpoint(&held, &Position::after("3"))
        .await
        .expect("checkpoint");
    let all = ["checkpointed", "started", "fresh", "held"];
    let before = store.list(&stream).await.expect("list");
    assert_eq!(before.len(), 4);
    assert_eq!(prune(&*store, &stream, &all).await, 0);
    tokio::time::sleep(EXPIRED).await;
    assert_eq!(
        prune(&*store, &stream, &all).await,
        0,
        "expired, still unfinished"
    );
    let after = store.list(&stream).await.expect("list");
    let progress = |listed: &[async_kinesis::checkpoint::LeaseInfo]| {
        listed
            .iter()
            .map(|l| (l.shard_id.clone(), l.token, l.progress.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(progress(&after), progress(&before));
    store
        .checkpoint(&held, &Position::after("4"))
        .await
        .expect("the holder still writes");
}

/// A finished shard whose lease is still held (renewed) is kept; once the lease expired it is
/// pruned (a store that watches expiry needs a look before and after), and the stale holder
/// can no longer write.
pub async fn held_finished_shards_are_kept_until_their_lease_expires(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let a = WorkerId::new("a");
    let (lease, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    store_a.mark_shard_end(&lease).await.expect("end");
    assert_eq!(prune(&*store_b, &stream, &["shard-0"]).await, 0, "held");
    store_a.renew(&lease).await.expect("renew");
    assert_eq!(prune(&*store_b, &stream, &["shard-0"]).await, 0, "renewed");
    assert_eq!(
        store_b
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::ShardEnd
    );
    tokio::time::sleep(EXPIRED).await;
    assert_eq!(prune(&*store_b, &stream, &["shard-0"]).await, 1, "expired");
    assert!(store_b.list(&stream).await.expect("list").is_empty());
    assert_refused(store_a.release(&lease).await);
}

/// Ids without an entry (and a worker's name) are ignored; nothing is created for them.
pub async fn unknown_shard_ids_are_ignored(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let a = WorkerId::new("a");
    store.heartbeat(&stream, &a).await.expect("heartbeat");
    assert_eq!(prune(&*store, &stream, &[]).await, 0);
    assert_eq!(
        prune(&*store, &stream, &["shard-9", "worker#a", "a", ""]).await,
        0
    );
    assert!(store.list(&stream).await.expect("list").is_empty());
    assert_eq!(
        store.live_workers(&stream).await.expect("live"),
        vec![a.clone()]
    );
    finish(&*store, &stream, "shard-0").await;
    assert_eq!(
        prune(&*store, &stream, &["shard-9", "shard-0", "shard-10"]).await,
        1
    );
    assert!(store.list(&stream).await.expect("list").is_empty());
    assert_eq!(store.live_workers(&stream).await.expect("live"), vec![a]);
}

/// Pruning a shard of one stream leaves the same shard id of other streams and of other
/// applications alone.
pub async fn pruning_leaves_other_streams_and_apps_alone(open: OpenStore) {
    let (app1, app2) = (open("app-one").await, open("app-two").await);
    let (stream_x, stream_y) = (stream(), stream());
    finish(&*app1, &stream_x, "shard-0").await;
    finish(&*app1, &stream_y, "shard-0").await;
    finish(&*app2, &stream_x, "shard-0").await;
    assert_eq!(prune(&*app1, &stream_x, &["shard-0"]).await, 1);
    assert!(app1.list(&stream_x).await.expect("list").is_empty());
    for (store, stream) in [(&app1, &stream_y), (&app2, &stream_x)] {
        let listed = store.list(stream).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].progress, Progress::ShardEnd);
    }
}
