//! Memory power: a constant per GiB installed (Green Algorithms, see engine::constants).

use crate::engine::constants::memory_power_w;
use crate::sample::PowerReading;
use crate::source::MemSource;
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

pub struct MemEstimate {
    bytes: u64,
    w_per_gib: f64,
}

impl MemEstimate {
    pub fn new(bytes: u64, w_per_gib: f64) -> Self {
        Self { bytes, w_per_gib }
    }

    /// Reads installed memory from the OS.
    pub fn detect(w_per_gib: f64) -> Result<Self, String> {
        let sys = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        )
        .map_err(|e| format!("cannot read installed memory: {e}"))?;
        Ok(Self::new(sys.total_memory(), w_per_gib))
    }
}

impl MemSource for MemEstimate {
    fn read(&mut self) -> Option<PowerReading> {
        Some(PowerReading::Average(crate::units::Watts(memory_power_w(
            self.bytes,
            self.w_per_gib,
        ))))
    }

    fn describe(&self) -> String {
        format!(
            "estimate, {} W/GiB × {:.1} GiB installed (Green Algorithms)",
            self.w_per_gib,
            self.bytes as f64 / (1u64 << 30) as f64
        )
    }
}
