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

fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
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

        pub fn create(&self) -> Result<File> {
            File::create(&self.0).with_context(|| format!("cannot create {}", self.0.display()))
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
