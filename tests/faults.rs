//! What real machines do to a monitor that runs for days (DESIGN.md §9, issue "Hardening"), done
//! to the real binary: the command crashes; carbontop gets SIGTERM, SIGHUP or SIGINT, or is
//! killed with SIGKILL; the disk fills up; the wall clock jumps; a GPU falls off the bus; a RAPL
//! counter goes backwards. Each time: nothing recorded is lost (at most the tick in flight),
//! the caps come back, and what happened is said in one clear line.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

/// Polls `done` every 20 ms for up to 90 s, failing if `child` ends first. The bound is far
/// from what the waits need: the simulated GPUs' first cap change comes after the governor
/// has timed the 300 W cap to ±2% by the run's step count, about 18 s of wall time even on
/// an idle machine (a 20 s bound failed on a busy one).
fn wait_until(child: &mut Child, what: &str, done: impl FnMut() -> bool) {
    wait_while_running(child, 90, what, done);
}

/// Data rows in a samples.csv as written so far (a partial last line included).
fn data_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// Every row follows the one before: none twice, none out of order, and none lost. A lost row
/// shows as energy no written row accounts for: each row's energy is its own interval's,
/// `energy_kwh[k] − energy_kwh[k−1] = total_power_w[k] × Δt × PUE / 3.6e6` (PUE 1 in these
/// runs). A gap in time is no verdict: on a starved machine the sampler skips the deadlines it
/// slept through and the next row covers the whole gap, so nothing here depends on how busy
/// the machine is.
fn assert_contiguous(h: &[String], rows: &[Vec<String>]) {
    let (el, e, w) = (
        col(h, "elapsed_s"),
        col(h, "energy_kwh"),
        col(h, "total_power_w"),
    );
    for pair in rows.windows(2) {
        let dt = num(&pair[1][el]) - num(&pair[0][el]);
        assert!(dt > 0.0, "rows out of order or twice: {pair:?}");
        let de = num(&pair[1][e]) - num(&pair[0][e]);
        let want = num(&pair[1][w]) * dt / 3.6e6;
        assert!(
            (de - want).abs() <= 1e-9 * want.abs().max(1e-12),
            "energy {de} kWh between rows where the second accounts for {want}: {pair:?}"
        );
    }
}

#[test]
fn a_crashing_or_killed_command_ends_the_run_with_its_signal_and_a_whole_record() {
    // A segfault, and the OOM killer's SIGKILL: as a shell reports them, 128 + the signal.
    for (how, code, said) in [
        ("kill -SEGV $$", 139, "killed by signal 11 (SIGSEGV)"),
        ("kill -KILL $$", 137, "killed by signal 9 (SIGKILL)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r");
        let o = quick("run", &out)
            .args(["--", "sh", "-c", &format!("sleep 0.5; {how}")])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(err.contains(said), "{err}");
        let (h, rows) = read_csv(&out.join("samples.csv"));
        assert!(rows.len() >= 4, "{rows:?}");
        assert_contiguous(&h, &rows);
        let (j, _) = report_json(&out.join("samples.csv"));
        assert_eq!(j["runs"][0]["samples"].as_u64(), Some(rows.len() as u64));
        assert!(out.join("emissions.csv").exists());
    }
}

/// `run` of a long command on two simulated A40s whose governor moves the caps.
fn governed_run(dir: &Path) -> Child {
    let mut c = bin();
    c.arg("run");
    sim_governed(&mut c, &dir.join("caps.json"));
    c.arg("--out")
        .arg(dir.join("r"))
        .args(["--", "sleep", "300"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_sighup_and_sigint_end_the_run_cleanly_and_put_the_caps_back() {
    for (sig, code) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
        (Signal::SIGINT, 130),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        let mut child = governed_run(dir.path());
        wait_until(&mut child, "a cap change", || {
            state.exists() && caps_in(&state).iter().any(|&c| c < 300.0)
        });
        // To carbontop alone, as `kill` or a scheduler sends it: it passes the signal on (SIGINT
        // after a grace period, as a terminal's Ctrl-C reaches the whole group anyway).
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{sig}: {err}");
        assert!(!err.contains("panicked"), "{sig}: {err}");
        assert_eq!(caps_in(&state), [300.0, 300.0], "{sig}: {err}");
        let samples = dir.path().join("r/samples.csv");
        let (h, rows) = read_csv(&samples);
        assert_contiguous(&h, &rows);
        report_json(&samples);
        assert!(dir.path().join("r/emissions.csv").exists(), "{sig}");
    }
}

#[test]
fn kill_9_loses_at_most_the_last_tick_and_report_reads_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let samples = out.join("samples.csv");
    let spawned = Instant::now();
    let mut child = quick("record", &out).spawn().unwrap();
    wait_until(&mut child, "ten rows", || data_lines(&samples).len() >= 10);
    let alive = spawned.elapsed().as_secs_f64();
    child.kill().unwrap(); // SIGKILL: no handler runs.
    child.wait().unwrap();
    let lines = data_lines(&samples);
    // Every line but possibly the last is whole.
    let whole: Vec<&String> = lines.iter().filter(|l| l.ends_with('\n')).collect();
    assert!(whole.len() + 1 >= lines.len(), "{lines:?}");
    let (h, rows) = read_csv(&samples);
    let el = col(&h, "elapsed_s");
    assert_contiguous(&h, &rows);
    let (j, _) = report_json(&samples);
    assert_eq!(j["runs"][0]["samples"].as_u64(), Some(whole.len() as u64));
    // The file reaches (nearly) the moment of the kill: the ticks before it are all there (a
    // generous bound: a starved machine may start the sampler and write late).
    let last = num(&rows.last().unwrap()[el]);
    assert!(
        last > alive - 3.0,
        "last row at {last} s, killed after {alive} s"
    );

    // A row cut off mid-write, as a full disk or a power cut leaves it: report counts every
    // row before it and says the last one is left out.
    let text = std::fs::read_to_string(&samples).unwrap();
    let cut = dir.path().join("cut.csv");
    std::fs::write(&cut, &text[..text.len() - 25]).unwrap();
    let (j, err) = report_json(&cut);
    assert_eq!(
        j["runs"][0]["samples"].as_u64(),
        Some(whole.len() as u64 - 1)
    );
    assert!(err.contains("was cut off mid-write"), "{err}");
}

#[test]
fn a_full_disk_holds_the_rows_and_nothing_already_written_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let spare_dir = dir.path().join("tmp");
    std::fs::create_dir_all(&spare_dir).unwrap();
    // A 3 KiB file-size limit stands in for the disk filling up mid-run: writes past it fail
    // (EFBIG), as on a full disk (ENOSPC); the rows still held at the end go to a spare file.
    // prlimit (util-linux) sets RLIMIT_FSIZE in bytes for the one process it starts.
    let o = std::process::Command::new("prlimit")
        .arg("--fsize=3072")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_carbontop"))
        .args([
            "record",
            "--headless",
            "--quiet",
            "--interval",
            "100ms",
            "--duration",
            "2s",
            "--out",
        ])
        .arg(&out)
        .env("TMPDIR", &spare_dir)
        .env("XDG_CONFIG_HOME", "/nonexistent-carbontop-test")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // One clear line when it starts, the summary's note at the end.
    let refusals: Vec<&str> = err.lines().filter(|l| l.contains("cannot write")).collect();
    assert_eq!(refusals.len(), 1, "{err}");
    assert!(refusals[0].contains("samples.csv: File too large"), "{err}");
    assert!(err.contains("they are saved in"), "{err}");
    let ticks: u64 = err
        .split(" samples, every")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .map(|s| s.trim().parse().unwrap())
        .unwrap();
    // samples.csv: whole rows up to the limit (report reads it, the cut row left out).
    let samples = out.join("samples.csv");
    assert!(std::fs::metadata(&samples).unwrap().len() <= 3072);
    let (j, _) = report_json(&samples);
    let on_disk = j["runs"][0]["samples"].as_u64().unwrap();
    // The spare file: the rest, from the row the disk cut short on; together, every tick once.
    let spare: Vec<_> = std::fs::read_dir(&spare_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(spare.len(), 1, "{spare:?}");
    let (h, rest) = read_csv(&spare[0]);
    // samples.csv up to its last whole row (the one the limit cut is in the spare file).
    let text = std::fs::read_to_string(&samples).unwrap();
    let whole = dir.path().join("whole.csv");
    std::fs::write(&whole, &text[..=text.rfind('\n').unwrap()]).unwrap();
    let (h0, rows) = read_csv(&whole);
    assert_eq!(h, h0);
    assert_eq!(on_disk + rest.len() as u64, ticks, "{err}");
    let mut all: Vec<Vec<String>> = rows[..on_disk as usize].to_vec();
    all.extend(rest);
    assert_contiguous(&h, &all);
}

#[test]
fn a_wall_clock_jump_moves_no_energy() {
    for jump in ["-3600", "86400"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r");
        let o = quick("record", &out)
            .args(["--duration", "1.2s"])
            .env("CARBONTOP_TEST_CLOCK_JUMP", format!("0.5:{jump}"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (h, rows) = read_csv(&out.join("samples.csv"));
        let (ts, el, p, e) = (
            col(&h, "timestamp"),
            col(&h, "elapsed_s"),
            col(&h, "total_power_w"),
            col(&h, "energy_kwh"),
        );
        let t = |r: &Vec<String>| {
            chrono::DateTime::parse_from_rfc3339(&r[ts])
                .unwrap()
                .timestamp_millis() as f64
                / 1000.0
        };
        // The wall clock jumped once, by the amount given...
        let steps: Vec<f64> = rows.windows(2).map(|w| t(&w[1]) - t(&w[0])).collect();
        let jumped: Vec<&f64> = steps.iter().filter(|d| (**d).abs() > 60.0).collect();
        assert_eq!(jumped.len(), 1, "{jump}: {steps:?}");
        assert!((jumped[0] - num(jump)).abs() < 1.0, "{jump}: {steps:?}");
        // ... while energy is power × monotonic time, row by row, exactly (PUE 1).
        assert_contiguous(&h, &rows);
        for w in rows.windows(2) {
            let de = num(&w[1][e]) - num(&w[0][e]);
            let want = num(&w[1][p]) * (num(&w[1][el]) - num(&w[0][el])) / 3.6e6;
            assert!(close(de, want, 1e-9), "{jump}: {de} vs {want}");
        }
    }
}

#[test]
fn a_lost_gpu_is_said_once_and_monitoring_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let state = dir.path().join("caps.json");
    let mut c = bin();
    c.args(["record", "--duration", "1.5s", "--out"]).arg(&out);
    sim_governed(&mut c, &state);
    let o = c
        .env("CARBONTOP_TEST_GPU_LOST_AFTER", "5")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let told = err.lines().filter(|l| l.starts_with("carbontop: GPU 1 ("));
    assert_eq!(told.count(), 1, "said once: {err}");
    assert!(err.contains("lost"), "{err}");
    let (h, rows) = read_csv(&out.join("samples.csv"));
    let (g0, g1, total) = (
        col(&h, "gpu0_power_w"),
        col(&h, "gpu1_power_w"),
        col(&h, "gpu_power_w"),
    );
    // GPU 1 measured, then unknown (empty, never 0); GPU 0 measured throughout.
    assert!(!rows[1][g1].is_empty());
    let last = rows.last().unwrap();
    assert!(last[g1].is_empty(), "{last:?}");
    assert!(rows.iter().all(|r| !r[g0].is_empty()));
    assert!(close(num(&last[total]), num(&last[g0]), 1e-12), "{last:?}");
    // The GPU still there got its cap back. The lost one, if the governor had moved its cap
    // before it went (how soon it decides depends on how busy the machine is), could not be
    // reached, and that is said; if it never moved, there is nothing to put back.
    assert_eq!(caps_in(&state)[0], 300.0, "{err}");
    let change = col(&h, "cap_change");
    let gpu1_moved = rows.iter().any(|r| r[change].contains("gpu1"));
    assert_eq!(err.contains("GPU 1 is lost"), gpu1_moved, "{err}");
}

#[test]
fn a_rapl_counter_going_backwards_without_a_wrap_is_a_reset_not_phantom_energy() {
    let dir = tempfile::tempdir().unwrap();
    // A real package's range (262,143,328,850 µJ, about 262 kJ). 100 J → 2 J (a driver reload
    // reset it: a wrap would mean about 262 kJ within one tick, over 5 kW for any tick shorter
    // than 52 s, however busy the machine) → 52 J. What the CPU used: the 2 J gathered since
    // the reset, then 50 J; a late tick that skips the 2 J sees 100 J → 52 J, a reset as well,
    // and counts the same 52 J.
    let (o, (h, rows)) = rapl_run(
        dir.path(),
        262_143_328_850,
        100_000_000,
        [2_000_000, 52_000_000],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("RAPL counter went backwards 1 time(s) without a plausible wrap"),
        "{err}"
    );
    assert!(!err.contains("wrapped"), "{err}");
    let joules = cpu_joules(&h, &rows);
    assert!(
        close(joules, 52.0, 1e-9),
        "CPU energy {joules} J, want 52 J"
    );
}
