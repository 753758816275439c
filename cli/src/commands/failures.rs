//! `classy-sync failures list [<org>] | reset <org> [--entity E]`.

use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::Result;
use clap::Subcommand;
use classy_sync_core::domain::{Entity, Timestamp};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum FailuresCommand {
    /// Pairs with a failure streak, and those disabled by one.
    List {
        org_id: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Clear the streak and re-enable automatic syncs (all entities unless --entity).
    Reset {
        org_id: u64,
        #[arg(long, value_parser = crate::cli::parse_entity)]
        entity: Option<Entity>,
    },
}

pub async fn run(target: &runtime::Target, cmd: FailuresCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let data = &root.data();
    match cmd {
        FailuresCommand::List { org_id, json } => {
            let pairs = data.failing_pairs(org_id).await?;
            if json {
                print_json(&pairs)?;
                return Ok(ExitCode::SUCCESS);
            }
            if pairs.is_empty() {
                println!("no failing organization×entity pairs");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(&[
                "org",
                "name",
                "entity",
                "failures",
                "state",
                "last failure",
                "last error",
            ]);
            for p in &pairs {
                t.add_row(vec![
                    p.org.to_string(),
                    p.org_name.clone(),
                    p.entity.to_string(),
                    p.failures.consecutive_failures.to_string(),
                    if p.failures.is_disabled() {
                        "disabled".into()
                    } else {
                        "retrying with backoff".into()
                    },
                    opt(&p
                        .failures
                        .last_failure_at
                        .map(|t| Timestamp::from_unix(t).to_rfc3339())),
                    opt(&p.failures.last_error),
                ]);
            }
            println!("{t}");
        }
        FailuresCommand::Reset { org_id, entity } => {
            let what = match entity {
                Some(e) => format!("org {org_id} {e}"),
                None => format!("org {org_id}"),
            };
            let reset = data.reset_failures(org_id, entity).await;
            let changed = crate::audit::Audited::new(&root, "failures reset", what)
                .org(org_id)
                .finish(reset, |changed| {
                    Some(serde_json::json!({ "reset": changed.iter().map(|e| e.to_string()).collect::<Vec<_>>() }))
                })
                .await?;
            if changed.is_empty() {
                println!("organization {org_id}: nothing to reset");
            } else {
                let names: Vec<String> = changed.iter().map(|e| e.to_string()).collect();
                println!(
                    "organization {org_id}: reset {} (due at the next schedule check)",
                    names.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
