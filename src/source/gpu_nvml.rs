//! GPU power, energy and state through NVML (nvml-wrapper, which dlopens `libnvidia-ml.so.1` at
//! `Nvml::init()`: the binary builds and runs on machines without a driver).

mod mig;
mod visible;

pub use visible::{Ident, Pick};

use crate::sample::{GpuReading, MigShare, PowerReading};
use crate::source::GpuSource;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

/// Static facts about one GPU, read once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// (min, max) allowed power cap, W.
    pub cap_constraints_w: Option<(f64, f64)>,
    pub cap_default_w: Option<f64>,
    pub has_energy_counter: bool,
    /// The job holds MIG instances of this card, not the card: their share of it.
    pub mig: Option<MigShare>,
}

/// Which GPUs to open.
#[derive(Clone, Copy)]
pub enum Which<'a> {
    /// Every GPU of the machine (`record`, `watch`, `serve`, `--all-gpus`).
    All,
    /// These NVML indices (`--gpu-index`).
    Indices(&'a [u32]),
    /// The GPUs the job was given, as its environment (read through this) says: `run -- CMD`.
    Job(&'a dyn Fn(&str) -> Option<String>),
}

pub struct NvmlSource {
    nvml: Nvml,
    gpus: Vec<GpuInfo>,
    /// Which GPUs are counted and why, when the environment narrowed them (or could not).
    selection: Option<String>,
    /// GPUs the machine has (NVML's count), counted or not: the embodied share's denominator.
    machine_gpus: usize,
    /// Said at the next read: GPUs left out at start, GPUs lost or silent since.
    warnings: Vec<String>,
    lost: Vec<bool>,
    /// Per GPU: the newest per-process utilisation sample seen (µs, NVML's clock), so each
    /// call asks only for the samples since.
    proc_seen_us: Vec<u64>,
}

/// Names the NVML library to load instead of `libnvidia-ml.so.1` from the loader's path: a
/// driver installed elsewhere, or the tests' fake (tests/fake_nvml).
pub const LIB_ENV: &str = "CARBONTOP_NVML_LIB";

/// Opens NVML: the library `CARBONTOP_NVML_LIB` names, else `libnvidia-ml.so.1` (nvml-wrapper's
/// default, found through the loader's path, so `LD_LIBRARY_PATH` works too).
pub fn init() -> Result<Nvml, NvmlError> {
    match std::env::var_os(LIB_ENV).filter(|p| !p.is_empty()) {
        Some(path) => Nvml::builder().lib_path(&path).init(),
        None => Nvml::init(),
    }
}

/// One line saying why GPU power is not measured.
pub fn explain(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(why) => {
            match std::env::var_os(LIB_ENV).filter(|p| !p.is_empty()) {
                Some(path) => format!(
                    "{LIB_ENV}={}: cannot load it ({why}): GPU power not measured",
                    path.to_string_lossy()
                ),
                None => "no NVIDIA driver: GPU power not measured".into(),
            }
        }
        NvmlError::DriverNotLoaded => {
            "NVIDIA library present but the kernel driver is not loaded: GPU power not measured"
                .into()
        }
        NvmlError::NoPermission => {
            "no permission to query NVML (check /dev/nvidia* access): GPU power not measured".into()
        }
        other => format!("NVML failed ({other}): GPU power not measured"),
    }
}

/// Why `NvmlSource::open` gave no GPUs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NvmlOpenError {
    /// `--gpu-index` names a GPU this machine does not have: a usage error.
    #[error("--gpu-index {index}: this machine has {count} GPU(s), indices 0..{}", .count - 1)]
    NoSuchIndex { index: u32, count: u32 },
    /// GPU power cannot be measured here (no driver, no GPU, NVML failing); said, and the run
    /// goes on without it.
    #[error("{0}")]
    Unavailable(String),
}

fn mw_to_w(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

impl NvmlSource {
    /// Opens NVML and the GPUs `which` selects.
    pub fn open(which: Which<'_>) -> Result<Self, NvmlOpenError> {
        let unavailable = |e: NvmlError| NvmlOpenError::Unavailable(explain(&e));
        let nvml = init().map_err(unavailable)?;
        let count = nvml.device_count().map_err(unavailable)?;
        if count == 0 {
            return Err(NvmlOpenError::Unavailable(
                "NVIDIA driver found but no GPU: GPU power not measured".into(),
            ));
        }
        let mut migs: Vec<mig::Instance> = Vec::new();
        let mut mig_errors: Vec<String> = Vec::new();
        let (only, mut selection): (Vec<u32>, Option<String>) = match which {
            Which::All => (vec![], None),
            Which::Indices(only) => {
                if let Some(&index) = only.iter().find(|&&i| i >= count) {
                    return Err(NvmlOpenError::NoSuchIndex { index, count });
                }
                (only.to_vec(), None)
            }
            Which::Job(env) => {
                let pick = job_pick(&nvml, count, env);
                let said = visible::describe(&pick, count as usize);
                match pick {
                    Pick::Some {
                        indices,
                        var,
                        value,
                    } => {
                        (migs, mig_errors) = job_migs(&nvml, count, env, var, &value, &indices);
                        (indices, said)
                    }
                    Pick::Hidden { .. } => {
                        return Err(NvmlOpenError::Unavailable(said.unwrap_or_default()));
                    }
                    Pick::All | Pick::Unknown { .. } => (vec![], said),
                }
            }
        };
        // Each GPU once, in the order asked (`--gpu-index 2,2` must not count GPU 2 twice).
        let mut indices: Vec<u32> = Vec::new();
        for &i in &only {
            if !indices.contains(&i) {
                indices.push(i);
            }
        }
        if indices.is_empty() {
            indices = (0..count).collect();
        }
        let mut gpus = Vec::new();
        let mut skipped = Vec::new();
        for i in indices {
            // One GPU that fails (fallen off the bus before the run) leaves the others measured.
            let d = match nvml.device_by_index(i) {
                Ok(d) => d,
                Err(e) => {
                    skipped.push(format!("GPU {i} not measured: {e}"));
                    continue;
                }
            };
            gpus.push(GpuInfo {
                index: i,
                name: d.name().unwrap_or_else(|_| format!("GPU {i}")),
                uuid: d.uuid().unwrap_or_default(),
                cap_constraints_w: d
                    .power_management_limit_constraints()
                    .ok()
                    .map(|c| (mw_to_w(c.min_limit), mw_to_w(c.max_limit))),
                cap_default_w: d.power_management_limit_default().ok().map(mw_to_w),
                has_energy_counter: d.total_energy_consumption().is_ok(),
                mig: None,
            });
        }
        let mut notes = mig_shares(&nvml, &mut gpus, &migs, matches!(which, Which::Job(_)));
        notes.extend(mig_errors);
        if !notes.is_empty() {
            let said = selection.get_or_insert_with(String::new);
            for n in notes {
                if !said.is_empty() {
                    said.push_str("; ");
                }
                said.push_str(&n);
            }
        }
        if gpus.is_empty() {
            return Err(NvmlOpenError::Unavailable(format!(
                "{}: GPU power not measured",
                skipped.join("; ")
            )));
        }
        let lost = vec![false; gpus.len()];
        Ok(Self {
            nvml,
            proc_seen_us: vec![0; gpus.len()],
            gpus,
            selection,
            machine_gpus: count as usize,
            warnings: skipped,
            lost,
        })
    }

    /// GPUs the machine has, counted or not.
    pub fn machine_gpus(&self) -> usize {
        self.machine_gpus
    }

    /// Which GPUs are counted and why, when the job's environment narrowed them (or named
    /// GPUs that could not be matched): for the screen and the summary.
    pub fn selection(&self) -> Option<&str> {
        self.selection.as_deref()
    }

    pub fn info(&self) -> &[GpuInfo] {
        &self.gpus
    }
}

/// The job's GPUs among NVML's `count`, from its environment: NVML is asked for each GPU's
/// identity only when a variable that decides is set.
fn job_pick(nvml: &Nvml, count: u32, env: &dyn Fn(&str) -> Option<String>) -> Pick {
    if visible::VARS.iter().all(|v| env(v).is_none()) {
        return Pick::All;
    }
    let idents: Vec<Ident> = (0..count)
        .filter_map(|i| {
            let d = nvml.device_by_index(i).ok()?;
            Some(Ident {
                index: i,
                name: d.name().unwrap_or_default(),
                uuid: d.uuid().unwrap_or_default(),
                pci: d.pci_info().ok().map(|p| (p.domain, p.bus, p.device)),
                minor: d.minor_number().ok(),
            })
        })
        .collect();
    let mig = |uuid: &str| -> Result<Option<u32>, String> {
        match nvml.device_by_uuid(uuid) {
            Ok(m) => m
                .mig_parent_device()
                .and_then(|p| p.index())
                .map(Some)
                .map_err(|e| format!("NVML cannot say which GPU {uuid} is on ({e})")),
            Err(NvmlError::NotFound | NvmlError::InvalidArg) => Ok(None),
            Err(e) => Err(format!("NVML cannot look {uuid} up ({e})")),
        }
    };
    visible::pick(env, &idents, &mig)
}

/// The MIG instances `var=value` names on cards the job holds only through instances (a card
/// also named whole is charged whole), and why any could not be read (its card is then counted
/// whole, and that is said).
fn job_migs(
    nvml: &Nvml,
    count: u32,
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    value: &str,
    picked: &[u32],
) -> (Vec<mig::Instance>, Vec<String>) {
    let entries = mig::mig_entries(value);
    if entries.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let rest: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.starts_with("MIG-"))
        .collect();
    let whole: Vec<u32> = if rest.is_empty() {
        Vec::new()
    } else {
        let rest = rest.join(",");
        let only_rest = |k: &str| if k == var { Some(rest.clone()) } else { env(k) };
        match job_pick(nvml, count, &only_rest) {
            Pick::Some { indices, .. } => indices,
            _ => Vec::new(),
        }
    };
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    for u in entries {
        match mig::instance(nvml, u) {
            Ok(Some(i)) if picked.contains(&i.card) && !whole.contains(&i.card) => found.push(i),
            Ok(_) => {}
            Err(why) => errors.push(format!("{why}: its GPU counted whole")),
        }
    }
    (found, errors)
}

/// Sets each card's MIG share from the job's instances on it; what to say about each (its
/// share, or why the whole card is counted). `job`: a job's GPUs, where a card in MIG mode
/// counted whole is worth a word.
fn mig_shares(nvml: &Nvml, gpus: &mut [GpuInfo], migs: &[mig::Instance], job: bool) -> Vec<String> {
    let mut notes = Vec::new();
    for g in gpus.iter_mut() {
        let on: Vec<mig::Instance> = migs.iter().filter(|m| m.card == g.index).cloned().collect();
        if on.is_empty() {
            let mig_mode = || {
                nvml.device_by_index(g.index)
                    .and_then(|d| d.mig_mode())
                    .is_ok_and(|m| m.current == 1)
            };
            if job && mig_mode() {
                notes.push(format!(
                    "GPU {} is in MIG mode but no instance of it was named (MIG-… UUIDs in \
                     CUDA_VISIBLE_DEVICES): the whole card is counted",
                    g.index
                ));
            }
            continue;
        }
        match mig::card_slices(nvml, g.index) {
            Ok(of) => {
                let share = mig::share_of(&on, of, g.cap_default_w);
                notes.push(format!(
                    "GPU {} {}",
                    g.index,
                    crate::engine::mig::label(&share)
                ));
                g.mig = Some(share);
            }
            Err(why) => notes.push(format!("{why}: the whole of GPU {} counted", g.index)),
        }
    }
    notes
}

/// One GPU's readings this tick; every one optional (unknown is never 0). A GPU that fell off
/// the bus (`GpuLost` from any query) is an error, so the caller says so.
fn read_one(d: &Device<'_>, g: &GpuInfo) -> Result<GpuReading, NvmlError> {
    fn opt<T>(r: Result<T, NvmlError>) -> Result<Option<T>, NvmlError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(NvmlError::GpuLost) => Err(NvmlError::GpuLost),
            Err(_) => Ok(None),
        }
    }
    Ok(GpuReading {
        index: g.index,
        power: opt(d.power_usage())?
            .map(|mw| PowerReading::Instant(crate::units::Watts(mw_to_w(mw)))),
        energy_mj: if g.has_energy_counter {
            opt(d.total_energy_consumption())?
        } else {
            None
        },
        util_pct: opt(d.utilization_rates())?.map(|u| f64::from(u.gpu)),
        mem_used_mib: opt(d.memory_info())?.map(|m| m.used as f64 / (1u64 << 20) as f64),
        cap_w: opt(d.power_management_limit())?.map(mw_to_w),
        sm_clock_mhz: opt(d.clock_info(nvml_wrapper::enum_wrappers::device::Clock::SM))?
            .map(f64::from),
        tree_share: None,
        mig: g.mig.clone(),
    })
}

impl GpuSource for NvmlSource {
    fn read(&mut self) -> Vec<GpuReading> {
        let mut out = Vec::with_capacity(self.gpus.len());
        for (k, g) in self.gpus.iter().enumerate() {
            let read = self
                .nvml
                .device_by_index(g.index)
                .and_then(|d| read_one(&d, g));
            match read {
                Ok(r) => {
                    if r.power.is_none() && r.energy_mj.is_none() {
                        if !self.lost[k] {
                            self.lost[k] = true;
                            self.warnings
                                .push(format!("GPU {} ({}) stopped answering", g.index, g.name));
                        }
                    } else {
                        self.lost[k] = false;
                    }
                    out.push(r);
                }
                Err(e) => {
                    if !self.lost[k] {
                        self.lost[k] = true;
                        self.warnings.push(format!(
                            "GPU {} ({}) lost: {e}; its power is unknown from now",
                            g.index, g.name
                        ));
                    }
                    out.push(GpuReading {
                        index: g.index,
                        ..Default::default()
                    });
                }
            }
        }
        out
    }

    fn models(&self) -> Vec<String> {
        self.gpus.iter().map(|g| g.name.clone()).collect()
    }

    /// `nvmlDeviceGetComputeRunningProcesses` (who is on the GPU, their memory) merged with
    /// `nvmlDeviceGetProcessUtilization` (each one's SM share since the last call); a GPU that
    /// answers neither (lost, or a driver without per-process accounting) is `None`.
    fn processes(&mut self) -> Vec<Option<Vec<crate::source::process::GpuProc>>> {
        use nvml_wrapper::enums::device::UsedGpuMemory;
        let mut out = Vec::with_capacity(self.gpus.len());
        for (k, g) in self.gpus.iter().enumerate() {
            let Ok(d) = self.nvml.device_by_index(g.index) else {
                out.push(None);
                continue;
            };
            let running: Option<Vec<(u32, Option<u64>)>> =
                d.running_compute_processes().ok().map(|v| {
                    v.iter()
                        .map(|p| match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => (p.pid, Some(b)),
                            UsedGpuMemory::Unavailable => (p.pid, None),
                        })
                        .collect()
                });
            let samples: Option<Vec<(u32, u32)>> =
                match d.process_utilization_stats(self.proc_seen_us[k]) {
                    Ok(v) => {
                        if let Some(t) = v.iter().map(|s| s.timestamp).max() {
                            self.proc_seen_us[k] = self.proc_seen_us[k].max(t);
                        }
                        Some(v.iter().map(|s| (s.pid, s.sm_util)).collect())
                    }
                    // No sample since the last call: nobody computed.
                    Err(NvmlError::NotFound) => Some(Vec::new()),
                    Err(_) => None,
                };
            out.push(match (running, samples) {
                (None, None) => None,
                (r, s) => Some(crate::source::process::merge_gpu_procs(
                    &r.unwrap_or_default(),
                    &s.unwrap_or_default(),
                )),
            });
        }
        out
    }

    /// Everything to say since the last call, on one line (two GPUs lost in one tick are
    /// both said).
    fn take_warning(&mut self) -> Option<String> {
        (!self.warnings.is_empty()).then(|| std::mem::take(&mut self.warnings).join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_gpu_index_is_its_own_kind_and_says_the_range() {
        let e = NvmlOpenError::NoSuchIndex { index: 4, count: 2 };
        assert_eq!(
            e.to_string(),
            "--gpu-index 4: this machine has 2 GPU(s), indices 0..1"
        );
        let u = NvmlOpenError::Unavailable(explain(&NvmlError::DriverNotLoaded));
        assert_eq!(
            u.to_string(),
            "NVIDIA library present but the kernel driver is not loaded: GPU power not measured"
        );
    }
}
