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

/// A sample's value, and the series of `metric` (their labels).
fn sample_value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

fn series<'a>(
    m: &'a prometheus_parse::Scrape,
    metric: &'a str,
) -> impl Iterator<Item = &'a prometheus_parse::Sample> {
    m.samples.iter().filter(move |s| s.metric == metric)
}

/// A replaying agent's answer (issue 21): the progress split into a series each, embodied a
/// counter, build and GPU info series saying the replay's speed and the GPUs' models, the old
/// names still there for one release, their help saying what replaces them.
fn names_by_prometheus_conventions(m: &prometheus_parse::Scrape, file: &str) {
    let old = |metric: &str| {
        series(m, "carbontop_progress")
            .find(|s| s.labels.get("metric") == Some(metric))
            .map(sample_value)
    };
    let new = |name: &str| series(m, name).next().map(sample_value);
    // A counter never falls: the highest step the run reported (the recording's step also
    // counts evaluation batches, lower than the training step before them).
    let (h, rows) = read_csv(&fixture(file));
    let k = col(&h, "step");
    let top = rows
        .iter()
        .filter(|r| !r[k].is_empty())
        .map(|r| num(&r[k]))
        .fold(0.0, f64::max);
    assert!(old("step").unwrap() < top);
    assert_eq!(new("carbontop_training_steps_total"), Some(top));
    assert_eq!(new("carbontop_training_epoch"), old("epoch"));
    assert_eq!(new("carbontop_loss"), old("loss"));
    let acc = new("carbontop_accuracy_ratio").unwrap();
    assert!(close(acc * 100.0, old("accuracy_percent").unwrap(), 1e-12));
    assert!(acc > 0.0 && acc <= 1.0, "{acc}");
    assert_eq!(
        new("carbontop_embodied_co2e_grams_total"),
        new("carbontop_embodied_co2e_grams")
    );
    for name in ["carbontop_progress", "carbontop_embodied_co2e_grams"] {
        assert!(m.docs[name].starts_with("DEPRECATED: use "), "{name}");
    }
    let info: Vec<_> = series(m, "carbontop_build_info").collect();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels.get("source"), Some("replay"));
    assert_eq!(info[0].labels.get("replay_speed"), Some("max"));
    assert_eq!(series(m, "carbontop_gpu_info").count(), 4);
    // Every series of one agent process carries the same agent_start.
    let starts: std::collections::BTreeSet<_> = m
        .samples
        .iter()
        .map(|s| s.labels.get("agent_start"))
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts.iter().all(Option::is_some), "{starts:?}");
}

/// The raw answer to `HEAD /metrics`, headers and whatever follows them.
fn head_metrics(addr: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "HEAD /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
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
    let files = [
        "traces/a40x4-cifar100.csv",
        "traces/a40x4-cifar100-cap200.csv",
    ];
    for (((addr, rows), (kwh, g)), file) in [(&p1, 348), (&p2, 357)]
        .into_iter()
        .zip([r1, r2])
        .zip(files)
    {
        let m = metrics_when_done(addr, rows);
        assert!(close(
            value(&m, "carbontop_facility_energy_joules_total") / 3.6e6,
            kwh,
            1e-9
        ));
        assert!(close(value(&m, "carbontop_co2e_grams_total"), g, 1e-9));
        names_by_prometheus_conventions(&m, file);
        // Only GET and HEAD /metrics are served: nothing else, and nothing that changes a cap.
        assert_eq!(get(addr, "/caps").0, 404);
        let head = head_metrics(addr);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.ends_with("\r\n\r\n"),
            "a body after HEAD's headers: {head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("content-length: "),
            "{head}"
        );
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
    // Every method on every path but GET and HEAD /metrics is refused; the caps never move.
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
