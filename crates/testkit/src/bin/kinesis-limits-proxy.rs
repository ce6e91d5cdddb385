//! Runs the limits & faults proxy in front of a Kinesis emulator, for benchmarks.
//!
//! ```text
//! kinesis-limits-proxy [--upstream URL] [--scale F] [--unlimited]
//! ```
//!
//! The upstream defaults to `$ASYNC_KINESIS_KINESALITE_ENDPOINT`, else `http://127.0.0.1:4569`.
//! `--scale F` multiplies every AWS limit by F; `--unlimited` switches them off. The first line on
//! stdout is the proxy's URL; it runs until Ctrl-C and then prints its counters.

use std::process::ExitCode;

use testkit::proxy::{Limits, LimitsProxy, ProxyConfig};

struct Args {
    upstream: String,
    limits: Limits,
}

fn parse_args() -> Result<Args, String> {
    let mut upstream = std::env::var("ASYNC_KINESIS_KINESALITE_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4569".to_owned());
    let mut limits = Limits::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--upstream" => upstream = args.next().ok_or("--upstream needs a URL")?,
            "--scale" => {
                let factor: f64 = args
                    .next()
                    .ok_or("--scale needs a number")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?;
                limits = limits.scaled(factor);
            }
            "--unlimited" => limits = Limits::unlimited(),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: kinesis-limits-proxy [--upstream URL] [--scale F] [--unlimited]"
                ));
            }
        }
    }
    Ok(Args { upstream, limits })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let config = ProxyConfig {
        limits: args.limits,
        ..ProxyConfig::default()
    };
    let proxy = match LimitsProxy::start(&args.upstream, config).await {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("kinesis-limits-proxy: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", proxy.endpoint_url());
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("kinesis-limits-proxy: waiting for Ctrl-C failed: {err}");
    }
    let counters = proxy.counters();
    for (operation, calls) in counters.calls_by_operation() {
        eprintln!("{operation}: {calls} calls");
    }
    for (shard, c) in counters.shards() {
        eprintln!(
            "{}/{}: accepted {} ({} bytes), throttled {}, faulted {}, GetRecords {} (+{} throttled)",
            shard.stream,
            shard.shard_id,
            c.total.accepted_records,
            c.total.accepted_bytes,
            c.total.throttled_records,
            c.faulted_records,
            c.total.get_records_calls,
            c.total.throttled_get_records,
        );
    }
    match proxy.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kinesis-limits-proxy: {err}");
            ExitCode::FAILURE
        }
    }
}
