//! The contract every [`CheckpointStore`] keeps, as one suite run against each store.
//!
//! A store test file calls [`store_contract_tests!`](crate::store_contract_tests) with a function
//! that opens a new client of the store under test on a shared backend (one call = one worker
//! process's view). Each case uses its own random stream name, so cases run in parallel against
//! one server.

use std::sync::Arc;
use std::time::Duration;

use async_kinesis::checkpoint::{
    BoxFuture, CheckpointError, CheckpointStore, Claim, FencingToken, Lease, LeaseTiming, Position,
    Progress, WorkerId,
};

use crate::random_stream_name;

mod damaged;
mod prune;
mod starts;

pub use damaged::{assert_damaged_left_out, checkpoint_shards, damage_position};
pub use starts::{
    a_recorded_start_is_where_the_next_claim_starts, recording_a_start_is_fenced,
    the_first_recorded_start_wins_until_a_checkpoint,
};

pub use prune::{
    finished_and_released_shards_are_pruned_once,
    held_finished_shards_are_kept_until_their_lease_expires,
    pruning_leaves_other_streams_and_apps_alone, unfinished_shards_are_never_pruned,
    unknown_shard_ids_are_ignored,
};

/// Opens a new client of the store under test for the application (group) `app`, with
/// [`CONTRACT_TIMING`].
pub type OpenStore = fn(app: &str) -> BoxFuture<'static, Arc<dyn CheckpointStore>>;

/// The lease timing the suite expects stores to be opened with: short, so expiry cases are quick.
pub const CONTRACT_TIMING: LeaseTiming =
    match LeaseTiming::new(Duration::from_millis(1_500), Duration::from_millis(500)) {
        Ok(timing) => timing,
        Err(_) => panic!("the contract timing is valid"),
    };

/// Beyond a session timeout, with room for a slow machine.
const EXPIRED: Duration = Duration::from_millis(2_300);

/// Generates one `#[tokio::test]` per contract case for the store that `$open` opens.
#[macro_export]
macro_rules! store_contract_tests {
    ($open:path) => {
        $crate::store_contract_tests!(@cases $open;
            a_fresh_shard_is_claimed_with_no_progress,
            a_held_lease_is_refused_then_taken_over_after_expiry,
            a_renewed_lease_is_never_taken,
            reclaiming_fences_the_previous_claim,
            checkpoints_only_move_forward,
            a_released_lease_is_free_at_once_and_keeps_progress,
            shard_end_is_final,
            writes_without_a_claim_are_refused,
            streams_and_apps_do_not_collide,
            live_workers_follow_heartbeats,
            concurrent_claims_have_one_winner,
            list_reports_every_shard_sorted,
            a_recorded_start_is_where_the_next_claim_starts,
            the_first_recorded_start_wins_until_a_checkpoint,
            recording_a_start_is_fenced,
            finished_and_released_shards_are_pruned_once,
            unfinished_shards_are_never_pruned,
            held_finished_shards_are_kept_until_their_lease_expires,
            unknown_shard_ids_are_ignored,
            pruning_leaves_other_streams_and_apps_alone,
            a_position_that_is_no_sequence_number_is_refused,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::store_contract::$case($open).await;
            }
        )*
    };
}

async fn acquire(
    store: &dyn CheckpointStore,
    stream: &str,
    shard: &str,
    worker: &WorkerId,
) -> (Lease, Progress) {
    match store.claim(stream, shard, worker).await.expect("claim") {
        Claim::Acquired { lease, progress } => (lease, progress),
        other => panic!("{worker} expected the lease of {shard}, got {other:?}"),
    }
}

fn assert_not_owned(result: Result<(), CheckpointError>, by: &WorkerId, now: Option<&WorkerId>) {
    match result {
        Err(CheckpointError::NotOwned { worker, owner, .. }) => {
            assert_eq!(&worker, by);
            assert_eq!(owner.as_ref(), now, "the reported current owner");
        }
        other => panic!("expected NotOwned for {by}, got {other:?}"),
    }
}

fn assert_refused(result: Result<(), CheckpointError>) {
    match result {
        Err(CheckpointError::NotOwned { .. } | CheckpointError::UnknownShard { .. }) => {}
        other => panic!("expected the write to be refused, got {other:?}"),
    }
}

fn stream() -> String {
    random_stream_name("contract")
}

/// A first claim: token, no progress, listed with its owner.
pub async fn a_fresh_shard_is_claimed_with_no_progress(open: OpenStore) {
    let store = open("app").await;
    assert_eq!(store.timing(), CONTRACT_TIMING);
    let stream = stream();
    let a = WorkerId::new("a");
    assert_eq!(
        store.progress(&stream, "shard-0").await.expect("progress"),
        Progress::None
    );
    let (lease, progress) = acquire(&*store, &stream, "shard-0", &a).await;
    assert_eq!(progress, Progress::None);
    assert_eq!(&*lease.stream, stream.as_str());
    assert_eq!(&*lease.shard_id, "shard-0");
    assert_eq!(lease.owner, a);
    let listed = store.list(&stream).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].shard_id, "shard-0");
    assert_eq!(listed[0].owner, Some(a));
    assert_eq!(listed[0].token, lease.token);
    assert_eq!(listed[0].progress, Progress::None);
}

/// Another worker is held off while the lease lives, takes it over from the checkpoint once it
/// expired, and the stale holder can no longer write, renew, finish or release.
pub async fn a_held_lease_is_refused_then_taken_over_after_expiry(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let (old, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    let position = Position::within(
        "49590338271490256608559692538361571095921575989136588898",
        4,
    );
    store_a
        .checkpoint(&old, &position)
        .await
        .expect("owner writes");
    assert_eq!(
        store_b.claim(&stream, "shard-0", &b).await.expect("claim"),
        Claim::HeldBy { owner: a.clone() }
    );
    tokio::time::sleep(EXPIRED).await;
    let (new, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert!(
        new.token > old.token,
        "{:?} after {:?}",
        new.token,
        old.token
    );
    assert_eq!(progress, Progress::At(position.clone()));
    let later = Position::after("49590338271490256608559692538361571095921575989136588899");
    for result in [
        store_a.checkpoint(&old, &later).await,
        store_a.renew(&old).await,
        store_a.mark_shard_end(&old).await,
        store_a.release(&old).await,
    ] {
        assert_not_owned(result, &a, Some(&b));
    }
    assert_eq!(
        store_b
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::At(position),
        "the stale holder moved the checkpoint"
    );
    store_b
        .checkpoint(&new, &later)
        .await
        .expect("new owner writes");
}

/// Renewing every heartbeat keeps a lease for as long as the holder likes.
pub async fn a_renewed_lease_is_never_taken(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let (lease, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    let until = tokio::time::Instant::now() + CONTRACT_TIMING.session_timeout() * 3;
    while tokio::time::Instant::now() < until {
        store_a.renew(&lease).await.expect("renew");
        assert_eq!(
            store_b.claim(&stream, "shard-0", &b).await.expect("claim"),
            Claim::HeldBy { owner: a.clone() }
        );
        tokio::time::sleep(CONTRACT_TIMING.heartbeat_frequency()).await;
    }
    store_a
        .checkpoint(&lease, &Position::after("7"))
        .await
        .expect("still the owner");
}

/// A worker claiming its own lease again gets a new token; the old one is fenced.
pub async fn reclaiming_fences_the_previous_claim(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let a = WorkerId::new("a");
    let (first, _) = acquire(&*store, &stream, "shard-0", &a).await;
    let (second, _) = acquire(&*store, &stream, "shard-0", &a).await;
    assert!(second.token > first.token);
    assert_not_owned(
        store.checkpoint(&first, &Position::after("1")).await,
        &a,
        Some(&a),
    );
    store
        .checkpoint(&second, &Position::after("1"))
        .await
        .expect("current claim");
}

/// Older or equal positions leave the checkpoint alone; sequence numbers compare as numbers;
/// a whole record is after every sub-record of it.
pub async fn checkpoints_only_move_forward(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let (lease, _) = acquire(&*store, &stream, "shard-0", &WorkerId::new("a")).await;
    let progress = || async { store.progress(&stream, "shard-0").await.expect("progress") };
    for (write, expect) in [
        (Position::after("9"), Position::after("9")),
        (Position::within("10", 3), Position::within("10", 3)),
        (Position::after("9"), Position::within("10", 3)),
        (Position::within("10", 1), Position::within("10", 3)),
        (Position::within("10", 3), Position::within("10", 3)),
        (Position::after("10"), Position::after("10")),
        (Position::within("10", 9), Position::after("10")),
        (Position::after("0010"), Position::after("10")),
        (Position::after("100"), Position::after("100")),
    ] {
        store
            .checkpoint(&lease, &write)
            .await
            .expect("owner writes");
        let now = progress().await;
        let Progress::At(at) = &now else {
            panic!("after writing {write}: {now:?}");
        };
        assert_eq!(numeric(at), numeric(&expect), "after writing {write}");
    }
}

/// Equal as positions (leading zeros aside).
fn numeric(position: &Position) -> (String, Option<u64>) {
    let digits = position.sequence_number.trim_start_matches('0');
    (digits.to_owned(), position.sub_sequence)
}

/// Release keeps the progress and frees the lease at once; the releaser is fenced.
pub async fn a_released_lease_is_free_at_once_and_keeps_progress(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let (lease_a, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    store_a
        .checkpoint(&lease_a, &Position::after("500"))
        .await
        .expect("write");
    store_a.release(&lease_a).await.expect("release");
    let listed = store_a.list(&stream).await.expect("list");
    assert_eq!(listed[0].owner, None, "released");
    let (lease_b, progress) = acquire(&*store_b, &stream, "shard-0", &b).await;
    assert_eq!(progress, Progress::At(Position::after("500")));
    assert!(lease_b.token > lease_a.token);
    assert_not_owned(
        store_a.checkpoint(&lease_a, &Position::after("600")).await,
        &a,
        Some(&b),
    );
    assert_not_owned(store_a.release(&lease_a).await, &a, Some(&b));
    store_b.release(&lease_b).await.expect("release");
    assert_not_owned(store_b.renew(&lease_b).await, &b, None);
}

/// SHARD_END cannot be undone and makes the shard unclaimable.
pub async fn shard_end_is_final(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let (lease, _) = acquire(&*store_a, &stream, "shard-0", &a).await;
    store_a
        .checkpoint(&lease, &Position::after("5"))
        .await
        .expect("write");
    store_a.mark_shard_end(&lease).await.expect("end");
    // A late checkpoint of the same holder cannot move an ended shard back.
    let _ = store_a.checkpoint(&lease, &Position::after("9")).await;
    assert_eq!(
        store_a
            .progress(&stream, "shard-0")
            .await
            .expect("progress"),
        Progress::ShardEnd
    );
    store_a.release(&lease).await.expect("release");
    for (store, worker) in [(&store_a, &a), (&store_b, &b)] {
        assert_eq!(
            store
                .claim(&stream, "shard-0", worker)
                .await
                .expect("claim"),
            Claim::Finished
        );
    }
    let listed = store_b.list(&stream).await.expect("list");
    assert_eq!(listed[0].progress, Progress::ShardEnd);
    assert_eq!(listed[0].owner, None);
}

/// A forged or released lease cannot write.
pub async fn writes_without_a_claim_are_refused(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let forged = Lease {
        stream: stream.as_str().into(),
        shard_id: "shard-9".into(),
        owner: WorkerId::new("a"),
        token: FencingToken(1),
    };
    assert_refused(store.checkpoint(&forged, &Position::after("1")).await);
    assert_refused(store.renew(&forged).await);
    assert_refused(store.mark_shard_end(&forged).await);
    assert_refused(store.release(&forged).await);
    assert_eq!(
        store.progress(&stream, "shard-9").await.expect("progress"),
        Progress::None
    );
    // A forged token on a real lease is refused too.
    let (lease, _) = acquire(&*store, &stream, "shard-9", &WorkerId::new("a")).await;
    let wrong = Lease {
        token: FencingToken(lease.token.0 + 100),
        ..lease.clone()
    };
    assert_refused(store.checkpoint(&wrong, &Position::after("1")).await);
    store.release(&lease).await.expect("release");
    assert_not_owned(
        store.checkpoint(&lease, &Position::after("1")).await,
        &WorkerId::new("a"),
        None,
    );
}

/// The same shard id in another stream, or in another application, is another lease.
pub async fn streams_and_apps_do_not_collide(open: OpenStore) {
    let (app1, app1_again, app2) = (
        open("app-one").await,
        open("app-one").await,
        open("app-two").await,
    );
    let (stream_x, stream_y) = (stream(), stream());
    let (a, b) = (WorkerId::new("a"), WorkerId::new("b"));
    let (x, _) = acquire(&*app1, &stream_x, "shard-0", &a).await;
    app1.checkpoint(&x, &Position::after("11"))
        .await
        .expect("write");
    // Same application, other stream: free.
    let (y, progress) = acquire(&*app1_again, &stream_y, "shard-0", &b).await;
    assert_eq!(progress, Progress::None);
    app1_again.mark_shard_end(&y).await.expect("end");
    // Other application, same stream: free, and its progress is its own.
    let (other, progress) = acquire(&*app2, &stream_x, "shard-0", &b).await;
    assert_eq!(progress, Progress::None);
    app2.checkpoint(&other, &Position::after("3"))
        .await
        .expect("write");
    assert_eq!(
        app1.progress(&stream_x, "shard-0").await.expect("progress"),
        Progress::At(Position::after("11"))
    );
    assert_eq!(
        app2.progress(&stream_x, "shard-0").await.expect("progress"),
        Progress::At(Position::after("3"))
    );
    assert_eq!(app1.list(&stream_x).await.expect("list").len(), 1);
    app1.heartbeat(&stream_x, &a).await.expect("heartbeat");
    assert!(app2.live_workers(&stream_x).await.expect("live").is_empty());
    assert!(app1.live_workers(&stream_y).await.expect("live").is_empty());
}

/// Heartbeats register workers; leaving or going silent for a session timeout removes them.
pub async fn live_workers_follow_heartbeats(open: OpenStore) {
    let (store_a, store_b) = (open("app").await, open("app").await);
    let stream = stream();
    let (a, b, c) = (WorkerId::new("a"), WorkerId::new("b"), WorkerId::new("c"));
    store_a.heartbeat(&stream, &a).await.expect("heartbeat");
    store_b.heartbeat(&stream, &b).await.expect("heartbeat");
    store_b.heartbeat(&stream, &c).await.expect("heartbeat");
    assert_eq!(
        store_a.live_workers(&stream).await.expect("live"),
        vec![a.clone(), b.clone(), c.clone()]
    );
    store_a.leave(&stream, &a).await.expect("leave");
    assert_eq!(
        store_b.live_workers(&stream).await.expect("live"),
        vec![b.clone(), c.clone()]
    );
    // b keeps beating, c goes silent.
    let until = tokio::time::Instant::now() + EXPIRED;
    while tokio::time::Instant::now() < until {
        store_b.heartbeat(&stream, &b).await.expect("heartbeat");
        let _ = store_a.live_workers(&stream).await.expect("live");
        tokio::time::sleep(CONTRACT_TIMING.heartbeat_frequency()).await;
    }
    store_b.heartbeat(&stream, &b).await.expect("heartbeat");
    assert_eq!(store_a.live_workers(&stream).await.expect("live"), vec![b]);
}

/// Of many workers claiming one free shard at once, exactly one gets it.
pub async fn concurrent_claims_have_one_winner(open: OpenStore) {
    let stream = stream();
    let mut claims = Vec::new();
    for i in 0..8 {
        let store = open("app").await;
        let stream = stream.clone();
        claims.push(tokio::spawn(async move {
            store
                .claim(&stream, "shard-0", &WorkerId::new(format!("w{i}")))
                .await
        }));
    }
    let mut won = 0;
    for claim in claims {
        match claim.await.expect("task").expect("claim") {
            Claim::Acquired { .. } => won += 1,
            Claim::HeldBy { .. } => {}
            Claim::Finished => panic!("not finished"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
}

/// `list` returns one entry per shard of the stream, sorted, with owners, tokens and progress.
pub async fn list_reports_every_shard_sorted(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let a = WorkerId::new("a");
    let shards = [
        "shardId-000000000010",
        "shardId-000000000002",
        "shardId-000000000001",
    ];
    let mut leases = Vec::new();
    for shard in shards {
        leases.push(acquire(&*store, &stream, shard, &a).await.0);
    }
    store
        .checkpoint(&leases[0], &Position::after("77"))
        .await
        .expect("write");
    store.release(&leases[1]).await.expect("release");
    let listed = store.list(&stream).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|l| l.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000010"
        ]
    );
    assert_eq!(listed[0].owner, Some(a.clone()));
    assert_eq!(listed[1].owner, None);
    assert_eq!(listed[2].progress, Progress::At(Position::after("77")));
    assert_eq!(listed[2].token, leases[0].token);
}

/// A checkpoint whose sequence number is not a decimal number (an endpoint answered garbage) is
/// refused before anything is written: the entry keeps its progress and stays readable.
pub async fn a_position_that_is_no_sequence_number_is_refused(open: OpenStore) {
    let store = open("app").await;
    let stream = stream();
    let (lease, _) = acquire(&*store, &stream, "shard-0", &WorkerId::new("a")).await;
    store
        .checkpoint(&lease, &Position::after("5"))
        .await
        .expect("checkpoint");
    for bad in ["12x4", "", "-3", "1e9"] {
        let refused = store.checkpoint(&lease, &Position::within(bad, 1)).await;
        assert!(refused.is_err(), "{bad:?} was written: {refused:?}");
    }
    assert_eq!(
        store
            .progress(&stream, "shard-0")
            .await
            .expect("still readable"),
        Progress::At(Position::after("5"))
    );
    store.renew(&lease).await.expect("the lease is intact");
    let listed = store.list(&stream).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
}
