//! emissions.csv as CodeCarbon's own tools read it: `run` and a later `report` of the same
//! recording give the same row id and place; every row has a country; `--tracking-mode
//! process` gives the command's own figures, and `report` of such a recording the same row;
//! and, where CodeCarbon 3.3.2 with its carbonboard is installed (`.ci/run` installs it),
//! carbonboard's nine views are built from carbontop's files (machine and process mode) by
//! `scripts/carbonboard_check.py`.
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

/// A command that holds about 200 MiB resident and keeps one CPU busy for `secs` seconds.
fn busy_holding_memory(secs: f64) -> Vec<String> {
    vec![
        "python3".into(),
        "-c".into(),
        format!(
            "import time\nx = bytearray(200 << 20)\nt = time.time()\n\
             while time.time() - t < {secs}: x[int(time.time() * 1e6) % len(x)] = 1"
        ),
    ]
}

fn have_python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `run --tracking-mode process -- CMD`: the run's own row and a later report's row.
fn process_mode_run(dir: &Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let o = quick("run", &out)
        .args(["--no-gpu", "--pue", "1.5", "--zone", "FR"])
        .args(["--tracking-mode", "process", "--"])
        .args(busy_holding_memory(1.5))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    out
}

#[test]
fn process_mode_writes_the_commands_own_figures_and_report_writes_the_same_row() {
    if !need("python3 (the memory-holding command)", have_python3()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = process_mode_run(dir.path(), "proc");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["tracking_mode"], "process");
    // The command's memory share, row by row: known, above zero once it holds its 200 MiB,
    // never above the machine's memory power.
    let (h, rows) = read_csv(&r.join("samples.csv"));
    let (pm, mm) = (col(&h, "process_mem_w"), col(&h, "mem_power_w"));
    let known: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| !r[pm].is_empty())
        .map(|r| (num(&r[pm]), num(&r[mm])))
        .collect();
    assert!(!known.is_empty(), "no process_mem_w in {rows:?}");
    assert!(known.iter().all(|(p, m)| *p >= 0.0 && p <= m), "{known:?}");
    assert!(known.iter().any(|(p, _)| *p > 0.0), "{known:?}");
    // The run's row, then a report's of the same recording: the same row.
    let file = r.join("emissions.csv");
    let o = bin()
        .arg("report")
        .arg(r.join("samples.csv"))
        .arg("--emissions")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = cells(&file);
    assert_eq!(rows.len(), 2);
    let (own, rep) = (&rows[0], &rows[1]);
    assert_eq!(own["tracking_mode"], "process");
    for (k, v) in own {
        let w = &rep[k];
        match (v.parse::<f64>(), w.parse::<f64>()) {
            (Ok(a), Ok(b)) => assert!(close(a, b, 1e-9) || a == b, "{k}: {v} vs {w}"),
            _ => assert_eq!(v, w, "{k}"),
        }
    }
    // The command's figures are a share of the machine's: below the machine's own row, which
    // a report without run.json (no mode recorded: the machine's) gives for the same file.
    std::fs::remove_file(r.join("run.json")).unwrap();
    let machine = dir.path().join("machine.csv");
    let o = bin()
        .arg("report")
        .arg(r.join("samples.csv"))
        .args(["--zone", "FR", "--emissions"])
        .arg(&machine)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = &cells(&machine)[0];
    assert_eq!(m["tracking_mode"], "machine");
    for k in ["ram_energy", "energy_consumed", "emissions"] {
        let (p, w) = (num(&own[k]), num(&m[k]));
        assert!(p > 0.0 && p < w, "{k}: process {p} vs machine {w}");
    }
    // Power with PUE, as CodeCarbon's: mean power × duration = energy, in process mode too.
    let (p, e, d) = (
        num(&own["ram_power"]),
        num(&own["ram_energy"]),
        num(&own["duration"]),
    );
    assert!(close(p * d / 3.6e6, e, 1e-9), "{p} W × {d} s vs {e} kWh");
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
        check_views(&py, &script, name, &file);
    }
    // A process-mode file: the command's own figures, `tracking_mode = process`.
    if have_python3() {
        let r = process_mode_run(dir.path(), "proc");
        let file = r.join("emissions.csv");
        assert_eq!(cells(&file)[0]["tracking_mode"], "process");
        check_views(&py, &script, "process", &file);
    }
}

fn check_views(py: &str, script: &Path, name: &str, file: &Path) {
    let o = Command::new(py).arg(script).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("9 views built"),
        "{name}: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
