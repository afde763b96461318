//! Every embedded zone end to end: the real binary priced in a country, a US state, a Canadian
//! province and cloud regions, each with its figure, basis and country in the outputs; unknown
//! zones refused with the nearest ones; live providers' zones falling back to their state or
//! country, never the world mean. Nothing here depends on timing: the figures are the table's.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::path::Path;
use std::process::Output;

/// lbs/MWh → g/kWh (eGRID).
const LB: f64 = 0.45359237;

/// Environment variables for a run.
type Envs = [(&'static str, &'static str)];

/// `carbontop run --zone ZONE --duration 1s --out DIR [ARGS] -- true`, without a terminal (so
/// headless), quiet.
fn run_in(zone: &str, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(["run", "--quiet", "--interval", "100ms", "--zone", zone])
        .args(["--duration", "1s", "--out"])
        .arg(dir)
        .args(args)
        .args(["--", "true"]);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Every row's intensity and source, and emissions.csv's country columns.
fn outputs(dir: &Path) -> (Vec<(f64, String)>, (String, String)) {
    let (h, rows) = read_csv(&dir.join("samples.csv"));
    let (i, s) = (col(&h, "intensity_g_per_kwh"), col(&h, "intensity_source"));
    let ticks = rows.iter().map(|r| (num(&r[i]), r[s].clone())).collect();
    let (eh, erows) = read_csv(&dir.join("emissions.csv"));
    let r = &erows[0];
    let country = (
        r[col(&eh, "country_iso_code")].clone(),
        r[col(&eh, "country_name")].clone(),
    );
    (ticks, country)
}

#[test]
fn each_kind_of_zone_prices_the_run_with_its_own_figure_and_basis() {
    // Quebec's mix (hydro 92.1 %, wind 6.7 %, …) × IPCC AR5 life-cycle medians.
    let quebec =
        (0.2 * 490.0 + 0.3 * 650.0 + 0.7 * 230.0 + 0.01 * 48.0 + 6.7 * 11.0 + 92.1 * 24.0) / 100.01;
    let cases: &[(&str, f64, &str, &str, &str)] = &[
        (
            "IT",
            330.718,
            "table: IT Italy 330.7 gCO2e/kWh (2023 annual mean, life-cycle; OWID/Ember, CC BY 4.0)",
            "ITA",
            "Italy",
        ),
        (
            "us-ca",
            394.769 * LB,
            "table: US-CA California 179.1 gCO2e/kWh (2023 annual mean, combustion at the plant; \
             EPA eGRID2023)",
            "USA",
            "United States",
        ),
        (
            "gcp:europe-west1",
            122.0,
            "table: gcp:europe-west1 Google Cloud europe-west1 (St. Ghislain, Belgium) 122 \
             gCO2e/kWh (2023 annual mean, operational, provider's own; Google Cloud region data)",
            "BEL",
            "Belgium",
        ),
        (
            "aws:us-east-1",
            539.599 * LB,
            "table: aws:us-east-1 AWS us-east-1 (US East (N. Virginia)), in US-VA Virginia: \
             244.8 gCO2e/kWh (2023 annual mean, combustion at the plant; EPA eGRID2023)",
            "USA",
            "United States",
        ),
        (
            "CA-QC",
            quebec,
            "table: CA-QC Quebec 27.4 gCO2e/kWh (2023 annual mean, life-cycle; provincial mix \
             (CodeCarbon 3.3.2) × IPCC AR5 factors)",
            "CAN",
            "Canada",
        ),
        (
            "azure:westeurope",
            267.622,
            "table: azure:westeurope Azure westeurope (West Europe (Netherlands)), in NL \
             Netherlands: 267.6 gCO2e/kWh (2023 annual mean, life-cycle; OWID/Ember, CC BY 4.0)",
            "NLD",
            "Netherlands",
        ),
    ];
    for &(zone, g, describe, iso3, name) in cases {
        let dir = tempfile::tempdir().unwrap();
        let o = run_in(zone, dir.path(), &[], &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{zone}: {err}");
        assert!(
            err.contains(describe),
            "{zone}: want {describe:?} in\n{err}"
        );
        let (ticks, country) = outputs(dir.path());
        assert!(!ticks.is_empty(), "{zone}");
        for (i, s) in &ticks {
            assert!(close(*i, g, 1e-12), "{zone}: {i} ≠ {g}");
            assert_eq!(s, "table", "{zone}");
        }
        assert_eq!(country, (iso3.to_owned(), name.to_owned()), "{zone}");
    }
}

#[test]
fn an_unknown_zone_is_one_line_naming_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    for (zone, near) in [
        (
            "gcp:europe-west7",
            "did you mean gcp:europe-west1, gcp:europe-west2, gcp:europe-west3",
        ),
        ("aws:us-east-9", "did you mean aws:us-east-1, aws:us-east-2"),
        ("US-CX", "did you mean US-CA"),
        ("itly", "did you mean IT"),
    ] {
        let o = run_in(zone, &dir.path().join("x"), &[], &[]);
        assert_one_line_error(&o, &format!("--zone {zone}: not a zone"));
        assert!(stderr(&o).contains(near), "{zone}: {}", stderr(&o));
        assert!(stderr(&o).contains("carbontop zones"), "{}", stderr(&o));
    }
    // The same for estimate and report.
    let o = bin()
        .args([
            "estimate", "--gpu", "a100", "--hours", "1", "--zone", "Georgia",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&o, "did you mean GE, US-GA");
}

#[test]
fn a_live_providers_zone_falls_back_to_its_state_or_country_not_the_world() {
    // Nothing listens on port 9: every tick is the fallback's.
    let url = "http://127.0.0.1:9";
    let wt = [("WATTTIME_USERNAME", "u"), ("WATTTIME_PASSWORD", "p")];
    let em = [("ELECTRICITYMAPS_API_KEY", "t")];
    let cases: &[(&str, &str, &Envs, f64, &str)] = &[
        ("watttime", "CAISO_NORTH", &wt, 394.769 * LB, "USA"),
        ("watttime", "ERCOT_EASTTX", &wt, 771.179 * LB, "USA"),
        // Santee Cooper to WattTime, not the Seychelles.
        ("watttime", "SC", &wt, 560.363 * LB, "USA"),
        ("emaps", "US-CAL-CISO", &em, 394.769 * LB, "USA"),
        // PJM spans 13 states and DC: the country's figure.
        ("emaps", "US-MIDA-PJM", &em, 369.473, "USA"),
        ("emaps", "DK-DK2", &em, 151.65, "DNK"),
    ];
    for &(provider, zone, envs, g, iso3) in cases {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "--provider",
            provider,
            "--grid-url",
            url,
            "--grid-poll",
            "1s",
        ];
        let o = run_in(zone, dir.path(), &args, envs);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{zone}: {err}");
        let (ticks, country) = outputs(dir.path());
        assert!(!ticks.is_empty(), "{zone}");
        for (i, s) in &ticks {
            assert!(close(*i, g, 1e-12), "{zone}: {i} ≠ {g}\n{err}");
            assert_eq!(s, "table", "{zone}");
        }
        assert_eq!(country.0, iso3, "{zone}");
        // The summary says which row stands in, and its basis.
        assert!(err.contains(&format!("table: {zone} (")), "{zone}: {err}");
        assert!(!err.contains("WORLD"), "{zone}: {err}");
    }
}

#[test]
fn zones_lists_every_zone_with_its_basis() {
    let v = json_of(bin().args(["zones", "--json"]));
    let zones = v["zones"].as_array().unwrap();
    // 213 countries, 51 eGRID states, 13 provinces, 40 Google regions, AWS, Azure, WORLD.
    assert!(zones.len() > 213 + 51 + 13 + 40 + 80, "{}", zones.len());
    for z in zones {
        assert!(z["g_per_kwh"].as_f64().is_some(), "{z}");
        assert!(
            ["lifecycle", "combustion", "operational"].contains(&z["basis"].as_str().unwrap()),
            "{z}"
        );
        assert!(!z["country_iso_code"].as_str().unwrap().is_empty(), "{z}");
    }
    let o = bin().args(["zones", "italy"]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().any(|l| l.starts_with("IT ")), "{text}");
    assert!(text.contains("gcp:europe-west8"), "{text}");
    let o = bin().args(["zones", "no such place"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}
