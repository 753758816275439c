//! `classy-sync`: the command line of classy-sync. A thin entry point: parse, build the local
//! runtime, hand over to a command module.

mod cli;
mod commands;
mod output;
mod runtime;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    runtime::init_logging(args.verbose, args.log_json);
    match commands::dispatch(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
