//! The shared shard state and the user's ackers together.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::*;
use crate::checkpoint::Position;

fn pos(seq: u64) -> Position {
    Position::after(seq.to_string())
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[tokio::test(start_paused = true)]
async fn nothing_is_handed_out_once_the_lease_could_have_expired() {
    let lease_until = Instant::now() + Duration::from_secs(10);
    let shard = Arc::new(ShardAcks::new(
        AckTracker::default(),
        Arc::default(),
        100,
        lease_until,
    ));
    let ackers: Vec<Acker> = (1..=4)
        .map(|s| {
            Acker::new(
                shard.clone(),
                shard.lock().push(pos(s), false, Instant::now()),
            )
        })
        .collect();
    assert!(ackers[0].mark_handed_out());
    // A renewal extends the lease; an older answer arriving late does not shorten it.
    shard.extend_lease(lease_until + Duration::from_secs(5));
    shard.extend_lease(lease_until);
    tokio::time::advance(Duration::from_secs(12)).await;
    assert!(ackers[1].mark_handed_out(), "renewed until 15 s");
    tokio::time::advance(Duration::from_secs(3)).await;
    assert!(
        !ackers[2].mark_handed_out(),
        "the lease may be another's now"
    );
    assert!(shard.is_revoked());
    // Final: a renewal answered after that changes nothing, the gap stays unacknowledged.
    shard.extend_lease(Instant::now() + Duration::from_secs(60));
    assert!(!ackers[3].mark_handed_out());
    ackers[0].ack();
    ackers[1].ack();
    assert_eq!(shard.lock().to_write(), Some(&pos(2)));
}

#[tokio::test]
async fn ackers_wake_the_writer_after_enough_acks_and_track_hand_out() {
    let wake = Arc::new(Notify::new());
    let shard = Arc::new(ShardAcks::new(
        AckTracker::default(),
        wake.clone(),
        2,
        far(),
    ));
    let ackers: Vec<Acker> = (1..=3)
        .map(|s| {
            Acker::new(
                shard.clone(),
                shard.lock().push(pos(s), false, Instant::now()),
            )
        })
        .collect();
    assert!(shard.all_handed_out_acked());
    assert!(ackers[0].mark_handed_out());
    assert!(ackers[1].mark_handed_out());
    assert!(!shard.all_handed_out_acked());
    ackers[0].ack();
    ackers[1].ack();
    // Two acks reached the threshold: the writer is woken (the permit is stored).
    tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
        .await
        .expect("woken");
    assert!(shard.all_handed_out_acked());
    assert_eq!(shard.lock().outstanding(), 1);
}

#[test]
fn a_record_handed_back_is_neither_waited_for_nor_acknowledged() {
    let shard = Arc::new(ShardAcks::new(
        AckTracker::default(),
        Arc::default(),
        100,
        far(),
    ));
    let ackers: Vec<Acker> = (1..=3)
        .map(|s| {
            Acker::new(
                shard.clone(),
                shard.lock().push(pos(s), false, Instant::now()),
            )
        })
        .collect();
    assert!(ackers[0].mark_handed_out());
    assert!(ackers[1].mark_handed_out());
    ackers[0].ack();
    assert!(!shard.all_handed_out_acked());
    // Only the last one handed out, unacknowledged, can come back.
    assert!(!ackers[0].hand_back(), "acknowledged already");
    assert!(!shard.all_handed_out_acked());
    assert!(ackers[1].hand_back());
    assert!(
        shard.all_handed_out_acked(),
        "nothing handed out is unacked"
    );
    assert_eq!(shard.unacked_handed_out(), 0);
    assert_eq!(
        shard.lock().to_write(),
        Some(&pos(1)),
        "the checkpoint stops before it"
    );
    // A revoked shard stays revoked.
    assert!(ackers[1].mark_handed_out());
    shard.revoke();
    assert!(ackers[1].hand_back());
    assert!(shard.is_revoked());
    assert!(!ackers[2].mark_handed_out());
}

#[test]
fn a_revoked_shard_hands_out_nothing_more_and_its_acks_still_count() {
    let shard = Arc::new(ShardAcks::new(
        AckTracker::default(),
        Arc::default(),
        100,
        far(),
    ));
    let ackers: Vec<Acker> = (1..=3)
        .map(|s| {
            Acker::new(
                shard.clone(),
                shard.lock().push(pos(s), false, Instant::now()),
            )
        })
        .collect();
    assert!(ackers[0].mark_handed_out());
    shard.revoke();
    assert!(!ackers[1].mark_handed_out());
    assert!(!ackers[2].mark_handed_out());
    assert_eq!(shard.unacked_handed_out(), 1);
    assert!(!shard.all_handed_out_acked());
    ackers[0].ack();
    assert!(shard.all_handed_out_acked());
    assert_eq!(shard.lock().to_write(), Some(&pos(1)));
}

fn shard_of(records: u64) -> (Arc<ShardAcks>, Vec<Acker>) {
    let shard = Arc::new(ShardAcks::new(
        AckTracker::default(),
        Arc::default(),
        100,
        far(),
    ));
    let ackers = (1..=records)
        .map(|s| {
            let index = shard.lock().push(pos(s), false, Instant::now());
            Acker::new(shard.clone(), index)
        })
        .collect();
    (shard, ackers)
}

#[test]
fn a_nack_rewinds_to_the_acknowledged_prefix_and_stales_the_copies_read_before() {
    let (shard, ackers) = shard_of(4);
    for acker in &ackers[..3] {
        assert!(acker.mark_handed_out());
    }
    ackers[0].ack();
    ackers[2].ack(); // behind the gap at 1: read again too
    assert!(!ackers[0].nack(), "acknowledged already");
    assert!(shard.take_rewind().is_none(), "nothing asked");
    assert!(ackers[1].nack());
    assert!(
        !ackers[3].nack(),
        "a later record of the same rewind comes again anyway"
    );
    assert!(shard.rewind_asked());
    assert!(
        !ackers[3].mark_handed_out(),
        "refused from the nack on, before the rewind"
    );
    assert_eq!(
        shard.take_rewind(),
        Some(Some(pos(1))),
        "read on after record 1"
    );
    assert!(!shard.rewind_asked());
    assert_eq!(shard.take_rewind(), None, "once");
    // Nothing read before the rewind is outstanding, waited for, or handed out any more.
    assert_eq!(shard.lock().outstanding(), 0);
    assert!(shard.all_handed_out_acked());
    assert_eq!(shard.unacked_handed_out(), 0);
    assert!(
        !ackers[3].mark_handed_out(),
        "its copy read again is handed out instead"
    );
    assert!(!shard.is_revoked(), "the shard goes on");
    ackers[1].ack();
    assert_eq!(
        shard.lock().to_write(),
        Some(&pos(1)),
        "stale acks change nothing"
    );
    // The records read again count from where the old ones stopped.
    let again = shard.lock().push(pos(2), false, Instant::now());
    assert_eq!(again, 4);
    let again = Acker::new(shard.clone(), again);
    assert!(again.mark_handed_out());
    again.ack();
    assert_eq!(shard.lock().to_write(), Some(&pos(2)));
}

#[test]
fn a_nack_before_anything_was_acknowledged_rewinds_to_the_start() {
    let (shard, ackers) = shard_of(2);
    assert!(ackers[1].nack());
    assert_eq!(shard.take_rewind(), Some(None));
    // Resuming from a stored checkpoint, the prefix starts there.
    let resumed = Arc::new(ShardAcks::new(
        AckTracker::resuming(Some(pos(9))),
        Arc::default(),
        100,
        far(),
    ));
    let index = resumed.lock().push(pos(10), false, Instant::now());
    assert!(Acker::new(resumed.clone(), index).nack());
    assert_eq!(resumed.take_rewind(), Some(Some(pos(9))));
}

#[tokio::test(start_paused = true)]
async fn the_oldest_unacknowledged_record_is_warned_about_once() {
    let start = Instant::now();
    let (shard, ackers) = shard_of(2);
    assert_eq!(shard.lock().oldest_unacked(), Some((0, start)));
    assert_eq!(
        shard.stale_unacked(start - Duration::from_secs(1)),
        None,
        "not old yet"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(shard.stale_unacked(start), Some((0, start)));
    assert_eq!(shard.stale_unacked(start), None, "warned already");
    ackers[0].ack();
    assert_eq!(
        shard.stale_unacked(start),
        Some((1, start)),
        "the next one is stuck too"
    );
    ackers[1].ack();
    assert_eq!(shard.lock().oldest_unacked(), None);
    assert_eq!(shard.stale_unacked(Instant::now()), None);
}

#[tokio::test(start_paused = true)]
async fn the_reader_waits_for_acknowledgements_or_a_rewind() {
    let (shard, ackers) = shard_of(3);
    let below = |limit: usize| move |t: &AckTracker| t.outstanding() < limit;
    // Done already: no wait.
    tokio::time::timeout(Duration::from_secs(1), shard.wait_until(below(4)))
        .await
        .expect("room already");
    let waiting = tokio::spawn({
        let shard = shard.clone();
        async move { shard.wait_until(below(2)).await }
    });
    tokio::task::yield_now().await;
    ackers[1].ack(); // behind the gap: the prefix does not grow, no room yet
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!waiting.is_finished());
    ackers[0].ack(); // 0 and 1 leave: one outstanding
    tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("woken by the acknowledgement")
        .expect("no panic");
    let waiting = tokio::spawn({
        let shard = shard.clone();
        async move { shard.wait_until(|t| t.outstanding() == 0).await }
    });
    tokio::task::yield_now().await;
    assert!(ackers[2].nack());
    tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("woken by the nack")
        .expect("no panic");
    assert_eq!(shard.take_rewind(), Some(Some(pos(2))));
}

#[test]
fn an_ack_of_a_nacked_record_before_the_rewind_changes_nothing() {
    // OnNextPoll: the user nacks the record, then polls, which acknowledges the record handed
    // out last — before the reader took the rewind.
    let (shard, ackers) = shard_of(3);
    assert!(ackers[0].mark_handed_out());
    ackers[0].ack();
    assert!(ackers[1].mark_handed_out());
    assert!(ackers[1].nack());
    ackers[1].ack();
    assert_eq!(
        shard.lock().to_write(),
        Some(&pos(1)),
        "the checkpoint stays before the nacked record"
    );
    assert_eq!(
        shard.take_rewind(),
        Some(Some(pos(1))),
        "reading goes on right after the acknowledged prefix: the nacked record comes again"
    );
}

#[test]
fn acks_of_copies_read_before_a_nack_never_pass_it() {
    // Explicit: records after the nacked one are acknowledged before the reader rewinds.
    let (shard, ackers) = shard_of(5);
    for acker in &ackers {
        assert!(acker.mark_handed_out());
    }
    ackers[0].ack();
    assert!(ackers[2].nack());
    for acker in &ackers[1..] {
        acker.ack();
    }
    assert_eq!(shard.lock().to_write(), Some(&pos(1)));
    assert_eq!(shard.lock().outstanding(), 0, "the copies are forgotten");
    assert_eq!(shard.take_rewind(), Some(Some(pos(1))));
    assert_eq!(shard.take_rewind(), None, "one rewind per nack");
}
