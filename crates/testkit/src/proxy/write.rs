//! PutRecords and PutRecord: injected record failures, then per-shard write limits, then the emulator.

use std::sync::Arc;
use std::time::Instant;

use async_kinesis::stream::shard_map::ShardMap;
use bytes::Bytes;
use hyper::Response;
use hyper::http::request::Parts;
use serde_json::{Value, json};

use super::counters::{SecondCounters, ShardKey};
use super::forward::{Collected, ProxyBody, aws_error, json_ok, stream_response, with_headers};
use super::state::{State, lock};
use super::wire::{RecordInfo, StreamKey, failed_entry, throttle_message};

const THROTTLED: &str = "ProvisionedThroughputExceededException";

type Handled = Result<Response<ProxyBody>, String>;

/// Forwards a request the proxy cannot interpret; the emulator answers it.
async fn unchanged(state: &State, parts: &Parts, body: Bytes) -> Handled {
    Ok(stream_response(state.upstream.send(parts, body).await?))
}

/// What happens to one record.
enum Outcome {
    /// Sent to the emulator; counted on the shard it routes to (none if it falls in a gap).
    Forward { shard: Option<ShardKey>, bytes: u64 },
    /// Answered by the proxy with this failed entry.
    Failed(Value),
}

/// Routes every record, or `None` when one cannot be routed (bad explicit hash key), so that the
/// emulator sees and rejects the request itself.
fn route_all(
    map: &ShardMap,
    stream: &str,
    records: &[RecordInfo],
) -> Option<Vec<Option<ShardKey>>> {
    records
        .iter()
        .map(|r| {
            map.route(&r.partition_key, r.explicit_hash_key.as_deref())
                .ok()
                .map(|s| s.map(|s| ShardKey::new(stream, s.shard_id())))
        })
        .collect()
}

/// Decides each record: injected fault first, then the limits of its shard.
fn decide(
    state: &State,
    operation: &str,
    stream: &str,
    records: &[RecordInfo],
    shards: &[Option<ShardKey>],
    now: Instant,
) -> Vec<Outcome> {
    let mut faults = lock(&state.faults);
    let mut limiter = lock(&state.limiter);
    let mut counters = lock(&state.counters);
    records
        .iter()
        .zip(shards)
        .map(|(record, shard)| {
            if let Some((code, message)) = faults.on_record(operation, Some(stream)) {
                if let Some(shard) = shard {
                    counters.add_faulted(shard, 1);
                }
                return Outcome::Failed(failed_entry(&code, &message));
            }
            if let Some(shard) = shard
                && !limiter.admit_write(shard, record.bytes, now)
            {
                let throttled = SecondCounters {
                    throttled_records: 1,
                    ..SecondCounters::default()
                };
                counters.add(shard, now, throttled);
                let message = throttle_message(&shard.shard_id, stream, &state.config.account_id);
                return Outcome::Failed(failed_entry(THROTTLED, &message));
            }
            Outcome::Forward {
                shard: shard.clone(),
                bytes: record.bytes,
            }
        })
        .collect()
}

/// Whether a PutRecords result entry is a failure (kinesis-mock writes `"ErrorCode": null` on success).
fn is_failed(entry: &Value) -> bool {
    entry.get("ErrorCode").is_some_and(|code| !code.is_null())
}

/// Counts a record the emulator stored, and whether the emulator put it where the proxy routed it.
fn count_accepted(state: &State, shard: &ShardKey, bytes: u64, at: Instant, entry: &Value) {
    let mut counters = lock(&state.counters);
    counters.add(
        shard,
        at,
        SecondCounters {
            accepted_records: 1,
            accepted_bytes: bytes,
            ..SecondCounters::default()
        },
    );
    if entry.get("ShardId").and_then(Value::as_str) != Some(shard.shard_id.as_str()) {
        counters.count_routing_mismatch();
    }
}

pub(crate) async fn put_records(
    state: &Arc<State>,
    parts: &Parts,
    body: Bytes,
    json: Option<Value>,
    stream: Option<StreamKey>,
) -> Handled {
    let (Some(mut json), Some(stream)) = (json, stream) else {
        return unchanged(state, parts, body).await;
    };
    let Some(raw_records) = json.get_mut("Records").and_then(Value::as_array_mut) else {
        return unchanged(state, parts, body).await;
    };
    let raw_records = std::mem::take(raw_records);
    let Some(infos) = raw_records
        .iter()
        .map(RecordInfo::from_json)
        .collect::<Option<Vec<_>>>()
    else {
        return unchanged(state, parts, body).await;
    };
    let Some(map) = state.shard_maps.get(&stream).await.map_err(|e| e.0)? else {
        return unchanged(state, parts, body).await;
    };
    let Some(shards) = route_all(&map, stream.name(), &infos) else {
        return unchanged(state, parts, body).await;
    };
    let now = Instant::now();
    let mut outcomes = decide(state, "PutRecords", stream.name(), &infos, &shards, now);

    let forwarded: Vec<Value> = raw_records
        .into_iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Forward { .. }))
        .map(|(r, _)| r)
        .collect();
    if forwarded.is_empty() {
        let failed = outcomes.len();
        let entries: Vec<Value> = outcomes
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Failed(entry) => Some(entry),
                Outcome::Forward { .. } => None,
            })
            .collect();
        let body = json!({ "FailedRecordCount": failed, "Records": entries });
        return Ok(json_ok(body.to_string()));
    }

    let sent = forwarded.len();
    json["Records"] = Value::Array(forwarded);
    let request = serde_json::to_vec(&json).map_err(|e| format!("re-encoding PutRecords: {e}"))?;
    let response = Collected::read(state.upstream.send(parts, request.into()).await?).await?;
    if !response.status.is_success() {
        return Ok(response.into_response());
    }
    let mut reply: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("the emulator's PutRecords answer is not JSON: {e}"))?;
    let Some(upstream_entries) = reply.get_mut("Records").and_then(Value::as_array_mut) else {
        return Err("the emulator's PutRecords answer has no Records".to_owned());
    };
    if upstream_entries.len() != sent {
        return Err(format!(
            "the emulator answered {} entries for {sent} records",
            upstream_entries.len()
        ));
    }
    let mut upstream_entries = std::mem::take(upstream_entries).into_iter();
    let mut merged = Vec::with_capacity(outcomes.len());
    for outcome in outcomes.drain(..) {
        let entry = match outcome {
            Outcome::Failed(entry) => entry,
            Outcome::Forward { shard, bytes } => {
                let entry = upstream_entries
                    .next()
                    .ok_or("the emulator's answer ran out of entries")?;
                if let Some(shard) = shard
                    && !is_failed(&entry)
                {
                    count_accepted(state, &shard, bytes, now, &entry);
                }
                entry
            }
        };
        merged.push(entry);
    }
    let failed = merged.iter().filter(|e| is_failed(e)).count();
    reply["Records"] = Value::Array(merged);
    reply["FailedRecordCount"] = json!(failed);
    Ok(with_headers(
        response.status,
        &response.headers,
        reply.to_string(),
    ))
}

pub(crate) async fn put_record(
    state: &Arc<State>,
    parts: &Parts,
    body: Bytes,
    json: Option<Value>,
    stream: Option<StreamKey>,
) -> Handled {
    let (Some(json), Some(stream)) = (json, stream) else {
        return unchanged(state, parts, body).await;
    };
    let Some(info) = RecordInfo::from_json(&json) else {
        return unchanged(state, parts, body).await;
    };
    let Some(map) = state.shard_maps.get(&stream).await.map_err(|e| e.0)? else {
        return unchanged(state, parts, body).await;
    };
    let infos = [info];
    let Some(shards) = route_all(&map, stream.name(), &infos) else {
        return unchanged(state, parts, body).await;
    };
    let now = Instant::now();
    let outcome = decide(state, "PutRecord", stream.name(), &infos, &shards, now).pop();
    match outcome {
        Some(Outcome::Failed(entry)) => {
            let code = entry["ErrorCode"].as_str().unwrap_or(THROTTLED);
            let message = entry["ErrorMessage"].as_str().unwrap_or_default();
            // AWS answers service-side failures with 500 and everything else with 400.
            let status = if code == "InternalFailure" { 500 } else { 400 };
            Ok(aws_error(status, code, message))
        }
        Some(Outcome::Forward { shard, bytes }) => {
            let response = Collected::read(state.upstream.send(parts, body).await?).await?;
            if let Some(shard) = shard
                && response.status.is_success()
            {
                let reply: Value = serde_json::from_slice(&response.body)
                    .map_err(|e| format!("the emulator's PutRecord answer is not JSON: {e}"))?;
                count_accepted(state, &shard, bytes, now, &reply);
            }
            Ok(response.into_response())
        }
        None => Err("PutRecord: no decision for its record".to_owned()),
    }
}
