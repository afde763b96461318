//! CPU package energy from the Linux powercap (RAPL) sysfs interface.
//!
//! `<sysfs>/class/powercap/intel-rapl:N/{name,energy_uj,max_energy_range_uj}`; `name` is
//! `package-N` (or `psys`). Only top-level package zones are read: sub-zones (`intel-rapl:N:M`,
//! core/uncore/dram) are inside or beside their package and adding them would count twice, and
//! `psys` covers the whole platform including the packages. A `dram` zone (a sub-zone, or
//! top-level on some platforms) is memory: `mem::RaplDram` reads it, so DRAM energy is counted
//! once, as memory. AMD Zen exposes the same names (kernel ≥ 5.11). Wrap-around is handled by
//! the engine.

use crate::sample::{CpuReading, RaplCounter};
use crate::source::CpuSource;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One RAPL energy counter: its zone directory, its `energy_uj` and where it wraps.
#[derive(Debug, Clone)]
pub struct CounterZone {
    pub dir: String,
    pub energy: PathBuf,
    pub max_uj: u64,
}

/// Measured CPU package energy.
#[derive(Debug)]
pub struct RaplSource {
    zones: Vec<CounterZone>,
    root: PathBuf,
    warning: Option<String>,
    failing: bool,
}

/// Why RAPL cannot be used; the text says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaplUnavailable {
    Absent(PathBuf),
    PermissionDenied(PathBuf),
    Unreadable(PathBuf, String),
}

impl std::fmt::Display for RaplUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RaplUnavailable::Absent(p) => write!(
                f,
                "no RAPL package zones under {} (common on VMs and non-x86 machines)",
                p.display()
            ),
            RaplUnavailable::PermissionDenied(p) => write!(
                f,
                "RAPL counter {} is readable by root only (Linux ≥ 5.10, CVE-2020-8694): run \
                 carbontop as root, or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` \
                 (a udev rule or sysfsutils `mode class/powercap/intel-rapl:0/energy_uj = 0444` \
                 makes it last)",
                p.display()
            ),
            RaplUnavailable::Unreadable(p, e) => write!(f, "cannot read {}: {e}", p.display()),
        }
    }
}

/// Maps an I/O error on `path` to the reason RAPL is unavailable.
pub fn classify_io_error(path: &Path, e: &io::Error) -> RaplUnavailable {
    match e.kind() {
        io::ErrorKind::PermissionDenied => RaplUnavailable::PermissionDenied(path.to_path_buf()),
        io::ErrorKind::NotFound => RaplUnavailable::Absent(path.to_path_buf()),
        _ => RaplUnavailable::Unreadable(path.to_path_buf(), e.to_string()),
    }
}

/// A counter file's value (`energy_uj`, `max_energy_range_uj`).
pub fn read_u64(path: &Path) -> io::Result<u64> {
    let s = fs::read_to_string(path)?;
    s.trim().parse::<u64>().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{:?} is not a counter: {e}", s.trim()),
        )
    })
}

/// True for `intel-rapl:N` (a top-level zone), false for sub-zones and the control type dir.
fn is_top_level_zone(name: &str) -> bool {
    name.strip_prefix("intel-rapl:")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What to do with a zone whose `name` cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamed {
    /// It is the reason RAPL is unavailable (the package zones: their names are world-readable).
    Fail,
    /// It is passed over (the DRAM sub-zones, looked for among zones of every kind).
    Skip,
}

/// The readable counters under `<sysfs_root>/class/powercap` whose directory `keep_dir` and
/// whose `name` `keep_name` accept, in zone-number order (`intel-rapl:1` before
/// `intel-rapl:10`), with the powercap directory; none is `Absent`.
pub fn counter_zones(
    sysfs_root: &Path,
    keep_dir: fn(&str) -> bool,
    keep_name: fn(&str) -> bool,
    unnamed: Unnamed,
) -> Result<(PathBuf, Vec<CounterZone>), RaplUnavailable> {
    let root = sysfs_root.join("class/powercap");
    let entries = fs::read_dir(&root).map_err(|e| classify_io_error(&root, &e))?;
    let mut dirs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| keep_dir(n))
        .collect();
    dirs.sort_by_key(|d| {
        d.split(':')
            .skip(1)
            .map(|n| n.parse::<u32>().unwrap_or(u32::MAX))
            .collect::<Vec<_>>()
    });
    let mut zones = Vec::new();
    for dir in dirs {
        let base = root.join(&dir);
        let name_path = base.join("name");
        let name = match fs::read_to_string(&name_path) {
            Ok(n) => n,
            Err(_) if unnamed == Unnamed::Skip => continue,
            Err(e) => return Err(classify_io_error(&name_path, &e)),
        };
        if !keep_name(name.trim()) {
            continue;
        }
        let max_path = base.join("max_energy_range_uj");
        let max_uj = read_u64(&max_path).map_err(|e| classify_io_error(&max_path, &e))?;
        let energy = base.join("energy_uj");
        read_u64(&energy).map_err(|e| classify_io_error(&energy, &e))?;
        zones.push(CounterZone {
            dir,
            energy,
            max_uj,
        });
    }
    if zones.is_empty() {
        return Err(RaplUnavailable::Absent(root));
    }
    Ok((root, zones))
}

impl RaplSource {
    /// Finds the package zones under `sysfs_root` and checks they can be read; psys and
    /// anything else would double count the packages.
    pub fn probe(sysfs_root: &Path) -> Result<Self, RaplUnavailable> {
        let (root, zones) = counter_zones(
            sysfs_root,
            is_top_level_zone,
            |n| n.starts_with("package"),
            Unnamed::Fail,
        )?;
        Ok(Self {
            zones,
            root,
            warning: None,
            failing: false,
        })
    }

    pub fn zone_count(&self) -> usize {
        self.zones.len()
    }
}

impl CpuSource for RaplSource {
    fn read(&mut self) -> CpuReading {
        let mut out = Vec::with_capacity(self.zones.len());
        for z in &self.zones {
            match read_u64(&z.energy) {
                Ok(v) => out.push(RaplCounter {
                    zone: z.dir.clone(),
                    energy_uj: v,
                    max_energy_range_uj: z.max_uj,
                }),
                Err(e) => {
                    if !self.failing {
                        self.warning = Some(format!(
                            "RAPL read failed ({}): CPU power unknown until it recovers",
                            classify_io_error(&z.energy, &e)
                        ));
                    }
                    self.failing = true;
                    return CpuReading::Unknown;
                }
            }
        }
        self.failing = false;
        CpuReading::Rapl(out)
    }

    fn describe(&self) -> String {
        format!(
            "RAPL (measured), {} package zone{} under {}",
            self.zones.len(),
            if self.zones.len() == 1 { "" } else { "s" },
            self.root.display()
        )
    }

    fn is_estimate(&self) -> bool {
        false
    }

    fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sysfs")
            .join(name)
    }

    #[test]
    fn finds_packages_not_subzones_or_psys() {
        let src = RaplSource::probe(&fixture("rapl-two-packages")).unwrap();
        assert_eq!(src.zone_count(), 2);
        let mut src = src;
        let CpuReading::Rapl(c) = src.read() else {
            panic!("expected counters")
        };
        assert_eq!(c[0].zone, "intel-rapl:0");
        assert_eq!(c[1].zone, "intel-rapl:1");
        assert_eq!(c[0].max_energy_range_uj, 262_143_328_850);
    }

    #[test]
    fn absent_tree_is_absent() {
        let err = RaplSource::probe(Path::new("/nonexistent-sysfs")).unwrap_err();
        assert!(matches!(err, RaplUnavailable::Absent(_)));
        assert!(err.to_string().contains("no RAPL"));
    }

    #[test]
    fn permission_denied_says_how_to_fix() {
        // Tests run as root, where file modes do not bite: drive the classification directly.
        let p = Path::new("/sys/class/powercap/intel-rapl:0/energy_uj");
        let err = classify_io_error(p, &io::Error::from(io::ErrorKind::PermissionDenied));
        let text = err.to_string();
        assert!(matches!(err, RaplUnavailable::PermissionDenied(_)));
        assert!(
            text.contains("root") && text.contains("chmod a+r"),
            "{text}"
        );
    }

    #[test]
    fn zone_names() {
        assert!(is_top_level_zone("intel-rapl:0"));
        assert!(is_top_level_zone("intel-rapl:12"));
        assert!(!is_top_level_zone("intel-rapl:0:1"));
        assert!(!is_top_level_zone("intel-rapl"));
        assert!(!is_top_level_zone("intel-rapl:"));
    }
}
