//! CPU power estimated from utilisation when RAPL is absent (DESIGN.md §5): the machine's load
//! between two ticks (sysinfo) through CodeCarbon 3.x's curve TDP × (0.1 + 0.9 × load³).
//!
//! The TDP is the table's per-package figure (`cpu_tdp`, CodeCarbon's matching) × the number of
//! packages (sockets), as CodeCarbon 3.x multiplies it by `lscpu`'s `Socket(s)`
//! (`ResourceTracker.set_CPU_tracking`: `max_power = tdp.tdp * cpu_number`). Sockets are the
//! distinct `physical_package_id`s under `<sysfs>/devices/system/cpu/cpu*/topology/` (what
//! `lscpu` counts), else the distinct `physical id`s of `<proc>/cpuinfo`, else one.
//!
//! On a VM the brand string is the host's CPU: like CodeCarbon, the estimate then charges the
//! host CPU's whole TDP (DESIGN.md §5 scales only embodied carbon by a VM's threads). The band's
//! low end says what that may overstate: the VM's own threads at 4 W each.

use crate::engine::constants::{
    CPU_UNKNOWN_W_PER_THREAD, cpu_estimate_band, cpu_estimate_power_w, unknown_cpu_tdp_w,
};
use crate::sample::{CpuReading, PowerReading};
use crate::source::{CpuSource, cpu_tdp};
use std::collections::BTreeSet;
use std::path::Path;
use sysinfo::{CpuRefreshKind, RefreshKind, System};

/// Where the TDP came from.
#[derive(Debug, Clone, PartialEq)]
pub enum TdpOrigin {
    /// `--cpu-tdp W`: the whole machine's TDP, all sockets (as CodeCarbon's `force_cpu_power`).
    Flag,
    /// The table's row `model`, `per_package_w` × `sockets`.
    Table {
        model: &'static str,
        per_package_w: f64,
        sockets: usize,
    },
    /// No usable row: 4 W per thread (CodeCarbon 3.x). `row` is the matched row when the table
    /// has it but its TDP cell is not a number.
    UnknownModel {
        threads: usize,
        row: Option<&'static str>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tdp {
    /// The whole machine's TDP, W.
    pub watts: f64,
    pub origin: TdpOrigin,
}

/// Picks the TDP: `--cpu-tdp` wins, then the embedded table × sockets, then 4 W per thread.
///
/// CodeCarbon 3.3.2 also multiplies its 4 W-per-thread fallback by the socket count, although
/// `psutil.cpu_count()` already counts every socket's threads; carbontop does not repeat that
/// double count, so on an unknown two-socket CPU CodeCarbon's figure is twice carbontop's.
pub fn choose_tdp(flag: Option<f64>, brand: &str, threads: usize, sockets: usize) -> Tdp {
    if let Some(w) = flag {
        return Tdp {
            watts: w,
            origin: TdpOrigin::Flag,
        };
    }
    let hit = cpu_tdp::lookup(brand);
    match hit.as_ref().and_then(|m| m.row.tdp_w.map(|w| (m.row, w))) {
        Some((row, w)) => {
            let sockets = sockets.max(1);
            Tdp {
                watts: w * sockets as f64,
                origin: TdpOrigin::Table {
                    model: row.name,
                    per_package_w: w,
                    sockets,
                },
            }
        }
        None => Tdp {
            watts: unknown_cpu_tdp_w(threads),
            origin: TdpOrigin::UnknownModel {
                threads,
                row: hit.map(|m| m.row.name),
            },
        },
    }
}

/// Distinct CPU packages: `physical_package_id` under `<sysfs>/devices/system/cpu/cpuN/topology/`,
/// else `physical id` lines of `<proc>/cpuinfo`; `None` when neither says.
pub fn count_sockets(sysfs_root: &Path, proc_root: &Path) -> Option<usize> {
    let cpus = sysfs_root.join("devices/system/cpu");
    let from_sysfs: BTreeSet<String> = std::fs::read_dir(&cpus)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("cpu"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| {
            std::fs::read_to_string(e.path().join("topology/physical_package_id"))
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .collect();
    if !from_sysfs.is_empty() {
        return Some(from_sysfs.len());
    }
    let cpuinfo = std::fs::read_to_string(proc_root.join("cpuinfo")).ok()?;
    let ids: BTreeSet<&str> = cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim() == "physical id")
        .map(|(_, v)| v.trim())
        .collect();
    (!ids.is_empty()).then_some(ids.len())
}

/// True when `<proc>/cpuinfo`'s flags include `hypervisor` (the CPUID bit a hypervisor sets for
/// its guests, x86).
pub fn is_vm(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("cpuinfo"))
        .is_ok_and(|s| crate::source::host::has_hypervisor_flag(&s))
}

/// What the estimate knows of the machine's CPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCpu {
    /// `/proc/cpuinfo`'s model name, trimmed.
    pub brand: String,
    /// Hardware threads visible to this OS.
    pub threads: usize,
    /// CPU packages; `None` when the topology could not be read (counted as one).
    pub sockets: Option<usize>,
    /// A guest of a hypervisor: the brand is the host's CPU.
    pub vm: bool,
}

/// Utilisation-based CPU power.
pub struct CpuEstimate {
    sys: System,
    host: HostCpu,
    tdp: Tdp,
    why: String,
    primed: bool,
    load: Option<f64>,
}

impl CpuEstimate {
    /// Reads the CPUs from sysinfo and the topology from `sysfs_root` and `/proc`; `why` says
    /// why RAPL is not used and goes into the description.
    pub fn new(tdp_flag: Option<f64>, why: String, sysfs_root: &Path) -> Result<Self, String> {
        Self::with_roots(tdp_flag, why, sysfs_root, Path::new("/proc"))
    }

    /// As [`CpuEstimate::new`], with the proc root given (tests, containers).
    pub fn with_roots(
        tdp_flag: Option<f64>,
        why: String,
        sysfs_root: &Path,
        proc_root: &Path,
    ) -> Result<Self, String> {
        let mut sys = System::new_with_specifics(
            RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing().with_usage()),
        )
        .map_err(|e| format!("cannot read CPU utilisation: {e}"))?;
        sys.refresh_cpu_usage();
        let host = HostCpu {
            brand: sys
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            threads: sys.cpus().len(),
            sockets: count_sockets(sysfs_root, proc_root),
            vm: is_vm(proc_root),
        };
        Ok(Self::from_parts(sys, host, tdp_flag, why))
    }

    fn from_parts(sys: System, host: HostCpu, tdp_flag: Option<f64>, why: String) -> Self {
        let tdp = choose_tdp(
            tdp_flag,
            &host.brand,
            host.threads,
            host.sockets.unwrap_or(1),
        );
        Self {
            sys,
            host,
            tdp,
            why,
            primed: false,
            load: None,
        }
    }

    pub fn brand(&self) -> &str {
        &self.host.brand
    }

    pub fn host(&self) -> &HostCpu {
        &self.host
    }

    pub fn tdp(&self) -> &Tdp {
        &self.tdp
    }

    /// The TDP at the band's low end, as a factor of the point TDP: on a VM charged a host
    /// CPU's table TDP, the VM's own threads at CodeCarbon's 4 W each, when that is less.
    fn tdp_low_factor(&self) -> f64 {
        match self.tdp.origin {
            TdpOrigin::Table { .. } if self.host.vm && self.tdp.watts > 0.0 => {
                (CPU_UNKNOWN_W_PER_THREAD * self.host.threads.max(1) as f64 / self.tdp.watts)
                    .min(1.0)
            }
            _ => 1.0,
        }
    }
}

/// The TDP part of the description.
fn describe_tdp(tdp: &Tdp, brand: &str) -> String {
    match &tdp.origin {
        TdpOrigin::Flag => format!("TDP {} W (--cpu-tdp, whole machine)", tdp.watts),
        TdpOrigin::Table {
            model,
            per_package_w,
            sockets: 1,
        } => format!("TDP {per_package_w} W ({model}, CodeCarbon table)"),
        TdpOrigin::Table {
            model,
            per_package_w,
            sockets,
        } => format!("TDP {sockets} × {per_package_w} W ({model}, CodeCarbon table)"),
        TdpOrigin::UnknownModel { threads, row } => {
            let why = match row {
                Some(r) => format!("table row {r:?} has no TDP"),
                None => format!("model {brand:?} not in the CodeCarbon table"),
            };
            format!(
                "TDP {} W ({why}: 4 W × {threads} threads, as CodeCarbon; set --cpu-tdp)",
                tdp.watts
            )
        }
    }
}

impl CpuSource for CpuEstimate {
    fn read(&mut self) -> CpuReading {
        self.sys.refresh_cpu_usage();
        if !self.primed {
            // Utilisation is measured between two refreshes: the first tick has no interval.
            self.primed = true;
            return CpuReading::Unknown;
        }
        let load = f64::from(self.sys.global_cpu_usage()) / 100.0;
        self.load = Some(load);
        CpuReading::Power(PowerReading::Average(crate::units::Watts(
            cpu_estimate_power_w(self.tdp.watts, load),
        )))
    }

    fn describe(&self) -> String {
        let vm = if self.host.vm && matches!(self.tdp.origin, TdpOrigin::Table { .. }) {
            "; a VM: this is the host CPU's whole TDP, as CodeCarbon charges it, not the VM's \
             share (band low end: 4 W × its threads)"
        } else {
            ""
        };
        format!(
            "estimate, {} × (0.1 + 0.9 × load³) (CodeCarbon 3.x curve){vm}, because {}",
            describe_tdp(&self.tdp, &self.host.brand),
            self.why
        )
    }

    fn is_estimate(&self) -> bool {
        true
    }

    fn band(&self) -> Option<(f64, f64)> {
        self.load
            .map(|l| cpu_estimate_band(l, self.tdp_low_factor()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sysfs")
            .join(name)
    }

    #[test]
    fn tdp_precedence() {
        let t = choose_tdp(Some(65.0), "AMD EPYC 7763 64-Core Processor", 128, 2);
        assert_eq!((t.watts, &t.origin), (65.0, &TdpOrigin::Flag));
        let t = choose_tdp(None, "AMD EPYC 7763 64-Core Processor", 128, 1);
        assert_eq!(
            t.origin,
            TdpOrigin::Table {
                model: "AMD EPYC 7763",
                per_package_w: 280.0,
                sockets: 1
            }
        );
        let t = choose_tdp(None, "AMD EPYC", 2, 1);
        assert_eq!(t.watts, 8.0);
        assert_eq!(
            t.origin,
            TdpOrigin::UnknownModel {
                threads: 2,
                row: None
            }
        );
        // A row without a number: the fallback, naming the row.
        let t = choose_tdp(None, "Intel Celeron 1000A", 1, 1);
        assert_eq!(t.watts, 4.0);
        assert!(describe_tdp(&t, "Intel Celeron 1000A").contains("has no TDP"));
    }

    #[test]
    fn two_sockets_double_the_tdp() {
        let t = choose_tdp(None, "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", 160, 2);
        assert_eq!(t.watts, 540.0);
        assert_eq!(
            describe_tdp(&t, ""),
            "TDP 2 × 270 W (Intel Xeon Platinum 8380, CodeCarbon table)"
        );
        // The fallback already counts every socket's threads: no second multiplication.
        assert_eq!(choose_tdp(None, "Mystery CPU", 64, 2).watts, 256.0);
        // A socket count of 0 (unreadable topology) counts as one.
        assert_eq!(choose_tdp(None, "AMD EPYC 7B12", 2, 0).watts, 240.0);
    }

    #[test]
    fn sockets_from_fake_sysfs_or_cpuinfo() {
        let two = fixture("cpu-two-sockets");
        assert_eq!(count_sockets(&two, &two.join("proc")), Some(2));
        // No topology in sysfs: /proc/cpuinfo's physical ids.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cpuinfo"),
            "processor\t: 0\nphysical id\t: 0\nflags\t\t: fpu hypervisor\n\n\
             processor\t: 1\nphysical id\t: 1\n\nprocessor\t: 2\nphysical id\t: 1\n",
        )
        .unwrap();
        assert_eq!(
            count_sockets(Path::new("/nonexistent"), dir.path()),
            Some(2)
        );
        assert!(is_vm(dir.path()));
        assert!(!is_vm(&two.join("proc")));
        assert_eq!(
            count_sockets(Path::new("/nonexistent"), Path::new("/nonexistent")),
            None
        );
    }

    #[test]
    fn vm_band_reaches_down_to_its_own_threads() {
        let sys = System::new().unwrap();
        let host = HostCpu {
            brand: "AMD EPYC 7R13 Processor".into(),
            threads: 2,
            sockets: Some(1),
            vm: true,
        };
        let mut e = CpuEstimate::from_parts(sys, host, None, "test".into());
        assert_eq!(e.tdp().watts, 225.0);
        assert_eq!(e.band(), None, "no band before a load is known");
        e.load = Some(1.0);
        let (lo, hi) = e.band().unwrap();
        // Full load: constant mode's half of TDP, × 8 W / 225 W for the VM's two threads.
        assert!((lo - 0.5 * 8.0 / 225.0).abs() < 1e-12 && (hi - 1.0).abs() < 1e-12);
        assert!(e.describe().contains("a VM"), "{}", e.describe());
        assert!(
            e.describe()
                .contains("TDP 225 W (AMD EPYC 7R13, CodeCarbon table)")
        );
    }

    #[test]
    fn live_estimate_reports_average_power_after_first_tick() {
        let mut e = CpuEstimate::new(Some(100.0), "test".into(), Path::new("/sys")).unwrap();
        assert_eq!(e.read(), CpuReading::Unknown);
        match e.read() {
            CpuReading::Power(PowerReading::Average(crate::units::Watts(w))) => {
                assert!((10.0..=100.0).contains(&w))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.describe().contains("estimate"));
        assert!(e.band().is_some());
    }
}
