//! WattTime API v3 (REFERENCE.md): `GET /login` with HTTP Basic gives a bearer token (30 min);
//! `/v3/forecast?region=&signal_type=co2_moer` gives the marginal operating emissions rate
//! (MOER) in lbs CO2/MWh every `data_point_period_seconds`; `/v3/signal-index` its percentile.
//! MOER is a *marginal* rate: it is labelled `watttime-moer` everywhere, never mixed silently
//! with average intensities.
//!
//! Source: https://docs.watttime.org (API v3).

use super::http::{Auth, FetchError, Http, Secret};
use super::series::{Kind, Point};
use super::{Answer, Provider};
use crate::sample::SourceKind;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::time::{Duration, Instant};

pub const DEFAULT_BASE: &str = "https://api.watttime.org";

/// lbs/MWh → g/kWh: 453.59237 g per lb / 1000 kWh per MWh (exact, by the definition of the
/// avoirdupois pound).
pub const G_PER_KWH_PER_LBS_PER_MWH: f64 = 0.453_592_37;

/// WattTime tokens last 30 minutes; log in again a little before.
const TOKEN_LIFE: Duration = Duration::from_secs(25 * 60);

#[derive(Debug, Deserialize)]
struct Login {
    token: String,
}

#[derive(Debug, Deserialize)]
struct DataPoint {
    point_time: String,
    value: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    units: Option<String>,
    data_point_period_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Series {
    data: Vec<DataPoint>,
    meta: Option<Meta>,
}

fn malformed(what: &str, e: impl std::fmt::Display) -> FetchError {
    FetchError::Malformed(format!("{what}: not the documented JSON: {e}"))
}

/// `/v3/forecast` (or `/v3/historical`): MOER points converted to g/kWh.
pub fn parse_moer(body: &str, what: &str) -> Result<Vec<Point>, FetchError> {
    let s: Series = serde_json::from_str(body).map_err(|e| malformed(what, e))?;
    let meta = s.meta.as_ref();
    let factor = match meta
        .and_then(|m| m.units.as_deref())
        .unwrap_or("lbs_co2_per_mwh")
    {
        "lbs_co2_per_mwh" => G_PER_KWH_PER_LBS_PER_MWH,
        // Same number in both units.
        "g_co2_per_kwh" | "kg_co2_per_mwh" => 1.0,
        other => {
            return Err(FetchError::Malformed(format!(
                "{what}: unknown units {other:?} (expected lbs_co2_per_mwh)"
            )));
        }
    };
    let period = meta
        .and_then(|m| m.data_point_period_seconds)
        .filter(|p| (1..=86_400).contains(p))
        .unwrap_or(300);
    let mut out = Vec::with_capacity(s.data.len());
    for p in &s.data {
        let from = DateTime::parse_from_rfc3339(p.point_time.trim())
            .map_err(|e| {
                FetchError::Malformed(format!("{what}: point_time {:?}: {e}", p.point_time))
            })?
            .with_timezone(&Utc);
        if let Some(v) = p.value {
            out.push(
                Point {
                    from,
                    to: from + TimeDelta::seconds(period),
                    g_per_kwh: v * factor,
                    kind: Kind::Forecast,
                }
                .checked(what)?,
            );
        }
    }
    out.sort_by_key(|p| p.from);
    Ok(out)
}

/// `/v3/signal-index`: the current MOER's percentile (0–100) over the recent past.
pub fn parse_index(body: &str) -> Result<Option<f64>, FetchError> {
    let what = "/v3/signal-index";
    let s: Series = serde_json::from_str(body).map_err(|e| malformed(what, e))?;
    match s.data.first().and_then(|p| p.value) {
        Some(v) if !(0.0..=100.0).contains(&v) => Err(FetchError::Malformed(format!(
            "{what}: index {v} is not a percentile (0–100)"
        ))),
        v => Ok(v),
    }
}

pub struct WattTime {
    region: String,
    user: String,
    password: Secret,
    token: Option<(Secret, Instant)>,
}

impl WattTime {
    pub fn new(region: String, user: String, password: Secret) -> Self {
        Self {
            region,
            user,
            password,
            token: None,
        }
    }

    fn login(&mut self, http: &Http) -> Result<Secret, FetchError> {
        let what = "/login";
        let body = http.get(what, &[], Auth::Basic(&self.user, &self.password))?;
        let l: Login = serde_json::from_str(&body).map_err(|e| malformed(what, e))?;
        let tok = Secret::new(Some(l.token))
            .ok_or_else(|| FetchError::Malformed(format!("{what}: empty token")))?;
        self.token = Some((tok.clone(), Instant::now()));
        Ok(tok)
    }

    /// A data call with the current token; on 401 logs in again once and retries.
    fn get(&mut self, http: &Http, path: &str) -> Result<String, FetchError> {
        let query = [
            ("region", self.region.clone()),
            ("signal_type", "co2_moer".to_owned()),
        ];
        let tok = match &self.token {
            Some((t, at)) if at.elapsed() < TOKEN_LIFE => t.clone(),
            _ => self.login(http)?,
        };
        match http.get(path, &query, Auth::Bearer(&tok)) {
            Err(FetchError::Auth { status: 401, .. }) => {
                let tok = self.login(http)?;
                http.get(path, &query, Auth::Bearer(&tok))
            }
            r => r,
        }
    }
}

impl Provider for WattTime {
    fn label(&self) -> SourceKind {
        SourceKind::WattTimeMoer
    }

    fn describe(&self) -> String {
        format!(
            "WattTime v3 MOER (marginal, not average), region {}, lbs/MWh × 0.4536 = g/kWh, live",
            self.region
        )
    }

    /// MOER: the marginal generator's rate, not an average.
    fn basis(&self) -> super::table::Basis {
        super::table::Basis::Marginal
    }

    fn cadence(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn fetch(&mut self, http: &Http, _now: DateTime<Utc>) -> Result<Answer, FetchError> {
        let mut ans = Answer::default();
        let path = "/v3/forecast";
        ans.points = parse_moer(&self.get(http, path)?, path)?;
        match self
            .get(http, "/v3/signal-index")
            .and_then(|b| parse_index(&b))
        {
            Ok(Some(pct)) => ans.detail = Some(format!("MOER percentile {pct:.0}")),
            Ok(None) => {}
            Err(e) => ans.notes.push(format!("signal index not used: {e}")),
        }
        Ok(ans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moer_is_converted_and_slotted() {
        let b = r#"{"data":[{"point_time":"2022-07-15T00:00:00+00:00","value":1048.41},
            {"point_time":"2022-07-15T00:05:00+00:00","value":1000.0}],
            "meta":{"data_point_period_seconds":300,"region":"CAISO_NORTH","warnings":[],
            "signal_type":"co2_moer","model":{"date":"2022-10-01","type":"binned_regression"},
            "units":"lbs_co2_per_mwh","generated_at_period_seconds":300,
            "generated_at":"2022-07-15T00:00:00+00:00"}}"#;
        let v = parse_moer(b, "/v3/forecast").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].g_per_kwh, 1048.41 * 0.45359237);
        assert_eq!(v[0].to, v[1].from);
        assert_eq!(v[1].to - v[1].from, TimeDelta::minutes(5));
    }

    #[test]
    fn unknown_units_and_garbage_are_errors() {
        let b = r#"{"data":[],"meta":{"units":"percentile"}}"#;
        assert!(
            parse_moer(b, "/v3/forecast")
                .unwrap_err()
                .to_string()
                .contains("unknown units")
        );
        assert!(parse_moer("[", "/v3/forecast").is_err());
        let idx = r#"{"data":[{"point_time":"2022-07-15T00:00:00+00:00","value":63.0}],"meta":{"units":"percentile"}}"#;
        assert_eq!(parse_index(idx).unwrap(), Some(63.0));
        let idx = idx.replace("63.0", "163.0");
        assert!(
            parse_index(&idx)
                .unwrap_err()
                .to_string()
                .contains("not a percentile")
        );
        let neg = r#"{"data":[{"point_time":"2022-07-15T00:00:00+00:00","value":-1}]}"#;
        assert!(parse_moer(neg, "/v3/forecast").is_err());
    }
}
