//! `report FILE…`: totals of recordings, as text, JSON, Markdown or LaTeX for a paper, a
//! model card's metadata, CodeCarbon's emissions.csv and PNG.

use crate::app::AppError;
use crate::cli::{ReportArgs, ReportFormat};
use crate::report::account::{Recording, account_file};
use crate::report::emissions::{self, RunMeta};
use crate::report::summary::{RunFacts, comparison, comparison_text, summary};
use crate::source::grid::table;
use std::path::Path;

pub fn report(o: &ReportArgs) -> Result<i32, AppError> {
    if o.by_job {
        return crate::report::by_job::run(o);
    }
    let format = if o.json {
        ReportFormat::Json
    } else {
        o.format.unwrap_or(ReportFormat::Text)
    };
    if o.training_type.is_some() && !o.model_card {
        return Err(AppError::Usage(
            "--training-type is the model card's: give --model-card with it".into(),
        ));
    }
    if o.model_card && o.files.len() > 1 {
        return Err(AppError::Usage(
            "--model-card: give one recording (a model card holds one training run's figures)"
                .into(),
        ));
    }
    let place = match o.zone.as_deref() {
        Some(z) => {
            table::place(z, table::Names::Table)
                .ok_or_else(|| AppError::Usage(table::unknown_zone(z).to_string()))?;
            Some(crate::report::run_file::place_of(
                &crate::source::grid::GridSettings {
                    zone: Some(z.to_owned()),
                    ..Default::default()
                },
            ))
        }
        None => None,
    };
    // Each file read once: its Meter (with the charts' history when a PNG is asked for) and
    // the Snapshot every format below shows.
    let mut runs: Vec<Recording> = Vec::new();
    for f in &o.files {
        let r = account_file(f.as_path(), o.pue, o.png.is_some())
            .map_err(|e| AppError::Usage(format!("report {e}")))?;
        if let Err(e) = &r.run {
            crate::errln!("carbontop: {e}; reading {} without it", r.file);
        }
        if let Some(line) = r.truncated_tail {
            crate::errln!(
                "carbontop: {}: the last row (line {line}) was cut off mid-write (the recorder \
                 was killed or ran out of disk) and is left out; every row before it is counted",
                r.file
            );
        }
        runs.push(r);
    }
    let named: Vec<(&str, &crate::engine::Snapshot)> = runs
        .iter()
        .map(|r| (r.file.as_str(), &r.snapshot))
        .collect();
    if let Some(out) = o.png.as_deref() {
        if out.is_dir() {
            return Err(AppError::Usage(format!(
                "--png {}: is a directory: give the PNG's file name, e.g. report.png",
                out.display()
            )));
        }
        write_pngs(o, out, &runs, &named)?;
    }
    if let Some(path) = o.emissions.as_deref() {
        for r in &runs {
            // run.json's facts (its run_id and place) where the recording has one; --zone
            // names the place where it has none, or corrects it.
            let mut meta = match &r.run {
                Ok(Some(f)) => f.meta(o.project.as_deref()),
                _ => RunMeta {
                    project_name: o
                        .project
                        .as_deref()
                        .unwrap_or(crate::report::emissions::DEFAULT_PROJECT)
                        .to_owned(),
                    ..Default::default()
                },
            };
            if let Some((country, region)) = &place {
                meta.country = Some(country.clone());
                meta.region.clone_from(region);
            }
            emissions::append(path, &r.file, &r.snapshot, &meta)
                .map_err(|e| AppError::Usage(format!("--emissions {}: {e}", path.display())))?;
        }
    }
    print(o, format, &runs, &named)?;
    Ok(0)
}

/// The runs in the format asked for, on standard output.
fn print(
    o: &ReportArgs,
    format: ReportFormat,
    runs: &[Recording],
    named: &[(&str, &crate::engine::Snapshot)],
) -> Result<(), AppError> {
    fn run_file(r: &Recording) -> Option<&crate::report::run_file::RunFile> {
        r.run.as_ref().ok().and_then(Option::as_ref)
    }
    fn paper<'a>(o: &'a ReportArgs, r: &'a Recording) -> crate::report::paper::Paper<'a> {
        let run = run_file(r);
        crate::report::paper::Paper {
            file: &r.file,
            snap: &r.snapshot,
            zone: o.zone.as_deref().or(run.and_then(|f| f.zone.as_deref())),
            run,
        }
    }
    if o.model_card {
        for r in runs {
            let training = o.training_type.as_deref().unwrap_or("pre-training");
            crate::app::out(&paper(o, r).model_card(training))?;
        }
        return Ok(());
    }
    match format {
        ReportFormat::Json => {
            let json: Vec<_> = runs
                .iter()
                .map(|r| {
                    let id = run_file(r).map(|f| f.run_id.as_str());
                    crate::report::json::summary(&r.file, &r.snapshot, id)
                })
                .collect();
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "runs": json }))
                    .map_err(|e| AppError::Runtime(e.to_string()))?
            )?;
        }
        ReportFormat::Markdown | ReportFormat::Latex => {
            for (k, r) in runs.iter().enumerate() {
                let p = paper(o, r);
                let text = if format == ReportFormat::Markdown {
                    p.markdown()
                } else {
                    p.latex()
                };
                crate::app::out(&(if k > 0 { "\n" } else { "" }.to_owned() + &text))?;
            }
        }
        ReportFormat::Text => {
            for (file, snap) in named {
                let facts = RunFacts {
                    title: format!("report {file}"),
                    ..Default::default()
                };
                crate::app::out(&summary(snap, &facts))?;
            }
            if named.len() > 1 {
                crate::app::out(&comparison_text(named))?;
            }
        }
    }
    Ok(())
}

/// The PNG of each run (OUT.png, or OUT-1.png, OUT-2.png, …) and, for several, the comparison
/// (OUT-compare.png), from the runs as read once.
fn write_pngs(
    o: &ReportArgs,
    out: &Path,
    runs: &[Recording],
    named: &[(&str, &crate::engine::Snapshot)],
) -> Result<(), AppError> {
    let (themes, i) = crate::ui::theme::resolve(
        Some(o.theme.as_deref().unwrap_or("light")),
        crate::ui::theme::user_dir().as_deref(),
    )
    .map_err(|e| AppError::Usage(e.to_string()))?;
    let size = crate::report::png::DEFAULT_SIZE;
    let failed =
        |path: &Path, e: String| AppError::Runtime(format!("--png {}: {e}", path.display()));
    for (k, r) in runs.iter().enumerate() {
        let path = if runs.len() == 1 {
            out.to_path_buf()
        } else {
            numbered(out, &(k + 1).to_string())
        };
        let run = crate::report::png::Run {
            meter: &r.meter,
            snap: &r.snapshot,
            cpu_estimate: false,
            cap_note: None,
        };
        crate::report::png::write(&run, &themes[i], &png_title(o, r), &path, size)
            .map_err(|e| failed(&path, e))?;
        crate::errln!("carbontop: wrote {}", path.display());
    }
    if runs.len() > 1 {
        let path = numbered(out, "compare");
        let compared: Vec<crate::report::png::Compared<'_>> = runs
            .iter()
            .map(|r| crate::report::png::Compared {
                name: crate::report::summary::run_name(&r.file),
                meter: &r.meter,
                snap: &r.snapshot,
            })
            .collect();
        crate::report::png::write_compare(&compared, &comparison(named), &themes[i], &path, size)
            .map_err(|e| failed(&path, e))?;
        crate::errln!("carbontop: wrote {}", path.display());
    }
    Ok(())
}

/// A PNG's title: the run's name (its directory or file name, never a path of the machine),
/// its command and its zone where run.json or `--zone` says.
fn png_title(o: &ReportArgs, r: &Recording) -> String {
    let run = r.run.as_ref().ok().and_then(Option::as_ref);
    let mut t = crate::report::summary::run_name(&r.file);
    if let Some(cmd) = run.filter(|f| !f.command.is_empty()) {
        t += &format!(" · {}", cmd.command.join(" "));
    }
    if let Some(z) = o.zone.as_deref().or(run.and_then(|f| f.zone.as_deref())) {
        t += &format!(" · zone {z}");
    }
    t
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
