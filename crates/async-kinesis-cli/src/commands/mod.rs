//! One module per command; each takes its arguments and the global options.

mod bench;
mod describe;
mod list;
mod metrics_server;
mod put;
mod reshard;
mod shard_for;
mod status;
mod tail;

use async_kinesis::{ConnectOptions, StreamClient};
use clap::CommandFactory;

use crate::cli::{Cli, Command, Global};
use crate::error::CliError;

/// Runs the command.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let global = &cli.global;
    match cli.command {
        Command::List => list::run(global).await,
        Command::Describe(args) => describe::run(global, args).await,
        Command::ShardFor(args) => shard_for::run(global, args).await,
        Command::Tail(args) => {
            let _metrics = metrics_server::start(global, &args.metrics)?;
            tail::run(global, args).await
        }
        Command::Put(args) => {
            let _metrics = metrics_server::start(global, &args.metrics)?;
            put::run(global, args).await
        }
        Command::Status(args) => status::run(global, args).await,
        Command::Reshard(args) => reshard::run(global, args).await,
        Command::Bench(args) => bench::run(global, args).await,
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "async-kinesis",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

impl Global {
    /// The AWS connection these options describe. Without `--endpoint-url` (or
    /// `AWS_ENDPOINT_URL_KINESIS`), `AWS_ENDPOINT_URL` applies, as in the AWS tools.
    pub(crate) fn connect_options(&self) -> ConnectOptions {
        let mut options = self.aws_options();
        let endpoint = self.endpoint_url.clone().or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|v| !v.is_empty())
        });
        if let Some(url) = endpoint {
            options = options.endpoint_url(url);
        }
        options
    }

    /// Region and profile only, for other AWS services (DynamoDB).
    pub(crate) fn aws_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::default();
        if let Some(region) = &self.region {
            options = options.region(region);
        }
        if let Some(profile) = &self.profile {
            options = options.profile(profile);
        }
        options
    }

    /// A client bound to `stream`.
    pub(crate) async fn stream_client(&self, stream: &str) -> Result<StreamClient, CliError> {
        Ok(StreamClient::connect(stream, &self.connect_options()).await?)
    }

    /// Whether progress bars and notes go to stderr.
    pub(crate) fn chatty(&self) -> bool {
        !self.quiet
    }
}
