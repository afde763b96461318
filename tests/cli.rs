//! End-to-end tests of the real binary. Loopback-free, deterministic, a few seconds each.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use common::*;
use std::path::Path;

#[test]
fn run_headless_measures_and_accounts_carbon_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = bin()
        .args([
            "run",
            "--headless",
            "--duration",
            "2s",
            "--interval",
            "200ms",
            "--out",
        ])
        .arg(&out)
        .args(["--", "sleep", "10"])
        .output()
        .unwrap();
    let err = stderr(&o);
    // --duration ends the child like `timeout`: it died of SIGTERM, and we exit with its status.
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("CPU power is an estimate"), "{err}");
    assert!(
        err.contains("estimate, TDP") && err.contains("because no RAPL"),
        "{err}"
    );
    assert!(err.contains("carbontop summary"), "{err}");

    let (h, rows) = read_csv(&out.join("samples.csv"));
    assert_eq!(
        &h[..19],
        &carbontop::report::samples::BASE_COLUMNS.map(String::from)[..]
    );
    assert!(rows.len() >= 4, "only {} rows", rows.len());
    let (e, co2, i, cpu, el, tot) = (
        col(&h, "energy_kwh"),
        col(&h, "co2e_g"),
        col(&h, "intensity_g_per_kwh"),
        col(&h, "cpu_power_w"),
        col(&h, "elapsed_s"),
        col(&h, "total_power_w"),
    );
    let mut expect_co2 = 0.0;
    for k in 1..rows.len() {
        let (a, b) = (&rows[k - 1], &rows[k]);
        assert!(num(&b[cpu]) > 0.0, "row {k}: cpu_power_w {}", b[cpu]);
        let de = num(&b[e]) - num(&a[e]);
        assert!(de >= 0.0, "energy decreased at row {k}");
        // Each row's energy is its interval-average power × Δt (PUE 1) ...
        let dt = num(&b[el]) - num(&a[el]);
        assert!(close(de, num(&b[tot]) * dt / 3.6e6, 1e-9), "row {k}");
        // ... and its carbon is that energy × that tick's intensity.
        expect_co2 += de * num(&b[i]);
        assert!(close(num(&b[co2]), expect_co2, 1e-9), "row {k}");
    }
    assert!(num(&rows[rows.len() - 1][co2]) > 0.0);
}

#[test]
fn rapl_fixture_energy_is_exact_across_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    // A counter that wraps at 1 J (1,000,000 µJ), so a wrap implies at most 1 J over a tick:
    // plausible (under 5 kW) for any tick longer than 0.2 ms, however busy the machine. The
    // child moves it 900,000 → 200,000 (wrapped) → 700,000 µJ; whatever ticks see (one of the
    // moves skipped by a late tick included), the total is 0.1 J + 0.2 J + 0.5 J = 0.8 J.
    let (o, (h, rows)) = rapl_run(dir.path(), 1_000_000, 900_000, [200_000, 700_000]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("RAPL (measured)"), "{err}");
    assert!(err.contains("RAPL counter wrapped 1 time"), "{err}");
    let joules = cpu_joules(&h, &rows);
    assert!(
        close(joules, 0.8, 1e-9),
        "CPU energy {joules} J, want 0.8 J"
    );
}

#[test]
fn replay_reproduces_the_recording_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("traces/a40x4-cifar100.csv");
    let o = bin()
        .args(["replay", "--headless", "--speed", "max", "--out"])
        .arg(dir.path())
        .arg(&input)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("PUE 1.2"),
        "the recording's PUE is recovered: {err}"
    );
    assert!(
        err.contains("epoch 29, step 1421, accuracy 55.00%"),
        "{err}"
    );
    let (h0, a) = read_csv(&input);
    let (h1, b) = read_csv(&dir.path().join("samples.csv"));
    // The recording's columns, in its order, then the newer ones it lacks (empty).
    assert_eq!(h0, h1[..h0.len()]);
    assert!(
        h1[h0.len()..]
            .iter()
            .all(|c| c.starts_with("net_") || c == "process_mem_w"),
        "{h1:?}"
    );
    assert_eq!(a.len(), b.len());
    for name in [
        "energy_kwh",
        "co2e_g",
        "total_power_w",
        "gpu_power_w",
        "gpu3_energy_j",
    ] {
        let c = col(&h0, name);
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            if x[c].is_empty() {
                assert!(y[c].is_empty(), "{name} row {k}");
            } else {
                assert!(
                    close(num(&x[c]), num(&y[c]), 1e-9),
                    "{name} row {k}: {} vs {}",
                    x[c],
                    y[c]
                );
            }
        }
    }
}

#[test]
fn run_forwards_output_and_exit_status_and_reads_progress() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("run", dir.path())
        .args([
            "--",
            "sh",
            "-c",
            "echo 'epoch=1 loss=0.9 val_accuracy=0.5'; sleep 0.3; \
             echo 'epoch=2 loss=0.5 val_accuracy=0.75'; echo to-stderr >&2; sleep 0.3; exit 3",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        out,
        "epoch=1 loss=0.9 val_accuracy=0.5\nepoch=2 loss=0.5 val_accuracy=0.75\n"
    );
    assert!(stderr(&o).contains("to-stderr"));
    let (h, rows) = read_csv(&dir.path().join("samples.csv"));
    let last = rows.last().unwrap();
    assert_eq!(last[col(&h, "epoch")], "2");
    assert_eq!(num(&last[col(&h, "accuracy")]), 75.0);
    assert_eq!(last[col(&h, "loss")], "0.5");
}

#[test]
fn missing_command_exits_127() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["run", "--headless", "--out"])
        .arg(dir.path())
        .args(["--", "/nonexistent/train.py"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("cannot start `/nonexistent/train.py`"));
}

#[test]
fn record_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let child = quick("record", dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped by signal 15"), "{err}");
    let (_, rows) = read_csv(&dir.path().join("samples.csv"));
    assert!(rows.len() >= 4, "{} rows", rows.len());
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["record", "--headless", "--interval", "abc"], "--interval"),
        (&["record", "--headless", "--zone", "XX"], "--zone XX"),
        (&["record", "--headless", "--pue", "-1"], "--pue"),
        (
            &["record", "--headless", "--intensity", "lots"],
            "--intensity",
        ),
        (
            &["record", "--headless", "--net-iface", "nope0"],
            "--net-iface nope0",
        ),
        (
            &["replay", "/nonexistent/samples.csv"],
            "/nonexistent/samples.csv",
        ),
        (&["replay", "--speed", "fast", "x.csv"], "--speed"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, what) in cases {
        let o = bin()
            .args(*args)
            .args(if args[0] == "record" {
                vec!["--out"]
            } else {
                vec![]
            })
            .args(if args[0] == "record" {
                vec![dir.path().join(what.replace(' ', "_"))]
            } else {
                vec![]
            })
            .output()
            .unwrap();
        assert_one_line_error(&o, what);
    }
}

#[test]
fn bad_recordings_are_located_to_line_and_column() {
    let o = bin()
        .args(["replay", "--headless", "--speed", "max", "--quiet"])
        .arg(fixture("bad/bad-cell.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("bad-cell.csv: line 5, column cpu_power_w: \"abc\" is not a number"),
        "{err}"
    );
    // The rows before the bad one were still accounted.
    assert!(err.contains("(3 samples)"), "{err}");

    // A last row cut off mid-write (the recorder killed, the disk full): the rows before it are
    // replayed, the cut one left out and said so.
    let o = bin()
        .args(["replay", "--headless", "--speed", "max"])
        .arg(fixture("bad/truncated.csv"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("(3 samples)"), "{err}");
    assert!(
        err.contains("the last row (line 5) was cut off mid-write and is left out"),
        "{err}"
    );

    for (file, what) in [
        ("bad/wrong-header.csv", "not a carbontop samples.csv"),
        ("bad/empty.csv", "empty file"),
    ] {
        let o = bin()
            .args(["replay", "--headless", "--speed", "max"])
            .arg(fixture(file))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{file}");
        let err = stderr(&o);
        assert!(err.lines().any(|l| l.contains(what)), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn config_errors_name_file_line_and_key() {
    let o = bin()
        .args(["record", "--headless", "--config"])
        .arg(fixture("config/unknown-key.toml"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "unknown-key.toml, line 4");
    assert!(stderr(&o).contains("intervall"));
    let o = bin()
        .args(["record", "--headless", "--config"])
        .arg(fixture("config/bad-pue.toml"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "key `pue`");
}

#[test]
fn existing_recording_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("samples.csv"), "precious\n").unwrap();
    let o = bin()
        .args(["record", "--headless", "--duration", "1s", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_one_line_error(&o, "already exists");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("samples.csv")).unwrap(),
        "precious\n"
    );
}

#[test]
fn report_json_and_emissions_match_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("traces/a40x4-cifar100.csv");
    let em = dir.path().join("emissions.csv");
    let v = json_of(
        bin()
            .args(["report", "--json", "--zone", "US", "--emissions"])
            .arg(&em)
            .arg(&input),
    );
    let run = &v["runs"][0];
    let (h, rows) = read_csv(&input);
    let last = rows.last().unwrap();
    let want_kwh = num(&last[col(&h, "energy_kwh")]);
    let want_g = num(&last[col(&h, "co2e_g")]);
    assert!(close(run["energy_kwh"].as_f64().unwrap(), want_kwh, 1e-9));
    assert!(close(run["co2e_g"].as_f64().unwrap(), want_g, 1e-9));
    assert_eq!(run["pue"].as_f64(), Some(1.2));
    assert_eq!(run["samples"].as_u64(), Some(rows.len() as u64));
    assert_eq!(run["progress"]["accuracy_pct"].as_f64(), Some(55.0));

    let (eh, erows) = read_csv(&em);
    assert_eq!(
        eh,
        carbontop::report::emissions::HEADER
            .map(String::from)
            .to_vec()
    );
    let r = &erows[0];
    assert!(close(num(&r[col(&eh, "emissions")]), want_g / 1000.0, 1e-9));
    assert!(close(num(&r[col(&eh, "energy_consumed")]), want_kwh, 1e-9));
    let parts: f64 = ["cpu_energy", "gpu_energy", "ram_energy"]
        .iter()
        .map(|c| num(&r[col(&eh, c)]))
        .sum();
    assert!(
        parts < want_kwh && parts > 0.98 * want_kwh,
        "network has no column of its own"
    );
    assert_eq!(r[col(&eh, "country_iso_code")], "USA");
    assert_eq!(r[col(&eh, "gpu_count")], "4");
    assert_eq!(r[col(&eh, "pue")], "1.2");
    let dur = num(&r[col(&eh, "duration")]);
    assert!(close(dur, num(&last[col(&h, "elapsed_s")]), 1e-12));
}

#[test]
fn run_writes_a_codecarbon_emissions_row() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("run", dir.path())
        .args(["--zone", "FR", "--", "sleep", "0.5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h, rows) = read_csv(&dir.path().join("samples.csv"));
    let (eh, erows) = read_csv(&dir.path().join("emissions.csv"));
    assert_eq!(erows.len(), 1);
    let r = &erows[0];
    let last = rows.last().unwrap();
    assert!(close(
        num(&r[col(&eh, "emissions")]) * 1000.0,
        num(&last[col(&h, "co2e_g")]),
        1e-9
    ));
    assert_eq!(r[col(&eh, "country_name")], "France");
    assert_eq!(r[col(&eh, "tracking_mode")], "machine");
}

#[test]
fn theme_errors_are_one_line_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("record", dir.path())
        .args(["--duration", "1s", "--theme", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--theme nope: no such theme (known: default, light, colorblind"),
        "{err}"
    );
    assert!(!dir.path().join("samples.csv").exists(), "nothing started");

    for (file, want) in [
        ("unknown-key.toml", "line 5: unknown field `backgorund`"),
        (
            "bad-colour.toml",
            "line 3: key `colors.cpu`: `#12345` is not a colour",
        ),
    ] {
        let path = fixture("themes").join(file);
        let o = bin()
            .args(["replay", "--headless", "--speed", "max", "--theme"])
            .arg(&path)
            .arg(fixture("traces/a40x4-cifar100.csv"))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("theme {}", path.display())), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn without_a_terminal_the_screen_falls_back_to_headless() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["run", "--interval", "100ms", "--quiet", "--out"])
        .arg(dir.path())
        .args(["--", "sh", "-c", "echo accuracy=0.42"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("stdout is not a terminal: running headless"),
        "{err}"
    );
    // Headless forwards the command's output unchanged.
    assert_eq!(String::from_utf8_lossy(&o.stdout), "accuracy=0.42\n");
    assert!(err.contains("accuracy 42.00%"), "{err}");
}

#[test]
fn watch_records_nothing_without_out() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args([
            "watch",
            "--headless",
            "--quiet",
            "--interval",
            "100ms",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("carbontop summary: watch"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no files written"
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "not a PNG: {}",
        path.display()
    );
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn report_png_from_the_fixture_and_one_per_recording() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.png");
    let o = bin()
        .args(["report", "--png"])
        .arg(&out)
        .arg(fixture("traces/a40x4-cifar100.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(png_size(&out), (1600, 1000));
    // A picture, not a blank: the file holds far more than an empty 1600×1000 image compresses to.
    assert!(std::fs::metadata(&out).unwrap().len() > 40_000);

    let o = bin()
        .args(["report", "--theme", "default", "--png"])
        .arg(&out)
        .arg(fixture("traces/a40x4-cifar100.csv"))
        .arg(fixture("traces/a40x4-cifar100-cap200.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(png_size(&dir.path().join("r-1.png")), (1600, 1000));
    assert_eq!(png_size(&dir.path().join("r-2.png")), (1600, 1000));
    // Several recordings: also one image comparing them.
    assert_eq!(png_size(&dir.path().join("r-compare.png")), (1600, 1000));
    assert!(
        std::fs::metadata(dir.path().join("r-compare.png"))
            .unwrap()
            .len()
            > 40_000
    );

    let o = bin()
        .args(["report", "--png", "/nonexistent-dir/x.png"])
        .arg(fixture("traces/a40x4-cifar100.csv"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--png /nonexistent-dir/x.png: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn report_compares_runs_side_by_side() {
    let files = [
        fixture("traces/a40x4-cifar100.csv"),
        fixture("traces/a40x4-cifar100-cap200.csv"),
    ];
    let o = bin().arg("report").args(&files).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let table = &text[text.find("carbontop comparison").expect("a comparison")..];
    let row = |k: &str| {
        table
            .lines()
            .skip(1)
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or_else(|| panic!("no {k} row in {table}"))
            .split_whitespace()
            .skip(k.split_whitespace().count())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("run"), "a40x4-cifar100.csv a40x4-cifar100-cap200.csv");
    // The generator's own totals (scripts/gen_fixture_trace.py): 0.107422 and 0.096738 kWh,
    // 38.943 and 35.130 gCO2e; the capped run costs 0.90× the first.
    assert_eq!(row("energy"), "107.42 Wh 96.74 Wh");
    assert_eq!(row("carbon"), "38.94 g CO2e 35.13 g CO2e");
    assert_eq!(row("vs first"), "1.00× 0.90×");
    // Average cost per point: C_total / (55 − 5) points.
    let v = json_of(bin().args(["report", "--json"]).args(&files));
    let g0 = v["runs"][0]["co2e_g"].as_f64().unwrap();
    assert_eq!(
        row("per point").split(' ').next().unwrap(),
        format!("{:.2}", g0 / 50.0 * 1000.0)
    );
}

#[test]
fn an_empty_run_is_reported_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let header = std::fs::read_to_string(fixture("traces/a40x4-cifar100.csv")).unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, format!("{}\n", header.lines().next().unwrap())).unwrap();
    let png = dir.path().join("e.png");
    let o = bin()
        .args(["report", "--png"])
        .arg(&png)
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("empty run: no samples were recorded"), "{out}");
    assert!(!out.contains("NaN"), "{out}");
    assert_eq!(png_size(&png), (1600, 1000));
}

#[test]
fn estimate_prints_figures_recomputable_from_the_cited_constants() {
    let v = json_of(bin().args([
        "estimate", "--gpu", "a100", "--count", "8", "--hours", "24", "--zone", "FR", "--json",
    ]));
    let f = |k: &str| v[k].as_f64().unwrap();
    // 8 × 400 W (A100 SXM datasheet) × 24 h = 76.8 kWh; × 56.039 g/kWh (France, OWID 2023).
    assert!(close(f("energy_kwh"), 76.8, 1e-12));
    assert!(close(f("operational_co2e_g"), 76.8 * 56.039, 1e-12));
    // BLOOM: (8 × 150 + 2,500) kg over 6 years, 24 h of it.
    let embodied = 3700e3 * 24.0 / (6.0 * 365.25 * 24.0);
    assert!(close(f("embodied_co2e_g"), embodied, 1e-12));
    // The published range for an A100: BLOOM's 150 kg to Chien et al.'s 318 kg per GPU.
    assert!(close(f("embodied_co2e_g_low"), embodied, 1e-12));
    let high = (8.0 * 318.0 + 2500.0) * 1e3 * 24.0 / (6.0 * 365.25 * 24.0);
    assert!(close(f("embodied_co2e_g_high"), high, 1e-12));
    let total = 76.8 * 56.039 + embodied;
    assert!(close(f("total_co2e_g"), total, 1e-12));
    assert!(close(
        f("tree_days"),
        total / 1000.0 / (11.0 / 365.0),
        1e-12
    ));
    assert!(close(f("car_km"), total / 175.0, 1e-12));
    // The text form names the constants.
    let o = bin()
        .args([
            "estimate", "--gpu", "a100", "--count", "8", "--hours", "24", "--zone", "FR",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("76.800 kWh") && text.contains("BLOOM"),
        "{text}"
    );
    for (args, what) in [
        (vec!["--gpu", "x100", "--hours", "1"], "--gpu x100"),
        (vec!["--gpu", "a100", "--hours", "0"], "--hours"),
        (
            vec!["--gpu", "a100", "--hours", "1", "--zone", "XX"],
            "--zone XX",
        ),
        (
            vec!["--gpu", "a100", "--hours", "1", "--utilisation", "2"],
            "--utilisation",
        ),
    ] {
        let o = bin().arg("estimate").args(&args).output().unwrap();
        assert_one_line_error(&o, what);
    }
}

#[test]
fn each_log_format_reaches_samples_csv_as_its_accuracy_series() {
    // The run's output paced line by line, as a training run prints it; every format in
    // fixtures/logs (expectations in its expected.csv) through the real binary, in parallel.
    // Nothing here depends on how many ticks fall between two lines.
    let table = std::fs::read_to_string(fixture("logs/expected.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = table
        .lines()
        .skip(1)
        .map(|row| {
            let f: Vec<String> = row.split(',').map(str::to_owned).collect();
            let out = dir.path().join(&f[0]);
            let script = format!(
                "while IFS= read -r l; do printf '%s\\n' \"$l\"; sleep 0.3; done < '{}'",
                fixture(&format!("logs/{}", f[0])).display()
            );
            let child = quick("run", &out)
                .args(["--", "sh", "-c", &script])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (f, out, child)
        })
        .collect();
    for (f, out, mut child) in runs {
        assert!(child.wait().unwrap().success(), "{}", f[0]);
        let (h, rows) = read_csv(&out.join("samples.csv"));
        let acc = col(&h, "accuracy");
        let mut series: Vec<f64> = Vec::new();
        for r in &rows {
            if let Ok(a) = r[acc].parse::<f64>()
                && series.last() != Some(&a)
            {
                series.push(a);
            }
        }
        // Each row shows the latest accuracy read by its tick: two lines inside one tick (a busy
        // machine) show only the second. So the rows' series is the expected one in order, with
        // none invented and the last one reached, whatever the timing; the per-line values
        // themselves are tests/progress_frameworks.rs's, in-process.
        let want: Vec<f64> = f[1].split(' ').map(num).collect();
        let mut rest = want.iter();
        for a in &series {
            assert!(
                rest.any(|b| close(*a, *b, 1e-12)),
                "{}: {series:?} is not in the order of {want:?}",
                f[0]
            );
        }
        assert_eq!(series.last(), want.last(), "{}: {series:?}", f[0]);
        if !f[2].is_empty() {
            let last = rows.last().unwrap()[col(&h, "epoch")].clone();
            assert_eq!(num(&last), num(&f[2]), "{}", f[0]);
        }
    }
}

#[test]
fn embodied_carbon_is_amortised_per_row_and_can_be_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("record", &dir.path().join("a"))
        .args(["--no-gpu", "--duration", "1s", "--embodied-share", "0.25"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h, rows) = read_csv(&dir.path().join("a/samples.csv"));
    let (e, t) = (col(&h, "embodied_co2e_g"), col(&h, "elapsed_s"));
    // No GPU: a quarter of a server, 2,500 kg (BLOOM) over 6 years, by each row's elapsed time.
    for r in &rows {
        let want = 0.25 * 2500e3 * num(&r[t]) / (6.0 * 365.25 * 86_400.0);
        assert!(close(num(&r[e]), want, 1e-12), "{} vs {want}", r[e]);
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/run.json")).unwrap())
            .unwrap();
    assert_eq!(run["embodied"]["te_kg"], 625.0, "{run}");
    assert_eq!(run["embodied"]["share"], 0.25, "{run}");
    // The host's threads, as a user knows them for a VM: this machine's threads over them.
    let o = quick("record", &dir.path().join("c"))
        .args(["--no-gpu", "--duration", "1s", "--host-threads", "1000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("c/run.json")).unwrap())
            .unwrap();
    let share = run["embodied"]["share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1e-3, "{run}");
    assert!(
        run["embodied"]["basis"]
            .as_str()
            .unwrap()
            .ends_with("threads (--host-threads)"),
        "{run}"
    );
    let o = quick("record", &dir.path().join("b"))
        .args(["--no-gpu", "--duration", "1s", "--embodied-kg", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h, rows) = read_csv(&dir.path().join("b/samples.csv"));
    assert!(
        rows.iter()
            .all(|r| r[col(&h, "embodied_co2e_g")].is_empty())
    );
}

#[test]
fn user_metrics_become_columns_and_survive_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = quick("run", &out)
        .args([
            "--metric",
            "f1=F1 score: ([0-9.]+)",
            "--metric",
            "accuracy=top-1 ([0-9.]+)%",
            "--",
        ])
        .args([
            "sh",
            "-c",
            "echo 'F1 score: 0.5 top-1 40%'; sleep 0.4; echo 'F1 score: 0.7 top-1 45%'; sleep 0.4",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("samples.csv"));
    assert_eq!(h.last().map(String::as_str), Some("metric_f1"));
    let (f1, acc) = (col(&h, "metric_f1"), col(&h, "accuracy"));
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[f1].clone(), r[acc].clone()))
        .collect();
    assert!(seen.contains(&("0.5".into(), "40".into())), "{seen:?}");
    assert_eq!(seen.last().unwrap(), &("0.7".to_owned(), "45".to_owned()));
    // A replay writes the same columns back.
    let again = dir.path().join("again");
    let o = bin()
        .args(["replay", "--headless", "--quiet", "--speed", "max", "--out"])
        .arg(&again)
        .arg(out.join("samples.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h2, rows2) = read_csv(&again.join("samples.csv"));
    assert_eq!(h2, h);
    assert_eq!(rows2.last().unwrap()[f1], "0.7");
    let o = quick("run", &dir.path().join("bad"))
        .args(["--metric", "f1=([", "--", "true"])
        .output()
        .unwrap();
    assert_one_line_error(&o, "--metric \"f1=([\"");
}

#[test]
fn a_metrics_file_written_elsewhere_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.csv");
    let out = dir.path().join("r");
    let child = quick("record", &out)
        .args(["--duration", "3s", "--metrics-file"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run elsewhere starts writing a moment later, a header then a row per epoch.
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(&file, "epoch,val_accuracy,loss\n1,0.61,0.9\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    std::fs::write(&file, "epoch,val_accuracy,loss\n1,0.61,0.9\n2,0.68,0.7\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("samples.csv"));
    let (acc, epoch) = (col(&h, "accuracy"), col(&h, "epoch"));
    assert!(rows.iter().any(|r| r[acc] == "61" && r[epoch] == "1"));
    let last = rows.last().unwrap();
    assert_eq!((last[acc].as_str(), last[epoch].as_str()), ("68", "2"));
}

#[test]
fn the_commands_share_of_a_shared_machine_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("run", &dir.path().join("r"))
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("the command's processes: "))
        .unwrap_or_else(|| panic!("no process share in {err}"));
    let pct: f64 = line
        .split("processes: ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .map(num)
        .unwrap();
    // A busy shell loop: a real part of the busy time, never more than all of it.
    assert!(pct > 0.0 && pct <= 100.0, "{line}");
    // samples.csv has the command's figures beside the machine's: its CPU power never above
    // the machine's; its GPU power unknown (no GPU here), an empty cell, never 0.
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    let (p, m, g) = (
        col(&h, "process_cpu_w"),
        col(&h, "cpu_power_w"),
        col(&h, "process_gpu_w"),
    );
    let known: Vec<_> = rows.iter().filter(|r| !r[p].is_empty()).collect();
    assert!(!known.is_empty(), "no process_cpu_w in {rows:?}");
    for r in &known {
        assert!(
            num(&r[p]) >= 0.0 && num(&r[p]) <= num(&r[m]) + 1e-9,
            "{r:?}"
        );
    }
    assert!(rows.iter().all(|r| r[g].is_empty()));
}

#[test]
fn duration_signals_the_whole_job_not_only_its_wrapper() {
    // A bash wrapper around a Python child, as a launcher script is: --duration must stop the
    // Python process too (it used to go on training, unmeasured, with parent 1).
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = format!(
        "python3 -c 'import os,time; open(\"{p}.tmp\",\"w\").write(str(os.getpid())); \
         os.rename(\"{p}.tmp\",\"{p}\"); time.sleep(600)'; echo wrapper-done",
        p = pidfile.display()
    );
    let o = quick("run", &dir.path().join("r"))
        .args(["--duration", "4s", "--", "bash", "-c", &script])
        .output()
        .unwrap();
    let err = stderr(&o);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap_or_else(|e| panic!("the Python child never started ({e}): {err}"))
        .trim()
        .parse()
        .unwrap();
    // Gone (or a zombie no one has reaped yet), within a generous bound.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while alive() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !alive(),
        "the wrapper's Python child {pid} outlived the run: {err}"
    );
}
