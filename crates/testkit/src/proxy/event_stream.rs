//! Faults inside a SubscribeToShard response: the event stream is split into whole messages
//! (AWS `vnd.amazon.eventstream` framing), the first n are forwarded, then the body is cut, stalls
//! or ends. Subscriptions no fault shapes pass through untouched.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use super::forward::{BoxError, ProxyBody};

/// Prelude (total length, headers length, prelude CRC) plus the message CRC: the smallest message.
const MIN_MESSAGE_LEN: usize = 16;

/// How long a cut waits after the last forwarded message before failing the body: hyper drops
/// whatever it has not flushed when a body fails, and the client must still get those messages.
const CUT_GRACE: Duration = Duration::from_millis(100);

/// Splits a byte stream into whole event-stream messages, by each prelude's total length.
/// Checksums are not verified: the client does that, and the proxy only counts.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    buffer: BytesMut,
}

impl Messages {
    /// Adds a chunk and returns the messages it completed, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut complete = Vec::new();
        while self.buffer.len() >= 8 {
            let mut prelude = &self.buffer[..8];
            let total = prelude.get_u32() as usize;
            let headers = prelude.get_u32() as usize;
            if total < MIN_MESSAGE_LEN || headers > total - MIN_MESSAGE_LEN {
                return Err(format!(
                    "not an event stream: a message declares {total} bytes with {headers} bytes of headers"
                ));
            }
            if self.buffer.len() < total {
                break;
            }
            complete.push(self.buffer.split_to(total).freeze());
        }
        Ok(complete)
    }

    /// The bytes of an incomplete trailing message.
    pub(crate) fn take_rest(&mut self) -> Bytes {
        self.buffer.split().freeze()
    }
}

/// The value of a string header of a whole message (`None` if absent, not a string, or garbled).
pub(crate) fn string_header<'m>(message: &'m [u8], name: &str) -> Option<&'m str> {
    let headers_len = u32::from_be_bytes(message.get(4..8)?.try_into().ok()?) as usize;
    let mut headers = message.get(12..12 + headers_len)?;
    while !headers.is_empty() {
        let name_len = usize::from(headers[0]);
        let this_name = headers.get(1..1 + name_len)?;
        let value_type = *headers.get(1 + name_len)?;
        headers = &headers[2 + name_len..];
        // Value sizes by type, from the event-stream spec: bool, byte, short, int, long, bytes,
        // string, timestamp, uuid.
        let (skip, len) = match value_type {
            0 | 1 => (0, 0),
            2 => (0, 1),
            3 => (0, 2),
            4 => (0, 4),
            5 | 8 => (0, 8),
            6 | 7 => (
                2,
                usize::from(u16::from_be_bytes(headers.get(..2)?.try_into().ok()?)),
            ),
            9 => (0, 16),
            _ => return None,
        };
        let value = headers.get(skip..skip + len)?;
        if value_type == 7 && this_name == name.as_bytes() {
            return std::str::from_utf8(value).ok();
        }
        headers = &headers[skip + len..];
    }
    None
}

/// What happens once the allowed messages were forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// The body fails (the client's connection is closed mid-stream).
    Cut,
    /// Nothing more is sent, and the response stays open.
    Stall,
    /// The body ends cleanly.
    End,
}

/// The body fails because a fault cut it.
#[derive(Debug)]
struct CutByFault;

impl std::fmt::Display for CutByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("event stream cut by an injected fault")
    }
}

impl std::error::Error for CutByFault {}

/// Asked once the first message shows that the emulator accepted the subscription: how many
/// messages to forward, and what then (`None`: all of them, untouched).
pub(crate) type Decide = Box<dyn FnOnce() -> Option<(u64, Then)> + Send + Sync>;

/// Records a failure of the proxy itself.
pub(crate) type ReportFailure = Box<dyn Fn(String) + Send + Sync>;

enum Mode {
    /// Until the first message is complete (`Decide` is taken when it is).
    Deciding(Option<Decide>),
    /// Forwarding the emulator's bytes as they come.
    Passing,
    /// Forwarding `left` more whole messages, then `then`.
    Shaping { left: u64, then: Then },
}

/// A SubscribeToShard response body from the emulator, maybe shaped by a fault.
struct Subscription {
    /// `None` once the emulator's stream is done with (ended, failed, or no longer needed).
    upstream: Option<ProxyBody>,
    mode: Mode,
    messages: Messages,
    /// Whole messages (or, when passing, any bytes) to send before reading on.
    ready: VecDeque<Bytes>,
    grace: Option<Pin<Box<tokio::time::Sleep>>>,
    finished: bool,
    report: ReportFailure,
}

/// Forwards a SubscribeToShard event stream. If its first message is an event (not an
/// `exception`, as kinesis-mock refuses a second subscription with), `decide` says whether a fault
/// shapes it.
pub(crate) fn subscription(
    upstream: ProxyBody,
    decide: Decide,
    report: ReportFailure,
) -> ProxyBody {
    Subscription {
        upstream: Some(upstream),
        mode: Mode::Deciding(Some(decide)),
        messages: Messages::default(),
        ready: VecDeque::new(),
        grace: None,
        finished: false,
        report,
    }
    .boxed()
}

type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

impl Subscription {
    fn apply(&mut self, then: Then, cx: &mut Context<'_>) -> Polled {
        // Dropping the emulator's side closes that connection, so its subscription ends there too.
        self.upstream = None;
        self.ready.clear();
        match then {
            Then::End => {
                self.finished = true;
                Poll::Ready(None)
            }
            // Never woken: the response stays open until the client or the proxy drops it.
            Then::Stall => Poll::Pending,
            Then::Cut => {
                let grace = self
                    .grace
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_GRACE)));
                ready!(grace.as_mut().poll(cx));
                self.finished = true;
                Poll::Ready(Some(Err(Box::new(CutByFault))))
            }
        }
    }

    /// Takes in a chunk of the emulator's stream.
    fn take_in(&mut self, data: Bytes) -> Result<(), String> {
        if matches!(self.mode, Mode::Passing) {
            self.ready.push_back(data);
            return Ok(());
        }
        let complete = self.messages.push(&data)?;
        if let (Mode::Deciding(decide), Some(first)) = (&mut self.mode, complete.first()) {
            let accepted = string_header(first, ":message-type") == Some("event");
            let shape = decide
                .take()
                .filter(|_| accepted)
                .and_then(|decide| decide());
            self.mode = match shape {
                Some((left, then)) => Mode::Shaping { left, then },
                None => Mode::Passing,
            };
        }
        self.ready.extend(complete);
        if matches!(self.mode, Mode::Passing) {
            self.ready.push_back(self.messages.take_rest());
        }
        Ok(())
    }
}

impl Body for Subscription {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if let Mode::Shaping { left: 0, then } = this.mode {
                return this.apply(then, cx);
            }
            if let Some(bytes) = this.ready.pop_front() {
                if let Mode::Shaping { left, .. } = &mut this.mode {
                    *left -= 1;
                }
                if bytes.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            let Some(upstream) = this.upstream.as_mut() else {
                this.finished = true;
                return Poll::Ready(None);
            };
            match ready!(Pin::new(upstream).poll_frame(cx)) {
                // The emulator ended the stream first: pass on what is left, as it came.
                None => {
                    this.upstream = None;
                    this.mode = Mode::Passing;
                    this.ready.push_back(this.messages.take_rest());
                }
                Some(Err(err)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Some(Ok(frame)) => {
                    // Trailers carry no messages; an event stream has none.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(message) = this.take_in(data) {
                        (this.report)(format!("SubscribeToShard: {message}"));
                        this.finished = true;
                        return Poll::Ready(Some(Err(message.into())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::BufMut;
    use futures::stream;
    use http_body_util::StreamBody;

    use super::*;

    /// Encoded headers: `(name, type, value bytes)`, the value already carrying its length if any.
    fn headers(list: &[(&str, u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value_type, value) in list {
            out.push(u8::try_from(name.len()).expect("short name"));
            out.extend_from_slice(name.as_bytes());
            out.push(*value_type);
            out.extend_from_slice(value);
        }
        out
    }

    fn string(value: &str) -> Vec<u8> {
        let mut out = u16::try_from(value.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(value.as_bytes());
        out
    }

    /// A message with these headers and payload; the checksums are not checked.
    fn message(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = 12 + headers.len() + payload.len() + 4;
        let mut out = BytesMut::new();
        out.put_u32(u32::try_from(total).expect("small"));
        out.put_u32(u32::try_from(headers.len()).expect("small"));
        out.put_u32(0xDEAD_BEEF);
        out.put_slice(headers);
        out.put_slice(payload);
        out.put_u32(0xFEED_FACE);
        out.to_vec()
    }

    fn typed(message_type: &str, payload: &[u8]) -> Vec<u8> {
        let value = string(message_type);
        message(&headers(&[(":message-type", 7, &value)]), payload)
    }

    fn three() -> Vec<Vec<u8>> {
        vec![
            typed("event", b"initial"),
            typed("event", b""),
            typed("event", &[7; 300]),
        ]
    }

    #[test]
    fn splits_messages_spread_over_chunks() {
        let wire: Vec<u8> = three().concat();
        for chunk_len in [1, 2, 7, 11, 12, 13, 50, wire.len()] {
            let mut split = Messages::default();
            let mut got = Vec::new();
            for chunk in wire.chunks(chunk_len) {
                got.extend(split.push(chunk).expect("framing"));
            }
            let got: Vec<Vec<u8>> = got.iter().map(|m| m.to_vec()).collect();
            assert_eq!(got, three(), "chunks of {chunk_len}");
            assert!(split.take_rest().is_empty());
        }
    }

    #[test]
    fn several_messages_in_one_chunk_come_out_in_order() {
        let mut split = Messages::default();
        let got = split.push(&three().concat()).expect("framing");
        let got: Vec<Vec<u8>> = got.iter().map(|m| m.to_vec()).collect();
        assert_eq!(got, three());
    }

    #[test]
    fn a_partial_trailing_message_is_held_back() {
        let mut split = Messages::default();
        let mut wire = three().concat();
        let fourth = typed("event", b"tail");
        wire.extend_from_slice(&fourth[..fourth.len() - 1]);
        assert_eq!(split.push(&wire).expect("framing").len(), 3);
        assert_eq!(split.take_rest().to_vec(), fourth[..fourth.len() - 1]);
        // A prelude alone is not a message either.
        assert!(split.push(&fourth[..8]).expect("framing").is_empty());
        let rest = split.push(&fourth[8..]).expect("framing");
        assert_eq!(
            rest.iter().map(|m| m.to_vec()).collect::<Vec<_>>(),
            [fourth]
        );
    }

    #[test]
    fn lengths_no_message_can_have_are_refused() {
        let mut too_short = message(&[], b"");
        too_short[3] = 15;
        assert!(Messages::default().push(&too_short).is_err());
        let mut headers_too_long = message(&[0; 4], b"");
        headers_too_long[7] = 5;
        assert!(Messages::default().push(&headers_too_long).is_err());
    }

    #[test]
    fn reads_string_headers_past_other_types() {
        let event = string("SubscribeToShardEvent");
        let encoded = headers(&[
            (":flag", 0, &[]),
            (":n", 4, &[0, 0, 0, 9]),
            (":blob", 6, &[0, 2, 1, 2]),
            (":id", 9, &[0; 16]),
            (":event-type", 7, &event),
        ]);
        let m = message(&encoded, b"{}");
        assert_eq!(
            string_header(&m, ":event-type"),
            Some("SubscribeToShardEvent")
        );
        assert_eq!(string_header(&m, ":n"), None);
        assert_eq!(string_header(&m, ":message-type"), None);
        // A header running past its block is garbled, not read.
        assert_eq!(string_header(&m[..20], ":event-type"), None);
    }

    fn upstream(chunks: Vec<Vec<u8>>) -> ProxyBody {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
        StreamBody::new(stream::iter(frames)).boxed()
    }

    /// Two messages in a chunk, the third split over two chunks.
    fn chunked(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let wire = messages.concat();
        let split_at = messages[0].len() + messages[1].len() + 10;
        vec![wire[..split_at].to_vec(), wire[split_at..].to_vec()]
    }

    async fn drain(mut body: ProxyBody) -> (Vec<u8>, Option<String>) {
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => got.extend_from_slice(&frame.into_data().expect("data")),
                Err(err) => return (got, Some(err.to_string())),
            }
        }
        (got, None)
    }

    fn no_failures() -> ReportFailure {
        Box::new(|message| panic!("unexpected proxy failure: {message}"))
    }

    fn shaped(after: u64, then: Then) -> ProxyBody {
        let decide: Decide = Box::new(move || Some((after, then)));
        subscription(upstream(chunked(&three())), decide, no_failures())
    }

    #[tokio::test(start_paused = true)]
    async fn forwards_whole_messages_then_ends_or_cuts() {
        assert_eq!(
            drain(shaped(2, Then::End)).await,
            (three()[..2].concat(), None)
        );
        assert_eq!(drain(shaped(0, Then::End)).await, (vec![], None));
        let (got, err) = drain(shaped(1, Then::Cut)).await;
        assert_eq!(got, three()[0]);
        assert_eq!(
            err.as_deref(),
            Some("event stream cut by an injected fault")
        );
        // Fewer messages than allowed: the stream ends as the emulator ended it.
        assert_eq!(drain(shaped(5, Then::Cut)).await, (three().concat(), None));
        let mut wire = chunked(&three());
        wire.push(b"\0\0\0".to_vec());
        let decide: Decide = Box::new(|| Some((9, Then::End)));
        let body = subscription(upstream(wire), decide, no_failures());
        assert_eq!(
            drain(body).await.0,
            [three().concat(), b"\0\0\0".to_vec()].concat()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_sends_nothing_more_and_stays_open() {
        let mut body = shaped(2, Then::Stall);
        for expected in &three()[..2] {
            let frame = body.frame().await.expect("a frame").expect("data");
            assert_eq!(&frame.into_data().expect("data").to_vec(), expected);
        }
        let next = tokio::time::timeout(Duration::from_secs(3600), body.frame()).await;
        assert!(next.is_err(), "stalled, not ended: {next:?}");
        assert!(!body.is_end_stream());
    }

    #[tokio::test]
    async fn unshaped_and_refused_subscriptions_pass_through_untouched() {
        let wire = chunked(&three());
        let body = subscription(upstream(wire), Box::new(|| None), no_failures());
        assert_eq!(drain(body).await, (three().concat(), None));
        // kinesis-mock refuses a second subscription with an exception message: no fault is asked.
        let asked = Arc::new(AtomicBool::new(false));
        let flag = asked.clone();
        let decide: Decide = Box::new(move || {
            flag.store(true, Ordering::SeqCst);
            Some((0, Then::Cut))
        });
        let refusal = [typed("exception", b"{}"), typed("event", b"")].concat();
        let body = subscription(upstream(vec![refusal.clone()]), decide, no_failures());
        assert_eq!(drain(body).await, (refusal, None));
        assert!(!asked.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_body_that_is_no_event_stream_fails_and_is_reported() {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let sink = failures.clone();
        let report: ReportFailure = Box::new(move |m| sink.lock().expect("lock").push(m));
        let garbage = [0, 0, 0, 5, 0, 0, 0, 0, b'{', b'}', 0, 0, 0, 0, 0, 0];
        let decide: Decide = Box::new(|| Some((3, Then::End)));
        let body = subscription(upstream(vec![garbage.to_vec()]), decide, report);
        let (got, err) = drain(body).await;
        assert!(got.is_empty() && err.is_some());
        assert_eq!(failures.lock().expect("lock").len(), 1);
    }
}
