//! Unit tests of the handle: reserving, putting through permits, and flushes and closes with
//! a deadline, against a producer whose worker is the test (no network).

use std::time::Duration;

use tokio::sync::mpsc;

use super::worker::Command;
use super::*;
use crate::processor::StringProcessor;
use crate::stream::stream_ref::StreamRef;

const MAX: usize = 1_000;

fn producer(
    items: usize,
    bytes: usize,
) -> (
    Producer<StringProcessor>,
    mpsc::UnboundedReceiver<Command<String>>,
) {
    let config = ProducerConfig {
        max_queue_size: items,
        max_queue_bytes: bytes,
        ..ProducerConfig::default()
    };
    let stream = StreamRef::name_only("s").expect("name");
    Producer::start(StringProcessor::default(), stream, &config, MAX)
}

fn room(producer: &Producer<StringProcessor>) -> (usize, usize) {
    let shared = &producer.shared;
    (
        shared.item_room.available_permits(),
        shared.byte_room.available_permits(),
    )
}

#[tokio::test]
async fn a_permit_holds_a_largest_item_and_its_put_keeps_only_the_item_size() {
    let (producer, mut commands) = producer(4, 5_000);
    let permit = producer.reserve().await.expect("room");
    assert_eq!(room(&producer), (3, 4_000));
    let _receipt = permit
        .put_with_key("abcd".to_owned(), "k")
        .expect("accepted");
    // 4 bytes of data and a 1-byte key.
    assert_eq!(room(&producer), (3, 4_995));
    let Some(Command::Put(pending)) = commands.recv().await else {
        panic!("a put");
    };
    assert_eq!(
        (pending.item.as_str(), pending.partition_key.as_deref()),
        ("abcd", Some("k"))
    );
    drop(pending);
    assert_eq!(room(&producer), (4, 5_000), "resolved: all room back");
}

#[tokio::test]
async fn refused_and_unused_permits_give_their_room_back() {
    let (producer, mut commands) = producer(1, MAX);
    drop(producer.reserve().await.expect("room"));
    assert_eq!(room(&producer), (1, MAX));
    let err = producer
        .reserve()
        .await
        .expect("room")
        .put_with_key("x".repeat(MAX), "k")
        .expect_err("too large");
    assert!(matches!(err.kind(), PutErrorKind::TooLarge { .. }), "{err}");
    assert_eq!(err.into_item().map(|s| s.len()), Some(MAX));
    let err = producer
        .reserve()
        .await
        .expect("room")
        .put_with_key("item".to_owned(), "")
        .expect_err("empty key");
    assert!(matches!(err.kind(), PutErrorKind::InvalidPartitionKey(_)));
    assert_eq!(room(&producer), (1, MAX));
    assert!(commands.try_recv().is_err(), "nothing was sent");
}

#[tokio::test]
async fn try_reserve_says_full_and_closed() {
    let (producer, _commands) = producer(1, MAX);
    let permit = producer.try_reserve().expect("room");
    assert_eq!(producer.try_reserve().map(drop), Err(TryReserveError::Full));
    drop(permit);
    drop(producer.try_reserve().expect("room again"));
    producer
        .shared
        .closed
        .store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(
        producer.try_reserve().map(drop),
        Err(TryReserveError::Closed)
    );
}

#[tokio::test]
async fn a_cancelled_reserve_takes_no_room() {
    let (producer, _commands) = producer(1, MAX);
    let held = producer.reserve().await.expect("room");
    let waited = tokio::time::timeout(Duration::from_millis(10), producer.reserve()).await;
    assert!(waited.is_err(), "no room while the permit is held");
    drop(held);
    assert_eq!(room(&producer), (1, MAX));
    drop(producer.try_reserve().expect("room"));
}

#[tokio::test]
async fn close_refuses_reserves_and_held_permits_give_the_item_back() {
    let (producer, mut commands) = producer(1, MAX);
    let held = producer.reserve().await.expect("room");
    let waiting = producer.reserve();
    let closing = async {
        tokio::task::yield_now().await;
        producer.close().await
    };
    let answer = async {
        let Some(Command::Close(reply)) = commands.recv().await else {
            panic!("a close");
        };
        reply.send(()).expect("waited for");
    };
    let (waiting, closed, ()) = tokio::join!(waiting, closing, answer);
    assert!(matches!(waiting, Err(Error::Closed { what: "producer" })));
    closed.expect("closed");
    let err = held.put("late".to_owned()).expect_err("closed");
    assert!(matches!(err.kind(), PutErrorKind::Closed));
    assert_eq!(err.into_item().as_deref(), Some("late"));
    assert!(matches!(
        producer.reserve().await,
        Err(Error::Closed { what: "producer" })
    ));
    assert!(matches!(
        producer.try_reserve().map(drop),
        Err(TryReserveError::Closed)
    ));
}

#[tokio::test(start_paused = true)]
async fn flush_within_times_out_or_returns_the_answer() {
    let (producer, mut commands) = producer(1, MAX);
    let err = producer
        .flush_within(Duration::from_secs(3))
        .await
        .expect_err("nobody answers");
    assert_eq!(
        err.to_string(),
        "the producer flush did not finish within 3s"
    );
    assert_eq!(err.class(), crate::ErrorClass::Timeout);
    let answer = async {
        let Some(Command::Flush(_abandoned)) = commands.recv().await else {
            panic!("a flush");
        };
        let Some(Command::Flush(reply)) = commands.recv().await else {
            panic!("a flush");
        };
        reply.send(()).expect("waited for");
    };
    let (flushed, ()) = tokio::join!(producer.flush_within(Duration::from_secs(3)), answer);
    flushed.expect("answered in time");
    drop(commands);
    assert!(matches!(
        producer.flush_within(Duration::from_secs(3)).await,
        Err(Error::Closed { what: "producer" })
    ));
}

#[tokio::test(start_paused = true)]
async fn close_within_times_out_and_the_producer_is_closed_all_the_same() {
    let (producer, mut commands) = producer(1, MAX);
    let err = producer
        .close_within(Duration::from_secs(5))
        .await
        .expect_err("nobody answers");
    match err {
        Error::Timeout { what, waited } => {
            assert_eq!((what, waited), ("producer close", Duration::from_secs(5)));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(commands.recv().await, Some(Command::Close(_))));
    assert!(matches!(
        producer.reserve().await,
        Err(Error::Closed { what: "producer" })
    ));
    assert!(matches!(
        producer.close_within(Duration::from_secs(5)).await,
        Err(Error::Closed { what: "producer" })
    ));
}
