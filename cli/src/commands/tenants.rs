//! `org import`, `org update`, `org remove` and `org credentials rotate`: many organizations
//! at once. Every command reads and checks all of its input before it writes anything, lists
//! every problem by line and field (exit 2), and undoes what it wrote when a later step fails.

use crate::output::{print_json, table};
use crate::runtime;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use classy_sync_core::domain::organization::classy_secret_name;
use classy_sync_core::domain::template::Template;
use classy_sync_core::domain::tenant_rows::{check_rows, FieldError, RawRow, RowKind, TenantRow};
use classy_sync_core::domain::{Entity, OrgId, OrgStatus, Organization};
use classy_sync_core::engine::tenants::{OrgWrite, SecretWrite};
use classy_sync_core::ports::AppCredentials;
use futures::stream::{self, StreamExt};
use secrecy::SecretString;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Credentials checked against Classy at once (the client's limiter keeps the pace).
const VERIFY_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CSV with the header `classy_org_id,name,client_id,client_secret` (optional columns
    /// `template`, `timezone`), or a JSON array of objects with the same keys.
    pub file: PathBuf,
    /// The file's format (default: from its extension).
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// A template for every row without its own `template`.
    #[arg(long)]
    pub template: Option<String>,
    /// Print what would happen and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not check the credentials against Classy.
    #[arg(long)]
    pub no_verify: bool,
    /// Update organizations that exist (name, credentials, time zone) instead of refusing.
    #[arg(long)]
    pub update: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The organizations to change.
    #[arg(required_unless_present_any = ["all", "file"], conflicts_with_all = ["all", "file"])]
    pub org_ids: Vec<u64>,
    /// Every organization.
    #[arg(long, conflicts_with = "file")]
    pub all: bool,
    /// The organizations (and per-row name, template, timezone) from a CSV or JSON file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// A new name (one organization only).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    /// Apply a template to each.
    #[arg(long)]
    pub template: Option<String>,
    /// An interval override, `ENTITY=SECS` or `ENTITY=default` (repeatable).
    #[arg(long, value_name = "ENTITY=SECS")]
    pub schedule: Vec<String>,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    #[arg(required = true)]
    pub org_ids: Vec<u64>,
    /// Delete every item and secret of the organizations (otherwise they are disabled and kept).
    #[arg(long)]
    pub purge: bool,
    /// Print what would be removed (with --purge: the item counts) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Purge without asking.
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The organization whose Classy secret is replaced (the new one from CLASSY_CLIENT_SECRET
    /// or a hidden prompt).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub org_id: Option<u64>,
    /// A new client id (when the organization moves to another Classy application).
    #[arg(long, conflicts_with = "file")]
    pub client_id: Option<String>,
    /// Many at once: CSV or JSON with `classy_org_id,client_secret` (optional `client_id`).
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Do not check the new credentials against Classy (not recommended).
    #[arg(long)]
    pub no_verify: bool,
}

// ---------- reading files ----------

/// Reads a tenant file into rows; problems with its shape (not its values) are listed by
/// line. Warns when others may read it (it holds secrets).
fn read_rows(path: &Path, format: Option<FileFormat>) -> Result<Vec<RawRow>, Vec<String>> {
    let format = match format {
        Some(f) => f,
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "json" => FileFormat::Json,
            Some(e) if e == "csv" => FileFormat::Csv,
            _ => {
                return Err(vec![format!(
                    "{}: cannot tell the format from the name; pass --format csv|json",
                    path.display()
                )])
            }
        },
    };
    let bytes = std::fs::read(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    warn_if_readable_by_others(path);
    match format {
        FileFormat::Csv => read_csv(&bytes),
        FileFormat::Json => read_json(&bytes),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} has mode {mode:04o}: group or others can read the secrets in it \
                 (chmod 600 it, and delete it when done)",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn set_field(row: &mut RawRow, column: &str, value: String) {
    match column {
        "classy_org_id" => row.classy_org_id = Some(value),
        "name" => row.name = Some(value),
        "client_id" => row.client_id = Some(value),
        "client_secret" => row.client_secret = Some(SecretString::from(value)),
        "template" => row.template = Some(value),
        "timezone" => row.timezone = Some(value),
        _ => unreachable!("columns are checked against COLUMNS first"),
    }
}

fn read_csv(bytes: &[u8]) -> Result<Vec<RawRow>, Vec<String>> {
    use classy_sync_core::domain::tenant_rows::COLUMNS;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|c| c.trim_start_matches('\u{feff}').to_string())
            .collect(),
        Err(e) => {
            return Err(vec![format!(
                "line 1: cannot read the header: {}",
                csv_reason(&e)
            )])
        }
    };
    let mut errors = Vec::new();
    for (i, c) in header.iter().enumerate() {
        if !COLUMNS.contains(&c.as_str()) {
            errors.push(format!(
                "line 1, column {}: unknown column {c:?} (expected {})",
                i + 1,
                COLUMNS.join(",")
            ));
        } else if header[..i].contains(c) {
            errors.push(format!("line 1, column {}: {c} appears twice", i + 1));
        }
    }
    if !header.iter().any(|c| c == "classy_org_id") {
        errors.push("line 1: the header has no classy_org_id column".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                if r.iter().all(str::is_empty) {
                    continue;
                }
                let mut row = RawRow {
                    line,
                    ..RawRow::default()
                };
                for (column, value) in header.iter().zip(r.iter()) {
                    if !value.is_empty() {
                        set_field(&mut row, column, value.to_string());
                    }
                }
                rows.push(row);
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(format!("line {line}: {}", csv_reason(&e)));
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// What is wrong with a CSV line, without its content (which may hold a secret).
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => "not valid CSV".into(),
    }
}

fn read_json(bytes: &[u8]) -> Result<Vec<RawRow>, Vec<String>> {
    use classy_sync_core::domain::tenant_rows::COLUMNS;
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        // Position only: serde_json's messages may quote the text.
        vec![format!(
            "line {} column {}: not valid JSON",
            e.line(),
            e.column()
        )]
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(vec!["the file must hold a JSON array of objects".into()]);
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let line = i + 1;
        let serde_json::Value::Object(map) = item else {
            errors.push(format!("item {line}: not an object"));
            continue;
        };
        let mut row = RawRow {
            line,
            ..RawRow::default()
        };
        for (k, v) in map {
            if !COLUMNS.contains(&k.as_str()) {
                errors.push(format!(
                    "item {line}, {k}: unknown field (expected {})",
                    COLUMNS.join(", ")
                ));
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) if k == "classy_org_id" => n.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    errors.push(format!("item {line}, {k}: must be a string"));
                    continue;
                }
            };
            set_field(&mut row, &k, text);
        }
        rows.push(row);
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Reads and checks a file; `Err` carries the lines to print (exit 2).
fn load(
    path: &Path,
    format: Option<FileFormat>,
    kind: RowKind,
) -> Result<Vec<TenantRow>, Vec<String>> {
    let raw = read_rows(path, format)?;
    if raw.is_empty() {
        return Err(vec![format!("{}: no rows", path.display())]);
    }
    check_rows(raw, kind).map_err(|errors| errors.iter().map(FieldError::to_string).collect())
}

/// Prints input problems (one per line, or as JSON) and gives exit code 2.
fn refuse(problems: &[String], json: bool) -> Result<ExitCode> {
    if json {
        print_json(&serde_json::json!({ "errors": problems }))?;
    } else {
        eprintln!("error: nothing was written; fix these and run it again:");
        for p in problems {
            eprintln!("  {p}");
        }
    }
    Ok(ExitCode::from(2))
}

// ---------- verification ----------

/// Checks each (org, client id, secret) against Classy, a few at a time; returns the problems.
async fn verify_all(checks: Vec<(usize, OrgId, AppCredentials)>) -> Result<Vec<String>> {
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let classy = runtime::classy()?;
    let bar = progress_bar(checks.len() as u64, "verifying");
    let mut problems: Vec<(usize, String)> = stream::iter(checks)
        .map(|(line, org, creds)| {
            let classy = classy.clone();
            let bar = bar.clone();
            async move {
                let r = classy.verify(&creds, org).await;
                bar.inc(1);
                r.err().map(|e| {
                    (
                        line,
                        format!(
                            "line {line}, client_secret: Classy refused organization {org} \
                             with client {}: {e}",
                            creds.client_id
                        ),
                    )
                })
            }
        })
        .buffer_unordered(VERIFY_CONCURRENCY)
        .filter_map(|p| async move { p })
        .collect()
        .await;
    bar.finish_and_clear();
    problems.sort();
    Ok(problems.into_iter().map(|(_, p)| p).collect())
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Loads each template named once (built-in or stored); an unknown one adds a problem at
/// the place (`line N, template: `) that named it first.
async fn load_templates(
    data: &classy_sync_core::engine::Datastore,
    wanted: impl Iterator<Item = (String, Option<String>)>,
    problems: &mut Vec<String>,
) -> HashMap<String, Template> {
    let mut first_at: BTreeMap<String, String> = BTreeMap::new();
    for (at, name) in wanted {
        if let Some(name) = name {
            first_at.entry(name).or_insert(at);
        }
    }
    let mut out = HashMap::new();
    for (name, at) in first_at {
        match data.template(&name).await {
            Ok(t) => {
                out.insert(name, t);
            }
            Err(e) => problems.push(format!("{at}{e}")),
        }
    }
    out
}

// ---------- import ----------

#[derive(Serialize)]
struct PlanLine {
    org: OrgId,
    line: usize,
    action: &'static str,
    name: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
}

pub async fn import(target: &runtime::Target, a: ImportArgs) -> Result<ExitCode> {
    let rows = match load(&a.file, a.format, RowKind::Import) {
        Ok(r) => r,
        Err(p) => return refuse(&p, a.json),
    };
    let root = runtime::open(target).await?;
    let data = root.data();
    // Templates: every name must exist before anything is written.
    let mut problems = Vec::new();
    let templates = load_templates(
        &data,
        rows.iter().map(|r| {
            let name = r.template.clone().or_else(|| a.template.clone());
            (format!("line {}, template: ", r.line), name)
        }),
        &mut problems,
    )
    .await;
    let ids: Vec<OrgId> = rows.iter().map(|r| r.id).collect();
    let existing = data.orgs_with_versions(&ids).await?;
    let mut pending: Vec<OrgId> = if a.update {
        Vec::new()
    } else {
        data.purges_pending(&ids).await?.into_iter().collect()
    };
    pending.sort_unstable();
    for r in &rows {
        if existing.contains_key(&r.id) && !a.update {
            problems.push(format!(
                "line {}, classy_org_id: organization {} already exists (--update replaces it)",
                r.line, r.id
            ));
        }
    }
    for id in pending {
        problems.push(format!(
            "classy_org_id: organization {id} is being purged; finish with `classy-sync org remove {id} --purge --yes` first"
        ));
    }
    if !problems.is_empty() {
        return refuse(&problems, a.json);
    }
    if !a.no_verify {
        let checks = rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.id,
                    AppCredentials {
                        client_id: r.client_id.clone().unwrap_or_default(),
                        client_secret: r
                            .client_secret
                            .clone()
                            .expect("checked: import rows have a secret"),
                    },
                )
            })
            .collect();
        let refused = verify_all(checks).await?;
        if !refused.is_empty() {
            return refuse(&refused, a.json);
        }
    }
    let now = chrono::Utc::now().to_rfc3339();
    let mut writes = Vec::with_capacity(rows.len());
    let mut secrets = Vec::with_capacity(rows.len());
    let mut plan = Vec::with_capacity(rows.len());
    for r in &rows {
        let template_name = r.template.clone().or_else(|| a.template.clone());
        let template = template_name.as_ref().and_then(|n| templates.get(n));
        let before = existing.get(&r.id).cloned();
        let mut after = match &before {
            Some((org, _)) => org.clone(),
            None => Organization {
                id: r.id,
                name: String::new(),
                client_id: String::new(),
                status: OrgStatus::Enabled,
                schedule: BTreeMap::new(),
                created_at: now.clone(),
                timezone: None,
            },
        };
        after.name = r.name.clone().expect("checked: import rows have a name");
        after.client_id = r
            .client_id
            .clone()
            .expect("checked: import rows have a client id");
        if r.timezone.is_some() {
            after.timezone = r.timezone.clone();
        }
        if let Some(t) = template {
            after.schedule.extend(t.schedule_secs());
        }
        plan.push(PlanLine {
            org: r.id,
            line: r.line,
            action: if before.is_some() { "update" } else { "create" },
            name: after.name.clone(),
            client_id: after.client_id.clone(),
            template: template_name.clone(),
        });
        secrets.push(SecretWrite {
            name: classy_secret_name(r.id),
            value: r
                .client_secret
                .clone()
                .expect("checked: import rows have a secret"),
        });
        writes.push(OrgWrite { before, after });
    }
    let created = plan.iter().filter(|p| p.action == "create").count();
    let updated = plan.len() - created;
    if a.dry_run {
        if a.json {
            print_json(&serde_json::json!({
                "dry_run": true, "verified": !a.no_verify,
                "create": created, "update": updated, "organizations": plan,
            }))?;
        } else {
            print_plan(&plan);
            println!(
                "dry run: would create {created} and update {updated} organization(s){}; nothing written",
                if a.no_verify { "" } else { " (credentials verified)" }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = progress_bar(writes.len() as u64, "importing");
    let progress = {
        let bar = bar.clone();
        move |n: usize| bar.set_position(n as u64)
    };
    let secret_store = root.secrets();
    let applied = data
        .apply_org_writes(secret_store.as_ref(), writes, secrets, &progress)
        .await;
    bar.finish_and_clear();
    let applied = match applied {
        Ok(a) => a,
        Err(e) => bail!("import of {} failed: {e}", a.file.display()),
    };
    // The template parts beyond the schedule (plugin settings, alert routing, report presets).
    let plugins = root.plugins();
    let mut template_lines = Vec::new();
    for p in &plan {
        if let Some(t) = p.template.as_ref().and_then(|n| templates.get(n)) {
            match plugins.apply_template(p.org, t).await {
                Ok(done) => template_lines.extend(
                    done.lines()
                        .into_iter()
                        .map(|l| format!("organization {}: {l}", p.org)),
                ),
                Err(e) => {
                    let undo = data.undo(secret_store.as_ref(), applied).await;
                    bail!(
                        "template {} on organization {}: {e}; {}",
                        p.template.as_deref().unwrap_or_default(),
                        p.org,
                        match undo {
                            Ok(()) => "the organizations this import wrote were restored".to_string(),
                            Err(u) => format!("restoring the organizations also failed ({u}): run the import again"),
                        }
                    );
                }
            }
        }
    }
    crate::audit::record(
        &root,
        "org import",
        &a.file.display().to_string(),
        None,
        None,
        Some(serde_json::json!({ "created": plan.iter().filter(|p| p.action == "create").map(|p| p.org).collect::<Vec<_>>(),
                                  "updated": plan.iter().filter(|p| p.action == "update").map(|p| p.org).collect::<Vec<_>>() })),
        Ok(()),
    )
    .await?;
    if a.json {
        print_json(&serde_json::json!({
            "dry_run": false, "verified": !a.no_verify,
            "created": created, "updated": updated, "organizations": plan,
            "template": template_lines,
        }))?;
    } else {
        for l in &template_lines {
            println!("{l}");
        }
        println!(
            "imported {} organization(s): {created} created, {updated} updated",
            applied.organizations()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &[PlanLine]) {
    let mut t = table(&[
        "line",
        "organization",
        "action",
        "name",
        "client id",
        "template",
    ]);
    for p in plan {
        t.add_row(vec![
            p.line.to_string(),
            p.org.to_string(),
            p.action.to_string(),
            p.name.clone(),
            p.client_id.clone(),
            p.template.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}

// ---------- update ----------

/// `ENTITY=SECS` or `ENTITY=default`.
fn parse_schedule(specs: &[String]) -> Result<Vec<(Entity, Option<u64>)>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for s in specs {
        let Some((e, v)) = s.split_once('=') else {
            errors.push(format!("--schedule {s:?}: expected ENTITY=SECS"));
            continue;
        };
        let entity = match e.trim().parse::<Entity>() {
            Ok(e) => e,
            Err(_) => {
                errors.push(format!(
                    "--schedule {s:?}: unknown entity {:?} (supporters, campaigns, transactions, recurring-plans)",
                    e.trim()
                ));
                continue;
            }
        };
        match v.trim() {
            "default" => out.push((entity, None)),
            v => match v.parse::<u64>() {
                Ok(n) if n >= 1 => out.push((entity, Some(n))),
                _ => errors.push(format!(
                    "--schedule {s:?}: expected seconds (at least 1) or `default`"
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

pub async fn update(target: &runtime::Target, a: UpdateArgs) -> Result<ExitCode> {
    let mut problems = Vec::new();
    let schedule = parse_schedule(&a.schedule).unwrap_or_else(|e| {
        problems.extend(e);
        Vec::new()
    });
    if let Some(n) = &a.name {
        if n.trim().is_empty() {
            problems.push("--name must not be empty".into());
        }
    }
    let file_rows = match &a.file {
        Some(f) => match load(f, a.format, RowKind::Update) {
            Ok(r) => r,
            Err(p) => {
                problems.extend(p);
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    if !problems.is_empty() {
        return refuse(&problems, a.json);
    }
    let root = runtime::open(target).await?;
    let data = root.data();
    let ids: Vec<OrgId> = if a.all {
        data.list_orgs().await?.into_iter().map(|o| o.id).collect()
    } else if a.file.is_some() {
        file_rows.iter().map(|r| r.id).collect()
    } else {
        let mut seen = Vec::new();
        for id in &a.org_ids {
            if !seen.contains(id) {
                seen.push(*id);
            }
        }
        seen
    };
    if a.name.is_some() && ids.len() != 1 {
        return refuse(
            &["--name changes one organization; give exactly one id".into()],
            a.json,
        );
    }
    let existing = data.orgs_with_versions(&ids).await?;
    let rows_by_id: HashMap<OrgId, &TenantRow> = file_rows.iter().map(|r| (r.id, r)).collect();
    for id in &ids {
        if !existing.contains_key(id) {
            let at = rows_by_id
                .get(id)
                .map(|r| format!("line {}, classy_org_id: ", r.line))
                .unwrap_or_default();
            problems.push(format!("{at}organization {id} is not onboarded"));
        }
    }
    let templates = load_templates(
        &data,
        ids.iter().map(|id| match rows_by_id.get(id) {
            Some(r) => (
                format!("line {}, template: ", r.line),
                r.template.clone().or_else(|| a.template.clone()),
            ),
            None => ("--template: ".to_string(), a.template.clone()),
        }),
        &mut problems,
    )
    .await;
    if !problems.is_empty() {
        return refuse(&problems, a.json);
    }
    let mut writes = Vec::new();
    let mut changes = Vec::new();
    let mut template_for = Vec::new();
    for id in &ids {
        let (before, version) = existing[id].clone();
        let mut after = before.clone();
        let row = rows_by_id.get(id);
        if let Some(n) = a.name.clone().or_else(|| row.and_then(|r| r.name.clone())) {
            after.name = n.trim().to_string();
        }
        if let Some(tz) = row.and_then(|r| r.timezone.clone()) {
            after.timezone = Some(tz);
        }
        if a.enable {
            after.status = OrgStatus::Enabled;
        }
        if a.disable {
            after.status = OrgStatus::Disabled;
        }
        let template_name = row
            .and_then(|r| r.template.clone())
            .or_else(|| a.template.clone());
        if let Some(t) = template_name.as_ref().and_then(|n| templates.get(n)) {
            after.schedule.extend(t.schedule_secs());
            template_for.push((*id, template_name.clone().unwrap_or_default()));
        }
        for (entity, secs) in &schedule {
            match secs {
                Some(s) => {
                    after.schedule.insert(*entity, *s);
                }
                None => {
                    after.schedule.remove(entity);
                }
            }
        }
        changes.push(serde_json::json!({
            "org": id,
            "before": org_view(&before),
            "after": org_view(&after),
        }));
        if after != before {
            writes.push(OrgWrite {
                before: Some((before, version)),
                after,
            });
        }
    }
    if a.dry_run {
        if a.json {
            print_json(&serde_json::json!({ "dry_run": true, "changes": changes }))?;
        } else {
            for c in &changes {
                if c["before"] != c["after"] {
                    println!(
                        "organization {}: {} -> {}",
                        c["org"], c["before"], c["after"]
                    );
                } else {
                    println!("organization {}: unchanged", c["org"]);
                }
            }
            println!(
                "dry run: {} organization(s) would change; nothing written",
                writes.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let secret_store = root.secrets();
    let changed = writes.len();
    let applied = data
        .apply_org_writes(secret_store.as_ref(), writes, Vec::new(), &|_| {})
        .await
        .map_err(|e| anyhow::anyhow!("update failed: {e}"))?;
    let plugins = root.plugins();
    for (id, name) in &template_for {
        if let Err(e) = plugins.apply_template(*id, &templates[name]).await {
            let undo = data.undo(secret_store.as_ref(), applied).await;
            bail!(
                "template {name} on organization {id}: {e}; {}",
                match undo {
                    Ok(()) => "the organizations were restored".to_string(),
                    Err(u) => format!("restoring them also failed ({u})"),
                }
            );
        }
    }
    crate::audit::record(
        &root,
        "org update",
        &describe(&ids),
        (ids.len() == 1).then(|| ids[0]),
        Some(serde_json::json!(changes
            .iter()
            .map(|c| &c["before"])
            .collect::<Vec<_>>())),
        Some(serde_json::json!(changes
            .iter()
            .map(|c| &c["after"])
            .collect::<Vec<_>>())),
        Ok(()),
    )
    .await?;
    if a.json {
        print_json(
            &serde_json::json!({ "dry_run": false, "updated": changed, "changes": changes }),
        )?;
    } else {
        println!("updated {changed} of {} organization(s)", ids.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// What of an organization the update shows and audits (never a secret: none is in it).
fn org_view(o: &Organization) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "status": o.status,
        "schedule": o.schedule,
        "timezone": o.timezone,
    })
}

fn describe(ids: &[OrgId]) -> String {
    let v: Vec<String> = ids.iter().map(ToString::to_string).collect();
    if v.len() <= 10 {
        format!("organizations {}", v.join(","))
    } else {
        format!("{} organizations ({}…)", v.len(), v[..10].join(","))
    }
}

// ---------- remove ----------

pub async fn remove(target: &runtime::Target, a: RemoveArgs) -> Result<ExitCode> {
    let root = runtime::open(target).await?;
    let data = root.data();
    let mut ids = Vec::new();
    for id in &a.org_ids {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    let existing = data.orgs_with_versions(&ids).await?;
    let mut problems = Vec::new();
    for id in &ids {
        // With --purge an organization already gone is done: removal is idempotent.
        if !a.purge && !existing.contains_key(id) {
            problems.push(format!("organization {id} is not onboarded"));
        }
    }
    if !problems.is_empty() {
        return refuse(&problems, a.json);
    }
    if !a.purge {
        let writes: Vec<OrgWrite> = ids
            .iter()
            .filter_map(|id| existing.get(id).cloned())
            .filter(|(o, _)| o.status != OrgStatus::Disabled)
            .map(|(o, v)| {
                let mut after = o.clone();
                after.status = OrgStatus::Disabled;
                OrgWrite {
                    before: Some((o, v)),
                    after,
                }
            })
            .collect();
        if a.dry_run {
            println!(
                "dry run: would disable {} organization(s) and keep their data; nothing written",
                writes.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let n = writes.len();
        data.apply_org_writes(root.secrets().as_ref(), writes, Vec::new(), &|_| {})
            .await
            .map_err(|e| anyhow::anyhow!("remove failed: {e}"))?;
        crate::audit::record(
            &root,
            "org remove",
            &describe(&ids),
            (ids.len() == 1).then(|| ids[0]),
            None,
            Some(serde_json::json!({"status": "disabled"})),
            Ok(()),
        )
        .await?;
        println!("disabled {n} organization(s); their data is kept (--purge deletes it)");
        return Ok(ExitCode::SUCCESS);
    }
    if a.dry_run {
        let mut report = Vec::new();
        for id in &ids {
            let counts = data.org_item_counts(*id).await?;
            report.push(serde_json::json!({ "org": id, "items": counts,
                "total": counts.values().sum::<u64>() }));
        }
        if a.json {
            print_json(&serde_json::json!({ "dry_run": true, "purge": report }))?;
        } else {
            for r in &report {
                println!("organization {}: {} item(s)", r["org"], r["total"]);
                if let Some(m) = r["items"].as_object() {
                    for (k, v) in m {
                        println!("  {k}: {v}");
                    }
                }
            }
            println!("dry run: nothing deleted");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "--purge deletes every item and secret of {}: confirm with --yes",
                describe(&ids)
            );
        }
        eprint!(
            "Delete every item and secret of {}? This cannot be undone. Type 'purge' to confirm: ",
            describe(&ids)
        );
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the confirmation")?;
        if answer.trim() != "purge" {
            bail!("not confirmed; nothing deleted");
        }
    }
    let plugins = root.plugins();
    let secrets = root.secrets();
    let pending = data.purges_pending(&ids).await?;
    let mut reports = Vec::new();
    for id in &ids {
        if !existing.contains_key(id) && !pending.contains(id) {
            reports.push(serde_json::json!({ "org": id, "already_purged": true }));
            continue;
        }
        let plugin_secrets = match plugins.plugin_configs(*id).await {
            Ok(configs) => configs.into_iter().filter_map(|c| c.secret_name).collect(),
            Err(_) => Vec::new(),
        };
        let before = existing.get(id).map(|(o, _)| org_view(o));
        let result = data.purge_org(secrets.as_ref(), *id, plugin_secrets).await;
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        crate::audit::record(
            &root,
            "org remove --purge",
            &format!("organization {id}"),
            Some(*id),
            before,
            None,
            outcome,
        )
        .await?;
        let report = result.with_context(|| {
            format!("purge of organization {id} stopped; run the command again to finish it")
        })?;
        if !a.json {
            println!(
                "organization {id}: purged {} item(s), {} secret name(s), {} alert item(s), {} report(s) in {:.1}s",
                report.items, report.secrets, report.alerts, report.reports, report.seconds
            );
        }
        reports.push(serde_json::to_value(&report)?);
    }
    if a.json {
        print_json(&serde_json::json!({ "purged": reports }))?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---------- rotate ----------

pub async fn rotate(target: &runtime::Target, a: RotateArgs) -> Result<ExitCode> {
    let rows: Vec<TenantRow> = match (&a.file, a.org_id) {
        (Some(f), _) => match load(f, a.format, RowKind::Rotate) {
            Ok(r) => r,
            Err(p) => return refuse(&p, false),
        },
        (None, Some(id)) => {
            let secret = super::org::client_secret()?;
            if let Some(c) = &a.client_id {
                if c.trim().is_empty() || c.chars().any(char::is_whitespace) {
                    return refuse(&["--client-id must be one word, not empty".into()], false);
                }
            }
            vec![TenantRow {
                line: 0,
                id,
                name: None,
                client_id: a.client_id.clone(),
                client_secret: Some(secret),
                template: None,
                timezone: None,
            }]
        }
        (None, None) => bail!("give an organization id or --file"),
    };
    let root = runtime::open(target).await?;
    let data = root.data();
    let ids: Vec<OrgId> = rows.iter().map(|r| r.id).collect();
    let existing = data.orgs_with_versions(&ids).await?;
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !existing.contains_key(&r.id))
        .map(|r| at_line(r.line, format!("organization {} is not onboarded", r.id)))
        .collect();
    if !missing.is_empty() {
        return refuse(&missing, false);
    }
    let creds_of = |r: &TenantRow| AppCredentials {
        client_id: r
            .client_id
            .clone()
            .unwrap_or_else(|| existing[&r.id].0.client_id.clone()),
        client_secret: r
            .client_secret
            .clone()
            .expect("checked: rotation rows have a secret"),
    };
    if !a.no_verify {
        let checks = rows.iter().map(|r| (r.line, r.id, creds_of(r))).collect();
        let refused = verify_all(checks).await?;
        if !refused.is_empty() {
            let refused: Vec<String> = if a.file.is_some() {
                refused
            } else {
                refused
                    .into_iter()
                    .map(|p| p.replacen("line 0, client_secret: ", "", 1))
                    .collect()
            };
            eprintln!("error: the new credentials were refused; the old ones stay in use");
            return refuse(&refused, false);
        }
    }
    let mut writes = Vec::new();
    let mut secrets = Vec::new();
    for r in &rows {
        let (before, version) = existing[&r.id].clone();
        let creds = creds_of(r);
        if creds.client_id != before.client_id {
            let mut after = before.clone();
            after.client_id = creds.client_id.clone();
            writes.push(OrgWrite {
                before: Some((before, version)),
                after,
            });
        }
        secrets.push(SecretWrite {
            name: classy_secret_name(r.id),
            value: creds.client_secret,
        });
    }
    let store = root.secrets();
    data.apply_org_writes(store.as_ref(), writes, secrets, &|_| {})
        .await
        .map_err(|e| anyhow::anyhow!("rotation failed: {e}"))?;
    // The expiry alert counts from the rotation.
    for id in &ids {
        let mut info = data.credential_info(*id).await?;
        info.rotated_at = Some(chrono::Utc::now());
        info.expires_at = None;
        data.set_credential_info(*id, &info).await?;
    }
    crate::audit::record(
        &root,
        "org credentials rotate",
        &describe(&ids),
        (ids.len() == 1).then(|| ids[0]),
        None,
        Some(serde_json::json!({ "client_ids": rows.iter().map(|r| creds_of(r).client_id).collect::<Vec<_>>() })),
        Ok(()),
    )
    .await?;
    println!(
        "rotated the Classy credential of {}{}",
        describe(&ids),
        if a.no_verify {
            " (not verified)"
        } else {
            " (verified against Classy)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn at_line(line: usize, msg: String) -> String {
    if line == 0 {
        msg
    } else {
        format!("line {line}, classy_org_id: {msg}")
    }
}
