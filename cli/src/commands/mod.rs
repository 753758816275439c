//! One module per command.

mod export;
mod org;
mod run;
mod sandbox;
mod status;
mod sync;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub async fn dispatch(args: Cli) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Org(cmd) => org::run(&args.data_dir, cmd).await,
        Command::Sync(a) => sync::run(&args.data_dir, a).await,
        Command::Status(a) => status::run(&args.data_dir, a).await,
        Command::Export(a) => export::run(&args.data_dir, a).await,
        Command::Run(a) => run::run(&args.data_dir, a).await,
        Command::Sandbox(a) => sandbox::run(a).await,
    }
}
