//! `async-kinesis`: look at, read, write and reshard AWS Kinesis data streams.
//!
//! Everything Kinesis is done by the `async_kinesis` library; this binary is the command line
//! (clap) and the presentation (tables, JSON, progress bars).
#![deny(missing_docs)]

mod checkpoint_spec;
mod cli;
mod commands;
mod error;
mod format;
mod item;
mod key_field;
mod keys;
mod msgpack_json;
mod output;
mod processor_kind;
mod rate;
mod time_spec;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;
use error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with 2 here
    init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return report(&CliError::Failed(format!(
                "cannot start the runtime: {err}"
            )));
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

fn report(err: &CliError) -> ExitCode {
    if let Some(message) = err.message() {
        eprintln!("error: {message}");
    }
    ExitCode::from(err.exit_code())
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        // Undecodable records are reported by `tail` itself, with their position.
        (false, 0) => "warn,async_kinesis::consumer::decode=error",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // RUST_LOG, when set, says more precisely what to log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
