//! Memory power (DESIGN.md §5): RAPL's DRAM domain where readable, else an estimate per memory
//! module — the modules counted from SMBIOS type 17, or guessed from the memory size with
//! CodeCarbon 3.x's heuristic — never W/GiB × a big host's installed memory.
//!
//! - [`RaplDram`]: the powercap zones named `dram` (`intel-rapl:N:M`, or a top-level zone on
//!   some platforms). `cpu_rapl` never counts them (it reads `package-N` zones only), so DRAM
//!   energy is counted once, here, as memory.
//! - [`MemEstimate`]: modules × watts per module. From SMBIOS (`<sysfs>/firmware/dmi/entries/
//!   17-*/raw`, root only): 5 W per populated module, as CodeCarbon's documentation tells users
//!   who know their module count (`force_ram_power` = 5 W × modules). Without it: CodeCarbon
//!   3.x's `RAM._estimate_dimm_count` and `_calculate_ram_power`, reproduced exactly so the
//!   figures compare (taper above 4 modules, 10 W floor; 1.5 W per module and a 3 W floor on
//!   ARM). On a VM the SMBIOS modules are the hypervisor's inventions and are not counted.
//!   The estimate's band is 1.5–5.3 W per module (engine::constants `DIMM_W_LOW`/`HIGH`).
//! - [`MemShare`]: the watched command's share of memory by resident set size, for `run -- CMD`
//!   (the memory power × tree RSS / MemTotal; read by `source::process::ProcessTree`, charged
//!   by the Ledger as `process_mem_w`).

use crate::engine::constants::{
    DIMM_W_ARM, DIMM_W_HIGH, DIMM_W_LOW, DIMM_W_X86, MEMORY_MIN_W_ARM, MEMORY_MIN_W_X86,
    dimm_count_from_size, memory_modules_power_w,
};
use crate::sample::PowerReading;
use crate::source::MemSource;
use crate::source::cpu_rapl::{
    CounterZone, RaplUnavailable, Unnamed, classify_io_error, counter_zones, read_u64,
};
use crate::units::Watts;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

const GIB: f64 = (1u64 << 30) as f64;

/// A RAPL DRAM counter drawing more than this between two reads was reset, not wrapped.
const DRAM_MAX_PLAUSIBLE_W: f64 = 2_000.0;

// ---------------------------------------------------------------------------------------------
// RAPL DRAM
// ---------------------------------------------------------------------------------------------

/// Measured DRAM power from the RAPL `dram` zones: the energy counters' advance between two
/// reads over the time between them (the first read has no interval and gives nothing).
#[derive(Debug)]
pub struct RaplDram {
    zones: Vec<CounterZone>,
    root: PathBuf,
    last: Option<(Instant, Vec<u64>)>,
    warning: Option<String>,
    failing: bool,
}

/// `intel-rapl:N` or `intel-rapl:N:M`.
fn is_rapl_zone(name: &str) -> bool {
    name.strip_prefix("intel-rapl:").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split(':').collect();
        parts.len() <= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl RaplDram {
    /// Finds the `dram` zones under `<sysfs_root>/class/powercap` and checks they can be read.
    pub fn probe(sysfs_root: &Path) -> Result<Self, RaplUnavailable> {
        let (root, zones) =
            counter_zones(sysfs_root, is_rapl_zone, |n| n == "dram", Unnamed::Skip)?;
        Ok(Self {
            zones,
            root,
            last: None,
            warning: None,
            failing: false,
        })
    }

    pub fn zone_count(&self) -> usize {
        self.zones.len()
    }

    /// The average DRAM power since the previous call, read at `now`.
    pub fn read_at(&mut self, now: Instant) -> Option<PowerReading> {
        let mut cur = Vec::with_capacity(self.zones.len());
        for z in &self.zones {
            match read_u64(&z.energy) {
                Ok(v) => cur.push(v),
                Err(e) => {
                    if !self.failing {
                        self.warning = Some(format!(
                            "RAPL DRAM read failed ({}): memory power unknown until it recovers",
                            classify_io_error(&z.energy, &e)
                        ));
                    }
                    self.failing = true;
                    self.last = None;
                    return None;
                }
            }
        }
        self.failing = false;
        let prev = self.last.replace((now, cur.clone()));
        let (then, old) = prev?;
        let dt = now.checked_duration_since(then)?.as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        let uj: u64 = self
            .zones
            .iter()
            .zip(old.iter().zip(&cur))
            .map(|(z, (&o, &c))| dram_delta_uj(o, c, z.max_uj, dt))
            .sum();
        Some(PowerReading::Average(Watts(uj as f64 / 1e6 / dt)))
    }
}

/// One counter's advance: new − old, or across a wrap at `max_uj`; a backwards step too large
/// to be a wrap within `dt` is a reset, counted from zero.
fn dram_delta_uj(old: u64, new: u64, max_uj: u64, dt: f64) -> u64 {
    if new >= old {
        return new - old;
    }
    let wrapped = max_uj.saturating_sub(old) + new;
    if wrapped as f64 / 1e6 / dt > DRAM_MAX_PLAUSIBLE_W {
        new
    } else {
        wrapped
    }
}

impl MemSource for RaplDram {
    fn read(&mut self, now: Instant) -> Option<PowerReading> {
        self.read_at(now)
    }

    fn describe(&self) -> String {
        format!(
            "RAPL DRAM (measured), {} zone{} under {}",
            self.zones.len(),
            if self.zones.len() == 1 { "" } else { "s" },
            self.root.display()
        )
    }

    fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

// ---------------------------------------------------------------------------------------------
// SMBIOS type 17
// ---------------------------------------------------------------------------------------------

/// A Memory Device's size (SMBIOS type 17, offset 0Ch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSize {
    /// 0000h: no device installed in the socket.
    Empty,
    /// FFFFh (or 7FFFh without an Extended Size field): installed, size unknown.
    Unknown,
    Bytes(u64),
}

/// The fields of one SMBIOS Memory Device (type 17) structure that carbontop reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryDevice {
    pub size: ModuleSize,
    /// Offset 0Eh: 09h DIMM, 0Dh SODIMM, 0Bh row of chips, …
    pub form_factor: u8,
    /// Offset 12h (SMBIOS 2.1+): 1Ah DDR4, 22h DDR5, 1Eh LPDDR4, 23h LPDDR5, …; 0 if absent.
    pub memory_type: u8,
}

impl MemoryDevice {
    /// Populated, and a module (not memory soldered to the board: SIP 04h, chip 05h, DIP 06h,
    /// ZIP 07h, TSOP 0Ah, row of chips 0Bh, die 10h).
    pub fn is_module(&self) -> bool {
        self.size != ModuleSize::Empty
            && !matches!(self.form_factor, 0x04..=0x07 | 0x0A | 0x0B | 0x10)
    }
}

/// Parses one `/sys/firmware/dmi/entries/17-N/raw`: the structure's formatted area followed by
/// its strings. Offsets from DMTF DSP0134 (SMBIOS Reference Specification 3.x), §7.18 "Memory
/// Device (Type 17)":
/// - 00h type (17), 01h length of the formatted area;
/// - 0Ch Size (WORD): 0000h no device installed, FFFFh unknown, 7FFFh "see Extended Size";
///   otherwise bits 0–14 the size in MB, or in KB when bit 15 is set;
/// - 0Eh Form Factor (BYTE); 12h Memory Type (BYTE, 2.1+);
/// - 1Ch Extended Size (DWORD, 2.7+): bits 0–30 the size in MB (bit 31 reserved).
///
/// `None` for anything that is not a type 17 structure of at least 0Fh bytes.
pub fn parse_memory_device(raw: &[u8]) -> Option<MemoryDevice> {
    let (&ty, &len) = (raw.first()?, raw.get(1)?);
    let len = usize::from(len);
    if ty != 17 || len < 0x0F || raw.len() < len {
        return None;
    }
    let word = |at: usize| u16::from_le_bytes([raw[at], raw[at + 1]]);
    let size = match word(0x0C) {
        0 => ModuleSize::Empty,
        0xFFFF => ModuleSize::Unknown,
        0x7FFF if len >= 0x20 => {
            let ext = u32::from_le_bytes([raw[0x1C], raw[0x1D], raw[0x1E], raw[0x1F]]);
            ModuleSize::Bytes(u64::from(ext & 0x7FFF_FFFF) << 20)
        }
        0x7FFF => ModuleSize::Unknown,
        v if v & 0x8000 != 0 => ModuleSize::Bytes(u64::from(v & 0x7FFF) << 10),
        v => ModuleSize::Bytes(u64::from(v) << 20),
    };
    Some(MemoryDevice {
        size,
        form_factor: raw[0x0E],
        memory_type: if len > 0x12 { raw[0x12] } else { 0 },
    })
}

/// Why SMBIOS gave no module count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmbiosUnavailable {
    /// No type 17 entries (not exposed, or not x86 firmware).
    Absent,
    /// The entries are readable by root only.
    PermissionDenied,
    /// Entries, but no populated module (memory soldered to the board, or all slots empty).
    NoModules,
    /// A VM: its SMBIOS modules are the hypervisor's, not the host's.
    Vm,
}

impl std::fmt::Display for SmbiosUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmbiosUnavailable::Absent => "no SMBIOS memory devices",
            SmbiosUnavailable::PermissionDenied => {
                "SMBIOS memory devices are readable by root only"
            }
            SmbiosUnavailable::NoModules => "SMBIOS lists no memory modules (soldered memory?)",
            SmbiosUnavailable::Vm => "a VM's SMBIOS modules are virtual",
        })
    }
}

/// Memory devices listed under `<sysfs_root>/firmware/dmi/entries/17-*/raw`.
pub fn smbios_memory_devices(sysfs_root: &Path) -> Result<Vec<MemoryDevice>, SmbiosUnavailable> {
    let dir = sysfs_root.join("firmware/dmi/entries");
    let entries = fs::read_dir(&dir).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => SmbiosUnavailable::PermissionDenied,
        _ => SmbiosUnavailable::Absent,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("17-"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(SmbiosUnavailable::Absent);
    }
    let mut out = Vec::new();
    for n in names {
        match fs::read(dir.join(&n).join("raw")) {
            Ok(raw) => out.extend(parse_memory_device(&raw)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(SmbiosUnavailable::PermissionDenied);
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Populated memory modules per SMBIOS; `vm` rules SMBIOS out.
pub fn smbios_module_count(sysfs_root: &Path, vm: bool) -> Result<usize, SmbiosUnavailable> {
    if vm {
        return Err(SmbiosUnavailable::Vm);
    }
    let n = smbios_memory_devices(sysfs_root)?
        .iter()
        .filter(|d| d.is_module())
        .count();
    if n == 0 {
        Err(SmbiosUnavailable::NoModules)
    } else {
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// The per-module estimate
// ---------------------------------------------------------------------------------------------

/// Where the module count came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleBasis {
    /// Counted in SMBIOS type 17.
    Smbios,
    /// CodeCarbon 3.x's guess from the memory size (GiB); `why` says why SMBIOS was not used.
    SizeHeuristic {
        gib: f64,
        why: Option<SmbiosUnavailable>,
    },
}

/// Memory power estimated per module.
#[derive(Debug, Clone, PartialEq)]
pub struct MemEstimate {
    modules: usize,
    w_per_module: f64,
    watts: f64,
    basis: ModuleBasis,
    arm: bool,
}

/// CodeCarbon's `_detect_arm_cpu`: the machine name contains `arm` or `aarch`.
pub fn is_arm(arch: &str) -> bool {
    let a = arch.to_ascii_lowercase();
    a.contains("arm") || a.contains("aarch")
}

impl MemEstimate {
    /// `modules` counted in SMBIOS: 5 W each (1.5 W on ARM), no taper and no floor — the count
    /// is known (CodeCarbon's documented `force_ram_power` = 5 W × modules).
    pub fn from_modules(modules: usize, arm: bool) -> Self {
        let w = if arm { DIMM_W_ARM } else { DIMM_W_X86 };
        Self {
            modules,
            w_per_module: w,
            watts: modules as f64 * w,
            basis: ModuleBasis::Smbios,
            arm,
        }
    }

    /// CodeCarbon 3.x's estimate for `total_bytes` of memory (`psutil.virtual_memory().total`,
    /// i.e. MemTotal): its module guess, taper and floor.
    pub fn from_size(total_bytes: u64, arm: bool, why: Option<SmbiosUnavailable>) -> Self {
        let gib = total_bytes as f64 / GIB;
        let modules = dimm_count_from_size(gib);
        let (w, floor) = if arm {
            (DIMM_W_ARM, MEMORY_MIN_W_ARM)
        } else {
            (DIMM_W_X86, MEMORY_MIN_W_X86)
        };
        Self {
            modules,
            w_per_module: w,
            watts: memory_modules_power_w(modules, w).max(floor),
            basis: ModuleBasis::SizeHeuristic { gib, why },
            arm,
        }
    }

    pub fn watts(&self) -> f64 {
        self.watts
    }

    pub fn modules(&self) -> usize {
        self.modules
    }

    pub fn basis(&self) -> &ModuleBasis {
        &self.basis
    }
}

impl MemSource for MemEstimate {
    fn read(&mut self, _now: Instant) -> Option<PowerReading> {
        Some(PowerReading::Average(Watts(self.watts)))
    }

    fn describe(&self) -> String {
        let n = self.modules;
        let dimms = if n == 1 { "DIMM" } else { "DIMMs" };
        let plain = n as f64 * self.w_per_module;
        let count = if (self.watts - plain).abs() < 1e-9 {
            format!("{n} {dimms} × {} W", self.w_per_module)
        } else if self.watts > plain {
            format!(
                "{} W: {n} {dimms} × {} W, raised to CodeCarbon's floor",
                self.watts, self.w_per_module
            )
        } else {
            format!(
                "{} W: {n} {dimms} × {} W, less above 4 as CodeCarbon tapers",
                self.watts, self.w_per_module
            )
        };
        let source = match &self.basis {
            ModuleBasis::Smbios => "SMBIOS".to_owned(),
            ModuleBasis::SizeHeuristic { gib, why } => {
                let why = why.as_ref().map(|w| format!("; {w}")).unwrap_or_default();
                format!("CodeCarbon size heuristic from {gib:.1} GiB{why}")
            }
        };
        let arm = if self.arm { ", ARM" } else { "" };
        format!("estimate, {count} ({source}{arm}) [band {DIMM_W_LOW}–{DIMM_W_HIGH:.1} W/DIMM]")
    }

    fn band(&self) -> Option<(f64, f64)> {
        Some((
            DIMM_W_LOW / self.w_per_module,
            DIMM_W_HIGH / self.w_per_module,
        ))
    }
}

/// MemTotal from `<proc_root>/meminfo`, in bytes.
pub fn mem_total_bytes(proc_root: &Path) -> Option<u64> {
    meminfo_kb(
        &fs::read_to_string(proc_root.join("meminfo")).ok()?,
        "MemTotal",
    )
    .map(|k| k << 10)
}

/// A `NAME:   123 kB` line of /proc/meminfo or /proc/PID/status, in kB.
fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
}

/// The memory source for this machine: RAPL DRAM where readable, else the per-module estimate
/// (SMBIOS count unless `vm`, else CodeCarbon's size heuristic on MemTotal). The second value
/// says why RAPL DRAM is not used, when it is not.
pub fn detect(
    sysfs_root: &Path,
    proc_root: &Path,
    vm: bool,
) -> Result<(Box<dyn MemSource>, Option<RaplUnavailable>), String> {
    let why = match RaplDram::probe(sysfs_root) {
        Ok(r) => return Ok((Box::new(r), None)),
        Err(e) => e,
    };
    let arm = is_arm(std::env::consts::ARCH);
    let est = match smbios_module_count(sysfs_root, vm) {
        Ok(n) => MemEstimate::from_modules(n, arm),
        Err(smbios) => {
            let total = match mem_total_bytes(proc_root) {
                Some(t) => t,
                None => sysinfo_total()?,
            };
            MemEstimate::from_size(total, arm, Some(smbios))
        }
    };
    Ok((Box::new(est), Some(why)))
}

fn sysinfo_total() -> Result<u64, String> {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .map_err(|e| format!("cannot read installed memory: {e}"))?;
    Ok(sys.total_memory())
}

// ---------------------------------------------------------------------------------------------
// The watched command's share
// ---------------------------------------------------------------------------------------------

/// The watched process tree's share of memory, by resident set size (`VmRSS` of each
/// `/proc/PID/status`, summed as CodeCarbon's process mode sums `rss` over a process and its
/// children; pages shared between them count once per process) against MemTotal. The Ledger
/// charges `run -- CMD` memory power × this share, as the CPU is charged by CPU time.
///
/// Why RSS over MemTotal, not over the memory in use: DRAM draws most of its power whether or
/// not a page is allocated (refresh and standby scale with the modules installed — the very
/// reason the machine's figure is per module, not per GiB used), so the installed memory is
/// the whole being shared, and the command is charged for the part it holds; the rest is the
/// machine's. That makes the charge per GiB held the same on an idle machine and a busy one, as
/// Green Algorithms charges memory by the amount a job holds (W per GB × GB requested), and the
/// shares of several tenants add up to at most the whole memory, whatever the others do; over
/// "used" memory a job's charge would rise whenever another job freed memory, and page cache
/// and the kernel's own memory would make "used" a moving target. CodeCarbon 3.x's process mode
/// (`codecarbon/external/ram.py`, `RAM.process_memory_GB`, `total_power`) sums the same RSS
/// over the process and its children but feeds it to its machine heuristic
/// (`_calculate_ram_power(process_memory_GB)`), as though the process's GiB were a machine's:
/// any process under 2 GB is charged its 10 W floor, as much as a whole 16 GB machine's
/// estimate. carbontop takes the proportional share instead.
#[derive(Debug, Clone)]
pub struct MemShare {
    proc_root: PathBuf,
    total_bytes: u64,
}

impl MemShare {
    /// `None` when MemTotal cannot be read.
    pub fn new(proc_root: &Path) -> Option<Self> {
        Some(Self {
            proc_root: proc_root.to_path_buf(),
            total_bytes: mem_total_bytes(proc_root).filter(|&t| t > 0)?,
        })
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Resident bytes of `pids` (those that have ended count 0; kernel threads have no VmRSS).
    pub fn tree_rss_bytes(&self, pids: &[i32]) -> u64 {
        pids.iter()
            .filter_map(|p| {
                fs::read_to_string(self.proc_root.join(p.to_string()).join("status")).ok()
            })
            .filter_map(|s| meminfo_kb(&s, "VmRSS"))
            .map(|kb| kb << 10)
            .sum()
    }

    /// The tree's share of memory, 0–1.
    pub fn share(&self, pids: &[i32]) -> f64 {
        (self.tree_rss_bytes(pids) as f64 / self.total_bytes as f64).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sysfs")
            .join(name)
    }

    /// A type 17 structure of SMBIOS 3.2 length (54h) with `size`, `ext` and `form`.
    fn device(size: u16, ext: u32, form: u8) -> Vec<u8> {
        let mut raw = vec![0u8; 0x54];
        raw[0] = 17;
        raw[1] = 0x54;
        raw[0x0C..0x0E].copy_from_slice(&size.to_le_bytes());
        raw[0x0E] = form;
        raw[0x12] = 0x1A;
        raw[0x1C..0x20].copy_from_slice(&ext.to_le_bytes());
        raw.extend_from_slice(b"DIMM_A1\0\0");
        raw
    }

    #[test]
    fn smbios_sizes_per_dsp0134() {
        let p = |raw: &[u8]| parse_memory_device(raw).map(|d| d.size);
        assert_eq!(p(&device(0, 0, 0x09)), Some(ModuleSize::Empty));
        assert_eq!(p(&device(0xFFFF, 0, 0x09)), Some(ModuleSize::Unknown));
        assert_eq!(
            p(&device(16384, 0, 0x09)),
            Some(ModuleSize::Bytes(16 << 30))
        );
        // 7FFFh: the size is in Extended Size (MB), here 64 GiB.
        assert_eq!(
            p(&device(0x7FFF, 65536, 0x09)),
            Some(ModuleSize::Bytes(64 << 30))
        );
        // Bit 15: KB granularity.
        assert_eq!(
            p(&device(0x8000 | 512, 0, 0x09)),
            Some(ModuleSize::Bytes(512 << 10))
        );
        // An SMBIOS 2.3 structure (length 1Bh) has no Extended Size: 7FFFh is unknown.
        let mut old = device(0x7FFF, 65536, 0x09);
        old[1] = 0x1B;
        assert_eq!(p(&old), Some(ModuleSize::Unknown));
        // Not type 17, too short, truncated.
        let mut other = device(16384, 0, 0x09);
        other[0] = 16;
        assert_eq!(p(&other), None);
        assert_eq!(p(&[17, 0x0E]), None);
        assert_eq!(p(&device(16384, 0, 0x09)[..0x20]), None);
        // Soldered memory is not a module; an installed module of unknown size is.
        let soldered = parse_memory_device(&device(8192, 0, 0x0B)).unwrap();
        assert!(!soldered.is_module());
        assert!(
            parse_memory_device(&device(0xFFFF, 0, 0x09))
                .unwrap()
                .is_module()
        );
        assert!(
            !parse_memory_device(&device(0, 0, 0x09))
                .unwrap()
                .is_module()
        );
    }

    #[test]
    fn smbios_fixture_counts_populated_modules() {
        let root = fixture("smbios-eight-dimms");
        assert_eq!(smbios_module_count(&root, false), Ok(8));
        assert_eq!(smbios_module_count(&root, true), Err(SmbiosUnavailable::Vm));
        assert_eq!(
            smbios_module_count(Path::new("/nonexistent"), false),
            Err(SmbiosUnavailable::Absent)
        );
        let (src, why) = detect(&root, &root.join("proc"), false).unwrap();
        assert!(matches!(why, Some(RaplUnavailable::Absent(_))));
        assert_eq!(
            src.describe(),
            "estimate, 8 DIMMs × 5 W (SMBIOS) [band 1.5–5.3 W/DIMM]"
        );
        // On a VM the same entries are not used: CodeCarbon's heuristic on MemTotal. 256 GiB
        // installed shows as 251.5 GiB, which CodeCarbon reads as 16 × 16 GiB (3.3.2: 70.0 W).
        let (src, _) = detect(&root, &root.join("proc"), true).unwrap();
        assert_eq!(
            src.describe(),
            "estimate, 70 W: 16 DIMMs × 5 W, less above 4 as CodeCarbon tapers (CodeCarbon size \
             heuristic from 251.5 GiB; a VM's SMBIOS modules are virtual) [band 1.5–5.3 W/DIMM]"
        );
    }

    #[test]
    fn size_heuristic_is_codecarbons() {
        // This VM's 23.5 GiB: 4 modules, 20 W (CodeCarbon 3.3.2 RAM().total_power() = 20.0 W).
        let mut e = MemEstimate::from_size(24_683_656 << 10, false, None);
        assert_eq!((e.modules(), e.watts()), (4, 20.0));
        assert_eq!(
            e.read(Instant::now()),
            Some(PowerReading::Average(Watts(20.0))),
            "a constant average"
        );
        assert_eq!(
            e.describe(),
            "estimate, 4 DIMMs × 5 W (CodeCarbon size heuristic from 23.5 GiB) [band 1.5–5.3 W/DIMM]"
        );
        let (lo, hi) = e.band().unwrap();
        assert!((lo - 0.3).abs() < 1e-12 && (hi - 32.0 / 30.0).abs() < 1e-12);
        // 2 GiB: one module, raised to the 10 W floor; ARM: 1.5 W per module, 3 W floor.
        let small = MemEstimate::from_size(2 << 30, false, None);
        assert_eq!(small.watts(), 10.0);
        assert!(small.describe().contains("floor"), "{}", small.describe());
        assert_eq!(MemEstimate::from_size(8 << 30, true, None).watts(), 3.0);
        assert_eq!(MemEstimate::from_size(64 << 30, true, None).watts(), 6.0);
        assert!(is_arm("aarch64") && is_arm("arm") && !is_arm("x86_64"));
        // Counted modules: no floor, no taper.
        assert_eq!(MemEstimate::from_modules(1, false).watts(), 5.0);
        assert_eq!(MemEstimate::from_modules(16, false).watts(), 80.0);
    }

    #[test]
    fn rapl_dram_is_found_and_measured() {
        // The two-package fixture has one dram sub-zone (intel-rapl:0:1); cpu_rapl counts only
        // the packages, so DRAM is counted here alone.
        let root = fixture("rapl-two-packages");
        let mut d = RaplDram::probe(&root).unwrap();
        assert_eq!(d.zone_count(), 1);
        assert!(d.describe().starts_with("RAPL DRAM (measured), 1 zone"));
        assert_eq!(d.band(), None);
        let cpu = crate::source::cpu_rapl::RaplSource::probe(&root).unwrap();
        assert_eq!(cpu.zone_count(), 2);
        // A static counter: nothing on the first read, then 0 W.
        let t0 = Instant::now();
        assert_eq!(d.read_at(t0), None);
        assert_eq!(
            d.read_at(t0 + Duration::from_secs(1)),
            Some(PowerReading::Average(Watts(0.0)))
        );
        assert!(matches!(
            RaplDram::probe(&fixture("rapl-wrap")),
            Err(RaplUnavailable::Absent(_))
        ));
    }

    #[test]
    fn a_top_level_dram_zone_is_memory_not_cpu() {
        let dir = tempfile::tempdir().unwrap();
        for (zone, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:1", "dram")] {
            let z = dir.path().join("class/powercap").join(zone);
            fs::create_dir_all(&z).unwrap();
            fs::write(z.join("name"), format!("{name}\n")).unwrap();
            fs::write(z.join("max_energy_range_uj"), "1000\n").unwrap();
            fs::write(z.join("energy_uj"), "1\n").unwrap();
        }
        let cpu = crate::source::cpu_rapl::RaplSource::probe(dir.path()).unwrap();
        assert_eq!(cpu.zone_count(), 1);
        assert_eq!(RaplDram::probe(dir.path()).unwrap().zone_count(), 1);
    }

    #[test]
    fn rapl_dram_counts_deltas_and_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let zone = dir.path().join("class/powercap/intel-rapl:0:2");
        fs::create_dir_all(&zone).unwrap();
        fs::write(zone.join("name"), "dram\n").unwrap();
        fs::write(zone.join("max_energy_range_uj"), "100000000\n").unwrap();
        fs::write(zone.join("energy_uj"), "99000000\n").unwrap();
        let mut d = RaplDram::probe(dir.path()).unwrap();
        let t0 = Instant::now();
        assert_eq!(d.read_at(t0), None);
        // 2 s later, wrapped: 1 J to the top and 9 J after it = 10 J → 5 W.
        fs::write(zone.join("energy_uj"), "9000000\n").unwrap();
        assert_eq!(
            d.read_at(t0 + Duration::from_secs(2)),
            Some(PowerReading::Average(Watts(5.0)))
        );
        // A backwards step too big for a wrap at ≤ 2 kW is a reset: counted from zero.
        assert_eq!(
            dram_delta_uj(90_000_000_000, 1_000_000, u64::MAX, 1.0),
            1_000_000
        );
        // A read error: a warning once, then nothing until it recovers.
        fs::remove_file(zone.join("energy_uj")).unwrap();
        assert_eq!(d.read_at(t0 + Duration::from_secs(3)), None);
        assert!(d.take_warning().unwrap().contains("RAPL DRAM read failed"));
        assert_eq!(d.read_at(t0 + Duration::from_secs(4)), None);
        assert_eq!(d.take_warning(), None);
    }

    #[test]
    fn command_share_by_resident_memory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::write(
            p.join("meminfo"),
            "MemTotal:       16777216 kB\nMemFree: 1 kB\n",
        )
        .unwrap();
        for (pid, kb) in [(10, 2_097_152u64), (11, 1_048_576)] {
            fs::create_dir_all(p.join(pid.to_string())).unwrap();
            fs::write(
                p.join(pid.to_string()).join("status"),
                format!("Name:\tx\nVmRSS:\t{kb} kB\nThreads:\t1\n"),
            )
            .unwrap();
        }
        let s = MemShare::new(p).unwrap();
        assert_eq!(s.total_bytes(), 16 << 30);
        assert_eq!(s.tree_rss_bytes(&[10, 11, 12]), 3 << 30);
        assert!((s.share(&[10, 11, 12]) - 3.0 / 16.0).abs() < 1e-12);
        assert_eq!(s.share(&[]), 0.0);
        assert!(MemShare::new(Path::new("/nonexistent")).is_none());
    }
}
