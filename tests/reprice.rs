//! `carbontop reprice`: the fixture run priced again in three zones, under another PUE and at
//! the best start of a 60-hour trace, each figure recomputed here from the recording's own
//! cumulative energy and the zones' table values, independently of the engine's profile.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use common::*;
use std::path::Path;

const RUN: &str = "traces/a40x4-cifar100.csv";

/// The recording's last cumulative facility energy (kWh) and carbon (g), as it was written.
fn recorded() -> (f64, f64) {
    let (h, rows) = read_csv(&fixture(RUN));
    let last = rows.last().unwrap();
    (
        num(&last[col(&h, "energy_kwh")]),
        num(&last[col(&h, "co2e_g")]),
    )
}

/// A zone's annual mean from `carbontop zones --json`.
fn table_g(zone: &str) -> f64 {
    let v = json_of(bin().args(["zones", zone, "--json"]));
    v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == zone)
        .unwrap_or_else(|| panic!("{zone} not in {v}"))["g_per_kwh"]
        .as_f64()
        .unwrap()
}

fn reprice(args: &[&str]) -> serde_json::Value {
    json_of(
        bin()
            .arg("reprice")
            .arg(fixture(RUN))
            .args(args)
            .arg("--json"),
    )
}

fn option<'a>(v: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    v["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["label"] == label)
        .unwrap_or_else(|| panic!("no option {label} in {v}"))
}

/// A trace of hourly intensities from the run's own start hour: `g(h)` for hour h.
fn hourly_trace(path: &Path, hours: usize, g: impl Fn(usize) -> f64) {
    let mut text = "timestamp,g_per_kwh\n".to_owned();
    for h in 0..hours {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap()
            + chrono::TimeDelta::hours(h as i64);
        text += &format!("{},{}\n", t.to_rfc3339(), g(h));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn three_zones_and_another_pue_are_the_recorded_energy_times_their_intensity() {
    let (kwh, co2e) = recorded();
    let v = reprice(&["--zone", "FR,US-CA,gcp:europe-north1"]);
    let as_recorded = option(&v, "as recorded")["co2e_g"].as_f64().unwrap();
    assert!(close(as_recorded, co2e, 1e-9), "{as_recorded} vs {co2e}");
    for z in ["FR", "US-CA", "gcp:europe-north1"] {
        let got = option(&v, &format!("zone {z}"))["co2e_g"].as_f64().unwrap();
        let want = kwh * table_g(z);
        assert!(close(got, want, 1e-9), "{z}: {got} vs {want}");
    }
    // Another PUE: the same IT energy and intensities, facility energy scaled.
    let pue = v["pue"].as_f64().unwrap();
    let w = reprice(&["--pue", "1.5"]);
    let got = option(&w, "PUE 1.5")["co2e_g"].as_f64().unwrap();
    assert!(
        close(got, co2e * 1.5 / pue, 1e-9),
        "{got} vs {co2e} × 1.5 / {pue}"
    );
}

#[test]
fn the_best_start_in_a_two_day_trace_is_found_and_priced() {
    let (kwh, _) = recorded();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    // 60 hours; hour 30 is the cleanest; the run (6 min from 09:00) fits in any one hour.
    let g = |h: usize| {
        if h == 30 {
            40.0
        } else {
            300.0 + (h % 7) as f64 * 25.0
        }
    };
    hourly_trace(&trace, 60, g);
    let v = reprice(&[
        "--intensity-trace",
        trace.to_str().unwrap(),
        "--within",
        "48h",
        "--step",
        "15m",
    ]);
    let now = option(&v, "start as recorded");
    assert!(
        close(now["co2e_g"].as_f64().unwrap(), kwh * g(0), 1e-9),
        "{now}"
    );
    let best = &v["options"].as_array().unwrap().last().unwrap();
    assert_eq!(best["label"], "best start, 30:00:00 later", "{best}");
    assert_eq!(best["start"], "2026-03-03T15:00:00Z");
    assert!(
        close(best["co2e_g"].as_f64().unwrap(), kwh * 40.0, 1e-9),
        "{best}"
    );
    // 48 h every 15 min, all covered by the 60-hour trace.
    assert_eq!(v["window"]["starts_tried"], 193);
    let saved = v["window"]["best_saves_co2e_g"].as_f64().unwrap();
    assert!(close(saved, kwh * (g(0) - 40.0), 1e-9), "{saved}");
}

#[test]
fn a_recording_is_a_trace_of_its_own_intensity() {
    let (_, co2e) = recorded();
    let v = reprice(&[
        "--intensity-trace",
        fixture(RUN).to_str().unwrap(),
        "--within",
        "1m",
    ]);
    let now = option(&v, "start as recorded")["co2e_g"].as_f64().unwrap();
    assert!(close(now, co2e, 1e-9), "{now} vs {co2e}");
}

#[test]
fn the_png_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("r.png");
    let o = bin()
        .arg("reprice")
        .arg(fixture(RUN))
        .args(["--zone", "FR,DE", "--png"])
        .arg(&png)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
}

#[test]
fn bad_input_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("t.csv");
    std::fs::write(&bad, "time,value\n2026-03-02 09:00,lots\n").unwrap();
    let run = |args: &[&str]| {
        bin()
            .arg("reprice")
            .arg(fixture(RUN))
            .args(args)
            .output()
            .unwrap()
    };
    assert_one_line_error(
        &run(&["--intensity-trace", bad.to_str().unwrap()]),
        "line 2",
    );
    assert_one_line_error(&run(&["--zone", "FRANCEE"]), "FRANCEE");
    assert_one_line_error(&run(&["--intensity-trace", "/dev/zero"]), "/dev/zero");
    // A trace that covers no start of the run: two minutes of it for a six-minute run.
    std::fs::write(
        &bad,
        "time,value\n2026-03-02 09:00,100\n2026-03-02 09:01,120\n",
    )
    .unwrap();
    assert_one_line_error(
        &run(&["--intensity-trace", bad.to_str().unwrap(), "--within", "2h"]),
        "covers no start",
    );
}
