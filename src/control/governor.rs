//! The carbon-aware governor (DESIGN.md §5, after Zeus and its carbon-aware branch): profile
//! each candidate cap briefly — from the maximum down in 25 W steps, a warm-up then a measured
//! window each — measuring throughput T(p) (training steps/s, or GPU utilisation when the run
//! reports no steps) and GPU power P(p); then keep the cap that minimises
//!
//!   cost(p) = η·(I/I_ref)·P(p)/T(p) + (1−η)·P_max/T(p)
//!
//! where I is the grid intensity (the forecast's mean over the next decision interval where the
//! provider has one), I_ref a reference intensity (Zeus's carbon branch: 750 g/kWh) and η the
//! knob (0: pure speed, 1: pure energy per step, i.e. carbon at any intensity). It decides again
//! whenever the intensity changes, and profiles again when the measured throughput drifts from
//! the profile. Pure: observations in, caps out; no clock, no I/O.
//!
//! Sources: Chung et al., "Zeus: Understanding and Optimizing GPU Energy Consumption of DNN
//! Training", NSDI '23 (cost function, 25 W profiling steps); Zeus carbon-aware branch (η=0.24,
//! I_ref = 750 g/kWh, 30-minute decisions).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GovernorConfig {
    pub eta: f64,
    /// Reference intensity, g/kWh.
    pub i_ref: f64,
    /// Distance between profiled caps, W.
    pub step_w: f64,
    /// Per cap: seconds to settle, then seconds measured.
    pub warmup_s: f64,
    pub measure_s: f64,
    /// Relative throughput change (against the profile) that starts a new profile.
    pub drift: f64,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        Self {
            eta: 0.5,
            i_ref: 750.0,
            step_w: 25.0,
            warmup_s: 5.0,
            measure_s: 10.0,
            drift: 0.25,
        }
    }
}

/// One tick as the governor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Obs {
    pub elapsed_s: f64,
    /// Summed GPU power over the interval that ends now (W).
    pub gpu_w: Option<f64>,
    /// The run's cumulative step count, when it reports one.
    pub steps: Option<f64>,
    /// Mean GPU utilisation (%), the throughput proxy without steps.
    pub util_pct: Option<f64>,
    /// Intensity at this tick (g/kWh).
    pub intensity: Option<f64>,
    /// The forecast's mean over the next decision interval, where there is one.
    pub intensity_ahead: Option<f64>,
}

/// A profiled cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub cap_w: f64,
    /// Mean summed GPU power (W).
    pub power_w: f64,
    /// Steps/s (or utilisation %, see `Governor::by_util`).
    pub throughput: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Measuring candidate `i`: started at `since`; the measured window began at `window`.
    Profiling {
        i: usize,
        since: f64,
        window: Option<Window>,
    },
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    t0: f64,
    steps0: Option<f64>,
    energy_j: f64,
    util_sum: f64,
    n: u32,
    /// The first and the latest tick at which the step count changed (time, steps): a run
    /// that reports steps coarsely (once an epoch) is timed between its reports, not between
    /// the window's edges.
    first_change: Option<(f64, f64)>,
    last_change: Option<(f64, f64)>,
    last_steps: Option<f64>,
    changes: u32,
}

impl Window {
    fn new(t0: f64, steps0: Option<f64>) -> Self {
        Self {
            t0,
            steps0,
            energy_j: 0.0,
            util_sum: 0.0,
            n: 0,
            first_change: None,
            last_change: None,
            last_steps: steps0,
            changes: 0,
        }
    }

    fn add(&mut self, o: &Obs, dt: f64) {
        self.energy_j += o.gpu_w.unwrap_or(0.0) * dt;
        self.util_sum += o.util_pct.unwrap_or(0.0);
        self.n += 1;
        if let Some(s) = o.steps {
            if self.last_steps.is_some_and(|l| s != l) {
                let c = (o.elapsed_s, s);
                self.first_change.get_or_insert(c);
                self.last_change = Some(c);
                self.changes += 1;
            }
            self.last_steps = Some(s);
        }
    }

    /// Steps/s between the first and last change of the count where there were two, else
    /// over the whole window; mean utilisation when `by_steps` is false.
    fn throughput(&self, by_steps: bool, now: f64, steps_now: Option<f64>) -> f64 {
        if !by_steps {
            return self.util_sum / f64::from(self.n.max(1));
        }
        match (self.first_change, self.last_change) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0),
            _ => match (self.steps0, steps_now) {
                (Some(s0), Some(s1)) if now > self.t0 => (s1 - s0) / (now - self.t0),
                _ => 0.0,
            },
        }
    }
}

pub use crate::engine::savings::Savings;

#[derive(Debug, Clone)]
pub struct Governor {
    cfg: GovernorConfig,
    candidates: Vec<f64>,
    profile: Vec<Point>,
    phase: Phase,
    /// The cap it last asked for.
    cap: f64,
    /// Whether throughput is steps/s (true) or utilisation (false), fixed per profile.
    by_steps: bool,
    /// The intensity the present choice was made for.
    decided_for: Option<f64>,
    /// Why the present cap (for the screen).
    pub reason: String,
    last: Option<Obs>,
    /// Drift check: a window of the present cap's throughput.
    drift_window: Option<Window>,
    drifted: u32,
    pub savings: Savings,
    pub profiles: u32,
}

impl Governor {
    /// Candidates from `max_w` down to `min_w` in `step_w` steps (the minimum itself last).
    pub fn new(cfg: GovernorConfig, min_w: f64, max_w: f64) -> Self {
        let mut candidates = Vec::new();
        let mut c = max_w;
        while c > min_w + 1e-9 {
            candidates.push(c);
            c -= cfg.step_w.max(1.0);
        }
        candidates.push(min_w);
        Self {
            cfg,
            candidates,
            profile: Vec::new(),
            phase: Phase::Profiling {
                i: 0,
                since: f64::NAN,
                window: None,
            },
            cap: max_w,
            by_steps: false,
            decided_for: None,
            reason: "starting".into(),
            last: None,
            drift_window: None,
            drifted: 0,
            savings: Savings::default(),
            profiles: 0,
        }
    }

    pub fn config(&self) -> GovernorConfig {
        self.cfg
    }

    pub fn profile(&self) -> &[Point] {
        &self.profile
    }

    pub fn cap(&self) -> f64 {
        self.cap
    }

    pub fn is_profiling(&self) -> bool {
        matches!(self.phase, Phase::Profiling { .. })
    }

    /// cost(p) = η·(I/I_ref)·P(p)/T(p) + (1−η)·P_max/T(p) (Zeus, carbon-aware).
    pub fn cost(&self, p: &Point, intensity: f64, p_max: f64) -> f64 {
        let e = self.cfg.eta;
        if p.throughput <= 0.0 {
            return f64::INFINITY;
        }
        e * (intensity / self.cfg.i_ref) * p.power_w / p.throughput
            + (1.0 - e) * p_max / p.throughput
    }

    /// The profiled cap with the lowest cost at `intensity`.
    pub fn best(&self, intensity: f64) -> Option<Point> {
        let p_max = self.profile.iter().map(|p| p.power_w).fold(0.0, f64::max);
        self.profile.iter().copied().min_by(|a, b| {
            self.cost(a, intensity, p_max)
                .total_cmp(&self.cost(b, intensity, p_max))
        })
    }

    fn start_profile(&mut self, t: f64) -> Option<f64> {
        self.profile.clear();
        self.profiles += 1;
        self.phase = Phase::Profiling {
            i: 0,
            since: t,
            window: None,
        };
        self.drift_window = None;
        self.drifted = 0;
        self.cap = self.candidates[0];
        self.reason = format!("profiling {:.0} W (1/{})", self.cap, self.candidates.len());
        Some(self.cap)
    }

    /// Folds one tick in; a cap to set, when it changes.
    pub fn observe(&mut self, o: &Obs) -> Option<f64> {
        let prev = self.last.replace(*o);
        let dt = prev.map_or(0.0, |p| (o.elapsed_s - p.elapsed_s).max(0.0));
        match self.phase.clone() {
            Phase::Profiling { since, .. } if since.is_nan() => {
                self.by_steps = o.steps.is_some();
                self.start_profile(o.elapsed_s)
            }
            Phase::Profiling { i, since, window } => {
                let into = o.elapsed_s - since;
                let mut window = window;
                if window.is_none() && into >= self.cfg.warmup_s {
                    window = Some(Window::new(o.elapsed_s, o.steps));
                } else if let Some(w) = window.as_mut() {
                    w.add(o, dt);
                }
                // A step count that moved fewer than twice is too coarse to time: measure on,
                // up to ten windows, rather than take a quantised guess.
                let enough = |w: &Window| {
                    let span = o.elapsed_s - w.t0;
                    span >= self.cfg.measure_s
                        && w.n > 0
                        && (!self.by_steps || w.changes >= 2 || span >= 10.0 * self.cfg.measure_s)
                };
                match window {
                    Some(w) if enough(&w) => {
                        let span = o.elapsed_s - w.t0;
                        let throughput = w.throughput(self.by_steps, o.elapsed_s, o.steps);
                        self.profile.push(Point {
                            cap_w: self.candidates[i],
                            power_w: w.energy_j / span,
                            throughput,
                        });
                        if i + 1 < self.candidates.len() {
                            self.cap = self.candidates[i + 1];
                            self.phase = Phase::Profiling {
                                i: i + 1,
                                since: o.elapsed_s,
                                window: None,
                            };
                            self.reason = format!(
                                "profiling {:.0} W ({}/{})",
                                self.cap,
                                i + 2,
                                self.candidates.len()
                            );
                            Some(self.cap)
                        } else {
                            self.phase = Phase::Running;
                            self.decided_for = None;
                            self.decide(o)
                        }
                    }
                    _ => {
                        self.phase = Phase::Profiling { i, since, window };
                        None
                    }
                }
            }
            Phase::Running => {
                self.account(o, dt);
                if self.check_drift(o, dt) {
                    return self.start_profile(o.elapsed_s);
                }
                self.decide(o)
            }
        }
    }

    /// Chooses again when the intensity it decides for has changed.
    fn decide(&mut self, o: &Obs) -> Option<f64> {
        let i = o.intensity_ahead.or(o.intensity)?;
        if self.decided_for == Some(i) {
            return None;
        }
        self.decided_for = Some(i);
        let best = self.best(i)?;
        let basis = if o.intensity_ahead.is_some() {
            "forecast"
        } else {
            "now"
        };
        let max = self.profile.first().copied();
        self.reason = match max {
            Some(m) if m.throughput > 0.0 && best.throughput > 0.0 => format!(
                "{:.0} W: lowest cost at {i:.0} g/kWh ({basis}), η={}; {:+.0}% power, {:+.0}% speed vs {:.0} W",
                best.cap_w,
                self.cfg.eta,
                (best.power_w / m.power_w - 1.0) * 100.0,
                (best.throughput / m.throughput - 1.0) * 100.0,
                m.cap_w
            ),
            _ => format!("{:.0} W: lowest cost at {i:.0} g/kWh", best.cap_w),
        };
        if (best.cap_w - self.cap).abs() < 0.5 {
            return None;
        }
        self.cap = best.cap_w;
        Some(self.cap)
    }

    /// Adds this interval to the savings estimate: the work done, had it run uncapped, would
    /// have cost P_max/T_max per unit of throughput.
    fn account(&mut self, o: &Obs, dt: f64) {
        let (Some(w), Some(i)) = (o.gpu_w, o.intensity) else {
            return;
        };
        let (Some(max), Some(here)) = (
            self.profile.first().copied(),
            self.profile
                .iter()
                .find(|p| (p.cap_w - self.cap).abs() < 0.5)
                .copied(),
        ) else {
            return;
        };
        if max.throughput <= 0.0 {
            return;
        }
        self.savings
            .record(w, dt, here.throughput, max.power_w, max.throughput, i);
    }

    /// True when the present cap's throughput has left its profiled value by more than the
    /// drift threshold for two measuring windows in a row.
    fn check_drift(&mut self, o: &Obs, dt: f64) -> bool {
        let Some(here) = self
            .profile
            .iter()
            .find(|p| (p.cap_w - self.cap).abs() < 0.5)
            .copied()
        else {
            return false;
        };
        let by_steps = self.by_steps;
        let w = self
            .drift_window
            .get_or_insert(Window::new(o.elapsed_s, o.steps));
        w.add(o, dt);
        let span = o.elapsed_s - w.t0;
        if span < self.cfg.measure_s.max(1.0) * 2.0 {
            return false;
        }
        let t = w.throughput(by_steps, o.elapsed_s, o.steps);
        self.drift_window = None;
        if here.throughput > 0.0 && (t / here.throughput - 1.0).abs() > self.cfg.drift {
            self.drifted += 1;
        } else {
            self.drifted = 0;
        }
        self.drifted >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::sim::Curve;

    /// Drives the governor against the Zeus A40 curve (one GPU) with an intensity trace; the
    /// caps it asks for are applied at once. Returns (caps over time, governor).
    fn drive(eta: f64, intensity: impl Fn(f64) -> f64, secs: f64) -> (Vec<(f64, f64)>, Governor) {
        let curve = Curve::a40();
        let cfg = GovernorConfig {
            eta,
            warmup_s: 1.0,
            measure_s: 2.0,
            ..Default::default()
        };
        let mut g = Governor::new(cfg, 100.0, 300.0);
        let (mut t, mut steps, mut cap) = (0.0, 0.0, 300.0);
        let mut caps = Vec::new();
        while t <= secs {
            let o = Obs {
                elapsed_s: t,
                gpu_w: Some(curve.power_w(cap)),
                steps: Some(steps),
                util_pct: Some(95.0),
                intensity: Some(intensity(t)),
                intensity_ahead: None,
            };
            if let Some(c) = g.observe(&o) {
                cap = c;
            }
            caps.push((t, cap));
            t += 0.5;
            steps += curve.steps_per_s(cap) * 0.5;
        }
        (caps, g)
    }

    #[test]
    fn profiles_every_25_w_from_the_top() {
        let (_, g) = drive(0.5, |_| 400.0, 40.0);
        let caps: Vec<f64> = g.profile().iter().map(|p| p.cap_w).collect();
        assert_eq!(
            caps,
            [
                300.0, 275.0, 250.0, 225.0, 200.0, 175.0, 150.0, 125.0, 100.0
            ]
        );
        let c = Curve::a40();
        // The measured throughput and power are the curve's.
        for p in g.profile() {
            assert!(
                (p.throughput - c.steps_per_s(p.cap_w)).abs() < 1e-9,
                "{p:?}"
            );
            assert!((p.power_w - c.power_w(p.cap_w)).abs() < 1e-9, "{p:?}");
        }
        assert!(!g.is_profiling());
    }

    #[test]
    fn caps_fall_when_the_grid_is_dirty_and_rise_when_it_is_clean() {
        // 40 s of profiling, then clean (100 g), dirty (900 g), clean again.
        let trace = |t: f64| {
            if (60.0..90.0).contains(&t) {
                900.0
            } else {
                100.0
            }
        };
        let (caps, _) = drive(0.5, trace, 120.0);
        let at = |t: f64| caps.iter().rev().find(|c| c.0 <= t).unwrap().1;
        let (clean, dirty, clean2) = (at(55.0), at(85.0), at(115.0));
        assert!(dirty < clean, "dirty {dirty} W vs clean {clean} W");
        assert_eq!(clean2, clean);
    }

    #[test]
    fn eta_one_minimises_energy_per_step_and_saves_carbon() {
        let (caps, g) = drive(1.0, |_| 400.0, 200.0);
        let c = Curve::a40();
        // The cap with the least energy per step among the profiled ones.
        let best = g
            .profile()
            .iter()
            .min_by(|a, b| (a.power_w / a.throughput).total_cmp(&(b.power_w / b.throughput)))
            .unwrap()
            .cap_w;
        assert_eq!(caps.last().unwrap().1, best);
        assert_eq!(best, 175.0);
        let s = g.savings;
        // Lower carbon than uncapped for the same work, for some more time.
        assert!(s.saved_g() > 0.0 && s.saved_pct() > 10.0, "{s:?}");
        assert!(
            s.extra_time_pct() > 0.0 && s.extra_time_pct() < 10.0,
            "{s:?}"
        );
        // Exactly the curve's energy per step at 175 W against 300 W.
        let want = 1.0
            - (c.power_w(175.0) / c.steps_per_s(175.0)) / (c.power_w(300.0) / c.steps_per_s(300.0));
        assert!(
            (s.saved_pct() / 100.0 - want).abs() < 1e-9,
            "{} vs {want}",
            s.saved_pct()
        );
    }

    #[test]
    fn eta_zero_runs_flat_out() {
        let (caps, _) = drive(0.0, |_| 900.0, 60.0);
        // Pure speed: a cap as fast as the maximum (275 W measured exactly as fast as 250 W).
        let c = Curve::a40();
        let last = caps.last().unwrap().1;
        assert!(c.steps_per_s(last) >= c.steps_per_s(300.0) - 1e-9, "{last}");
    }

    #[test]
    fn throughput_drift_profiles_again() {
        let curve = Curve::a40();
        let cfg = GovernorConfig {
            eta: 1.0,
            warmup_s: 1.0,
            measure_s: 2.0,
            ..Default::default()
        };
        let mut g = Governor::new(cfg, 100.0, 300.0);
        let (mut t, mut steps, mut cap) = (0.0, 0.0, 300.0);
        while t < 200.0 {
            // From 100 s the job becomes twice as slow (a new phase, another model).
            let slow = if t >= 100.0 { 0.5 } else { 1.0 };
            let o = Obs {
                elapsed_s: t,
                gpu_w: Some(curve.power_w(cap)),
                steps: Some(steps),
                intensity: Some(300.0),
                ..Default::default()
            };
            if let Some(c) = g.observe(&o) {
                cap = c;
            }
            t += 0.5;
            steps += curve.steps_per_s(cap) * 0.5 * slow;
        }
        assert_eq!(g.profiles, 2);
    }

    #[test]
    fn coarse_step_reports_are_timed_between_reports() {
        // The run prints its step count only every 49 steps (once an epoch, ~8.5 s at 300 W);
        // ticks every second; windows of 20 s.
        let curve = Curve::a40();
        let cfg = GovernorConfig {
            eta: 1.0,
            warmup_s: 2.0,
            measure_s: 20.0,
            ..Default::default()
        };
        let mut g = Governor::new(cfg, 250.0, 300.0);
        let (mut t, mut steps, mut cap) = (0.0, 0.0_f64, 300.0);
        while g.is_profiling() && t < 500.0 {
            let reported = (steps / 49.0).floor() * 49.0;
            let o = Obs {
                elapsed_s: t,
                gpu_w: Some(curve.power_w(cap)),
                steps: Some(reported),
                intensity: Some(300.0),
                ..Default::default()
            };
            if let Some(c) = g.observe(&o) {
                cap = c;
            }
            t += 1.0;
            steps += curve.steps_per_s(cap);
        }
        for p in g.profile() {
            let want = curve.steps_per_s(p.cap_w);
            assert!((p.throughput / want - 1.0).abs() < 0.1, "{p:?} vs {want}");
        }
    }

    #[test]
    fn through_the_zeus_grid_signal_a_dirtier_grid_never_gets_a_higher_cap() {
        // Zeus's 3.5-day WattTime signal (fixtures/zeus/carbon_hist.csv), one half-hour slot
        // per 10 s, stretched to 100–900 g/kWh so that it crosses the decision boundaries.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/zeus/carbon_hist.csv"
        ))
        .unwrap();
        let raw: Vec<f64> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(3)?.parse().ok())
            .collect();
        let (lo, hi) = raw
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let signal: Vec<f64> = raw
            .iter()
            .map(|v| 100.0 + 800.0 * (v - lo) / (hi - lo))
            .collect();
        let profile_s = 40.0;
        let trace = |t: f64| {
            let i = ((t - profile_s).max(0.0) / 10.0) as usize;
            signal[i.min(signal.len() - 1)]
        };
        let secs = profile_s + 10.0 * signal.len() as f64;
        let (caps, _) = drive(0.5, trace, secs);
        // (intensity, cap in force 5 s into each slot), after profiling.
        let mut seen: Vec<(f64, f64)> = Vec::new();
        for k in 0..signal.len() {
            let t = profile_s + 10.0 * k as f64 + 5.0;
            let cap = caps.iter().rev().find(|c| c.0 <= t).unwrap().1;
            seen.push((trace(t), cap));
        }
        for a in &seen {
            for b in &seen {
                if a.0 < b.0 {
                    assert!(
                        a.1 >= b.1,
                        "{} g/kWh → {} W but {} g/kWh → {} W",
                        a.0,
                        a.1,
                        b.0,
                        b.1
                    );
                }
            }
        }
        let distinct: std::collections::BTreeSet<u32> = seen.iter().map(|s| s.1 as u32).collect();
        assert!(
            distinct.len() >= 2,
            "the cap followed the grid: {distinct:?}"
        );
    }
}
