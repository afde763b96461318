//! emissions.csv: one row per run under CodeCarbon's exact header (v3.3), so CodeCarbon's
//! dashboards and scripts read carbontop's runs. Units as CodeCarbon's: emissions in kg,
//! emissions_rate in kg/s, energy in kWh, power in W, duration in s.
//!
//! Energies include PUE, as CodeCarbon's do, so cpu + gpu + ram energy plus the network's (which
//! has no column of its own) add up to `energy_consumed`.
//!
//! `tracking_mode = process` (`run --tracking-mode process`, CodeCarbon's process mode): the
//! energy, power and emissions columns are the command's own — its CPU-time share of the CPU,
//! its SM share of each GPU (a GPU whose driver names no processes whole), its resident share
//! of the memory and its traffic's share of the ports — with the same PUE; the rest of the row
//! (place, machine) is the machine's. Without the command's figures (a recording without
//! them) the row is the machine's and says `machine`.

use crate::engine::Snapshot;
use crate::units::Watts;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

/// CodeCarbon 3.3's emissions.csv header, in order (DESIGN.md §5).
pub const HEADER: [&str; 38] = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
];

/// The country columns when the run's place is the world mean (no zone): the World Bank's
/// aggregate code, as OWID's and the UN's tables use it beside ISO 3166's countries.
pub const WORLD_COUNTRY: (&str, &str) = ("WLD", "World");
/// The country columns when the place is not known (a recording without run.json and no
/// `--zone`): ISO 3166's user-assigned `ZZZ`, never a guessed country. CodeCarbon's own
/// carbonboard fails on an empty country code.
pub const UNKNOWN_COUNTRY: (&str, &str) = ("ZZZ", "Unknown");

/// `project_name` when no `--project`, run.json or SLURM job name gives one.
pub const DEFAULT_PROJECT: &str = "carbontop";

/// What the recording does not hold and the machine or the user supplies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMeta {
    pub project_name: String,
    /// run.json's run id; else one derived from the recording (see [`run_id`]).
    pub run_id: Option<String>,
    /// The scheduler's job (SLURM's `JOB[_TASK][.STEP]`, as `sacct -j` takes it).
    pub experiment_id: Option<String>,
    /// (ISO alpha-3, country name); None: the place is not known.
    pub country: Option<(String, String)>,
    /// The sub-national region (a US state, a Canadian province), lower case as CodeCarbon's.
    pub region: Option<String>,
    /// The figures are the command's share (CodeCarbon's `tracking_mode = process`), where the
    /// Snapshot has them.
    pub process: bool,
    pub cpu_count: Option<usize>,
    pub cpu_model: Option<String>,
    pub gpu_models: Vec<String>,
    /// GiB (2^30 bytes): CodeCarbon's `ram_total_size` is psutil's total / 1024³
    /// (codecarbon/external/ram.py, `B_TO_GB`).
    pub ram_total_gib: Option<f64>,
}

/// The run id of a recording without run.json: UUID v5 of its first timestamp as samples.csv
/// holds it (to the millisecond) and its file name, so every report of the file agrees.
pub fn run_id(file: &str, s: &Snapshot) -> String {
    let key = format!(
        "carbontop:{}:{}",
        s.start
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default(),
        Path::new(file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// A cell: empty for None, and for a figure that is not finite (no `inf` or `NaN` reaches
/// a CodeCarbon file: unknown is what such a figure is).
fn num(v: Option<impl std::fmt::Display>) -> String {
    v.map(|x| x.to_string())
        .filter(|t| !matches!(t.as_str(), "inf" | "-inf" | "NaN"))
        .unwrap_or_default()
}

/// A figure every row has (see [`num`]).
fn fig(v: impl std::fmt::Display) -> String {
    num(Some(v))
}

/// The energy, power and carbon columns: the machine's, or the command's own.
struct Figures {
    co2e_kg: f64,
    co2e_kg_per_s: Option<f64>,
    mean: crate::engine::meter::MeanPower,
    cpu_kwh: crate::units::ItKwh,
    gpu_kwh: Option<crate::units::ItKwh>,
    mem_kwh: crate::units::ItKwh,
    energy_kwh: crate::units::FacilityKwh,
    process: bool,
}

fn figures(s: &Snapshot, m: &RunMeta) -> Figures {
    match s.command.filter(|_| m.process) {
        Some(c) => Figures {
            co2e_kg: c.co2e_kg(),
            co2e_kg_per_s: c.co2e_kg_per_s(s.elapsed_s),
            mean: c.mean_power_w,
            cpu_kwh: c.cpu_kwh,
            gpu_kwh: c.gpu_kwh,
            mem_kwh: c.mem_kwh,
            energy_kwh: c.energy_kwh,
            process: true,
        },
        None => Figures {
            co2e_kg: s.co2e_kg(),
            co2e_kg_per_s: s.co2e_kg_per_s(),
            mean: s.mean_power_w,
            cpu_kwh: s.it.cpu_kwh,
            gpu_kwh: s.it.gpu_kwh,
            mem_kwh: s.it.mem_kwh,
            energy_kwh: s.energy_kwh,
            process: false,
        },
    }
}

/// The row's 38 cells.
pub fn row(file: &str, s: &Snapshot, m: &RunMeta) -> Vec<String> {
    let f = figures(s, m);
    let (country_iso, country_name) = m.country.clone().unwrap_or_else(|| {
        let (c, n) = UNKNOWN_COUNTRY;
        (c.to_owned(), n.to_owned())
    });
    // CodeCarbon multiplies power as well as energy by the PUE (emissions_tracker.py).
    let facility = |w: Option<Watts>| w.map(|w| w * s.pue);
    let gpu_model = if m.gpu_models.is_empty() {
        String::new()
    } else {
        let first = &m.gpu_models[0];
        if m.gpu_models.iter().all(|g| g == first) {
            format!("{} x {first}", m.gpu_models.len())
        } else {
            m.gpu_models.join(", ")
        }
    };
    vec![
        s.end
            .map(|e| e.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
        m.project_name.clone(),
        m.run_id.clone().unwrap_or_else(|| run_id(file, s)),
        m.experiment_id.clone().unwrap_or_default(),
        fig(s.elapsed_s),
        fig(f.co2e_kg),
        num(f.co2e_kg_per_s),
        num(facility(f.mean.cpu_w)),
        // CodeCarbon writes 0 for a machine without a GPU.
        num(facility(f.mean.gpu_w.or(Some(Watts(0.0))))),
        num(facility(f.mean.mem_w)),
        fig(s.facility_kwh(f.cpu_kwh)),
        fig(s.facility_kwh(f.gpu_kwh.unwrap_or_default())),
        fig(s.facility_kwh(f.mem_kwh)),
        fig(f.energy_kwh),
        String::new(),
        country_name,
        country_iso,
        m.region.clone().unwrap_or_default(),
        String::new(),
        String::new(),
        format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        String::new(),
        String::new(),
        m.cpu_count.map(|c| c.to_string()).unwrap_or_default(),
        m.cpu_model.clone().unwrap_or_default(),
        s.gpu_count.to_string(),
        gpu_model,
        String::new(),
        String::new(),
        num(m.ram_total_gib),
        if f.process { "process" } else { "machine" }.into(),
        String::new(),
        num(s.gpu_util_mean),
        String::new(),
        String::new(),
        "N".into(),
        fig(s.pue),
        String::new(),
    ]
}

/// How much of an existing emissions.csv is read to check its header: CodeCarbon's is 480
/// bytes; a file whose first line is longer is not one (issue 20: a 300 MB file without a
/// newline was read whole).
const MAX_HEADER_BYTES: u64 = 4 << 10;

/// Appends the row to `path`, writing the header first if the file is new or empty, as
/// CodeCarbon does. A file with another header is refused rather than corrupted. What is not
/// a regular file (a pipe, `/dev/stdout`) is written to, never read: reading `/dev/full` or a
/// terminal would never end.
pub fn append(path: &Path, file: &str, s: &Snapshot, m: &RunMeta) -> io::Result<()> {
    let has_content = match std::fs::File::open(path) {
        Ok(f) if !f.metadata()?.is_file() => false,
        Ok(f) => {
            let mut first = String::new();
            let read = BufReader::new(f.take(MAX_HEADER_BYTES)).read_line(&mut first);
            // Bytes that are not UTF-8 are no CodeCarbon header either.
            if read.is_err() {
                first = "(not text)".into();
            }
            let first = first.trim_end();
            if !first.is_empty() && first != HEADER.join(",") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} has another header than CodeCarbon 3.3's emissions.csv: not appending",
                        path.display()
                    ),
                ));
            }
            !first.is_empty()
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let out = OpenOptions::new().create(true).append(true).open(path)?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    if !has_content {
        w.write_record(HEADER).map_err(io::Error::other)?;
    }
    w.write_record(row(file, s, m)).map_err(io::Error::other)?;
    w.flush()?;
    w.into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?
        .flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Basis, Ledger, LedgerConfig, Meter};
    use crate::sample::{CpuReading, Intensity, PowerReading, Sample};
    use chrono::TimeZone;

    /// 100 s at 36 W of CPU and 72 W of memory, PUE 1.2, at 500 g/kWh.
    fn snapshot() -> Snapshot {
        snapshot_of(|_| None)
    }

    /// The same machine with a watched command: `process(t)` at each of its two ticks.
    fn snapshot_of(process: impl Fn(f64) -> Option<crate::sample::ProcessReading>) -> Snapshot {
        let mut l = Ledger::new(LedgerConfig {
            pue: crate::units::Pue::new(1.2).unwrap(),
            ..Default::default()
        });
        let mut m = Meter::new(
            Basis {
                pue: crate::units::Pue::new(1.2).unwrap(),
                ..Default::default()
            },
            false,
        );
        let t0 = chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap();
        for t in [0.0, 100.0] {
            let s = Sample {
                time: t0 + chrono::Duration::seconds(t as i64),
                elapsed_s: t,
                gpus: vec![],
                cpu: CpuReading::Power(PowerReading::Average(Watts(36.0))),
                mem: Some(PowerReading::Average(Watts(72.0))),
                net: None,
                intensity: Some(Intensity {
                    g_per_kwh: crate::units::GPerKwh(500.0),
                    source: crate::sample::SourceKind::Fixed.into(),
                }),
                progress: Default::default(),
                process: process(t),
                bands: Default::default(),
            };
            let tick = l.push(s);
            m.push(&tick, l.totals());
        }
        m.snapshot()
    }

    #[test]
    fn row_units_match_codecarbon() {
        let r = row("x/samples.csv", &snapshot(), &RunMeta::default());
        assert_eq!(r.len(), HEADER.len());
        let get = |k: &str| r[HEADER.iter().position(|h| *h == k).unwrap()].clone();
        assert_eq!(get("timestamp"), "2026-01-01T00:01:40");
        assert_eq!(get("duration"), "100");
        // Power with PUE, as CodeCarbon's.
        assert_eq!(get("cpu_power"), (36.0 * 1.2).to_string());
        assert_eq!(get("ram_power"), (72.0 * 1.2).to_string());
        assert_eq!(get("gpu_power"), "0");
        assert_eq!(get("cpu_energy"), (3600.0 / 3.6e6 * 1.2).to_string());
        let kwh: f64 = get("energy_consumed").parse().unwrap();
        assert!((kwh - 10800.0 * 1.2 / 3.6e6).abs() < 1e-15, "{kwh}");
        let kg: f64 = get("emissions").parse().unwrap();
        assert!((kg - kwh * 500.0 / 1000.0).abs() < 1e-15, "{kg}");
        assert_eq!(get("pue"), "1.2");
        assert_eq!(get("tracking_mode"), "machine");
        assert_eq!(get("run_id").len(), 36);
        assert_eq!(
            (get("country_iso_code"), get("country_name")),
            ("ZZZ".into(), "Unknown".into())
        );
        let named = RunMeta {
            run_id: Some("abc".into()),
            country: Some(("USA".into(), "United States".into())),
            region: Some("california".into()),
            process: true,
            ..Default::default()
        };
        let r = row("x/samples.csv", &snapshot(), &named);
        let get = |k: &str| r[HEADER.iter().position(|h| *h == k).unwrap()].clone();
        assert_eq!(
            [
                get("run_id"),
                get("country_iso_code"),
                get("region"),
                get("tracking_mode")
            ],
            ["abc", "USA", "california", "machine"],
            "no command's figures in this snapshot: the machine's row, saying so"
        );
    }

    #[test]
    fn process_mode_gives_the_commands_own_figures_with_pue() {
        use crate::sample::{ProcessCpu, ProcessMem, ProcessReading};
        // A quarter of the busy CPU time and an eighth of the memory are the command's.
        let snap = snapshot_of(|t| {
            Some(ProcessReading {
                cpu: Some(ProcessCpu {
                    tree_ticks: (t as u64),
                    busy_ticks: 4 * (t as u64),
                }),
                mem: Some(ProcessMem {
                    rss_bytes: 1 << 30,
                    total_bytes: 8 << 30,
                }),
                recorded: None,
            })
        });
        let meta = |process| RunMeta {
            process,
            ..Default::default()
        };
        let machine = row("x/samples.csv", &snap, &meta(false));
        let own = row("x/samples.csv", &snap, &meta(true));
        let get = |r: &[String], k: &str| r[HEADER.iter().position(|h| *h == k).unwrap()].clone();
        let n = |r: &[String], k: &str| get(r, k).parse::<f64>().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
        assert_eq!(get(&machine, "tracking_mode"), "machine");
        assert_eq!(get(&own, "tracking_mode"), "process");
        // CPU 36 W × 1/4, memory 72 W × 1/8, both with PUE 1.2.
        assert!(close(n(&own, "cpu_power"), 9.0 * 1.2));
        assert!(close(n(&own, "ram_power"), 9.0 * 1.2));
        assert!(close(n(&own, "cpu_energy"), 900.0 * 1.2 / 3.6e6));
        assert!(close(n(&own, "ram_energy"), 900.0 * 1.2 / 3.6e6));
        let kwh = n(&own, "energy_consumed");
        assert!(close(kwh, 1800.0 * 1.2 / 3.6e6), "{kwh}");
        assert!(close(n(&own, "emissions"), kwh * 500.0 / 1000.0));
        assert!(close(
            n(&own, "emissions_rate"),
            n(&own, "emissions") / 100.0
        ));
        // The machine's row is unchanged by the watching.
        assert!(close(n(&machine, "cpu_power"), 36.0 * 1.2));
        assert!(n(&own, "energy_consumed") < n(&machine, "energy_consumed"));
        // Everything but the figures is the machine's.
        for k in [
            "run_id",
            "country_iso_code",
            "duration",
            "pue",
            "ram_total_size",
        ] {
            assert_eq!(get(&own, k), get(&machine, k), "{k}");
        }
    }

    #[test]
    fn appends_under_one_header_and_refuses_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("emissions.csv");
        append(&p, "x/samples.csv", &snapshot(), &RunMeta::default()).unwrap();
        append(&p, "x/samples.csv", &snapshot(), &RunMeta::default()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
        let q = dir.path().join("other.csv");
        std::fs::write(&q, "a,b\n1,2\n").unwrap();
        assert!(append(&q, "x/samples.csv", &snapshot(), &RunMeta::default()).is_err());
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "a,b\n1,2\n");
    }
}
