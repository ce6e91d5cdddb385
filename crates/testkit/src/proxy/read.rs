//! GetShardIterator and GetRecords: learn which shard each iterator reads, expire old iterators, and
//! enforce per-shard read limits.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::Response;
use hyper::http::request::Parts;
use serde_json::Value;

use super::counters::{SecondCounters, ShardKey};
use super::forward::{Collected, ProxyBody, aws_error, stream_response};
use super::routing::IteratorInfo;
use super::state::{State, lock};
use super::wire::{RecordInfo, StreamKey, throttle_message};

type Handled = Result<Response<ProxyBody>, String>;

/// The ExpiredIteratorException answer.
pub(crate) fn expired_iterator(age_ms: Option<u128>) -> Response<ProxyBody> {
    let message = match age_ms {
        Some(age) => format!("Iterator expired. The iterator was created {age} milliseconds ago."),
        None => "Iterator expired (injected fault).".to_owned(),
    };
    aws_error(400, "ExpiredIteratorException", &message)
}

fn next_iterator(body: &Value, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) async fn get_shard_iterator(
    state: &Arc<State>,
    parts: &Parts,
    body: Bytes,
    json: Option<Value>,
    stream: Option<StreamKey>,
) -> Handled {
    let shard_id = json
        .as_ref()
        .and_then(|j| j.get("ShardId"))
        .and_then(Value::as_str);
    let (Some(stream), Some(shard_id)) = (stream, shard_id) else {
        return Ok(stream_response(state.upstream.send(parts, body).await?));
    };
    let shard = ShardKey::new(stream.name(), shard_id);
    let response = Collected::read(state.upstream.send(parts, body).await?).await?;
    if response.status.is_success() {
        let reply: Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("the emulator's GetShardIterator answer is not JSON: {e}"))?;
        if let Some(iterator) = next_iterator(&reply, "ShardIterator") {
            state.iterators.remember(&iterator, shard, Instant::now());
        }
    }
    Ok(response.into_response())
}

pub(crate) async fn get_records(
    state: &Arc<State>,
    parts: &Parts,
    body: Bytes,
    iterator: Option<IteratorInfo>,
) -> Handled {
    // An iterator the proxy never saw issued (or garbage) goes through unlimited.
    let Some(IteratorInfo { shard, issued }) = iterator else {
        return Ok(stream_response(state.upstream.send(parts, body).await?));
    };
    let now = Instant::now();
    if let Some(max_age) = state.config.iterator_max_age {
        let age = now.saturating_duration_since(issued);
        if age > max_age {
            return Ok(expired_iterator(Some(age.as_millis())));
        }
    }
    let admitted = lock(&state.limiter).admit_read(&shard, now);
    if !admitted {
        let throttled = SecondCounters {
            throttled_get_records: 1,
            ..SecondCounters::default()
        };
        lock(&state.counters).add(&shard, now, throttled);
        let message = throttle_message(&shard.shard_id, &shard.stream, &state.config.account_id);
        return Ok(aws_error(
            400,
            "ProvisionedThroughputExceededException",
            &message,
        ));
    }
    let response = Collected::read(state.upstream.send(parts, body).await?).await?;
    let mut delta = SecondCounters {
        get_records_calls: 1,
        ..SecondCounters::default()
    };
    if response.status.is_success() {
        let reply: Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("the emulator's GetRecords answer is not JSON: {e}"))?;
        let records = reply
            .get("Records")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        delta.read_records = records.len() as u64;
        delta.read_bytes = records
            .iter()
            .filter_map(RecordInfo::from_json)
            .map(|r| r.bytes)
            .sum();
        let done = Instant::now();
        lock(&state.limiter).charge_read(&shard, delta.read_bytes, done);
        if let Some(next) = next_iterator(&reply, "NextShardIterator") {
            state.iterators.remember(&next, shard.clone(), done);
        }
    }
    lock(&state.counters).add(&shard, now, delta);
    Ok(response.into_response())
}
