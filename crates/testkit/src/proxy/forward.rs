//! Talking to the emulator, and building the responses the proxy sends back.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::wire;

/// Errors inside response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the proxy sends.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// Headers that describe one connection or one encoding of the body, not the message.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from.iter().filter(|(n, _)| !is_hop_by_hop(n)) {
        to.append(name.clone(), value.clone());
    }
}

/// The emulator the proxy forwards to.
pub(crate) struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    scheme_authority: String,
}

impl Upstream {
    /// `endpoint` is the emulator's URL, e.g. `http://127.0.0.1:4568`.
    pub(crate) fn new(endpoint: &str) -> Result<Self, String> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| format!("upstream {endpoint:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "upstream {endpoint:?} must be a plain http:// URL (the local emulators' plain port)"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("upstream {endpoint:?} has no host"))?;
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            scheme_authority: format!("http://{authority}"),
        })
    }

    /// Sends the request, as received but with `body`, to the emulator.
    pub(crate) async fn send(
        &self,
        parts: &hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let uri: Uri = format!("{}{path}", self.scheme_authority)
            .parse()
            .map_err(|e| format!("cannot build upstream URL for {path:?}: {e}"))?;
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| format!("cannot build upstream request: {e}"))?;
        copy_headers(&parts.headers, request.headers_mut());
        self.client.request(request).await.map_err(|e| {
            let detail = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!(
                "forwarding to {} failed: {e}{detail}",
                self.scheme_authority
            )
        })
    }
}

/// Passes an emulator response on as a stream (event streams are never buffered).
pub(crate) fn stream_response(response: Response<Incoming>) -> Response<ProxyBody> {
    let (parts, body) = response.into_parts();
    let mut out = Response::new(body.map_err(|e| Box::new(e) as BoxError).boxed());
    *out.status_mut() = parts.status;
    copy_headers(&parts.headers, out.headers_mut());
    out
}

/// A fully read emulator response.
pub(crate) struct Collected {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Collected {
    pub(crate) async fn read(response: Response<Incoming>) -> Result<Self, String> {
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("reading the upstream response failed: {e}"))?
            .to_bytes();
        Ok(Self {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends it back as it came.
    pub(crate) fn into_response(self) -> Response<ProxyBody> {
        let body = self.body;
        with_headers(self.status, &self.headers, body)
    }
}

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with the emulator's headers and a body of the proxy's choosing.
pub(crate) fn with_headers(
    status: StatusCode,
    headers: &HeaderMap,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut out = Response::new(full(body));
    *out.status_mut() = status;
    copy_headers(headers, out.headers_mut());
    out
}

/// A successful JSON response made up by the proxy.
pub(crate) fn json_ok(body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut out = Response::new(full(body));
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    out
}

/// An AWS JSON error response: status, `x-amzn-ErrorType`, and `{"__type", "message"}`.
pub(crate) fn aws_error(status: u16, error_type: &str, message: &str) -> Response<ProxyBody> {
    let mut out = Response::new(full(wire::error_body(error_type, message)));
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
    if let Ok(value) = HeaderValue::from_str(error_type) {
        headers.insert(HeaderName::from_static("x-amzn-errortype"), value);
    }
    out
}
