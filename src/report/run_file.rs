//! `run.json` beside samples.csv (DESIGN.md §4): what is fixed for the run — its id, the
//! command, the machine, the zone and its country, the PUE, the embodied basis — so `report`
//! of the same file gives the same run_id and country as the run did, and samples.csv stays
//! plain CSV.

use crate::engine::constants::EmbodiedKg;
use crate::engine::embodied::Share;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The largest run.json read: its fields are short; anything bigger is not ours.
const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    #[serde(default)]
    pub cpu_model: Option<String>,
    #[serde(default)]
    pub cpu_count: Option<usize>,
    #[serde(default)]
    pub gpus: Vec<String>,
    /// Each counted GPU's number as every output shows it (NVML's index, nvidia-smi's; a
    /// samples.csv column group `gpu{index}_…`), its UUID and model, and the job's MIG share
    /// of it; in column order. Absent in recordings made before issue 19, whose column groups
    /// are numbered by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_map: Vec<GpuId>,
    /// GiB (2^30 bytes), CodeCarbon's `ram_total_size` unit.
    #[serde(default)]
    pub ram_total_gib: Option<f64>,
    #[serde(default)]
    pub os: String,
}

/// One GPU of run.json's map: the number shown everywhere, what NVML calls it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuId {
    pub index: u32,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub name: String,
    /// `MIG 3g.40gb (3 of 7 slices, estimated)` when the job held MIG instances of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<String>,
}

/// The TE the run was charged with and the server share behind it (both with their bands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embodied {
    pub te_kg: f64,
    pub te_low_kg: f64,
    pub te_high_kg: f64,
    #[serde(default)]
    pub share: Option<f64>,
    #[serde(default)]
    pub share_low: Option<f64>,
    #[serde(default)]
    pub share_high: Option<f64>,
    #[serde(default)]
    pub basis: String,
}

impl Embodied {
    pub fn new(te: EmbodiedKg, share: Option<&Share>, basis: String) -> Self {
        Embodied {
            te_kg: te.kg,
            te_low_kg: te.low,
            te_high_kg: te.high,
            share: share.map(|s| s.point),
            share_low: share.map(|s| s.low),
            share_high: share.map(|s| s.high),
            basis,
        }
    }

    /// The TE, when its figures are sane (a hand-edited file may hold anything).
    pub fn te(&self) -> Option<EmbodiedKg> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        (ok(self.te_kg) && ok(self.te_low_kg) && ok(self.te_high_kg)).then_some(EmbodiedKg {
            kg: self.te_kg,
            low: self.te_low_kg.min(self.te_kg),
            high: self.te_high_kg.max(self.te_kg),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub run_id: String,
    #[serde(default)]
    pub carbontop_version: String,
    /// RFC 3339, when the run started.
    #[serde(default)]
    pub started: String,
    /// `run`, `record`, `watch`, `serve`.
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub command: Vec<String>,
    /// The zone as given (`--zone`), or none (the world mean).
    #[serde(default)]
    pub zone: Option<String>,
    /// ISO alpha-3 and name of the zone's country (`WLD`, "World" for the world mean).
    #[serde(default)]
    pub country_iso_code: String,
    #[serde(default)]
    pub country_name: String,
    #[serde(default)]
    pub region: Option<String>,
    /// Where the intensity came from, and its basis.
    #[serde(default)]
    pub intensity: String,
    #[serde(default = "one")]
    pub pue: f64,
    #[serde(default)]
    pub machine: Machine,
    #[serde(default)]
    pub embodied: Option<Embodied>,
    /// emissions.csv's figures: `machine` (the machine's, the default) or `process` (the
    /// command's own, `run --tracking-mode process`), so `report` writes the row the run did.
    #[serde(default)]
    pub tracking_mode: TrackingMode,
    /// emissions.csv's `project_name`: `--project`, else the SLURM job's name (None: neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// The SLURM job step the run was part of (DESIGN §4's scheduler ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::source::scheduler::Slurm>,
}

/// CodeCarbon's `tracking_mode`: whose figures emissions.csv holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackingMode {
    /// The whole machine's.
    #[default]
    Machine,
    /// The command's own share (`run` only).
    Process,
}

impl TrackingMode {
    pub fn label(self) -> &'static str {
        match self {
            TrackingMode::Machine => "machine",
            TrackingMode::Process => "process",
        }
    }
}

impl std::str::FromStr for TrackingMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "machine" => Ok(TrackingMode::Machine),
            "process" => Ok(TrackingMode::Process),
            other => Err(format!("{other:?}: expected machine or process")),
        }
    }
}

fn one() -> f64 {
    1.0
}

impl RunFile {
    /// What emissions.csv takes from run.json: `project` (report's `--project`) over the
    /// run's own project name, else `carbontop`; the SLURM job as `sacct` names it for
    /// `experiment_id`.
    pub fn meta(&self, project: Option<&str>) -> crate::report::emissions::RunMeta {
        let project_name = project
            .or(self.project_name.as_deref())
            .unwrap_or(crate::report::emissions::DEFAULT_PROJECT);
        let country = (!self.country_iso_code.trim().is_empty())
            .then(|| (self.country_iso_code.clone(), self.country_name.clone()));
        crate::report::emissions::RunMeta {
            project_name: project_name.to_owned(),
            run_id: Some(self.run_id.clone()),
            experiment_id: self.slurm.as_ref().map(|s| s.sacct_id()),
            country,
            region: self.region.clone(),
            process: self.tracking_mode == TrackingMode::Process,
            cpu_count: self.machine.cpu_count,
            cpu_model: self.machine.cpu_model.clone(),
            gpu_models: self.machine.gpus.clone(),
            ram_total_gib: self.machine.ram_total_gib,
        }
    }
}

/// The place columns of the grid these settings price: (ISO alpha-3, country name) and the
/// region (a US state or Canadian province, lower case as CodeCarbon writes it). The world
/// mean is `WLD`/World; a fixed `--intensity` without a zone, or a zone placed nowhere, is
/// `ZZZ`/Unknown — never a guessed country.
pub fn place_of(g: &crate::source::grid::GridSettings) -> ((String, String), Option<String>) {
    use crate::report::emissions::{UNKNOWN_COUNTRY, WORLD_COUNTRY};
    use crate::source::grid::table;
    let pair = |(c, n): (&str, &str)| (c.to_owned(), n.to_owned());
    if g.zone.is_none() && g.intensity.is_some() {
        return (pair(UNKNOWN_COUNTRY), None);
    }
    let (iso3, name) = g.country();
    if iso3 != "WORLD" {
        let region = g
            .zone
            .as_deref()
            .and_then(|z| table::place(z, g.names()))
            .and_then(|r| r.entry.region.clone())
            .map(|r| r.to_lowercase());
        return ((iso3, name), region);
    }
    let world = g
        .zone
        .as_deref()
        .is_none_or(|z| z.trim().eq_ignore_ascii_case("WORLD"));
    (
        pair(if world {
            WORLD_COUNTRY
        } else {
            UNKNOWN_COUNTRY
        }),
        None,
    )
}

/// run.json's path for a samples.csv.
pub fn beside(samples: &Path) -> PathBuf {
    samples.with_file_name("run.json")
}

/// A fresh run id: UUID v5 of the start time (to the nanosecond), the directory and the
/// process id — unique per run, and written once to run.json so every later reader agrees.
pub fn new_run_id(started: &chrono::DateTime<chrono::Utc>, dir: &Path) -> String {
    let key = format!(
        "carbontop-run:{}:{}:{}",
        started.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        dir.display(),
        std::process::id()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// Writes run.json into `dir` (through a temporary file, so a reader never sees half of it).
pub fn write(dir: &Path, f: &RunFile) -> io::Result<()> {
    let tmp = dir.join(".run.json.tmp");
    {
        let mut out = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut out, f).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join("run.json"))
}

/// The run.json beside `samples`, if there is one: None when there is none; an error (one
/// line naming the file) when it is unreadable, too big or not carbontop's.
pub fn read_beside(samples: &Path) -> Result<Option<RunFile>, String> {
    let path = beside(samples);
    let text = match crate::config::read_small(&path, MAX_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let f: RunFile = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a carbontop run.json: {e}", path.display()))?;
    if f.run_id.trim().is_empty() || f.run_id.len() > 100 {
        return Err(format!("{}: run_id is empty or too long", path.display()));
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_read_back_alike() {
        let dir = tempfile::tempdir().unwrap();
        let samples = dir.path().join("samples.csv");
        assert_eq!(read_beside(&samples), Ok(None));
        let f = RunFile {
            run_id: new_run_id(&chrono::Utc::now(), dir.path()),
            country_iso_code: "FRA".into(),
            country_name: "France".into(),
            pue: 1.2,
            embodied: Some(Embodied::new(
                EmbodiedKg {
                    kg: 52.0,
                    low: 13.0,
                    high: 2500.0,
                },
                None,
                "x".into(),
            )),
            tracking_mode: TrackingMode::Process,
            ..Default::default()
        };
        write(dir.path(), &f).unwrap();
        assert_eq!(read_beside(&samples), Ok(Some(f.clone())));
        assert!(f.meta(Some("p")).process);
        // An older run.json, without the key: the machine's figures.
        std::fs::write(beside(&samples), r#"{"run_id":"x"}"#).unwrap();
        let old = read_beside(&samples).unwrap().unwrap();
        assert_eq!(old.tracking_mode, TrackingMode::Machine);
        assert!(!old.meta(Some("p")).process);
        assert_eq!("Process".parse(), Ok(TrackingMode::Process));
        assert!("both".parse::<TrackingMode>().is_err());
    }

    #[test]
    fn a_foreign_or_huge_file_is_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let samples = dir.path().join("samples.csv");
        std::fs::write(beside(&samples), "[1,2]").unwrap();
        let e = read_beside(&samples).unwrap_err();
        assert!(e.contains("run.json: not a carbontop run.json"), "{e}");
        assert!(!e.contains('\n'));
        std::fs::write(beside(&samples), vec![b' '; (MAX_BYTES + 10) as usize]).unwrap();
        assert!(read_beside(&samples).unwrap_err().contains("larger than"));
        std::fs::write(beside(&samples), r#"{"run_id":""}"#).unwrap();
        assert!(read_beside(&samples).unwrap_err().contains("run_id"));
    }

    #[test]
    fn a_hand_edited_te_is_kept_sane() {
        let e = Embodied {
            te_kg: 10.0,
            te_low_kg: 20.0,
            te_high_kg: 5.0,
            ..Default::default()
        };
        let te = e.te().unwrap();
        assert_eq!((te.low, te.high), (10.0, 10.0));
        let bad = Embodied {
            te_kg: f64::NAN,
            ..Default::default()
        };
        assert_eq!(bad.te(), None);
    }
}
