use std::sync::Arc;

use super::*;

const SESSION: Duration = Duration::from_secs(40);
const HEARTBEAT: Duration = Duration::from_secs(10);

fn timing() -> Timing {
    Timing {
        session_timeout: SESSION,
        heartbeat: HEARTBEAT,
    }
}

fn shard(id: &str, parents: &[&str], closed: bool) -> Shard {
    Shard {
        shard_id: id.into(),
        parent_shard_id: parents.first().map(|p| (*p).into()),
        adjacent_parent_shard_id: parents.get(1).map(|p| (*p).into()),
        starting_hash_key: 0,
        ending_hash_key: u128::MAX,
        starting_sequence_number: "1".into(),
        ending_sequence_number: closed.then(|| "9".into()),
    }
}

fn me() -> WorkerId {
    WorkerId::new("me")
}

fn lease(id: &str, token: u64) -> Lease {
    Lease {
        stream: Arc::from("s"),
        shard_id: id.into(),
        owner: me(),
        token: FencingToken(token),
    }
}

/// A table of `shards`, alone in its group (its share is every readable shard).
fn table(shards: Vec<Shard>) -> ShardTable<&'static str> {
    let mut t = ShardTable::new(timing(), None);
    t.listed(shards, Instant::now());
    t
}

/// Claims everything claimable and starts reading it with token `token`.
fn claim_all(t: &mut ShardTable<&'static str>, now: Instant, token: u64) -> Vec<String> {
    let claims = t.next_claims(now, false);
    for id in &claims {
        assert!(t.reading(id, lease(id, token), now, "reader"));
    }
    claims
}

fn phases(t: &ShardTable<&'static str>, ids: &[&str]) -> Vec<Phase> {
    ids.iter().map(|id| t.phase(id).expect("known")).collect()
}

#[test]
fn a_shard_goes_from_waiting_through_claiming_and_reading_to_ended() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false)]);
    assert_eq!(t.phase("a"), Some(Phase::Waiting));
    assert_eq!(t.next_claims(now, false), ["a"]);
    assert_eq!(t.phase("a"), Some(Phase::Claiming));
    assert!(
        t.next_claims(now, false).is_empty(),
        "a claim is not sent twice"
    );
    assert!(t.reading("a", lease("a", 1), now, "reader"));
    assert_eq!(t.phase("a"), Some(Phase::Reading));
    assert_eq!(t.working(), 1);
    let applied = t.reader_ended(
        "a",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    assert!(matches!(
        applied,
        Applied::Changed {
            new_children: false
        }
    ));
    assert_eq!(t.phase("a"), Some(Phase::Draining));
    assert!(
        t.due(now, |_| 3, |_| true).is_empty(),
        "records outstanding"
    );
    assert_eq!(t.due(now, |_| 0, |_| true), [Due::ShardEnd("a".into())]);
    assert!(t.shard_ended("a", FencingToken(1)).is_some());
    assert_eq!(t.phase("a"), Some(Phase::Ended));
    assert_eq!(t.working(), 0);
}

#[test]
fn refused_and_failed_claims_wait_again_and_finished_ones_end() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    assert_eq!(t.next_claims(now, false), ["a", "b"]);
    t.claim_failed("a");
    t.claim_finished("b");
    assert_eq!(phases(&t, &["a", "b"]), [Phase::Waiting, Phase::Ended]);
    assert!(
        !t.reading("b", lease("b", 1), now, "reader"),
        "not claiming"
    );
    assert_eq!(t.phase("b"), Some(Phase::Ended));
}

#[test]
fn a_claim_the_store_cannot_answer_is_tried_again_after_a_doubling_backoff() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    assert_eq!(t.next_claims(now, false), ["a", "b"]);
    t.claim_errored("a", now);
    t.claim_failed("b");
    assert_eq!(t.phase("a"), Some(Phase::Waiting));
    // A heartbeat before "a" is claimed again; "b" (held elsewhere) is tried at once.
    assert_eq!(t.next_claims(now + HEARTBEAT / 2, false), ["b"]);
    t.claim_failed("b");
    assert_eq!(t.next_claims(now + HEARTBEAT, false), ["a", "b"]);
    // Failing again waits twice as long.
    let again = now + HEARTBEAT;
    t.claim_errored("a", again);
    t.claim_failed("b");
    assert_eq!(t.next_claims(again + HEARTBEAT, false), ["b"]);
    t.claim_failed("b");
    assert_eq!(t.next_claims(again + HEARTBEAT * 2, false), ["a", "b"]);
    // Acquired at last: the backoff starts over.
    assert!(t.reading("a", lease("a", 1), again, "reader"));
    assert_eq!(t.entries["a"].claim_errors, 0);
    assert_eq!(t.entries["a"].claim_again_at, None);
}

#[test]
fn a_read_error_stops_the_shard_and_its_children_wait() {
    let now = Instant::now();
    let mut t = table(vec![shard("p", &[], true), shard("c", &["p"], false)]);
    assert_eq!(
        claim_all(&mut t, now, 1),
        ["p"],
        "the child waits for its parent"
    );
    t.reader_ended("p", FencingToken(1), ReaderEnd::Stopped, now);
    assert_eq!(t.phase("p"), Some(Phase::Stopped));
    assert!(
        t.next_claims(now, false).is_empty(),
        "a stopped parent never ended"
    );
    assert_eq!(t.working(), 1, "a stopped shard keeps its lease and counts");
}

#[tokio::test(start_paused = true)]
async fn a_stopped_shard_is_handed_off_after_a_doubling_backoff() {
    let mut t = table(vec![shard("a", &[], false)]);
    for (stops, backoff) in [
        (0, HEARTBEAT),
        (1, HEARTBEAT * 2),
        (2, HEARTBEAT * 4),
        (3, HEARTBEAT * 8),
        (5, MAX_STOPPED),
    ] {
        let token = stops + 1;
        claim_all(&mut t, Instant::now(), token);
        t.entries.get_mut("a").expect("known").stops = u32::try_from(stops).expect("small");
        t.reader_ended("a", FencingToken(token), ReaderEnd::Stopped, Instant::now());
        tokio::time::advance(backoff - Duration::from_millis(1)).await;
        assert!(t.retry_stopped(Instant::now()).is_empty(), "{stops} stops");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(t.retry_stopped(Instant::now()), ["a"], "{stops} stops");
        assert_eq!(t.phase("a"), Some(Phase::HandingOff));
        // Released once its handed-out records are acknowledged: claimable again.
        assert_eq!(
            t.due(Instant::now(), |_| 0, |_| true),
            [Due::Release("a".into())]
        );
        assert!(t.released("a", FencingToken(token)).is_some());
        assert_eq!(t.phase("a"), Some(Phase::Waiting));
    }
    // Read to its end once, its stops are forgotten.
    claim_all(&mut t, Instant::now(), 9);
    t.reader_ended(
        "a",
        FencingToken(9),
        ReaderEnd::Ended { children: vec![] },
        Instant::now(),
    );
    assert_eq!(t.entries.get("a").map(|e| e.stops), Some(0));
}

#[test]
fn split_children_start_once_their_parent_ended() {
    let now = Instant::now();
    let mut t = table(vec![
        shard("p", &[], true),
        shard("c1", &["p"], false),
        shard("c2", &["p"], false),
    ]);
    assert_eq!(claim_all(&mut t, now, 1), ["p"]);
    assert!(!t.can_start("c1"));
    t.reader_ended(
        "p",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    assert!(
        !t.can_start("c1") && !t.can_start("c2"),
        "drained is not ended: SHARD_END is not recorded yet"
    );
    assert!(t.next_claims(now, false).is_empty());
    assert!(t.shard_ended("p", FencingToken(1)).is_some());
    assert!(t.can_start("c1") && t.can_start("c2"));
    assert_eq!(claim_all(&mut t, now, 1), ["c1", "c2"]);
}

#[test]
fn a_merge_child_waits_for_both_parents() {
    let now = Instant::now();
    let mut t = table(vec![
        shard("p1", &[], true),
        shard("p2", &[], true),
        shard("m", &["p1", "p2"], false),
    ]);
    assert_eq!(claim_all(&mut t, now, 1), ["p1", "p2"]);
    t.reader_ended(
        "p1",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    assert!(t.shard_ended("p1", FencingToken(1)).is_some());
    assert!(!t.can_start("m"), "one parent ended");
    assert!(t.next_claims(now, false).is_empty());
    t.reader_ended(
        "p2",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    assert!(t.next_claims(now, false).is_empty(), "the other drained");
    assert!(t.shard_ended("p2", FencingToken(1)).is_some());
    assert_eq!(t.next_claims(now, false), ["m"]);
}

#[test]
fn children_named_at_a_shards_end_are_added() {
    let now = Instant::now();
    let mut t = table(vec![shard("p", &[], false)]);
    claim_all(&mut t, now, 1);
    let applied = t.reader_ended(
        "p",
        FencingToken(1),
        ReaderEnd::Ended {
            children: vec![shard("c", &["p"], false)],
        },
        now,
    );
    assert!(matches!(applied, Applied::Changed { new_children: true }));
    assert!(t.shard_ended("p", FencingToken(1)).is_some());
    assert_eq!(t.next_claims(now, false), ["c"]);
}

#[test]
fn a_trimmed_parent_does_not_block_and_a_closed_parent_gone_counts_as_ended() {
    let now = Instant::now();
    // "gone" left the listing (past retention): its child starts at once.
    let t = table(vec![shard("c", &["gone"], false)]);
    assert!(t.can_start("c"));
    // A listed, closed parent whose records answer ResourceNotFound: ended, children go.
    let mut t = table(vec![shard("p", &[], true), shard("c", &["p"], false)]);
    claim_all(&mut t, now, 1);
    t.reader_ended("p", FencingToken(1), ReaderEnd::Gone, now);
    assert_eq!(t.phase("p"), Some(Phase::Draining));
    assert!(t.shard_ended("p", FencingToken(1)).is_some());
    assert_eq!(t.next_claims(now, false), ["c"]);
    // An open shard that is gone is stopped instead: it may have more to give.
    let mut t = table(vec![shard("o", &[], false), shard("k", &["o"], false)]);
    claim_all(&mut t, now, 1);
    t.reader_ended("o", FencingToken(1), ReaderEnd::Gone, now);
    assert_eq!(t.phase("o"), Some(Phase::Stopped));
    assert!(!t.can_start("k"));
}

#[test]
fn a_stale_readers_outcome_changes_nothing() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], true), shard("c", &["a"], false)]);
    claim_all(&mut t, now, 1);
    // The lease is lost, then claimed again under token 2.
    assert!(t.lost("a", FencingToken(1)).is_some());
    assert_eq!(t.next_claims(now, false), ["a"]);
    assert!(t.reading("a", lease("a", 2), now, "second reader"));
    // The first reader's end arrives late: ignored, whatever it says.
    for end in [
        ReaderEnd::Ended { children: vec![] },
        ReaderEnd::Stopped,
        ReaderEnd::Gone,
        ReaderEnd::Panicked("boom".into()),
    ] {
        assert!(matches!(
            t.reader_ended("a", FencingToken(1), end, now),
            Applied::Nothing
        ));
        assert_eq!(t.phase("a"), Some(Phase::Reading));
    }
    assert_eq!(t.held("a").map(|h| h.handle), Some("second reader"));
    assert!(
        !t.renewed("a", FencingToken(1), now),
        "nor does a stale renewal"
    );
    assert!(t.lost("a", FencingToken(1)).is_none(), "nor a stale loss");
    assert!(t.shard_ended("a", FencingToken(1)).is_none());
    assert!(!t.can_start("c"));
}

#[test]
fn a_cancelled_reader_leaves_the_state_alone() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false)]);
    claim_all(&mut t, now, 1);
    t.reader_ended("a", FencingToken(1), ReaderEnd::Cancelled, now);
    assert_eq!(t.phase("a"), Some(Phase::Reading));
}

#[test]
fn the_share_is_split_among_live_workers_and_the_excess_handed_off() {
    let now = Instant::now();
    let ids = ["s0", "s1", "s2", "s3", "s4"];
    let mut t = table(ids.iter().map(|id| shard(id, &[], false)).collect());
    assert_eq!(claim_all(&mut t, now, 1).len(), 5, "alone: every shard");
    let live = [me(), WorkerId::new("other")];
    // 5 over 2 workers: "me" sorts first and gets the extra one.
    let shed = t.rebalance(&me(), &live, now);
    assert_eq!(t.target(), 3);
    assert_eq!(shed, ["s3", "s4"]);
    assert_eq!(
        phases(&t, &ids),
        [
            Phase::Reading,
            Phase::Reading,
            Phase::Reading,
            Phase::HandingOff,
            Phase::HandingOff
        ]
    );
    assert_eq!(t.working(), 3);
    assert!(t.next_claims(now, false).is_empty(), "at its share");
    // A handed-off shard is released once its records are acknowledged.
    assert_eq!(
        t.due(now, |_| 0, |_| true),
        [Due::Release("s3".into()), Due::Release("s4".into())]
    );
    assert!(t.released("s3", FencingToken(1)).is_some());
    assert_eq!(t.phase("s3"), Some(Phase::Waiting));
}

#[tokio::test(start_paused = true)]
async fn a_hand_off_waits_for_acknowledgements_up_to_its_grace_period() {
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    claim_all(&mut t, Instant::now(), 1);
    t.rebalance(&me(), &[me(), WorkerId::new("x")], Instant::now());
    assert_eq!(t.phase("b"), Some(Phase::HandingOff));
    assert!(t.due(Instant::now(), |_| 0, |_| false).is_empty());
    tokio::time::advance(HEARTBEAT / 2 - Duration::from_millis(1)).await;
    assert!(t.due(Instant::now(), |_| 0, |_| false).is_empty());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        t.due(Instant::now(), |_| 0, |_| false),
        [Due::Release("b".into())]
    );
}

#[test]
fn a_worker_below_its_share_claims_only_up_to_it() {
    let now = Instant::now();
    let ids = ["s0", "s1", "s2", "s3"];
    let mut t = table(ids.iter().map(|id| shard(id, &[], false)).collect());
    t.rebalance(&me(), &[me(), WorkerId::new("x")], now);
    assert_eq!(t.target(), 2);
    assert_eq!(t.next_claims(now, false), ["s0", "s1"]);
    assert!(!t.wants_more(), "claims on their way count");
    t.claim_failed("s0");
    assert!(t.wants_more());
}

#[test]
fn claims_between_heartbeats_skip_shards_held_elsewhere() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    let group = [GroupEntry {
        shard_id: "a".into(),
        owner: Some(WorkerId::new("x")),
        finished: false,
    }];
    t.observe_group(&group, &me(), now);
    assert_eq!(t.next_claims(now, true), ["b"]);
}

#[test]
fn a_shard_finished_elsewhere_ends_here() {
    let now = Instant::now();
    let mut t = table(vec![shard("p", &[], true), shard("c", &["p"], false)]);
    let group = [GroupEntry {
        shard_id: "p".into(),
        owner: None,
        finished: true,
    }];
    t.observe_group(&group, &me(), now);
    assert_eq!(t.phase("p"), Some(Phase::Ended));
    assert_eq!(t.next_claims(now, false), ["c"]);
}

#[tokio::test(start_paused = true)]
async fn a_shard_nobody_claims_for_too_long_is_claimed_above_the_share() {
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    let other = WorkerId::new("x");
    t.rebalance(&me(), &[me(), other.clone()], Instant::now());
    assert_eq!(claim_all(&mut t, Instant::now(), 1), ["a"]);
    // "b" is free, yet the other worker (below its share) does not claim it: it gave it up.
    let free = [GroupEntry {
        shard_id: "b".into(),
        owner: None,
        finished: false,
    }];
    t.observe_group(&free, &me(), Instant::now());
    tokio::time::advance(SESSION + HEARTBEAT * 2 - Duration::from_millis(1)).await;
    t.observe_group(&free, &me(), Instant::now());
    assert!(t.next_claims(Instant::now(), true).is_empty(), "not yet");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(t.next_claims(Instant::now(), true), ["b"]);
    assert!(t.reading("b", lease("b", 1), Instant::now(), "extra"));
    assert_eq!(t.working(), 2);
    // Above the share, the extra is handed off last: "a" goes (the other worker, below its
    // share, takes it), "b" (which the other worker gave up) stays read here.
    assert_eq!(
        t.rebalance(&me(), &[me(), other.clone()], Instant::now()),
        ["a"]
    );
    assert_eq!(phases(&t, &["a", "b"]), [Phase::HandingOff, Phase::Reading]);
    // The extra kept fills the share: "a", once released, is not claimed back here.
    assert!(t.released("a", FencingToken(1)).is_some());
    assert!(
        t.next_claims(Instant::now(), false).is_empty(),
        "no churn: the shard handed off stays for the other worker"
    );
    // Extras beyond the share itself are handed off too.
    let mut t = table(vec![shard("x", &[], false), shard("y", &[], false)]);
    let third = WorkerId::new("y-worker");
    t.rebalance(&me(), &[me(), other.clone(), third.clone()], Instant::now());
    assert_eq!(t.target(), 1);
    for id in ["x", "y"] {
        t.entries.get_mut(id).expect("known").state = State::Claiming { extra: true };
        assert!(t.reading(id, lease(id, 1), Instant::now(), "extra"));
    }
    assert_eq!(
        t.rebalance(&me(), &[me(), other, third], Instant::now()),
        ["y"]
    );
}

#[test]
fn max_readers_caps_claims_of_every_kind() {
    let now = Instant::now();
    let mut t: ShardTable<&str> = ShardTable::new(timing(), Some(1));
    t.listed(vec![shard("a", &[], false), shard("b", &[], false)], now);
    assert_eq!(t.next_claims(now, false), ["a"]);
    t.rebalance(&me(), &[me()], now);
    assert_eq!(t.target(), 1);
    assert!(t.next_claims(now + SESSION * 10, false).is_empty());
}

#[tokio::test(start_paused = true)]
async fn leases_that_would_expire_before_the_next_renewal_are_given_up() {
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    let sent = Instant::now();
    claim_all(&mut t, sent, 1);
    tokio::time::advance(HEARTBEAT).await;
    assert!(t.renewed("a", FencingToken(1), Instant::now()));
    assert!(t.expiring(Instant::now()).is_empty());
    // "b" was never renewed: one heartbeat before its session ends it is given up.
    tokio::time::advance(SESSION - HEARTBEAT * 2 - Duration::from_millis(1)).await;
    assert!(t.expiring(Instant::now()).is_empty());
    tokio::time::advance(Duration::from_millis(1)).await;
    let expired = t.expiring(Instant::now());
    assert_eq!(
        expired
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(phases(&t, &["a", "b"]), [Phase::Reading, Phase::Waiting]);
    assert!(
        t.held("a")
            .is_some_and(|h| h.until == sent + HEARTBEAT + SESSION)
    );
}

#[test]
fn a_lost_lease_waits_again_from_every_holding_state() {
    let now = Instant::now();
    let ids = ["a-reading", "b-draining", "c-stopped", "d-handing-off"];
    let mut t = table(ids.iter().map(|id| shard(id, &[], false)).collect());
    claim_all(&mut t, now, 1);
    t.reader_ended(
        "b-draining",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    t.reader_ended("c-stopped", FencingToken(1), ReaderEnd::Stopped, now);
    // Three readable shards over two workers: two are ours, the last one is handed off.
    t.rebalance(&me(), &[me(), WorkerId::new("z")], now);
    assert_eq!(
        phases(&t, &ids),
        [
            Phase::Reading,
            Phase::Draining,
            Phase::Stopped,
            Phase::HandingOff
        ]
    );
    for id in ids {
        assert!(t.lost(id, FencingToken(1)).is_some(), "{id}");
        assert_eq!(t.phase(id), Some(Phase::Waiting), "{id}");
    }
}

#[test]
fn a_panicked_reader_hands_its_lease_off_and_is_never_claimed_here_again() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    claim_all(&mut t, now, 1);
    assert!(matches!(
        t.reader_ended(
            "a",
            FencingToken(1),
            ReaderEnd::Panicked("boom".into()),
            now
        ),
        Applied::GivingUp
    ));
    assert_eq!(t.phase("a"), Some(Phase::HandingOff));
    assert_eq!(t.due(now, |_| 0, |_| true), [Due::Release("a".into())]);
    assert!(t.released("a", FencingToken(1)).is_some());
    assert_eq!(t.phase("a"), Some(Phase::GivenUp));
    assert!(t.next_claims(now + SESSION * 10, false).is_empty());
    // Read to its end by the worker that took it: it ends here too.
    let group = [GroupEntry {
        shard_id: "a".into(),
        owner: None,
        finished: true,
    }];
    t.observe_group(&group, &me(), now);
    assert_eq!(t.phase("a"), Some(Phase::Ended));
}

#[test]
fn a_given_up_lease_lost_before_its_release_stays_given_up() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false)]);
    claim_all(&mut t, now, 1);
    t.reader_ended(
        "a",
        FencingToken(1),
        ReaderEnd::Panicked("boom".into()),
        now,
    );
    assert!(t.lost("a", FencingToken(1)).is_some());
    assert_eq!(t.phase("a"), Some(Phase::GivenUp));
}

#[test]
fn listings_add_update_and_prune_shards_not_held() {
    let now = Instant::now();
    let mut t = table(vec![
        shard("old", &[], true),
        shard("held", &[], true),
        shard("c", &["old"], false),
    ]);
    assert_eq!(t.next_claims(now, false), ["held", "old"]);
    assert!(t.reading("held", lease("held", 1), now, "reader"));
    assert!(t.reading("old", lease("old", 1), now, "reader"));
    t.reader_ended(
        "old",
        FencingToken(1),
        ReaderEnd::Ended { children: vec![] },
        now,
    );
    t.shard_ended("old", FencingToken(1));
    // "old" and "held" left the listing (trimmed); a new shard appeared.
    let merged = t.listed(
        vec![shard("c", &["old"], false), shard("n", &["c"], false)],
        Instant::now(),
    );
    assert_eq!(merged.pruned, ["old"], "a held shard is kept until let go");
    assert!(merged.new_children);
    assert_eq!(t.phase("old"), None);
    assert_eq!(t.phase("held"), Some(Phase::Reading));
    assert!(t.can_start("c"), "a pruned parent does not block");
    assert!(!t.can_start("n"));
    assert_eq!(t.shards().len(), 3);
}

#[test]
fn a_listing_updates_a_child_known_from_child_shards() {
    let now = Instant::now();
    let mut t = table(vec![shard("p", &[], false)]);
    claim_all(&mut t, now, 1);
    let mut announced = shard("c", &["p"], false);
    announced.starting_sequence_number = "".into();
    t.reader_ended(
        "p",
        FencingToken(1),
        ReaderEnd::Ended {
            children: vec![announced],
        },
        now,
    );
    t.listed(vec![shard("p", &[], true), shard("c", &["p"], false)], now);
    assert_eq!(
        t.shard("c").map(|s| s.starting_sequence_number.as_str()),
        Some("1")
    );
    assert_eq!(t.phase("p"), Some(Phase::Draining));
}

#[test]
fn shutdown_takes_every_held_lease() {
    let now = Instant::now();
    let mut t = table(vec![shard("a", &[], false), shard("b", &[], false)]);
    claim_all(&mut t, now, 1);
    t.reader_ended("b", FencingToken(1), ReaderEnd::Stopped, now);
    let taken: Vec<String> = t.take_all().into_iter().map(|(id, _)| id).collect();
    assert_eq!(taken, ["a", "b"]);
    assert_eq!(t.leases().count(), 0);
}

#[test]
fn a_listing_sent_before_a_child_was_announced_does_not_forget_it() {
    let sent = Instant::now();
    let mut t = table(vec![shard("p", &[], false)]);
    let now = sent + Duration::from_millis(1);
    claim_all(&mut t, now, 1);
    t.reader_ended(
        "p",
        FencingToken(1),
        ReaderEnd::Ended {
            children: vec![shard("c", &["p"], false)],
        },
        now,
    );
    // The listing left before "c" was announced, so it shows "p" alone.
    let merged = t.listed(vec![shard("p", &[], true)], sent);
    assert!(merged.pruned.is_empty(), "{:?}", merged.pruned);
    assert_eq!(t.phase("c"), Some(Phase::Waiting));
    // A listing sent after the announcement that still lacks "c" forgets it.
    let merged = t.listed(vec![shard("p", &[], true)], now + Duration::from_millis(1));
    assert_eq!(merged.pruned, ["c"]);
}
