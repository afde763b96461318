//! `carbontop reprice`: a recorded run's energy profile priced again — in other zones, at other
//! start times, under another PUE (DESIGN.md §3). The formula is the recording's own,
//! C = Σ_ticks E_it × PUE × I(t_tick) (§5: never the total energy × one intensity), so a run
//! whose power peaks at a dirty hour is priced differently from the same energy spread flat.
//!
//! The profile keeps the run's IT energy in bins (one second at first, doubled whenever the run
//! outgrows [`MAX_BINS`], so memory is bounded whatever the run's length), each with the carbon
//! it was recorded with; the band of the recorded carbon (the Meter's) carries over as factors. A bin's energy is priced at the
//! intensity valid at the bin's middle: a trace's slots are 5 min (Electricity Maps, WattTime)
//! to 30 min (GB), and a month-long run's bins are 16 s, so this moves no energy across a slot's
//! edge by more than half a bin.

use crate::engine::meter::Band;
use crate::units::{FacilityKwh, GPerKwh, GramsCo2e, ItKwh, Pue};
use chrono::{DateTime, TimeDelta, Utc};

/// The most bins a profile holds (40 bytes each: 10 MiB).
pub const MAX_BINS: usize = 1 << 18;
/// The longest run a profile holds: ten years, already far past any training run; a recording
/// claiming more is refused.
pub const MAX_RUN_S: f64 = 10.0 * 365.25 * 86_400.0;
/// The most bin × start products one window search prices (a few seconds of arithmetic).
pub const MAX_WORK: usize = 500_000_000;
/// The most points a trace holds (a year at one-minute resolution is 525,960; 24 bytes each).
pub const MAX_TRACE_POINTS: usize = 1_100_000;
/// The most start times one window search tries.
pub const MAX_STARTS: usize = 100_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RepriceError {
    #[error("the run lasts {0:.0} s: longer than the {MAX_RUN_S:.0} s a profile holds")]
    TooLong(f64),
    #[error("the recording has no energy to price")]
    NoEnergy,
    #[error("the trace has no points")]
    EmptyTrace,
    #[error("the trace has more than {MAX_TRACE_POINTS} points")]
    TraceTooLong,
    #[error("{0}")]
    Window(String),
}

/// One bin of the run's energy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bin {
    /// IT energy (before PUE).
    pub it: ItKwh,
    /// The facility energy and carbon the recording gave this energy (its PUE and intensity).
    pub facility: FacilityKwh,
    pub recorded: GramsCo2e,
}

/// A recorded run's energy, bin by bin from its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub start: DateTime<Utc>,
    pub duration_s: f64,
    pub ticks: u64,
    /// The bins' width (s): 1, doubled as the run grows.
    pub bin_s: f64,
    pub bins: Vec<Bin>,
    /// The ends of the recorded carbon's band as factors of it (the Meter's `co2e_band`: the
    /// estimates' published ranges, the meters' errors and, for ticks priced from the table,
    /// the table's band), kept by the recorded intensities under another PUE.
    pub band: (f64, f64),
    /// The same without the table's band: the energy's own, which energy priced at another
    /// intensity keeps (that intensity brings its own band).
    pub energy_band: (f64, f64),
}

impl Profile {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            duration_s: 0.0,
            ticks: 0,
            bin_s: 1.0,
            bins: Vec::new(),
            band: (1.0, 1.0),
            energy_band: (1.0, 1.0),
        }
    }

    /// The recorded carbon's band, as the Meter gave it (`low ≤ g ≤ high`), of which
    /// `table_g` was priced from the table (its ticks' ends carry `table` = ×0.7–1.3 too).
    /// Per tick the ends are the energy's factor × the grid's, so with the energy's factor
    /// `r` alike over the run, low = r × (g − table_g + 0.7 × table_g): the energy's own
    /// factor is low over that sum (exact for a uniform factor, its weighted mean otherwise).
    pub fn set_band(&mut self, b: &Band, table_g: f64, table: (f64, f64)) {
        let g = b.g.0;
        if g > 0.0 {
            self.band = (b.low.0 / g, b.high.0 / g);
            let t = table_g.clamp(0.0, g);
            self.energy_band = (
                b.low.0 / (g - t + table.0 * t),
                b.high.0 / (g - t + table.1 * t),
            );
        }
    }

    /// Halves the bins' count (pairs merged) and doubles their width.
    fn coarsen(&mut self) {
        let merged = self
            .bins
            .chunks(2)
            .map(|p| {
                let mut b = p[0];
                if let Some(n) = p.get(1) {
                    b.it += n.it;
                    b.facility += n.facility;
                    b.recorded += n.recorded;
                }
                b
            })
            .collect();
        self.bins = merged;
        self.bin_s *= 2.0;
    }

    /// Adds one tick: the interval of `dt_s` seconds ending `end_s` after the start, its IT
    /// energy, and the facility energy and carbon the recording gave it.
    pub fn add(
        &mut self,
        end_s: f64,
        dt_s: f64,
        it: ItKwh,
        facility: FacilityKwh,
        recorded: GramsCo2e,
    ) -> Result<(), RepriceError> {
        if !(end_s.is_finite() && end_s <= MAX_RUN_S) {
            return Err(RepriceError::TooLong(end_s));
        }
        self.ticks += 1;
        self.duration_s = self.duration_s.max(end_s);
        let mid = (end_s - dt_s.max(0.0) / 2.0).max(0.0);
        while mid / self.bin_s >= MAX_BINS as f64 {
            self.coarsen();
        }
        let i = (mid / self.bin_s) as usize;
        if self.bins.len() <= i {
            self.bins.resize(i + 1, Bin::default());
        }
        let b = &mut self.bins[i];
        b.it += it;
        b.facility += facility;
        b.recorded += recorded;
        Ok(())
    }

    /// The time at the middle of bin `i`, shifted to start at `start`.
    fn at(&self, start: DateTime<Utc>, i: usize) -> DateTime<Utc> {
        start + secs((i as f64 + 0.5) * self.bin_s)
    }

    /// The length the bins span (s).
    pub fn span_s(&self) -> f64 {
        self.bins.len() as f64 * self.bin_s
    }

    pub fn it(&self) -> ItKwh {
        self.bins.iter().map(|b| b.it).sum()
    }

    /// The carbon as recorded, with its band.
    pub fn recorded(&self) -> Band {
        let g: GramsCo2e = self.bins.iter().map(|b| b.recorded).sum();
        band(g, g * self.band.0, g * self.band.1)
    }

    /// The facility energy as recorded.
    pub fn facility(&self) -> FacilityKwh {
        self.bins.iter().map(|b| b.facility).sum()
    }

    /// Priced with `intensity(t)` for the energy at `t` (None: not covered), starting at
    /// `start`, under `pue`; the intensity's own band is `(g, low, high)`.
    fn price(
        &self,
        start: DateTime<Utc>,
        pue: Pue,
        (e_low, e_high): (f64, f64),
        mut intensity: impl FnMut(DateTime<Utc>, &Bin) -> Option<[GPerKwh; 3]>,
    ) -> Option<Band> {
        let (mut g, mut low, mut high) = (GramsCo2e(0.0), GramsCo2e(0.0), GramsCo2e(0.0));
        for (i, b) in self.bins.iter().enumerate() {
            if b.it.0 <= 0.0 {
                continue;
            }
            let [i_g, i_low, i_high] = intensity(self.at(start, i), b)?;
            g += b.it * pue * i_g;
            low += b.it * e_low * pue * i_low;
            high += b.it * e_high * pue * i_high;
        }
        Some(band(g, low, high))
    }

    /// At one intensity all along (a zone's annual mean, with its band).
    pub fn at_intensity(&self, pue: Pue, i: [GPerKwh; 3]) -> Band {
        self.price(self.start, pue, self.energy_band, |_, _| Some(i))
            .unwrap_or_else(|| band(GramsCo2e(0.0), GramsCo2e(0.0), GramsCo2e(0.0)))
    }

    /// At the intensities the recording had, under another PUE.
    pub fn with_pue(&self, pue: Pue) -> Band {
        self.price(self.start, pue, self.band, |_, b| {
            let i = if b.facility.0 > 0.0 {
                b.recorded / b.facility
            } else {
                GPerKwh(0.0)
            };
            Some([i; 3])
        })
        .unwrap_or_else(|| band(GramsCo2e(0.0), GramsCo2e(0.0), GramsCo2e(0.0)))
    }

    /// On a trace, the run starting at `start`; None where the trace does not cover it.
    pub fn on_trace(&self, trace: &Trace, start: DateTime<Utc>, pue: Pue) -> Option<Band> {
        self.price(start, pue, self.energy_band, |t, _| {
            trace.at(t).map(|i| [i; 3])
        })
    }
}

/// What an option is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The run as it was recorded.
    Recorded,
    /// The recorded intensities under another PUE.
    Pue,
    /// A zone's annual mean from the embedded table.
    Zone,
    /// A start time on an intensity trace.
    Start,
}

/// One way the run could have been priced: its carbon with its band, and the facility energy
/// and energy-weighted mean intensity behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub kind: Kind,
    pub label: String,
    /// Where it came from (a zone's year, basis and source; a trace's file).
    pub detail: String,
    pub start: DateTime<Utc>,
    pub facility: FacilityKwh,
    pub band: Band,
    pub mean: GPerKwh,
}

impl Choice {
    fn new(
        kind: Kind,
        label: String,
        detail: String,
        start: DateTime<Utc>,
        facility: FacilityKwh,
        band: Band,
    ) -> Self {
        let mean = if facility.0 > 0.0 {
            band.g / facility
        } else {
            GPerKwh(0.0)
        };
        Self {
            kind,
            label,
            detail,
            start,
            facility,
            band,
            mean,
        }
    }

    /// Its carbon against another option's, as a fraction (−0.25: a quarter less).
    pub fn change_from(&self, other: &Choice) -> Option<f64> {
        (other.band.g.0 > 0.0).then(|| self.band.g.0 / other.band.g.0 - 1.0)
    }
}

impl Profile {
    pub fn recorded_choice(&self, detail: String) -> Choice {
        Choice::new(
            Kind::Recorded,
            "as recorded".into(),
            detail,
            self.start,
            self.facility(),
            self.recorded(),
        )
    }

    pub fn pue_choice(&self, pue: Pue) -> Choice {
        Choice::new(
            Kind::Pue,
            format!("PUE {pue}"),
            "the recorded intensities".into(),
            self.start,
            self.it() * pue,
            self.with_pue(pue),
        )
    }

    /// A zone's annual mean `i` (with its band), named `label`.
    pub fn zone_choice(&self, pue: Pue, i: [GPerKwh; 3], label: String, detail: String) -> Choice {
        Choice::new(
            Kind::Zone,
            label,
            detail,
            self.start,
            self.it() * pue,
            self.at_intensity(pue, i),
        )
    }

    /// The `k`th start tried on a trace.
    pub fn start_choice(
        &self,
        s: &Starts,
        k: usize,
        pue: Pue,
        label: String,
        detail: String,
    ) -> Option<Choice> {
        let (at, band) = *s.tried.get(k)?;
        Some(Choice::new(
            Kind::Start,
            label,
            detail,
            at,
            self.it() * pue,
            band,
        ))
    }
}

fn band(g: GramsCo2e, low: GramsCo2e, high: GramsCo2e) -> Band {
    Band {
        g,
        low: if low < g { low } else { g },
        high: if high > g { high } else { g },
    }
}

fn secs(s: f64) -> TimeDelta {
    TimeDelta::milliseconds((s * 1000.0).round() as i64)
}

/// A grid intensity over time: each point holds until the next; the last for one slot (the
/// trace's own spacing: its median step).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    points: Vec<(DateTime<Utc>, GPerKwh)>,
    end: DateTime<Utc>,
}

impl Trace {
    /// Points in any order; two at one time keep the later one read.
    pub fn new(mut points: Vec<(DateTime<Utc>, GPerKwh)>) -> Result<Self, RepriceError> {
        if points.is_empty() {
            return Err(RepriceError::EmptyTrace);
        }
        if points.len() > MAX_TRACE_POINTS {
            return Err(RepriceError::TraceTooLong);
        }
        points.sort_by_key(|p| p.0);
        let mut kept: Vec<(DateTime<Utc>, GPerKwh)> = Vec::with_capacity(points.len());
        for p in points {
            match kept.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => kept.push(p),
            }
        }
        let mut steps: Vec<TimeDelta> = kept.windows(2).map(|w| w[1].0 - w[0].0).collect();
        steps.sort();
        // A one-point trace holds for an hour (the slowest provider's slot).
        let slot = steps
            .get(steps.len() / 2)
            .copied()
            .unwrap_or(TimeDelta::hours(1));
        let end = kept.last().map_or(kept[0].0, |l| l.0) + slot;
        Ok(Self { points: kept, end })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.points[0].0
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The points, by time: each holds until the next (the last until `end`).
    pub fn points(&self) -> &[(DateTime<Utc>, GPerKwh)] {
        &self.points
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The intensity valid at `t`, if the trace covers it.
    pub fn at(&self, t: DateTime<Utc>) -> Option<GPerKwh> {
        if t < self.points[0].0 || t >= self.end {
            return None;
        }
        let i = self.points.partition_point(|p| p.0 <= t);
        Some(self.points[i - 1].1)
    }

    /// Whether the trace covers `[start, start + secs)`.
    pub fn covers(&self, start: DateTime<Utc>, len_s: f64) -> bool {
        start >= self.start() && start + secs(len_s) <= self.end
    }
}

/// The run priced at each start from `from` to `from + within_s` every `step_s`, where the
/// trace covers the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Starts {
    pub tried: Vec<(DateTime<Utc>, Band)>,
    /// Index into `tried` of the lowest carbon (the earliest of equals).
    pub best: usize,
}

impl Starts {
    /// What the best start saves against the first (g, and as a fraction of the first's).
    pub fn saving(&self) -> (GramsCo2e, f64) {
        let (first, best) = (self.tried[0].1.g, self.tried[self.best].1.g);
        let frac = if first.0 > 0.0 {
            (first.0 - best.0) / first.0
        } else {
            0.0
        };
        (first - best, frac)
    }
}

pub fn starts(
    p: &Profile,
    trace: &Trace,
    from: DateTime<Utc>,
    within_s: f64,
    step_s: f64,
    pue: Pue,
) -> Result<Starts, RepriceError> {
    if !(step_s.is_finite() && step_s > 0.0 && within_s.is_finite() && within_s >= 0.0) {
        return Err(RepriceError::Window(
            "the window and its step must be positive".into(),
        ));
    }
    let n = (within_s / step_s).floor() as usize + 1;
    if n > MAX_STARTS || n.saturating_mul(p.bins.len()) > MAX_WORK {
        return Err(RepriceError::Window(format!(
            "{n} start times to try over {} bins: too many; use a longer --step",
            p.bins.len()
        )));
    }
    let len_s = p.span_s();
    let tried: Vec<(DateTime<Utc>, Band)> = (0..n)
        .map(|k| from + secs(k as f64 * step_s))
        .filter(|&s| trace.covers(s, len_s))
        .filter_map(|s| Some((s, p.on_trace(trace, s, pue)?)))
        .collect();
    let best = tried
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.g.0.total_cmp(&b.1.1.g.0))
        .map(|(i, _)| i)
        .ok_or_else(|| {
            RepriceError::Window(format!(
                "the trace ({} to {}) covers no start from {} within {} h for a run of {:.1} h",
                trace.start().format("%Y-%m-%d %H:%M"),
                trace.end().format("%Y-%m-%d %H:%M"),
                from.format("%Y-%m-%d %H:%M"),
                within_s / 3600.0,
                len_s / 3600.0
            ))
        })?;
    Ok(Starts { tried, best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A run of `kwh[i]` IT kWh in minute i (one tick a minute), recorded at 100 g/kWh, PUE 1.
    fn profile(kwh: &[f64]) -> Profile {
        let mut p = Profile::new(t0());
        for (i, &e) in kwh.iter().enumerate() {
            let e = ItKwh(e);
            p.add(
                (i + 1) as f64 * 60.0,
                60.0,
                e,
                FacilityKwh(e.0),
                GramsCo2e(e.0 * 100.0),
            )
            .unwrap();
        }
        let g = p.recorded().g;
        p.set_band(
            &Band {
                g,
                low: g * 0.9,
                high: g * 1.2,
            },
            0.0,
            (0.7, 1.3),
        );
        p
    }

    fn hourly(values: &[f64]) -> Trace {
        Trace::new(
            values
                .iter()
                .enumerate()
                .map(|(h, &g)| (t0() + TimeDelta::hours(h as i64), GPerKwh(g)))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_peak_at_a_dirty_hour_costs_more_than_the_same_energy_spread_flat() {
        // Two hours; the second is dirty. 1.2 kWh either all in the second hour or flat.
        let mut peak = vec![0.0; 120];
        for e in peak.iter_mut().skip(60) {
            *e = 0.02;
        }
        let flat = vec![0.01; 120];
        let tr = hourly(&[100.0, 500.0]);
        let pue = Pue::new(1.0).unwrap();
        let a = profile(&peak).on_trace(&tr, t0(), pue).unwrap();
        let b = profile(&flat).on_trace(&tr, t0(), pue).unwrap();
        assert!((profile(&peak).it().0 - profile(&flat).it().0).abs() < 1e-12);
        assert!((a.g.0 - 1.2 * 500.0).abs() < 1e-9, "{a:?}");
        assert!((b.g.0 - (0.6 * 100.0 + 0.6 * 500.0)).abs() < 1e-9, "{b:?}");
        // The annual mean cannot tell them apart.
        let i = [GPerKwh(300.0); 3];
        assert_eq!(
            profile(&peak).at_intensity(pue, i).g,
            profile(&flat).at_intensity(pue, i).g
        );
    }

    #[test]
    fn the_bands_follow_the_energy_and_the_intensity() {
        let p = profile(&[0.5, 0.5]);
        let b = p.at_intensity(
            Pue::new(1.5).unwrap(),
            [GPerKwh(200.0), GPerKwh(150.0), GPerKwh(260.0)],
        );
        assert!((b.g.0 - 1.0 * 1.5 * 200.0).abs() < 1e-9);
        assert!((b.low.0 - 0.9 * 1.5 * 150.0).abs() < 1e-9);
        assert!((b.high.0 - 1.2 * 1.5 * 260.0).abs() < 1e-9);
        let r = p.recorded();
        assert!((r.g.0 - 100.0).abs() < 1e-9);
        assert!((r.low.0 - 90.0).abs() < 1e-9 && (r.high.0 - 120.0).abs() < 1e-9);
        // Another PUE at the recorded intensities.
        let q = p.with_pue(Pue::new(1.2).unwrap());
        assert!((q.g.0 - 120.0).abs() < 1e-9);
    }

    #[test]
    fn the_tables_band_is_taken_out_of_the_energys() {
        // Half the recorded carbon priced from the table: ends 0.9 × (50 + 0.7 × 50) and
        // 1.2 × (50 + 1.3 × 50).
        let mut p = profile(&[1.0]);
        let b = Band {
            g: GramsCo2e(100.0),
            low: GramsCo2e(0.9 * 85.0),
            high: GramsCo2e(1.2 * 115.0),
        };
        p.set_band(&b, 50.0, (0.7, 1.3));
        assert!((p.energy_band.0 - 0.9).abs() < 1e-12 && (p.energy_band.1 - 1.2).abs() < 1e-12);
        assert!((p.band.0 - 0.765).abs() < 1e-12 && (p.band.1 - 1.38).abs() < 1e-12);
    }

    #[test]
    fn the_best_start_is_the_cleanest_window_the_trace_covers() {
        // A 2-hour run, flat; a 6-hour trace whose hours 3 and 4 are clean.
        let p = profile(&[0.01; 120]);
        let tr = hourly(&[400.0, 400.0, 400.0, 50.0, 50.0, 400.0]);
        let pue = Pue::new(1.0).unwrap();
        let s = starts(&p, &tr, t0(), 6.0 * 3600.0, 1800.0, pue).unwrap();
        // Starts 0 … 4 h every 30 min fit (the run must end by 6 h).
        assert_eq!(s.tried.len(), 9);
        let (best_at, best) = s.tried[s.best];
        assert_eq!(best_at, t0() + TimeDelta::hours(3));
        assert!((best.g.0 - 1.2 * 50.0).abs() < 1e-9);
        // Starting at once: all at 400.
        assert!((s.tried[0].1.g.0 - 1.2 * 400.0).abs() < 1e-9);
        let (g, frac) = s.saving();
        assert!((g.0 - 1.2 * 350.0).abs() < 1e-9 && (frac - 0.875).abs() < 1e-12);
        // Half an hour in: half the first hour at 400, the rest …
        let half = s.tried[1].1.g.0;
        assert!((half - 1.2 * 400.0).abs() < 1e-9);
        let late = s.tried[5].1.g.0; // 2 h 30: 30 min at 400, 60 at 50, 30 at 50
        assert!((late - (0.3 * 400.0 + 0.9 * 50.0)).abs() < 1e-9, "{late}");
    }

    #[test]
    fn a_trace_that_covers_no_start_says_so() {
        let p = profile(&[0.01; 120]);
        let tr = hourly(&[400.0]);
        let e = starts(&p, &tr, t0(), 3600.0, 600.0, Pue::new(1.0).unwrap()).unwrap_err();
        assert!(e.to_string().contains("covers no start"), "{e}");
        assert!(starts(&p, &tr, t0(), 1e9, 1.0, Pue::new(1.0).unwrap()).is_err());
    }

    #[test]
    fn a_trace_holds_each_point_until_the_next_and_the_last_for_one_slot() {
        let tr = hourly(&[1.0, 2.0, 3.0]);
        assert_eq!(tr.at(t0() - TimeDelta::seconds(1)), None);
        assert_eq!(tr.at(t0()), Some(GPerKwh(1.0)));
        assert_eq!(tr.at(t0() + TimeDelta::minutes(90)), Some(GPerKwh(2.0)));
        assert_eq!(tr.at(t0() + TimeDelta::minutes(179)), Some(GPerKwh(3.0)));
        assert_eq!(tr.at(t0() + TimeDelta::minutes(180)), None);
        assert_eq!(Trace::new(vec![]), Err(RepriceError::EmptyTrace));
    }

    #[test]
    fn a_long_run_keeps_its_energy_in_bounded_bins() {
        // A year, one tick an hour of 1 kWh: the bins coarsen, nothing is lost.
        let mut p = Profile::new(t0());
        let e = ItKwh(1.0);
        for h in 1..=8760 {
            p.add(
                h as f64 * 3600.0,
                3600.0,
                e,
                FacilityKwh(1.0),
                GramsCo2e(100.0),
            )
            .unwrap();
        }
        assert!(p.bins.len() <= MAX_BINS, "{}", p.bins.len());
        assert!(p.bin_s >= 64.0 && p.bin_s <= 256.0, "{}", p.bin_s);
        assert!((p.it().0 - 8760.0).abs() < 1e-6);
        assert!((p.recorded().g.0 - 876_000.0).abs() < 1e-3);
        let b = p.at_intensity(Pue::new(1.0).unwrap(), [GPerKwh(10.0); 3]);
        assert!((b.g.0 - 87_600.0).abs() < 1e-6);
    }

    #[test]
    fn a_run_past_the_bound_is_refused() {
        let mut p = Profile::new(t0());
        let z = ItKwh(0.0);
        assert!(
            p.add(1e12, 1.0, z, FacilityKwh(0.0), GramsCo2e(0.0))
                .is_err()
        );
        assert!(
            p.add(f64::NAN, 1.0, z, FacilityKwh(0.0), GramsCo2e(0.0))
                .is_err()
        );
    }
}
