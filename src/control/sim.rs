//! Simulated GPUs for the demo, tests and governor runs without hardware: N NVIDIA A40s
//! training CIFAR-100 / ShuffleNetV2 (batch 1024) whose power and speed follow what Zeus
//! measured on a real A40 at each power limit (fixtures/zeus/summary_power_a40.csv, Apache-2.0,
//! Chung et al., NSDI '23), interpolated linearly between the measured limits.
//!
//! The GPUs share one synchronous data-parallel job: it advances at the rate of the slowest
//! GPU. The source side reports power, an NVML-style energy counter, utilisation, memory, the
//! cap, and the job's step count; the actuator side sets caps within 100–300 W (an A40's range)
//! and, when given a state file, writes the caps there after every change, so a test can read
//! what a killed or crashed process left behind.
//!
//! The job advances by the time its `SimClock` gives: the wall clock in a run, a script in
//! tests, so a test decides the governor's choice without sleeping and whatever the machine's
//! load.

use super::{CapError, CapLimits, PowerCap};
use crate::sample::{GpuReading, PowerReading, Progress};
use crate::source::GpuSource;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The measured rows used: (power limit W, seconds per epoch, average power W).
const ZEUS_A40: &str = include_str!("../../fixtures/zeus/summary_power_a40.csv");
/// CIFAR-100's 50,000 training images at batch 1024.
pub const STEPS_PER_EPOCH: f64 = 49.0;
pub const MODEL: &str = "NVIDIA A40 (simulated, Zeus-measured)";

/// Power and speed against the cap, from Zeus's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// (cap W, s per epoch, W), sorted by cap.
    rows: Vec<(f64, f64, f64)>,
    /// Training steps in one epoch (the step count is the governor's throughput signal).
    steps_per_epoch: f64,
}

impl Curve {
    /// CIFAR-100 / ShuffleNetV2 / batch 1024 / Adadelta on an A40.
    pub fn a40() -> Self {
        let mut rows: Vec<(f64, f64, f64)> = Vec::new();
        for line in ZEUS_A40.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() == 7
                && f[..4] == ["cifar100", "shufflenetv2", "1024", "adadelta"]
                && let (Ok(cap), Ok(t), Ok(p)) = (f[4].parse(), f[5].parse(), f[6].parse())
            {
                rows.push((cap, t, p));
            }
        }
        Self::new(rows, STEPS_PER_EPOCH)
    }

    /// Another measured curve: (cap W, s per epoch, W) per cap, and the steps in one epoch.
    pub fn new(mut rows: Vec<(f64, f64, f64)>, steps_per_epoch: f64) -> Self {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            rows,
            steps_per_epoch,
        }
    }

    pub fn steps_per_epoch(&self) -> f64 {
        self.steps_per_epoch
    }

    pub fn range(&self) -> (f64, f64) {
        (
            self.rows.first().map_or(0.0, |r| r.0),
            self.rows.last().map_or(0.0, |r| r.0),
        )
    }

    /// (s per epoch, W) at `cap`, linear between measured limits, clamped to the range.
    fn at(&self, cap: f64) -> (f64, f64) {
        let r = &self.rows;
        if r.is_empty() {
            return (f64::INFINITY, 0.0);
        }
        let cap = cap.clamp(r[0].0, r[r.len() - 1].0);
        let i = r
            .partition_point(|x| x.0 <= cap)
            .clamp(1, r.len().max(2) - 1);
        if r.len() == 1 {
            return (r[0].1, r[0].2);
        }
        let (a, b) = (r[i - 1], r[i]);
        let f = if b.0 > a.0 {
            (cap - a.0) / (b.0 - a.0)
        } else {
            0.0
        };
        (a.1 + f * (b.1 - a.1), a.2 + f * (b.2 - a.2))
    }

    /// Training steps per second at `cap`.
    pub fn steps_per_s(&self, cap: f64) -> f64 {
        self.steps_per_epoch / self.at(cap).0
    }

    /// Average power (W) at `cap`.
    pub fn power_w(&self, cap: f64) -> f64 {
        self.at(cap).1
    }

    /// SM clock (MHz) at `cap`: a cap works by lowering the clock, and a compute-bound step's
    /// time follows it, so the simulated clock is the A40's boost clock (1,740 MHz, NVIDIA A40
    /// datasheet) scaled by the measured speed against the uncapped one. Utilisation stays at
    /// 95% whatever the cap, as NVML's does.
    pub fn sm_clock_mhz(&self, cap: f64) -> f64 {
        let top = self.range().1;
        A40_BOOST_MHZ * self.steps_per_s(cap) / self.steps_per_s(top)
    }
}

/// NVIDIA A40 boost clock (NVIDIA A40 datasheet).
const A40_BOOST_MHZ: f64 = 1740.0;

/// Where the simulated GPUs' time comes from.
pub trait SimClock: Send {
    /// Seconds since a fixed origin, never decreasing.
    fn now_s(&self) -> f64;
}

/// The monotonic wall clock, from when it was made: what a run uses.
pub struct WallClock(Instant);

impl WallClock {
    pub fn new() -> Self {
        Self(Instant::now())
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SimClock for WallClock {
    fn now_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// A clock the caller moves (tests): clones share one time, which starts at 0 s.
#[derive(Clone, Default)]
pub struct ScriptedClock(Arc<AtomicU64>);

impl ScriptedClock {
    /// Sets the time to `secs`.
    pub fn set(&self, secs: f64) {
        self.0.store(secs.to_bits(), Ordering::Relaxed);
    }
}

impl SimClock for ScriptedClock {
    fn now_s(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

struct State {
    curve: Curve,
    caps: Vec<f64>,
    energy_mj: Vec<f64>,
    steps: f64,
    clock: Box<dyn SimClock>,
    /// The clock's time at the last read.
    last: Option<f64>,
    state_file: Option<PathBuf>,
    /// Reads so far, and the GPU that fell off the bus (fault injection, debug builds).
    reads: u64,
    lost: Option<usize>,
    warning: Option<String>,
}

/// Fault injection for the tests (debug builds only): after `CARBONTOP_TEST_GPU_LOST_AFTER`
/// reads the last simulated GPU stops answering, as NVML's `GpuLost` does when a GPU falls off
/// the bus: no power, no energy, no cap, and its cap can no longer be set.
#[cfg(debug_assertions)]
fn lost_after() -> Option<u64> {
    std::env::var("CARBONTOP_TEST_GPU_LOST_AFTER")
        .ok()?
        .parse()
        .ok()
}

#[cfg(not(debug_assertions))]
fn lost_after() -> Option<u64> {
    None
}

impl State {
    fn write_state(&self) -> Result<(), CapError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let (_, max) = self.curve.range();
        let body = serde_json::json!({ "caps_w": self.caps, "default_w": max }).to_string();
        // Write then rename, so a reader never sees half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| CapError::StateFile {
                path: path.clone(),
                reason: e.to_string(),
            })
    }
}

/// The shared simulated GPUs; `source()` and `actuator()` are two views of them.
#[derive(Clone)]
pub struct SimGpus(Arc<Mutex<State>>);

impl SimGpus {
    /// `n` A40s at their default (maximum) cap, on the wall clock.
    pub fn new(n: usize, state_file: Option<PathBuf>) -> Result<Self, CapError> {
        Self::with_clock(n, state_file, Box::new(WallClock::new()))
    }

    /// `n` A40s at their default (maximum) cap whose job advances by `clock`.
    pub fn with_clock(
        n: usize,
        state_file: Option<PathBuf>,
        clock: Box<dyn SimClock>,
    ) -> Result<Self, CapError> {
        Self::with_curve(n, state_file, clock, Curve::a40())
    }

    /// `n` GPUs following `curve`, at its maximum cap, whose job advances by `clock`.
    pub fn with_curve(
        n: usize,
        state_file: Option<PathBuf>,
        clock: Box<dyn SimClock>,
        curve: Curve,
    ) -> Result<Self, CapError> {
        let (_, max) = curve.range();
        if max <= 0.0 {
            return Err(CapError::NoCurve);
        }
        let st = State {
            curve,
            caps: vec![max; n],
            energy_mj: vec![0.0; n],
            steps: 0.0,
            clock,
            last: None,
            state_file,
            reads: 0,
            lost: None,
            warning: None,
        };
        st.write_state()?;
        Ok(Self(Arc::new(Mutex::new(st))))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn source(&self) -> SimSource {
        SimSource(self.clone())
    }

    pub fn actuator(&self) -> SimCap {
        SimCap(self.clone())
    }
}

/// The GPU source side.
pub struct SimSource(SimGpus);

impl GpuSource for SimSource {
    fn read(&mut self) -> Vec<GpuReading> {
        let mut st = self.0.lock();
        st.reads += 1;
        if st.lost.is_none() && lost_after().is_some_and(|n| st.reads > n) {
            let k = st.caps.len() - 1;
            st.lost = Some(k);
            st.warning = Some(format!(
                "GPU {k} ({MODEL}) lost: GPU is lost; its power is unknown from now"
            ));
        }
        let now = st.clock.now_s();
        let dt = st.last.map_or(0.0, |l| (now - l).max(0.0));
        st.last = Some(now);
        // The job runs at the slowest GPU's pace; each GPU draws what Zeus measured at its cap.
        let slowest = st.caps.iter().copied().fold(f64::INFINITY, f64::min);
        let rate = st.curve.steps_per_s(slowest);
        st.steps += rate * dt;
        let mut out = Vec::with_capacity(st.caps.len());
        for i in 0..st.caps.len() {
            if st.lost == Some(i) {
                out.push(GpuReading {
                    index: i as u32,
                    ..Default::default()
                });
                continue;
            }
            let w = st.curve.power_w(st.caps[i]);
            st.energy_mj[i] += w * dt * 1000.0;
            out.push(GpuReading {
                index: i as u32,
                power: Some(PowerReading::Average(crate::units::Watts(w))),
                energy_mj: Some(st.energy_mj[i] as u64),
                util_pct: Some(95.0),
                mem_used_mib: Some(14_336.0),
                cap_w: Some(st.caps[i]),
                sm_clock_mhz: Some(st.curve.sm_clock_mhz(st.caps[i])),
                // The simulated job is not a process of the watched command's.
                tree_share: None,
                mig: None,
            });
        }
        out
    }

    fn models(&self) -> Vec<String> {
        vec![MODEL.to_owned(); self.0.lock().caps.len()]
    }

    fn take_warning(&mut self) -> Option<String> {
        self.0.lock().warning.take()
    }

    fn progress(&mut self) -> Option<Progress> {
        let st = self.0.lock();
        Some(Progress {
            step: Some(st.steps as u64),
            epoch: Some((st.steps / st.curve.steps_per_epoch).floor()),
            ..Default::default()
        })
    }
}

/// The actuator side.
pub struct SimCap(SimGpus);

impl PowerCap for SimCap {
    fn count(&self) -> usize {
        self.0.lock().caps.len()
    }

    fn limits(&self, _gpu: usize) -> Result<CapLimits, CapError> {
        let (min, max) = self.0.lock().curve.range();
        Ok(CapLimits {
            min_w: min,
            max_w: max,
            default_w: max,
        })
    }

    fn get(&mut self, gpu: usize) -> Result<f64, CapError> {
        let st = self.0.lock();
        if st.lost == Some(gpu) {
            return Err(CapError::Lost(gpu));
        }
        st.caps.get(gpu).copied().ok_or(CapError::NoSuchGpu {
            gpu,
            simulated: true,
        })
    }

    fn set(&mut self, gpu: usize, watts: f64) -> Result<(), CapError> {
        let mut st = self.0.lock();
        if st.lost == Some(gpu) {
            return Err(CapError::Lost(gpu));
        }
        let (min, max) = st.curve.range();
        if !(min..=max).contains(&watts) {
            return Err(CapError::OutOfRange {
                watts,
                min_w: min,
                max_w: max,
            });
        }
        match st.caps.get_mut(gpu) {
            Some(c) => *c = watts,
            None => {
                return Err(CapError::NoSuchGpu {
                    gpu,
                    simulated: true,
                });
            }
        }
        st.write_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_zeus_a40_measurements() {
        let c = Curve::a40();
        assert_eq!(c.range(), (100.0, 300.0));
        // Measured rows, exactly.
        assert_eq!(c.power_w(300.0), 218.86556488095516);
        assert_eq!(c.steps_per_s(200.0), 49.0 / 8.8);
        // Halfway between 175 W (9.175 s, 160.708 W) and 200 W (8.8 s, 181.763 W).
        let (t, p) = c.at(187.5);
        assert!((t - (9.175 + 8.8) / 2.0).abs() < 1e-12);
        assert!((p - (160.70821307975328 + 181.76306303505882) / 2.0).abs() < 1e-12);
        // Energy per step is lowest well below the maximum cap (Zeus's finding).
        let e = |cap: f64| c.power_w(cap) / c.steps_per_s(cap);
        assert!(e(175.0) < e(300.0) && e(175.0) < e(100.0));
    }

    #[test]
    fn caps_drive_power_and_speed_and_reach_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sim.json");
        let g = SimGpus::new(2, Some(f.clone())).unwrap();
        let mut cap = g.actuator();
        let mut src = g.source();
        assert_eq!(src.read()[0].cap_w, Some(300.0));
        cap.set(1, 150.0).unwrap();
        let r = src.read();
        assert_eq!(
            r[1].power,
            Some(PowerReading::Average(crate::units::Watts(
                141.60988713420585
            )))
        );
        assert_eq!(r[1].cap_w, Some(150.0));
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(state["caps_w"], serde_json::json!([300.0, 150.0]));
        assert_eq!(
            cap.set(0, 99.0).unwrap_err(),
            CapError::OutOfRange {
                watts: 99.0,
                min_w: 100.0,
                max_w: 300.0
            }
        );
        assert_eq!(
            cap.set(0, 99.0).unwrap_err().to_string(),
            "99 W is outside the simulated GPU's 100–300 W"
        );
        assert_eq!(cap.get(5).unwrap_err().to_string(), "no simulated GPU 5");
        assert!(src.progress().unwrap().step.is_some());
    }

    #[test]
    fn the_job_advances_by_its_clock_not_the_wall() {
        let clock = ScriptedClock::default();
        let g = SimGpus::with_clock(1, None, Box::new(clock.clone())).unwrap();
        let mut src = g.source();
        let c = Curve::a40();
        src.read();
        clock.set(2.0);
        let r = src.read();
        // Two scripted seconds at 300 W, however long the test really took.
        assert_eq!(
            r[0].energy_mj,
            Some((c.power_w(300.0) * 2.0 * 1000.0) as u64)
        );
        let steps = src.progress().unwrap().step.unwrap();
        assert_eq!(steps, (c.steps_per_s(300.0) * 2.0) as u64);
        // Read again at the same time: nothing more.
        let r = src.read();
        assert_eq!(
            r[0].energy_mj,
            Some((c.power_w(300.0) * 2.0 * 1000.0) as u64)
        );
    }
}
