//! The contract of [`CheckpointStore::record_start`]: where a shard without a checkpoint
//! started is recorded, fenced, first start wins, until a checkpoint replaces it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_kinesis::checkpoint::{
    CheckpointError, Claim, FencingToken, Lease, Position, Progress, StartingPoint, WorkerId,
};

use super::{EXPIRED, OpenStore, acquire, assert_not_owned, assert_refused, stream};

/// A start time with nanoseconds, which every store keeps exactly.
fn start_time(offset_ns: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789 + offset_ns)
}

/// A recorded start is answered by every later claim (of any worker), by `progress` and by
/// `list`, until the first checkpoint replaces it.
pub async fn a_recorded_start_is_where_the_next_claim_starts(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let started = StartingPoint::AtTimestamp(start_time(0));
    let (lease_a, progress) = acquire(&*store_a, &stream, "shard-0", &a).await;
    assert_eq!(progress, Progress::None);
    store_a
        .record_start(&lease_a, &started)
        .await
        .expect("owner records its start");
    let expected = Progress::Started(started.clone());
    assert_eq!(
        store_b
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        expected
    );
    assert_eq!(
        store_b.list(&stream).await.expect("list")[0].progress,
        expected
    );
    store_a.release(&lease_a).await.expect("release");
    let (lease_b, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_eq!(
        progress, expected,
        "the next owner starts where the first did"
    );
    store_b
        .checkpoint(&lease_b, &Position::after("42"))
        .await
        .expect("write");
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::At(Position::after("42")),
        "a checkpoint takes precedence over the start"
    );
    let (_, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_eq!(progress, Progress::At(Position::after("42")));

    // A start at a record reads back the same way.
    let (lease, _) = acquire(&*store_a, &stream, "shard-1", &a).await;
    let at_record = StartingPoint::AtSequence(
        "49590338271490256608559692538361571095921575989136588898".into(),
    );
    store_a
        .record_start(&lease, &at_record)
        .await
        .expect("owner records its start");
    let (_, progress) = acquire(&*store_b, &stream, "shard-1", &a).await;
    assert_eq!(progress, Progress::Started(at_record));
}

/// Only the first start is kept; a shard with a checkpoint or SHARD_END records none.
pub async fn the_first_recorded_start_wins_until_a_checkpoint(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let first = StartingPoint::AtTimestamp(start_time(0));
    let (lease_a, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    store_a.record_start(&lease_a, &first).await.expect("first");
    for later in [
        StartingPoint::AtTimestamp(start_time(1_000)),
        StartingPoint::AtSequence("7".into()),
    ] {
        store_a
            .record_start(&lease_a, &later)
            .await
            .expect("a later start is accepted and ignored");
    }
    store_a.release(&lease_a).await.expect("release");
    // Another owner's start does not replace it either.
    let (lease_b, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_eq!(progress, Progress::Started(first.clone()));
    store_b
        .record_start(&lease_b, &StartingPoint::AtTimestamp(start_time(2_000)))
        .await
        .expect("accepted and ignored");
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::Started(first)
    );

    // After a checkpoint no start is recorded.
    let (lease, _) = acquire(&*store_a, &stream, "shard-1", &a).await;
    store_a
        .checkpoint(&lease, &Position::within("9", 2))
        .await
        .expect("write");
    store_a
        .record_start(&lease, &StartingPoint::AtSequence("1".into()))
        .await
        .expect("accepted and ignored");
    let (_, progress) = acquire(&*store_a, &stream, "shard-1", &a).await;
    assert_eq!(progress, Progress::At(Position::within("9", 2)));

    // Nor after SHARD_END.
    let (lease, _) = acquire(&*store_a, &stream, "shard-2", &a).await;
    store_a.mark_shard_end(&lease).await.expect("end");
    store_a
        .record_start(&lease, &StartingPoint::AtTimestamp(start_time(0)))
        .await
        .expect("accepted and ignored");
    assert_eq!(
        store_b
            .progress(&stream, "shard-2")
            .await
            .expect("progress"),
        Progress::ShardEnd
    );
}

/// A start is recorded only under the lease that holds the shard: a forged, stale or released
/// lease is refused like a checkpoint, and the store stays unchanged.
pub async fn recording_a_start_is_fenced(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let point = StartingPoint::AtTimestamp(start_time(0));
    let forged = Lease {
        stream: stream.as_str().into(),
        shard_id: "shard-0".into(),
        owner: a.clone(),
        token: FencingToken(1),
    };
    assert_refused(store_a.record_start(&forged, &point).await);
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::None
    );

    // Taken over after expiry: the stale holder cannot record its start.
    let (old, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    assert_eq!(
        store_b.claim(&stream, "shard-0", &b).await.expect("claim"),
        Claim::HeldBy { owner: a.clone() }
    );
    tokio::time::sleep(EXPIRED).await;
    let (new, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_eq!(progress, Progress::None);
    assert_not_owned(store_a.record_start(&old, &point).await, &a, Some(&b));
    assert_eq!(
        store_b
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::None,
        "the stale holder recorded a start"
    );

    // Re-claimed by the same worker: the older token is fenced.
    let (newer, _) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_not_owned(store_b.record_start(&new, &point).await, &b, Some(&b));
    // Released: refused too.
    store_b.release(&newer).await.expect("release");
    assert_not_owned(store_b.record_start(&newer, &point).await, &b, None);
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::None
    );

    // A sequence number no store could read back is refused, and nothing is written.
    let (lease, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    let garbage = StartingPoint::AtSequence("12a".into());
    assert!(
        matches!(
            store_a.record_start(&lease, &garbage).await,
            Err(CheckpointError::Store {
                retryable: false,
                ..
            })
        ),
        "a non-decimal sequence number is refused"
    );
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::None
    );
}
