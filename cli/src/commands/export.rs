//! `classy-sync export`: stored records with Classy's field names plus computed fields, as
//! JSON lines or CSV, streamed. With --output the file appears only once complete.

use crate::cli::{ExportArgs, ExportFormat};
use crate::runtime;
use anyhow::{Context, Result};
use classy_sync_core::engine::export::Row;
use classy_sync_core::engine::EngineError;
use serde_json::Value;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// One CSV cell. Text that a spreadsheet would read as a formula (starting with `=`, `+`,
/// `-`, `@`, tab or carriage return: donor-entered names, notes, addresses) is prefixed with
/// `'`, so it is shown as text and never evaluated (CSV/formula injection). Numbers, booleans
/// and nested values are written as JSON, as before.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => neutralize(s),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        other => neutralize(&other.to_string()),
    }
}

fn neutralize(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn io_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(format!("cannot write the export: {e}"))
}

enum Out {
    Json(BufWriter<Box<dyn Write>>),
    /// The header comes from the first row: every row of an entity has the same fields.
    Csv(Box<csv::Writer<Box<dyn Write>>>, Option<Vec<String>>),
}

impl Out {
    fn write(&mut self, row: &Row) -> Result<(), EngineError> {
        match self {
            Out::Json(w) => {
                serde_json::to_writer(&mut *w, row).map_err(io_err)?;
                w.write_all(b"\n").map_err(io_err)
            }
            Out::Csv(w, header) => {
                if header.is_none() {
                    let h: Vec<String> = row.keys().cloned().collect();
                    w.write_record(&h).map_err(io_err)?;
                    *header = Some(h);
                }
                let cols = header.as_ref().expect("set above");
                w.write_record(
                    cols.iter()
                        .map(|c| row.get(c).map(csv_cell).unwrap_or_default()),
                )
                .map_err(io_err)
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Out::Json(mut w) => w.flush(),
            Out::Csv(mut w, _) => w.flush(),
        }
    }
}

pub async fn run(target: &runtime::Target, args: ExportArgs) -> Result<ExitCode> {
    let data = runtime::open(target).await?.data();
    // Write next to the target and rename at the end: no half-written export on failure.
    let (mut tmp, sink): (Option<tempfile_path::Temp>, Box<dyn Write>) = match &args.output {
        Some(path) => {
            let t = tempfile_path::Temp::beside(path)?;
            let f = t.create()?;
            (Some(t), Box::new(f))
        }
        None => (None, Box::new(std::io::stdout().lock())),
    };
    let mut out = match args.format {
        ExportFormat::Jsonl => Out::Json(BufWriter::with_capacity(1 << 16, sink)),
        ExportFormat::Csv => Out::Csv(
            Box::new(
                csv::WriterBuilder::new()
                    .buffer_capacity(1 << 16)
                    .from_writer(sink),
            ),
            None,
        ),
    };
    let count = data
        .export(args.org_id, args.entity, |row: Row| out.write(&row))
        .await?;
    out.finish()?;
    if let (Some(t), Some(path)) = (tmp.take(), &args.output) {
        t.persist(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "exported {count} {} records to {}",
            args.entity,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A temporary file beside the destination, renamed into place when complete and removed
/// otherwise.
mod tempfile_path {
    use anyhow::{Context, Result};
    use std::fs::File;
    use std::path::{Path, PathBuf};

    pub struct Temp(PathBuf);

    impl Temp {
        pub fn beside(target: &Path) -> Result<Self> {
            let dir = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = target
                .file_name()
                .context("--output must name a file")?
                .to_string_lossy()
                .to_string();
            Ok(Temp(
                dir.join(format!(".{name}.{}.partial", std::process::id())),
            ))
        }

        /// Creates the file, failing if anything (a file, a planted symlink) is already at
        /// its path; readable by the owner only (mode 0600 on Unix): exports hold donor data.
        pub fn create(&self) -> Result<File> {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(&self.0)
                .with_context(|| format!("cannot create {}", self.0.display()))
        }

        #[cfg(test)]
        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn persist(self, target: &Path) -> std::io::Result<()> {
            std::fs::rename(&self.0, target)?;
            std::mem::forget(self);
            Ok(())
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formula_cells_are_neutralized_and_read_back_as_text() {
        let row: Row = serde_json::from_value(json!({
            "id": 7,
            "first_name": "=HYPERLINK(\"http://evil.example\",\"x\")",
            "last_name": "+1-2",
            "note": "-cmd|' /C calc'!A0",
            "email_address": "@SUM(1+1)",
            "city": "\tTab",
            "state": "\rCR",
            "plain": "Ada",
            "amount": -12.5,
            "opt_in": true,
            "empty": null
        }))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let sink: Box<dyn Write> = Box::new(std::fs::File::create(&path).unwrap());
        let mut out = Out::Csv(Box::new(csv::Writer::from_writer(sink)), None);
        out.write(&row).unwrap();
        out.finish().unwrap();
        let mut rd = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
        let rec = rd.records().next().unwrap().unwrap();
        let cell = |name: &str| rec[header.iter().position(|h| h == name).unwrap()].to_owned();
        assert_eq!(
            cell("first_name"),
            "'=HYPERLINK(\"http://evil.example\",\"x\")"
        );
        assert_eq!(cell("last_name"), "'+1-2");
        assert_eq!(cell("note"), "'-cmd|' /C calc'!A0");
        assert_eq!(cell("email_address"), "'@SUM(1+1)");
        assert_eq!(cell("city"), "'\tTab");
        assert_eq!(cell("state"), "'\rCR");
        assert_eq!(cell("plain"), "Ada");
        // Numbers stay numbers.
        assert_eq!(cell("amount"), "-12.5");
        assert_eq!(cell("opt_in"), "true");
        assert_eq!(cell("empty"), "");
    }

    #[cfg(unix)]
    #[test]
    fn the_temporary_file_is_new_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let t = tempfile_path::Temp::beside(&target).unwrap();
        let f = t.create().unwrap();
        drop(f);
        let mode = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        // Something already at the path (here: a planted symlink to a file elsewhere) is
        // never opened or followed.
        std::fs::remove_file(t.path()).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "keep").unwrap();
        std::os::unix::fs::symlink(&elsewhere, t.path()).unwrap();
        assert!(t.create().is_err());
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep");
    }
}
