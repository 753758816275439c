//! One module per command.

pub mod alerts;
mod analytics;
pub mod audit;
mod change_feed;
pub mod credentials;
pub mod dlq;
mod export;
pub mod failures;
mod fep;
pub mod health;
mod listen;
mod notify;
mod org;
mod plugin;
mod push;
mod quality;
pub mod report;
mod run;
mod status;
mod sync;
pub mod template;
pub mod tenants;
pub mod usage;

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
        Command::Health(a) => health::run(&target, a).await,
        Command::Alerts(c) => alerts::run(&target, c).await,
        Command::Failures(c) => failures::run(&target, c).await,
        Command::Dlq(c) => dlq::run(&target, c).await,
        Command::Analytics(cmd) => analytics::run(&target, cmd).await,
        Command::Quality(cmd) => quality::run(&target, cmd).await,
        Command::Report(c) => report::run(&target, c).await,
        Command::Notify(cmd) => notify::run(&target, cmd).await,
        Command::Push(a) => push::run(&target, a).await,
        Command::Template(c) => template::run(&target, c).await,
        Command::Audit(c) => audit::run(&target, c).await,
        Command::Usage(a) => usage::run(&target, a).await,
    }
}
