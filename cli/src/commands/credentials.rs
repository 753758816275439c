//! `classy-sync org credentials <org> [--expires-at D] [--rotated-at D] [--max-age-days N]`:
//! records when a credential expires (never its value).

use crate::output::print_json;
use anyhow::Result;
use clap::{Args, Subcommand};
use classy_sync_core::engine::credentials::{parse_date, CredentialInfo};
use classy_sync_core::engine::Datastore;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    pub action: Option<CredentialsAction>,
    #[arg(required = true)]
    pub org_id: Option<u64>,
    /// When the credential stops working (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// When it was last rotated; it then expires after --max-age-days (default 365).
    #[arg(long)]
    pub rotated_at: Option<String>,
    #[arg(long)]
    pub max_age_days: Option<i64>,
    /// Forget what was recorded.
    #[arg(long, conflicts_with_all = ["expires_at", "rotated_at", "max_age_days"])]
    pub clear: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum CredentialsAction {
    /// Replace the organization's Classy client secret (from CLASSY_CLIENT_SECRET or a hidden
    /// prompt), verified against Classy first; the old one stays if Classy refuses the new.
    Rotate(crate::commands::tenants::RotateArgs),
}

pub async fn run(data: &Datastore, a: CredentialsArgs) -> Result<()> {
    let Some(org_id) = a.org_id else {
        anyhow::bail!("give an organization id");
    };
    let changing =
        a.clear || a.expires_at.is_some() || a.rotated_at.is_some() || a.max_age_days.is_some();
    if changing {
        let mut info = if a.clear {
            CredentialInfo::default()
        } else {
            data.credential_info(org_id).await?
        };
        if let Some(d) = &a.expires_at {
            info.expires_at = Some(parse_date("--expires-at", d)?);
        }
        if let Some(d) = &a.rotated_at {
            info.rotated_at = Some(parse_date("--rotated-at", d)?);
            // A rotation replaces an explicit expiry unless one is given with it.
            if a.expires_at.is_none() {
                info.expires_at = None;
            }
        }
        if a.max_age_days.is_some() {
            info.max_age_days = a.max_age_days;
        }
        data.set_credential_info(org_id, &info).await?;
    }
    let info = data.credential_info(org_id).await?;
    if a.json {
        print_json(&serde_json::json!({
            "organization": org_id,
            "expires_at": info.expires_at,
            "rotated_at": info.rotated_at,
            "max_age_days": info.max_age_days,
            "effective_expiry": info.effective_expiry(),
        }))?;
    } else {
        match info.effective_expiry() {
            Some(t) => println!(
                "organization {}: Classy credential expires {}",
                org_id,
                t.to_rfc3339()
            ),
            None => println!(
                "organization {}: no expiry or rotation date recorded",
                org_id
            ),
        }
    }
    Ok(())
}
