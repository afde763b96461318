//! emissions.csv: one row per run under CodeCarbon's exact header (v3.3), so CodeCarbon's
//! dashboards and scripts read carbontop's runs. Units as CodeCarbon's: emissions in kg,
//! emissions_rate in kg/s, energy in kWh, power in W, duration in s.
//!
//! Energies include PUE, as CodeCarbon's do, so cpu + gpu + ram energy plus the network's (which
//! has no column of its own) add up to `energy_consumed`.

use crate::engine::constants::J_PER_KWH;
use crate::report::account::Account;
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
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

/// What the recording does not hold and the machine or the user supplies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMeta {
    pub project_name: String,
    /// (ISO alpha-3, country name), when the zone is known.
    pub country: Option<(String, String)>,
    pub cpu_count: Option<usize>,
    pub cpu_model: Option<String>,
    pub gpu_models: Vec<String>,
    pub ram_total_gb: Option<f64>,
}

/// A stable run id for a recording: UUID v5 of its first timestamp and file name, so `run`'s
/// row and a later `report` of the same file agree.
pub fn run_id(a: &Account) -> String {
    let key = format!(
        "carbontop:{}:{}",
        a.start.map(|t| t.to_rfc3339()).unwrap_or_default(),
        Path::new(&a.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The row's 38 cells.
pub fn row(a: &Account, m: &RunMeta) -> Vec<String> {
    let t = &a.totals;
    let kwh = |j: f64| j * a.pue / J_PER_KWH;
    let kg = t.co2e_g / 1000.0;
    let dur = t.elapsed_s;
    let gpu_measured = a.gpu_count > 0;
    let (country_iso, country_name) = m
        .country
        .clone()
        .map_or((String::new(), String::new()), |(c, n)| (c, n));
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
        a.end
            .map(|e| e.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
        m.project_name.clone(),
        run_id(a),
        String::new(),
        dur.to_string(),
        kg.to_string(),
        num((dur > 0.0).then(|| kg / dur)),
        num(a.mean_power_w(t.cpu_j)),
        num(if gpu_measured {
            a.mean_power_w(t.gpu_j)
        } else {
            Some(0.0)
        }),
        num(a.mean_power_w(t.mem_j)),
        kwh(t.cpu_j).to_string(),
        kwh(t.gpu_j).to_string(),
        kwh(t.mem_j).to_string(),
        t.energy_kwh.to_string(),
        String::new(),
        country_name,
        country_iso,
        String::new(),
        String::new(),
        String::new(),
        format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        String::new(),
        String::new(),
        m.cpu_count.map(|c| c.to_string()).unwrap_or_default(),
        m.cpu_model.clone().unwrap_or_default(),
        a.gpu_count.to_string(),
        gpu_model,
        String::new(),
        String::new(),
        num(m.ram_total_gb),
        "machine".into(),
        String::new(),
        num(a.gpu_util_mean),
        String::new(),
        String::new(),
        "N".into(),
        a.pue.to_string(),
        String::new(),
    ]
}

/// Appends the row to `path`, writing the header first if the file is new or empty, as
/// CodeCarbon does. A file with another header is refused rather than corrupted.
pub fn append(path: &Path, a: &Account, m: &RunMeta) -> io::Result<()> {
    let has_content = match std::fs::File::open(path) {
        Ok(f) => {
            let mut first = String::new();
            BufReader::new(f).read_line(&mut first)?;
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
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    if !has_content {
        w.write_record(HEADER).map_err(io::Error::other)?;
    }
    w.write_record(row(a, m)).map_err(io::Error::other)?;
    w.flush()?;
    w.into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?
        .flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Totals;
    use chrono::TimeZone;

    fn account() -> Account {
        Account {
            file: "x/samples.csv".into(),
            totals: Totals {
                ticks: 3,
                elapsed_s: 100.0,
                gpu_j: 0.0,
                cpu_j: 3600.0,
                mem_j: 7200.0,
                net_j: 0.0,
                energy_kwh: 0.0036,
                co2e_g: 1.8,
                ..Default::default()
            },
            pue: 1.2,
            start: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single(),
            end: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 40).single(),
            gpu_count: 0,
            gpu_util_mean: None,
            first_accuracy: None,
            last_progress: Default::default(),
            truncated_tail: None,
        }
    }

    #[test]
    fn row_units_match_codecarbon() {
        let r = row(&account(), &RunMeta::default());
        assert_eq!(r.len(), HEADER.len());
        let get = |k: &str| r[HEADER.iter().position(|h| *h == k).unwrap()].clone();
        assert_eq!(get("timestamp"), "2026-01-01T00:01:40");
        assert_eq!(get("duration"), "100");
        assert_eq!(get("emissions"), "0.0018");
        assert_eq!(get("cpu_power"), "36");
        assert_eq!(get("ram_power"), "72");
        assert_eq!(get("gpu_power"), "0");
        assert_eq!(get("cpu_energy"), (3600.0 * 1.2 / 3.6e6).to_string());
        assert_eq!(get("energy_consumed"), "0.0036");
        assert_eq!(get("pue"), "1.2");
        assert_eq!(get("tracking_mode"), "machine");
        assert_eq!(get("run_id").len(), 36);
    }

    #[test]
    fn appends_under_one_header_and_refuses_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("emissions.csv");
        append(&p, &account(), &RunMeta::default()).unwrap();
        append(&p, &account(), &RunMeta::default()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
        let q = dir.path().join("other.csv");
        std::fs::write(&q, "a,b\n1,2\n").unwrap();
        assert!(append(&q, &account(), &RunMeta::default()).is_err());
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "a,b\n1,2\n");
    }
}
