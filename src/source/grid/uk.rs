//! GB Carbon Intensity API (National Energy System Operator; no key; CC BY 4.0; REFERENCE.md):
//! gCO2/kWh in half-hour slots, national (`/intensity`, actual and forecast) or regional by
//! region id 1–17 or outward postcode (`/regional/...`, forecast only), with a 48 h forecast.
//! Timestamps have no seconds (`2018-01-20T12:00Z`).
//!
//! Source: https://carbon-intensity.github.io/api-definitions/

use super::http::{Auth, FetchError, Http};
use super::series::{Kind, Point};
use super::{Answer, Provider};
use crate::sample::SourceKind;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value;
use std::time::Duration;

pub const DEFAULT_BASE: &str = "https://api.carbonintensity.org.uk";

/// Which part of Great Britain.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    National,
    /// 1–17 (15 England, 16 Scotland, 17 Wales).
    Region(u8),
    /// An outward postcode such as `RG10`.
    Postcode(String),
}

impl Target {
    /// `GB` → national; `GB-13` → region 13; `GB-RG10` → postcode RG10.
    pub fn from_zone(zone: &str) -> Result<Self, super::GridError> {
        let z = zone.trim().to_ascii_uppercase();
        let rest = match z.as_str() {
            "GB" | "GBR" | "UK" => return Ok(Target::National),
            _ => z
                .strip_prefix("GB-")
                .or_else(|| z.strip_prefix("UK-"))
                .ok_or_else(|| super::GridError::NotGb(zone.to_owned()))?,
        };
        if let Ok(id) = rest.parse::<u8>() {
            return if (1..=17).contains(&id) {
                Ok(Target::Region(id))
            } else {
                Err(super::GridError::GbRegion(zone.to_owned()))
            };
        }
        // Outward code: one or two letters, a digit, then at most one more letter or digit.
        let letters = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let tail = &rest[letters..];
        let ok = (1..=2).contains(&letters)
            && tail.chars().next().is_some_and(|c| c.is_ascii_digit())
            && tail.len() <= 2
            && tail.chars().all(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Target::Postcode(rest.to_owned()))
        } else {
            Err(super::GridError::GbZoneShape(zone.to_owned()))
        }
    }
}

/// `2018-01-20T12:00Z` (the API's form) or full RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%MZ")
        .map(|n| n.and_utc())
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
}

/// Every half-hour slot in an answer of any of the shapes used here: `data` is a list of
/// slots (national), a list of regions each with `data` slots (regional), or one region object
/// with `data` slots (regional forecast).
pub fn parse(body: &str, what: &str) -> Result<Vec<Point>, FetchError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| FetchError::Malformed(format!("{what}: not the documented JSON: {e}")))?;
    let top = v
        .get("data")
        .ok_or_else(|| FetchError::Malformed(format!("{what}: no `data` in the answer")))?;
    let mut out = Vec::new();
    collect(top, what, &mut out, 0)?;
    out.sort_by_key(|p| p.from);
    Ok(out)
}

fn collect(v: &Value, what: &str, out: &mut Vec<Point>, depth: u8) -> Result<(), FetchError> {
    if depth > 3 {
        return Ok(());
    }
    match v {
        Value::Array(items) => {
            for it in items {
                collect(it, what, out, depth + 1)?;
            }
        }
        Value::Object(o) if o.contains_key("from") && o.contains_key("intensity") => {
            out.extend(slot(o, what)?);
        }
        Value::Object(o) => {
            if let Some(inner) = o.get("data") {
                collect(inner, what, out, depth + 1)?;
            }
        }
        _ => {
            return Err(FetchError::Malformed(format!(
                "{what}: unexpected {v} where a slot or region was expected"
            )));
        }
    }
    Ok(())
}

fn slot(o: &serde_json::Map<String, Value>, what: &str) -> Result<Option<Point>, FetchError> {
    let time = |k: &str| {
        let s = o.get(k).and_then(Value::as_str).unwrap_or_default();
        parse_time(s)
            .ok_or_else(|| FetchError::Malformed(format!("{what}: `{k}` {s:?} is not a time")))
    };
    let (from, to) = (time("from")?, time("to")?);
    let i = o.get("intensity");
    let num = |k: &str| i.and_then(|i| i.get(k)).and_then(Value::as_f64);
    match (num("actual"), num("forecast")) {
        (Some(a), _) => Some((a, Kind::Actual)),
        (None, Some(f)) => Some((f, Kind::Forecast)),
        (None, None) => None,
    }
    .map(|(g, kind)| {
        Point {
            from,
            to,
            g_per_kwh: g,
            kind,
        }
        .checked(what)
    })
    .transpose()
}

pub struct Uk {
    target: Target,
}

impl Uk {
    pub fn new(target: Target) -> Self {
        Self { target }
    }

    fn paths(&self, from: &str) -> (String, String) {
        match &self.target {
            Target::National => ("/intensity".into(), format!("/intensity/{from}/fw48h")),
            Target::Region(id) => (
                format!("/regional/regionid/{id}"),
                format!("/regional/intensity/{from}/fw48h/regionid/{id}"),
            ),
            Target::Postcode(pc) => (
                format!("/regional/postcode/{pc}"),
                format!("/regional/intensity/{from}/fw48h/postcode/{pc}"),
            ),
        }
    }
}

impl Provider for Uk {
    fn label(&self) -> SourceKind {
        SourceKind::GbCarbonIntensity
    }

    fn describe(&self) -> String {
        let at = match &self.target {
            Target::National => "national".to_owned(),
            Target::Region(id) => format!("region {id} (forecast values)"),
            Target::Postcode(pc) => format!("postcode {pc} (forecast values)"),
        };
        format!("GB Carbon Intensity API (NESO, CC BY 4.0), {at}, half-hourly, live")
    }

    /// NESO's factors count emissions at generation only (wind, solar and nuclear at zero): operational, not life-cycle.
    fn basis(&self) -> super::table::Basis {
        super::table::Basis::Operational
    }

    fn cadence(&self) -> Duration {
        Duration::from_secs(1800)
    }

    fn fetch(&mut self, http: &Http, now: DateTime<Utc>) -> Result<Answer, FetchError> {
        // From the slot before this one, so the run's start is covered whatever the clock.
        let from = (now - TimeDelta::minutes(30))
            .format("%Y-%m-%dT%H:%MZ")
            .to_string();
        let (current, forecast) = self.paths(&from);
        let now_slot = parse(&http.get(&current, &[], Auth::None)?, &current)?;
        let mut ans = Answer::default();
        if now_slot.is_empty() {
            ans.notes
                .push(format!("{current}: no intensity for the current slot"));
        }
        match http
            .get(&forecast, &[], Auth::None)
            .and_then(|b| parse(&b, "fw48h forecast"))
        {
            Ok(f) => ans.points = f,
            Err(e) => ans.notes.push(format!("forecast not used this time: {e}")),
        }
        // The current-slot endpoint is the authority for its slot: merged last, it wins.
        ans.points.extend(now_slot);
        Ok(ans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(Target::from_zone("GB"), Ok(Target::National));
        assert_eq!(Target::from_zone("gb-13"), Ok(Target::Region(13)));
        assert_eq!(
            Target::from_zone("GB-RG10"),
            Ok(Target::Postcode("RG10".into()))
        );
        assert_eq!(
            Target::from_zone("GB-NG1"),
            Ok(Target::Postcode("NG1".into()))
        );
        assert!(Target::from_zone("GB-18").is_err());
        assert!(
            Target::from_zone("GB-NIR")
                .unwrap_err()
                .to_string()
                .contains("Northern Ireland")
        );
        assert!(Target::from_zone("FR").is_err());
    }

    #[test]
    fn national_times_without_seconds_and_null_actual() {
        let b = r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z",
            "intensity":{"forecast":266,"actual":263,"index":"moderate"}},
            {"from":"2018-01-20T12:30Z","to":"2018-01-20T13:00Z",
            "intensity":{"forecast":270,"actual":null,"index":"moderate"}}]}"#;
        let v = parse(b, "/intensity").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].g_per_kwh, v[0].kind), (263.0, Kind::Actual));
        assert_eq!((v[1].g_per_kwh, v[1].kind), (270.0, Kind::Forecast));
        assert_eq!(v[0].from.to_rfc3339(), "2018-01-20T12:00:00+00:00");
        assert_eq!(v[0].to, v[1].from);
    }

    #[test]
    fn regional_shapes() {
        // /regional/postcode/NG1 (and /regional/regionid/N): data is a list of regions.
        let b = r#"{"data":[{"regionid":9,"dnoregion":"WPD East Midlands","shortname":"East Midlands",
            "postcode":"NG1","data":[{"from":"2023-09-02T16:00Z","to":"2023-09-02T16:30Z",
            "intensity":{"forecast":312,"index":"very high"},
            "generationmix":[{"fuel":"biomass","perc":9.4},{"fuel":"gas","perc":76.4}]}]}]}"#;
        let v = parse(b, "/regional/postcode/NG1").unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].g_per_kwh, v[0].kind), (312.0, Kind::Forecast));
        // The regional forecast: data is one region object.
        let b = r#"{"data":{"regionid":13,"shortname":"London","data":[
            {"from":"2023-09-02T16:00Z","to":"2023-09-02T16:30Z","intensity":{"forecast":200,"index":"moderate"},"generationmix":[]},
            {"from":"2023-09-02T16:30Z","to":"2023-09-02T17:00Z","intensity":{"forecast":180,"index":"low"},"generationmix":[]}]}}"#;
        let v = parse(b, "fw48h").unwrap();
        assert_eq!(
            v.iter().map(|p| p.g_per_kwh).collect::<Vec<_>>(),
            [200.0, 180.0]
        );
    }

    #[test]
    fn slots_that_end_before_they_start_or_negative_values_are_malformed() {
        let back = r#"{"data":[{"from":"2018-01-20T12:30Z","to":"2018-01-20T12:00Z","intensity":{"forecast":1}}]}"#;
        let e = parse(back, "/intensity").unwrap_err().to_string();
        assert!(e.contains("ends before it starts"), "{e}");
        let neg = r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"actual":-3}}]}"#;
        assert!(parse(neg, "/intensity").is_err());
    }

    #[test]
    fn malformed_answers_say_what() {
        assert!(
            parse("garbage", "/intensity")
                .unwrap_err()
                .to_string()
                .contains("not the documented JSON")
        );
        assert!(
            parse("{}", "/intensity")
                .unwrap_err()
                .to_string()
                .contains("no `data`")
        );
        let e = parse(
            r#"{"data":[{"from":"noon","to":"2018-01-20T12:30Z","intensity":{"forecast":1}}]}"#,
            "/intensity",
        )
        .unwrap_err();
        assert!(e.to_string().contains("`from` \"noon\""), "{e}");
        assert!(parse(r#"{"data":[1]}"#, "/intensity").is_err());
        // Both values null: no point, no error.
        let v = parse(r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":null,"actual":null}}]}"#, "/intensity").unwrap();
        assert!(v.is_empty());
    }
}
