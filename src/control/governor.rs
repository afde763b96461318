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
//! Its claims obey physics. Each cap is measured until its throughput is known to ±2% (a step
//! count is exact to a step, or to one tick's work where the run reports coarsely; up to ten
//! windows), a lower cap is never taken as faster than a higher one (the profile is made
//! monotone by pooling adjacent violators, the least-squares fit that is), and a profile whose
//! points stay uncertain beyond ±5% says "not enough signal" and holds the maximum cap rather
//! than report savings the data does not support. Without a step count, throughput is GPU
//! utilisation × SM clock: utilisation alone is the share of time a kernel runs, which stays
//! near 100% under a cap, so it cannot tell caps apart.
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
    /// Time-budget mode instead of η: the least carbon within this slowdown (a fraction)
    /// against the fastest profiled cap, counted from the end of the profile.
    pub max_slowdown: Option<f64>,
}

impl GovernorConfig {
    /// The longest a cap is measured while its throughput is still uncertain: ten windows, and
    /// at least a minute (a run printing a few steps a second needs ~20 s for ±2%).
    pub fn longest_window(&self) -> f64 {
        (10.0 * self.measure_s).max(60.0)
    }
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
            max_slowdown: None,
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
    /// Mean GPU utilisation (%), the throughput proxy without steps (with `sm_clock_mhz`).
    pub util_pct: Option<f64>,
    /// Mean SM clock (MHz): utilisation × clock stands for throughput without steps.
    pub sm_clock_mhz: Option<f64>,
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
    /// Steps/s (or utilisation × SM clock without steps).
    pub throughput: f64,
    /// Relative uncertainty of `throughput` as measured (before the monotone fit).
    pub rel_err: f64,
}

/// The uncertainty a cap's throughput is measured to before the next cap is tried.
pub const TARGET_REL_ERR: f64 = 0.02;
/// A profile with a point less certain than this has not enough signal to choose a cap by.
pub const MAX_REL_ERR: f64 = 0.05;

/// Pool-adjacent-violators: the least-squares non-decreasing fit of `v` (in order), each value
/// weighted by `w`.
fn monotone(v: &[f64], w: &[f64]) -> Vec<f64> {
    // Blocks of (mean, weight, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(v.len());
    for (&x, &wt) in v.iter().zip(w) {
        blocks.push((x, wt.max(1e-12), 1));
        while blocks.len() >= 2 {
            let (b, a) = (blocks[blocks.len() - 1], blocks[blocks.len() - 2]);
            if a.0 <= b.0 {
                break;
            }
            blocks.pop();
            let k = blocks.len() - 1;
            blocks[k] = ((a.0 * a.1 + b.0 * b.1) / (a.1 + b.1), a.1 + b.1, a.2 + b.2);
        }
    }
    blocks
        .into_iter()
        .flat_map(|(m, _, n)| std::iter::repeat_n(m, n))
        .collect()
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
    /// Per tick: the throughput proxy (utilisation × clock, or utilisation), its sum and
    /// sum of squares, for the mean and its standard error.
    proxy_sum: f64,
    proxy_sq: f64,
    n: u32,
    /// Ticks whose step count changed; time spanned by the window's ticks.
    changed_ticks: u32,
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
            proxy_sum: 0.0,
            proxy_sq: 0.0,
            n: 0,
            changed_ticks: 0,
            first_change: None,
            last_change: None,
            last_steps: steps0,
            changes: 0,
        }
    }

    fn add(&mut self, o: &Obs, dt: f64) {
        self.energy_j += o.gpu_w.unwrap_or(0.0) * dt;
        let proxy = o.util_pct.unwrap_or(0.0) * o.sm_clock_mhz.unwrap_or(1.0);
        self.proxy_sum += proxy;
        self.proxy_sq += proxy * proxy;
        self.n += 1;
        if let Some(s) = o.steps {
            if self.last_steps.is_some_and(|l| s != l) {
                let c = (o.elapsed_s, s);
                self.first_change.get_or_insert(c);
                self.last_change = Some(c);
                self.changes += 1;
                self.changed_ticks += 1;
            }
            self.last_steps = Some(s);
        }
    }

    /// Steps/s between the first and last change of the count where there were two, else
    /// over the whole window; the mean proxy when `by_steps` is false.
    fn throughput(&self, by_steps: bool, now: f64, steps_now: Option<f64>) -> f64 {
        self.measured(by_steps, now, steps_now).0
    }

    /// (throughput, its relative uncertainty).
    ///
    /// Steps: each end of the timed span is off by at most one step where the count moves on
    /// (nearly) every tick (a floor of the true count), and by one tick's work where the run
    /// reports coarsely (the count lags the truth by up to a tick), so the rate is known to
    /// 2·e / Δsteps. The proxy: the standard error of the per-tick mean over the mean.
    fn measured(&self, by_steps: bool, now: f64, steps_now: Option<f64>) -> (f64, f64) {
        let n = f64::from(self.n.max(1));
        if !by_steps {
            let mean = self.proxy_sum / n;
            let var = (self.proxy_sq / n - mean * mean).max(0.0);
            let se = if self.n > 1 {
                (var / (n - 1.0)).sqrt()
            } else {
                f64::INFINITY
            };
            return (mean, if mean > 0.0 { se / mean } else { 1.0 });
        }
        let (rate, d_steps) = match (self.first_change, self.last_change) {
            (Some(a), Some(b)) if b.0 > a.0 => ((b.1 - a.1) / (b.0 - a.0), b.1 - a.1),
            _ => match (self.steps0, steps_now) {
                (Some(s0), Some(s1)) if now > self.t0 && s1 > s0 => {
                    return ((s1 - s0) / (now - self.t0), 1.0);
                }
                _ => return (0.0, 1.0),
            },
        };
        let fine = f64::from(self.changed_ticks) >= 0.8 * n;
        let tick = (now - self.t0) / n;
        let end_err = if fine { 1.0 } else { (rate * tick).max(1.0) };
        (rate, (2.0 * end_err / d_steps).min(1.0))
    }
}

pub use crate::engine::savings::Savings;

/// Time-budget mode (`--max-slowdown X%`): how far the lagrange multiplier moves with the time
/// saved or lost so far — λ = λ₀·exp(−slack/τ). A tuning constant, not a measurement: ten
/// minutes of slack halves or doubles λ, so the budget is met to about τ·ln(I_max/I_min)
/// seconds whatever the run's length, while a grid that moves ±10% still shifts work in time.
pub const BUDGET_TAU_S: f64 = 600.0;
/// Time-budget mode: the least time between two decisions at one intensity (the caps
/// alternate at most this often to meet the budget between two discrete caps).
pub const BUDGET_DECISION_S: f64 = 300.0;

/// The time-budget rule: per decision the cap minimising I(t)·E(p) + λ·t(p) per unit of work
/// (E = P/T, t = 1/T), with λ steered so the time taken stays within `max_slowdown` of the
/// fastest cap's. λ₀ is the price of time at which, at the mean intensity seen, the two caps
/// bracketing the budget on the lower convex hull of (time, energy) per unit of work cost the
/// same — the fixed mix that meets the budget; the slack then tilts it, and a dirtier hour
/// (higher I) picks the slower cap, a cleaner one the faster.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub max_slowdown: f64,
    sum_i: f64,
    n_i: f64,
    /// The λ of the last decision (g/kWh·W).
    pub lambda: f64,
}

impl Budget {
    pub fn new(max_slowdown: f64) -> Self {
        Self {
            max_slowdown: max_slowdown.max(0.0),
            sum_i: 0.0,
            n_i: 0.0,
            lambda: 0.0,
        }
    }

    /// λ₀ at intensity `i`: zero when the least energy per unit of work is within the budget.
    fn lambda0(&self, pts: &[(f64, f64)], i: f64) -> f64 {
        let t_max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
        if t_max <= 0.0 {
            return 0.0;
        }
        let target = (1.0 + self.max_slowdown) / t_max;
        let se: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|&(w, t)| (1.0 / t, w / t))
            .collect();
        let within = se
            .iter()
            .filter(|p| p.0 <= target * (1.0 + 1e-12))
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min);
        // The hull segment through the budget: the pair whose mix there takes the least energy
        // (of equals, the steepest: at a zero budget every pair through the fastest cap ties).
        let mut seg: Option<(f64, f64)> = None;
        for a in se.iter().filter(|p| p.0 <= target) {
            for b in se.iter().filter(|p| p.0 > target) {
                let f = (b.0 - target) / (b.0 - a.0);
                let (e, l) = (f * a.1 + (1.0 - f) * b.1, i * (a.1 - b.1) / (b.0 - a.0));
                let better = seg.is_none_or(|(be, bl)| {
                    e < be - 1e-12 * be.abs() || (e <= be + 1e-12 * be.abs() && l > bl)
                });
                if better {
                    seg = Some((e, l));
                }
            }
        }
        match seg {
            // The least energy within the budget is already there: time costs nothing.
            Some((e, l)) if e < within || (e <= within && l > 0.0) => l.max(0.0),
            _ => 0.0,
        }
    }

    /// The index in `pts` ((power W, throughput) per cap) to run next, at intensity `i`
    /// (forecast or now), after `running_s` seconds that did the work of `work_max_s` seconds
    /// at the fastest cap.
    pub fn choose(&mut self, pts: &[(f64, f64)], i: f64, running_s: f64, work_max_s: f64) -> usize {
        self.sum_i += i;
        self.n_i += 1.0;
        let mean_i = self.sum_i / self.n_i;
        let slack = (1.0 + self.max_slowdown) * work_max_s - running_s;
        self.lambda = self.lambda0(pts, mean_i) * (-slack / BUDGET_TAU_S).clamp(-50.0, 50.0).exp();
        let cost = |&(w, t): &(f64, f64)| {
            if t > 0.0 {
                (i * w + self.lambda) / t
            } else {
                f64::INFINITY
            }
        };
        let mut best = 0;
        for (k, p) in pts.iter().enumerate() {
            // No time to give: the fastest, whatever the intensity.
            let better = if self.max_slowdown <= 0.0 {
                p.1 > pts[best].1
            } else {
                cost(p) < cost(&pts[best])
            };
            if better {
                best = k;
            }
        }
        best
    }
}

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
    /// Why the profile cannot tell the caps apart, when it cannot (the maximum cap is held).
    blind: Option<String>,
    pub savings: Savings,
    pub profiles: u32,
    /// Time-budget mode: the rule, the seconds run since the profile, the work done in them
    /// as seconds at the fastest cap, and when it last decided.
    budget: Option<Budget>,
    run_s: f64,
    work_max_s: f64,
    decided_at: f64,
    /// Per profiled cap (as `profile`): the steps and seconds the run has done at it since.
    seen: Vec<(f64, f64)>,
    /// The profile is a saved one (no minutes spent measuring it in this run).
    reused: bool,
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
            blind: None,
            savings: Savings::default(),
            profiles: 0,
            budget: cfg.max_slowdown.map(Budget::new),
            run_s: 0.0,
            work_max_s: 0.0,
            decided_at: f64::NEG_INFINITY,
            seen: Vec::new(),
            reused: false,
        }
    }

    /// Starts from a saved profile (`points`, any order) instead of measuring one, where its
    /// caps are this governor's candidates; false (and nothing changed) where they are not. It
    /// profiles again if the run's throughput signal is not the profile's (steps or not), or
    /// drifts from it.
    pub fn reuse(&mut self, points: &[Point], by_steps: bool) -> bool {
        let mut pts = points.to_vec();
        pts.sort_by(|a, b| b.cap_w.total_cmp(&a.cap_w));
        let same = pts.len() == self.candidates.len()
            && pts
                .iter()
                .zip(&self.candidates)
                .all(|(p, c)| (p.cap_w - c).abs() < 0.5);
        if !same {
            return false;
        }
        self.profile = pts;
        self.by_steps = by_steps;
        self.reused = true;
        self.phase = Phase::Running;
        self.reason = "a saved profile".into();
        true
    }

    /// Whether throughput is the run's steps/s (else utilisation × SM clock).
    pub fn by_steps(&self) -> bool {
        self.by_steps
    }

    /// Whether the profile in use was saved by an earlier run (not measured in this one).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Time-budget mode: the slowdown so far against the fastest cap (since the profile).
    pub fn slowdown(&self) -> Option<f64> {
        (self.budget.is_some() && self.work_max_s > 0.0).then(|| self.run_s / self.work_max_s - 1.0)
    }

    /// Time-budget mode: counts `dt` seconds at the present cap and the work done in them (by
    /// the step count where the run reports one, else by the profile). The step count refines
    /// the profile too: once a cap has run for a longest profile window, its throughput is what
    /// the run did at it (a profile window knows it to ±2% only, as much as the budget), the
    /// profile made monotone again.
    fn track(&mut self, dt: f64, steps: Option<(f64, f64)>) {
        let k = self
            .profile
            .iter()
            .position(|p| (p.cap_w - self.cap).abs() < 0.5);
        let refine = self.budget.is_some() && self.by_steps && self.blind.is_none();
        if let (Some(k), Some((s0, s1)), true) = (k, steps, refine) {
            self.seen.resize(self.profile.len(), (0.0, 0.0));
            let seen = &mut self.seen[k];
            *seen = (seen.0 + (s1 - s0).max(0.0), seen.1 + dt);
            if seen.1 >= self.cfg.longest_window() && seen.0 > 0.0 {
                self.profile[k].throughput = seen.0 / seen.1;
                self.profile[k].rel_err = self.profile[k].rel_err.min(2.0 / seen.0);
                self.refit();
            }
        }
        let t_max = self
            .profile
            .iter()
            .map(|p| p.throughput)
            .fold(0.0, f64::max);
        let here = k.map_or(0.0, |k| self.profile[k].throughput);
        if self.budget.is_some() && t_max > 0.0 {
            self.run_s += dt;
            self.work_max_s += match steps {
                Some((s0, s1)) if self.by_steps => (s1 - s0).max(0.0) / t_max,
                _ => dt * here / t_max,
            };
        }
    }

    /// Time-budget mode: the cap of least I·E + λ·t, deciding again when the intensity
    /// changes or every [`BUDGET_DECISION_S`].
    fn decide_budget(&mut self, o: &Obs) -> Option<f64> {
        let i = o.intensity_ahead.or(o.intensity)?;
        if self.decided_for == Some(i) && o.elapsed_s - self.decided_at < BUDGET_DECISION_S {
            return None;
        }
        self.decided_for = Some(i);
        self.decided_at = o.elapsed_s;
        let pts: Vec<(f64, f64)> = self
            .profile
            .iter()
            .map(|p| (p.power_w, p.throughput))
            .collect();
        let b = self.budget.as_mut()?;
        let best = *self
            .profile
            .get(b.choose(&pts, i, self.run_s, self.work_max_s))?;
        let basis = if o.intensity_ahead.is_some() {
            "forecast"
        } else {
            "now"
        };
        self.reason = format!(
            "{:.0} W: least I·E + λ·t at {i:.0} g/kWh ({basis}), time budget {:+.1}%, so far {:+.1}%",
            best.cap_w,
            b.max_slowdown * 100.0,
            self.slowdown().unwrap_or(0.0) * 100.0
        );
        if (best.cap_w - self.cap).abs() < 0.5 {
            return None;
        }
        self.cap = best.cap_w;
        Some(self.cap)
    }

    /// Why it holds the maximum cap for want of signal, if it does.
    pub fn blind(&self) -> Option<&str> {
        self.blind.as_deref()
    }

    /// The profile made monotone (a lower cap is never faster, nor draws more): the
    /// least-squares fit, each throughput weighted by how well it is known; highest cap first.
    fn refit(&mut self) {
        // Ascending caps for the fit.
        let mut pts = self.profile.clone();
        pts.sort_by(|a, b| a.cap_w.total_cmp(&b.cap_w));
        let w: Vec<f64> = pts
            .iter()
            .map(|p| 1.0 / (p.rel_err.max(1e-6) * p.rel_err.max(1e-6)))
            .collect();
        let t = monotone(&pts.iter().map(|p| p.throughput).collect::<Vec<_>>(), &w);
        let pw = monotone(
            &pts.iter().map(|p| p.power_w).collect::<Vec<_>>(),
            &vec![1.0; pts.len()],
        );
        for (k, p) in pts.iter_mut().enumerate() {
            p.throughput = t[k];
            p.power_w = pw[k];
        }
        pts.reverse();
        self.profile = pts;
    }

    /// Once every cap is measured: the profile made monotone (a lower cap is never faster,
    /// nor draws more), and whether it can tell the caps apart at all.
    fn finish_profile(&mut self, sm_clock: bool) {
        self.refit();
        let worst = self.profile.iter().map(|p| p.rel_err).fold(0.0, f64::max);
        self.blind = if !self.by_steps && !sm_clock {
            Some(
                "not enough signal: no step count and no SM clock, and GPU utilisation alone \
                 stays near 100% under any cap; holding the maximum cap"
                    .into(),
            )
        } else if worst > MAX_REL_ERR {
            Some(format!(
                "not enough signal: throughput measured to ±{:.0}% only (the run reports too \
                 few steps); holding the maximum cap",
                worst * 100.0
            ))
        } else {
            None
        };
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
        self.reused = false;
        self.profiles += 1;
        self.phase = Phase::Profiling {
            i: 0,
            since: t,
            window: None,
        };
        self.drift_window = None;
        self.drifted = 0;
        self.blind = None;
        self.seen.clear();
        self.cap = self.candidates[0];
        self.reason = format!("profiling {:.0} W (1/{})", self.cap, self.candidates.len());
        Some(self.cap)
    }

    /// Folds one tick in; a cap to set, when it changes.
    pub fn observe(&mut self, o: &Obs) -> Option<f64> {
        let prev = self.last.replace(*o);
        let dt = prev.map_or(0.0, |p| (o.elapsed_s - p.elapsed_s).max(0.0));
        if prev.is_none() && self.reused && o.steps.is_some() != self.by_steps {
            // A saved profile in the other unit than this run reports: measure afresh.
            self.by_steps = o.steps.is_some();
            return self.start_profile(o.elapsed_s);
        }
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
                    let (_, err) = w.measured(self.by_steps, o.elapsed_s, o.steps);
                    span >= self.cfg.measure_s
                        && w.n > 0
                        && (err <= TARGET_REL_ERR || span >= self.cfg.longest_window())
                };
                match window {
                    Some(w) if enough(&w) => {
                        let span = o.elapsed_s - w.t0;
                        let (throughput, rel_err) = w.measured(self.by_steps, o.elapsed_s, o.steps);
                        self.profile.push(Point {
                            cap_w: self.candidates[i],
                            power_w: w.energy_j / span,
                            throughput,
                            rel_err,
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
                            self.finish_profile(o.sm_clock_mhz.is_some());
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
                let steps = prev.and_then(|p| p.steps).zip(o.steps);
                self.track(dt, steps);
                if self.check_drift(o, dt) {
                    return self.start_profile(o.elapsed_s);
                }
                self.decide(o)
            }
        }
    }

    /// Chooses again when the intensity it decides for has changed.
    fn decide(&mut self, o: &Obs) -> Option<f64> {
        if let Some(why) = &self.blind {
            self.reason.clone_from(why);
            let max = self.candidates[0];
            if (max - self.cap).abs() < 0.5 {
                return None;
            }
            self.cap = max;
            return Some(max);
        }
        if self.budget.is_some() {
            return self.decide_budget(o);
        }
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
        if self.blind.is_some() {
            return;
        }
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

    /// A governor for one A40 (100–300 W) with 1 s to settle and 2 s windows.
    fn quick_governor(eta: f64) -> Governor {
        let cfg = GovernorConfig {
            eta,
            warmup_s: 1.0,
            measure_s: 2.0,
            ..Default::default()
        };
        Governor::new(cfg, 100.0, 300.0)
    }

    /// Scripted seconds by which every cap is profiled (9 caps × ~20 s at ~5.6 steps/s).
    const PROFILED_BY: f64 = 400.0;

    /// Drives the governor against the Zeus A40 curve (one GPU) with an intensity trace; the
    /// caps it asks for are applied at once. Returns (caps over time, governor).
    fn drive(eta: f64, intensity: impl Fn(f64) -> f64, secs: f64) -> (Vec<(f64, f64)>, Governor) {
        drive_governor(quick_governor(eta), intensity, secs)
    }

    fn drive_governor(
        mut g: Governor,
        intensity: impl Fn(f64) -> f64,
        secs: f64,
    ) -> (Vec<(f64, f64)>, Governor) {
        let curve = Curve::a40();
        let (mut t, mut steps, mut cap) = (0.0, 0.0, 300.0);
        let mut caps = Vec::new();
        while t <= secs {
            // The run prints whole steps, as a training log does.
            let o = Obs {
                elapsed_s: t,
                gpu_w: Some(curve.power_w(cap)),
                steps: Some(f64::floor(steps)),
                util_pct: Some(95.0),
                sm_clock_mhz: Some(curve.sm_clock_mhz(cap)),
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
    fn a_time_budget_is_met_and_the_dirtier_hours_get_the_lower_caps() {
        let cfg = GovernorConfig {
            warmup_s: 1.0,
            measure_s: 2.0,
            max_slowdown: Some(0.05),
            ..Default::default()
        };
        let g = Governor::new(cfg, 100.0, 300.0);
        // Half-hour slots alternating 500 and 700 g/kWh, for eleven hours.
        let dirty = |t: f64| ((t / 1800.0) as u64) % 2 == 1;
        let (caps, g) = drive_governor(g, |t| if dirty(t) { 700.0 } else { 500.0 }, 40_000.0);
        let slow = g.slowdown().unwrap();
        assert!((0.03..=0.055).contains(&slow), "slowdown {slow}");
        // Energy per step after the profile against the fastest cap's (Zeus: 175 W saves 21%
        // for 7.6%, 200 W 14% for 3.2%; a 5% budget mixes them).
        let curve = Curve::a40();
        let run: Vec<f64> = caps
            .iter()
            .filter(|c| c.0 > PROFILED_BY)
            .map(|c| c.1)
            .collect();
        let e = |c: f64| curve.power_w(c) / curve.steps_per_s(c);
        let mean_e = run.iter().map(|&c| e(c)).sum::<f64>() / run.len() as f64;
        assert!(mean_e < 0.88 * e(300.0), "{mean_e} against {}", e(300.0));
        let mean_cap = |d: bool| {
            let v: Vec<f64> = caps
                .iter()
                .filter(|c| c.0 > PROFILED_BY && dirty(c.0) == d)
                .map(|c| c.1)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(
            mean_cap(true) < mean_cap(false),
            "{} {}",
            mean_cap(true),
            mean_cap(false)
        );
        assert!(g.reason.contains("time budget +5.0%"), "{}", g.reason);
    }

    #[test]
    fn a_zero_time_budget_runs_the_fastest_cap() {
        // (power W, throughput) per cap: the fastest first, the slower ones cheaper per step.
        let pts = [(300.0, 1.0), (250.0, 0.98), (200.0, 0.93)];
        let mut b = Budget::new(0.0);
        assert_eq!(b.choose(&pts, 500.0, 0.0, 0.0), 0);
        // Ahead of a 5% budget, the slower caps; behind it, the fastest.
        let mut b = Budget::new(0.05);
        assert_eq!(b.choose(&pts, 500.0, 1000.0, 1000.0), 2);
        let mut b = Budget::new(0.05);
        assert_eq!(b.choose(&pts, 500.0, 4000.0, 2000.0), 0);
    }

    #[test]
    fn profiles_every_25_w_from_the_top() {
        let (_, g) = drive(0.5, |_| 400.0, PROFILED_BY);
        let caps: Vec<f64> = g.profile().iter().map(|p| p.cap_w).collect();
        assert_eq!(
            caps,
            [
                300.0, 275.0, 250.0, 225.0, 200.0, 175.0, 150.0, 125.0, 100.0
            ]
        );
        let c = Curve::a40();
        // The measured throughput (from whole steps) and power are the curve's, to the ±2% each
        // cap was measured to; a lower cap is never faster.
        for p in g.profile() {
            assert!(p.rel_err <= TARGET_REL_ERR, "{p:?}");
            let t = c.steps_per_s(p.cap_w);
            assert!(
                (p.throughput / t - 1.0).abs() < 2.0 * TARGET_REL_ERR,
                "{p:?} vs {t}"
            );
            assert!((p.power_w - c.power_w(p.cap_w)).abs() < 1e-9, "{p:?}");
        }
        for w in g.profile().windows(2) {
            assert!(w[0].throughput >= w[1].throughput, "{w:?}");
        }
        assert!(!g.is_profiling());
        assert_eq!(g.blind(), None);
    }

    #[test]
    fn caps_fall_when_the_grid_is_dirty_and_rise_when_it_is_clean() {
        // Profiling, then clean (100 g), dirty (900 g), clean again.
        let p = PROFILED_BY;
        let trace = |t: f64| {
            if (p + 20.0..p + 50.0).contains(&t) {
                900.0
            } else {
                100.0
            }
        };
        let (caps, _) = drive(0.5, trace, p + 80.0);
        let at = |t: f64| caps.iter().rev().find(|c| c.0 <= t).unwrap().1;
        let (clean, dirty, clean2) = (at(p + 15.0), at(p + 45.0), at(p + 75.0));
        assert!(dirty < clean, "dirty {dirty} W vs clean {clean} W");
        assert_eq!(clean2, clean);
    }

    #[test]
    fn eta_one_minimises_energy_per_step_and_saves_carbon() {
        let (caps, g) = drive(1.0, |_| 400.0, PROFILED_BY + 200.0);
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
        // The curve's energy per step at 175 W against 300 W, and its time, to the profile's
        // precision (two points).
        let want = 1.0
            - (c.power_w(175.0) / c.steps_per_s(175.0)) / (c.power_w(300.0) / c.steps_per_s(300.0));
        assert!(
            (s.saved_pct() / 100.0 - want).abs() < 0.02,
            "{} vs {want}",
            s.saved_pct()
        );
        let want_t = c.steps_per_s(300.0) / c.steps_per_s(175.0) - 1.0;
        assert!(
            (s.extra_time_pct() / 100.0 - want_t).abs() < 0.02,
            "{} vs {want_t}",
            s.extra_time_pct()
        );
    }

    #[test]
    fn eta_zero_runs_flat_out() {
        let (caps, _) = drive(0.0, |_| 900.0, PROFILED_BY);
        // Pure speed: a cap as fast as the maximum, to the profile's precision.
        let c = Curve::a40();
        let last = caps.last().unwrap().1;
        assert!(
            c.steps_per_s(last) >= c.steps_per_s(300.0) * (1.0 - 2.0 * TARGET_REL_ERR),
            "{last}"
        );
    }

    /// A busy machine: ticks late by up to 0.9 s at random, the job stalled now and then (the
    /// run's own threads starved), whole steps only. Whatever it measures, a lower cap is never
    /// faster, so the time the governor says it cost is never negative.
    #[test]
    fn on_a_busy_machine_the_time_cost_is_never_negative() {
        let curve = Curve::a40();
        for seed in 1..=20u64 {
            let mut rng = seed;
            let mut next = move || {
                // xorshift64*: reproducible noise without a crate.
                rng ^= rng >> 12;
                rng ^= rng << 25;
                rng ^= rng >> 27;
                (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut g = quick_governor(1.0);
            let (mut t, mut steps, mut cap) = (0.0, 0.0_f64, 300.0);
            while t < PROFILED_BY + 300.0 {
                let o = Obs {
                    elapsed_s: t,
                    gpu_w: Some(curve.power_w(cap) * (0.9 + 0.2 * next())),
                    steps: Some(steps.floor()),
                    intensity: Some(400.0),
                    ..Default::default()
                };
                if let Some(c) = g.observe(&o) {
                    cap = c;
                }
                let dt = 0.1 + 0.9 * next();
                t += dt;
                let stalled = next() < 0.15;
                if !stalled {
                    steps += curve.steps_per_s(cap) * dt;
                }
            }
            let s = g.savings;
            assert!(
                g.blind().is_some() || s.extra_time_pct() >= 0.0,
                "seed {seed}: {s:?} {:?}",
                g.profile()
            );
            // A finished profile (a stall may have started another since).
            for w in g.profile().windows(2).filter(|_| !g.is_profiling()) {
                assert!(w[0].throughput >= w[1].throughput, "seed {seed}: {w:?}");
            }
        }
    }

    #[test]
    fn without_steps_utilisation_alone_is_not_enough_signal_but_times_the_clock_is() {
        let curve = Curve::a40();
        for clock in [false, true] {
            let mut g = quick_governor(1.0);
            let (mut t, mut cap) = (0.0, 300.0);
            while t < PROFILED_BY {
                let o = Obs {
                    elapsed_s: t,
                    gpu_w: Some(curve.power_w(cap)),
                    util_pct: Some(95.0),
                    sm_clock_mhz: clock.then(|| curve.sm_clock_mhz(cap)),
                    intensity: Some(400.0),
                    ..Default::default()
                };
                if let Some(c) = g.observe(&o) {
                    cap = c;
                }
                t += 0.5;
            }
            assert!(!g.is_profiling());
            if clock {
                assert_eq!(g.blind(), None);
                assert_eq!(cap, 175.0, "the least energy per step, as with steps");
                assert!(g.savings.extra_time_pct() > 0.0);
            } else {
                assert!(g.blind().unwrap().starts_with("not enough signal"));
                assert_eq!(cap, 300.0, "holds the maximum");
                assert_eq!(g.savings, Savings::default(), "claims nothing");
            }
        }
    }

    #[test]
    fn pooling_adjacent_violators_makes_a_profile_monotone() {
        assert_eq!(
            monotone(&[1.0, 3.0, 2.0, 4.0], &[1.0; 4]),
            [1.0, 2.5, 2.5, 4.0]
        );
        assert_eq!(monotone(&[3.0, 2.0, 1.0], &[1.0, 1.0, 2.0]), [1.75; 3]);
        assert_eq!(monotone(&[], &[]), Vec::<f64>::new());
    }

    #[test]
    fn throughput_drift_profiles_again() {
        let curve = Curve::a40();
        let mut g = quick_governor(1.0);
        let (mut t, mut steps, mut cap) = (0.0, 0.0, 300.0);
        while t < PROFILED_BY + 150.0 {
            // After the profile the job becomes twice as slow (a new phase, another model).
            let slow = if t >= PROFILED_BY { 0.5 } else { 1.0 };
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
        let profile_s = PROFILED_BY;
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
