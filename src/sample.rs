//! `Sample`: one tick of raw readings, the only thing sources hand to the engine.
//!
//! Sources report raw counters and readings; every bit of arithmetic on them lives in `engine`.

use crate::units::{GPerKwh, Watts};
use chrono::{DateTime, Utc};
use std::fmt;

/// A power reading and what it means over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PowerReading {
    /// Instantaneous power at the sample's time (W); integrated with the trapezoid rule.
    Instant(Watts),
    /// Average power over the interval that ends at this sample (W); integrated as power × Δt.
    /// A CPU estimate from utilisation since the last tick is one; a replayed samples.csv row,
    /// whose power columns hold interval averages, is another.
    Average(Watts),
}

impl PowerReading {
    pub fn watts(self) -> Watts {
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
    /// SM clock (MHz): with utilisation, the governor's throughput proxy without a step count.
    pub sm_clock_mhz: Option<f64>,
    /// `run -- CMD`: the share (0–1) of this GPU's work that belongs to the command's process
    /// tree, from NVML's per-process accounting (`source::process::gpu_tree_share`); `None`
    /// where the driver does not say.
    pub tree_share: Option<f64>,
    /// The job holds MIG instances of this GPU, not the whole GPU: NVML measures only the card,
    /// so the readings above are the card's and the engine charges the instances' share.
    pub mig: Option<MigShare>,
}

/// A job's MIG instances on one card (issue 19). NVML gives no power per MIG instance; the
/// job is charged the card's power and energy × its compute slices over the card's, an
/// estimate with a band (`engine::mig`). Instances of one card are one share, so the card is
/// never counted twice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigShare {
    /// Compute slices the job's instances hold on the card, and the card's.
    pub slices: u32,
    pub of: u32,
    /// Each instance's profile as NVML names it (`3g.40gb`).
    pub profiles: Vec<String>,
    /// The card's default power limit (W), which bounds its idle draw (the band's floor).
    pub card_limit_w: Option<f64>,
}

/// Bytes received and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl Traffic {
    pub fn total(&self) -> u64 {
        self.rx_bytes.saturating_add(self.tx_bytes)
    }
}

/// `run -- CMD`: the command's own TCP traffic since it started, by where its peers are
/// (loopback never counts; UDP and what cannot be attributed stay the machine's).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OwnTraffic {
    /// Peers in the same site or cluster (private, link-local, CGNAT, ULA, `--cluster-cidr`).
    pub cluster: Traffic,
    /// Public peers.
    pub internet: Traffic,
}

/// What a replayed row recorded of the command's network figures, so a replay reproduces them
/// whatever the model's constants are now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OwnRecorded {
    /// The port power of the command's traffic over the interval (W).
    pub port_w: Option<f64>,
    /// The internet-path energy of its traffic so far (kWh, cumulative).
    pub internet_kwh: Option<f64>,
}

/// The links the machine's counted interfaces are, for the port power model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Links {
    /// Counted interfaces whose link speed sysfs gives, and their summed speed (Gb/s).
    pub known: u16,
    pub known_gbps: f64,
    /// Counted interfaces whose speed is unknown (virtual NICs report −1 or nothing): the
    /// model assumes its stated link class for them.
    pub unknown: u16,
}

/// RDMA (InfiniBand, RoCE) traffic since the start of the run, from the RDMA ports' counters
/// (`source::rdma`): cluster traffic the interfaces' counters do not see.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RdmaReading {
    /// All the ports' traffic: the machine's.
    pub machine: Traffic,
    /// `run -- CMD`: the part that is the command's (its tree the only RDMA user at the time).
    pub own: Option<Traffic>,
    /// The ports, and those whose rate is known with their summed rate (Gb/s).
    pub ports: u16,
    pub known: u16,
    pub known_gbps: f64,
    /// Set by replay: the recorded RDMA port power (W) over the row's interval.
    pub power_w: Option<f64>,
}

/// Network traffic counted since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NetReading {
    /// The machine's counted interfaces (loopback never).
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Set by replay: the recorded network power, so a replay reproduces the recording exactly
    /// whatever model is configured now. Live sources leave it `None` and the engine derives
    /// the energy from the bytes.
    pub power: Option<PowerReading>,
    /// The counted interfaces' links (None: not known, as in a replay).
    pub links: Option<Links>,
    /// `run -- CMD`: the command's own traffic, where sock_diag could read it.
    pub own: Option<OwnTraffic>,
    /// Set by replay: what the recording says the command's traffic cost.
    pub own_recorded: Option<OwnRecorded>,
    /// The RDMA ports' traffic, where the machine has any.
    pub rdma: Option<RdmaReading>,
}

/// Grid carbon intensity valid at the sample's time.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    pub g_per_kwh: GPerKwh,
    pub source: IntensitySource,
}

/// Where an intensity figure comes from: samples.csv's `intensity_source` cell, the screen's
/// label and `/metrics`' `source` label are its `Display` (`table`, `fixed`, `emaps`, `uk`,
/// `watttime-moer`, `agents`, `replay`, each with `-stale` when a live provider's value is held
/// through a fault); `FromStr` reads any label back, one it does not know as `Recorded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntensitySource {
    pub kind: SourceKind,
    /// A live provider's value held through a fault (`-stale`).
    pub stale: bool,
}

/// Who gave an intensity figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// The embedded per-country table (`table`).
    Table,
    /// `--intensity G` (`fixed`).
    Fixed,
    /// Electricity Maps (`emaps`).
    ElectricityMaps,
    /// The GB Carbon Intensity API (`uk`).
    GbCarbonIntensity,
    /// WattTime's marginal operating emissions rate (`watttime-moer`).
    WattTimeMoer,
    /// `watch --agent`: the agents' figures (`agents`).
    Agents,
    /// A recording's row that gave an intensity but named no source (`replay`).
    Replay,
    /// A label a recording holds that this carbontop does not know (e.g. `fixture`), kept as
    /// it was so that writing the recording back gives the same text.
    Recorded(String),
}

impl SourceKind {
    /// The label, without `-stale`.
    pub fn label(&self) -> &str {
        match self {
            SourceKind::Table => "table",
            SourceKind::Fixed => "fixed",
            SourceKind::ElectricityMaps => "emaps",
            SourceKind::GbCarbonIntensity => "uk",
            SourceKind::WattTimeMoer => "watttime-moer",
            SourceKind::Agents => "agents",
            SourceKind::Replay => "replay",
            SourceKind::Recorded(s) => s,
        }
    }

    /// The kind a label names (without `-stale`); an unknown one is `Recorded`.
    pub fn from_label(s: &str) -> Self {
        match s {
            "table" => SourceKind::Table,
            "fixed" => SourceKind::Fixed,
            "emaps" => SourceKind::ElectricityMaps,
            "uk" => SourceKind::GbCarbonIntensity,
            "watttime-moer" => SourceKind::WattTimeMoer,
            "agents" => SourceKind::Agents,
            "replay" => SourceKind::Replay,
            other => SourceKind::Recorded(other.to_owned()),
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a held (stale) value's label ends with.
const STALE_SUFFIX: &str = "-stale";

impl IntensitySource {
    /// A current value from `kind`.
    pub fn fresh(kind: SourceKind) -> Self {
        Self { kind, stale: false }
    }

    /// A value from `kind` held through its fault.
    pub fn held(kind: SourceKind) -> Self {
        Self { kind, stale: true }
    }
}

impl From<SourceKind> for IntensitySource {
    fn from(kind: SourceKind) -> Self {
        Self::fresh(kind)
    }
}

impl fmt::Display for IntensitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.label())?;
        if self.stale {
            f.write_str(STALE_SUFFIX)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for IntensitySource {
    type Err = std::convert::Infallible;

    /// Any label reads: `Display` gives back exactly the text read.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.strip_suffix(STALE_SUFFIX) {
            Some(kind) => Self::held(SourceKind::from_label(kind)),
            None => Self::fresh(SourceKind::from_label(s)),
        })
    }
}

impl From<&str> for IntensitySource {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
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

/// Resident memory of the watched process tree (Σ `VmRSS` of its processes) and the
/// machine's memory (`MemTotal`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMem {
    pub rss_bytes: u64,
    pub total_bytes: u64,
}

/// What a replayed row recorded of the command's share (samples.csv's `process_*_w`, W over
/// the interval that ends at the row), so a report reproduces it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessRecorded {
    pub cpu_w: Option<f64>,
    pub gpu_w: Option<f64>,
    pub mem_w: Option<f64>,
}

/// `run -- CMD`: the command's process tree against the machine at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessReading {
    /// CPU time counters (None: /proc/stat unreadable).
    pub cpu: Option<ProcessCpu>,
    /// Resident memory (None: MemTotal unreadable).
    pub mem: Option<ProcessMem>,
    /// Set by replay: the shares as recorded; live sources leave it `None`.
    pub recorded: Option<ProcessRecorded>,
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
    pub process: Option<ProcessReading>,
    /// The estimates' bands at this tick, as factors of their point values.
    pub bands: EstimateBands,
}

/// An estimated component's low and high ends as factors of the power it reported this tick
/// (`CpuSource::band`, `MemSource::band`); None: measured, or no band known.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EstimateBands {
    pub cpu: Option<(f64, f64)>,
    pub mem: Option<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_label_reads_back_as_written() {
        let kinds = [
            (SourceKind::Table, "table"),
            (SourceKind::Fixed, "fixed"),
            (SourceKind::ElectricityMaps, "emaps"),
            (SourceKind::GbCarbonIntensity, "uk"),
            (SourceKind::WattTimeMoer, "watttime-moer"),
            (SourceKind::Agents, "agents"),
            (SourceKind::Replay, "replay"),
            (SourceKind::Recorded("fixture".into()), "fixture"),
        ];
        for (kind, label) in kinds {
            for stale in [false, true] {
                let src = IntensitySource {
                    kind: kind.clone(),
                    stale,
                };
                let text = if stale {
                    format!("{label}-stale")
                } else {
                    label.to_owned()
                };
                assert_eq!(src.to_string(), text);
                assert_eq!(text.parse::<IntensitySource>(), Ok(src), "{text}");
            }
        }
    }

    #[test]
    fn an_unknown_label_is_kept_as_it_was() {
        for text in [
            "fixture",
            "Table",
            "uk-stale-stale",
            "-stale",
            "",
            "co2signal 2",
        ] {
            let src = IntensitySource::from(text);
            assert_eq!(src.to_string(), text);
        }
        assert_eq!(
            IntensitySource::from("fixture-stale"),
            IntensitySource::held(SourceKind::Recorded("fixture".into()))
        );
        assert_eq!(
            IntensitySource::from("Table").kind,
            SourceKind::Recorded("Table".into()),
            "labels are exact"
        );
    }
}
