//! Power caps on real NVIDIA GPUs through NVML (nvml-wrapper): the constraints, the default and
//! the present limit are read with `power_management_limit_constraints`,
//! `power_management_limit_default` and `power_management_limit`; `set_power_management_limit`
//! needs root (NVML_ERROR_NO_PERMISSION otherwise) and does not survive a driver reload, which
//! persistence mode (`nvidia-smi -pm 1`) prevents between runs.

use super::{CapError, CapLimits, PowerCap};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

pub struct NvmlCap {
    nvml: Nvml,
    /// NVML indices of the GPUs carbontop watches, in its own order.
    indices: Vec<u32>,
}

/// NVML's answer about carbontop's GPU `gpu` as a `CapError`.
fn map(gpu: usize) -> impl Fn(NvmlError) -> CapError {
    move |e| match e {
        NvmlError::NoPermission => CapError::NoPermission,
        NvmlError::NotSupported => CapError::NotSupported,
        NvmlError::GpuLost => CapError::Lost(gpu),
        other => CapError::Nvml(other.to_string()),
    }
}

fn w(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

impl NvmlCap {
    /// Opens NVML (its own handle: NVML counts initialisations) for these GPU indices.
    pub fn open(indices: Vec<u32>) -> Result<Self, CapError> {
        let nvml = crate::source::gpu_nvml::init()
            .map_err(|e| CapError::Unavailable(crate::source::gpu_nvml::explain(&e)))?;
        Ok(Self { nvml, indices })
    }

    fn index(&self, gpu: usize) -> Result<u32, CapError> {
        self.indices.get(gpu).copied().ok_or(CapError::NoSuchGpu {
            gpu,
            simulated: false,
        })
    }
}

impl PowerCap for NvmlCap {
    fn count(&self) -> usize {
        self.indices.len()
    }

    fn number(&self, gpu: usize) -> usize {
        self.indices.get(gpu).map_or(gpu, |&i| i as usize)
    }

    fn limits(&self, gpu: usize) -> Result<CapLimits, CapError> {
        let d = self
            .nvml
            .device_by_index(self.index(gpu)?)
            .map_err(map(self.number(gpu)))?;
        let c = d
            .power_management_limit_constraints()
            .map_err(map(self.number(gpu)))?;
        let default = d
            .power_management_limit_default()
            .map_err(map(self.number(gpu)))?;
        Ok(CapLimits {
            min_w: w(c.min_limit),
            max_w: w(c.max_limit),
            default_w: w(default),
        })
    }

    fn get(&mut self, gpu: usize) -> Result<f64, CapError> {
        let d = self
            .nvml
            .device_by_index(self.index(gpu)?)
            .map_err(map(self.number(gpu)))?;
        d.power_management_limit()
            .map(w)
            .map_err(map(self.number(gpu)))
    }

    fn set(&mut self, gpu: usize, watts: f64) -> Result<(), CapError> {
        let mut d = self
            .nvml
            .device_by_index(self.index(gpu)?)
            .map_err(map(self.number(gpu)))?;
        let mw = (watts * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32;
        d.set_power_management_limit(mw)
            .map_err(map(self.number(gpu)))
    }
}
