//! Live grid providers end to end: the real binary against a local server on 127.0.0.1 that
//! answers with the real APIs' JSON shapes (nulls, unknown fields, GB times without seconds).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::fake_api::{FakeApi, Reply};
use common::*;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// A GB half-hour time, as the API writes it (no seconds).
fn gb(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// The GB national answer: the half-hour slot around now (actual), then four forecast-only
/// slots at `next`.
fn uk_body(actual: f64, next: f64) -> String {
    let start = Utc::now() - TimeDelta::minutes(20);
    let slot = |i: i64| {
        let from = start + TimeDelta::minutes(30 * i);
        let (f, a) = if i == 0 {
            (actual + 3.0, actual.to_string())
        } else {
            (next, "null".to_owned())
        };
        format!(
            r#"{{"from":"{}","to":"{}","intensity":{{"forecast":{f},"actual":{a},"index":"moderate"}}}}"#,
            gb(from),
            gb(from + TimeDelta::minutes(30))
        )
    };
    let slots: Vec<String> = (0..5).map(slot).collect();
    format!(r#"{{"data":[{}]}}"#, slots.join(","))
}

fn uk_server(actual: f64) -> FakeApi {
    let s = FakeApi::start();
    s.route("/intensity", Reply::json(uk_body(actual, 99.0)));
    s.route("/intensity/*", Reply::json(uk_body(actual, 99.0)));
    s
}

/// `run --headless --interval 100ms --grid-poll 1s --grid-url URL ARGS -- sleep SECS`, spawned.
fn run_against(url: &str, out: &Path, args: &[&str], secs: &str, envs: &[(&str, &str)]) -> Child {
    let mut c = bin();
    grid_run(&mut c, url, out);
    c.args(args)
        .args(["--", "sleep", secs])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

struct Rows {
    h: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Rows {
    fn read(out: &Path) -> Self {
        let (h, rows) = read_csv(&out.join("samples.csv"));
        Self { h, rows }
    }
    fn get(&self, r: usize, name: &str) -> &str {
        &self.rows[r][col(&self.h, name)]
    }
    fn f(&self, r: usize, name: &str) -> f64 {
        num(self.get(r, name))
    }
    fn sources(&self) -> Vec<String> {
        (0..self.rows.len())
            .map(|r| self.get(r, "intensity_source").to_owned())
            .collect()
    }
    /// Δco2e_g = Δenergy_kwh × that row's intensity, row by row (C = Σ E_tick × I(t_tick)).
    fn assert_carbon_formula(&self) {
        let mut sum = 0.0;
        for r in 1..self.rows.len() {
            let de = self.f(r, "energy_kwh") - self.f(r - 1, "energy_kwh");
            let dc = self.f(r, "co2e_g") - self.f(r - 1, "co2e_g");
            let i = self.f(r, "intensity_g_per_kwh");
            assert!(
                close(dc, de * i, 1e-9) || (dc - de * i).abs() < 1e-15,
                "row {r}: {dc} vs {de} × {i}"
            );
            sum += de * i;
        }
        let last = self.rows.len() - 1;
        assert!(close(self.f(last, "co2e_g"), sum, 1e-9));
    }
}

fn finish(c: Child) -> Output {
    let o = c.wait_with_output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    o
}

#[test]
fn gb_values_reach_samples_csv_and_a_change_mid_run_follows_the_formula() {
    let api = uk_server(200.0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let child = run_against(&api.url(), &out, &["--zone", "GB"], "3", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    api.route("/intensity", Reply::json(uk_body(300.0, 99.0)));
    api.route("/intensity/*", Reply::json(uk_body(300.0, 99.0)));
    let o = finish(child);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    let srcs = rows.sources();
    // Before the first answer: the table's GB mean, labelled as such; then the API's values.
    for (r, s) in srcs.iter().enumerate() {
        let i = rows.f(r, "intensity_g_per_kwh");
        match s.as_str() {
            // OWID's 2023 figure for the United Kingdom.
            "table" => assert_eq!(i, 237.589),
            "uk" => assert!(i == 200.0 || i == 300.0, "row {r}: {i}"),
            other => panic!("row {r}: unexpected source {other}"),
        }
    }
    let uk: Vec<f64> = (0..srcs.len())
        .filter(|&r| srcs[r] == "uk")
        .map(|r| rows.f(r, "intensity_g_per_kwh"))
        .collect();
    assert_eq!(uk.first(), Some(&200.0), "{srcs:?}");
    assert_eq!(uk.last(), Some(&300.0), "{uk:?}");
    rows.assert_carbon_formula();
    // The national and the forecast endpoints were both asked, with a GB time without seconds.
    let reqs = api.requests();
    assert!(reqs.iter().any(|r| r.path == "/intensity"));
    let fw = reqs.iter().find(|r| r.path.ends_with("/fw48h")).unwrap();
    assert_eq!(
        fw.path.len(),
        "/intensity/2024-01-01T00:00Z/fw48h".len(),
        "{}",
        fw.path
    );
    assert_eq!(
        reqs[0].headers.get("accept").map(String::as_str),
        Some("application/json")
    );
    // The summary names the provider.
    assert!(
        stderr(&o).contains("GB Carbon Intensity API"),
        "{}",
        stderr(&o)
    );
}

/// Issue 20: a slow first answer delays rows, never drops one, and every row (the first
/// included) is priced at its own time by the provider's answer. Nothing here is decided by
/// the test's clock: the rows' own figures say it.
#[test]
fn a_late_first_answer_still_prices_the_start_of_the_run() {
    let api = FakeApi::start();
    let body = uk_body(180.0, 99.0);
    api.route(
        "/intensity",
        Reply::json(body.clone()).after(Duration::from_millis(1500)),
    );
    api.route("/intensity/*", Reply::json(body));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(&api.url(), &out, &["--zone", "GB"], "3", &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    // Every row, those sampled while the answer was on its way included, carries the API's
    // value for its own time: none fell back to the table, none is missing.
    assert!(rows.rows.len() >= 5, "{} rows", rows.rows.len());
    for r in 0..rows.rows.len() {
        assert_eq!(rows.get(r, "intensity_source"), "uk", "row {r}");
        assert_eq!(rows.f(r, "intensity_g_per_kwh"), 180.0, "row {r}");
    }
    assert_eq!(rows.f(0, "energy_kwh"), 0.0);
    // Consecutive rows: energy grows row by row and no tick was skipped while the provider
    // was silent (the old wait made a gap of its length; a loaded machine may slip a tick).
    for r in 1..rows.rows.len() {
        assert!(
            rows.f(r, "energy_kwh") > rows.f(r - 1, "energy_kwh"),
            "row {r}"
        );
        let gap = rows.f(r, "elapsed_s") - rows.f(r - 1, "elapsed_s");
        assert!(gap < 1.0, "gap of {gap} s before row {r}");
    }
    rows.assert_carbon_formula();
    assert!(
        stderr(&o).contains("waiting for the provider's first answer"),
        "{}",
        stderr(&o)
    );
}

/// A provider that has not answered when the run ends: the held rows are written, at the
/// table's value, labelled `table`.
#[test]
fn rows_held_for_an_answer_that_never_comes_are_written_at_the_end() {
    let api = FakeApi::start();
    api.route(
        "/intensity",
        Reply::json(uk_body(180.0, 99.0)).after(Duration::from_secs(30)),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(&api.url(), &out, &["--zone", "GB"], "1", &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    assert!(rows.rows.len() >= 3, "{} rows", rows.rows.len());
    for r in 0..rows.rows.len() {
        assert_eq!(rows.get(r, "intensity_source"), "table", "row {r}");
        // OWID's 2023 figure for the United Kingdom.
        assert_eq!(rows.f(r, "intensity_g_per_kwh"), 237.589, "row {r}");
    }
    rows.assert_carbon_formula();
}

#[test]
fn gb_regional_by_postcode() {
    let api = FakeApi::start();
    let start = Utc::now() - TimeDelta::minutes(10);
    let slot = |g: f64| {
        format!(
            r#"{{"from":"{}","to":"{}","intensity":{{"forecast":{g},"index":"low"}},"generationmix":[{{"fuel":"wind","perc":60.1}}]}}"#,
            gb(start),
            gb(start + TimeDelta::hours(1))
        )
    };
    api.route(
        "/regional/postcode/RG10",
        Reply::json(format!(
            r#"{{"data":[{{"regionid":12,"dnoregion":"SSE South","shortname":"South England","postcode":"RG10","data":[{}]}}]}}"#,
            slot(123.0)
        )),
    );
    api.route(
        "/regional/intensity/*",
        Reply::json(format!(r#"{{"data":{{"regionid":12,"shortname":"South England","postcode":"RG10","data":[{}]}}}}"#, slot(123.0))),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(
        &api.url(),
        &out,
        &["--zone", "GB-RG10"],
        "1.5",
        &[],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    let last = rows.rows.len() - 1;
    assert_eq!(rows.get(last, "intensity_source"), "uk");
    assert_eq!(rows.f(last, "intensity_g_per_kwh"), 123.0);
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path.ends_with("/fw48h/postcode/RG10"))
    );
}

#[test]
fn electricity_maps_token_goes_in_the_header_and_never_out() {
    let token = "emaps-SECRET-token-4711";
    let api = FakeApi::start();
    let now = Utc::now();
    let iso = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    // The latest value started 10 min ago; the forecast's next point is 1.2 s from now, so
    // the intensity changes mid-run by the tick's own time, with no new request needed.
    api.route(
        "/carbon-intensity/latest",
        Reply::json(format!(
            r#"{{"zone":"DE","carbonIntensity":302,"datetime":"{}","updatedAt":"{}","createdAt":"{}",
            "emissionFactorType":"lifecycle","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE",
            "temporalGranularity":"hourly","someFieldFromTheFuture":[1,{{"x":null}}]}}"#,
            iso(now - TimeDelta::minutes(10)),
            iso(now),
            iso(now)
        )),
    );
    api.route(
        "/carbon-intensity/history",
        Reply::json(format!(
            r#"{{"zone":"DE","history":[{{"zone":"DE","carbonIntensity":null,"datetime":"{}"}},
            {{"zone":"DE","carbonIntensity":290,"datetime":"{}","isEstimated":false}}]}}"#,
            iso(now - TimeDelta::hours(2)),
            iso(now - TimeDelta::minutes(70))
        )),
    );
    api.route(
        "/carbon-intensity/forecast",
        Reply::json(format!(
            r#"{{"zone":"DE","forecast":[{{"carbonIntensity":150,"datetime":"{}"}}],"updatedAt":"{}"}}"#,
            iso(now + TimeDelta::milliseconds(1200)),
            iso(now)
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(
        &api.url(),
        &out,
        &["--zone", "DE"],
        "2.5",
        &[("ELECTRICITYMAPS_API_KEY", token)],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    let vals: Vec<(String, f64)> = (0..rows.rows.len())
        .filter(|&r| rows.get(r, "intensity_source") == "emaps")
        .map(|r| {
            (
                rows.get(r, "intensity_source").to_owned(),
                rows.f(r, "intensity_g_per_kwh"),
            )
        })
        .collect();
    assert!(vals.iter().any(|v| v.1 == 302.0), "{vals:?}");
    assert_eq!(vals.last().unwrap().1, 150.0, "{vals:?}");
    rows.assert_carbon_formula();
    // The token went to the API in its header, by zone…
    let reqs = api.requests();
    assert!(
        reqs.iter()
            .all(|r| r.headers.get("auth-token").map(String::as_str) == Some(token))
    );
    assert!(reqs.iter().all(|r| r.query == "zone=DE"), "{reqs:?}");
    // …and nowhere else.
    for f in ["samples.csv", "emissions.csv"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(!text.contains(token), "{f} holds the token");
    }
    assert!(!stderr(&o).contains(token));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(token));
}

#[test]
fn electricity_maps_forecast_not_in_the_plan_degrades_and_lat_lon_is_used() {
    let api = FakeApi::start();
    api.route(
        "/carbon-intensity/latest",
        Reply::json(format!(
            r#"{{"zone":"FR","carbonIntensity":33,"datetime":"{}"}}"#,
            (Utc::now() - TimeDelta::minutes(5)).to_rfc3339()
        )),
    );
    api.route("/carbon-intensity/history", Reply::status(403));
    api.route("/carbon-intensity/forecast", Reply::status(403));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(
        &api.url(),
        &out,
        &[
            "--provider",
            "emaps",
            "--lat",
            "48.85",
            "--lon",
            "2.35",
            "--zone",
            "FR",
        ],
        "2.5",
        &[("ELECTRICITYMAPS_API_KEY", "t")],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("forecast not available to this token (HTTP 403)"),
        "{err}"
    );
    // Said once, though the provider was asked every second; the forecast not asked again.
    let said = err
        .lines()
        .filter(|l| l.starts_with("carbontop: ") && l.contains("forecast not available"))
        .count();
    assert_eq!(said, 1, "{err}");
    assert!(api.hits("/carbon-intensity/latest") >= 2);
    assert_eq!(api.hits("/carbon-intensity/forecast"), 1);
    assert!(
        api.requests()
            .iter()
            .all(|r| r.query == "lat=48.85&lon=2.35")
    );
    let rows = Rows::read(&out);
    let last = rows.rows.len() - 1;
    assert_eq!(
        (
            rows.get(last, "intensity_source"),
            rows.f(last, "intensity_g_per_kwh")
        ),
        ("emaps", 33.0)
    );
}

#[test]
fn watttime_logs_in_converts_moer_and_logs_in_again_on_401() {
    let api = FakeApi::start();
    let now = Utc::now();
    let t = |m: i64| (now + TimeDelta::minutes(m)).to_rfc3339();
    let forecast = format!(
        r#"{{"data":[{{"point_time":"{}","value":1048.41}},{{"point_time":"{}","value":900.0}}],
        "meta":{{"data_point_period_seconds":300,"region":"CAISO_NORTH","warnings":[],"signal_type":"co2_moer",
        "model":{{"date":"2023-03-01"}},"units":"lbs_co2_per_mwh","generated_at_period_seconds":300,"generated_at":"{}"}}}}"#,
        t(-2),
        t(3),
        t(-2)
    );
    api.route_seq(
        "/login",
        vec![
            Reply::json(r#"{"token":"jwt-one"}"#),
            Reply::json(r#"{"token":"jwt-two"}"#),
        ],
    );
    // The first data call finds the token expired.
    api.route_seq(
        "/v3/forecast",
        vec![Reply::status(401), Reply::json(forecast)],
    );
    api.route(
        "/v3/signal-index",
        Reply::json(format!(
            r#"{{"data":[{{"point_time":"{}","value":63.0}}],"meta":{{"region":"CAISO_NORTH","signal_type":"co2_moer","units":"percentile"}}}}"#,
            t(0)
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = finish(run_against(
        &api.url(),
        &out,
        &["--provider", "watttime", "--zone", "CAISO_NORTH"],
        "1.5",
        &[
            ("WATTTIME_USERNAME", "ann"),
            ("WATTTIME_PASSWORD", "pw-SECRET-99"),
        ],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    let last = rows.rows.len() - 1;
    assert_eq!(rows.get(last, "intensity_source"), "watttime-moer");
    assert_eq!(rows.f(last, "intensity_g_per_kwh"), 1048.41 * 0.45359237);
    rows.assert_carbon_formula();
    let reqs = api.requests();
    let logins: Vec<_> = reqs.iter().filter(|r| r.path == "/login").collect();
    assert!(logins.len() >= 2, "a 401 logs in again: {reqs:?}");
    // HTTP Basic ann:pw-SECRET-99.
    assert_eq!(
        logins[0].headers["authorization"],
        "Basic YW5uOnB3LVNFQ1JFVC05OQ=="
    );
    let data: Vec<_> = reqs.iter().filter(|r| r.path == "/v3/forecast").collect();
    assert_eq!(data[0].headers["authorization"], "Bearer jwt-one");
    assert_eq!(data[1].headers["authorization"], "Bearer jwt-two");
    assert_eq!(data[1].query, "region=CAISO_NORTH&signal_type=co2_moer");
    let err = stderr(&o);
    assert!(
        err.contains("marginal"),
        "the summary says MOER is marginal: {err}"
    );
    assert!(
        !err.contains("pw-SECRET-99") && !err.contains("jwt-"),
        "{err}"
    );
}

#[test]
fn faults_never_stop_sampling_mark_values_stale_and_recover() {
    let mut api = uk_server(200.0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let child = run_against(&api.url(), &out, &["--zone", "GB"], "8", &[]);
    let step = Duration::from_millis(1100);
    std::thread::sleep(step);
    api.route("/intensity", Reply::status(500));
    std::thread::sleep(step);
    api.route("/intensity", Reply::status(429).header("Retry-After", "1"));
    std::thread::sleep(step);
    api.route("/intensity", Reply::json("<html>502 Bad Gateway</html>"));
    std::thread::sleep(step);
    api.stop();
    std::thread::sleep(step);
    api.route("/intensity", Reply::json(uk_body(300.0, 99.0)));
    api.resume();
    let o = finish(child);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = Rows::read(&out);
    // Sampling never stopped: a row every 100 ms throughout (a request waiting on its 10 s
    // timeout would leave a gap).
    for r in 1..rows.rows.len() {
        let gap = rows.f(r, "elapsed_s") - rows.f(r - 1, "elapsed_s");
        assert!(gap < 1.0, "gap of {gap} s before row {r}");
    }
    assert!(rows.rows.len() > 60, "{} rows in 8 s", rows.rows.len());
    let srcs = rows.sources();
    let first_stale = srcs
        .iter()
        .position(|s| s == "uk-stale")
        .expect("values marked stale");
    assert!(srcs[..first_stale].iter().any(|s| s == "uk"));
    // Held values keep the last good figure.
    assert_eq!(rows.f(first_stale, "intensity_g_per_kwh"), 200.0);
    let last = rows.rows.len() - 1;
    assert_eq!(
        (
            rows.get(last, "intensity_source"),
            rows.f(last, "intensity_g_per_kwh")
        ),
        ("uk", 300.0)
    );
    rows.assert_carbon_formula();
    let err = stderr(&o);
    for what in [
        "HTTP 500",
        "HTTP 429",
        "not the documented JSON",
        "answering again",
    ] {
        assert!(err.contains(what), "{what} not said: {err}");
    }
}

#[test]
fn bad_grid_settings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--provider", "nope"], "--provider"),
        (
            &["--provider", "emaps", "--zone", "DE"],
            "ELECTRICITYMAPS_API_KEY",
        ),
        (
            &["--provider", "watttime", "--zone", "CAISO_NORTH"],
            "WATTTIME_USERNAME",
        ),
        (&["--provider", "uk", "--zone", "FR"], "--zone FR"),
        (
            &["--zone", "GB", "--grid-url", "ftp://127.0.0.1"],
            "--grid-url",
        ),
        (&["--lat", "95", "--lon", "0"], "--lat"),
        (&["--grid-poll", "soon"], "--grid-poll"),
    ];
    for (args, what) in cases {
        let o = quick("record", &dir.path().join("x"))
            .args(*args)
            .args(["--duration", "1s"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {what} not in {err}");
    }
}
