//! The screen's view model: what the Ledger's ticks say, folded into the figures the panels
//! show. Built only from ticks (never from the wall clock), so a replay renders the same screen
//! every time and snapshots are exact.

use crate::engine::constants::{EmbodiedKg, car_km, tree_days};
use crate::engine::forecast::{self, Greener, Slot};
use crate::engine::series::{Agg, History};
use crate::engine::{Tick, Totals};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;

/// Lines of the command's output the pane keeps (the whole log goes to output.log).
pub const OUTPUT_LINES: usize = 1000;
/// Longest output line kept for the pane, in bytes.
const OUTPUT_LINE_MAX: usize = 1000;

/// Columns of the history.
pub mod col {
    pub const TOTAL: usize = 0;
    pub const GPU: usize = 1;
    pub const CPU: usize = 2;
    pub const MEM: usize = 3;
    pub const NET: usize = 4;
    pub const INTENSITY: usize = 5;
    pub const CO2E: usize = 6;
    pub const ENERGY: usize = 7;
    pub const ACCURACY: usize = 8;
    pub const LOSS: usize = 9;
    /// Per-GPU power columns start here.
    pub const GPU0: usize = 10;
}

/// What the screen is watching.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `run -- CMD` or `watch`: live.
    Live,
    /// `replay FILE`.
    Replay {
        speed: Option<f64>,
        playing: bool,
        ended: bool,
    },
}

/// Facts fixed at start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// e.g. "run `python3 train.py`", "watch", "replay a.csv".
    pub title: String,
    /// Grid zone and where its intensity comes from (e.g. "WORLD · table (Ember 2022)").
    pub zone: String,
    pub pue: f64,
    pub cpu_estimate: bool,
    /// GPU names, one per GPU column group.
    pub gpus: Vec<String>,
    /// What is happening to power caps ("caps untouched" until the governor exists).
    pub cap_mode: String,
    /// Where samples.csv goes, if anywhere.
    pub samples_path: Option<String>,
    pub mode: Mode,
    /// Where the run is headed (`--epochs`, `--target-accuracy`), for the forecast to the end.
    pub target: Option<Target>,
    /// `--target-metric NAME`: a metric of the user's whose gain is priced like accuracy's.
    pub target_metric: Option<String>,
    /// The hardware's embodied emissions (TE) behind `embodied_co2e_g`, with the published
    /// range; `None` where it is not known (a replayed recording, the aggregator).
    pub embodied: Option<EmbodiedKg>,
}

/// The end of the run, as the user gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Epochs(f64),
    /// Percent.
    Accuracy(f64),
}

/// The forecast to the end of the run at the recent rate (DESIGN.md §5 "Forecast").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToGo {
    pub secs: f64,
    pub energy_kwh: f64,
    pub co2e_g: f64,
    /// Share of the time the provider's intensity forecast covered (the rest at today's value).
    pub forecast_covered: f64,
}

/// Epoch or milestone changes the rate is measured over (the latest ones).
const RATE_MARKS: usize = 5;

/// The first value of a progress figure (accuracy, loss, a named metric), with the cumulative
/// figures at that moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressStart {
    /// The figure's value (named for accuracy, the first use).
    pub accuracy: f64,
    pub co2e_g: f64,
    pub energy_kwh: f64,
}

impl ProgressStart {
    /// Sets `slot` at the first tick where the figure has a value.
    fn mark(slot: &mut Option<Self>, value: Option<f64>, t: &Tick) {
        if slot.is_none()
            && let Some(v) = value
        {
            *slot = Some(Self {
                accuracy: v,
                co2e_g: t.co2e_g,
                energy_kwh: t.energy_kwh,
            });
        }
    }
}

/// The moment a whole accuracy point was first reached (DESIGN.md §5 milestone table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Milestone {
    /// The whole percent reached (e.g. 42 for the first tick at ≥ 42%).
    pub point: u32,
    pub elapsed_s: f64,
    pub energy_kwh: f64,
    pub co2e_g: f64,
}

/// A change of the summed GPU power cap between two ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapChange {
    pub elapsed_s: f64,
    pub old_w: Option<f64>,
    pub new_w: Option<f64>,
}

/// What a live grid provider says beyond the tick's own intensity: its forecast, and faults.
#[derive(Debug, Clone, PartialEq)]
pub struct GridInfo {
    /// The provider's `intensity_source` label (`uk`, `emaps`, `watttime-moer`).
    pub label: String,
    /// The current fault, while there is one.
    pub failure: Option<String>,
    /// Extra facts (WattTime's percentile).
    pub detail: Option<String>,
    /// The current slot and the forecast.
    pub slots: Vec<Slot>,
    /// How far ahead the hint and the carbon forecast look: the run's remaining time when
    /// known (--duration), else an hour.
    pub window: TimeDelta,
    /// The greenest window of that length in the forecast, if greener than now.
    pub greener: Option<Greener>,
}

impl GridInfo {
    /// A live provider's latest state; the greener window is worked out here, once per new
    /// answer, not on every frame.
    pub fn new(
        label: String,
        failure: Option<String>,
        detail: Option<String>,
        slots: Vec<Slot>,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Self {
        let greener = forecast::greener_window(&slots, now, GREENER_HORIZON, window);
        Self {
            label,
            failure,
            detail,
            slots,
            window,
            greener,
        }
    }

    /// One line for the status line and the summary, e.g. "greener window Tue 03:00–04:00 UTC
    /// at 110 g/kWh, 56% below now (uk forecast)".
    pub fn hint(&self) -> Option<String> {
        let w = self.greener?;
        Some(format!(
            "greener window {}–{} UTC at {:.0} g/kWh, {:.0}% below now ({} forecast)",
            w.start.format("%a %H:%M"),
            w.end.format("%H:%M"),
            w.mean_g,
            w.saving_pct(),
            self.label
        ))
    }
}

/// Horizon of the greener-window hint: the longest forecast the providers give (GB: 48 h).
pub const GREENER_HORIZON: TimeDelta = TimeDelta::hours(48);

/// GPU power and training speed over a stretch of ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Mean summed GPU power (W).
    pub gpu_w: f64,
    /// Steps per second, when the run reports steps.
    pub steps_per_s: Option<f64>,
}

impl Rates {
    /// From (elapsed, GPU W, step) ticks; None without power.
    fn of<'a>(ticks: impl Iterator<Item = &'a (f64, Option<f64>, Option<u64>)>) -> Option<Self> {
        let (mut sum, mut n) = (0.0, 0u32);
        // Timed between the ticks where the count changed, so a coarse counter (once an
        // epoch, or whole steps at a fast tick) is not cut at the window's edges.
        let mut first: Option<(f64, u64)> = None;
        let mut last: Option<(f64, u64)> = None;
        let mut prev: Option<u64> = None;
        for &(t, w, step) in ticks {
            if let Some(w) = w {
                sum += w;
                n += 1;
            }
            if let Some(s) = step {
                if prev.is_some_and(|p| p != s) {
                    first.get_or_insert((t, s));
                    last = Some((t, s));
                }
                prev = Some(s);
            }
        }
        let steps_per_s = match (first, last) {
            (Some(a), Some(b)) if b.0 > a.0 && b.1 >= a.1 => Some((b.1 - a.1) as f64 / (b.0 - a.0)),
            _ => None,
        };
        (n > 0).then(|| Self {
            gpu_w: sum / f64::from(n),
            steps_per_s,
        })
    }
}

/// What the last change of the GPUs' cap did: power and speed over the 30 s before it and
/// since it settled (DESIGN.md §1: "sees the throughput and gCO2e/step change").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapEffect {
    pub elapsed_s: f64,
    pub old_w: Option<f64>,
    pub new_w: Option<f64>,
    pub before: Rates,
    pub after: Option<Rates>,
}

impl CapEffect {
    /// (Δ power, Δ speed, Δ energy per step), relative, once measured after the change.
    pub fn deltas(&self) -> Option<(f64, Option<f64>, Option<f64>)> {
        let a = self.after?;
        let b = self.before;
        if b.gpu_w <= 0.0 {
            return None;
        }
        let dp = a.gpu_w / b.gpu_w - 1.0;
        let (ds, de) = match (a.steps_per_s, b.steps_per_s) {
            (Some(x), Some(y)) if x > 0.0 && y > 0.0 => {
                (Some(x / y - 1.0), Some((a.gpu_w / x) / (b.gpu_w / y) - 1.0))
            }
            _ => (None, None),
        };
        Some((dp, ds, de))
    }
}

/// Seconds of ticks before a cap change that make its "before", and after it that are skipped
/// while the GPU settles.
const EFFECT_BEFORE_S: f64 = 30.0;
const EFFECT_SETTLE_S: f64 = 2.0;

/// Cap changes kept for the plots (a governor changing caps all week must not grow memory).
const CAP_CHANGES_KEPT: usize = 1000;

/// Everything the panels show, folded from ticks.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub info: RunInfo,
    pub history: History,
    pub last: Option<Tick>,
    pub totals: Totals,
    /// The current intensity value and the elapsed time at which it took that value.
    pub intensity_since: Option<(f64, f64)>,
    pub progress_start: Option<ProgressStart>,
    /// The command's latest output lines (bounded).
    pub output: VecDeque<String>,
    /// Lines the pane dropped (they are still in output.log).
    pub output_dropped: u64,
    /// Standing notices (e.g. "CPU power is an estimate …").
    pub notices: Vec<String>,
    /// The latest warning and the elapsed time it came at.
    pub warning: Option<(String, f64)>,
    /// Why the run ended, once it has.
    pub ended: Option<String>,
    /// Each whole accuracy point, when first reached (at most 101).
    pub milestones: Vec<Milestone>,
    /// Changes of the GPUs' summed cap (the first CAP_CHANGES_KEPT).
    pub cap_changes: Vec<CapChange>,
    /// A live grid provider's forecast and state (None for the table, fixed values, replay).
    pub grid: Option<GridInfo>,
    /// What the last cap change did.
    pub cap_effect: Option<CapEffect>,
    /// (elapsed, GPU W, step) of the last EFFECT_BEFORE_S seconds, for `cap_effect`.
    recent: VecDeque<(f64, Option<f64>, Option<u64>)>,
    /// The governor's reason or the cap side's latest word (set by the app).
    pub cap_note: Option<String>,
    /// (elapsed, epoch) where the epoch first took each value (the latest RATE_MARKS).
    epoch_marks: VecDeque<(f64, f64)>,
    /// The first loss seen with the cumulative figures then, for the cost per 0.01 of loss.
    pub loss_start: Option<ProgressStart>,
    /// The first value of the `--target-metric`, likewise.
    pub metric_start: Option<ProgressStart>,
}

impl Dashboard {
    pub fn new(info: RunInfo) -> Self {
        let mut aggs = vec![Agg::Mean; col::GPU0 + info.gpus.len()];
        for c in [col::CO2E, col::ENERGY, col::ACCURACY, col::LOSS] {
            aggs[c] = Agg::Last;
        }
        Self {
            info,
            history: History::new(aggs),
            last: None,
            totals: Totals::default(),
            intensity_since: None,
            progress_start: None,
            output: VecDeque::new(),
            output_dropped: 0,
            notices: Vec::new(),
            warning: None,
            ended: None,
            milestones: Vec::new(),
            cap_changes: Vec::new(),
            grid: None,
            cap_effect: None,
            recent: VecDeque::new(),
            cap_note: None,
            epoch_marks: VecDeque::new(),
            loss_start: None,
            metric_start: None,
        }
    }

    /// gCO2e expected over the grid window at the present facility power, from the forecast
    /// (the present intensity beyond it), and the share the forecast covered.
    pub fn forecast_co2e_g(&self) -> Option<(f64, f64)> {
        let g = self.grid.as_ref()?;
        let t = self.last.as_ref()?;
        let fallback = t.intensity_g_per_kwh?;
        let w = self.facility_power_w()?;
        Some(forecast::expected_co2e_g(
            &g.slots,
            fallback,
            t.timestamp,
            g.window,
            w,
        ))
    }

    /// Folds one tick (and the Ledger's totals after it) in.
    pub fn push(&mut self, t: &Tick, totals: Totals) {
        let f = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let mut vals = Vec::with_capacity(self.history.columns());
        vals.extend([
            f(t.total_power_w),
            f(t.gpu_power_w),
            f(t.cpu_power_w),
            f(t.mem_power_w),
            f(t.net_power_w),
            f(t.intensity_g_per_kwh),
            t.co2e_g,
            t.energy_kwh,
            f(t.progress.accuracy),
            f(t.progress.loss),
        ]);
        for i in 0..self.info.gpus.len() {
            vals.push(f(t.gpus.get(i).and_then(|g| g.power_w)));
        }
        self.history.push(t.elapsed_s, &vals);

        match (t.intensity_g_per_kwh, self.intensity_since) {
            (Some(i), Some((prev, _))) if i == prev => {}
            (Some(i), _) => self.intensity_since = Some((i, t.elapsed_s)),
            (None, _) => self.intensity_since = None,
        }
        ProgressStart::mark(&mut self.progress_start, t.progress.accuracy, t);
        if let Some(a) = t.progress.accuracy
            && a.is_finite()
        {
            let reached = a.clamp(0.0, 100.0).floor() as u32;
            let next = self.milestones.last().map_or(0, |m| m.point + 1);
            // Only points above the first accuracy seen count as reached during the run.
            let first = self.progress_start.map_or(0.0, |s| s.accuracy).floor() as u32;
            for point in next.max(first)..=reached {
                self.milestones.push(Milestone {
                    point,
                    elapsed_s: t.elapsed_s,
                    energy_kwh: t.energy_kwh,
                    co2e_g: t.co2e_g,
                });
            }
        }
        if let Some(prev) = &self.last
            && prev.power_cap_w != t.power_cap_w
        {
            if self.cap_changes.len() < CAP_CHANGES_KEPT {
                self.cap_changes.push(CapChange {
                    elapsed_s: t.elapsed_s,
                    old_w: prev.power_cap_w,
                    new_w: t.power_cap_w,
                });
            }
            // The tick that shows the new cap closes an interval still at the old one.
            self.cap_effect = Rates::of(self.recent.iter()).map(|before| CapEffect {
                elapsed_s: t.elapsed_s,
                old_w: prev.power_cap_w,
                new_w: t.power_cap_w,
                before,
                after: None,
            });
        } else if let Some(e) = self.cap_effect.as_mut() {
            let from = e.elapsed_s + EFFECT_SETTLE_S;
            if t.elapsed_s >= from + EFFECT_SETTLE_S {
                e.after = Rates::of(self.recent.iter().filter(|r| r.0 > from));
            }
        }
        self.recent
            .push_back((t.elapsed_s, t.gpu_power_w, t.progress.step));
        while self
            .recent
            .front()
            .is_some_and(|r| r.0 < t.elapsed_s - EFFECT_BEFORE_S)
        {
            self.recent.pop_front();
        }
        if let Some(e) = t.progress.epoch
            && self.epoch_marks.back().is_none_or(|m| m.1 != e)
        {
            self.epoch_marks.push_back((t.elapsed_s, e));
            if self.epoch_marks.len() > RATE_MARKS {
                self.epoch_marks.pop_front();
            }
        }
        ProgressStart::mark(&mut self.loss_start, t.progress.loss, t);
        let metric = self
            .info
            .target_metric
            .as_deref()
            .and_then(|m| t.progress.metric(m));
        ProgressStart::mark(&mut self.metric_start, metric, t);
        self.totals = totals;
        self.last = Some(t.clone());
    }

    /// The `--target-metric`'s gain since its first value and the gCO2e per unit of it: per
    /// 0.01 for metrics on a 0–1 scale (F1, AUC), per 1 otherwise (BLEU, mAP in percent).
    pub fn per_metric_unit(&self) -> Option<(String, f64, f64, f64)> {
        let name = self.info.target_metric.clone()?;
        let s = self.metric_start?;
        let t = self.last.as_ref()?;
        let v = t.progress.metric(&name)?;
        let gained = v - s.accuracy;
        let unit = if v.abs() <= 1.0 && s.accuracy.abs() <= 1.0 {
            0.01
        } else {
            1.0
        };
        (gained > 0.0).then(|| (name, gained, unit, (t.co2e_g - s.co2e_g) / (gained / unit)))
    }

    /// gCO2e per 0.01 of loss reduction since the first loss seen, for runs that report no
    /// accuracy (DESIGN.md §5, the per-point cost for loss).
    pub fn per_loss_hundredth(&self) -> Option<f64> {
        let s = self.loss_start?;
        let t = self.last.as_ref()?;
        let drop = s.accuracy - t.progress.loss?;
        (drop > 0.0).then(|| (t.co2e_g - s.co2e_g) / (drop * 100.0))
    }

    /// Time, energy and carbon to the target at the recent rate (epochs per second over the
    /// last epoch changes, or accuracy points per second over the last milestones), at the
    /// present facility power, with the provider's intensity forecast where there is one.
    pub fn to_go(&self) -> Option<ToGo> {
        let t = self.last.as_ref()?;
        let (done, rate) = match self.info.target? {
            Target::Epochs(n) => {
                let (a, b) = (self.epoch_marks.front()?, self.epoch_marks.back()?);
                let rate = (b.1 - a.1) / (b.0 - a.0);
                (n - t.progress.epoch?, rate)
            }
            Target::Accuracy(goal) => {
                let n = self.milestones.len();
                let (a, b) = (
                    self.milestones[n.checked_sub(RATE_MARKS.min(n))?],
                    self.milestones.last()?,
                );
                let rate = f64::from(b.point - a.point) / (b.elapsed_s - a.elapsed_s);
                (goal - t.progress.accuracy?, rate)
            }
        };
        if done <= 0.0 {
            return Some(ToGo {
                secs: 0.0,
                energy_kwh: 0.0,
                co2e_g: 0.0,
                forecast_covered: 0.0,
            });
        }
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let secs = done / rate;
        let w = self.facility_power_w()?;
        let len = TimeDelta::milliseconds((secs * 1000.0).min(3.0e11) as i64);
        let slots = self.grid.as_ref().map_or(&[][..], |g| &g.slots[..]);
        let (co2e_g, covered) =
            forecast::expected_co2e_g(slots, t.intensity_g_per_kwh?, t.timestamp, len, w);
        Some(ToGo {
            secs,
            energy_kwh: w * secs / crate::engine::constants::J_PER_KWH,
            co2e_g,
            forecast_covered: covered,
        })
    }

    /// Adds a line of the command's output to the pane.
    pub fn push_output(&mut self, line: &str) {
        let mut l = line.trim_end_matches(['\n', '\r']).to_owned();
        // A progress bar redrawn with \r: keep what the terminal would show last.
        if let Some(pos) = l.rfind('\r') {
            l = l[pos + 1..].to_owned();
        }
        if l.len() > OUTPUT_LINE_MAX {
            let mut cut = OUTPUT_LINE_MAX;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
            l.push('…');
        }
        // Tabs and control characters would break the pane's layout.
        let l: String = l
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '·',
                c => c,
            })
            .collect();
        if self.output.len() == OUTPUT_LINES {
            self.output.pop_front();
            self.output_dropped += 1;
        }
        self.output.push_back(l);
    }

    pub fn warn(&mut self, w: String) {
        let at = self.last.as_ref().map_or(0.0, |t| t.elapsed_s);
        self.warning = Some((w, at));
    }

    pub fn elapsed_s(&self) -> f64 {
        self.last.as_ref().map_or(0.0, |t| t.elapsed_s)
    }

    /// Facility power now (W): IT power × PUE (E_facility = E_it × PUE, DESIGN.md §5).
    pub fn facility_power_w(&self) -> Option<f64> {
        self.last
            .as_ref()
            .and_then(|t| t.total_power_w)
            .map(|w| w * self.info.pue)
    }

    /// Carbon rate now (g/h): facility power × current intensity (C = E × I(t), DESIGN.md §5).
    pub fn co2e_rate_g_per_h(&self) -> Option<f64> {
        let i = self.last.as_ref()?.intensity_g_per_kwh?;
        Some(self.facility_power_w()? / 1000.0 * i)
    }

    /// The embodied carbon so far at the low and high end of the published TE range (g), where
    /// the sources disagree (DESIGN.md §5): the point value scaled by low/TE and high/TE.
    pub fn embodied_band_g(&self) -> Option<(f64, f64)> {
        let g = self.last.as_ref()?.embodied_co2e_g?;
        let (lo, hi) = self.info.embodied?.band_factors()?;
        Some((g * lo, g * hi))
    }

    /// Tree-days and car-km for the carbon so far (Green Algorithms constants).
    pub fn equivalents(&self) -> (f64, f64) {
        (tree_days(self.totals.co2e_g), car_km(self.totals.co2e_g))
    }

    /// Marginal cost of the last whole point: ΔC between the last two milestones (g, kWh).
    pub fn last_point_cost(&self) -> Option<(u32, f64, f64)> {
        let n = self.milestones.len();
        if n < 2 {
            return None;
        }
        let (a, b) = (self.milestones[n - 2], self.milestones[n - 1]);
        Some((b.point, b.co2e_g - a.co2e_g, b.energy_kwh - a.energy_kwh))
    }

    /// Average carbon and energy per accuracy point gained so far: C / (a_now − a_start)
    /// (DESIGN.md §5). None until accuracy rose.
    pub fn per_point(&self) -> Option<(f64, f64, f64)> {
        let s = self.progress_start?;
        let t = self.last.as_ref()?;
        let a = t.progress.accuracy?;
        let gained = a - s.accuracy;
        (gained > 0.0).then(|| {
            (
                gained,
                (t.co2e_g - s.co2e_g) / gained,
                (t.energy_kwh - s.energy_kwh) / gained,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Ledger, LedgerConfig};
    use crate::sample::{CpuReading, Intensity, PowerReading, Progress, Sample};

    fn info() -> RunInfo {
        RunInfo {
            title: "t".into(),
            zone: "FR".into(),
            pue: 1.5,
            cpu_estimate: true,
            gpus: vec![],
            cap_mode: "caps untouched".into(),
            samples_path: None,
            mode: Mode::Live,
            target: None,
            target_metric: None,
            embodied: None,
        }
    }

    fn sample(t: f64, w: f64, i: f64, acc: Option<f64>) -> Sample {
        Sample {
            time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::milliseconds((t * 1e3) as i64),
            elapsed_s: t,
            gpus: vec![],
            cpu: CpuReading::Power(PowerReading::Average(w)),
            mem: None,
            net: None,
            intensity: Some(Intensity {
                g_per_kwh: i,
                source: "fixed".into(),
            }),
            progress: Progress {
                accuracy: acc,
                ..Default::default()
            },
            process: None,
        }
    }

    #[test]
    fn rates_equivalents_and_per_point_follow_the_formulas() {
        let mut l = Ledger::new(LedgerConfig {
            pue: 1.5,
            ..Default::default()
        });
        let mut d = Dashboard::new(info());
        for (t, acc) in [(0.0, None), (1.0, Some(50.0)), (3601.0, Some(60.0))] {
            let tick = l.push(sample(t, 100.0, 400.0, acc));
            d.push(&tick, l.totals());
        }
        // 100 W × 1.5 = 150 W facility; × 400 g/kWh = 60 g/h.
        assert_eq!(d.facility_power_w(), Some(150.0));
        assert!((d.co2e_rate_g_per_h().unwrap() - 60.0).abs() < 1e-9);
        // One hour at 150 W after the first accuracy: 0.15 kWh, 60 g over 10 points.
        let (gained, g, kwh) = d.per_point().unwrap();
        assert_eq!(gained, 10.0);
        assert!((g - 6.0).abs() < 1e-9 && (kwh - 0.015).abs() < 1e-12);
        let (trees, km) = d.equivalents();
        assert!((trees - d.totals.co2e_g / 1000.0 / (11.0 / 365.0)).abs() < 1e-12);
        assert!((km - d.totals.co2e_g / 175.0).abs() < 1e-12);
        // Points 50..=60 reached: milestones at the ticks that reached them.
        assert_eq!(d.milestones.len(), 11);
        assert_eq!(d.milestones[0].point, 50);
        assert_eq!(d.milestones[10].point, 60);
        let (p, g, _) = d.last_point_cost().unwrap();
        // 51..=60 were all first reached at the same tick: the last point cost nothing extra.
        assert_eq!((p, g), (60, 0.0));
        // Intensity has not changed since the first tick.
        assert_eq!(d.intensity_since, Some((400.0, 0.0)));
    }

    #[test]
    fn embodied_band_scales_the_recorded_figure_by_the_published_range() {
        use crate::engine::constants::machine_embodied;
        let te = machine_embodied(&["NVIDIA A100-SXM4-80GB"], 1);
        let mut l = Ledger::new(LedgerConfig {
            embodied_kg: te.kg,
            ..Default::default()
        });
        let mut d = Dashboard::new(RunInfo {
            embodied: Some(te),
            ..info()
        });
        for t in [0.0, 3600.0] {
            let tick = l.push(sample(t, 100.0, 400.0, None));
            d.push(&tick, l.totals());
        }
        // 2,650 kg over 6 years, one hour of it; the band 2,650 → 2,650 … 2,818 kg (A100: 150–318).
        let g = 2650e3 / (6.0 * 365.25 * 24.0);
        assert!((d.last.as_ref().unwrap().embodied_co2e_g.unwrap() - g).abs() < 1e-9);
        let (lo, hi) = d.embodied_band_g().unwrap();
        assert!((lo - g).abs() < 1e-9 && (hi - 2818e3 / (6.0 * 365.25 * 24.0)).abs() < 1e-9);
        // The user's own --embodied-kg has no range.
        d.info.embodied = Some(EmbodiedKg::exact(te.kg));
        assert_eq!(d.embodied_band_g(), None);
    }

    #[test]
    fn output_pane_is_bounded_and_sanitised() {
        let mut d = Dashboard::new(info());
        for i in 0..(OUTPUT_LINES + 5) {
            d.push_output(&format!("line {i}\n"));
        }
        assert_eq!(d.output.len(), OUTPUT_LINES);
        assert_eq!(d.output_dropped, 5);
        assert_eq!(d.output.front().map(String::as_str), Some("line 5"));
        d.push_output("10%|##   \r50%|#####\tx\u{1b}[0m\n");
        assert_eq!(d.output.back().map(String::as_str), Some("50%|##### x·[0m"));
        d.push_output(&"é".repeat(900));
        assert!(d.output.back().unwrap().ends_with('…'));
    }

    #[test]
    fn a_cap_change_shows_its_effect_on_power_speed_and_energy_per_step() {
        use crate::sample::GpuReading;
        let mut l = Ledger::new(LedgerConfig::default());
        let mut d = Dashboard::new(RunInfo {
            gpus: vec!["A40".into()],
            ..info()
        });
        // 300 W cap: 200 W, 10 steps/s for 20 s; then a 200 W cap: 150 W, 8 steps/s.
        let mut steps = 0.0;
        for k in 0..=60 {
            let t = f64::from(k);
            let (cap, w, rate) = if t < 20.0 {
                (300.0, 200.0, 10.0)
            } else {
                (200.0, 150.0, 8.0)
            };
            if k > 0 {
                steps += rate;
            }
            let mut s = sample(t, 1.0, 400.0, None);
            s.gpus = vec![GpuReading {
                power: Some(PowerReading::Average(w)),
                cap_w: Some(cap),
                ..Default::default()
            }];
            s.progress.step = Some(steps as u64);
            let tick = l.push(s);
            d.push(&tick, l.totals());
        }
        let e = d.cap_effect.unwrap();
        assert_eq!(
            (e.old_w, e.new_w, e.elapsed_s),
            (Some(300.0), Some(200.0), 20.0)
        );
        assert_eq!(e.before.gpu_w, 200.0);
        assert_eq!(e.before.steps_per_s, Some(10.0));
        let (dp, ds, de) = e.deltas().unwrap();
        assert!((dp - (150.0 / 200.0 - 1.0)).abs() < 1e-12);
        assert!((ds.unwrap() - (8.0 / 10.0 - 1.0)).abs() < 1e-12);
        assert!((de.unwrap() - ((150.0 / 8.0) / (200.0 / 10.0) - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn forecast_to_the_last_epoch_and_to_a_target_accuracy() {
        // 100 W IT × PUE 1.5 at 400 g/kWh; one epoch every 10 s, +1 accuracy point per epoch.
        let run = |target: Target| {
            let mut l = Ledger::new(LedgerConfig {
                pue: 1.5,
                ..Default::default()
            });
            let mut d = Dashboard::new(RunInfo {
                target: Some(target),
                ..info()
            });
            for k in 0..=50 {
                let t = f64::from(k);
                let mut s = sample(t, 100.0, 400.0, Some(50.0 + (t / 10.0).floor()));
                s.progress.epoch = Some((t / 10.0).floor());
                let tick = l.push(s);
                d.push(&tick, l.totals());
            }
            d
        };
        // At 50 s: epoch 5 of 20, 0.1 epochs/s → 150 s to go at 150 W facility.
        let g = run(Target::Epochs(20.0)).to_go().unwrap();
        assert!((g.secs - 150.0).abs() < 1e-9, "{g:?}");
        assert!((g.energy_kwh - 150.0 * 150.0 / 3.6e6).abs() < 1e-12);
        // No provider forecast: the present 400 g/kWh throughout.
        assert!((g.co2e_g - g.energy_kwh * 400.0).abs() < 1e-9);
        assert_eq!(g.forecast_covered, 0.0);
        // Accuracy 55% now, +0.1 pt/s over the last milestones: 60% in 50 s.
        let g = run(Target::Accuracy(60.0)).to_go().unwrap();
        assert!((g.secs - 50.0).abs() < 1e-9, "{g:?}");
        // Already there.
        assert_eq!(run(Target::Accuracy(55.0)).to_go().unwrap().secs, 0.0);
    }

    #[test]
    fn loss_costs_per_hundredth_when_there_is_no_accuracy() {
        let mut l = Ledger::new(LedgerConfig::default());
        let mut d = Dashboard::new(info());
        for (t, loss) in [(0.0, 2.0), (3600.0, 1.5)] {
            let mut s = sample(t, 100.0, 400.0, None);
            s.progress.loss = Some(loss);
            let tick = l.push(s);
            d.push(&tick, l.totals());
        }
        // 0.1 kWh × 400 g = 40 g for 0.5 of loss: 0.8 g per 0.01.
        assert!((d.per_loss_hundredth().unwrap() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_target_metric_is_priced_per_hundredth() {
        let mut l = Ledger::new(LedgerConfig::default());
        let mut d = Dashboard::new(RunInfo {
            target_metric: Some("f1".into()),
            embodied: None,
            ..info()
        });
        for (t, f1) in [(0.0, 0.50), (3600.0, 0.60)] {
            let mut s = sample(t, 100.0, 400.0, None);
            s.progress.metrics = vec![("f1".into(), f1)];
            let tick = l.push(s);
            d.push(&tick, l.totals());
        }
        // 40 g for +0.10 of F1: 4 g per 0.01.
        let (name, gained, unit, g) = d.per_metric_unit().unwrap();
        assert_eq!((name.as_str(), unit), ("f1", 0.01));
        assert!(
            (gained - 0.1).abs() < 1e-12 && (g - 4.0).abs() < 1e-9,
            "{g}"
        );
    }
}
