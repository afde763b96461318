//! `Sample`: one tick of raw readings, the only thing sources hand to the engine.
//!
//! Sources report raw counters and readings; every bit of arithmetic on them lives in `engine`.

use chrono::{DateTime, Utc};

/// A power reading and what it means over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PowerReading {
    /// Instantaneous power at the sample's time (W); integrated with the trapezoid rule.
    Instant(f64),
    /// Average power over the interval that ends at this sample (W); integrated as power × Δt.
    /// A CPU estimate from utilisation since the last tick is one; a replayed samples.csv row,
    /// whose power columns hold interval averages, is another.
    Average(f64),
}

impl PowerReading {
    pub fn watts(self) -> f64 {
        match self {
            PowerReading::Instant(w) | PowerReading::Average(w) => w,
        }
    }
}

/// One RAPL powercap zone's cumulative energy counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaplCounter {
    /// Zone directory name, e.g. `intel-rapl:0`.
    pub zone: String,
    pub energy_uj: u64,
    pub max_energy_range_uj: u64,
}

/// What the CPU source saw this tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CpuReading {
    /// Nothing usable (first tick of an estimate, a read error).
    #[default]
    Unknown,
    /// A power figure (an estimate from utilisation, or a replayed row).
    Power(PowerReading),
    /// RAPL package counters (measured).
    Rapl(Vec<RaplCounter>),
}

/// One GPU this tick. Every field is optional: unknown is never 0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuReading {
    pub index: u32,
    pub power: Option<PowerReading>,
    /// NVML cumulative energy counter (mJ since driver load), when the GPU has one (Volta+).
    pub energy_mj: Option<u64>,
    pub util_pct: Option<f64>,
    pub mem_used_mib: Option<f64>,
    /// Current power-management limit (W).
    pub cap_w: Option<f64>,
    /// `run -- CMD`: the share (0–1) of this GPU's work that belongs to the command's process
    /// tree, from NVML's per-process accounting (`source::process::gpu_tree_share`); `None`
    /// where the driver does not say.
    pub tree_share: Option<f64>,
}

/// Network traffic counted since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetReading {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Set by replay: the recorded network power, so a replay reproduces the recording exactly
    /// whatever kWh/GB constant is configured now. Live sources leave it `None` and the engine
    /// derives the energy from the bytes.
    pub power: Option<PowerReading>,
}

/// Grid carbon intensity valid at the sample's time.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    pub g_per_kwh: f64,
    /// `table`, `fixed`, later `emaps`, `uk`, `watttime-moer`, with `-stale` when held.
    pub source: String,
}

/// The training run's progress as last reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub epoch: Option<f64>,
    pub step: Option<u64>,
    /// Percent (0–100).
    pub accuracy: Option<f64>,
    pub loss: Option<f64>,
    /// Metrics the user named (`--metric NAME=REGEX`), by name; samples.csv's `metric_<name>`.
    pub metrics: Vec<(String, f64)>,
}

impl Progress {
    /// Overlays the fields `other` knows onto `self`.
    pub fn merge(&mut self, other: &Progress) {
        if other.epoch.is_some() {
            self.epoch = other.epoch;
        }
        if other.step.is_some() {
            self.step = other.step;
        }
        if other.accuracy.is_some() {
            self.accuracy = other.accuracy;
        }
        if other.loss.is_some() {
            self.loss = other.loss;
        }
        for (k, v) in &other.metrics {
            match self.metrics.iter_mut().find(|m| &m.0 == k) {
                Some(m) => m.1 = *v,
                None => self.metrics.push((k.clone(), *v)),
            }
        }
    }

    /// A named metric's latest value.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.0 == name).map(|m| m.1)
    }

    pub fn is_empty(&self) -> bool {
        *self == Progress::default()
    }
}

/// CPU time counters of the watched process tree and of the whole machine (clock ticks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessCpu {
    pub tree_ticks: u64,
    /// The machine's CPU time less idle and iowait.
    pub busy_ticks: u64,
}

/// One tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Wall-clock time (for display and the CSV).
    pub time: DateTime<Utc>,
    /// Monotonic seconds since the start of the run: all integration uses this, so a wall-clock
    /// jump never creates or destroys energy.
    pub elapsed_s: f64,
    pub gpus: Vec<GpuReading>,
    pub cpu: CpuReading,
    pub mem: Option<PowerReading>,
    pub net: Option<NetReading>,
    pub intensity: Option<Intensity>,
    pub progress: Progress,
    /// `run -- CMD`: the command's process tree against the machine.
    pub process: Option<ProcessCpu>,
}
