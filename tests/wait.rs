//! `carbontop wait`: the command starts at the window a local fake GB provider's forecast makes
//! cleanest (the wait compressed by the debug build's CARBONTOP_TEST_TIME_SCALE), and at once
//! when there is no forecast.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use common::fake_api::{FakeApi, Reply};
use common::*;
use std::time::Instant;

fn gb(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// Half-hour slots from the one holding now: `vals[i]` for slot i (the first actual).
fn forecast(vals: &[f64]) -> (String, DateTime<Utc>) {
    let now = Utc::now();
    let start = now.with_second(0).unwrap().with_nanosecond(0).unwrap()
        - TimeDelta::minutes(i64::from(now.minute() % 30));
    let slots: Vec<String> = vals
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let from = start + TimeDelta::minutes(30 * i as i64);
            let actual = if i == 0 { g.to_string() } else { "null".into() };
            format!(
                r#"{{"from":"{}","to":"{}","intensity":{{"forecast":{g},"actual":{actual},"index":"moderate"}}}}"#,
                gb(from),
                gb(from + TimeDelta::minutes(30))
            )
        })
        .collect();
    (format!(r#"{{"data":[{}]}}"#, slots.join(",")), start)
}

#[test]
fn the_command_starts_at_the_cleanest_window_of_the_forecast() {
    // Dirty for two hours, then an hour at 40 g/kWh, then dirty again.
    let vals = [
        300.0, 300.0, 300.0, 300.0, 40.0, 40.0, 300.0, 300.0, 300.0, 300.0,
    ];
    let (body, start) = forecast(&vals);
    let api = FakeApi::start();
    api.route("/intensity", Reply::json(body.clone()));
    api.route("/intensity/*", Reply::json(body));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let t0 = Instant::now();
    let o = bin()
        .args([
            "wait",
            "--zone",
            "GB",
            "--grid-url",
            &api.url(),
            "--length",
            "1h",
        ])
        .args(["--within", "5h", "--", "touch"])
        .arg(&marker)
        // One real second is an hour: the wait of up to two hours takes up to two seconds.
        .env("CARBONTOP_TEST_TIME_SCALE", "3600")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(marker.exists(), "the command did not run: {err}");
    let clean = start + TimeDelta::hours(2);
    assert!(
        err.contains(&format!(
            "window within 5:00:00: {} to {}, 40 gCO2e/kWh",
            clean.format("%Y-%m-%d %H:%M UTC"),
            (clean + TimeDelta::hours(1)).format("%Y-%m-%d %H:%M UTC")
        )),
        "{err}"
    );
    assert!(err.contains("86.7% below starting now"), "{err}");
    // It waited (at least the compressed time to the window: a lower bound only).
    let waited = (clean - Utc::now()).as_seconds_f64().max(0.0) / 3600.0;
    assert!(t0.elapsed().as_secs_f64() >= waited * 0.9, "{err}");
}

#[test]
fn without_a_forecast_it_starts_at_once_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let o = bin()
        .args(["wait", "--zone", "FR", "--length", "1h", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(marker.exists());
    assert!(err.contains("has no forecast: starting now"), "{err}");
}

#[test]
fn a_flat_forecast_starts_at_once_and_the_exit_status_is_the_commands() {
    let (body, _) = forecast(&[200.0; 10]);
    let api = FakeApi::start();
    api.route("/intensity", Reply::json(body.clone()));
    api.route("/intensity/*", Reply::json(body));
    let o = bin()
        .args([
            "wait",
            "--zone",
            "GB",
            "--grid-url",
            &api.url(),
            "--length",
            "1h",
        ])
        .args(["--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("% cleaner than starting now"), "{err}");
    let o = bin()
        .args([
            "wait",
            "--zone",
            "FR",
            "--length",
            "1h",
            "--",
            "/nonexistent/cmd",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
}
