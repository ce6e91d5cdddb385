//! Exact JSON numbers end to end through kinesis-mock: the producer puts items with extreme
//! floats and integers and the consumer yields them as written; an item holding NaN comes back
//! from `put` with its error; a record whose integer the item type cannot hold, or that holds
//! Python's bare `NaN`, is a poison record carrying the raw record and a message that says what
//! was wrong.
#![allow(clippy::unwrap_used)]

use crate::consumer_support::{Outgoing, init_tracing, put};
use crate::json_numbers_support::{EXTREME_FLOATS, Num, check_numbers};
use async_kinesis::consumer::{ConsumeError, Consumer, PoisonAction};
use async_kinesis::processor::*;
use async_kinesis::producer::{Producer, PutErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use testkit::group::error_chain as chain;
use testkit::{Services, TestStream};

const WAIT: Duration = Duration::from_secs(60);
const TWO_POW_70: &str = "1180591620717411303424";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_arrive_exactly_and_bad_ones_are_reported_with_their_data() {
    init_tracing();
    let kinesis = Services::from_env().kinesis_mock();
    let stream = TestStream::create(&kinesis, "num-exact", 1).await;

    // The producer: every extreme float, the 64-bit limits, and 2^70 where this build's Value
    // holds it.
    let mut written: Vec<Vec<Num>> = EXTREME_FLOATS
        .iter()
        .map(|x| vec![Num::Float(*x), Num::Float(-x / 3.0)])
        .collect();
    written.push(vec![
        Num::Int(u64::MAX.to_string()),
        Num::Int(i64::MIN.to_string()),
    ]);
    if serde_json_keeps_wide_integers() {
        written.push(vec![Num::Int(TWO_POW_70.into()), Num::Float(0.1)]);
    }
    let json = JsonSerializer::<Value>::new();
    let producer = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::new())
        .build()
        .await
        .expect("producer");
    let mut receipts = Vec::new();
    for nums in &written {
        let text = format!(
            "[{}]",
            nums.iter().map(Num::text).collect::<Vec<_>>().join(", ")
        );
        let item = json.deserialize(&Bytes::from(text)).unwrap();
        receipts.push(producer.put_with_key(item, "k").await.expect("accepted"));
    }
    producer.close().await.expect("closed");
    for receipt in receipts {
        receipt.await.expect("delivered");
    }

    // A NaN cannot be written as JSON: `put` hands the item back.
    let typed = Producer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonProcessor::of::<Reading>())
        .build()
        .await
        .expect("producer");
    let nan = Reading {
        sensor: "s-1".into(),
        value: f64::NAN,
    };
    let err = typed.put_with_key(nan, "k").await.expect_err("NaN refused");
    assert!(
        matches!(
            err.kind(),
            PutErrorKind::Serialize(SerializeError::NonFiniteFloat { value }) if value.is_nan()
        ),
        "{err:?}"
    );
    assert!(
        chain(&err).contains("non-finite float NaN"),
        "{}",
        chain(&err)
    );
    let back = err.into_item().expect("the item comes back");
    assert_eq!(back.sensor, "s-1");
    assert!(back.value.is_nan());
    typed.close().await.expect("closed");

    // Records written by others: 2^70 (a poison record where Value cannot hold it) and
    // Python's bare NaN (always a poison record).
    let wide = Bytes::from(format!("{{\"n\": {TWO_POW_70}}}\n"));
    let python_nan = Bytes::from_static(b"{\"f\": NaN}\n");
    let raw = [wide.clone(), python_nan.clone()];
    let outgoing: Vec<Outgoing> = raw
        .iter()
        .map(|data| Outgoing {
            key: "k".into(),
            data: data.clone(),
        })
        .collect();
    put(stream.client(), &outgoing).await;

    let mut consumer = Consumer::builder(stream.name())
        .sdk_config(kinesis.sdk_config())
        .processor(JsonLineProcessor::new())
        .sleep_time_no_records(Duration::from_millis(200))
        .build()
        .await
        .expect("consumer");
    let mut items = Vec::new();
    let mut poison = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while items.len() + poison.len() < written.len() + raw.len() {
        let next = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .expect("everything arrives")
            .expect("open");
        match next {
            Ok(record) => items.push(record.item.clone()),
            Err(ConsumeError::Poison(p)) => poison.push(*p),
            Err(other) => panic!("unexpected error item {other:?}"),
        }
    }
    consumer.shutdown(Duration::from_secs(5)).await;
    stream.delete().await;

    for (item, nums) in items.iter().zip(&written) {
        check_numbers(&Ok(item.clone()), nums).unwrap();
    }
    let keeps = serde_json_keeps_wide_integers();
    let wide_item = items.get(written.len());
    assert_eq!(wide_item.is_some(), keeps);
    if let Some(item) = wide_item {
        assert_eq!(item["n"].to_string(), TWO_POW_70);
    }
    assert_eq!(poison.len(), if keeps { 1 } else { 2 });
    for p in &poison {
        assert_eq!(p.action, PoisonAction::Skipped);
        let message = chain(&p.error);
        if p.data == wide {
            assert!(
                message.contains(&format!(
                    "integer {TWO_POW_70} at byte 6 does not fit a 64-bit number; enable feature `json-arbitrary-precision`"
                )),
                "{message}"
            );
        } else {
            assert_eq!(p.data, python_nan);
            assert!(
                message.contains("`NaN` at byte 6 is not a JSON number"),
                "{message}"
            );
        }
    }
}
