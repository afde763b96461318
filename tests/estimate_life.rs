//! `carbontop estimate` over a model's life: a training phase, a serving phase and two sites,
//! every figure recomputed here by hand from the IF NN plugins' formulas and the zones' table
//! values; `--if-manifest` read back as YAML with the manifest's keys.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use common::*;

fn table_g(zone: &str) -> f64 {
    let v = json_of(bin().args(["zones", zone, "--json"]));
    v["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == zone)
        .unwrap()["g_per_kwh"]
        .as_f64()
        .unwrap()
}

const LIFE: [&str; 20] = [
    "estimate",
    "--gpu",
    "a100",
    "--count",
    "16",
    "--hours",
    "100",
    "--serve-days",
    "365",
    "--serve-count",
    "8",
    "--queries-per-day",
    "1000000",
    "--wh-per-query",
    "0.3",
    "--site",
    "zone=FR,pue=1.1,share=0.6",
    "--site",
    "zone=DE,pue=1.2,share=0.4,transport=0.95",
    "--json",
];

#[test]
fn training_serving_and_two_sites_add_up_by_hand() {
    let v = json_of(bin().args(LIFE));
    let (fr, de) = (table_g("FR"), table_g("DE"));
    // nn-et: 16 × 400 W × 100 h = 640 kWh; nn-eq per query: 1e6 × 365 × 0.3 Wh = 109,500 kWh.
    // nn-c: each site's share × its PUE × I / transport.
    let per_kwh = 0.6 * 1.1 * fr + 0.4 * 1.2 * de / 0.95;
    let (train, serve) = (640.0 * per_kwh, 109_500.0 * per_kwh);
    let p = v["phases"].as_array().unwrap();
    assert!(close(
        p[0]["operational_co2e_g"].as_f64().unwrap(),
        train,
        1e-9
    ));
    assert!(close(
        p[1]["operational_co2e_g"].as_f64().unwrap(),
        serve,
        1e-9
    ));
    // The DE training row by itself.
    let de_t = &p[0]["sites"][1];
    assert!(close(
        de_t["facility_energy_kwh"].as_f64().unwrap(),
        256.0 * 1.2,
        1e-12
    ));
    assert!(close(
        de_t["operational_co2e_g"].as_f64().unwrap(),
        256.0 * 1.2 * de / 0.95,
        1e-9
    ));
    // SCI M: (16 A100 × 150 kg + 2 servers × 2,500 kg) for 100 h, (8 × 150 + 2,500) kg for
    // 365 days, over 6 years; the band from the A100's 150–318 kg.
    let life_h = 6.0 * 365.25 * 24.0;
    let emb = (7_400.0 * 100.0 + 3_700.0 * 8_760.0) * 1000.0 / life_h;
    let emb_high =
        ((16.0 * 318.0 + 5_000.0) * 100.0 + (8.0 * 318.0 + 2_500.0) * 8_760.0) * 1000.0 / life_h;
    assert!(close(v["embodied_co2e_g"].as_f64().unwrap(), emb, 1e-9));
    assert!(close(
        v["embodied_co2e_g_high"].as_f64().unwrap(),
        emb_high,
        1e-9
    ));
    assert!(close(
        v["total_co2e_g"].as_f64().unwrap(),
        train + serve + emb,
        1e-9
    ));
}

#[test]
fn energy_per_query_measured_from_a_recording() {
    let run = fixture("traces/a40x4-cifar100.csv");
    let (rv, _) = report_json(&run);
    let it: f64 = rv["runs"][0]["it_energy_kwh"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    let v = json_of(
        bin()
            .args([
                "estimate",
                "--gpu",
                "a100",
                "--hours",
                "1",
                "--zone",
                "FR",
                "--serve-days",
                "10",
                "--queries-per-day",
                "5000",
                "--per-query-from",
            ])
            .arg(&run)
            .args(["--queries", "2000", "--json"]),
    );
    let serve = &v["phases"][1];
    assert!(close(
        serve["it_energy_kwh"].as_f64().unwrap(),
        it / 2000.0 * 5000.0 * 10.0,
        1e-9
    ));
    // No serving hardware given: its embodied carbon is not counted, and says so.
    assert!(serve["embodied_co2e_g"].is_null());
}

#[test]
fn the_if_manifest_is_yaml_with_the_manifest_keys() {
    let python = std::env::var("CARBONTOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_yaml = std::process::Command::new(&python)
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !need(
        "PyYAML (pip install pyyaml) to read the manifest back",
        has_yaml,
    ) {
        return;
    }
    let mut args: Vec<&str> = LIFE.to_vec();
    args.pop();
    args.push("--if-manifest");
    let o = bin().args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, &o.stdout).unwrap();
    let check = "import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert set(d) >= {'name', 'description', 'initialize', 'tree'}, list(d)
assert set(d['initialize']['plugins']) >= {'nn-et', 'nn-eq', 'nn-c-training', 'nn-c-serving', 'sum'}
kids = d['tree']['children']
print(len(kids), sum(c['inputs'][0]['carbontop/total-g'] for c in kids.values()))";
    let out = std::process::Command::new(&python)
        .args(["-c", check])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (n, total) = text.trim().split_once(' ').unwrap();
    assert_eq!(n, "4");
    let v = json_of(bin().args(LIFE));
    assert!(close(num(total), v["total_co2e_g"].as_f64().unwrap(), 1e-9));
}

#[test]
fn bad_sites_are_one_line_errors() {
    let base = ["estimate", "--gpu", "a100", "--hours", "1"];
    let run = |extra: &[&str]| bin().args(base).args(extra).output().unwrap();
    assert_one_line_error(&run(&["--site", "zone=FR,share=0.5"]), "sum to 0.5");
    assert_one_line_error(&run(&["--site", "zon=FR"]), "zon");
    assert_one_line_error(&run(&["--site", "zone=FR,transport=0.1"]), "transport");
    assert_one_line_error(&run(&["--site", "zone=NOWHERE"]), "NOWHERE");
    assert_one_line_error(&run(&["--serve-days", "10"]), "--serve-count");
    assert_one_line_error(&run(&["--queries-per-day", "10"]), "--serve-days");
}
