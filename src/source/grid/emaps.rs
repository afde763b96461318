//! Electricity Maps API v3 (REFERENCE.md): `GET /carbon-intensity/latest`, `/history` (last
//! 24 h, hourly) and `/forecast` (paid plans), by `zone=` or `lat=&lon=`, with the token in the
//! `auth-token` header. Values are lifecycle average intensities in gCO2e/kWh.
//!
//! Source: Electricity Maps API documentation, v3 (https://docs.electricitymaps.com).

use super::http::{Auth, FetchError, Http, Secret};
use super::series::{Kind, Point};
use super::{Answer, Provider};
use crate::sample::SourceKind;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::time::Duration;

pub const DEFAULT_BASE: &str = "https://api.electricitymaps.com/v3";

/// Where to ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Zone(String),
    LatLon(f64, f64),
}

/// One value as the API gives it. Every field but `datetime` may be missing or null; unknown
/// fields (`temporalGranularity`, `flowTraced`, …) are ignored.
#[derive(Debug, Deserialize)]
struct ApiPoint {
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
    datetime: String,
    #[serde(rename = "temporalGranularity")]
    temporal_granularity: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiHistory {
    history: Vec<ApiPoint>,
}

#[derive(Debug, Deserialize)]
struct ApiForecast {
    forecast: Vec<ApiPoint>,
}

/// The slot length a point stands for: the API's `temporalGranularity` where given, else an
/// hour (the documented resolution of latest and history).
fn granularity(g: Option<&str>) -> TimeDelta {
    match g.unwrap_or("hourly") {
        "5_minutes" | "5_minute" => TimeDelta::minutes(5),
        "15_minutes" | "15_minute" => TimeDelta::minutes(15),
        "30_minutes" | "30_minute" => TimeDelta::minutes(30),
        "daily" => TimeDelta::days(1),
        _ => TimeDelta::hours(1),
    }
}

fn to_point(p: &ApiPoint, kind: Kind, what: &str) -> Result<Option<Point>, FetchError> {
    let from = DateTime::parse_from_rfc3339(p.datetime.trim())
        .map_err(|e| FetchError::Malformed(format!("{what}: datetime {:?}: {e}", p.datetime)))?
        .with_timezone(&Utc);
    p.carbon_intensity
        .map(|g| {
            Point {
                from,
                to: from + granularity(p.temporal_granularity.as_deref()),
                g_per_kwh: g,
                kind,
            }
            .checked(what)
        })
        .transpose()
}

fn malformed(what: &str, e: &serde_json::Error) -> FetchError {
    FetchError::Malformed(format!("{what}: not the documented JSON: {e}"))
}

/// `/carbon-intensity/latest`: one point, or none when `carbonIntensity` is null.
pub fn parse_latest(body: &str) -> Result<Option<Point>, FetchError> {
    let what = "/carbon-intensity/latest";
    let p: ApiPoint = serde_json::from_str(body).map_err(|e| malformed(what, &e))?;
    to_point(&p, Kind::Actual, what)
}

/// `/carbon-intensity/history`: the last 24 h; null values are skipped.
pub fn parse_history(body: &str) -> Result<Vec<Point>, FetchError> {
    let what = "/carbon-intensity/history";
    let h: ApiHistory = serde_json::from_str(body).map_err(|e| malformed(what, &e))?;
    collect(&h.history, Kind::Actual, what)
}

/// `/carbon-intensity/forecast`.
pub fn parse_forecast(body: &str) -> Result<Vec<Point>, FetchError> {
    let what = "/carbon-intensity/forecast";
    let f: ApiForecast = serde_json::from_str(body).map_err(|e| malformed(what, &e))?;
    collect(&f.forecast, Kind::Forecast, what)
}

fn collect(v: &[ApiPoint], kind: Kind, what: &str) -> Result<Vec<Point>, FetchError> {
    let mut out = Vec::with_capacity(v.len());
    for p in v {
        out.extend(to_point(p, kind, what)?);
    }
    // One point per start time, the one the answer gives last (found by the fuzzer: two
    // points at one datetime made a slot that ended where it began).
    out.sort_by_key(|p| p.from);
    out.reverse();
    out.dedup_by_key(|p| p.from);
    out.reverse();
    // A slot ends where the next begins when the API's points are closer than its granularity.
    for i in 1..out.len() {
        if out[i].from < out[i - 1].to {
            out[i - 1].to = out[i].from;
        }
    }
    Ok(out)
}

pub struct Emaps {
    target: Target,
    token: Option<Secret>,
    history_done: bool,
    /// Some(false) once the forecast answered 401/403 (not in the plan): not asked again.
    forecast_allowed: Option<bool>,
}

impl Emaps {
    pub fn new(target: Target, token: Option<Secret>) -> Self {
        Self {
            target,
            token,
            history_done: false,
            forecast_allowed: None,
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        match &self.target {
            Target::Zone(z) => vec![("zone", z.clone())],
            Target::LatLon(lat, lon) => vec![("lat", lat.to_string()), ("lon", lon.to_string())],
        }
    }

    fn get(&self, http: &Http, path: &str) -> Result<String, FetchError> {
        let auth = match &self.token {
            Some(t) => Auth::Header("auth-token", t),
            None => Auth::None,
        };
        http.get(path, &self.query(), auth)
    }
}

impl Provider for Emaps {
    fn label(&self) -> SourceKind {
        SourceKind::ElectricityMaps
    }

    fn describe(&self) -> String {
        let at = match &self.target {
            Target::Zone(z) => format!("zone {z}"),
            Target::LatLon(lat, lon) => format!("lat {lat}, lon {lon}"),
        };
        format!("Electricity Maps v3, {at} (lifecycle average, live)")
    }

    /// Electricity Maps' default emission factors are life-cycle (`emissionFactorType=lifecycle`).
    fn basis(&self) -> super::table::Basis {
        super::table::Basis::LifeCycle
    }

    fn cadence(&self) -> Duration {
        Duration::from_secs(3600)
    }

    fn fetch(&mut self, http: &Http, _now: DateTime<Utc>) -> Result<Answer, FetchError> {
        let mut ans = Answer::default();
        let latest = parse_latest(&self.get(http, "/carbon-intensity/latest")?)?;
        if latest.is_none() {
            ans.notes.push(
                "Electricity Maps has no value for this hour yet (carbonIntensity null)".into(),
            );
        }
        ans.points.extend(latest);
        if !self.history_done {
            // Backfills the start of the run when the latest value is for a later slot.
            match self
                .get(http, "/carbon-intensity/history")
                .and_then(|b| parse_history(&b))
            {
                Ok(h) => {
                    ans.points.extend(h);
                    self.history_done = true;
                }
                Err(e) => {
                    // Not in the plan: not asked again; anything else: asked next time.
                    self.history_done = matches!(e, FetchError::Auth { .. });
                    ans.notes.push(format!("history not used: {e}"));
                }
            }
        }
        if self.forecast_allowed != Some(false) {
            match self
                .get(http, "/carbon-intensity/forecast")
                .and_then(|b| parse_forecast(&b))
            {
                Ok(f) => {
                    self.forecast_allowed = Some(true);
                    ans.points.extend(f);
                }
                Err(FetchError::Auth { status, .. }) => {
                    self.forecast_allowed = Some(false);
                    ans.notes.push(format!(
                        "Electricity Maps forecast not available to this token (HTTP {status}): no greener-window hint"
                    ));
                }
                Err(e) => ans.notes.push(format!("forecast not used this time: {e}")),
            }
        }
        Ok(ans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_with_unknown_fields_and_millis() {
        let b = r#"{"zone":"DE","carbonIntensity":302,"datetime":"2024-03-06T19:00:00.000Z",
            "updatedAt":"2024-03-06T18:52:13.381Z","createdAt":"2024-03-03T19:53:07.567Z",
            "emissionFactorType":"lifecycle","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE",
            "temporalGranularity":"hourly","flowTraced":true,"somethingNew":{"a":[1,2]}}"#;
        let p = parse_latest(b).unwrap().unwrap();
        assert_eq!(p.g_per_kwh, 302.0);
        assert_eq!(p.from.to_rfc3339(), "2024-03-06T19:00:00+00:00");
        assert_eq!(p.to - p.from, TimeDelta::hours(1));
        assert_eq!(p.kind, Kind::Actual);
    }

    #[test]
    fn null_intensity_is_no_point_and_bad_datetime_is_an_error() {
        let b = r#"{"zone":"DE","carbonIntensity":null,"datetime":"2024-03-06T19:00:00.000Z"}"#;
        assert_eq!(parse_latest(b).unwrap(), None);
        let e = parse_latest(r#"{"carbonIntensity":1,"datetime":"yesterday"}"#).unwrap_err();
        assert!(e.to_string().contains("datetime \"yesterday\""), "{e}");
        let e = parse_latest(r#"{"carbonIntensity":1}"#).unwrap_err();
        assert!(e.to_string().contains("datetime"), "{e}");
        // A value no grid has is a malformed answer, not a silent wrong number.
        for g in ["-5", "1e9"] {
            let b = format!(r#"{{"carbonIntensity":{g},"datetime":"2024-03-06T19:00:00Z"}}"#);
            let e = parse_latest(&b).unwrap_err().to_string();
            assert!(e.contains("is not a grid's"), "{e}");
        }
        let e = parse_latest("<html>").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/carbon-intensity/latest: not the documented JSON"),
            "{e}"
        );
    }

    #[test]
    fn two_points_at_one_time_are_one_slot_the_later_one() {
        // The input the fuzzer found (fuzz/artifacts, now a regression test).
        let b = r#"{"zone":"DE","forecast":[
            {"carbonIntensity":150,"datetime":"2024-03-06T20:00:00.000Z"},
            {"carbonIntensity":169,"datetime":"2024-03-06T20:00:00.000Z"}]}"#;
        let v = parse_forecast(b).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].g_per_kwh, 169.0);
        assert_eq!((v[0].to - v[0].from).num_minutes(), 60);
    }

    #[test]
    fn history_skips_nulls_and_forecast_is_forecast() {
        let h = r#"{"zone":"DE","history":[
            {"zone":"DE","carbonIntensity":300,"datetime":"2024-03-06T17:00:00.000Z","isEstimated":false},
            {"zone":"DE","carbonIntensity":null,"datetime":"2024-03-06T18:00:00.000Z"},
            {"zone":"DE","carbonIntensity":310,"datetime":"2024-03-06T19:00:00.000Z"}]}"#;
        let v = parse_history(h).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].g_per_kwh, 300.0);
        let f = r#"{"zone":"DK-DK2","forecast":[{"carbonIntensity":326,"datetime":"2018-11-26T17:00:00.000Z"},
            {"carbonIntensity":320,"datetime":"2018-11-26T17:15:00.000Z"}],"updatedAt":"2018-11-26T16:36:26.143Z"}"#;
        let v = parse_forecast(f).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|p| p.kind == Kind::Forecast));
        // Points closer than the assumed hour end where the next begins.
        assert_eq!(v[0].to, v[1].from);
    }
}
