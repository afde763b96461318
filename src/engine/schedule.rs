//! What power caps can save on a measured cap curve and a grid trace (DESIGN.md §5, the
//! governor against its limit): a run of N epochs priced uncapped, at each static cap, at the
//! best fixed mix of two caps within a slowdown budget (what efficiency alone gives), and by
//! the oracle — a cap per trace slot, mixes of two caps within a slot allowed, knowing the whole
//! signal — which is what efficiency and timing together can give. Pure: numbers in, numbers out.
//!
//! The oracle is exact for the model (each cap draws its measured mean power and runs at its
//! measured speed, a mix within a slot shares the slot's time between two caps, the run never
//! pauses): for a finish time F, minimising Σ_k ∫ I_k·P(r_k) subject to Σ_k L_k·r_k = N is a
//! linear programme over the lower convex hull of (speed, power); its Lagrangian
//! min_r I_k·P(r) − μ·r is solved slot by slot at a hull vertex, μ found by bisection, and the
//! slots tied at μ* share their time between the two vertices so the work is exactly N (LP
//! duality makes that optimal). F is the budget's end, or any slot boundary before it where
//! finishing early is cheaper (a slow cap can cost more energy than a faster one).

use super::reprice::Trace;
use chrono::{DateTime, TimeDelta, Utc};

/// Joules per kWh.
const J_PER_KWH: f64 = 3.6e6;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("a cap curve needs at least one cap with positive time and energy per epoch")]
    EmptyCurve,
    #[error("cap {cap_w} W: time and energy per epoch must be positive and finite")]
    BadPoint { cap_w: f64 },
    #[error("the trace does not cover {need_s:.0} s from {start} (it ends {end})")]
    NotCovered {
        start: DateTime<Utc>,
        need_s: f64,
        end: DateTime<Utc>,
    },
    #[error("epochs must be positive and finite")]
    BadEpochs,
    /// A policy run elsewhere (through the Session) failed.
    #[error("{0}")]
    Policy(String),
}

/// One measured cap: the time and energy one epoch takes under it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CapPoint {
    pub cap_w: f64,
    pub s_per_epoch: f64,
    pub j_per_epoch: f64,
}

impl CapPoint {
    pub fn power_w(&self) -> f64 {
        self.j_per_epoch / self.s_per_epoch
    }
}

/// Measured caps, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct CapCurve {
    points: Vec<CapPoint>,
}

impl CapCurve {
    pub fn new(mut points: Vec<CapPoint>) -> Result<Self, ScheduleError> {
        for p in &points {
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if !ok(p.s_per_epoch) || !ok(p.j_per_epoch) || !p.cap_w.is_finite() {
                return Err(ScheduleError::BadPoint { cap_w: p.cap_w });
            }
        }
        if points.is_empty() {
            return Err(ScheduleError::EmptyCurve);
        }
        points.sort_by(|a, b| a.cap_w.total_cmp(&b.cap_w));
        Ok(Self { points })
    }

    pub fn points(&self) -> &[CapPoint] {
        &self.points
    }

    /// The highest cap (uncapped).
    pub fn max(&self) -> CapPoint {
        self.points[self.points.len() - 1]
    }

    /// Seconds per epoch of the slowest run a sensible policy makes within `max_slowdown`:
    /// the budget's, or the cap of least energy per epoch where that is slower.
    pub fn slowest_useful_s(&self, max_slowdown: f64) -> f64 {
        let least = self
            .points
            .iter()
            .min_by(|a, b| a.j_per_epoch.total_cmp(&b.j_per_epoch))
            .map_or(0.0, |p| p.s_per_epoch);
        (self.fastest_s() * (1.0 + max_slowdown.max(0.0))).max(least)
    }

    /// The fastest cap (the reference for slowdowns: uncapped is the highest cap, and on a
    /// measured curve the highest cap is the fastest or within noise of it).
    fn fastest_s(&self) -> f64 {
        self.max().s_per_epoch
    }

    /// Seconds per epoch of the slowest cap: no policy's run of N epochs takes longer than N
    /// times this.
    pub fn slowest_s(&self) -> f64 {
        self.points
            .iter()
            .map(|p| p.s_per_epoch)
            .fold(0.0, f64::max)
    }

    /// The lower convex hull of (speed = 1/s, power), by speed ascending: in a slot of fixed
    /// length, the least power for each speed reachable by sharing time between two caps.
    fn speed_hull(&self) -> Vec<CapPoint> {
        let mut pts = self.points.clone();
        pts.sort_by(|a, b| {
            (1.0 / a.s_per_epoch)
                .total_cmp(&(1.0 / b.s_per_epoch))
                .then(a.power_w().total_cmp(&b.power_w()))
        });
        let xy = |p: &CapPoint| (1.0 / p.s_per_epoch, p.power_w());
        let mut hull: Vec<CapPoint> = Vec::new();
        for p in pts {
            while hull.len() >= 2 {
                let (a, b) = (xy(&hull[hull.len() - 2]), xy(&hull[hull.len() - 1]));
                let c = xy(&p);
                // b above the chord a–c (or on it): drop it.
                if (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0) <= 0.0 {
                    hull.pop();
                } else {
                    break;
                }
            }
            if hull
                .last()
                .is_some_and(|l| (xy(l).0 - xy(&p).0).abs() < 1e-15)
            {
                continue; // the same speed at more power
            }
            hull.push(p);
        }
        hull
    }
}

/// The grid signal from a start: (offset s, length s, g/kWh) slots up to the trace's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    slots: Vec<(f64, f64, f64)>,
    pub start: DateTime<Utc>,
}

impl Signal {
    pub fn new(trace: &Trace, start: DateTime<Utc>) -> Self {
        let mut slots = Vec::new();
        let pts = trace.points();
        for (k, &(t, i)) in pts.iter().enumerate() {
            let next = pts.get(k + 1).map_or(trace.end(), |p| p.0);
            if next <= start {
                continue;
            }
            let from = t.max(start);
            let off = secs_between(start, from);
            slots.push((off, secs_between(from, next), i.0));
        }
        Self { slots, start }
    }

    /// Consecutive (length s, g/kWh) slots from `start`: what a run itself saw, tick by tick.
    pub fn from_slots(start: DateTime<Utc>, slots: &[(f64, f64)]) -> Self {
        let mut off = 0.0;
        let slots = slots
            .iter()
            .map(|&(l, i)| {
                off += l;
                (off - l, l, i)
            })
            .collect();
        Self { slots, start }
    }

    /// Seconds the signal covers from the start.
    pub fn span_s(&self) -> f64 {
        self.slots.last().map_or(0.0, |s| s.0 + s.1)
    }

    /// The slots (offset, length, g/kWh).
    pub fn slots(&self) -> &[(f64, f64, f64)] {
        &self.slots
    }

    /// ∫ I dt over [a, b) in g/kWh·s.
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        self.slots
            .iter()
            .map(|&(o, l, i)| ((o + l).min(b) - o.max(a)).max(0.0) * i)
            .sum()
    }

    /// The intensity at `t` s from the start (the last slot's beyond it).
    pub fn at(&self, t: f64) -> f64 {
        let k = self.slots.partition_point(|s| s.0 <= t);
        self.slots[k.saturating_sub(1).min(self.slots.len().saturating_sub(1))].2
    }

    /// The mean intensity over [a, b).
    pub fn mean(&self, a: f64, b: f64) -> f64 {
        if b > a {
            self.integral(a, b) / (b - a)
        } else {
            self.at(a)
        }
    }

    fn cover(&self, need_s: f64) -> Result<(), ScheduleError> {
        // Also from the start itself: a start before the trace's first point is not covered.
        let from_start = self.slots.first().is_some_and(|s| s.0 <= 1e-9);
        if !from_start || self.span_s() + 1e-6 < need_s {
            return Err(ScheduleError::NotCovered {
                start: self.start,
                need_s,
                end: self.start + TimeDelta::milliseconds((self.span_s() * 1e3) as i64),
            });
        }
        Ok(())
    }
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1e3
}

/// What one policy did for the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub policy: String,
    pub time_s: f64,
    pub energy_j: f64,
    pub carbon_g: f64,
    /// Per slot or decision: (offset s, length s, mean cap W) — for plots.
    #[serde(skip)]
    pub caps: Vec<(f64, f64, f64)>,
}

impl Outcome {
    /// (time, energy, carbon) change against `base`, as fractions.
    pub fn change(&self, base: &Outcome) -> (f64, f64, f64) {
        (
            self.time_s / base.time_s - 1.0,
            self.energy_j / base.energy_j - 1.0,
            self.carbon_g / base.carbon_g - 1.0,
        )
    }

    pub fn slowdown(&self, base: &Outcome) -> f64 {
        self.time_s / base.time_s - 1.0
    }
}

/// N epochs at a fixed share `f` of the work on cap `a` and the rest on `b`, interleaved finely
/// (a constant mean power for the whole run).
pub fn fixed(
    curve_a: CapPoint,
    curve_b: CapPoint,
    f: f64,
    signal: &Signal,
    epochs: f64,
    policy: String,
) -> Result<Outcome, ScheduleError> {
    if !(epochs.is_finite() && epochs > 0.0) {
        return Err(ScheduleError::BadEpochs);
    }
    let t = epochs * (f * curve_a.s_per_epoch + (1.0 - f) * curve_b.s_per_epoch);
    let e = epochs * (f * curve_a.j_per_epoch + (1.0 - f) * curve_b.j_per_epoch);
    signal.cover(t)?;
    let cap = f * curve_a.cap_w + (1.0 - f) * curve_b.cap_w;
    Ok(Outcome {
        policy,
        time_s: t,
        energy_j: e,
        carbon_g: e / t * signal.integral(0.0, t) / J_PER_KWH,
        caps: vec![(0.0, t, cap)],
    })
}

/// N epochs at one cap.
pub fn static_cap(p: CapPoint, signal: &Signal, epochs: f64) -> Result<Outcome, ScheduleError> {
    fixed(
        p,
        p,
        1.0,
        signal,
        epochs,
        format!("static {:.0} W", p.cap_w),
    )
}

/// The best static cap whose slowdown is within `max_slowdown` (the highest cap always is).
pub fn best_static(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    max_slowdown: f64,
) -> Result<Outcome, ScheduleError> {
    let limit = curve.fastest_s() * (1.0 + max_slowdown) * (1.0 + 1e-12);
    let mut best = static_cap(curve.max(), signal, epochs)?;
    for p in curve.points() {
        if p.s_per_epoch <= limit {
            let o = static_cap(*p, signal, epochs)?;
            if o.carbon_g < best.carbon_g {
                best = o;
            }
        }
    }
    best.policy = format!("best static cap ≤{:+.1}%", max_slowdown * 100.0);
    Ok(best)
}

/// The best fixed mix of two caps (or one cap) taking at most `max_slowdown` more time: what
/// energy efficiency alone gives, whatever the signal does.
pub fn best_mix(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    max_slowdown: f64,
) -> Result<Outcome, ScheduleError> {
    let target = curve.fastest_s() * (1.0 + max_slowdown);
    let mut best = best_static(curve, signal, epochs, max_slowdown)?;
    let pts = curve.points();
    for a in pts {
        for b in pts {
            // a the faster, b the slower; the share on a that takes exactly `target`.
            if a.s_per_epoch < target && b.s_per_epoch > target {
                let f = (b.s_per_epoch - target) / (b.s_per_epoch - a.s_per_epoch);
                let o = fixed(*a, *b, f, signal, epochs, String::new())?;
                if o.carbon_g < best.carbon_g {
                    best = o;
                }
            }
        }
    }
    best.policy = format!("best fixed mix ≤{:+.1}%", max_slowdown * 100.0);
    Ok(best)
}

/// One plan at a given μ: per slot the hull vertex minimising I·P(r) − μ·r.
fn plan_at(hull: &[CapPoint], slots: &[(f64, f64, f64)], mu: f64) -> Vec<usize> {
    slots
        .iter()
        .map(|&(_, _, i)| {
            let mut best = (f64::INFINITY, 0);
            for (k, p) in hull.iter().enumerate() {
                let v = i * p.power_w() - mu / p.s_per_epoch;
                if v < best.0 {
                    best = (v, k);
                }
            }
            best.1
        })
        .collect()
}

fn work_of(hull: &[CapPoint], slots: &[(f64, f64, f64)], plan: &[usize]) -> f64 {
    slots
        .iter()
        .zip(plan)
        .map(|(s, &k)| s.1 / hull[k].s_per_epoch)
        .sum()
}

/// The μ at which the plan can change: a slot of intensity I moves from hull vertex k to k+1
/// where I·P_k − μ·r_k = I·P_{k+1} − μ·r_{k+1}, i.e. μ = I·(P_{k+1} − P_k)/(r_{k+1} − r_k).
/// Between two of them (sorted, positive) every slot's vertex, hence the work, is constant.
fn plan_cuts(hull: &[CapPoint], slots: &[(f64, f64, f64)]) -> Vec<f64> {
    let slopes: Vec<f64> = hull
        .windows(2)
        .map(|w| {
            (w[1].power_w() - w[0].power_w()) / (1.0 / w[1].s_per_epoch - 1.0 / w[0].s_per_epoch)
        })
        .collect();
    let mut cuts: Vec<f64> = slots
        .iter()
        .flat_map(|s| slopes.iter().map(move |m| s.2 * m))
        .filter(|m| m.is_finite() && *m > 0.0)
        .collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    cuts
}

/// The best schedule that finishes exactly at `f_s` (None when it cannot: too short, or so long
/// the run would finish early even at the slowest cap).
fn oracle_at(
    hull: &[CapPoint],
    cuts: &[f64],
    signal: &Signal,
    epochs: f64,
    f_s: f64,
) -> Option<Outcome> {
    let slots: Vec<(f64, f64, f64)> = signal
        .slots()
        .iter()
        .filter(|s| s.0 < f_s)
        .map(|&(o, l, i)| (o, l.min(f_s - o), i))
        .collect();
    let work = |mu: f64| work_of(hull, &slots, &plan_at(hull, &slots, mu));
    // μ = 0 (least power everywhere) already does too much work: it cannot finish this late.
    if work(0.0) > epochs * (1.0 + 1e-12) {
        return None;
    }
    // One μ inside each interval between cuts (the last beyond them all: the fastest vertex
    // everywhere); the work is non-decreasing along them. The first interval holding enough
    // work and the one before it give the two plans the optimum shares a μ between (the exact
    // form of a bisection on μ, in log2(slots × vertices) plans). `cuts` may be those of more
    // slots than these (the whole signal's, sorted once): finer intervals, the same plans.
    let probe = |j: usize| match (j.checked_sub(1).map(|k| cuts[k]), cuts.get(j)) {
        (None, Some(&c)) => c / 2.0,
        (Some(a), Some(&b)) => 0.5 * (a + b),
        (Some(a), None) => 2.0 * a,
        (None, None) => 1.0,
    };
    let (mut lo_j, mut hi_j) = (0, cuts.len());
    if work(probe(hi_j)) < epochs {
        return None;
    }
    while lo_j < hi_j {
        let mid = (lo_j + hi_j) / 2;
        if work(probe(mid)) < epochs {
            lo_j = mid + 1;
        } else {
            hi_j = mid;
        }
    }
    let (lo, hi) = (if hi_j == 0 { 0.0 } else { probe(hi_j - 1) }, probe(hi_j));
    let (p_lo, p_hi) = (plan_at(hull, &slots, lo), plan_at(hull, &slots, hi));
    let (w_lo, w_hi) = (work_of(hull, &slots, &p_lo), work_of(hull, &slots, &p_hi));
    // The tied slots share their time between the two vertices so the work is exactly N.
    let th = if w_hi > w_lo {
        ((epochs - w_lo) / (w_hi - w_lo)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let (mut energy, mut carbon, mut caps) = (0.0, 0.0, Vec::with_capacity(slots.len()));
    for (k, &(o, l, i)) in slots.iter().enumerate() {
        let (a, b) = (hull[p_lo[k]], hull[p_hi[k]]);
        let e = l * ((1.0 - th) * a.power_w() + th * b.power_w());
        energy += e;
        carbon += e * i / J_PER_KWH;
        caps.push((o, l, (1.0 - th) * a.cap_w + th * b.cap_w));
    }
    Some(Outcome {
        policy: String::new(),
        time_s: f_s,
        energy_j: energy,
        carbon_g: carbon,
        caps,
    })
}

/// The oracle: the least carbon for N epochs finishing within `max_slowdown` of the fastest
/// cap, knowing the whole signal.
pub fn oracle(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    max_slowdown: f64,
) -> Result<Outcome, ScheduleError> {
    if !(epochs.is_finite() && epochs > 0.0) {
        return Err(ScheduleError::BadEpochs);
    }
    let t_min = epochs * curve.fastest_s();
    let deadline = t_min * (1.0 + max_slowdown.max(0.0));
    signal.cover(deadline)?;
    let hull = curve.speed_hull();
    let mut ends: Vec<f64> = signal
        .slots()
        .iter()
        .map(|s| s.0)
        .filter(|&o| o > t_min && o < deadline)
        .collect();
    ends.push(deadline);
    ends.push(t_min);
    let cuts = plan_cuts(&hull, signal.slots());
    let mut best: Option<Outcome> = None;
    for f in ends {
        if let Some(o) = oracle_at(&hull, &cuts, signal, epochs, f)
            && best.as_ref().is_none_or(|b| o.carbon_g < b.carbon_g)
        {
            best = Some(o);
        }
    }
    let mut best = match best {
        Some(b) => b,
        // Only the fastest cap fits (a zero budget, or a hull whose fastest point is faster
        // than the highest cap's): run it.
        None => static_cap(curve.max(), signal, epochs)?,
    };
    best.policy = format!("oracle ≤{:+.1}%", max_slowdown * 100.0);
    Ok(best)
}

/// A policy run forward in `step_s` decisions: `choose(elapsed s, epochs done, g/kWh now)`
/// gives the index of the cap (in `curve.points()`) for the next step.
pub fn follow(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    step_s: f64,
    policy: String,
    mut choose: impl FnMut(f64, f64, f64) -> usize,
) -> Result<Outcome, ScheduleError> {
    if !(epochs.is_finite() && epochs > 0.0) {
        return Err(ScheduleError::BadEpochs);
    }
    let step_s = step_s.max(1.0);
    let (mut t, mut done, mut energy, mut carbon) = (0.0, 0.0, 0.0, 0.0);
    let mut caps: Vec<(f64, f64, f64)> = Vec::new();
    let pts = curve.points();
    // A run can take at most as long as at the slowest cap, plus a step.
    signal.cover((epochs * curve.slowest_s()).min(signal.span_s()))?;
    while done < epochs * (1.0 - 1e-12) {
        let p = pts[choose(t, done, signal.at(t)).min(pts.len() - 1)];
        // Up to the step's end, the next slot boundary, or the run's end.
        let next_slot = signal
            .slots()
            .iter()
            .map(|s| s.0)
            .find(|&o| o > t + 1e-9)
            .unwrap_or(f64::INFINITY);
        let dt = step_s
            .min(next_slot - t)
            .min((epochs - done) * p.s_per_epoch);
        if t + dt > signal.span_s() + 1e-6 {
            signal.cover(t + dt)?;
        }
        let e = p.power_w() * dt;
        energy += e;
        carbon += p.power_w() * signal.integral(t, t + dt) / J_PER_KWH;
        done += dt / p.s_per_epoch;
        match caps.last_mut() {
            Some(c) if c.2 == p.cap_w => c.1 += dt,
            _ => caps.push((t, dt, p.cap_w)),
        }
        t += dt;
    }
    Ok(Outcome {
        policy,
        time_s: t,
        energy_j: energy,
        carbon_g: carbon,
        caps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::GPerKwh;

    fn curve() -> CapCurve {
        CapCurve::new(vec![
            CapPoint {
                cap_w: 100.0,
                s_per_epoch: 2.0,
                j_per_epoch: 200.0,
            },
            CapPoint {
                cap_w: 200.0,
                s_per_epoch: 1.0,
                j_per_epoch: 200.0,
            },
        ])
        .unwrap()
    }

    fn trace(vals: &[f64]) -> Trace {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        Trace::new(
            vals.iter()
                .enumerate()
                .map(|(k, &v)| (t0 + TimeDelta::seconds(10 * k as i64), GPerKwh(v)))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn oracle_runs_slow_where_the_grid_is_dirty_when_energy_is_equal() {
        // Equal energy per epoch: only timing matters. 10 epochs, budget 15 s: 5 s spare.
        let tr = trace(&[100.0, 1000.0, 100.0]);
        let s = Signal::new(&tr, tr.start());
        let o = oracle(&curve(), &s, 10.0, 0.5).unwrap();
        let u = static_cap(curve().max(), &s, 10.0).unwrap();
        // Uncapped: 10 s at 200 W on 100 g/kWh = 2000 J·100.
        assert!((u.carbon_g - 2000.0 * 100.0 / 3.6e6).abs() < 1e-9);
        // The oracle: 10 s at 200 W in slot 0 (10 epochs)… and nothing dirty.
        assert!(o.carbon_g <= u.carbon_g + 1e-12);
        assert!(o.time_s <= 15.0 + 1e-9);
        let mix = best_mix(&curve(), &s, 10.0, 0.5).unwrap();
        assert!((mix.energy_j - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn a_trace_too_short_is_an_error_not_a_number() {
        let tr = trace(&[100.0]); // holds an hour
        let s = Signal::new(&tr, tr.start());
        assert!(matches!(
            static_cap(curve().max(), &s, 4000.0),
            Err(ScheduleError::NotCovered { .. })
        ));
    }

    #[test]
    fn a_start_before_the_trace_is_not_covered() {
        let tr = trace(&[100.0, 200.0]);
        let s = Signal::new(&tr, tr.start() - TimeDelta::seconds(5));
        assert!(matches!(
            static_cap(curve().max(), &s, 1.0),
            Err(ScheduleError::NotCovered { .. })
        ));
    }

    /// The search over the plan's cuts gives what a bisection on μ gives (written here as the
    /// oracle first had it), on curves and signals from a fixed pseudo-random sequence.
    #[test]
    fn the_cut_search_matches_a_bisection_on_mu() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let bisect = |hull: &[CapPoint], slots: &[(f64, f64, f64)], epochs: f64| {
            let work = |mu: f64| work_of(hull, slots, &plan_at(hull, slots, mu));
            let (mut lo, mut hi) = (0.0, 1.0);
            while work(hi) < epochs {
                hi *= 2.0;
            }
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if work(mid) < epochs {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            (plan_at(hull, slots, lo), plan_at(hull, slots, hi))
        };
        for case in 0..40 {
            let pts: Vec<CapPoint> = (0..2 + case % 6)
                .map(|k| {
                    let s = 1.0 + rnd() * 2.0;
                    CapPoint {
                        cap_w: 100.0 + 25.0 * k as f64,
                        s_per_epoch: s,
                        j_per_epoch: s * (100.0 + 200.0 * rnd()),
                    }
                })
                .collect();
            let curve = CapCurve::new(pts).unwrap();
            let hull = curve.speed_hull();
            let vals: Vec<f64> = (0..3 + case).map(|_| 100.0 + 700.0 * rnd()).collect();
            let s = Signal::new(&trace(&vals), trace(&vals).start());
            let f_s = s.span_s() * (0.5 + 0.5 * rnd());
            let slots: Vec<(f64, f64, f64)> = s
                .slots()
                .iter()
                .filter(|x| x.0 < f_s)
                .map(|&(o, l, i)| (o, l.min(f_s - o), i))
                .collect();
            // Between the work at μ = 0 (least power everywhere) and the fastest everywhere.
            let least = work_of(&hull, &slots, &plan_at(&hull, &slots, 0.0));
            let most = f_s / hull[hull.len() - 1].s_per_epoch;
            let epochs = least + (most - least) * rnd();
            let cuts = plan_cuts(&hull, s.slots());
            let Some(o) = oracle_at(&hull, &cuts, &s, epochs, f_s) else {
                panic!("case {case}: no schedule for {epochs} epochs in {f_s} s");
            };
            let (p_lo, p_hi) = bisect(&hull, &slots, epochs);
            let (w_lo, w_hi) = (work_of(&hull, &slots, &p_lo), work_of(&hull, &slots, &p_hi));
            let th = if w_hi > w_lo {
                ((epochs - w_lo) / (w_hi - w_lo)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let carbon: f64 = slots
                .iter()
                .enumerate()
                .map(|(k, &(_, l, i))| {
                    let (a, b) = (hull[p_lo[k]], hull[p_hi[k]]);
                    l * ((1.0 - th) * a.power_w() + th * b.power_w()) * i / J_PER_KWH
                })
                .sum();
            assert!(
                (o.carbon_g - carbon).abs() <= 1e-9 * carbon.max(1e-9),
                "case {case}: cuts {} g, bisection {carbon} g",
                o.carbon_g
            );
        }
    }

    #[test]
    fn follow_matches_a_static_cap() {
        let tr = trace(&[100.0, 300.0, 200.0, 400.0]);
        let s = Signal::new(&tr, tr.start());
        let a = follow(&curve(), &s, 12.0, 3.0, "x".into(), |_, _, _| 0).unwrap();
        let b = static_cap(curve().points()[0], &s, 12.0).unwrap();
        assert!((a.carbon_g - b.carbon_g).abs() < 1e-12 && (a.time_s - 24.0).abs() < 1e-9);
    }
}
