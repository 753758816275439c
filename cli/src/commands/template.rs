//! `classy-sync template add|list|show|remove`: tenant templates (schedule overrides, plugin
//! settings, alert routing, report presets) that `org add`, `org import` and `org update`
//! apply with `--template`. Built-in templates are listed and shown but never removed or
//! overwritten.

use crate::audit::{state, Audited};
use crate::output::{print_json, table};
use crate::runtime;
use anyhow::{Context, Result};
use clap::Subcommand;
use classy_sync_core::domain::template::{self, Template};
use classy_sync_core::engine::templates::TemplateEntry;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Store a template from a JSON file (refused naming the field when invalid; never a
    /// secret; a built-in name or an existing template is refused).
    Add {
        /// 1-48 lowercase letters, digits, '-' or '_'.
        name: String,
        /// The template as JSON (see docs/templates.md).
        #[arg(long)]
        file: PathBuf,
    },
    /// Every template, built-in ones first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One template's contents.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a stored template (organizations it was applied to keep their settings).
    Remove { name: String },
}

/// Exit code of input that is refused (an invalid template file), as for other bad input.
const BAD_INPUT: u8 = 2;

fn summary(t: &Template) -> String {
    let mut parts = Vec::new();
    if !t.schedule.is_empty() {
        let s: Vec<String> = t
            .schedule
            .iter()
            .map(|(e, s)| format!("{e}={}s", s.0))
            .collect();
        parts.push(format!("schedule {}", s.join(" ")));
    }
    if !t.plugins.is_empty() {
        let p: Vec<&str> = t.plugins.keys().map(String::as_str).collect();
        parts.push(format!("plugins {}", p.join(",")));
    }
    if let Some(a) = &t.alerts {
        parts.push(format!("alerts -> {}", a.channels.join(",")));
    }
    if !t.reports.is_empty() {
        let r: Vec<&str> = t.reports.iter().map(|r| r.id.as_str()).collect();
        parts.push(format!("reports {}", r.join(",")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

fn print_entries(entries: &[TemplateEntry]) {
    let mut t = table(&["name", "kind", "description", "contents"]);
    for e in entries {
        t.add_row(vec![
            e.name.clone(),
            if e.builtin { "built-in" } else { "stored" }.into(),
            e.description.clone().unwrap_or_else(|| "-".into()),
            summary(&e.template),
        ]);
    }
    println!("{t}");
}

pub async fn run(target: &runtime::Target, cmd: TemplateCommand) -> Result<ExitCode> {
    // A bad file is refused before anything is opened.
    let parsed = match &cmd {
        TemplateCommand::Add { name, file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let checked = template::validate_name(name).and_then(|()| Template::parse(&text));
            match checked {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return Ok(ExitCode::from(BAD_INPUT));
                }
            }
        }
        _ => None,
    };
    let root = runtime::open(target).await?;
    let data = root.data();
    match cmd {
        TemplateCommand::Add { name, .. } => {
            let t = parsed.expect("parsed above");
            // Plugin names must be ones this deployment knows.
            let plugins = root.plugins();
            for p in t.plugins.keys() {
                if let Err(e) = plugins.plugins.find(p) {
                    eprintln!("error: plugins.{p}: {e}");
                    return Ok(ExitCode::from(BAD_INPUT));
                }
            }
            let result = data.add_template(&name, &t).await;
            Audited::new(&root, "template add", format!("template {name}"))
                .finish(result, |_| state(&t))
                .await?;
            println!("template {name} added: {}", summary(&t));
        }
        TemplateCommand::List { json } => {
            let entries = data.list_templates().await?;
            if json {
                print_json(&entries)?;
            } else {
                print_entries(&entries);
            }
        }
        TemplateCommand::Show { name, json } => {
            let t = data.template(&name).await?;
            if json {
                print_json(&t)?;
            } else {
                println!(
                    "template {name} ({})",
                    if template::is_builtin(&name) {
                        "built-in"
                    } else {
                        "stored"
                    }
                );
                println!("{}", serde_json::to_string_pretty(&t)?);
            }
        }
        TemplateCommand::Remove { name } => {
            let before = data.template(&name).await.ok();
            let result = data.remove_template(&name).await;
            Audited::new(&root, "template remove", format!("template {name}"))
                .before(before.as_ref().and_then(state))
                .finish(result, |_| None)
                .await?;
            println!("template {name} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
