//! The embedded table's band end to end: a run priced from the table (an annual mean) shows a
//! wider total band than the same run priced from a live provider (the hour's own value), in
//! `report --json` and the summary; `carbontop zones` lists each value's band.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::fake_api::{FakeApi, Reply};
use common::*;
use std::path::Path;

/// The GB national answer with `g` as the current half hour's actual value.
fn uk(g: f64) -> String {
    let t = chrono::Utc::now() - chrono::TimeDelta::minutes(10);
    let f = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%MZ").to_string();
    format!(
        r#"{{"data":[{{"from":"{}","to":"{}","intensity":{{"forecast":{g},"actual":{g},"index":"moderate"}}}}]}}"#,
        f(t),
        f(t + chrono::TimeDelta::minutes(30))
    )
}

/// `run --zone GB ARGS -- sleep 1.5` (no embodied carbon: its band would swamp the grid's) and
/// its `report --json`: the run's object.
fn priced(out: &Path, url: &str, args: &[&str]) -> serde_json::Value {
    let mut c = bin();
    grid_run(&mut c, url, out);
    let o = c
        .args(["--quiet", "--no-gpu", "--embodied-kg", "0", "--zone", "GB"])
        .args(args)
        .args(["--", "sleep", "1.5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (j, _) = report_json(&out.join("samples.csv"));
    j["runs"][0].clone()
}

/// (high − low) / g of a `{g, low_g, high_g}` band.
fn width(b: &serde_json::Value) -> f64 {
    let g = b["g"].as_f64().unwrap();
    assert!(g > 0.0, "{b}");
    (b["high_g"].as_f64().unwrap() - b["low_g"].as_f64().unwrap()) / g
}

#[test]
fn a_run_priced_from_the_table_has_a_wider_band_than_one_priced_live() {
    let api = FakeApi::start();
    api.route("/intensity", Reply::json(uk(200.0)));
    api.route("/intensity/*", Reply::json(uk(200.0)));
    let dir = tempfile::tempdir().unwrap();
    let live = priced(&dir.path().join("live"), &api.url(), &["--provider", "uk"]);
    let table = priced(
        &dir.path().join("table"),
        &api.url(),
        &["--provider", "table"],
    );
    // Every tick of the table run is priced from the table, and carries its ×0.7–1.3.
    let t = &table["grid_table_co2e"];
    assert!((t["g"].as_f64().unwrap() - table["co2e_g"].as_f64().unwrap()).abs() < 1e-12);
    assert!((t["low_g"].as_f64().unwrap() / t["g"].as_f64().unwrap() - 0.7).abs() < 1e-9);
    assert!((t["high_g"].as_f64().unwrap() / t["g"].as_f64().unwrap() - 1.3).abs() < 1e-9);
    // The live run: the provider's value (a first tick or two may wait on the table until
    // its first answer), so far less of its carbon carries the table's band.
    let live_table = live["grid_table_co2e"]["g"].as_f64().unwrap_or(0.0);
    assert!(
        live_table < 0.5 * live["co2e_g"].as_f64().unwrap(),
        "{live}"
    );
    let (wl, wt) = (width(&live["total_co2e"]), width(&table["total_co2e"]));
    assert!(wt > wl + 0.2, "table band ×{wt} vs live ×{wl}");
    assert!(width(&table["co2e_band"]) > width(&live["co2e_band"]) + 0.2);
    // The zones listing gives each value's band.
    let z = json_of(bin().args(["zones", "FR", "--json"]));
    let fr = z["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["zone"] == "FR")
        .unwrap();
    let g = fr["g_per_kwh"].as_f64().unwrap();
    assert!((fr["low_g_per_kwh"].as_f64().unwrap() - 0.7 * g).abs() < 1e-9);
    assert!((fr["high_g_per_kwh"].as_f64().unwrap() - 1.3 * g).abs() < 1e-9);
}
