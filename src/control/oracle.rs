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

/// Zeus's measurements (Chung et al., NSDI '23; fixtures/zeus/README.md): per workload, batch
/// size and power limit, the epoch time (s) and average power (W) on an A40 and on a V100.
const ZEUS_A40: &str = include_str!("../../fixtures/zeus/summary_power_a40.csv");
const ZEUS_V100: &str = include_str!("../../fixtures/zeus/summary_power_v100.csv");

/// The GPUs with Zeus measurements, as `--gpu` names them.
pub const ZEUS_GPUS: [&str; 2] = ["a40", "v100"];

fn zeus_table(gpu: &str) -> Result<&'static str, String> {
    match gpu.to_ascii_lowercase().as_str() {
        "a40" => Ok(ZEUS_A40),
        "v100" => Ok(ZEUS_V100),
        _ => Err(format!(
            "--gpu {gpu:?}: no measured cap curves for it; Zeus measured {} (or give \
             --profile FILE, a profile the governor saved)",
            ZEUS_GPUS.join(", ")
        )),
    }
}

/// (dataset, network, batch, optimizer, point) per row of a Zeus table.
fn zeus_rows(table: &str) -> impl Iterator<Item = ([String; 4], CapPoint)> + '_ {
    table.lines().skip(1).filter_map(|line| {
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
            [f[0], f[1], f[2], f[3]].map(str::to_owned),
            CapPoint {
                cap_w: cap,
                s_per_epoch: t,
                j_per_epoch: t * w,
            },
        ))
    })
}

/// The workloads of a Zeus table, as `dataset-network-bBATCH`, with `-optimizer` after it where
/// the table holds more than one optimizer for that dataset, network and batch.
fn zeus_names(table: &str) -> Vec<([String; 4], String)> {
    let mut keys: Vec<[String; 4]> = Vec::new();
    for (k, _) in zeus_rows(table) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let short = |k: &[String; 4]| format!("{}-{}-b{}", k[0], k[1], k[2]);
    keys.iter()
        .map(|k| {
            let twins = keys.iter().filter(|o| o[..3] == k[..3]).count();
            let name = if twins > 1 {
                format!("{}-{}", short(k), k[3])
            } else {
                short(k)
            };
            (k.clone(), name)
        })
        .collect()
}

/// The workloads Zeus measured on `gpu`.
pub fn zeus_workloads(gpu: &str) -> Result<Vec<String>, String> {
    Ok(zeus_names(zeus_table(gpu)?)
        .into_iter()
        .map(|(_, n)| n)
        .collect())
}

/// Zeus's measured curve for `workload` (e.g. `imagenet-resnet50-b128`) on `gpu` (a40, v100).
pub fn zeus_curve(gpu: &str, workload: &str) -> Result<CapCurve, String> {
    let table = zeus_table(gpu)?;
    let names = zeus_names(table);
    let Some((key, _)) = names.iter().find(|(_, n)| n.eq_ignore_ascii_case(workload)) else {
        let prefix = format!("{}-", workload.to_ascii_lowercase());
        let twins: Vec<&str> = names
            .iter()
            .map(|(_, n)| n.as_str())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        if !twins.is_empty() {
            return Err(format!(
                "workload {workload:?}: Zeus measured it on the {} with more than one optimizer; \
                 name one: {}",
                gpu.to_ascii_uppercase(),
                twins.join(", ")
            ));
        }
        return Err(format!(
            "no workload {workload:?} in Zeus's {} measurements; one of: {}",
            gpu.to_ascii_uppercase(),
            names
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let pts: Vec<CapPoint> = zeus_rows(table)
        .filter(|(k, _)| k == key)
        .map(|(_, p)| p)
        .collect();
    CapCurve::new(pts).map_err(|e| e.to_string())
}

/// Zeus's measured A40 curve for `workload`.
pub fn zeus_a40(workload: &str) -> Result<CapCurve, String> {
    zeus_curve("a40", workload)
}

/// Training examples per epoch of Zeus's datasets: the step count a simulated run reports is
/// this over the batch size. It only scales the step count the governor times its profile by
/// (a run printing more steps a second is profiled sooner); no figure depends on it otherwise.
const DATASET_EXAMPLES: [(&str, f64); 6] = [
    // ILSVRC-2012 training set (Russakovsky et al., IJCV 2015).
    ("imagenet", 1_281_167.0),
    // CIFAR-100 training set (Krizhevsky, 2009).
    ("cifar100", 50_000.0),
    // LibriSpeech's 960 h of training utterances (Panayotov et al., ICASSP 2015).
    ("librispeech", 281_241.0),
    // MovieLens 1M ratings (Harper & Konstan, ACM TiiS 2015).
    ("movielens-1m", 1_000_209.0),
    // SQuAD v1.1 training questions (Rajpurkar et al., EMNLP 2016).
    ("squad", 87_599.0),
    // Sentiment140 training tweets (Go, Bhayani & Huang, 2009).
    ("sentiment140", 1_600_000.0),
];

/// Steps per epoch of a Zeus workload named `dataset-network-bBATCH[-optimizer]` (1000 where
/// the name says neither: a profile's unit of work).
pub fn zeus_steps_per_epoch(workload: &str) -> f64 {
    let w = workload.to_ascii_lowercase();
    let batch = w
        .split('-')
        .find_map(|p| p.strip_prefix('b').and_then(|b| b.parse::<f64>().ok()))
        .filter(|b| *b >= 1.0);
    let examples = DATASET_EXAMPLES
        .iter()
        .find(|(d, _)| w.starts_with(&format!("{d}-")))
        .map(|d| d.1);
    match (examples, batch) {
        (Some(n), Some(b)) => (n / b).ceil(),
        _ => 1000.0,
    }
}

/// A governor's profile as a cap curve: a unit of its throughput (a step, where the run reports
/// steps) as the epoch, so the oracle runs on the very curve the governor decided by.
pub fn profile_curve(points: &[Point]) -> Result<CapCurve, ScheduleError> {
    CapCurve::new(
        points
            .iter()
            .map(|p| CapPoint {
                cap_w: p.cap_w,
                s_per_epoch: 1.0 / p.throughput,
                j_per_epoch: p.power_w / p.throughput,
            })
            .collect(),
    )
}

/// The oracle's carbon (g) for `work` epochs finishing within `max_slowdown` of the fastest
/// cap, knowing `signal` ahead.
pub fn oracle_carbon_g(
    curve: &CapCurve,
    signal: &Signal,
    work: f64,
    max_slowdown: f64,
) -> Result<f64, ScheduleError> {
    Ok(schedule::oracle(curve, signal, work, max_slowdown.max(0.0))?.carbon_g)
}

/// What a governed run claimed, beside the oracle on the same curve, intensity and work.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AgainstOracle {
    /// The governor's accounted carbon and time change against uncapped for the same work
    /// (fractions: the screen's and the summary's figures).
    pub d_carbon: f64,
    pub d_time: f64,
    /// The oracle's carbon change on the intensity the run saw, for the same work within the
    /// same slowdown, on the governor's profile — against the same uncapped figure as
    /// `d_carbon` (the work priced at the maximum cap at the hours it was done), so the two
    /// differ only by what the oracle did better.
    pub oracle_d_carbon: f64,
}

impl AgainstOracle {
    /// The share of the oracle's saving the governor got (None where the oracle saves nothing).
    pub fn share(&self) -> Option<f64> {
        (self.oracle_d_carbon < -1e-9).then(|| self.d_carbon / self.oracle_d_carbon)
    }
}

/// The oracle for a governed stretch: the governor's `profile`, the intensity each of its
/// accounted intervals was priced at (`seen`, in order) and what it accounted (`s`): the same
/// work (its uncapped time at the profile's highest cap) within the slowdown it took.
pub fn against_oracle(
    profile: &[Point],
    seen: &crate::engine::savings::Seen,
    s: &crate::engine::savings::Savings,
) -> Result<AgainstOracle, String> {
    let curve = profile_curve(profile).map_err(|e| format!("its profile: {e}"))?;
    let t_max = s.uncapped_time_s;
    let span = seen.span_s();
    if t_max.is_nan() || t_max <= 0.0 || span + 1e-6 < t_max {
        return Err(format!(
            "it ran faster ({span:.0} s) than its profile's uncapped time for the work ({t_max:.0} s)"
        ));
    }
    let signal = Signal::from_slots(DateTime::<Utc>::UNIX_EPOCH, seen.slots());
    let work = t_max / curve.max().s_per_epoch;
    let oracle_g =
        oracle_carbon_g(&curve, &signal, work, span / t_max - 1.0).map_err(|e| e.to_string())?;
    if s.uncapped_co2e_g.is_nan() || s.uncapped_co2e_g <= 0.0 {
        return Err("no carbon accounted (no intensity)".into());
    }
    Ok(AgainstOracle {
        d_carbon: -s.saved_pct() / 100.0,
        d_time: s.extra_time_pct() / 100.0,
        oracle_d_carbon: oracle_g / s.uncapped_co2e_g - 1.0,
    })
}

/// The governor's rule beside the oracle over a provider's forecast (the screen's `ahead` row):
/// on the governor's profile, from now to the end of the forecast, the work the forecast holds
/// at the profile's slowest cap (so every policy finishes within it).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ahead {
    /// Seconds of forecast the comparison covers (the rule's run: its time).
    pub horizon_s: f64,
    /// The rule's carbon and time change against the same work uncapped over the forecast
    /// (fractions), deciding every [`BUDGET_DECISION_S`] like the governor.
    pub d_carbon: f64,
    pub d_time: f64,
    /// The oracle's carbon change for the same work within the rule's slowdown.
    pub oracle_d_carbon: f64,
}

/// The shortest forecast compared: two decisions of the governor.
pub const MIN_AHEAD_S: f64 = 2.0 * BUDGET_DECISION_S;

/// [`Ahead`] for a governor with `cfg` and `profile`, on the forecast `slots` ((seconds,
/// g/kWh) from now, consecutive: [`crate::engine::forecast::ahead`]). The rule starts afresh
/// (a time budget counted from now), the same rule `carbontop simulate` evaluates.
pub fn ahead(
    profile: &[Point],
    cfg: &GovernorConfig,
    slots: &[(f64, f64)],
) -> Result<Ahead, String> {
    let curve = profile_curve(profile).map_err(|e| format!("its profile: {e}"))?;
    let signal = Signal::from_slots(DateTime::<Utc>::UNIX_EPOCH, slots);
    let span = signal.span_s();
    if span < MIN_AHEAD_S {
        return Err(format!(
            "the forecast holds {:.0} min from now (at least {:.0} needed)",
            span / 60.0,
            MIN_AHEAD_S / 60.0
        ));
    }
    let work = span / curve.slowest_s();
    let e = |e: ScheduleError| e.to_string();
    let base = schedule::static_cap(curve.max(), &signal, work).map_err(e)?;
    let decide: Box<dyn FnMut(f64, f64, f64) -> usize + '_> = match cfg.max_slowdown {
        Some(x) => Box::new(budget_rule(&curve, x)),
        None => Box::new(eta_rule(&curve, cfg.eta)),
    };
    let rule = schedule::follow(
        &curve,
        &signal,
        work,
        BUDGET_DECISION_S,
        String::new(),
        decide,
    )
    .map_err(e)?;
    let x = rule.slowdown(&base).max(0.0);
    let oracle = schedule::oracle(&curve, &signal, work, x).map_err(e)?;
    Ok(Ahead {
        horizon_s: rule.time_s,
        d_carbon: rule.change(&base).2,
        d_time: rule.slowdown(&base),
        oracle_d_carbon: oracle.change(&base).2,
    })
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
    /// A governor's row: the oracle's carbon change at this row's own slowdown (mean over the
    /// starts), and the seconds its profile took (runs through the Session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_same: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_s: Option<f64>,
    /// What the profile cost against running its work uncapped: the time and carbon it added,
    /// as fractions of the uncapped run's (part of `d_time` and `d_carbon`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_d_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_d_carbon: Option<f64>,
    /// The oracle's carbon change at this row's slowdown less the time its profile added:
    /// what the governor's own decisions are to be compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_after_profile: Option<f64>,
    /// What the governor itself said (the screen's and the summary's figures): its carbon and
    /// time change against the same work uncapped, since its profile (fractions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_d_carbon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_d_time: Option<f64>,
    /// Beside that claim (the summary's line): the oracle's carbon change on the intensity the
    /// governor's accounted stretch saw, for its work within its slowdown, on its profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_oracle_d_carbon: Option<f64>,
}

/// A governor run elsewhere (through the Session): its outcome, and what its profile took.
#[derive(Debug, Clone, PartialEq)]
pub struct Governed {
    pub outcome: Outcome,
    /// Seconds from the start to the end of its first profile, the carbon (g) by then, and
    /// the work (epochs) done by then.
    pub profile_s: f64,
    pub profile_g: f64,
    pub profile_epochs: f64,
    /// The profile it measured (None where it reused one, or could not tell caps apart).
    pub measured: Option<super::profile::Saved>,
    /// What the governor itself claimed at the end (the screen's and the summary's figures):
    /// its carbon and time against uncapped for the same work since its profile.
    pub claimed: Option<crate::engine::savings::Savings>,
    /// The same claim beside the oracle on the intensity the run saw (the summary's line), or
    /// why there is none.
    pub against: Option<Result<AgainstOracle, String>>,
}

/// One start's outcome of a policy, with the oracle at its slowdown for governors.
struct Run {
    outcome: Outcome,
    oracle_same: Option<f64>,
    /// A profile's (seconds, added time, added carbon), fractions of the uncapped run's, and
    /// the oracle at the slowdown less the profile's.
    profile: Option<(f64, f64, f64)>,
    oracle_after_profile: Option<f64>,
    claimed: Option<(f64, f64)>,
    claimed_oracle: Option<f64>,
}

/// What a profile added against doing its work uncapped from the start: (seconds, added
/// time, added carbon), the last two as fractions of the uncapped run's.
fn profile_cost(
    curve: &CapCurve,
    signal: &Signal,
    g: &Governed,
    base: &Outcome,
) -> (f64, f64, f64) {
    let max = curve.max();
    let t_max = g.profile_epochs * max.s_per_epoch;
    let c_max = max.power_w() * signal.integral(0.0, t_max) / 3.6e6;
    (
        g.profile_s,
        (g.profile_s - t_max) / base.time_s,
        (g.profile_g - c_max) / base.carbon_g,
    )
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

/// One start: every policy (uncapped first), then (oracle, efficiency at its slowdown).
#[allow(clippy::too_many_arguments)]
fn one_start(
    curve: &CapCurve,
    signal: &Signal,
    epochs: f64,
    x: f64,
    eta: f64,
    statics: &[CapPoint],
    extra: &mut dyn FnMut(&Signal) -> Result<Vec<Governed>, String>,
) -> Result<(Vec<Run>, [Outcome; 2]), ScheduleError> {
    let mut out = vec![schedule::static_cap(curve.max(), signal, epochs)?];
    out[0].policy = format!("uncapped ({:.0} W)", curve.max().cap_w);
    for p in statics {
        out.push(schedule::static_cap(*p, signal, epochs)?);
    }
    out.push(schedule::best_static(curve, signal, epochs, x)?);
    out.push(schedule::best_mix(curve, signal, epochs, x)?);
    let mut govs = vec![
        schedule::follow(
            curve,
            signal,
            epochs,
            BUDGET_DECISION_S,
            format!("governor η={eta}"),
            eta_rule(curve, eta),
        )?,
        schedule::follow(
            curve,
            signal,
            epochs,
            BUDGET_DECISION_S,
            format!("governor ≤{:+.1}% (time budget)", x * 100.0),
            budget_rule(curve, x),
        )?,
    ];
    let oracle = schedule::oracle(curve, signal, epochs, x)?;
    let eff = schedule::best_mix(curve, signal, epochs, oracle.slowdown(&out[0]))?;
    let mut runs: Vec<Run> = out
        .into_iter()
        .map(|outcome| Run {
            outcome,
            oracle_same: None,
            profile: None,
            oracle_after_profile: None,
            claimed: None,
            claimed_oracle: None,
        })
        .collect();
    let base = runs[0].outcome.clone();
    let session = extra(signal).map_err(ScheduleError::Policy)?;
    let mut profiles = vec![(None, None); govs.len()];
    for g in session {
        let claimed = g
            .claimed
            .filter(|c| c.uncapped_co2e_g > 0.0)
            .map(|c| (-c.saved_pct() / 100.0, c.extra_time_pct() / 100.0));
        let against = g.against.as_ref().and_then(|a| a.as_ref().ok());
        let claimed = claimed.map(|c| (c, against.map(|a| a.oracle_d_carbon)));
        profiles.push((Some(profile_cost(curve, signal, &g, &base)), claimed));
        govs.push(g.outcome);
    }
    for (g, (profile, claimed)) in govs.into_iter().zip(profiles) {
        // The oracle at the governor's own slowdown (never below the fastest run).
        let same = schedule::oracle(curve, signal, epochs, g.slowdown(&base).max(0.0))?;
        let after = match profile {
            Some((_, pt, _)) => {
                let x = (g.slowdown(&base) - pt).max(0.0);
                Some(schedule::oracle(curve, signal, epochs, x)?.change(&base).2)
            }
            None => None,
        };
        runs.push(Run {
            oracle_same: Some(same.change(&base).2),
            outcome: g,
            profile,
            oracle_after_profile: after,
            claimed: claimed.map(|c| c.0),
            claimed_oracle: claimed.and_then(|c| c.1),
        });
    }
    runs.push(Run {
        outcome: oracle.clone(),
        oracle_same: None,
        profile: None,
        oracle_after_profile: None,
        claimed: None,
        claimed_oracle: None,
    });
    Ok((runs, [oracle, eff]))
}

/// The mean of each row over the starts.
fn mean_rows(per_start: &[Vec<Run>]) -> Vec<Row> {
    let n = per_start.len().max(1) as f64;
    let Some(first) = per_start.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|k| {
            let mut r = Row {
                policy: first[k].outcome.policy.clone(),
                time_s: 0.0,
                energy_j: 0.0,
                carbon_g: 0.0,
                d_time: 0.0,
                d_energy: 0.0,
                d_carbon: 0.0,
                oracle_same: first[k].oracle_same.map(|_| 0.0),
                profile_s: first[k].profile.map(|_| 0.0),
                profile_d_time: first[k].profile.map(|_| 0.0),
                profile_d_carbon: first[k].profile.map(|_| 0.0),
                oracle_after_profile: first[k].oracle_after_profile.map(|_| 0.0),
                claimed_d_carbon: first[k].claimed.map(|_| 0.0),
                claimed_d_time: first[k].claimed.map(|_| 0.0),
                claimed_oracle_d_carbon: first[k].claimed_oracle.map(|_| 0.0),
            };
            for runs in per_start {
                let (o, base) = (&runs[k].outcome, &runs[0].outcome);
                let (dt, de, dc) = o.change(base);
                r.time_s += o.time_s / n;
                r.energy_j += o.energy_j / n;
                r.carbon_g += o.carbon_g / n;
                r.d_time += dt / n;
                r.d_energy += de / n;
                r.d_carbon += dc / n;
                if let (Some(a), Some(b)) = (r.oracle_same.as_mut(), runs[k].oracle_same) {
                    *a += b / n;
                }
                if let (Some(a), Some(b)) = (
                    r.oracle_after_profile.as_mut(),
                    runs[k].oracle_after_profile,
                ) {
                    *a += b / n;
                }
                if let (Some(a), Some(b)) =
                    (r.claimed_oracle_d_carbon.as_mut(), runs[k].claimed_oracle)
                {
                    *a += b / n;
                }
                if let Some((c, t)) = runs[k].claimed {
                    for (a, b) in [(&mut r.claimed_d_carbon, c), (&mut r.claimed_d_time, t)] {
                        if let Some(a) = a.as_mut() {
                            *a += b / n;
                        }
                    }
                }
                if let Some((ps, pt, pc)) = runs[k].profile {
                    for (a, b) in [
                        (&mut r.profile_s, ps),
                        (&mut r.profile_d_time, pt),
                        (&mut r.profile_d_carbon, pc),
                    ] {
                        if let Some(a) = a.as_mut() {
                            *a += b / n;
                        }
                    }
                }
            }
            r
        })
        .collect()
}

/// Runs every policy from each start and averages; `extra` adds governors run elsewhere
/// (through the Session) from each start's signal.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    curve: &CapCurve,
    trace: &Trace,
    starts: &[DateTime<Utc>],
    epochs: f64,
    max_slowdown: f64,
    eta: f64,
    extra: &mut dyn FnMut(&Signal) -> Result<Vec<Governed>, String>,
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
    let (mut oracle, mut eff) = (0.0, 0.0);
    let mut per_start = Vec::with_capacity(signals.len());
    for sig in &signals {
        let (runs, [o, e]) = one_start(curve, sig, epochs, max_slowdown, eta, &statics, extra)?;
        let base = &runs[0].outcome;
        oracle += o.change(base).2;
        eff += e.change(base).2;
        per_start.push(runs);
    }
    let n = signals.len().max(1) as f64;
    let rows = mean_rows(&per_start);
    let oracle_at_governor = rows
        .iter()
        .find(|r| r.policy.contains("(time budget)"))
        .and_then(|r| r.oracle_same)
        .unwrap_or(f64::NAN);
    Ok(Evaluation {
        epochs,
        max_slowdown,
        starts: starts.to_vec(),
        rows,
        oracle: oracle / n,
        efficiency: eff / n,
        timing: (oracle - eff) / n,
        oracle_at_governor,
        not_covered,
        first: per_start
            .first()
            .map(|runs| {
                runs.iter()
                    .map(|r| (r.outcome.policy.clone(), r.outcome.caps.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        first_signal: signals
            .first()
            .map(|s| s.slots().to_vec())
            .unwrap_or_default(),
    })
}
