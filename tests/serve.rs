//! Past one machine: agents serving /metrics (fed by replayed fixtures) on 127.0.0.1, parsed
//! with a Prometheus text parser, and an aggregator whose totals equal the sum of the parts.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

/// report --json's totals for a fixture.
fn report(file: &str) -> (f64, f64) {
    let (v, _) = report_json(&fixture(file));
    (
        v["runs"][0]["energy_kwh"].as_f64().unwrap(),
        v["runs"][0]["co2e_g"].as_f64().unwrap(),
    )
}

#[test]
fn two_agents_and_an_aggregator_give_totals_equal_to_the_sum() {
    let (_a1, p1) = agent("traces/a40x4-cifar100.csv", "n1");
    let (a2, p2) = agent("traces/a40x4-cifar100-cap200.csv", "n2");
    let (r1, r2) = (
        report("traces/a40x4-cifar100.csv"),
        report("traces/a40x4-cifar100-cap200.csv"),
    );
    // Each agent's /metrics, parsed as Prometheus text, holds its recording's totals.
    for ((addr, rows), (kwh, g)) in [(&p1, 348), (&p2, 357)].into_iter().zip([r1, r2]) {
        let m = metrics_when_done(addr, rows);
        assert!(close(
            value(&m, "carbontop_facility_energy_joules_total") / 3.6e6,
            kwh,
            1e-9
        ));
        assert!(close(value(&m, "carbontop_co2e_grams_total"), g, 1e-9));
        // Only GET /metrics is served: nothing else, and nothing that changes a cap.
        assert_eq!(get(addr, "/caps").0, 404);
    }
    let (out, _) = aggregate(&[&p1, &p2], "0.5s");
    let line = out.lines().find(|l| l.starts_with("nodes=")).unwrap();
    assert!(line.starts_with("nodes=2/2 "), "{line}");
    assert!(
        close(field(line, "energy_kwh"), r1.0 + r2.0, 1e-9),
        "{line}"
    );
    assert!(close(field(line, "co2e_g"), r1.1 + r2.1, 1e-9), "{line}");
    // Ranked by gCO2e per accuracy point (both gained the same points; the 200 W cap spent
    // less carbon on them), each with its comms part; the job's comms share beside its totals.
    let node = |n: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("node={n} ")))
            .unwrap()
            .to_owned()
    };
    let (n1, n2) = (node("n1"), node("n2"));
    assert!(
        n2.contains(" rank=1 ") && n1.contains(" rank=2 "),
        "{n1}\n{n2}"
    );
    let per = |l: &str| field(l, "co2e_g_per_accuracy_points_gained");
    assert!(per(&n2) < per(&n1), "{n1}\n{n2}");
    for l in [&n1, &n2] {
        let comms = field(l, "comms_co2e_g_per_unit");
        assert!(comms > 0.0 && comms < per(l), "{l}");
    }
    let share = field(line, "comms_share");
    assert!(share > 0.0 && share < 1.0, "{line}");

    // One agent goes away mid-watch: its last values stay in the totals, marked stale.
    let mut watch = bin()
        .args([
            "watch",
            "--headless",
            "--interval",
            "200ms",
            "--duration",
            "2s",
        ])
        .args(["--agent", &p1, "--agent", &p2])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(a2);
    let o = {
        let st = watch.wait().unwrap();
        let mut out = String::new();
        watch
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        watch
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(st.success(), "{err}");
        (out, err)
    };
    let line = o.0.lines().find(|l| l.starts_with("nodes=")).unwrap();
    assert!(line.starts_with("nodes=2/2 "), "{line}");
    assert!(close(field(line, "co2e_g"), r1.1 + r2.1, 1e-9), "{line}");
    assert!(
        o.1.contains("its last values are kept, marked stale"),
        "{}",
        o.1
    );
    assert!(o.1.contains("(stale)"), "{}", o.1);
}

#[test]
fn nothing_over_http_can_change_a_cap_and_loopback_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("caps.json");
    let c = bin()
        .args([
            "serve",
            "--quiet",
            "--interval",
            "100ms",
            "--simulate-gpus",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--sim-state",
        ])
        .arg(&state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (agent, addr, err) = adopt_agent(c);
    // Every method on every path but GET /metrics is refused; the caps never move.
    for (m, p) in [
        ("POST", "/metrics"),
        ("PUT", "/metrics"),
        ("DELETE", "/metrics"),
        ("POST", "/caps"),
        ("PUT", "/caps/0"),
        ("GET", "/caps?gpu=0&watts=100"),
        ("PATCH", "/governor"),
    ] {
        assert_eq!(request(&addr, m, p, "cap=100 W\n").0, 404, "{m} {p}");
    }
    assert_eq!(get(&addr, "/metrics").0, 200);
    let caps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(caps["caps_w"], serde_json::json!([300.0, 300.0]));
    drop(agent);
    let said = err.recv().unwrap();
    assert!(!said.contains("reachable from the network"), "{said}");

    // Without --listen the agent is on loopback only.
    let help = bin().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(help.contains("[default: 127.0.0.1:9184]"), "{help}");
}
