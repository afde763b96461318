//! A provider's intensity values as slots in time: what each API answered, cached with the
//! data's own timestamps, so every tick can be given the value valid at that tick's time.

use chrono::{DateTime, Utc};

/// Whether a slot's value was observed (or estimated for the past by the provider) or forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Actual,
    Forecast,
}

/// One value valid over `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// gCO2e/kWh (WattTime's MOER already converted from lbs/MWh).
    pub g_per_kwh: f64,
    pub kind: Kind,
}

/// Above any grid on record: coal plants emit about 1,000 gCO2/kWh (IPCC AR5 WG3 Annex III,
/// lifecycle median 820, range to 1,100) and WattTime's MOER tops out near 2,500 lbs/MWh
/// (≈ 1,134 g/kWh). A provider's value beyond this is a malformed answer, not a grid.
pub const MAX_G_PER_KWH: f64 = 5000.0;

impl Point {
    /// The point if it can be a grid's intensity over a real slot: finite, 0 ≤ g ≤
    /// `MAX_G_PER_KWH`, and `from` before `to`; else the API answer is malformed.
    pub fn checked(self, what: &str) -> Result<Point, super::http::FetchError> {
        use super::http::FetchError;
        if !(self.g_per_kwh.is_finite() && (0.0..=MAX_G_PER_KWH).contains(&self.g_per_kwh)) {
            return Err(FetchError::Malformed(format!(
                "{what}: intensity {} at {} is not a grid's (0–{MAX_G_PER_KWH} gCO2e/kWh)",
                self.g_per_kwh,
                self.from.to_rfc3339()
            )));
        }
        if self.from >= self.to {
            return Err(FetchError::Malformed(format!(
                "{what}: slot {} → {} ends before it starts",
                self.from.to_rfc3339(),
                self.to.to_rfc3339()
            )));
        }
        Ok(self)
    }
}

/// How long a slot is kept once it has ended (the forecast panel and backfill look back at most
/// this far; keeps a week-long run's cache small).
const KEEP_PAST: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// The cached slots, sorted by `from`, one per start time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: Vec<Point>,
}

impl Series {
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Folds a fresh answer in: a newer value replaces an older one for the same slot, except
    /// that a forecast never replaces an actual. Slots that ended long before `now` are dropped.
    pub fn merge(&mut self, fresh: &[Point], now: DateTime<Utc>) {
        for p in fresh {
            if !(p.g_per_kwh.is_finite() && p.g_per_kwh >= 0.0) || p.to <= p.from {
                continue;
            }
            match self.points.binary_search_by(|q| q.from.cmp(&p.from)) {
                Ok(i) => {
                    let old = self.points[i];
                    if !(old.kind == Kind::Actual && p.kind == Kind::Forecast) {
                        self.points[i] = *p;
                    }
                }
                Err(i) => self.points.insert(i, *p),
            }
        }
        let cutoff = now - KEEP_PAST;
        self.points.retain(|p| p.to >= cutoff);
    }

    /// The slot whose `[from, to)` holds `at`. Where slots overlap (a provider's hourly history
    /// beside its 5-minute forecast) the latest-starting one wins.
    pub fn at(&self, at: DateTime<Utc>) -> Option<&Point> {
        let n = self.points.partition_point(|p| p.from <= at);
        self.points[..n].iter().rev().find(|p| at < p.to)
    }

    /// The latest slot that started at or before `at` (the value to hold when none covers it).
    pub fn last_before(&self, at: DateTime<Utc>) -> Option<&Point> {
        let n = self.points.partition_point(|p| p.from <= at);
        n.checked_sub(1).map(|i| &self.points[i])
    }

    /// Slots that end after `now` (the current one and the forecast), in time order.
    pub fn ahead(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(move |p| p.to > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 6, h, m, 0).unwrap()
    }

    fn p(from: DateTime<Utc>, to: DateTime<Utc>, g: f64, kind: Kind) -> Point {
        Point {
            from,
            to,
            g_per_kwh: g,
            kind,
        }
    }

    #[test]
    fn lookup_by_slot_and_hold() {
        let mut s = Series::default();
        s.merge(
            &[
                p(t(12, 30), t(13, 0), 200.0, Kind::Actual),
                p(t(12, 0), t(12, 30), 100.0, Kind::Actual),
            ],
            t(12, 40),
        );
        assert_eq!(s.at(t(12, 0)).map(|p| p.g_per_kwh), Some(100.0));
        assert_eq!(s.at(t(12, 29)).map(|p| p.g_per_kwh), Some(100.0));
        assert_eq!(s.at(t(12, 30)).map(|p| p.g_per_kwh), Some(200.0));
        assert_eq!(s.at(t(13, 0)), None, "slots are half-open");
        assert_eq!(s.at(t(11, 59)), None);
        assert_eq!(s.last_before(t(14, 0)).map(|p| p.g_per_kwh), Some(200.0));
        assert_eq!(s.last_before(t(11, 0)), None);
    }

    #[test]
    fn forecast_never_replaces_actual_but_newer_actual_does() {
        let mut s = Series::default();
        s.merge(&[p(t(12, 0), t(12, 30), 100.0, Kind::Actual)], t(12, 0));
        s.merge(&[p(t(12, 0), t(12, 30), 150.0, Kind::Forecast)], t(12, 0));
        assert_eq!(s.at(t(12, 10)).unwrap().g_per_kwh, 100.0);
        s.merge(&[p(t(12, 0), t(12, 30), 120.0, Kind::Actual)], t(12, 0));
        assert_eq!(s.at(t(12, 10)).unwrap().g_per_kwh, 120.0);
        // A forecast replaces an older forecast.
        s.merge(&[p(t(13, 0), t(13, 30), 90.0, Kind::Forecast)], t(12, 0));
        s.merge(&[p(t(13, 0), t(13, 30), 80.0, Kind::Forecast)], t(12, 0));
        assert_eq!(s.at(t(13, 0)).unwrap().g_per_kwh, 80.0);
    }

    #[test]
    fn bad_points_are_ignored_and_old_ones_dropped() {
        let mut s = Series::default();
        s.merge(
            &[
                p(t(12, 0), t(12, 30), f64::NAN, Kind::Actual),
                p(t(12, 0), t(12, 0), 10.0, Kind::Actual),
                p(t(12, 0), t(12, 30), -1.0, Kind::Actual),
            ],
            t(12, 0),
        );
        assert!(s.is_empty());
        s.merge(&[p(t(0, 0), t(0, 30), 10.0, Kind::Actual)], t(12, 0));
        assert_eq!(s.points().len(), 1);
        s.merge(&[], t(0, 30) + chrono::TimeDelta::hours(49));
        assert!(s.is_empty());
    }

    #[test]
    fn overlapping_slots_latest_start_wins() {
        let mut s = Series::default();
        s.merge(
            &[
                p(t(12, 0), t(13, 0), 300.0, Kind::Actual),
                p(t(12, 20), t(12, 25), 250.0, Kind::Forecast),
            ],
            t(12, 0),
        );
        assert_eq!(s.at(t(12, 10)).unwrap().g_per_kwh, 300.0);
        assert_eq!(s.at(t(12, 22)).unwrap().g_per_kwh, 250.0);
        assert_eq!(s.at(t(12, 40)).unwrap().g_per_kwh, 300.0);
        assert_eq!(s.ahead(t(12, 24)).count(), 2);
    }
}
