//! `report FILE…`: totals of recordings, as text, JSON, CodeCarbon's emissions.csv and PNG.

use crate::app::AppError;
use crate::report::account::account_file;
use crate::report::emissions::{self, RunMeta};
use crate::report::summary::{RunFacts, comparison, comparison_text, summary};
use crate::source::grid::table;
use std::path::{Path, PathBuf};

pub struct ReportOpts<'a> {
    pub files: &'a [PathBuf],
    pub emissions: Option<&'a Path>,
    pub json: bool,
    pub zone: Option<&'a str>,
    pub pue: Option<f64>,
    pub project: &'a str,
    pub png: Option<&'a Path>,
    pub theme: Option<&'a str>,
}

pub fn report(o: &ReportOpts<'_>) -> Result<i32, AppError> {
    let country = match o.zone {
        Some(z) => {
            let e = table::lookup(z).ok_or_else(|| {
                AppError::Usage(format!(
                    "--zone {z}: unknown zone (known: {})",
                    table::known_codes()
                ))
            })?;
            Some((e.code3.to_owned(), e.name.to_owned()))
        }
        None => None,
    };
    let mut accounts = Vec::new();
    for f in o.files {
        let a = account_file(f, o.pue).map_err(|e| AppError::Usage(format!("report {e}")))?;
        if let Some(line) = a.truncated_tail {
            crate::errln!(
                "carbontop: {}: the last row (line {line}) was cut off mid-write (the recorder \
                 was killed or ran out of disk) and is left out; every row before it is counted",
                a.file
            );
        }
        accounts.push(a);
    }
    if let Some(out) = o.png {
        let (themes, i) = crate::ui::theme::resolve(
            Some(o.theme.unwrap_or("light")),
            crate::ui::theme::user_dir().as_deref(),
        )
        .map_err(AppError::Usage)?;
        let mut dashboards = Vec::new();
        for (k, f) in o.files.iter().enumerate() {
            let path = if o.files.len() == 1 {
                out.to_path_buf()
            } else {
                numbered(out, &(k + 1).to_string())
            };
            let d = crate::app::replay::dashboard_of(f, None)?;
            crate::report::png::write(
                &d,
                &themes[i],
                &f.display().to_string(),
                &path,
                crate::report::png::DEFAULT_SIZE,
            )
            .map_err(|e| AppError::Runtime(format!("--png {}: {e}", path.display())))?;
            crate::errln!("carbontop: wrote {}", path.display());
            if o.files.len() > 1 {
                dashboards.push(d);
            }
        }
        if !dashboards.is_empty() {
            let path = numbered(out, "compare");
            let refs: Vec<&crate::ui::model::Dashboard> = dashboards.iter().collect();
            crate::report::png::write_compare(
                &refs,
                &comparison(&accounts),
                &themes[i],
                &path,
                crate::report::png::DEFAULT_SIZE,
            )
            .map_err(|e| AppError::Runtime(format!("--png {}: {e}", path.display())))?;
            crate::errln!("carbontop: wrote {}", path.display());
        }
    }
    if let Some(path) = o.emissions {
        let meta = RunMeta {
            project_name: o.project.to_owned(),
            country,
            ..Default::default()
        };
        for a in &accounts {
            emissions::append(path, a, &meta)
                .map_err(|e| AppError::Usage(format!("--emissions {}: {e}", path.display())))?;
        }
    }
    if o.json {
        let runs: Vec<_> = accounts.iter().map(crate::report::json::summary).collect();
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))
                .map_err(|e| AppError::Runtime(e.to_string()))?
        )?;
    } else {
        for a in &accounts {
            let facts = RunFacts {
                title: format!("report {}", a.file),
                pue: a.pue,
                gpu_measured: a.gpu_count > 0,
                last_progress: crate::app::measure::describe_progress(&a.last_progress),
                ..Default::default()
            };
            crate::app::out(&summary(&a.totals, &facts))?;
        }
        if accounts.len() > 1 {
            crate::app::out(&comparison_text(&accounts))?;
        }
    }
    Ok(0)
}

/// OUT.png → OUT-k.png (k a number, or `compare`).
fn numbered(out: &Path, k: &str) -> std::path::PathBuf {
    let stem = out
        .file_stem()
        .map_or("report".into(), |s| s.to_string_lossy().into_owned());
    let ext = out
        .extension()
        .map_or("png".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-{k}.{ext}"))
}
