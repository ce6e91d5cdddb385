//! Faults inside a SubscribeToShard event stream (cut, stall, early end) and whole-call faults on
//! SubscribeToShard, through the proxy in front of kinesis-mock, seen by the SDK's receiver.
//!
//! kinesis-mock sends no `initial-response`: its first message is a SubscribeToShardEvent with the
//! records so far, about a second after the call, then one event a second, records or not. It
//! allows one subscription per consumer and shard; a second is answered HTTP 200 with a
//! `ResourceInUseException` message, which the SDK returns from the first `recv`, until it notices
//! the first one's connection closed (a few seconds).

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::subscribe_to_shard::{
    SubscribeToShardError, SubscribeToShardOutput,
};
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEvent,
    SubscribeToShardEventStream,
};
use testkit::proxy::{Fault, FaultStats, LimitsProxy, ProxyConfig, Schedule, sdk_client};
use testkit::{Services, TestStream};

use crate::common::{entry, kinesis_mock, put_all};

const SHARD: &str = "shardId-000000000000";
const RECORDS: usize = 5;
/// For anything kinesis-mock does about once a second: generous, so load cannot fail a test.
const PATIENCE: Duration = Duration::from_secs(30);

type Received = Result<Option<SubscribeToShardEventStream>, String>;

/// A 1-shard stream holding `RECORDS` records, an ACTIVE consumer, and a proxy in front.
struct Efo {
    proxy: LimitsProxy,
    client: Client,
    stream: TestStream,
    consumer_arn: String,
}

impl Efo {
    async fn start(prefix: &str) -> Self {
        let emulator = Services::from_env().kinesis_mock();
        let stream = TestStream::create(&emulator, prefix, 1).await;
        let proxy = LimitsProxy::start(&kinesis_mock(), ProxyConfig::default())
            .await
            .expect("proxy");
        let client = proxy.client();
        let consumer_arn = client
            .register_stream_consumer()
            .stream_arn(stream.arn().await)
            .consumer_name("efo-faults")
            .send()
            .await
            .expect("RegisterStreamConsumer")
            .consumer
            .expect("consumer")
            .consumer_arn
            .clone();
        wait_active(&client, &consumer_arn).await;
        let records = (0..RECORDS)
            .map(|i| entry(format!("efo-{i}"), format!("k{i}")))
            .collect();
        put_all(&client, stream.name(), records).await;
        Self {
            proxy,
            client,
            stream,
            consumer_arn,
        }
    }

    async fn subscribe(&self) -> Result<SubscribeToShardOutput, SdkError<SubscribeToShardError>> {
        let position = StartingPosition::builder()
            .r#type(ShardIteratorType::TrimHorizon)
            .build()
            .expect("type is set");
        self.client
            .subscribe_to_shard()
            .consumer_arn(&self.consumer_arn)
            .shard_id(SHARD)
            .starting_position(position)
            .send()
            .await
    }

    /// Subscribes until kinesis-mock accepts (it refuses while its side of an earlier subscription
    /// is still open); returns the subscription, what its first `recv` gave, and the refusals.
    async fn subscribe_accepted(&self) -> (SubscribeToShardOutput, Received, u32) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut refusals = 0;
        loop {
            let mut output = self.subscribe().await.expect("SubscribeToShard");
            let first = recv(&mut output).await;
            let in_use = matches!(&first, Err(e) if e.contains("ResourceInUseException"));
            if !in_use {
                return (output, first, refusals);
            }
            refusals += 1;
            assert!(
                tokio::time::Instant::now() < deadline,
                "still refused after {refusals} tries"
            );
            drop(output);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn finish(self) {
        let emulator = sdk_client(&kinesis_mock());
        emulator
            .delete_stream()
            .stream_name(self.stream.name())
            .enforce_consumer_deletion(true)
            .send()
            .await
            .expect("DeleteStream");
        self.proxy
            .shutdown()
            .await
            .expect("proxy ran without failures");
    }
}

async fn wait_active(client: &Client, consumer_arn: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let described = client
            .describe_stream_consumer()
            .consumer_arn(consumer_arn)
            .send()
            .await
            .expect("DescribeStreamConsumer");
        let status = described
            .consumer_description()
            .map(|d| d.consumer_status());
        if status == Some(&ConsumerStatus::Active) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next item of the subscription (an error as its debug text, which names the error code).
async fn recv(output: &mut SubscribeToShardOutput) -> Received {
    tokio::time::timeout(PATIENCE, output.event_stream.recv())
        .await
        .expect("kinesis-mock sends an event every second")
        .map_err(|e| format!("{e:?}"))
}

fn event(received: &Received) -> &SubscribeToShardEvent {
    match received {
        Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn data(event: &SubscribeToShardEvent) -> Vec<String> {
    let records = event.records().iter();
    records
        .map(|r| String::from_utf8_lossy(r.data().as_ref()).into_owned())
        .collect()
}

fn all_records() -> Vec<String> {
    (0..RECORDS).map(|i| format!("efo-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faults_every_record_arrives_and_events_keep_coming() {
    let efo = Efo::start("efo-plain").await;
    let (mut subscription, first, refusals) = efo.subscribe_accepted().await;
    assert_eq!(refusals, 0, "nothing else subscribed");
    assert_eq!(data(event(&first)), all_records());
    for _ in 0..2 {
        let next = recv(&mut subscription).await;
        assert!(
            data(event(&next)).is_empty(),
            "one event a second, no records"
        );
    }
    drop(subscription);
    assert_eq!(efo.proxy.counters().calls("SubscribeToShard"), 1);
    efo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_fails_after_the_allowed_messages_and_only_scheduled_ones_are_cut() {
    let efo = Efo::start("efo-cut").await;
    let cut = efo
        .proxy
        .add_fault(Fault::cut_stream_after(2).schedule(Schedule::First(1)));
    let elsewhere = efo
        .proxy
        .add_fault(Fault::cut_stream_after(0).stream("some-other-stream"));

    let (mut subscription, first, refusals) = efo.subscribe_accepted().await;
    assert_eq!(refusals, 0);
    assert_eq!(data(event(&first)), all_records());
    assert!(data(event(&recv(&mut subscription).await)).is_empty());
    let third = recv(&mut subscription).await;
    assert!(third.is_err(), "the body fails after 2 messages: {third:?}");
    drop(subscription);
    let once = FaultStats {
        matched: 1,
        fired: 1,
    };
    assert_eq!(efo.proxy.fault_stats(cut), once);

    // The next accepted subscription is not cut; refusals while kinesis-mock still holds the
    // cut one do not count.
    let (mut subscription, first, refusals) = efo.subscribe_accepted().await;
    assert_eq!(data(event(&first)), all_records());
    for _ in 0..3 {
        assert!(data(event(&recv(&mut subscription).await)).is_empty());
    }
    drop(subscription);
    let stats = efo.proxy.fault_stats(cut);
    assert_eq!(
        stats,
        FaultStats {
            matched: 2,
            fired: 1
        }
    );
    assert_eq!(efo.proxy.fault_stats(elsewhere), FaultStats::default());
    let calls = efo.proxy.counters().calls("SubscribeToShard");
    assert_eq!(calls, 2 + u64::from(refusals));
    println!("cut: refused {refusals} time(s) before the second subscription");
    efo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_sends_nothing_more_but_stays_open() {
    let efo = Efo::start("efo-stall").await;
    let stall = efo.proxy.add_fault(Fault::stall_stream_after(1));
    let (mut subscription, first, _) = efo.subscribe_accepted().await;
    assert_eq!(data(event(&first)), all_records());
    // kinesis-mock would have sent an event a second; neither an event nor the end comes.
    for _ in 0..2 {
        let next =
            tokio::time::timeout(Duration::from_secs(3), subscription.event_stream.recv()).await;
        assert!(next.is_err(), "stalled, still open: {next:?}");
    }
    drop(subscription);
    assert_eq!(
        efo.proxy.fault_stats(stall),
        FaultStats {
            matched: 1,
            fired: 1
        }
    );
    efo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_stream_ends_cleanly_after_the_allowed_messages() {
    let efo = Efo::start("efo-end").await;
    let end = efo
        .proxy
        .add_fault(Fault::end_stream_after(1).schedule(Schedule::First(1)));
    let (mut subscription, first, _) = efo.subscribe_accepted().await;
    // No initial response from kinesis-mock: the one message allowed is the records' event.
    assert_eq!(data(event(&first)), all_records());
    assert_eq!(recv(&mut subscription).await, Ok(None));
    drop(subscription);

    let three = efo.proxy.add_fault(Fault::end_stream_after(3));
    let (mut subscription, first, _) = efo.subscribe_accepted().await;
    assert_eq!(data(event(&first)), all_records());
    for _ in 0..2 {
        assert!(data(event(&recv(&mut subscription).await)).is_empty());
    }
    assert_eq!(recv(&mut subscription).await, Ok(None));
    drop(subscription);
    let once = FaultStats {
        matched: 1,
        fired: 1,
    };
    assert_eq!(efo.proxy.fault_stats(three), once);
    assert_eq!(
        efo.proxy.fault_stats(end),
        FaultStats {
            matched: 2,
            fired: 1
        }
    );
    efo.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_faults_answer_subscribe_to_shard_without_forwarding_it() {
    let efo = Efo::start("efo-call").await;
    let in_use = efo.proxy.add_fault(
        Fault::http_error(400, "ResourceInUseException")
            .on("SubscribeToShard")
            .stream(efo.stream.name())
            .schedule(Schedule::First(1)),
    );
    let err = efo.subscribe().await.expect_err("answered by the fault");
    assert_eq!(err.code(), Some("ResourceInUseException"));
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(400));
    assert!(
        err.into_service_error().is_resource_in_use_exception(),
        "modelled as ResourceInUseException"
    );

    let internal = efo.proxy.add_fault(
        Fault::http_error(500, "InternalFailure")
            .on("SubscribeToShard")
            .schedule(Schedule::First(1)),
    );
    let err = efo.subscribe().await.expect_err("answered by the fault");
    assert_eq!(err.code(), Some("InternalFailure"));
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(500));

    let reset = efo.proxy.add_fault(
        Fault::reset()
            .on("SubscribeToShard")
            .schedule(Schedule::First(1)),
    );
    let err = efo.subscribe().await.expect_err("connection closed");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "no answer at all: {err:?}"
    );

    // None of them reached kinesis-mock: the first real subscription is accepted at once.
    let (subscription, first, refusals) = efo.subscribe_accepted().await;
    assert_eq!(refusals, 0);
    assert_eq!(data(event(&first)), all_records());
    drop(subscription);
    let once = FaultStats {
        matched: 1,
        fired: 1,
    };
    for id in [in_use, internal, reset] {
        assert_eq!(efo.proxy.fault_stats(id).fired, once.fired);
    }
    // Each fault matched every SubscribeToShard call made while it was there.
    assert_eq!(efo.proxy.fault_stats(in_use).matched, 4);
    assert_eq!(efo.proxy.fault_stats(internal).matched, 3);
    assert_eq!(
        efo.proxy.fault_stats(reset),
        FaultStats { matched: 2, ..once }
    );
    assert_eq!(efo.proxy.counters().calls("SubscribeToShard"), 4);
    efo.finish().await;
}
