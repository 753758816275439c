//! One module per command.

mod change_feed;
mod export;
mod org;
mod plugin;
mod push;
mod run;
mod sandbox;
mod status;
mod sync;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub async fn dispatch(args: Cli) -> anyhow::Result<ExitCode> {
    let target = crate::runtime::Target {
        data_dir: args.data_dir.clone(),
        backend: args.backend,
    };
    match args.command {
        Command::Org(cmd) => org::run(&target, cmd).await,
        Command::Sync(a) => sync::run(&target, a).await,
        Command::Status(a) => status::run(&target, a).await,
        Command::Export(a) => export::run(&target, a).await,
        Command::Run(a) => run::run(&target, a).await,
        Command::Sandbox(a) => sandbox::run(a).await,
        Command::Push(a) => push::run(&target, a).await,
    }
}
