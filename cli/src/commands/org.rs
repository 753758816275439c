//! `classy-sync org ...`: onboarding and managing organizations.

use crate::cli::OrgCommand;
use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use classy_sync_core::domain::{OrgStatus, Organization};
use classy_sync_core::ports::AppCredentials;
use secrecy::SecretString;
use std::io::IsTerminal;
use std::process::ExitCode;

/// The client secret: from CLASSY_CLIENT_SECRET, else a hidden prompt. Never from argv.
fn client_secret() -> Result<SecretString> {
    if let Ok(s) = std::env::var("CLASSY_CLIENT_SECRET") {
        if s.trim().is_empty() {
            bail!("CLASSY_CLIENT_SECRET is set but empty");
        }
        return Ok(SecretString::from(s.trim().to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no client secret: set CLASSY_CLIENT_SECRET (it is never taken from the command line)"
        );
    }
    let s = rpassword::prompt_password("Classy client secret: ")
        .context("cannot read the client secret")?;
    if s.trim().is_empty() {
        bail!("the client secret must not be empty");
    }
    Ok(SecretString::from(s.trim().to_string()))
}

fn org_row(o: &Organization) -> Vec<String> {
    let overrides: Vec<String> = o
        .schedule
        .iter()
        .map(|(e, s)| format!("{e}={s}s"))
        .collect();
    vec![
        o.id.to_string(),
        o.name.clone(),
        o.client_id.clone(),
        o.status.to_string(),
        if overrides.is_empty() {
            "default".into()
        } else {
            overrides.join(" ")
        },
    ]
}

pub async fn run(target: &runtime::Target, cmd: OrgCommand) -> Result<ExitCode> {
    if let OrgCommand::Plugin(p) = cmd {
        return super::plugin::run(target, p).await;
    }
    let root = runtime::open(target).await?;
    let data = &root.data();
    match cmd {
        OrgCommand::Add {
            org_id,
            name,
            client_id,
            no_verify,
        } => {
            let secret = client_secret()?;
            if !no_verify {
                let creds = AppCredentials {
                    client_id: client_id.clone(),
                    client_secret: secret.clone(),
                };
                runtime::classy()?
                    .verify(&creds, org_id)
                    .await
                    .with_context(|| {
                        format!("cannot read organization {org_id} with client {client_id}")
                    })?;
            }
            let org = data
                .add_org(root.secrets().as_ref(), org_id, &name, &client_id, secret)
                .await?;
            println!(
                "added organization {} ({}), client {}",
                org.id, org.name, org.client_id
            );
        }
        OrgCommand::Credentials(a) => super::credentials::run(data, a).await?,
        OrgCommand::List { json } => {
            let orgs = data.list_orgs().await?;
            if json {
                print_json(&orgs)?;
            } else {
                let mut t = table(&["id", "name", "client id", "status", "schedule"]);
                for o in &orgs {
                    t.add_row(org_row(o));
                }
                println!("{t}");
            }
        }
        OrgCommand::Show { org_id, json } => {
            let org = data.get_org(org_id).await?;
            if json {
                print_json(&org)?;
            } else {
                let mut t = table(&["id", "name", "client id", "status", "schedule"]);
                t.add_row(org_row(&org));
                println!("{t}");
                let status = data.status(Some(org_id)).await?;
                let mut s = table(&["entity", "cursor", "last success", "failures"]);
                for e in status {
                    s.add_row(vec![
                        e.entity.to_string(),
                        opt(&e.cursor),
                        opt(&e.last_success_at),
                        e.failures.consecutive_failures.to_string(),
                    ]);
                }
                println!("{s}");
            }
        }
        OrgCommand::Disable { org_id } => {
            data.set_org_status(org_id, OrgStatus::Disabled).await?;
            println!("organization {org_id} disabled");
        }
        OrgCommand::Enable { org_id } => {
            data.set_org_status(org_id, OrgStatus::Enabled).await?;
            println!("organization {org_id} enabled");
        }
        OrgCommand::Compare { org_ids, opts } => {
            return super::analytics::compare(data, &org_ids, &opts).await;
        }
        OrgCommand::Schedule {
            org_id,
            entity,
            every,
        } => {
            let secs = match every.trim() {
                "default" => None,
                s => Some(
                    s.parse::<u64>()
                        .with_context(|| format!("--every {s:?}: expected seconds or `default`"))?,
                ),
            };
            let org = data.set_org_interval(org_id, entity, secs).await?;
            println!(
                "organization {} {entity}: {}",
                org.id,
                secs.map_or("default".into(), |s| format!("every {s}s"))
            );
        }
        OrgCommand::Plugin(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
