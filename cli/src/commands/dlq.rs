//! `classy-sync dlq list | replay [<id>...] [--all]`, on the local queue or SQS.

use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Result};
use clap::Subcommand;
use classy_sync_core::engine::recovery::{dead_letters, replay_dead_letters};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Messages that failed too many times, oldest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Move dead letters back to the queue (fix the cause first).
    Replay {
        /// Message ids (see `dlq list`).
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

pub async fn run(target: &runtime::Target, cmd: DlqCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let queue = root.job_queue()?;
    match cmd {
        DlqCommand::List { limit, json } => {
            let dead = dead_letters(queue.as_ref(), limit).await?;
            if json {
                print_json(&dead)?;
            } else if dead.is_empty() {
                println!("no dead letters");
            } else {
                let mut t = table(&["id", "receives", "org", "entity", "body"]);
                for d in &dead {
                    t.add_row(vec![
                        d.id.clone(),
                        d.receive_count.to_string(),
                        opt(&d.job.as_ref().map(|j| j.org)),
                        opt(&d.job.as_ref().map(|j| j.entity)),
                        d.body.chars().take(80).collect(),
                    ]);
                }
                println!("{t}");
            }
        }
        DlqCommand::Replay { ids, all } => {
            if ids.is_empty() && !all {
                bail!("name the message ids to replay, or --all");
            }
            let what = if all {
                "all dead letters".to_owned()
            } else {
                format!("dead letters {}", ids.join(","))
            };
            let replayed = replay_dead_letters(queue.as_ref(), &ids).await;
            let n = crate::audit::Audited::new(&root, "dlq replay", what)
                .finish(replayed, |n| Some(serde_json::json!({ "replayed": n })))
                .await?;
            println!("replayed {n} message(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
