//! emissions.csv as CodeCarbon's own tools read it: `run` and a later `report` of the same
//! recording give the same row id and place; every row has a country; and, where CodeCarbon
//! 3.3.2 with its carbonboard is installed (`.ci/run` installs it), carbonboard's nine views are
//! built from carbontop's file by `scripts/carbonboard_check.py`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn cells(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let (h, rows) = read_csv(path);
    rows.into_iter()
        .map(|r| h.iter().cloned().zip(r).collect())
        .collect()
}

fn run(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let o = quick("run", &out)
        .args(["--no-gpu", "--pue", "1.5"])
        .args(extra)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    out
}

#[test]
fn run_and_report_write_the_same_row_identity_and_a_country_always() {
    let dir = tempfile::tempdir().unwrap();
    let fr = run(dir.path(), "fr", &["--zone", "FR"]);
    let world = run(dir.path(), "world", &[]);
    let fixed = run(dir.path(), "fixed", &["--intensity", "300"]);
    let rep = dir.path().join("report.csv");
    for r in [&fr, &world, &fixed] {
        let o = bin()
            .arg("report")
            .arg(r.join("samples.csv"))
            .arg("--emissions")
            .arg(&rep)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let reported = cells(&rep);
    let want = [("FRA", "France"), ("WLD", "World"), ("ZZZ", "Unknown")];
    for ((r, rep_row), (iso, name)) in [&fr, &world, &fixed].iter().zip(&reported).zip(want) {
        let own = &cells(&r.join("emissions.csv"))[0];
        assert_eq!(own["run_id"], rep_row["run_id"], "{}", r.display());
        assert_eq!(own["run_id"].len(), 36);
        assert_eq!(
            (
                own["country_iso_code"].as_str(),
                own["country_name"].as_str()
            ),
            (iso, name)
        );
        assert_eq!(rep_row["country_iso_code"], iso);
        // Power with PUE, as CodeCarbon's: mean CPU power × 1.5 × duration = CPU energy.
        let (p, e, d) = (
            num(&own["cpu_power"]),
            num(&own["cpu_energy"]),
            num(&own["duration"]),
        );
        assert!(close(p * d / 3.6e6, e, 1e-9), "{p} W × {d} s vs {e} kWh");
        // GiB, as CodeCarbon's psutil total / 1024³.
        let gib = num(&own["ram_total_size"]);
        assert!(gib > 0.01 && gib < 1e5, "{gib}");
    }
    // Two runs never share an id.
    assert_ne!(reported[0]["run_id"], reported[1]["run_id"]);
    // A recording moved without its run.json: its id is still the same at every report, the
    // place is unknown unless --zone says it.
    std::fs::remove_file(fr.join("run.json")).unwrap();
    let again = dir.path().join("again.csv");
    for zone in [None, None, Some("FR")] {
        let mut c = bin();
        c.arg("report")
            .arg(fr.join("samples.csv"))
            .arg("--emissions")
            .arg(&again);
        if let Some(z) = zone {
            c.args(["--zone", z]);
        }
        assert_eq!(c.output().unwrap().status.code(), Some(0));
    }
    let rows = cells(&again);
    assert_eq!(rows[0]["run_id"], rows[1]["run_id"]);
    assert_eq!(rows[0]["country_iso_code"], "ZZZ");
    assert_eq!(rows[2]["country_iso_code"], "FRA");
}

/// The Python that has CodeCarbon 3.3.2's carbonboard: `CARBONTOP_PYTHON`, else `python3`.
fn carbonboard_python() -> Option<String> {
    let py = std::env::var("CARBONTOP_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args([
            "-c",
            "import codecarbon, codecarbon.viz.data, codecarbon.viz.components; \
             assert codecarbon.__version__ == '3.3.2', codecarbon.__version__",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

#[test]
fn codecarbons_carbonboard_builds_every_view_from_carbontops_file() {
    let Some(py) = carbonboard_python() else {
        need(
            "CodeCarbon 3.3.2 with carbonboard (pip install \"codecarbon[carbonboard]==3.3.2\"; \
             CARBONTOP_PYTHON names its python)",
            false,
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/carbonboard_check.py");
    // Not a US zone: carbonboard 3.3.2 fails on every USA row, its own included (its
    // usa.json gained a `_source` entry without the `regionCode` its regional view reads).
    for (name, zone) in [("fr", Some("FR")), ("ca", Some("CA")), ("world", None)] {
        let extra: Vec<&str> = zone.map(|z| vec!["--zone", z]).unwrap_or_default();
        let r = run(dir.path(), name, &extra);
        // The run's own row, and a report's row of the same recording, in one file.
        let file = r.join("emissions.csv");
        let o = bin()
            .arg("report")
            .arg(r.join("samples.csv"))
            .arg("--emissions")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = Command::new(&py).arg(&script).arg(&file).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("9 views built"),
            "{name}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
