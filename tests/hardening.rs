//! Issue 20, "Hardening II": every reproduction a test. Inputs are scaled to a few times each
//! bound (100 MB, not gigabytes), and what a test decides never rests on how fast the machine
//! is: memory is read as the kernel's peak (VmHWM), and the one wait (the agent's header
//! timeout) has a generous deadline.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use carbontop::cli::Cli;
use clap::Parser as _;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// 100 MB: a few times every bound below, small enough for CI.
const BIG: u64 = 100 << 20;

fn assert_bounded(what: &str, peak_kib: u64) {
    assert!(
        peak_kib > 0 && peak_kib < PEAK_BOUND_KIB,
        "{what}: peak {peak_kib} KiB, bound {PEAK_BOUND_KIB} KiB"
    );
}

// ---- No input grows memory without limit ------------------------------------------------

#[test]
fn report_refuses_a_recording_without_newlines_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("samples.csv");
    endless_line(&f, BIG);
    let (o, peak) = run_peak(bin().arg("report").arg(&f));
    assert_one_line_error(&o, "longer than 1024 KiB");
    assert_bounded("report of a 100 MB line", peak);
    if Path::new("/dev/zero").exists() {
        let (o, peak) = run_peak(bin().args(["report", "/dev/zero"]));
        assert_one_line_error(&o, "/dev/zero");
        assert_bounded("report /dev/zero", peak);
    }
}

#[test]
fn emissions_csv_is_checked_on_a_bounded_first_line_and_dev_full_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let em = dir.path().join("emissions.csv");
    endless_line(&em, BIG);
    let rec = fixture("traces/a40x4-cifar100.csv");
    let (o, peak) = run_peak(bin().arg("report").arg(&rec).arg("--emissions").arg(&em));
    assert_one_line_error(&o, "another header");
    assert_bounded("--emissions on a 100 MB line", peak);
    assert_eq!(std::fs::metadata(&em).unwrap().len(), BIG, "left as it was");
    if Path::new("/dev/full").exists() {
        let (o, peak) = run_peak(
            bin()
                .arg("report")
                .arg(&rec)
                .args(["--emissions", "/dev/full"]),
        );
        assert_one_line_error(&o, "--emissions /dev/full");
        assert_bounded("--emissions /dev/full", peak);
    }
}

#[test]
fn a_metrics_file_without_newlines_is_followed_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("metrics.jsonl");
    endless_line(&m, BIG);
    let out = dir.path().join("out");
    let (o, peak) = run_peak(
        quick("record", &out)
            .args(["--duration", "2s", "--metrics-file"])
            .arg(&m),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_bounded("--metrics-file with a 100 MB line", peak);
}

#[test]
fn a_metrics_file_line_past_the_bound_is_skipped_and_the_next_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let long = format!(
        "{{\"epoch\": 1, \"note\": \"{}\"}}\n",
        "x".repeat(200 << 10)
    );
    std::fs::write(&path, long + "{\"epoch\": 2, \"val_accuracy\": 0.5}\n").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    carbontop::source::progress::follow_file(
        path,
        carbontop::source::progress::Parser::default(),
        move |p| tx.send(p).is_ok(),
    )
    .unwrap();
    let p = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((p.epoch, p.accuracy), (Some(2.0), Some(50.0)));
}

/// A fake agent that answers every request with `head` and then `BIG` bytes of body.
fn flooding_agent(head: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                let _ = s.write_all(head.as_bytes());
                let chunk = vec![b'#'; 64 << 10];
                let mut sent = 0;
                while sent < BIG && s.write_all(&chunk).is_ok() {
                    sent += chunk.len() as u64;
                }
            });
        }
    });
    addr
}

#[test]
fn watch_agent_refuses_a_body_past_1_mib_in_bounded_memory() {
    let sized = flooding_agent("HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
    let chunked_on = flooding_agent("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    let (o, peak) = run_peak(bin().args([
        "watch",
        "--headless",
        "--interval",
        "300ms",
        "--duration",
        "1s",
        "--agent",
        &sized,
        "--agent",
        &chunked_on,
    ]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for a in [&sized, &chunked_on] {
        assert!(
            err.contains(&format!("agent {a}: answer larger than 1 MiB: not read")),
            "{a}: {err}"
        );
    }
    assert_bounded("watch --agent with 100 MB answers", peak);
    let last = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        last.starts_with("nodes=0/2 energy_kwh=0 co2e_g=0"),
        "{last}"
    );
}

#[test]
fn serve_bounds_a_header_without_crlf_and_idle_sockets() {
    let (a, addr) = agent("traces/a40x4-cifar100.csv", "n1");
    let pid = a.id();
    // 100 MB of a request line that never ends: refused at the header bound (431) and closed.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0u64;
    let _ = s.write_all(b"GET /");
    while sent < BIG && s.write_all(&chunk).is_ok() {
        sent += chunk.len() as u64;
    }
    assert!(sent < BIG, "the agent read all {sent} bytes of one header");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // 500 idle sockets: no thread each; those past the bound are closed at once.
    let idle: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(idle.len() > 100, "{} connected", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    let threads = proc_status(pid, "Threads").unwrap();
    assert!(threads <= 8, "{threads} threads for {} sockets", idle.len());
    assert_bounded(
        "serve under a 100 MB header and 500 sockets",
        proc_status(pid, "VmHWM").unwrap(),
    );
    // The idle ones are closed by the header timeout (5 s): then /metrics answers again.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = try_get(&addr) {
            assert_eq!(status, 200);
            break;
        }
        assert!(Instant::now() < end, "the agent never answered again");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(idle);
}

/// `GET /metrics`'s status, or None when the agent refused the connection (busy, or reset).
fn try_get(addr: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status: u16 = out.split_whitespace().nth(1)?.parse().ok()?;
    (status != 503).then_some(status)
}

// ---- No inf or NaN anywhere -------------------------------------------------------------

/// Each configurable figure's flag, given a value no machine has: a one-line error naming it.
#[test]
fn every_flag_with_a_physical_figure_refuses_values_beyond_it() {
    let cases: &[(&[&str], &str)] = &[
        (&["record", "--cpu-tdp"], "--cpu-tdp"),
        (&["record", "--pue"], "--pue"),
        (&["record", "--embodied-kg"], "--embodied-kg"),
        (&["record", "--net-kwh-per-gb"], "--net-kwh-per-gb"),
        (&["record", "--intensity"], "--intensity"),
        (&["record", "--cap-step"], "--cap-step"),
        (&["record", "--epochs"], "--epochs"),
        (&["record", "--duration"], "--duration"),
        (&["estimate", "--gpu", "a100", "--hours"], "--hours"),
        (
            &["estimate", "--gpu", "a100", "--hours", "1", "--memory-gib"],
            "--memory-gib",
        ),
        (&["replay", "x.csv", "--speed"], "--speed"),
    ];
    for (args, flag) in cases {
        let tiny = (*flag == "--speed").then_some("1e-300");
        for v in ["1e308", "inf", "NaN"].into_iter().chain(tiny) {
            let mut argv = vec!["carbontop"];
            argv.extend_from_slice(args);
            argv.push(v);
            let e = Cli::try_parse_from(&argv).map(|_| ()).unwrap_err();
            let text = e.render().to_string();
            let first = text.lines().next().unwrap();
            assert!(first.contains(flag), "{argv:?}: {first}");
            assert!(!first.contains("000000000000"), "{argv:?}: {first}");
        }
    }
}

#[test]
fn every_config_key_with_a_physical_figure_refuses_values_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    for key in [
        "pue",
        "cpu_tdp",
        "memory_w_per_gib",
        "net_kwh_per_gb",
        "embodied_kg",
        "intensity",
        "cap_step",
        "epochs",
    ] {
        for v in ["1e308", "inf", "nan", "-1"] {
            std::fs::write(&f, format!("{key} = {v}\n")).unwrap();
            let opts = carbontop::cli::MeasureOpts {
                config: Some(f.clone()),
                ..Default::default()
            };
            let e = carbontop::config::resolve(&opts).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("config {}: key `{key}`: ", f.display())),
                "{key} = {v}: {e}"
            );
            // Issue 20: `embodied_kg = inf` said "must not be negative".
            assert!(!e.contains("negative"), "{key} = {v}: {e}");
            assert!(!e.contains("000000000000") && !e.contains('\n'), "{e}");
        }
    }
}

/// A copy of the fixture with row `line`'s energy_kwh set to `kwh`.
fn with_energy(dir: &Path, line: usize, kwh: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("traces/a40x4-cifar100.csv")).unwrap();
    let col = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "energy_kwh")
        .unwrap();
    let out: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                let mut cells: Vec<&str> = l.split(',').collect();
                cells[col] = kwh;
                cells.join(",") + "\n"
            } else {
                l.to_owned() + "\n"
            }
        })
        .collect();
    let p = dir.join(format!("energy-{line}-{kwh}.csv"));
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn an_inferred_pue_beyond_any_facility_is_a_located_error() {
    use carbontop::report::account::account_file;
    let dir = tempfile::tempdir().unwrap();
    // Issue 20: energy_kwh = 1e308 gave "energy inf kWh … PUE inf"; a large jump in the first
    // interval inferred a PUE of 8,035,873.
    for kwh in ["1e308", "1200"] {
        let f = with_energy(dir.path(), 3, kwh);
        let e = account_file(&f, None, false).unwrap_err().to_string();
        assert!(
            e.contains("line 3, column energy_kwh: rises by") && e.contains("a PUE is from 1 to 3"),
            "{e}"
        );
        // With the PUE given, nothing is inferred and every figure is finite.
        let r = account_file(&f, Some(1.2), false).unwrap();
        let s = &r.snapshot;
        assert!(
            s.energy_kwh.0.is_finite() && s.co2e_g.0.is_finite(),
            "{s:?}"
        );
        let (o, _) = run_peak(bin().arg("report").arg(&f));
        assert_one_line_error(&o, "energy_kwh");
    }
}

// ---- No panic ---------------------------------------------------------------------------

#[test]
fn a_speed_beyond_the_bound_is_a_one_line_error_not_a_panic() {
    let rec = fixture("traces/a40x4-cifar100.csv");
    let o = bin()
        .args(["replay", "--headless", "--speed", "1e-30"])
        .arg(&rec)
        .output()
        .unwrap();
    assert_one_line_error(&o, "--speed");
    let o = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "1e-300",
            "--replay",
        ])
        .arg(&rec)
        .output()
        .unwrap();
    assert_one_line_error(&o, "--speed");
}

// ---- Smaller ----------------------------------------------------------------------------

#[test]
fn a_command_that_cannot_start_leaves_nothing_that_blocks_the_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for _ in 0..2 {
        let o = bin()
            .args(["run", "--headless", "--quiet", "--out"])
            .arg(&out)
            .args(["--", "/nonexistent/train.py"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
        assert!(stderr(&o).contains("cannot start"), "{}", stderr(&o));
        assert!(!out.exists(), "left behind: {:?}", std::fs::read_dir(&out));
    }
    // A directory the user made stays, empty.
    std::fs::create_dir(&out).unwrap();
    let o = bin()
        .args(["run", "--headless", "--quiet", "--out"])
        .arg(&out)
        .args(["--", "/nonexistent/train.py"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn exports_never_share_a_file() {
    use carbontop::app::screen::export_paths;
    let dir = tempfile::tempdir().unwrap();
    // Two `e` in one second, then another run's export at the same elapsed time.
    let a = export_paths(dir.path(), 65.2).unwrap();
    let b = export_paths(dir.path(), 65.4).unwrap();
    let c = export_paths(dir.path(), 65.0).unwrap();
    assert_eq!(a.1, dir.path().join("report-0-01-05.csv"));
    assert_eq!(b.1, dir.path().join("report-0-01-05-2.csv"));
    assert_eq!(c.0, dir.path().join("report-0-01-05-3.png"));
    assert!(a != b && b != c && a != c);
}

#[test]
fn a_metric_is_one_column_and_the_summary_shows_it() {
    use carbontop::source::progress::Parser;
    let e = Parser::new(&["f1=f1 ([0-9.]+)".into(), "F1=F1: ([0-9.]+)".into()]).unwrap_err();
    assert!(e.contains("f1 is already given"), "{e}");
    let p = Parser::new(&["f1=f1 ([0-9.]+)".into()]).unwrap();
    assert_eq!(p.metric_names(), ["f1"]);
    // A run that reports only its own metric has a progress line that says it.
    let got = carbontop::report::summary::describe_progress(&p.parse("f1 0.83"));
    assert_eq!(got.as_deref(), Some("f1 0.83"));
    let none = carbontop::report::summary::describe_progress(&Default::default());
    assert_eq!(none, None);
}

#[test]
fn an_agent_that_never_answered_shows_no_figures_and_the_totals_no_minus_zero() {
    use carbontop::serve::agents::Node;
    let n = Node {
        agent: "10.0.0.9:9184".into(),
        node: "10.0.0.9:9184".into(),
        fault: Some("agent 10.0.0.9:9184: no answer within 2 s".into()),
        ..Default::default()
    };
    let line = carbontop::app::aggregate::node_line(&n, None);
    assert_eq!(
        line,
        "10.0.0.9:9184 [10.0.0.9:9184]  no answer yet: agent 10.0.0.9:9184: no answer within 2 s"
    );
    let (kwh, g) = carbontop::engine::job::totals(&[]);
    assert_eq!(
        format!("energy_kwh={kwh} co2e_g={g}"),
        "energy_kwh=0 co2e_g=0"
    );
}

#[test]
fn agent_errors_say_what_and_http_urls_are_agents() {
    let o = bin()
        .args([
            "watch",
            "--headless",
            "--duration",
            "1s",
            "--agent",
            "ftp://n1:21",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&o, "--agent ftp://n1:21");
    assert!(!stderr(&o).contains("builder error"), "{}", stderr(&o));
    let (_a, addr) = agent("traces/a40x4-cifar100.csv", "n1");
    metrics_when_done(&addr, 348);
    let (out, err) = aggregate(&[&format!("http://{addr}")], "0.5s");
    assert!(out.starts_with("nodes=1/1 "), "{out}{err}");
    assert!(!err.contains("builder error"), "{err}");
}

#[test]
fn durations_and_figures_out_of_range_say_why() {
    use carbontop::cli::parse_duration;
    // Issue 20: a duration too long said "must be positive".
    let e = parse_duration("100000000h").unwrap_err();
    assert!(
        e.contains("at most 1000000000 s") && !e.contains("positive"),
        "{e}"
    );
    assert!(parse_duration("0s").unwrap_err().contains("positive"));
}

#[test]
fn a_png_to_a_directory_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .arg("report")
        .arg(fixture("traces/a40x4-cifar100.csv"))
        .arg("--png")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_one_line_error(&o, "is a directory");
    assert!(
        !stderr(&o).contains('{') && !stderr(&o).contains("Error("),
        "{}",
        stderr(&o)
    );
}
