//! `classy-sync org ...`: onboarding and managing organizations.

use crate::audit::{state, Audited};
use crate::cli::OrgCommand;
use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use classy_sync_core::domain::organization::webhook_secret_name;
use classy_sync_core::domain::{OrgId, OrgStatus, Organization};
use classy_sync_core::ports::{AppCredentials, SecretError};
use secrecy::{ExposeSecret, SecretString};
use std::io::IsTerminal;
use std::process::ExitCode;

/// A secret from the environment variable `var`, else a hidden prompt. Never from argv.
fn secret_from_env_or_prompt(var: &str, what: &str) -> Result<SecretString> {
    if let Ok(s) = std::env::var(var) {
        if s.trim().is_empty() {
            bail!("{var} is set but empty");
        }
        return Ok(SecretString::from(s.trim().to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no {what}: set {var} (it is never taken from the command line)");
    }
    let mut label = what.to_string();
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let s = rpassword::prompt_password(format!("{label}: "))
        .with_context(|| format!("cannot read the {what}"))?;
    if s.trim().is_empty() {
        bail!("the {what} must not be empty");
    }
    Ok(SecretString::from(s.trim().to_string()))
}

/// The client secret: from CLASSY_CLIENT_SECRET, else a hidden prompt. Never from argv.
pub(crate) fn client_secret() -> Result<SecretString> {
    secret_from_env_or_prompt("CLASSY_CLIENT_SECRET", "Classy client secret")
}

/// Checks that a webhook signing secret looks like `whsec_<base64>` (what GoFundMe Pro
/// shows); the error names the field and never echoes the value.
pub fn check_webhook_secret(secret: &str) -> Result<(), String> {
    const WHAT: &str = "CLASSY_WEBHOOK_SECRET must be the signing secret GoFundMe Pro shows";
    let Some(b64) = secret.strip_prefix("whsec_") else {
        return Err(format!("{WHAT}: it starts with whsec_"));
    };
    let body = b64.trim_end_matches('=');
    let padding = b64.len() - body.len();
    let alphabet_ok = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    // Standard base64: 4-character groups (padding optional), at least 16 key bytes.
    let len_ok = padding <= 2
        && body.len() % 4 != 1
        && (padding == 0 || b64.len() % 4 == 0)
        && body.len() * 3 / 4 >= 16;
    if alphabet_ok && len_ok {
        Ok(())
    } else {
        Err(format!(
            "{WHAT}: whsec_ followed by base64 (A-Z, a-z, 0-9, +, /) of at least 16 bytes"
        ))
    }
}

/// The receiver's path for an organization's webhooks.
pub fn webhook_path(org: OrgId) -> String {
    format!("/webhooks/classy/{org}")
}

async fn webhook(root: &runtime::Root, org_id: u64, show: bool, url: Option<String>) -> Result<()> {
    let data = root.data();
    let org = data.get_org(org_id).await?;
    let secrets = root.secrets();
    let name = webhook_secret_name(org.id);
    if show {
        let set = match secrets.get(&name).await {
            Ok(_) => true,
            Err(SecretError::NotFound(_)) => false,
            Err(e) => return Err(e).context("cannot read the secret store"),
        };
        let path = webhook_path(org.id);
        match url {
            Some(base) => println!("endpoint: {}{path}", base.trim_end_matches('/')),
            None => println!("endpoint path: {path}"),
        }
        println!(
            "signing secret: {}",
            if set {
                "set"
            } else {
                "not set (classy-sync org webhook <org-id> with CLASSY_WEBHOOK_SECRET)"
            }
        );
        if !org.is_enabled() {
            println!(
                "organization {} is disabled: deliveries are refused (404)",
                org.id
            );
        }
        return Ok(());
    }
    let secret = secret_from_env_or_prompt("CLASSY_WEBHOOK_SECRET", "webhook signing secret")?;
    check_webhook_secret(secret.expose_secret()).map_err(anyhow::Error::msg)?;
    let existed = secrets.get(&name).await.is_ok();
    let saved = secrets.put(&name, secret).await;
    // The state says whether a secret is set, never what it is.
    Audited::new(root, "org webhook secret set", format!("org {}", org.id))
        .org(org.id)
        .before(Some(serde_json::json!({ "secret_set": existed })))
        .finish(saved, |_| Some(serde_json::json!({ "secret_set": true })))
        .await?;
    println!(
        "organization {}: webhook signing secret saved; endpoint path {}",
        org.id,
        webhook_path(org.id)
    );
    Ok(())
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
    match cmd {
        OrgCommand::Plugin(p) => super::plugin::run(target, p).await,
        OrgCommand::Import(a) => super::tenants::import(target, a).await,
        OrgCommand::Update(a) => super::tenants::update(target, a).await,
        OrgCommand::Remove(a) => super::tenants::remove(target, a).await,
        OrgCommand::Credentials(crate::commands::credentials::CredentialsArgs {
            action: Some(crate::commands::credentials::CredentialsAction::Rotate(a)),
            ..
        }) => super::tenants::rotate(target, a).await,
        cmd => run_one(target, cmd).await,
    }
}

async fn run_one(target: &runtime::Target, cmd: OrgCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    if let OrgCommand::Webhook { org_id, show, url } = cmd {
        webhook(&root, org_id, show, url).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let data = &root.data();
    match cmd {
        OrgCommand::Add {
            org_id,
            name,
            client_id,
            no_verify,
            template,
        } => {
            // An unknown template is refused before anything is written.
            let template = match &template {
                Some(name) => Some((name.clone(), data.template(name).await?)),
                None => None,
            };
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
            let added = data
                .add_org(root.secrets().as_ref(), org_id, &name, &client_id, secret)
                .await;
            // The state is the organization (name, client id, status): never the secret.
            let org = Audited::new(&root, "org add", format!("org {org_id}"))
                .org(org_id)
                .finish(added, state)
                .await?;
            println!(
                "added organization {} ({}), client {}",
                org.id, org.name, org.client_id
            );
            if let Some((name, t)) = template {
                let result = root
                    .plugins()
                    .apply_template(org.id, &t)
                    .await
                    .with_context(|| format!("template {name} on organization {}", org.id));
                let applied = Audited::new(&root, "org template", format!("org {}", org.id))
                    .org(org.id)
                    .finish(result, state)
                    .await?;
                println!("template {name}:");
                for line in applied.lines() {
                    println!("  {line}");
                }
                if applied.lines().is_empty() {
                    println!("  nothing to change");
                }
            }
        }
        OrgCommand::Credentials(a) => {
            // Recording an expiry or rotation date is audited (the value is never known here).
            let changing = a.action.is_none()
                && (a.clear
                    || a.expires_at.is_some()
                    || a.rotated_at.is_some()
                    || a.max_age_days.is_some());
            match a.org_id.filter(|_| changing) {
                Some(org_id) => {
                    let before = data.credential_info(org_id).await.ok();
                    let done = super::credentials::run(data, a).await;
                    let after = data.credential_info(org_id).await.ok();
                    Audited::new(&root, "org credentials", format!("org {org_id}"))
                        .org(org_id)
                        .before(before.as_ref().and_then(state))
                        .finish(done, |_| after.as_ref().and_then(state))
                        .await?;
                }
                None => super::credentials::run(data, a).await?,
            }
        }
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
            let before = data.get_org(org_id).await.ok();
            let done = data.set_org_status(org_id, OrgStatus::Disabled).await;
            Audited::new(&root, "org disable", format!("org {org_id}"))
                .org(org_id)
                .before(before.as_ref().and_then(state))
                .finish(done, state)
                .await?;
            println!("organization {org_id} disabled");
        }
        OrgCommand::Enable { org_id } => {
            let before = data.get_org(org_id).await.ok();
            let done = data.set_org_status(org_id, OrgStatus::Enabled).await;
            Audited::new(&root, "org enable", format!("org {org_id}"))
                .org(org_id)
                .before(before.as_ref().and_then(state))
                .finish(done, state)
                .await?;
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
            let before = data.get_org(org_id).await.ok();
            let done = data.set_org_interval(org_id, entity, secs).await;
            let org = Audited::new(&root, "org schedule", format!("org {org_id} {entity}"))
                .org(org_id)
                .before(before.as_ref().and_then(state))
                .finish(done, state)
                .await?;
            println!(
                "organization {} {entity}: {}",
                org.id,
                secs.map_or("default".into(), |s| format!("every {s}s"))
            );
        }
        OrgCommand::Plugin(_)
        | OrgCommand::Webhook { .. }
        | OrgCommand::Import(_)
        | OrgCommand::Update(_)
        | OrgCommand::Remove(_) => unreachable!("handled by run"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secret_must_look_like_whsec_base64() {
        // The Svix test vector's secret.
        assert!(check_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(check_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAQ==").is_ok());
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_",
            "whsec_short",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La!aSw",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw===",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La LaSw",
        ] {
            let e = check_webhook_secret(bad).unwrap_err();
            assert!(e.contains("CLASSY_WEBHOOK_SECRET"), "{e}");
            if bad.len() > 8 {
                assert!(!e.contains(&bad[6..]), "the value is echoed: {e}");
            }
        }
        assert_eq!(webhook_path(42), "/webhooks/classy/42");
    }
}
