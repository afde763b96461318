//! The governor against its limit (DESIGN.md §5): on a measured cap curve and a grid trace,
//! from several start times, a run of N epochs under each policy — uncapped, each static cap,
//! the best static cap and the best fixed mix of two caps within the slowdown budget, the
//! governor's two decision rules (Zeus's η cost, and the time budget) — and the oracle
//! ([`crate::engine::schedule::oracle`]), with the oracle's saving split into efficiency (the
//! best fixed mix at the oracle's own slowdown) and timing (the rest). Pure: no clock, no I/O.
//!
//! The governor's rules are evaluated on the measured curve itself, deciding every
//! [`BUDGET_DECISION_S`] seconds (and at each slot boundary): what the governor chooses once its
//! profile is the curve, without the minutes a profile takes.

use super::governor::{BUDGET_DECISION_S, Budget, Governor, GovernorConfig, Point};
use crate::engine::reprice::Trace;
use crate::engine::schedule::{self, CapCurve, CapPoint, Outcome, ScheduleError, Signal};
use chrono::{DateTime, TimeDelta, Utc};

/// Zeus's A40 measurements (Chung et al., NSDI '23; fixtures/zeus/README.md).
const ZEUS_A40: &str = include_str!("../../fixtures/zeus/summary_power_a40.csv");

/// The workloads in Zeus's A40 table, as `dataset-network-bBATCH`.
pub fn zeus_workloads() -> Vec<String> {
    let mut names: Vec<String> = zeus_rows().map(|(n, _)| n).collect();
    names.dedup();
    names
}

fn zeus_rows() -> impl Iterator<Item = (String, CapPoint)> {
    ZEUS_A40.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 {
            return None;
        }
        let (cap, t, w) = (
            f[4].parse::<f64>().ok()?,
            f[5].parse::<f64>().ok()?,
            f[6].parse::<f64>().ok()?,
        );
        Some((
            format!("{}-{}-b{}", f[0], f[1], f[2]),
            CapPoint {
                cap_w: cap,
                s_per_epoch: t,
                j_per_epoch: t * w,
            },
        ))
    })
}

/// Zeus's measured A40 curve for `workload` (e.g. `imagenet-resnet50-b128`).
pub fn zeus_a40(workload: &str) -> Result<CapCurve, String> {
    let pts: Vec<CapPoint> = zeus_rows()
        .filter(|(n, _)| n.eq_ignore_ascii_case(workload))
        .map(|(_, p)| p)
        .collect();
    if pts.is_empty() {
        return Err(format!(
            "no workload {workload:?} in Zeus's A40 measurements; one of: {}",
            zeus_workloads().join(", ")
        ));
    }
    CapCurve::new(pts).map_err(|e| e.to_string())
}

/// (offset s, length s, value) spans over time.
pub type Spans = Vec<(f64, f64, f64)>;

/// One policy over all starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub policy: String,
    /// Means over the starts.
    pub time_s: f64,
    pub energy_j: f64,
    pub carbon_g: f64,
    /// Means over the starts of the change against uncapped at the same start (fractions).
    pub d_time: f64,
    pub d_energy: f64,
    pub d_carbon: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub epochs: f64,
    pub max_slowdown: f64,
    #[serde(serialize_with = "rfc3339")]
    pub starts: Vec<DateTime<Utc>>,
    pub rows: Vec<Row>,
    /// The oracle's carbon change, and its parts: efficiency (the best fixed mix at the
    /// oracle's slowdown) and timing (the rest), means over the starts (fractions; savings
    /// are negative).
    pub oracle: f64,
    pub efficiency: f64,
    pub timing: f64,
    /// The oracle at the time-budget governor's own slowdown, for comparison.
    pub oracle_at_governor: f64,
    /// Static caps left out because the trace does not cover their run from every start.
    pub not_covered: Vec<String>,
    /// Start 0's schedules (for plots): (policy, [(offset s, length s, cap W)]) and the signal
    /// (offset s, length s, g/kWh).
    #[serde(skip)]
    pub first: Vec<(String, Spans)>,
    #[serde(skip)]
    pub first_signal: Vec<(f64, f64, f64)>,
}

fn rfc3339<S: serde::Serializer>(v: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(DateTime::to_rfc3339))
}

/// `k` starts spread evenly over the times from which the trace covers `need_s`.
pub fn spread_starts(trace: &Trace, need_s: f64, k: usize) -> Vec<DateTime<Utc>> {
    let span = (trace.end() - trace.start()).num_milliseconds() as f64 / 1e3 - need_s;
    if span < 0.0 || k == 0 {
        return Vec::new();
    }
    (0..k)
        .map(|j| {
            let f = if k > 1 {
                j as f64 / (k - 1) as f64
            } else {
                0.0
            };
            trace.start() + TimeDelta::milliseconds((f * span * 1e3) as i64)
        })
        .collect()
}

/// The governor's η rule (Zeus's cost) on the curve: per decision the cap of least cost.
fn eta_rule(curve: &CapCurve, eta: f64) -> impl FnMut(f64, f64, f64) -> usize + '_ {
    let g = Governor::new(
        GovernorConfig {
            eta,
            ..GovernorConfig::default()
        },
        0.0,
        1.0,
    );
    let pts: Vec<Point> = curve
        .points()
        .iter()
        .map(|p| Point {
            cap_w: p.cap_w,
            power_w: p.power_w(),
            throughput: 1.0 / p.s_per_epoch,
            rel_err: 0.0,
        })
        .collect();
    let p_max = pts.iter().map(|p| p.power_w).fold(0.0, f64::max);
    move |_, _, i| {
        let mut best = pts.len() - 1;
        for (k, p) in pts.iter().enumerate() {
            if g.cost(p, i, p_max) < g.cost(&pts[best], i, p_max) {
                best = k;
            }
        }
        best
    }
}

/// The time-budget rule on the curve.
fn budget_rule(curve: &CapCurve, max_slowdown: f64) -> impl FnMut(f64, f64, f64) -> usize + '_ {
    let mut b = Budget::new(max_slowdown);
    let pts: Vec<(f64, f64)> = curve
        .points()
        .iter()
        .map(|p| (p.power_w(), 1.0 / p.s_per_epoch))
        .collect();
    let s_max = curve.max().s_per_epoch;
    move |t, done, i| b.choose(&pts, i, t, done * s_max)
}

/// One start: every policy (uncapped first), then (oracle, efficiency at its slowdown, oracle
/// at the budget governor's slowdown).
fn one_start(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    x: f64,
    eta: f64,
    statics: &[CapPoint],
) -> Result<(Vec<Outcome>, [Outcome; 3]), ScheduleError> {
    let mut out = vec![schedule::static_cap(curve.max(), signal, epochs)?];
    out[0].policy = format!("uncapped ({:.0} W)", curve.max().cap_w);
    for p in statics {
        out.push(schedule::static_cap(*p, signal, epochs)?);
    }
    out.push(schedule::best_static(curve, signal, epochs, x)?);
    out.push(schedule::best_mix(curve, signal, epochs, x)?);
    out.push(schedule::follow(
        curve,
        signal,
        epochs,
        BUDGET_DECISION_S,
        format!("governor η={eta}"),
        eta_rule(curve, eta),
    )?);
    let gov = schedule::follow(
        curve,
        signal,
        epochs,
        BUDGET_DECISION_S,
        format!("governor ≤{:+.1}% (time budget)", x * 100.0),
        budget_rule(curve, x),
    )?;
    let oracle = schedule::oracle(curve, signal, epochs, x)?;
    let eff = schedule::best_mix(curve, signal, epochs, oracle.slowdown(&out[0]))?;
    let at_gov = schedule::oracle(curve, signal, epochs, gov.slowdown(&out[0]))?;
    out.push(gov);
    out.push(oracle.clone());
    Ok((out, [oracle, eff, at_gov]))
}

/// Runs every policy from each start and averages.
pub fn evaluate(
    curve: &CapCurve,
    trace: &Trace,
    starts: &[DateTime<Utc>],
    epochs: f64,
    max_slowdown: f64,
    eta: f64,
) -> Result<Evaluation, ScheduleError> {
    let signals: Vec<Signal> = starts.iter().map(|&s| Signal::new(trace, s)).collect();
    let covered = |p: &CapPoint| {
        signals
            .iter()
            .all(|s| s.span_s() + 1e-6 >= epochs * p.s_per_epoch)
    };
    let statics: Vec<CapPoint> = curve.points().iter().copied().filter(covered).collect();
    let not_covered = curve
        .points()
        .iter()
        .filter(|p| !covered(p))
        .map(|p| format!("static {:.0} W", p.cap_w))
        .collect();
    let mut sums: Vec<Row> = Vec::new();
    let (mut oracle, mut eff, mut at_gov) = (0.0, 0.0, 0.0);
    let mut first = Vec::new();
    for sig in &signals {
        let (outs, [o, e, g]) = one_start(curve, sig, epochs, max_slowdown, eta, &statics)?;
        let base = outs[0].clone();
        oracle += o.change(&base).2;
        eff += e.change(&base).2;
        at_gov += g.change(&base).2;
        if first.is_empty() {
            first = outs
                .iter()
                .map(|o| (o.policy.clone(), o.caps.clone()))
                .collect();
        }
        for (k, o) in outs.iter().enumerate() {
            let (dt, de, dc) = o.change(&base);
            if sums.len() <= k {
                sums.push(Row {
                    policy: o.policy.clone(),
                    time_s: 0.0,
                    energy_j: 0.0,
                    carbon_g: 0.0,
                    d_time: 0.0,
                    d_energy: 0.0,
                    d_carbon: 0.0,
                });
            }
            let r = &mut sums[k];
            (r.time_s, r.energy_j, r.carbon_g) = (
                r.time_s + o.time_s,
                r.energy_j + o.energy_j,
                r.carbon_g + o.carbon_g,
            );
            (r.d_time, r.d_energy, r.d_carbon) = (r.d_time + dt, r.d_energy + de, r.d_carbon + dc);
        }
    }
    let n = signals.len().max(1) as f64;
    for r in &mut sums {
        for v in [
            &mut r.time_s,
            &mut r.energy_j,
            &mut r.carbon_g,
            &mut r.d_time,
            &mut r.d_energy,
            &mut r.d_carbon,
        ] {
            *v /= n;
        }
    }
    Ok(Evaluation {
        epochs,
        max_slowdown,
        starts: starts.to_vec(),
        rows: sums,
        oracle: oracle / n,
        efficiency: eff / n,
        timing: (oracle - eff) / n,
        oracle_at_governor: at_gov / n,
        not_covered,
        first,
        first_signal: signals
            .first()
            .map(|s| s.slots().to_vec())
            .unwrap_or_default(),
    })
}
