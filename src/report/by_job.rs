//! `report --by-job DIR…`: the SLURM jobs' recordings under DIR (as `dist/slurm/prolog`
//! leaves them: one directory per job and node, samples.csv beside run.json) summed per job,
//! per user and per account, from run.json's `slurm` ids. Each recording is accounted once,
//! as `report` accounts it alone; the sums are the engine's ([`crate::engine::tally`]).

use crate::app::AppError;
use crate::cli::ReportArgs;
use crate::engine::tally::{Figures, Tally};
use crate::report::account::{Recording, account_file};
use crate::report::summary::{fmt_co2e_g, fmt_duration, fmt_energy_kwh, fmt_sig};
use crate::report::{emissions, run_file::TrackingMode};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How deep below a DIR recordings are looked for (`DIR/JOB/NODE/samples.csv` is 2 deep).
const MAX_DEPTH: usize = 4;
/// The most recordings one report reads (a year of a busy cluster's jobs is far fewer per
/// directory; more is a wrong directory, such as `/`).
const MAX_RECORDINGS: usize = 100_000;

/// One job: its ids and the sum of its recordings.
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub user: Option<String>,
    pub account: Option<String>,
    pub name: Option<String>,
    pub nodes: BTreeSet<String>,
    pub files: Vec<String>,
    pub tally: Tally,
}

/// The jobs found, and the sums by user and by account.
#[derive(Debug, Default)]
pub struct ByJob {
    /// By the job's id as `sacct` names it (`1234`, an array task's `1234_7`).
    pub jobs: BTreeMap<JobKey, Job>,
    pub users: BTreeMap<String, (usize, Tally)>,
    pub accounts: BTreeMap<String, (usize, Tally)>,
    /// Recordings left out (no run.json, or none with a SLURM job), each with why.
    pub skipped: Vec<String>,
    /// Each recording read, with its run.json: for emissions.csv's rows.
    pub recordings: Vec<Recording>,
}

/// A job id that sorts as a number (9 before 10), then as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobKey(usize, String);

impl JobKey {
    pub fn new(id: &str) -> Self {
        JobKey(id.len(), id.to_owned())
    }

    pub fn id(&self) -> &str {
        &self.1
    }
}

/// Shown for a user or account the job's ids do not name.
const NONE: &str = "—";

/// Every samples.csv at or below `paths` (files as given), sorted, at most [`MAX_RECORDINGS`].
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && depth < MAX_DEPTH {
                walk(&p, depth + 1, out)?;
            } else if t.is_file() && e.file_name() == "samples.csv" {
                out.push(p);
            }
            if out.len() > MAX_RECORDINGS {
                return Err(format!(
                    "{}: more than {MAX_RECORDINGS} recordings; give the jobs' directory",
                    dir.display()
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, 0, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and sums the recordings (PUE: `pue`, else each recording's own).
pub fn collect(files: &[PathBuf], pue: Option<f64>) -> Result<ByJob, String> {
    let mut by = ByJob::default();
    for f in files {
        let r = account_file(f, pue, false).map_err(|e| e.to_string())?;
        let run = match &r.run {
            Ok(Some(run)) => run.clone(),
            Ok(None) => {
                by.skipped
                    .push(format!("{}: no run.json beside it", r.file));
                continue;
            }
            Err(e) => {
                by.skipped.push(e.clone());
                continue;
            }
        };
        let Some(slurm) = &run.slurm else {
            by.skipped
                .push(format!("{}: its run.json names no SLURM job", r.file));
            continue;
        };
        let key = match (&slurm.array_job_id, &slurm.array_task_id) {
            (Some(a), Some(t)) => format!("{a}_{t}"),
            _ => slurm.job_id.clone(),
        };
        let own = run.tracking_mode == TrackingMode::Process;
        let job = by.jobs.entry(JobKey::new(&key)).or_default();
        job.user = job.user.take().or_else(|| slurm.user.clone());
        job.account = job.account.take().or_else(|| slurm.account.clone());
        job.name = job.name.take().or_else(|| slurm.job_name.clone());
        job.nodes.extend(slurm.node.clone());
        job.files.push(r.file.clone());
        job.tally.add(&Figures::of(&r.snapshot, own));
        by.recordings.push(r);
    }
    for job in by.jobs.values() {
        for (map, k) in [(&mut by.users, &job.user), (&mut by.accounts, &job.account)] {
            let e = map
                .entry(k.clone().unwrap_or_else(|| NONE.into()))
                .or_default();
            e.0 += 1;
            e.1.merge(&job.tally);
        }
    }
    Ok(by)
}

/// The table: a line per job, then per user and per account.
pub fn text(by: &ByJob) -> String {
    let mut t = format!(
        "carbontop report --by-job: {} jobs, {} recordings (basis process: the job's own share \
         of its nodes; machine: the whole nodes')\n",
        by.jobs.len(),
        by.jobs.values().map(|j| j.tally.recordings).sum::<usize>()
    );
    let line = |k: &str, a: &str, b: &str, c: &str, tl: &Tally| {
        format!(
            "  {k:<12} {a:<10} {b:<10} {c:<12} {:>10}  {:>11}  {:>10}  {}\n",
            fmt_duration(tl.longest_s),
            fmt_energy_kwh(tl.energy_kwh),
            fmt_co2e_g(tl.co2e_g),
            tl.basis()
        )
    };
    t += &format!(
        "  {:<12} {:<10} {:<10} {:<12} {:>10}  {:>11}  {:>10}  basis\n",
        "job", "user", "account", "nodes", "longest", "energy", "CO2e"
    );
    for (k, j) in &by.jobs {
        let nodes = j.nodes.iter().cloned().collect::<Vec<_>>().join(",");
        let or_none = |s: &Option<String>| s.clone().unwrap_or_else(|| NONE.into());
        t += &line(
            k.id(),
            &or_none(&j.user),
            &or_none(&j.account),
            &nodes,
            &j.tally,
        );
    }
    for (title, map) in [("user", &by.users), ("account", &by.accounts)] {
        t += &format!("by {title}\n");
        for (k, (jobs, tl)) in map {
            let n = format!("{jobs} job{}", if *jobs == 1 { "" } else { "s" });
            t += &line(k, &n, "", "", tl);
        }
    }
    for s in &by.skipped {
        t += &format!("  left out: {s}\n");
    }
    t
}

/// The same as JSON (energy in kWh, carbon in g).
pub fn json(by: &ByJob) -> serde_json::Value {
    let figures = |tl: &Tally| {
        json!({
            "recordings": tl.recordings,
            "energy_kwh": tl.energy_kwh.0,
            "co2e_g": tl.co2e_g.0,
            "longest_s": tl.longest_s,
            "basis": tl.basis(),
        })
    };
    let sums = |map: &BTreeMap<String, (usize, Tally)>, key: &str| {
        map.iter()
            .map(|(k, (jobs, tl))| {
                let mut v = figures(tl);
                v[key] = json!(k);
                v["jobs"] = json!(jobs);
                v
            })
            .collect::<Vec<_>>()
    };
    json!({
        "jobs": by.jobs.iter().map(|(k, j)| {
            let mut v = figures(&j.tally);
            v["job"] = json!(k.id());
            v["user"] = json!(j.user);
            v["account"] = json!(j.account);
            v["job_name"] = json!(j.name);
            v["nodes"] = json!(j.nodes);
            v["files"] = json!(j.files);
            v
        }).collect::<Vec<_>>(),
        "users": sums(&by.users, "user"),
        "accounts": sums(&by.accounts, "account"),
        "left_out": by.skipped,
    })
}

/// One line for Slurm's AdminComment (no commas: `sacctmgr` splits its values on them), for
/// the one job found.
pub fn admin_comment(by: &ByJob) -> Result<String, String> {
    let mut jobs = by.jobs.iter();
    match (jobs.next(), jobs.next()) {
        (Some((_, j)), None) => Ok(format!(
            "carbontop energy_kwh={} co2e_g={} basis={} recordings={}",
            fmt_sig(j.tally.energy_kwh.0),
            fmt_sig(j.tally.co2e_g.0),
            j.tally.basis(),
            j.tally.recordings
        )),
        (None, _) => Err("no SLURM job's recording found".into()),
        (Some(_), Some(_)) => Err(format!(
            "{} jobs found: give one job's directory",
            by.jobs.len()
        )),
    }
}

/// `carbontop report --by-job`.
pub fn run(o: &ReportArgs) -> Result<i32, AppError> {
    let files = find(&o.files).map_err(|e| AppError::Usage(format!("report --by-job: {e}")))?;
    let by = collect(&files, o.pue).map_err(|e| AppError::Usage(format!("report {e}")))?;
    if let Some(path) = o.emissions.as_deref() {
        for r in &by.recordings {
            if let Ok(Some(f)) = &r.run {
                emissions::append(path, &r.file, &r.snapshot, &f.meta(o.project.as_deref()))
                    .map_err(|e| AppError::Usage(format!("--emissions {}: {e}", path.display())))?;
            }
        }
    }
    if o.admin_comment {
        let line = admin_comment(&by)
            .map_err(|e| AppError::Usage(format!("report --by-job --admin-comment: {e}")))?;
        crate::outln!("{line}")?;
    } else if o.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&json(&by))
                .map_err(|e| AppError::Runtime(e.to_string()))?
        )?;
    } else {
        crate::app::out(&text(&by))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::run_file::{self, RunFile};
    use crate::source::scheduler::Slurm;

    const TRACE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/traces/a40x4-cifar100.csv"
    );

    /// A job's recording on `node`, as the prolog's recorder leaves it.
    fn recording(root: &Path, job: &str, node: &str, user: &str, account: Option<&str>) {
        let dir = root.join(job).join(node);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(TRACE, dir.join("samples.csv")).unwrap();
        let f = RunFile {
            run_id: format!("run-{job}-{node}"),
            slurm: Some(Slurm {
                job_id: job.into(),
                node: Some(node.into()),
                user: Some(user.into()),
                account: account.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        };
        run_file::write(&dir, &f).unwrap();
    }

    #[test]
    fn recordings_sum_per_job_user_and_account_as_each_alone_reports() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        recording(root, "7", "n1", "ada", Some("physics"));
        recording(root, "7", "n2", "ada", Some("physics"));
        recording(root, "10", "n1", "ada", None);
        recording(root, "9", "n1", "bob", Some("physics"));
        // Not a job's: left out, said.
        std::fs::create_dir_all(root.join("loose")).unwrap();
        std::fs::copy(TRACE, root.join("loose/samples.csv")).unwrap();

        let files = find(&[root.to_path_buf()]).unwrap();
        assert_eq!(files.len(), 5);
        let by = collect(&files, None).unwrap();
        let one = account_file(Path::new(TRACE), None, false)
            .unwrap()
            .snapshot;
        let ids: Vec<&str> = by.jobs.keys().map(JobKey::id).collect();
        assert_eq!(ids, ["7", "9", "10"]);
        let seven = &by.jobs[&JobKey::new("7")];
        assert_eq!(seven.tally.recordings, 2);
        assert!((seven.tally.energy_kwh.0 - 2.0 * one.energy_kwh.0).abs() < 1e-12);
        assert!((seven.tally.co2e_g.0 - 2.0 * one.co2e_g.0).abs() < 1e-9);
        assert_eq!(seven.tally.basis(), "machine");
        assert_eq!(seven.nodes.iter().collect::<Vec<_>>(), ["n1", "n2"]);
        let (jobs, ada) = by.users["ada"];
        assert_eq!((jobs, ada.recordings), (2, 3));
        assert!((ada.co2e_g.0 - 3.0 * one.co2e_g.0).abs() < 1e-9);
        assert_eq!(by.accounts["physics"].0, 2);
        assert_eq!(by.accounts[NONE].0, 1);
        assert_eq!(by.skipped.len(), 1);
        assert!(by.skipped[0].contains("no run.json"), "{:?}", by.skipped);

        let t = text(&by);
        assert!(t.contains("by user") && t.contains("left out"), "{t}");
        let j = json(&by);
        assert_eq!(j["jobs"][0]["job"], "7");
        assert_eq!(j["jobs"][0]["recordings"], 2);
        assert_eq!(j["users"][0]["user"], "ada");
        // The AdminComment line is for one job; no commas (sacctmgr splits on them).
        assert!(admin_comment(&by).unwrap_err().contains("3 jobs"));
        let nine = collect(&find(&[root.join("9")]).unwrap(), None).unwrap();
        let line = admin_comment(&nine).unwrap();
        assert!(line.starts_with("carbontop energy_kwh="), "{line}");
        assert!(!line.contains(','), "{line}");
        assert_eq!(
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("co2e_g="))
                .unwrap(),
            fmt_sig(one.co2e_g.0)
        );
    }
}
