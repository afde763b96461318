//! GPU power, energy and state through NVML (nvml-wrapper, which dlopens `libnvidia-ml.so.1` at
//! `Nvml::init()`: the binary builds and runs on machines without a driver).

use crate::sample::{GpuReading, PowerReading};
use crate::source::GpuSource;
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

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
}

pub struct NvmlSource {
    nvml: Nvml,
    gpus: Vec<GpuInfo>,
    warning: Option<String>,
    lost: Vec<bool>,
    /// Per GPU: the newest per-process utilisation sample seen (µs, NVML's clock), so each
    /// call asks only for the samples since.
    proc_seen_us: Vec<u64>,
}

/// One line saying why GPU power is not measured.
pub fn explain(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(_) => "no NVIDIA driver: GPU power not measured".into(),
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
    /// Opens NVML and the selected GPUs (all when `only` is empty).
    pub fn open(only: &[u32]) -> Result<Self, NvmlOpenError> {
        let unavailable = |e: NvmlError| NvmlOpenError::Unavailable(explain(&e));
        let nvml = Nvml::init().map_err(unavailable)?;
        let count = nvml.device_count().map_err(unavailable)?;
        if count == 0 {
            return Err(NvmlOpenError::Unavailable(
                "NVIDIA driver found but no GPU: GPU power not measured".into(),
            ));
        }
        if let Some(&index) = only.iter().find(|&&i| i >= count) {
            return Err(NvmlOpenError::NoSuchIndex { index, count });
        }
        let indices: Vec<u32> = if only.is_empty() {
            (0..count).collect()
        } else {
            only.to_vec()
        };
        let mut gpus = Vec::new();
        for i in indices {
            let d = nvml.device_by_index(i).map_err(unavailable)?;
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
            });
        }
        let lost = vec![false; gpus.len()];
        Ok(Self {
            nvml,
            proc_seen_us: vec![0; gpus.len()],
            gpus,
            warning: None,
            lost,
        })
    }

    pub fn info(&self) -> &[GpuInfo] {
        &self.gpus
    }
}

impl GpuSource for NvmlSource {
    fn read(&mut self) -> Vec<GpuReading> {
        let mut out = Vec::with_capacity(self.gpus.len());
        for (k, g) in self.gpus.iter().enumerate() {
            let mut r = GpuReading {
                index: g.index,
                ..Default::default()
            };
            match self.nvml.device_by_index(g.index) {
                Ok(d) => {
                    r.power = d
                        .power_usage()
                        .ok()
                        .map(|mw| PowerReading::Instant(crate::units::Watts(mw_to_w(mw))));
                    r.energy_mj = if g.has_energy_counter {
                        d.total_energy_consumption().ok()
                    } else {
                        None
                    };
                    r.util_pct = d.utilization_rates().ok().map(|u| f64::from(u.gpu));
                    r.mem_used_mib = d
                        .memory_info()
                        .ok()
                        .map(|m| m.used as f64 / (1u64 << 20) as f64);
                    r.cap_w = d.power_management_limit().ok().map(mw_to_w);
                    if r.power.is_none() && r.energy_mj.is_none() && !self.lost[k] {
                        self.lost[k] = true;
                        self.warning =
                            Some(format!("GPU {} ({}) stopped answering", g.index, g.name));
                    } else if r.power.is_some() {
                        self.lost[k] = false;
                    }
                }
                Err(e) => {
                    if !self.lost[k] {
                        self.lost[k] = true;
                        self.warning = Some(format!(
                            "GPU {} ({}) lost: {e}; its power is unknown from now",
                            g.index, g.name
                        ));
                    }
                }
            }
            out.push(r);
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

    fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
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
