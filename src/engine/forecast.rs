//! Forecasts from a provider's intensity forecast (DESIGN.md §5 "Forecast"): what running on
//! at the present power will emit, and when within the forecast's horizon the grid is greenest.
//! Pure: the slots and the time come in as arguments.

use chrono::{DateTime, TimeDelta, Utc};

/// One forecast value valid over `[from, to)` (gCO2e/kWh).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub g_per_kwh: f64,
}

/// The intensity valid at `t` (the latest-starting slot that holds it).
pub fn value_at(slots: &[Slot], t: DateTime<Utc>) -> Option<f64> {
    slots
        .iter()
        .rev()
        .find(|s| s.from <= t && t < s.to)
        .map(|s| s.g_per_kwh)
}

/// `start`, `end` and every slot boundary between them, in order: walked in pairs, each piece
/// lies in one value of [`value_at`], so overlapping slots count once (the latest-starting one
/// winning).
fn boundaries(slots: &[Slot], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut cuts: Vec<DateTime<Utc>> = slots
        .iter()
        .flat_map(|s| [s.from, s.to])
        .filter(|&t| t > start && t < end)
        .collect();
    cuts.push(start);
    cuts.push(end);
    cuts.sort();
    cuts.dedup();
    cuts
}

/// ∫ I(t) dt over `[start, end)` in g/kWh × seconds, and the seconds the slots covered.
fn integral(slots: &[Slot], start: DateTime<Utc>, end: DateTime<Utc>) -> (f64, f64) {
    let cuts = boundaries(slots, start, end);
    let (mut sum, mut covered) = (0.0, 0.0);
    for w in cuts.windows(2) {
        let secs = (w[1] - w[0]).as_seconds_f64();
        if let Some(g) = value_at(slots, w[0]) {
            sum += g * secs;
            covered += secs;
        }
    }
    (sum, covered)
}

/// The time-weighted mean intensity over `[start, start + len)`, if the slots cover all of it.
pub fn mean_over(slots: &[Slot], start: DateTime<Utc>, len: TimeDelta) -> Option<f64> {
    let secs = len.as_seconds_f64();
    if secs <= 0.0 {
        return None;
    }
    let (sum, covered) = integral(slots, start, start + len);
    ((covered - secs).abs() < 1e-6).then(|| sum / secs)
}

/// Expected operational carbon (g) of drawing `facility_w` (IT power × PUE) from `now` for
/// `len`: C = Σ P × Δt × I(t) (DESIGN.md §5), with the forecast where it has slots and
/// `fallback_g` (the intensity now) beyond it. Also the share of `len` the forecast covered.
pub fn expected_co2e_g(
    slots: &[Slot],
    fallback_g: f64,
    now: DateTime<Utc>,
    len: TimeDelta,
    facility_w: f64,
) -> (f64, f64) {
    let secs = len.as_seconds_f64().max(0.0);
    if secs == 0.0 {
        return (0.0, 0.0);
    }
    let (sum, covered) = integral(slots, now, now + len);
    let g_s = sum + fallback_g * (secs - covered);
    // W × s × g/kWh → g: divide by 3.6e6 J/kWh.
    (
        facility_w * g_s / crate::engine::constants::J_PER_KWH,
        covered / secs,
    )
}

/// The forecast from `now` as consecutive (seconds, g/kWh) slots, as far as it covers without
/// a gap and at most `max` ahead (overlapping slots count once, the latest-starting one
/// winning); equal neighbours merged. Empty where nothing covers `now`.
pub fn ahead(slots: &[Slot], now: DateTime<Utc>, max: TimeDelta) -> Vec<(f64, f64)> {
    let cuts = boundaries(slots, now, now + max);
    let mut out: Vec<(f64, f64)> = Vec::new();
    for w in cuts.windows(2) {
        let Some(g) = value_at(slots, w[0]) else {
            break;
        };
        let secs = (w[1] - w[0]).as_seconds_f64();
        match out.last_mut() {
            Some(last) if last.1 == g => last.0 += secs,
            _ => out.push((secs, g)),
        }
    }
    out
}

/// The greenest window of a given length within the forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greener {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mean_g: f64,
    /// The mean over the same length starting now.
    pub now_mean_g: f64,
}

impl Greener {
    /// How much lower than running now, in percent.
    pub fn saving_pct(&self) -> f64 {
        if self.now_mean_g > 0.0 {
            (1.0 - self.mean_g / self.now_mean_g) * 100.0
        } else {
            0.0
        }
    }
}

/// How much greener a later window must be to be worth a hint: below this, the forecast's own
/// error (GB's is ±10–20%) is larger than the saving, and a "0% below now" hint is no hint
/// (issue 20).
pub const MIN_SAVING_PCT: f64 = 5.0;

/// The window of length `len` starting at now or at a slot boundary within `horizon` that has
/// the lowest mean intensity, when it is at least [`MIN_SAVING_PCT`] lower than starting now.
/// Starts only where the forecast covers the whole window.
pub fn greener_window(
    slots: &[Slot],
    now: DateTime<Utc>,
    horizon: TimeDelta,
    len: TimeDelta,
) -> Option<Greener> {
    let now_mean = mean_over(slots, now, len)?;
    let last_start = now + horizon - len;
    let mut best: Option<(DateTime<Utc>, f64)> = None;
    for start in slots
        .iter()
        .map(|s| s.from)
        .filter(|&t| t > now && t <= last_start)
    {
        if let Some(m) = mean_over(slots, start, len)
            && best.is_none_or(|(_, b)| m < b)
        {
            best = Some((start, m));
        }
    }
    let (start, mean_g) = best?;
    let g = Greener {
        start,
        end: start + len,
        mean_g,
        now_mean_g: now_mean,
    };
    (g.saving_pct() >= MIN_SAVING_PCT).then_some(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 6, h, m, 0).unwrap()
    }

    /// Half-hour slots from 12:00 with these values.
    fn day(vals: &[f64]) -> Vec<Slot> {
        vals.iter()
            .enumerate()
            .map(|(i, &g)| Slot {
                from: t(12, 0) + TimeDelta::minutes(30 * i as i64),
                to: t(12, 0) + TimeDelta::minutes(30 * (i as i64 + 1)),
                g_per_kwh: g,
            })
            .collect()
    }

    #[test]
    fn means_are_time_weighted_and_need_coverage() {
        let s = day(&[100.0, 200.0, 300.0]);
        assert_eq!(mean_over(&s, t(12, 0), TimeDelta::minutes(60)), Some(150.0));
        // 12:15–13:15: 15 min of 100, 30 of 200, 15 of 300.
        assert_eq!(
            mean_over(&s, t(12, 15), TimeDelta::minutes(60)),
            Some(200.0)
        );
        assert_eq!(mean_over(&s, t(13, 0), TimeDelta::minutes(60)), None);
        assert_eq!(value_at(&s, t(12, 30)), Some(200.0));
    }

    #[test]
    fn expected_carbon_uses_the_forecast_then_the_fallback() {
        let s = day(&[100.0, 200.0]);
        // 1 kW for 1 h over 100 then 200 g/kWh: 0.5 × 100 + 0.5 × 200 = 150 g.
        let (g, cov) = expected_co2e_g(&s, 999.0, t(12, 0), TimeDelta::hours(1), 1000.0);
        assert!((g - 150.0).abs() < 1e-9, "{g}");
        assert_eq!(cov, 1.0);
        // 2 h: the second hour at the fallback 400: 150 + 400 = 550 g; half covered.
        let (g, cov) = expected_co2e_g(&s, 400.0, t(12, 0), TimeDelta::hours(2), 1000.0);
        assert!((g - 550.0).abs() < 1e-9, "{g}");
        assert_eq!(cov, 0.5);
    }

    #[test]
    fn ahead_is_the_forecast_from_now_until_its_first_gap() {
        let mut s = day(&[100.0, 100.0, 300.0]);
        // A later slot after a gap (14:00–14:30 missing) is not reached.
        s.push(Slot {
            from: t(14, 30),
            to: t(15, 0),
            g_per_kwh: 50.0,
        });
        // From 12:10: 50 min of 100 (two slots merged), 30 of 300, then the gap.
        assert_eq!(
            ahead(&s, t(12, 10), TimeDelta::hours(24)),
            [(3000.0, 100.0), (1800.0, 300.0)]
        );
        // At most `max` ahead; nothing where the forecast does not cover now.
        assert_eq!(
            ahead(&s, t(12, 10), TimeDelta::minutes(20)),
            [(1200.0, 100.0)]
        );
        assert!(ahead(&s, t(11, 0), TimeDelta::hours(1)).is_empty());
        // A newer slot overlapping an older one wins where it starts later.
        s.push(Slot {
            from: t(12, 40),
            to: t(13, 0),
            g_per_kwh: 700.0,
        });
        assert_eq!(
            ahead(&s, t(12, 30), TimeDelta::minutes(40)),
            [(600.0, 100.0), (1200.0, 700.0), (600.0, 300.0)]
        );
    }

    #[test]
    fn greener_window_finds_the_lowest_mean() {
        let s = day(&[300.0, 280.0, 100.0, 120.0, 250.0, 90.0]);
        let g = greener_window(&s, t(12, 10), TimeDelta::hours(48), TimeDelta::hours(1)).unwrap();
        // 13:00–14:00 averages 110; 14:30 has 90 but only half an hour of forecast left.
        assert_eq!((g.start, g.end, g.mean_g), (t(13, 0), t(14, 0), 110.0));
        // Now: 12:10–13:10 = 20 min × 300 + 30 × 280 + 10 × 100 over 60.
        assert!((g.now_mean_g - (20.0 * 300.0 + 30.0 * 280.0 + 10.0 * 100.0) / 60.0).abs() < 1e-9);
        assert!(g.saving_pct() > 50.0);
        // A horizon too short for a later window, or a flat grid: no hint.
        assert_eq!(
            greener_window(&s, t(12, 10), TimeDelta::hours(1), TimeDelta::hours(1)),
            None
        );
        let flat = day(&[100.0; 6]);
        assert_eq!(
            greener_window(&flat, t(12, 0), TimeDelta::hours(48), TimeDelta::hours(1)),
            None
        );
        // Issue 20: a window 0.2% greener was hinted as "0% below now"; under 5% is no hint,
        // and 6% is one.
        let nearly = day(&[100.0, 100.0, 99.8, 99.8, 100.0, 100.0]);
        assert_eq!(
            greener_window(&nearly, t(12, 0), TimeDelta::hours(48), TimeDelta::hours(1)),
            None
        );
        let enough = day(&[100.0, 100.0, 94.0, 94.0, 100.0, 100.0]);
        let g = greener_window(&enough, t(12, 0), TimeDelta::hours(48), TimeDelta::hours(1));
        assert_eq!(g.map(|g| g.saving_pct().round()), Some(6.0));
    }
}
