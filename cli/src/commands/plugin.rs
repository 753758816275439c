//! `classy-sync org plugin add|remove|show`: per-organization destination plugins.

use super::change_feed;
use crate::cli::PluginCommand;
use crate::output::{opt, print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_core::ports::PluginConfig;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::process::ExitCode;

/// The plugin's credential: `<PLUGIN>_API_KEY` from the environment, else a hidden prompt.
fn credential(plugin: &str) -> Result<SecretString> {
    let var = format!("{}_API_KEY", plugin.to_uppercase());
    if let Ok(s) = std::env::var(&var) {
        if s.trim().is_empty() {
            bail!("{var} is set but empty");
        }
        return Ok(SecretString::from(s.trim().to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no {plugin} API key: set {var} (it is never taken from the command line)");
    }
    let s = rpassword::prompt_password(format!("{plugin} API key: "))
        .context("cannot read the API key")?;
    if s.trim().is_empty() {
        bail!("the API key must not be empty");
    }
    Ok(SecretString::from(s.trim().to_string()))
}

fn settings_from(
    list_id: Option<String>,
    segments: Option<std::path::PathBuf>,
    settings: Option<String>,
    previous: Option<&PluginConfig>,
) -> Result<Value> {
    let mut v = match settings {
        Some(s) => serde_json::from_str::<Value>(&s).context("--settings is not valid JSON")?,
        None => previous
            .map(|p| p.settings.clone())
            .unwrap_or_else(|| json!({})),
    };
    let Some(obj) = v.as_object_mut() else {
        bail!("--settings must be a JSON object");
    };
    if let Some(l) = list_id {
        obj.insert("list_id".into(), json!(l));
    }
    if let Some(path) = segments {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let rules: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        obj.insert("segments".into(), rules);
    }
    Ok(v)
}

pub async fn run(target: &runtime::Target, cmd: PluginCommand) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let service = &root.plugins();
    match cmd {
        PluginCommand::Add {
            org_id,
            plugin,
            list_id,
            segments,
            settings,
            keep_credential,
            disabled,
            no_verify,
            webhook,
            event_bus,
            detail_type_prefix,
        } => {
            service.data.get_org(org_id).await?;
            let spec = service.plugins.find(&plugin)?;
            let previous = service.plugin_config(org_id, spec.name).await?;
            let mut settings = settings_from(list_id, segments, settings, previous.as_ref())?;
            let target = change_feed::Target::from_flags(webhook, event_bus, detail_type_prefix);
            change_feed::apply(spec.name, &target, &mut settings)?;
            (spec.validate)(&settings)?;
            let webhook_secret = change_feed::needs_secret(spec.name, &settings);
            let secret_name = (spec.needs_secret || webhook_secret)
                .then(|| plugin_secret_name(org_id, spec.name));
            if let Some(name) = &secret_name {
                if !(keep_credential && previous.is_some()) {
                    let value = if webhook_secret {
                        change_feed::webhook_credential()?
                    } else {
                        credential(spec.name)?
                    };
                    service.secrets.put(name, value).await?;
                }
            }
            let config = PluginConfig {
                plugin: spec.name.to_string(),
                enabled: !disabled,
                settings,
                secret_name,
            };
            if !no_verify {
                let ctx = service.destination_context(org_id, config.clone(), false);
                let mut p = (spec.build)(&config)?;
                p.prepare(&ctx).await.with_context(|| {
                    format!("cannot use {} for organization {org_id}", spec.name)
                })?;
                let h = p.health(&ctx).await?;
                let _ = p.shutdown().await;
                if !h.ok {
                    bail!(
                        "{} is not usable: {} (use --no-verify to save anyway)",
                        spec.name,
                        h.detail
                    );
                }
                println!("{}: {}", spec.name, h.detail);
            }
            let saved = service.put_plugin_config(org_id, config.clone()).await;
            // The state is the plugin's settings; its credential is in the secret store.
            crate::audit::Audited::new(
                &root,
                "org plugin add",
                format!("org {org_id} plugin {}", spec.name),
            )
            .org(org_id)
            .before(previous.as_ref().and_then(crate::audit::state))
            .finish(saved, |_| crate::audit::state(&config))
            .await?;
            println!(
                "organization {org_id}: plugin {} configured ({})",
                spec.name,
                if disabled { "disabled" } else { "enabled" }
            );
        }
        PluginCommand::Remove { org_id, plugin } => {
            let spec = service.plugins.find(&plugin)?;
            let before = service
                .plugin_config(org_id, spec.name)
                .await
                .ok()
                .flatten();
            let removed = service.remove_plugin_config(org_id, spec.name).await;
            // The change feed's webhook target keeps its URL and signing secret there too.
            if spec.needs_secret || spec.name == classy_sync_destinations::change_feed::NAME {
                let _ = service
                    .secrets
                    .delete(&plugin_secret_name(org_id, spec.name))
                    .await;
            }
            let removed = removed.map_err(anyhow::Error::from).and_then(|existed| {
                if existed {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(
                        "plugin {} is not configured for organization {org_id}",
                        spec.name
                    ))
                }
            });
            crate::audit::Audited::new(
                &root,
                "org plugin remove",
                format!("org {org_id} plugin {}", spec.name),
            )
            .org(org_id)
            .before(before.as_ref().and_then(crate::audit::state))
            .finish(removed, |_| None)
            .await?;
            println!("organization {org_id}: plugin {} removed", spec.name);
        }
        PluginCommand::Show {
            org_id,
            json,
            check,
        } => {
            service.data.get_org(org_id).await?;
            let mut rows = Vec::new();
            for c in service.plugin_configs(org_id).await? {
                let state = service.plugin_state(org_id, &c.plugin).await?;
                let health = if check {
                    let ctx = service.destination_context(org_id, c.clone(), true);
                    let spec = service.plugins.find(&c.plugin)?;
                    let mut p = (spec.build)(&c)?;
                    let h = match p.prepare(&ctx).await {
                        Ok(()) => p.health(&ctx).await.map(|h| {
                            format!(
                                "{}: {}",
                                if h.ok { "healthy" } else { "unhealthy" },
                                h.detail
                            )
                        }),
                        Err(e) => Err(e),
                    };
                    let _ = p.shutdown().await;
                    Some(h.unwrap_or_else(|e| format!("unhealthy: {e}")))
                } else {
                    None
                };
                rows.push((c, state, health));
            }
            if json {
                let v: Vec<Value> = rows
                    .iter()
                    .map(|(c, s, h)| json!({"config": c, "state": s, "health": h}))
                    .collect();
                print_json(&v)?;
            } else {
                let mut t = table(&[
                    "plugin",
                    "enabled",
                    "settings",
                    "last success",
                    "failures",
                    "last error",
                    "health",
                ]);
                for (c, s, h) in &rows {
                    let when = |t: &Option<i64>| {
                        opt(&t
                            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                            .map(|d| d.to_rfc3339()))
                    };
                    t.add_row(vec![
                        c.plugin.clone(),
                        c.enabled.to_string(),
                        c.settings.to_string(),
                        when(&s.last_success_at),
                        s.consecutive_failures.to_string(),
                        opt(&s.last_error),
                        opt(h),
                    ]);
                }
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
