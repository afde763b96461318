//! Sources: the only code that reads hardware or services. Each is a small trait with a real
//! implementation and a fixture-driven one, chosen at start-up; the rest of the program cannot
//! tell them apart.

pub mod cpu_estimate;
pub mod cpu_rapl;
pub mod cpu_tdp;
pub mod gpu_nvml;
pub mod grid;
pub mod host;
pub mod mem;
pub mod net;
pub mod process;
pub mod progress;
pub mod rdma;
pub mod replay;
pub mod sampler;
pub mod scheduler;
pub mod sockdiag;
pub mod term;

use crate::sample::{CpuReading, GpuReading, NetReading, PowerReading, Progress};

/// GPU power and state, one reading per device per tick.
pub trait GpuSource: Send {
    fn read(&mut self) -> Vec<GpuReading>;
    /// Device names, one per reading, for the summary and reports.
    fn models(&self) -> Vec<String>;
    /// A problem seen while reading (device lost, …), reported once by the caller.
    fn take_warning(&mut self) -> Option<String> {
        None
    }
    /// The training job's progress, where the source itself runs it (the simulated GPUs).
    fn progress(&mut self) -> Option<Progress> {
        None
    }
    /// The processes on each GPU (in `read`'s order) since the last call, where the driver
    /// reports them; empty when the source cannot say.
    fn processes(&mut self) -> Vec<Option<Vec<crate::source::process::GpuProc>>> {
        Vec::new()
    }
}

/// CPU energy or power.
pub trait CpuSource: Send {
    fn read(&mut self) -> CpuReading;
    /// How the figure is obtained, e.g. "RAPL (measured), 2 packages" or the estimate's formula.
    fn describe(&self) -> String;
    fn is_estimate(&self) -> bool;
    fn take_warning(&mut self) -> Option<String> {
        None
    }
    /// The estimate's low–high band as factors of the power `read` last returned: the true
    /// figure plausibly lies between `low × P` and `high × P` (DESIGN.md §5, "Bands"). It may
    /// change with the load, so take it after each `read`. `None` for a measured source
    /// (RAPL) and before the first figure.
    fn band(&self) -> Option<(f64, f64)> {
        None
    }
}

/// Memory power.
pub trait MemSource: Send {
    /// The memory power for the tick whose instant is `now`. A counter's average is taken
    /// over the time between the ticks' instants, the same span the Ledger multiplies it by,
    /// so power × Δt gives back the counter's joules exactly however late a tick runs.
    fn read(&mut self, now: std::time::Instant) -> Option<PowerReading>;
    /// How the figure is obtained, e.g. "RAPL DRAM (measured)" or the estimate's modules.
    fn describe(&self) -> String;
    /// A problem seen while reading (a RAPL counter gone unreadable), reported once.
    fn take_warning(&mut self) -> Option<String> {
        None
    }
    /// The estimate's low–high band as factors of the power `read` returns (see
    /// [`CpuSource::band`]); `None` for a measured source (RAPL DRAM).
    fn band(&self) -> Option<(f64, f64)> {
        None
    }
}

/// Network traffic since start.
pub trait NetSource: Send {
    fn read(&mut self) -> Option<NetReading>;
    fn describe(&self) -> String;
}
