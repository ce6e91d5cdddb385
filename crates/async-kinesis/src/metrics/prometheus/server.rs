//! The `/metrics` HTTP endpoint: a small hyper server of our own rather than the exporter
//! crate's listener, which reports a taken address only as text, cannot say which port it bound
//! (port 0) and cannot be stopped.

use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{PrometheusError, PrometheusHandle};

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `GET /metrics` until [`MetricsServer::shutdown`] (or the end of the runtime).
/// Dropping it leaves the server running.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    handle: PrometheusHandle,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The handle of the installed recorder, e.g. to render without HTTP.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// Stops accepting connections and waits until the listener is closed. The recorder stays
    /// installed (a process cannot uninstall it).
    ///
    /// # Cancel safety
    /// Cancel safe: the server stops either way once this is called.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Binds `addr` synchronously, so a taken address is an error of the install call itself.
pub(super) fn bind<A>(addr: &A) -> Result<std::net::TcpListener, PrometheusError>
where
    A: ToSocketAddrs + fmt::Display,
{
    let bind_error = |source: std::io::Error| {
        let addr = addr.to_string();
        if source.kind() == std::io::ErrorKind::AddrInUse {
            PrometheusError::AddressInUse { addr, source }
        } else {
            PrometheusError::Bind { addr, source }
        }
    };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

pub(super) fn start(
    runtime: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    handle: PrometheusHandle,
    upkeep_interval: Duration,
    addr: String,
) -> Result<MetricsServer, PrometheusError> {
    let bind_error = |source| PrometheusError::Bind {
        addr: addr.clone(),
        source,
    };
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener).map_err(bind_error)?
    };
    let cancel = CancellationToken::new();
    let task = runtime.spawn(run(
        listener,
        handle.clone(),
        upkeep_interval,
        cancel.clone(),
    ));
    tracing::info!(%local_addr, "serving Prometheus metrics on /metrics");
    Ok(MetricsServer {
        local_addr,
        handle,
        cancel,
        task,
    })
}

async fn run(
    listener: TcpListener,
    handle: PrometheusHandle,
    upkeep_interval: Duration,
    cancel: CancellationToken,
) {
    let mut upkeep = tokio::time::interval(upkeep_interval);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = upkeep.tick() => handle.run_upkeep(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| answer(handle.clone(), request));
                        let connection = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            result = connection => {
                                if let Err(err) = result {
                                    tracing::debug!(error = %err, "metrics connection ended with an error");
                                }
                            }
                        }
                    });
                }
                // Out of file descriptors and the like: say so, and keep serving.
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a metrics connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(
    handle: PrometheusHandle,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            // Rendering walks every series: keep it off the runtime's worker threads.
            let body = tokio::task::spawn_blocking(move || handle.render())
                .await
                .unwrap_or_default();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
            response
        }
        (_, "/metrics") => status(StatusCode::METHOD_NOT_ALLOWED),
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(response)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
