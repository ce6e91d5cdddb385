//! `--metrics-addr`: the library's Prometheus exporter, serving `/metrics` while a command runs.

use async_kinesis::metrics::prometheus::{self, MetricsServer};

use crate::cli::{Global, MetricsArgs};
use crate::error::{CliError, one_line};

/// Starts serving when `--metrics-addr` was given; the server stops when the value is dropped.
pub(crate) fn start(
    global: &Global,
    args: &MetricsArgs,
) -> Result<Option<MetricsServer>, CliError> {
    let Some(addr) = &args.metrics_addr else {
        return Ok(None);
    };
    let server = prometheus::serve(addr.as_str())
        .map_err(|err| CliError::Failed(format!("--metrics-addr {addr}: {}", one_line(&err))))?;
    if global.chatty() {
        eprintln!("metrics: http://{}/metrics", server.local_addr());
    }
    Ok(Some(server))
}
