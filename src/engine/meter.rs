//! The Meter folds the Ledger's ticks into every figure an output shows, and its [`Snapshot`]
//! is the one place those figures are made (DESIGN.md §2: "outputs only format a Snapshot").
//!
//! The Ledger accounts energy and carbon tick by tick; the Meter adds what needs the run's
//! history: the per-point costs and milestones, the forecast to the end, the effect of a cap
//! change, the equivalents, the embodied and communication bands. The screen, the headless
//! status line and summary, `report` (text, JSON, PNG, comparison), emissions.csv, `/metrics`
//! and `watch --agent` all read a Snapshot; none of them computes energy, carbon, PUE or
//! intensity themselves. Time comes only from the ticks, so a replay and a live run of the same
//! samples give the same Snapshot.

use crate::engine::constants::{
    BYTES_PER_GB, EmbodiedKg, GRID_TABLE_BAND, J_PER_KWH, NETWORK_KWH_PER_GB_HIGH,
    NETWORK_KWH_PER_GB_LOW, car_km, tree_days,
};
use crate::engine::forecast::{self, Greener, Slot};
use crate::engine::ledger::{GpuTick, Tick, Totals};
use crate::engine::series::{Agg, History};
use crate::sample::{IntensitySource, Progress, Traffic};
use crate::units::{FacilityKwh, GPerKwh, GramsCo2e, ItKwh, Pue, Watts};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;

/// Columns of the history the screen and the PNG draw.
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

/// The end of the run, as the user gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Epochs(f64),
    /// Percent.
    Accuracy(f64),
}

/// What the figures rest on besides the ticks: fixed for the run (the PUE may be learnt from a
/// recording's first interval).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Basis {
    pub pue: Pue,
    /// The hardware's embodied emissions (TE) behind `embodied_co2e_g`, with the published
    /// range; `None` where not counted.
    pub embodied: Option<EmbodiedKg>,
    /// Where the run is headed (`--epochs`, `--target-accuracy`), for the forecast to the end.
    pub target: Option<Target>,
    /// `--target-metric NAME`: a metric of the user's whose gain is priced like accuracy's.
    pub target_metric: Option<String>,
    /// GPUs measured (a column group each); 0: GPU energy unknown, never 0.
    pub gpu_count: usize,
    /// Each measured or estimated component's band, as factors of its point value.
    pub bands: Bands,
}

/// The low and high ends of each component's energy as factors of its point value (DESIGN.md
/// §5 "Bands"): a measurement's error, or an estimate's published range. The network's band is
/// the comms band (the port model's range, which the Ledger accounts). (1, 1): no band known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub gpu: (f64, f64),
    pub cpu: (f64, f64),
    pub mem: (f64, f64),
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            gpu: (1.0, 1.0),
            cpu: (1.0, 1.0),
            mem: (1.0, 1.0),
        }
    }
}

impl Bands {
    /// A band of ± `rel` around the point value.
    pub fn pm(rel: f64) -> (f64, f64) {
        (1.0 - rel, 1.0 + rel)
    }
}

/// The forecast to the end of the run at the recent rate (DESIGN.md §5 "Forecast").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToGo {
    pub secs: f64,
    pub energy_kwh: FacilityKwh,
    pub co2e_g: GramsCo2e,
    /// Share of the time the provider's intensity forecast covered (the rest at today's value).
    pub forecast_covered: f64,
}

/// Epoch or milestone changes the rate is measured over (the latest ones).
const RATE_MARKS: usize = 5;

/// The first value of a progress figure (accuracy, loss, a named metric), with the cumulative
/// figures at that moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressStart {
    pub value: f64,
    pub co2e_g: GramsCo2e,
    pub energy_kwh: FacilityKwh,
}

impl ProgressStart {
    /// Sets `slot` at the first tick where the figure has a value.
    fn mark(slot: &mut Option<Self>, value: Option<f64>, t: &Tick) {
        if slot.is_none()
            && let Some(v) = value.filter(|v| v.is_finite())
        {
            *slot = Some(Self {
                value: v,
                co2e_g: GramsCo2e(t.co2e_g),
                energy_kwh: FacilityKwh(t.energy_kwh),
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
    pub energy_kwh: FacilityKwh,
    pub co2e_g: GramsCo2e,
    /// What this point cost (g, kWh): the carbon since the milestone before it over the points
    /// the tick reached; 0 for the points already reached when accuracy was first reported.
    pub cost_g: GramsCo2e,
    pub cost_kwh: FacilityKwh,
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

/// Horizon of the greener-window hint: the longest forecast the providers give (GB: 48 h).
pub const GREENER_HORIZON: TimeDelta = TimeDelta::hours(48);

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

/// A cap change's effect, relative (after / before − 1), once measured after the change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapDeltas {
    pub power: f64,
    pub speed: Option<f64>,
    pub energy_per_step: Option<f64>,
}

impl CapEffect {
    /// (Δ power, Δ speed, Δ energy per step), relative, once measured after the change.
    pub fn deltas(&self) -> Option<CapDeltas> {
        let a = self.after?;
        let b = self.before;
        if b.gpu_w <= 0.0 {
            return None;
        }
        let power = a.gpu_w / b.gpu_w - 1.0;
        let (speed, energy_per_step) = match (a.steps_per_s, b.steps_per_s) {
            (Some(x), Some(y)) if x > 0.0 && y > 0.0 => {
                (Some(x / y - 1.0), Some((a.gpu_w / x) / (b.gpu_w / y) - 1.0))
            }
            _ => (None, None),
        };
        Some(CapDeltas {
            power,
            speed,
            energy_per_step,
        })
    }
}

/// Seconds of ticks before a cap change that make its "before", and after it that are skipped
/// while the GPU settles.
const EFFECT_BEFORE_S: f64 = 30.0;
const EFFECT_SETTLE_S: f64 = 2.0;

/// Cap changes kept (a governor changing caps all week must not grow memory).
const CAP_CHANGES_KEPT: usize = 1000;

/// Folds ticks into the state the Snapshot is made from. Bounded memory whatever the run's
/// length: the history is tiered, milestones are at most 101, cap changes at most 1000.
#[derive(Debug, Clone)]
pub struct Meter {
    pub basis: Basis,
    /// The bounded time series the screen and the PNG draw (None: not kept, headless).
    pub history: Option<History>,
    pub last: Option<Tick>,
    pub totals: Totals,
    pub start: Option<DateTime<Utc>>,
    /// The current intensity value and the elapsed time at which it took that value.
    intensity_since: Option<(f64, f64)>,
    progress_start: Option<ProgressStart>,
    loss_start: Option<ProgressStart>,
    metric_start: Option<ProgressStart>,
    /// The latest value of every progress figure seen so far.
    progress: Progress,
    /// Each whole accuracy point, when first reached (at most 101).
    pub milestones: Vec<Milestone>,
    /// Changes of the GPUs' summed cap (the first CAP_CHANGES_KEPT).
    pub cap_changes: Vec<CapChange>,
    cap_effect: Option<CapEffect>,
    /// (elapsed, GPU W, step) of the last EFFECT_BEFORE_S seconds, for `cap_effect`.
    recent: VecDeque<(f64, Option<f64>, Option<u64>)>,
    /// (elapsed, epoch) where the epoch first took each value (the latest RATE_MARKS).
    epoch_marks: VecDeque<(f64, f64)>,
    util_sum: f64,
    util_n: u64,
    /// A live grid provider's forecast and state (None for the table, fixed values, replay).
    pub grid: Option<GridInfo>,
    /// GPUs whose energy counter and power readings differed by more than
    /// `gpu_check::DIVERGENCE` over a minute: the largest difference seen and when.
    divergence: Vec<CounterDivergence>,
}

/// A GPU whose energy counter and integrated power readings disagree (`engine::gpu_check`):
/// (power − counter) / counter over a minute. The counter stays the figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterDivergence {
    /// NVML's number for the GPU.
    pub index: u32,
    /// Over the last minute, when that window diverges now.
    pub now: Option<f64>,
    /// The largest over any minute of the run, and the elapsed time its window ended at.
    pub worst: f64,
    pub worst_at_s: f64,
}

impl Meter {
    /// A meter; `history` keeps the time series for charts (the screen, the PNG).
    pub fn new(basis: Basis, history: bool) -> Self {
        let history = history.then(|| {
            let mut aggs = vec![Agg::Mean; col::GPU0 + basis.gpu_count];
            for c in [col::CO2E, col::ENERGY, col::ACCURACY, col::LOSS] {
                aggs[c] = Agg::Last;
            }
            History::new(aggs)
        });
        Self {
            basis,
            history,
            last: None,
            totals: Totals::default(),
            start: None,
            intensity_since: None,
            progress_start: None,
            loss_start: None,
            metric_start: None,
            progress: Progress::default(),
            milestones: Vec::new(),
            cap_changes: Vec::new(),
            cap_effect: None,
            recent: VecDeque::new(),
            epoch_marks: VecDeque::new(),
            util_sum: 0.0,
            util_n: 0,
            grid: None,
            divergence: Vec::new(),
        }
    }

    /// Each GPU's counter check this tick: the ones that diverge now, and the worst so far.
    fn follow_counters(&mut self, t: &Tick) {
        use crate::engine::gpu_check::diverges;
        for d in &mut self.divergence {
            d.now = None;
        }
        for g in &t.gpus {
            let Some(rel) = g.power_vs_counter.filter(|r| diverges(*r)) else {
                continue;
            };
            match self.divergence.iter_mut().find(|d| d.index == g.index) {
                Some(d) => {
                    d.now = Some(rel);
                    if rel.abs() > d.worst.abs() {
                        d.worst = rel;
                        d.worst_at_s = t.elapsed_s;
                    }
                }
                // One entry per GPU: bounded by the GPUs of the run.
                None => self.divergence.push(CounterDivergence {
                    index: g.index,
                    now: Some(rel),
                    worst: rel,
                    worst_at_s: t.elapsed_s,
                }),
            }
        }
    }

    /// The number of the GPU at position `i` of the last tick (NVML's index), for labels.
    pub fn gpu_number(&self, i: usize) -> Option<u32> {
        self.last.as_ref()?.gpus.get(i).map(|g| g.index)
    }

    pub fn elapsed_s(&self) -> f64 {
        self.last.as_ref().map_or(0.0, |t| t.elapsed_s)
    }

    /// Progress the run reported between ticks (the next tick carries it into the record; a
    /// line after the last tick is still the run's latest progress).
    pub fn observe_progress(&mut self, p: &Progress) {
        self.progress.merge(p);
    }

    /// Folds one tick (and the Ledger's totals after it) in.
    pub fn push(&mut self, t: &Tick, totals: Totals) {
        self.follow_counters(t);
        if let Some(h) = self.history.as_mut() {
            let f = |v: Option<f64>| v.unwrap_or(f64::NAN);
            let mut vals = Vec::with_capacity(h.columns());
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
            for i in 0..h.columns().saturating_sub(col::GPU0) {
                vals.push(f(t.gpus.get(i).and_then(|g| g.power_w)));
            }
            h.push(t.elapsed_s, &vals);
        }
        self.start.get_or_insert(t.timestamp);
        for u in t.gpus.iter().filter_map(|g| g.util_pct) {
            self.util_sum += u;
            self.util_n += 1;
        }
        self.progress.merge(&t.progress);
        match (t.intensity_g_per_kwh, self.intensity_since) {
            (Some(i), Some((prev, _))) if i == prev => {}
            (Some(i), _) => self.intensity_since = Some((i, t.elapsed_s)),
            (None, _) => self.intensity_since = None,
        }
        ProgressStart::mark(&mut self.progress_start, t.progress.accuracy, t);
        self.mark_milestones(t);
        self.follow_caps(t);
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
            .basis
            .target_metric
            .as_deref()
            .and_then(|m| t.progress.metric(m));
        ProgressStart::mark(&mut self.metric_start, metric, t);
        self.totals = totals;
        self.last = Some(t.clone());
    }

    fn mark_milestones(&mut self, t: &Tick) {
        let Some(a) = t.progress.accuracy.filter(|a| a.is_finite()) else {
            return;
        };
        let reached = a.clamp(0.0, 100.0).floor() as u32;
        let next = self.milestones.last().map_or(0, |m| m.point + 1);
        // Only points above the first accuracy seen count as reached during the run.
        let first = self.progress_start.map_or(0.0, |s| s.value).floor() as u32;
        let from = next.max(first);
        if from > reached {
            return;
        }
        // Points reached together in one tick share what the tick's jump cost: ΔC / Δa over
        // the jump (DESIGN.md §5, the marginal cost), not 0 for all but the first.
        let n = f64::from(reached - from + 1);
        let (co2e_g, energy_kwh) = (GramsCo2e(t.co2e_g), FacilityKwh(t.energy_kwh));
        let (cost_g, cost_kwh) = self.milestones.last().map_or_else(Default::default, |m| {
            ((co2e_g - m.co2e_g) / n, (energy_kwh - m.energy_kwh) / n)
        });
        for point in from..=reached {
            self.milestones.push(Milestone {
                point,
                elapsed_s: t.elapsed_s,
                energy_kwh,
                co2e_g,
                cost_g,
                cost_kwh,
            });
        }
    }

    /// Cap changes and their effect on power and speed.
    fn follow_caps(&mut self, t: &Tick) {
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
    }

    /// IT power now (W): the last interval's average.
    fn it_power(&self) -> Option<Watts> {
        self.last.as_ref().and_then(|t| t.total_power_w).map(Watts)
    }

    /// Operational carbon and facility energy so far.
    fn carbon(&self) -> GramsCo2e {
        GramsCo2e(self.totals.co2e_g)
    }

    fn facility_energy(&self) -> FacilityKwh {
        FacilityKwh(self.totals.energy_kwh)
    }

    /// Time, energy and carbon to the target at the recent rate (epochs per second over the
    /// last epoch changes, or accuracy points per second over the last milestones), at the
    /// present facility power, with the provider's intensity forecast where there is one.
    fn to_go(&self) -> Option<ToGo> {
        let t = self.last.as_ref()?;
        let (left, rate) = match self.basis.target? {
            Target::Epochs(n) => {
                let (a, b) = (self.epoch_marks.front()?, self.epoch_marks.back()?);
                ((n - t.progress.epoch?), (b.1 - a.1) / (b.0 - a.0))
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
        if left <= 0.0 {
            return Some(ToGo {
                secs: 0.0,
                energy_kwh: FacilityKwh(0.0),
                co2e_g: GramsCo2e(0.0),
                forecast_covered: 0.0,
            });
        }
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let secs = left / rate;
        let it = self.it_power()?;
        let len = TimeDelta::milliseconds((secs * 1000.0).min(3.0e11) as i64);
        let slots = self.grid.as_ref().map_or(&[][..], |g| &g.slots[..]);
        let (co2e_g, covered) = forecast::expected_co2e_g(
            slots,
            t.intensity_g_per_kwh?,
            t.timestamp,
            len,
            (it * self.basis.pue).0,
        );
        Some(ToGo {
            secs,
            // E_facility = E_it × PUE, at the present power.
            energy_kwh: it.over_secs(secs) * self.basis.pue,
            co2e_g: GramsCo2e(co2e_g),
            forecast_covered: covered,
        })
    }

    /// gCO2e expected over the grid window at the present facility power, from the forecast
    /// (the present intensity beyond it), and the share the forecast covered.
    fn window_forecast(&self) -> Option<WindowForecast> {
        let g = self.grid.as_ref()?;
        let t = self.last.as_ref()?;
        let w = self.it_power()? * self.basis.pue;
        let (co2e_g, covered) =
            forecast::expected_co2e_g(&g.slots, t.intensity_g_per_kwh?, t.timestamp, g.window, w.0);
        Some(WindowForecast {
            window: g.window,
            co2e_g: GramsCo2e(co2e_g),
            covered,
        })
    }

    /// The average cost of a point and the marginal cost of the last one (DESIGN.md §5):
    /// C_total / (a_now − a_start), E_total likewise; ΔC between the last two milestones.
    fn per_point(&self) -> (Option<PerPoint>, Option<LastPoint>) {
        let avg = (|| {
            let s = self.progress_start?;
            let a = self.last.as_ref()?.progress.accuracy?;
            let gained = a - s.value;
            (gained > 0.0).then(|| {
                let g = self.carbon() / gained;
                PerPoint {
                    gained,
                    co2e_g: g,
                    energy_kwh: self.facility_energy() / gained,
                    tree_days: tree_days(g.0),
                }
            })
        })();
        let n = self.milestones.len();
        let last = (n >= 2).then(|| {
            let b = self.milestones[n - 1];
            let first = self.milestones[1..]
                .iter()
                .map(|m| m.cost_g)
                .find(|g| g.0 > 0.0);
            LastPoint {
                point: b.point,
                co2e_g: b.cost_g,
                energy_kwh: b.cost_kwh,
                vs_first: first.filter(|_| b.cost_g.0 > 0.0).map(|f| b.cost_g / f),
            }
        });
        (avg, last)
    }

    /// gCO2e per 0.01 of loss reduction since the first loss seen, for runs that report no
    /// accuracy: C_total / (Δloss × 100).
    fn per_loss_hundredth(&self) -> Option<GramsCo2e> {
        let s = self.loss_start?;
        let drop = s.value - self.last.as_ref()?.progress.loss?;
        (drop > 0.0).then(|| self.carbon() / (drop * 100.0))
    }

    /// The `--target-metric`'s gain since its first value and gCO2e per unit of it (C_total
    /// over the gain): per 0.01 for metrics on a 0–1 scale (F1, AUC), per 1 otherwise.
    fn per_metric(&self) -> Option<PerMetric> {
        let name = self.basis.target_metric.clone()?;
        let s = self.metric_start?;
        let v = self.last.as_ref()?.progress.metric(&name)?;
        let gained = v - s.value;
        let unit = if v.abs() <= 1.0 && s.value.abs() <= 1.0 {
            0.01
        } else {
            1.0
        };
        (gained > 0.0).then(|| PerMetric {
            co2e_g: self.carbon() / (gained / unit),
            name,
            gained,
            unit,
        })
    }

    /// Embodied carbon so far (SCI M, as the Ledger or the recording put it in the tick), with
    /// the published range of the TE behind it where the sources disagree.
    fn embodied(&self) -> Option<Band> {
        let g = GramsCo2e(self.last.as_ref()?.embodied_co2e_g?);
        let (lo, hi) = self
            .basis
            .embodied
            .and_then(|te| te.band_factors())
            .unwrap_or((1.0, 1.0));
        Some(Band {
            g,
            low: g * lo,
            high: g * hi,
        })
    }

    /// Communication: the machine's network energy (its NICs and switch ports, by the port
    /// model) as carbon, tick by tick (Σ E_net × PUE × I(t)), with the band of the port
    /// model's published range.
    fn comms(&self) -> Option<Band> {
        let t = &self.totals;
        let g = GramsCo2e(t.co2e_by.net);
        let bytes = t.net_rx_bytes + t.net_tx_bytes;
        // No band accounted (a job's sum of agents): none shown rather than a wrong one.
        let banded = t.net_j > 0.0 && t.net_high_j > 0.0;
        let k = |j: f64| if banded { j / t.net_j } else { 1.0 };
        // The port model's range times the intensity's (the table's band, tick by tick).
        let (low, high) = (
            GramsCo2e(t.co2e_low_by.net * k(t.net_low_j)),
            GramsCo2e(t.co2e_high_by.net * k(t.net_high_j)),
        );
        (bytes > 0 || g.0 > 0.0).then(|| Band {
            g,
            low: if low < g { low } else { g },
            high: if high > g { high } else { g },
        })
    }

    /// `run -- CMD`: the command's own traffic, its share of the machine's port energy and the
    /// internet path's footprint of its public traffic, each with its band.
    fn cmd_net(&self) -> Option<CmdComms> {
        let c = &self.totals.cmd_net;
        if !c.known {
            return None;
        }
        let pue = self.basis.pue;
        let i = self.mean_intensity().unwrap_or(GPerKwh(0.0));
        let port_kwh = ItKwh::from_joules(c.port_j);
        let k = |j: f64| {
            if c.port_j > 0.0 && c.port_high_j > 0.0 {
                j / c.port_j
            } else {
                1.0
            }
        };
        let port_co2e = Band::around(port_kwh * pue * i, k(c.port_low_j), k(c.port_high_j));
        // The path's band: its bytes at both ends of the published kWh/GB range, at the
        // intensity its energy was priced at (the run's mean where it has none yet).
        let kwh = c.internet_j / J_PER_KWH;
        let path_i = if kwh > 0.0 {
            c.internet_co2e_g / kwh
        } else {
            i.0
        };
        let gb = c.internet.total() as f64 / BYTES_PER_GB;
        let g = GramsCo2e(c.internet_co2e_g);
        let at = |kwh_per_gb: f64| GramsCo2e(gb * kwh_per_gb * path_i);
        let (low, high) = (at(NETWORK_KWH_PER_GB_LOW), at(NETWORK_KWH_PER_GB_HIGH));
        Some(CmdComms {
            cluster: c.cluster,
            internet: c.internet,
            port_kwh,
            port_cluster_kwh: ItKwh::from_joules(c.port_cluster_j),
            port_co2e,
            rdma: c.rdma,
            internet_kwh: kwh,
            internet_co2e: Band {
                g,
                low: if low < g { low } else { g },
                high: if high > g { high } else { g },
            },
        })
    }

    /// Operational carbon with the band of its components' sum: each component's carbon (Σ E_c
    /// × PUE × I(t)) times its band's factors, the network's band being the comms band.
    fn operational(&self, comms: Option<&Band>) -> Band {
        let t = &self.totals;
        let b = &self.basis.bands;
        let net = t.co2e_by.net;
        let (net_low, net_high) = comms.map_or((net, net), |c| (c.low.0, c.high.0));
        // The estimates' per-tick bands are in the totals' ends; a measurement's error is the
        // basis's factor on top (1 for an estimate).
        let end = |by: &crate::engine::ledger::ByComponent, k: fn((f64, f64)) -> f64, net: f64| {
            GramsCo2e(by.gpu * k(b.gpu) + by.cpu * k(b.cpu) + by.mem * k(b.mem) + net)
        };
        let g = self.carbon();
        let (low, high) = (
            end(&t.co2e_low_by, |x| x.0, net_low),
            end(&t.co2e_high_by, |x| x.1, net_high),
        );
        Band {
            g,
            low: if low < g { low } else { g },
            high: if high > g { high } else { g },
        }
    }

    /// Energy-weighted mean intensity over the run: C / E_facility.
    fn mean_intensity(&self) -> Option<GPerKwh> {
        let e = self.facility_energy();
        (e.0 > 0.0).then(|| self.carbon() / e)
    }

    /// Every figure any output shows, now.
    pub fn snapshot(&self) -> Snapshot {
        let t = &self.totals;
        let last = self.last.as_ref();
        let pue = self.basis.pue;
        let it = ItKwh::from_joules;
        let intensity = last.and_then(|l| {
            Some(IntensityNow {
                g_per_kwh: GPerKwh(l.intensity_g_per_kwh?),
                source: l.intensity_source.clone()?,
                age_s: self.intensity_since.map_or(0.0, |(_, s)| l.elapsed_s - s),
            })
        });
        let embodied = self.embodied();
        let (per_point, last_point) = self.per_point();
        // A machine's GPU columns, or a job whose agents measured GPU energy.
        let gpu_measured = self.basis.gpu_count > 0 || t.gpu_j > 0.0;
        let co2e = self.carbon();
        let comms = self.comms();
        let cmd_net = self.cmd_net();
        let operational = self.operational(comms.as_ref());
        // Operational + embodied + the internet path's footprint of the command's traffic
        // (other people's equipment: in the total, never in this machine's energy).
        let total = [embodied, cmd_net.map(|c| c.internet_co2e)]
            .into_iter()
            .flatten()
            .fold(operational, |a, b| Band {
                g: a.g + b.g,
                low: a.low + b.low,
                high: a.high + b.high,
            });
        Snapshot {
            ticks: t.ticks,
            elapsed_s: t.elapsed_s,
            start: self.start,
            end: last.map(|l| l.timestamp),
            pue,
            now: self.power_now(intensity.as_ref().map(|i| i.g_per_kwh)),
            energy_kwh: self.facility_energy(),
            it: ItEnergy::of(t, gpu_measured),
            co2e_g: co2e,
            total_co2e_g: total.g,
            co2e_band: operational,
            total_band: total,
            mean_intensity: self.mean_intensity(),
            intensity,
            embodied,
            comms,
            cmd_net,
            rdma: t.rdma.map(|bytes| RdmaComms {
                bytes,
                energy: ItKwh::from_joules(t.rdma_j),
                co2e: GramsCo2e(if t.net_j > 0.0 {
                    t.co2e_by.net * t.rdma_j / t.net_j
                } else {
                    0.0
                }),
            }),
            equivalents: Equivalents {
                tree_days: tree_days(co2e.0),
                car_km: car_km(co2e.0),
            },
            progress: self.progress.clone(),
            first_accuracy: self.progress_start.map(|s| s.value),
            per_point,
            last_point,
            per_loss_hundredth: self.per_loss_hundredth(),
            per_metric: self.per_metric(),
            milestones: self.milestones.clone(),
            to_go: self.to_go(),
            target: self.basis.target,
            forecast: self.window_forecast(),
            greener: self.grid.as_ref().and_then(|g| g.greener),
            cap_changes: self.cap_changes.len(),
            cap_effect: self.cap_effect,
            process: [
                (ProcessPart::Cpu, t.process_cpu_j, t.process_machine_cpu_j),
                (ProcessPart::Gpu, t.process_gpu_j, t.process_machine_gpu_j),
                (ProcessPart::Mem, t.process_mem_j, t.process_machine_mem_j),
            ]
            .into_iter()
            .filter(|(_, _, whole)| *whole > 0.0)
            .map(|(part, p, whole)| ProcessShare {
                part,
                share: p / whole,
                energy_kwh: it(p),
                of_kwh: it(whole),
            })
            .collect(),
            command: self.command(),
            table_co2e: (t.co2e_table_g > 0.0).then(|| {
                let (lo, hi) = GRID_TABLE_BAND;
                Band::around(GramsCo2e(t.co2e_table_g), lo, hi)
            }),
            net_rx_bytes: t.net_rx_bytes,
            net_tx_bytes: t.net_tx_bytes,
            gpu_count: self.basis.gpu_count,
            gpu_util_mean: (self.util_n > 0).then(|| self.util_sum / self.util_n as f64),
            mean_power_w: MeanPower::of(t, gpu_measured, pue),
            rapl_wraps: t.rapl_wraps,
            rapl_resets: t.rapl_resets,
            counter_divergence: self.divergence.clone(),
        }
    }

    /// `run -- CMD`: the command's own figures (CodeCarbon's `tracking_mode = process`).
    fn command(&self) -> Option<Command> {
        let t = &self.totals;
        if !t.process_known {
            return None;
        }
        let kwh = ItKwh::from_joules;
        let mean = |j: f64| (t.elapsed_s > 0.0).then(|| Watts(j / t.elapsed_s));
        let it_j = t.process_cpu_j + t.process_mode_gpu_j + t.process_mem_j + t.cmd_net.port_j;
        let gpu_measured = self.basis.gpu_count > 0 || t.gpu_j > 0.0;
        Some(Command {
            cpu_kwh: kwh(t.process_cpu_j),
            gpu_kwh: gpu_measured.then(|| kwh(t.process_mode_gpu_j)),
            mem_kwh: kwh(t.process_mem_j),
            net_kwh: kwh(t.cmd_net.port_j),
            energy_kwh: kwh(it_j) * self.basis.pue,
            co2e_g: GramsCo2e(t.process_co2e_g),
            mean_power_w: MeanPower {
                cpu_w: mean(t.process_cpu_j),
                gpu_w: mean(t.process_mode_gpu_j).filter(|_| gpu_measured),
                mem_w: mean(t.process_mem_j),
                facility_w: mean(it_j).map(|w| w * self.basis.pue),
            },
            gpu_whole: t.process_mode_gpu_j > t.process_gpu_j + 1e-9,
        })
    }

    /// The last interval's power by component, the facility's (× PUE) and the carbon rate at
    /// the present intensity (C = E × I(t)).
    fn power_now(&self, intensity: Option<GPerKwh>) -> PowerNow {
        let last = self.last.as_ref();
        let w = |f: fn(&Tick) -> Option<f64>| last.and_then(f).map(Watts);
        let facility_w = self.it_power().map(|p| p * self.basis.pue);
        PowerNow {
            total_w: w(|l| l.total_power_w),
            gpu_w: w(|l| l.gpu_power_w),
            cpu_w: w(|l| l.cpu_power_w),
            mem_w: w(|l| l.mem_power_w),
            net_w: w(|l| l.net_power_w),
            facility_w,
            co2e_g_per_h: self
                .it_power()
                .zip(intensity)
                .map(|(p, i)| p.over_secs(3600.0) * self.basis.pue * i),
            process_cpu_w: w(|l| l.process_cpu_w),
            process_gpu_w: w(|l| l.process_gpu_w),
            process_mem_w: w(|l| l.process_mem_w),
            gpus: last.map(|l| l.gpus.clone()).unwrap_or_default(),
        }
    }
}

/// A figure with its low–high band (equal ends where the sources agree).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub g: GramsCo2e,
    pub low: GramsCo2e,
    pub high: GramsCo2e,
}

impl Band {
    /// `g` with its ends at factors `lo` and `hi` of it, widened to hold `g` itself.
    pub fn around(g: GramsCo2e, lo: f64, hi: f64) -> Self {
        let (low, high) = (g * lo, g * hi);
        Band {
            g,
            low: if low < g { low } else { g },
            high: if high > g { high } else { g },
        }
    }

    /// The band, where it is one (low < high).
    pub fn range(&self) -> Option<(GramsCo2e, GramsCo2e)> {
        (self.low < self.high).then_some((self.low, self.high))
    }
}

/// Power over the last interval (IT, before PUE) and what it means now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PowerNow {
    pub total_w: Option<Watts>,
    pub gpu_w: Option<Watts>,
    pub cpu_w: Option<Watts>,
    pub mem_w: Option<Watts>,
    pub net_w: Option<Watts>,
    /// IT power × PUE.
    pub facility_w: Option<Watts>,
    /// Facility power × the current intensity (C = E × I(t)), per hour.
    pub co2e_g_per_h: Option<GramsCo2e>,
    pub process_cpu_w: Option<Watts>,
    pub process_gpu_w: Option<Watts>,
    pub process_mem_w: Option<Watts>,
    pub gpus: Vec<GpuTick>,
}

/// IT energy by component (kWh, before PUE) and each one's share of the IT energy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ItEnergy {
    /// Joules as the Ledger counted them: GPU, CPU, memory, network.
    pub j: [f64; 4],
    pub total_kwh: ItKwh,
    /// None: no GPU measured (unknown, not 0).
    pub gpu_kwh: Option<ItKwh>,
    pub cpu_kwh: ItKwh,
    pub mem_kwh: ItKwh,
    pub net_kwh: ItKwh,
    pub gpu_share: Option<f64>,
    pub cpu_share: Option<f64>,
    pub mem_share: Option<f64>,
    pub net_share: Option<f64>,
}

impl ItEnergy {
    /// The Ledger's joules by component, in kWh, with each one's share of the IT energy.
    fn of(t: &Totals, gpu_measured: bool) -> Self {
        let it_j = t.it_j();
        let share = |j: f64| (it_j > 0.0).then(|| j / it_j);
        let kwh = ItKwh::from_joules;
        Self {
            j: [t.gpu_j, t.cpu_j, t.mem_j, t.net_j],
            total_kwh: kwh(it_j),
            gpu_kwh: gpu_measured.then(|| kwh(t.gpu_j)),
            cpu_kwh: kwh(t.cpu_j),
            mem_kwh: kwh(t.mem_j),
            net_kwh: kwh(t.net_j),
            gpu_share: share(t.gpu_j).filter(|_| gpu_measured),
            cpu_share: share(t.cpu_j),
            mem_share: share(t.mem_j),
            net_share: share(t.net_j),
        }
    }

    /// IT energy in joules (Prometheus' base unit), in `job::COMPONENTS` order: GPU (0 when not
    /// measured), CPU, memory, network.
    pub fn joules(&self) -> [f64; 4] {
        self.j
    }
}

/// Interval-average power over the run, by component (W, IT) and the facility's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanPower {
    pub gpu_w: Option<Watts>,
    pub cpu_w: Option<Watts>,
    pub mem_w: Option<Watts>,
    pub facility_w: Option<Watts>,
}

impl MeanPower {
    fn of(t: &Totals, gpu_measured: bool, pue: Pue) -> Self {
        let mean = |j: f64| (t.elapsed_s > 0.0).then(|| Watts(j / t.elapsed_s));
        Self {
            gpu_w: mean(t.gpu_j).filter(|_| gpu_measured),
            cpu_w: mean(t.cpu_j),
            mem_w: mean(t.mem_j),
            facility_w: mean(t.it_j()).map(|w| w * pue),
        }
    }
}

/// The grid intensity of the last tick and how long it has held that value.
#[derive(Debug, Clone, PartialEq)]
pub struct IntensityNow {
    pub g_per_kwh: GPerKwh,
    pub source: IntensitySource,
    pub age_s: f64,
}

impl IntensityNow {
    /// A value held through a provider's fault.
    pub fn stale(&self) -> bool {
        self.source.stale
    }
}

/// Tree-days and car-km for the operational carbon (Green Algorithms constants).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Equivalents {
    pub tree_days: f64,
    pub car_km: f64,
}

/// The average cost of an accuracy point: C_total / (a_now − a_start) (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerPoint {
    pub gained: f64,
    pub co2e_g: GramsCo2e,
    pub energy_kwh: FacilityKwh,
    pub tree_days: f64,
}

/// The marginal cost of the last whole point, and how it compares with the first point that
/// cost anything (diminishing returns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastPoint {
    pub point: u32,
    pub co2e_g: GramsCo2e,
    pub energy_kwh: FacilityKwh,
    pub vs_first: Option<f64>,
}

/// gCO2e per `unit` of a named metric's gain.
#[derive(Debug, Clone, PartialEq)]
pub struct PerMetric {
    pub name: String,
    pub gained: f64,
    pub unit: f64,
    pub co2e_g: GramsCo2e,
}

/// gCO2e expected over the grid window at the present power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowForecast {
    pub window: TimeDelta,
    pub co2e_g: GramsCo2e,
    /// Share of the window the provider's forecast covered.
    pub covered: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessPart {
    Cpu,
    Gpu,
    Mem,
}

/// `run -- CMD`: the command's own figures, as CodeCarbon's `tracking_mode = process` gives
/// them: IT energy by component (kWh; the network its traffic's port share), facility energy
/// (× PUE), operational carbon (Σ E × PUE × I(t)) and mean powers (with PUE for the facility).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Command {
    pub cpu_kwh: ItKwh,
    /// None: no GPU measured.
    pub gpu_kwh: Option<ItKwh>,
    pub mem_kwh: ItKwh,
    pub net_kwh: ItKwh,
    pub energy_kwh: FacilityKwh,
    pub co2e_g: GramsCo2e,
    pub mean_power_w: MeanPower,
    /// Some GPU's driver gave no per-process figures: that GPU counts whole.
    pub gpu_whole: bool,
}

impl Command {
    /// Its carbon in kg (CodeCarbon's `emissions`) and the rate over `elapsed_s` (kg/s).
    pub fn co2e_kg(&self) -> f64 {
        self.co2e_g.0 / 1000.0
    }

    pub fn co2e_kg_per_s(&self, elapsed_s: f64) -> Option<f64> {
        (elapsed_s > 0.0).then(|| self.co2e_kg() / elapsed_s)
    }
}

/// The watched command's share of a component's energy (CPU time share; GPU SM share; memory
/// by resident share).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessShare {
    pub part: ProcessPart,
    pub share: f64,
    pub energy_kwh: ItKwh,
    pub of_kwh: ItKwh,
}

/// `run -- CMD`: the command's own TCP traffic, by where its peers are, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CmdComms {
    pub cluster: Traffic,
    pub internet: Traffic,
    /// Its RDMA bytes (cluster traffic on the RDMA ports; not in `cluster`, which is TCP).
    pub rdma: Traffic,
    /// Its share of this machine's port energy (IT, before PUE; part of the machine's
    /// network energy) and the cluster traffic's part of that.
    pub port_kwh: ItKwh,
    pub port_cluster_kwh: ItKwh,
    /// That share's carbon (× PUE × the run's mean intensity), with the port model's band.
    pub port_co2e: Band,
    /// The internet path's energy for its public traffic (kWh; other people's equipment, not
    /// this machine's) and its carbon, with the band of the published kWh/GB range.
    pub internet_kwh: f64,
    pub internet_co2e: Band,
}

/// The machine's RDMA ports over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RdmaComms {
    pub bytes: Traffic,
    /// Their port energy (IT, part of the network's) and its carbon (part of `comms`).
    pub energy: ItKwh,
    pub co2e: GramsCo2e,
}

/// Every figure any output shows, made once by the engine (DESIGN.md §2).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub ticks: u64,
    pub elapsed_s: f64,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub pue: Pue,
    pub now: PowerNow,
    /// Facility energy (kWh, IT × PUE).
    pub energy_kwh: FacilityKwh,
    pub it: ItEnergy,
    /// Operational carbon: Σ E_tick × I(t_tick), with PUE.
    pub co2e_g: GramsCo2e,
    /// Operational carbon with the band of its components (measurement error, estimates'
    /// ranges, the network's kWh/GB range).
    pub co2e_band: Band,
    /// Operational + embodied, with the band of their sum.
    pub total_band: Band,
    /// Operational + embodied.
    pub total_co2e_g: GramsCo2e,
    /// Energy-weighted mean intensity (g/kWh).
    pub mean_intensity: Option<GPerKwh>,
    pub intensity: Option<IntensityNow>,
    pub embodied: Option<Band>,
    /// The machine's network (its NICs' and switch ports' share, by the port model): its part
    /// of the operational carbon, with its band.
    pub comms: Option<Band>,
    /// `run -- CMD`: the command's own traffic and what it cost.
    pub cmd_net: Option<CmdComms>,
    /// The RDMA ports, where the machine has any: their traffic and their part of the
    /// network's energy and carbon (cluster traffic, this machine's adapters and switch ports).
    pub rdma: Option<RdmaComms>,
    pub equivalents: Equivalents,
    pub progress: Progress,
    pub first_accuracy: Option<f64>,
    pub per_point: Option<PerPoint>,
    pub last_point: Option<LastPoint>,
    pub per_loss_hundredth: Option<GramsCo2e>,
    pub per_metric: Option<PerMetric>,
    pub milestones: Vec<Milestone>,
    pub to_go: Option<ToGo>,
    pub target: Option<Target>,
    pub forecast: Option<WindowForecast>,
    pub greener: Option<Greener>,
    pub cap_changes: usize,
    pub cap_effect: Option<CapEffect>,
    pub process: Vec<ProcessShare>,
    /// `run -- CMD`: the command's own figures.
    pub command: Option<Command>,
    /// The operational carbon priced from the embedded table's annual means, with the table's
    /// band (`GRID_TABLE_BAND`); None when no tick was.
    pub table_co2e: Option<Band>,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub gpu_count: usize,
    pub gpu_util_mean: Option<f64>,
    pub mean_power_w: MeanPower,
    pub rapl_wraps: u64,
    pub rapl_resets: u64,
    /// GPUs whose energy counter and power readings differed by more than 5% over a minute.
    pub counter_divergence: Vec<CounterDivergence>,
}

impl Snapshot {
    /// Operational carbon in kg (CodeCarbon's `emissions`) and its rate per second.
    pub fn co2e_kg(&self) -> f64 {
        self.co2e_g.0 / 1000.0
    }

    pub fn co2e_kg_per_s(&self) -> Option<f64> {
        (self.elapsed_s > 0.0).then(|| self.co2e_kg() / self.elapsed_s)
    }

    /// Facility energy in joules.
    pub fn facility_j(&self) -> f64 {
        self.energy_kwh.joules()
    }

    /// Facility energy of a component (kWh): IT × PUE, for CodeCarbon's per-component columns.
    pub fn facility_kwh(&self, it: ItKwh) -> FacilityKwh {
        it * self.pue
    }

    /// The carbon of this run relative to another's (the comparison's "vs first").
    pub fn co2e_ratio_to(&self, other: &Snapshot) -> Option<f64> {
        (other.co2e_g.0 > 0.0).then(|| self.co2e_g / other.co2e_g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Ledger, LedgerConfig};
    use crate::sample::{CpuReading, Intensity, PowerReading, Progress, Sample};

    fn basis() -> Basis {
        Basis {
            pue: Pue::new(1.5).unwrap(),
            ..Default::default()
        }
    }

    fn sample(t: f64, w: f64, i: f64, acc: Option<f64>) -> Sample {
        Sample {
            time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::milliseconds((t * 1e3) as i64),
            elapsed_s: t,
            gpus: vec![],
            cpu: CpuReading::Power(PowerReading::Average(Watts(w))),
            mem: None,
            net: None,
            intensity: Some(Intensity {
                g_per_kwh: GPerKwh(i),
                source: crate::sample::SourceKind::Fixed.into(),
            }),
            progress: Progress {
                accuracy: acc,
                ..Default::default()
            },
            process: None,
            bands: Default::default(),
        }
    }

    fn fold(basis: Basis, samples: impl IntoIterator<Item = Sample>) -> Meter {
        let mut l = Ledger::new(LedgerConfig {
            pue: basis.pue,
            embodied_kg: basis.embodied.map_or(0.0, |e| e.kg),
            ..Default::default()
        });
        let mut m = Meter::new(basis, true);
        for s in samples {
            let tick = l.push(s);
            m.push(&tick, l.totals());
        }
        m
    }

    #[test]
    fn a_run_priced_from_the_table_has_a_wider_band_than_one_priced_live() {
        let run = |kind: crate::sample::SourceKind| {
            let samples = (0..3).map(|k| {
                let mut s = sample(f64::from(k) * 60.0, 100.0, 300.0, None);
                s.bands.cpu = Some((0.8, 1.2));
                if let Some(i) = s.intensity.as_mut() {
                    i.source = kind.clone().into();
                }
                s
            });
            fold(basis(), samples).snapshot()
        };
        let live = run(crate::sample::SourceKind::ElectricityMaps);
        let table = run(crate::sample::SourceKind::Table);
        assert_eq!(live.co2e_g, table.co2e_g);
        assert_eq!(live.table_co2e, None);
        let (lo, hi) = GRID_TABLE_BAND;
        // Live: the CPU estimate's ×0.8–1.2. Table: × 0.7–1.3 on top.
        let g = live.co2e_g.0;
        assert!((live.total_band.low.0 - 0.8 * g).abs() < 1e-9);
        assert!((live.total_band.high.0 - 1.2 * g).abs() < 1e-9);
        assert!((table.total_band.low.0 - 0.8 * lo * g).abs() < 1e-9);
        assert!((table.total_band.high.0 - 1.2 * hi * g).abs() < 1e-9);
        assert!(table.total_band.low < live.total_band.low);
        assert!(table.total_band.high > live.total_band.high);
        let t = table.table_co2e.unwrap();
        assert_eq!(t.g, table.co2e_g);
        assert!((t.low.0 - lo * g).abs() < 1e-9 && (t.high.0 - hi * g).abs() < 1e-9);
    }

    #[test]
    fn rates_equivalents_and_per_point_follow_the_formulas() {
        let m = fold(
            basis(),
            [(0.0, None), (1.0, Some(50.0)), (3601.0, Some(60.0))]
                .map(|(t, a)| sample(t, 100.0, 400.0, a)),
        );
        let s = m.snapshot();
        // 100 W × 1.5 = 150 W facility; × 400 g/kWh = 60 g/h.
        assert_eq!(s.now.facility_w, Some(Watts(150.0)));
        assert!((s.now.co2e_g_per_h.unwrap().0 - 60.0).abs() < 1e-9);
        // C_total / Δa (DESIGN.md §5): 3601 s at 150 W = 0.150042 kWh, × 400 g over 10 points.
        let p = s.per_point.unwrap();
        assert_eq!(p.gained, 10.0);
        let kwh = 150.0 * 3601.0 / 3.6e6;
        assert!((p.co2e_g.0 - kwh * 400.0 / 10.0).abs() < 1e-9, "{p:?}");
        assert!((p.energy_kwh.0 - kwh / 10.0).abs() < 1e-12);
        assert!((p.tree_days - p.co2e_g.0 / 1000.0 / (11.0 / 365.0)).abs() < 1e-12);
        assert!((s.equivalents.tree_days - s.co2e_g.0 / 1000.0 / (11.0 / 365.0)).abs() < 1e-12);
        assert!((s.equivalents.car_km - s.co2e_g.0 / 175.0).abs() < 1e-12);
        // Points 50..=60 reached: milestones at the ticks that reached them.
        assert_eq!(s.milestones.len(), 11);
        assert_eq!(s.milestones[0].point, 50);
        assert_eq!(s.milestones[10].point, 60);
        // 51..=60 were all first reached at the same tick, an hour at 150 W facility after
        // point 50: 0.15 kWh × 400 g = 60 g for the ten, 6 g each.
        let l = s.last_point.unwrap();
        assert_eq!(l.point, 60);
        assert!((l.co2e_g.0 - 6.0).abs() < 1e-9, "{l:?}");
        assert!((s.milestones[1].cost_g.0 - 6.0).abs() < 1e-9);
        assert_eq!(s.milestones[0].cost_g, GramsCo2e(0.0));
        // Intensity has not changed since the first tick.
        assert_eq!(s.intensity.unwrap().age_s, 3601.0);
        // IT energy split: all CPU.
        assert_eq!(s.it.cpu_share, Some(1.0));
        assert_eq!(s.it.gpu_kwh, None);
    }

    #[test]
    fn embodied_band_scales_the_recorded_figure_by_the_published_range() {
        use crate::engine::constants::machine_embodied;
        let te = machine_embodied(&["NVIDIA A100-SXM4-80GB"], 1);
        let m = fold(
            Basis {
                embodied: Some(te),
                ..basis()
            },
            [0.0, 3600.0].map(|t| sample(t, 100.0, 400.0, None)),
        );
        let s = m.snapshot();
        // 2,650 kg over 6 years, one hour of it; the band 2,650 → 2,650 … 2,818 kg (A100: 150–318).
        let g = 2650e3 / (6.0 * 365.25 * 24.0);
        let e = s.embodied.unwrap();
        assert!((e.g.0 - g).abs() < 1e-9);
        assert!(
            (e.low.0 - g).abs() < 1e-9 && (e.high.0 - 2818e3 / (6.0 * 365.25 * 24.0)).abs() < 1e-9
        );
        assert!((s.total_co2e_g.0 - s.co2e_g.0 - g).abs() < 1e-9);
        // The user's own --embodied-kg has no range.
        let m = fold(
            Basis {
                embodied: Some(EmbodiedKg::exact(te.kg)),
                ..basis()
            },
            [0.0, 3600.0].map(|t| sample(t, 100.0, 400.0, None)),
        );
        assert_eq!(m.snapshot().embodied.unwrap().range(), None);
    }

    #[test]
    fn bands_add_up_component_by_component_then_with_embodied() {
        use crate::engine::constants::EmbodiedKg;
        // CPU at 100 W, memory at 50 W for an hour each, at 400 then 100 g/kWh.
        let mut samples: Vec<Sample> = [0.0, 3600.0, 7200.0]
            .map(|t| sample(t, 100.0, if t <= 3600.0 { 400.0 } else { 100.0 }, None))
            .into();
        for s in &mut samples {
            s.mem = Some(PowerReading::Average(Watts(50.0)));
        }
        let b = Basis {
            bands: Bands {
                cpu: Bands::pm(0.05),
                mem: (0.4, 1.2),
                ..Default::default()
            },
            embodied: Some(EmbodiedKg {
                kg: 100.0,
                low: 50.0,
                high: 400.0,
            }),
            ..basis()
        };
        let m = fold(b, samples);
        let t = &m.totals;
        let by = t.co2e_by;
        assert!((by.cpu + by.mem + by.gpu + by.net - t.co2e_g).abs() < 1e-9);
        // Each component priced tick by tick: 0.1 kWh × 1.5 × (400 + 100) for the CPU.
        assert!((by.cpu - 0.1 * 1.5 * 500.0).abs() < 1e-9, "{by:?}");
        let s = m.snapshot();
        let op = s.co2e_band;
        assert!((op.low.0 - (by.cpu * 0.95 + by.mem * 0.4)).abs() < 1e-9);
        assert!((op.high.0 - (by.cpu * 1.05 + by.mem * 1.2)).abs() < 1e-9);
        let e = s.embodied.unwrap();
        assert!(e.low < e.g && e.g < e.high);
        let tot = s.total_band;
        assert_eq!(tot.g, s.total_co2e_g);
        assert!((tot.low.0 - (op.low.0 + e.low.0)).abs() < 1e-9);
        assert!((tot.high.0 - (op.high.0 + e.high.0)).abs() < 1e-9);
    }

    #[test]
    fn comms_is_the_network_energy_with_the_port_models_band() {
        use crate::sample::{Links, NetReading};
        let mut samples: Vec<Sample> = [0.0, 3600.0].map(|t| sample(t, 100.0, 400.0, None)).into();
        for (s, rx) in samples.iter_mut().zip([0, 1_000_000_000]) {
            s.net = Some(NetReading {
                rx_bytes: rx,
                links: Some(Links {
                    known: 1,
                    known_gbps: 10.0,
                    unknown: 0,
                }),
                ..Default::default()
            });
        }
        let s = fold(basis(), samples).snapshot();
        let c = s.comms.unwrap();
        let i = s.mean_intensity.unwrap().0;
        // 1 GB in an hour on 10 GbE: 7.5 W × 8e9 / 3.6e13 of the line for 3600 s = 6 J,
        // × PUE 1.5 × the mean intensity; the band is the 10 GbE class's 3–11 W.
        let kwh = 6.0 / 3.6e6;
        assert!((c.g.0 - kwh * 1.5 * i).abs() < 1e-12, "{c:?}");
        assert!((c.low.0 - c.g.0 * 3.0 / 7.5).abs() < 1e-12);
        assert!((c.high.0 - c.g.0 * 11.0 / 7.5).abs() < 1e-12);
        assert!(s.cmd_net.is_none(), "not a run");
    }

    #[test]
    fn the_commands_internet_footprint_is_in_the_total_not_in_the_machines_energy() {
        use crate::sample::{NetReading, OwnTraffic, Traffic};
        let own = |b| {
            Some(NetReading {
                own: Some(OwnTraffic {
                    cluster: Traffic::default(),
                    internet: Traffic {
                        rx_bytes: b,
                        tx_bytes: 0,
                    },
                }),
                ..Default::default()
            })
        };
        let mut samples: Vec<Sample> = [0.0, 10.0].map(|t| sample(t, 100.0, 400.0, None)).into();
        samples[0].net = own(0);
        samples[1].net = own(2_000_000_000);
        let m = fold(basis(), samples);
        let s = m.snapshot();
        let c = s.cmd_net.unwrap();
        // 2 GB at the default 0.00265 kWh/GB, at 400 g/kWh.
        assert!((c.internet_kwh - 0.0053).abs() < 1e-12);
        assert!((c.internet_co2e.g.0 - 0.0053 * 400.0).abs() < 1e-9);
        assert!((c.internet_co2e.low.0 - 2.0 * 0.001 * 400.0).abs() < 1e-9);
        assert!((c.internet_co2e.high.0 - 2.0 * 0.06894 * 400.0).abs() < 1e-9);
        // The machine's energy is the CPU's alone (100 W × 10 s × PUE 1.5); the total adds
        // the path's footprint, with its band.
        assert!((s.energy_kwh.0 - 1000.0 * 1.5 / 3.6e6).abs() < 1e-15);
        assert!((s.total_band.g.0 - (s.co2e_g.0 + c.internet_co2e.g.0)).abs() < 1e-9);
        assert!((s.total_band.high.0 - (s.co2e_band.high.0 + c.internet_co2e.high.0)).abs() < 1e-9);
        // 2 GB in 10 s is 1.6 Gb/s of the assumed 10 GbE: 1.2 W of port power, 12 J.
        assert!((c.port_kwh.0 - 12.0 / 3.6e6).abs() < 1e-15);
        assert_eq!(c.port_cluster_kwh.0, 0.0);
    }

    #[test]
    fn a_cap_change_shows_its_effect_on_power_speed_and_energy_per_step() {
        use crate::sample::GpuReading;
        // 300 W cap: 200 W, 10 steps/s for 20 s; then a 200 W cap: 150 W, 8 steps/s.
        let mut steps = 0.0;
        let samples = (0..=60).map(|k| {
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
                power: Some(PowerReading::Average(Watts(w))),
                cap_w: Some(cap),
                ..Default::default()
            }];
            s.progress.step = Some(steps as u64);
            s
        });
        let s = fold(
            Basis {
                gpu_count: 1,
                ..Default::default()
            },
            samples.collect::<Vec<_>>(),
        )
        .snapshot();
        let e = s.cap_effect.unwrap();
        assert_eq!(
            (e.old_w, e.new_w, e.elapsed_s),
            (Some(300.0), Some(200.0), 20.0)
        );
        assert_eq!(e.before.gpu_w, 200.0);
        assert_eq!(e.before.steps_per_s, Some(10.0));
        let d = e.deltas().unwrap();
        assert!((d.power - (150.0 / 200.0 - 1.0)).abs() < 1e-12);
        assert!((d.speed.unwrap() - (8.0 / 10.0 - 1.0)).abs() < 1e-12);
        assert!(
            (d.energy_per_step.unwrap() - ((150.0 / 8.0) / (200.0 / 10.0) - 1.0)).abs() < 1e-12
        );
        assert_eq!(s.cap_changes, 1);
    }

    #[test]
    fn forecast_to_the_last_epoch_and_to_a_target_accuracy() {
        // 100 W IT × PUE 1.5 at 400 g/kWh; one epoch every 10 s, +1 accuracy point per epoch.
        let run = |target: Target| {
            let samples = (0..=50).map(|k| {
                let t = f64::from(k);
                let mut s = sample(t, 100.0, 400.0, Some(50.0 + (t / 10.0).floor()));
                s.progress.epoch = Some((t / 10.0).floor());
                s
            });
            fold(
                Basis {
                    target: Some(target),
                    ..basis()
                },
                samples.collect::<Vec<_>>(),
            )
            .snapshot()
        };
        // At 50 s: epoch 5 of 20, 0.1 epochs/s → 150 s to go at 150 W facility.
        let g = run(Target::Epochs(20.0)).to_go.unwrap();
        assert!((g.secs - 150.0).abs() < 1e-9, "{g:?}");
        assert!((g.energy_kwh.0 - 150.0 * 150.0 / 3.6e6).abs() < 1e-12);
        // No provider forecast: the present 400 g/kWh throughout.
        assert!((g.co2e_g.0 - g.energy_kwh.0 * 400.0).abs() < 1e-9);
        assert_eq!(g.forecast_covered, 0.0);
        // Accuracy 55% now, +0.1 pt/s over the last milestones: 60% in 50 s.
        let g = run(Target::Accuracy(60.0)).to_go.unwrap();
        assert!((g.secs - 50.0).abs() < 1e-9, "{g:?}");
        // Already there.
        assert_eq!(run(Target::Accuracy(55.0)).to_go.unwrap().secs, 0.0);
    }

    #[test]
    fn loss_and_a_target_metric_are_priced_by_the_total() {
        let mut samples: Vec<Sample> = [0.0, 3600.0].map(|t| sample(t, 100.0, 400.0, None)).into();
        samples[0].progress.loss = Some(2.0);
        samples[1].progress.loss = Some(1.5);
        samples[0].progress.metrics = vec![("f1".into(), 0.50)];
        samples[1].progress.metrics = vec![("f1".into(), 0.60)];
        let s = fold(
            Basis {
                pue: Pue::default(),
                target_metric: Some("f1".into()),
                ..Default::default()
            },
            samples,
        )
        .snapshot();
        // 0.1 kWh × 400 g = 40 g for 0.5 of loss: 0.8 g per 0.01.
        assert!((s.per_loss_hundredth.unwrap().0 - 0.8).abs() < 1e-9);
        // 40 g for +0.10 of F1: 4 g per 0.01.
        let m = s.per_metric.unwrap();
        assert_eq!((m.name.as_str(), m.unit), ("f1", 0.01));
        assert!((m.gained - 0.1).abs() < 1e-12 && (m.co2e_g.0 - 4.0).abs() < 1e-9);
    }
}
