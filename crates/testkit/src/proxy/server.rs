//! The accept loop and the per-call pipeline: count, call-level faults, then the operation's handler.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::event_stream::{self, Decide, ReportFailure, Then};
use super::faults::FaultAction;
use super::forward::{Collected, ProxyBody, aws_error, stream_response, with_headers};
use super::read;
use super::state::{State, lock};
use super::wire::{self, StreamKey};
use super::write;

/// Returned by the service to make hyper drop the connection without an answer.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by an injected fault")
    }
}

impl std::error::Error for ResetConnection {}

/// Accepts connections until `shutdown` is cancelled; open connections end with it too.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                state.record_failure(format!("accepting a connection failed: {err}"));
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small JSON calls: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            // Connection errors are the client's business (it went away, or a fault reset it).
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Operations after which a stream's shard map is re-read.
fn changes_shards(operation: &str) -> bool {
    matches!(
        operation,
        "CreateStream" | "DeleteStream" | "SplitShard" | "MergeShards" | "UpdateShardCount"
    )
}

/// The partition keys of a PutRecords or PutRecord request.
fn call_partition_keys(json: Option<&Value>) -> Vec<&str> {
    let Some(json) = json else {
        return Vec::new();
    };
    let records = json.get("Records").and_then(Value::as_array);
    let keys = records
        .into_iter()
        .flatten()
        .chain(std::iter::once(json))
        .filter_map(|record| record.get("PartitionKey").and_then(Value::as_str));
    keys.collect()
}

/// DescribeStreamSummary with the configured record distribution strategy written in.
async fn describe_stream_summary(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: bytes::Bytes,
) -> Result<Response<ProxyBody>, String> {
    let response = Collected::read(state.upstream.send(parts, body).await?).await?;
    let (true, Some(strategy)) = (
        response.status.is_success(),
        &state.config.record_distribution,
    ) else {
        return Ok(response.into_response());
    };
    let mut reply: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("the emulator's DescribeStreamSummary answer is not JSON: {e}"))?;
    let Some(summary) = reply
        .get_mut("StreamDescriptionSummary")
        .and_then(Value::as_object_mut)
    else {
        return Err("the emulator's DescribeStreamSummary answer has no summary".to_owned());
    };
    summary.insert(
        "RecordDistributionStrategy".to_owned(),
        Value::String(strategy.clone()),
    );
    let body = serde_json::to_vec(&reply).map_err(|e| e.to_string())?;
    Ok(with_headers(response.status, &response.headers, body))
}

/// What a stream fault does to a subscription: messages forwarded, then what.
fn stream_shape(action: &FaultAction) -> Option<(u64, Then)> {
    match *action {
        FaultAction::CutStream { after } => Some((after, Then::Cut)),
        FaultAction::StallStream { after } => Some((after, Then::Stall)),
        FaultAction::EndStream { after } => Some((after, Then::End)),
        _ => None,
    }
}

/// SubscribeToShard, its event stream shaped by the first stream fault that fires for it. The
/// faults are asked once the stream's first message shows the emulator accepted the subscription
/// (kinesis-mock refuses one inside a 200 answer).
async fn subscribe_to_shard(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: bytes::Bytes,
    stream_name: Option<String>,
) -> Result<Response<ProxyBody>, String> {
    let response = stream_response(state.upstream.send(parts, body).await?);
    let is_event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/vnd.amazon.eventstream"));
    if !response.status().is_success() || !is_event_stream {
        return Ok(response);
    }
    let faults = state.clone();
    let decide: Decide = Box::new(move || {
        let action = lock(&faults.faults).on_subscription(stream_name.as_deref())?;
        stream_shape(&action)
    });
    let failures = state.clone();
    let report: ReportFailure = Box::new(move |message| failures.record_failure(message));
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        event_stream::subscription(body, decide, report),
    ))
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let (parts, body) = request.into_parts();
    // A client that goes away mid-request gets nothing back anyway.
    let body = body
        .collect()
        .await
        .map_err(|_| ResetConnection)?
        .to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let operation = wire::operation(target).unwrap_or_default().to_owned();
    lock(&state.counters).count_call(&operation);

    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let stream = json.as_ref().and_then(StreamKey::from_request);
    let iterator = (operation == "GetRecords")
        .then(|| json.as_ref()?.get("ShardIterator")?.as_str())
        .flatten()
        .and_then(|it| state.iterators.lookup(it));
    let stream_name = stream
        .as_ref()
        .map(|s| s.name().to_owned())
        .or_else(|| iterator.as_ref().map(|i| i.shard.stream.clone()))
        .or_else(|| wire::consumer_stream_name(json.as_ref()?).map(str::to_owned));

    let keys = call_partition_keys(json.as_ref());
    let verdict = lock(&state.faults).on_call_holding(&operation, stream_name.as_deref(), &keys);
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    match verdict.end {
        Some(FaultAction::Reset) => return Err(ResetConnection),
        Some(FaultAction::Error {
            status,
            error_type,
            message,
        }) => return Ok(aws_error(status, &error_type, &message)),
        Some(FaultAction::ExpireIterator) => return Ok(read::expired_iterator(None)),
        Some(
            FaultAction::FailRecords { .. }
            | FaultAction::Latency(_)
            | FaultAction::CutStream { .. }
            | FaultAction::StallStream { .. }
            | FaultAction::EndStream { .. },
        )
        | None => {}
    }

    let handled = match operation.as_str() {
        "PutRecords" => write::put_records(&state, &parts, body, json, stream).await,
        "PutRecord" => write::put_record(&state, &parts, body, json, stream).await,
        "GetShardIterator" => read::get_shard_iterator(&state, &parts, body, json, stream).await,
        "GetRecords" => read::get_records(&state, &parts, body, iterator).await,
        "SubscribeToShard" => subscribe_to_shard(&state, &parts, body, stream_name).await,
        "DescribeStreamSummary" if state.config.record_distribution.is_some() => {
            describe_stream_summary(&state, &parts, body).await
        }
        op => {
            let forwarded = state.upstream.send(&parts, body).await.map(stream_response);
            if changes_shards(op)
                && let Some(name) = &stream_name
            {
                state.shard_maps.invalidate(name).await;
            }
            forwarded
        }
    };
    Ok(handled.unwrap_or_else(|message| state.fail(message)))
}
