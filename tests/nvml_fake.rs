//! The real NVML path, without a GPU: the binary loads the fake `libnvidia-ml.so.1`
//! (tests/fake_nvml, built here with the system C compiler) through nvml-wrapper exactly as it
//! loads NVIDIA's, and the fake plays a scenario — power traces, an energy counter or none,
//! cap constraints, set-limit answers, processes, a GPU falling off the bus, a driver that is
//! not loaded. What carbontop was told is in the fake's log and what it did to the caps in the
//! fake's shared state file, so each check compares carbontop's output with the scenario
//! exactly, or within a bound computed from the run's own samples, never from how fast the
//! machine happens to be.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::fake_nvml::{FakeNvml, trace_mj};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `CMD --headless --quiet --interval 100ms --out DIR/r` through the fake.
fn through(f: &FakeNvml, cmd: &str, dir: &Path) -> Command {
    let mut c = quick(cmd, &dir.join("r"));
    f.apply(&mut c);
    c
}

/// The offset `o` at which the served readings line up with the rows: row k was made from
/// reading o + k (the readings before are carbontop's probes at start). `matches(o, k)` says
/// whether row k agrees with reading o + k.
fn align(rows: usize, served: usize, matches: impl Fn(usize, usize) -> bool) -> usize {
    assert!(served >= rows, "{served} readings served for {rows} rows");
    (0..=served - rows)
        .find(|&o| (0..rows).all(|k| matches(o, k)))
        .unwrap_or_else(|| {
            panic!("the {rows} rows follow none of the {served} readings served, at any offset")
        })
}

fn near(a: f64, b: f64, abs: f64) -> bool {
    (a - b).abs() <= abs + 1e-9 * a.abs().max(b.abs())
}

const ENERGY: &str = r#"
# GPU 0 has an energy counter, and its power reading (a 1 s average on real GPUs) says 200 W
# while the counter runs at 250 W: the figure must be the counter's.
# GPU 1 has no counter: its energy is the trapezoid of its power steps.
gpus = 2
[gpu.0]
name = "NVIDIA H100 80GB HBM3"
power_mw = "0:200000"
true_power_mw = "0:250000"
energy_start_mj = 987654321000
[gpu.1]
name = "NVIDIA H100 80GB HBM3"
energy = "not_supported"
power_mw = "0:100000 0.6:300000 1.2:150000"
"#;

#[test]
fn gpu_energy_is_the_counters_and_else_the_trapezoid_of_the_power_served() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), ENERGY) else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .args(["--duration", "2s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "NVML (measured): 2 × NVIDIA H100 80GB HBM3; energy counter on 1, power trapezoid on the rest"
        ),
        "{err}"
    );
    let samples = dir.path().join("r/samples.csv");
    let (h, rows) = read_csv(&samples);
    assert!(rows.len() >= 5, "{err}");
    let el = col(&h, "elapsed_s");
    let elapsed: Vec<f64> = rows.iter().map(|r| num(&r[el])).collect();

    // GPU 0: row k's energy is the counter's rise from the first row's reading to its own,
    // exactly, and that rise is the scenario's 250 W over the time between those readings.
    let e0 = col(&h, "gpu0_energy_j");
    let counter = f.served("energy", 0);
    let o0 = align(rows.len(), counter.len(), |o, k| {
        let rise_j = (counter[o + k].1 - counter[o].1) as f64 / 1000.0;
        near(num(&rows[k][e0]), rise_j, 1e-9)
    });
    let (first, last) = (counter[o0], counter[o0 + rows.len() - 1]);
    assert!(last.0 - first.0 > 1.0, "{counter:?}");
    let rise_mj = (last.1 - first.1) as f64;
    // The counter is whole mJ: each end is within 1 mJ of the integral.
    let want_mj = trace_mj(&[(0.0, 250_000.0)], first.0, last.0);
    assert!(near(rise_mj, want_mj, 2.0), "{rise_mj} mJ, want {want_mj}");

    // GPU 1: each row's power is the mean of the two readings served around its interval
    // (the first row: its own reading), exactly.
    let (p1, e1) = (col(&h, "gpu1_power_w"), col(&h, "gpu1_energy_j"));
    let power = f.served("power", 1);
    let o1 = align(rows.len(), power.len(), |o, k| {
        let want = if k == 0 {
            power[o].1 as f64
        } else {
            (power[o + k - 1].1 + power[o + k].1) as f64 / 2.0
        };
        near(num(&rows[k][p1]) * 1000.0, want, 1e-6)
    });
    let served = &power[o1..o1 + rows.len()];
    // Its energy against the scenario's integral over the same span, within what sampling
    // explains, measured on this run: the trapezoid misses at most |ΔP|·Δτ/2 on an interval
    // with a step in it, and carbontop's clock (the row's elapsed_s) and the fake's (when it
    // served the reading) can disagree by what the run itself shows.
    let trace = [(0.0, 100_000.0), (0.6, 300_000.0), (1.2, 150_000.0)];
    let want_mj = trace_mj(&trace, served[0].0, served[served.len() - 1].0);
    let mut slack_mj = 0.0;
    for k in 1..served.len() {
        let (a, b) = (served[k - 1], served[k]);
        let (dtau, dt) = (b.0 - a.0, elapsed[k] - elapsed[k - 1]);
        slack_mj += 300_000.0 * (dt - dtau).abs();
        for w in trace.windows(2) {
            if a.0 < w[1].0 && w[1].0 <= b.0 {
                slack_mj += (w[1].1 - w[0].1).abs() * dtau / 2.0;
            }
        }
    }
    let got_mj = num(&rows.last().unwrap()[e1]) * 1000.0;
    assert!(
        near(got_mj, want_mj, slack_mj),
        "GPU 1: {got_mj} mJ, the scenario's {want_mj} ± {slack_mj}"
    );
    // Every reading served is the trace's level at the time it was served, and a step of the
    // trace inside the rows' span shows as two levels. Which steps fall inside depends on how
    // soon the run started after the library loaded (a busy machine starts it later), so the
    // test asks for what the span holds, not for fixed levels.
    let level_at = |t: f64| {
        trace
            .iter()
            .rev()
            .find(|(start, _)| *start <= t)
            .map_or(trace[0].1, |(_, w)| *w)
    };
    for &(t, mw) in served {
        assert_eq!(mw as f64, level_at(t), "reading at {t} s: {served:?}");
    }
    let (from, to) = (served[0].0, served[served.len() - 1].0);
    if trace.iter().skip(1).any(|(t, _)| from < *t && *t <= to) {
        let mut levels: Vec<u64> = served.iter().map(|s| s.1).collect();
        levels.dedup();
        assert!(
            levels.len() > 1,
            "a step inside {from}–{to} s unseen: {served:?}"
        );
    }

    // report reads the recording to the same GPU energy.
    let (j, _) = report_json(&samples);
    let last_row = rows.last().unwrap();
    let gpu_kwh = (num(&last_row[e0]) + num(&last_row[e1])) / 3.6e6;
    let reported = j["runs"][0]["it_energy_kwh"]["gpu"].as_f64().unwrap();
    assert!(close(reported, gpu_kwh, 1e-9), "{reported} vs {gpu_kwh}");
    assert_eq!(j["runs"][0]["gpu_count"].as_u64(), Some(2));
}

/// Two 100–300 W GPUs whose caps stand at 280 W (the default is 300 W, so putting the caps
/// back cannot be mistaken for resetting them to the default).
const CAPS: &str = r#"
gpus = 2
[gpu.*]
name = "NVIDIA A40"
power_mw = "0:200000"
cap_min_mw = 100000
cap_max_mw = 300000
cap_default_mw = 300000
cap_mw = 280000
util_gpu = 90
"#;

/// `run` with the carbon governor (η=1, 0.2 s profile), which moves the caps at once.
fn governed(f: &FakeNvml, dir: &Path, cmd: &[&str]) -> Command {
    let mut c = through(f, "run", dir);
    c.args([
        "--governor",
        "carbon",
        "--eta",
        "1",
        "--governor-profile",
        "0.2s",
    ])
    .arg("--")
    .args(cmd);
    c
}

/// Polls until the fake was asked to set a cap and a row of samples.csv has read the new cap
/// back, for up to 60 s; fails if `child` ends first.
fn wait_for_a_set(f: &FakeNvml, dir: &Path, child: &mut Child) {
    let samples = dir.join("r/samples.csv");
    wait_while_running(child, 60, "a cap set and read back", || {
        let Some(s) = f.sets().first().copied() else {
            return false;
        };
        let (h, rows) = rows_so_far(&samples);
        let want = (f64::from(s.new_mw) / 1000.0).to_string();
        h.iter()
            .position(|c| c == "gpu0_cap_w")
            .is_some_and(|cap| rows.iter().any(|r| r[cap] == want))
    });
}

/// Carbontop moved the caps through NVML, read them back through NVML (each row's
/// `gpu{i}_cap_w`), and put both back to 280 W as its last act; its log says what it did.
fn assert_set_read_back_and_restored(f: &FakeNvml, dir: &Path, pid: u32, how: &str) {
    let sets = f.sets();
    assert_eq!(f.caps_mw(), [280_000, 280_000], "{how}: {sets:?}");
    assert!(sets.iter().all(|s| s.pid == pid), "{how}: {sets:?}");
    for gpu in 0..2 {
        let mine: Vec<_> = sets.iter().filter(|s| s.gpu == gpu).collect();
        assert!(mine.len() >= 2, "{how}: {sets:?}");
        assert_eq!(mine[0].old_mw, 280_000, "{how}: {sets:?}");
        assert_eq!(mine.last().unwrap().new_mw, 280_000, "{how}: {sets:?}");
        for w in mine.windows(2) {
            assert_eq!(w[0].new_mw, w[1].old_mw, "{how}: {sets:?}");
        }
    }
    let (h, rows) = read_csv(&dir.join("r/samples.csv"));
    let cap0 = col(&h, "gpu0_cap_w");
    assert_eq!(rows[0][cap0], "280", "{how}: the cap read at start");
    let first_new = f64::from(sets[0].new_mw) / 1000.0;
    assert!(
        rows.iter().any(|r| num(&r[cap0]) == first_new),
        "{how}: no row read back the {first_new} W cap"
    );
    let change = col(&h, "cap_change");
    assert!(
        rows.iter()
            .any(|r| r[change].contains("governor gpu0 280->")),
        "{how}: the first change is logged"
    );
}

#[test]
fn caps_are_set_read_back_and_restored_at_the_end_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    // The command ends when the test says so: after the first cap was set.
    let flag = dir.path().join("done");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", flag.display());
    let mut child = governed(&f, dir.path(), &["sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_set(&f, dir.path(), &mut child);
    std::fs::write(&flag, "").unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("caps put back: restore gpu0"), "{err}");
    assert_set_read_back_and_restored(&f, dir.path(), pid, "end of run");
}

#[test]
fn caps_are_restored_on_sigterm_sighup_and_sigint() {
    for (sig, code) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
        (Signal::SIGINT, 130),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
            return;
        };
        let mut child = governed(&f, dir.path(), &["sleep", "60"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_a_set(&f, dir.path(), &mut child);
        let pid = child.id();
        kill(Pid::from_raw(pid as i32), sig).unwrap();
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{sig}: {err}");
        assert!(!err.contains("panicked"), "{sig}: {err}");
        assert_set_read_back_and_restored(&f, dir.path(), pid, &format!("{sig}"));
    }
}

#[test]
fn caps_are_restored_on_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    // The first change comes at the first tick; 3 s leaves room for a busy machine's delays.
    let child = governed(&f, dir.path(), &["sleep", "60"])
        .env("CARBONTOP_TEST_PANIC_AFTER", "3.0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("a deliberate panic"), "{err}");
    assert_set_read_back_and_restored(&f, dir.path(), pid, "panic");
}

#[test]
fn a_refused_cap_says_why_once_and_monitoring_goes_on() {
    for (answer, said) in [
        (
            "no_permission",
            "governor stopped: no permission to change GPU power caps: run carbontop as root (sudo), with persistence mode on (nvidia-smi -pm 1)",
        ),
        (
            "not_supported",
            "governor stopped: this GPU does not support setting a power cap",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let scenario = format!("{CAPS}set_limit = \"{answer}\"\n");
        let Some(f) = FakeNvml::new(dir.path(), &scenario) else {
            return;
        };
        // Not --quiet: the reason is said on stderr when it happens.
        let mut c = bin();
        f.apply(&mut c)
            .args([
                "record",
                "--headless",
                "--interval",
                "100ms",
                "--duration",
                "1.5s",
            ])
            .args([
                "--governor",
                "carbon",
                "--eta",
                "1",
                "--governor-profile",
                "0.2s",
            ])
            .arg("--out")
            .arg(dir.path().join("r"));
        let o = c.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{answer}: {err}");
        let told = err.lines().filter(|l| *l == format!("carbontop: {said}"));
        assert_eq!(told.count(), 1, "{answer}: said once: {err}");
        // And in the summary, which a --quiet run prints too.
        assert!(
            err.lines()
                .any(|l| l.trim_start().starts_with("note") && l.ends_with(said)),
            "{answer}: in the summary: {err}"
        );
        let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
        assert!(rows.len() >= 5, "{answer}: {err}");
        // Nothing was changed, and the GPUs were measured throughout.
        assert!(f.sets().is_empty(), "{answer}");
        assert_eq!(f.caps_mw(), [280_000, 280_000], "{answer}");
        let p0 = col(&h, "gpu0_power_w");
        assert!(rows.iter().all(|r| !r[p0].is_empty()), "{answer}");
        assert!(
            rows.iter().all(|r| r[col(&h, "cap_change")].is_empty()),
            "{answer}"
        );
    }
}

#[test]
fn the_commands_share_of_each_gpu_comes_from_nvmls_process_accounting() {
    // GPU 0: the command (a child of carbontop) at 60% SM beside another user's process
    // (pid 1) at 20%: 3/4 of GPU 0 is the command's. GPU 1 gives no per-process utilisation:
    // split by memory held, 3000 MiB of 4500: 2/3.
    let scenario = r#"
gpus = 2
[gpu.*]
procs = "child:3000:60 1:1500:20"
[gpu.0]
power_mw = "0:200000"
[gpu.1]
power_mw = "0:120000"
proc_util = "not_supported"
"#;
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), scenario) else {
        return;
    };
    let o = through(&f, "run", dir.path())
        .args(["--", "sleep", "1.5"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    let (g0, g1, mine) = (
        col(&h, "gpu0_power_w"),
        col(&h, "gpu1_power_w"),
        col(&h, "process_gpu_w"),
    );
    // From the first row that knows the command's pid. The rows whose interval the command
    // ended in, or came after, hold part of its share or none (which GPU's processes NVML
    // still listed at that tick is a matter of timing): only those, at the end, may be below
    // it, and never above.
    let shared: Vec<&Vec<String>> = rows.iter().filter(|r| !r[mine].is_empty()).collect();
    assert!(shared.len() >= 3, "{rows:?}");
    let want = |r: &Vec<String>| 0.75 * num(&r[g0]) + 2.0 / 3.0 * num(&r[g1]);
    let exact = shared
        .iter()
        .take_while(|r| close(num(&r[mine]), want(r), 1e-9))
        .count();
    assert!(exact >= 2, "{rows:?}");
    for r in &shared[exact..] {
        let m = num(&r[mine]);
        assert!((0.0..=want(r) + 1e-9).contains(&m), "{r:?}");
    }
}

/// The whole rows of a samples.csv being written (a partial last line left out).
fn rows_so_far(samples: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(samples).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut r = csv::Reader::from_reader(whole.as_bytes());
    let h = r
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let rows = r
        .records()
        .flatten()
        .map(|x| x.iter().map(str::to_owned).collect())
        .collect();
    (h, rows)
}

/// Polls (up to 60 s) until samples.csv's rows so far satisfy `done`; fails if `child` ends.
fn wait_for_rows(
    samples: &Path,
    child: &mut Child,
    what: &str,
    done: impl Fn(&[String], &[Vec<String>]) -> bool,
) {
    wait_while_running(child, 60, what, || {
        let (h, rows) = rows_so_far(samples);
        !h.is_empty() && done(&h, &rows)
    });
}

#[test]
fn lost_gpus_are_said_once_their_energy_up_to_the_loss_kept_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // GPUs 1 and 2 fall off the bus together when the test says (the file appears): every
    // call about them answers NVML_ERROR_GPU_IS_LOST from then on. The governor has moved
    // every cap before.
    let gone = dir.path().join("gone");
    let scenario = format!(
        "{CAPS}[gpu.1]\nname = \"NVIDIA A100-SXM4-80GB\"\nlost_when_exists = \"{g}\"\n\
         [gpu.2]\nlost_when_exists = \"{g}\"\n",
        g = gone.display()
    )
    .replace("gpus = 2", "gpus = 3");
    let Some(f) = FakeNvml::new(dir.path(), &scenario) else {
        return;
    };
    let samples = dir.path().join("r/samples.csv");
    let mut child = governed(&f, dir.path(), &["sleep", "60"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_set(&f, dir.path(), &mut child);
    wait_for_rows(&samples, &mut child, "three rows", |_, rows| {
        rows.len() >= 3
    });
    std::fs::write(&gone, "").unwrap();
    wait_for_rows(
        &samples,
        &mut child,
        "three rows after the loss",
        |h, rows| {
            let p1 = col(h, "gpu1_power_w");
            rows.iter().rev().take(3).all(|r| r[p1].is_empty())
        },
    );
    let pid = child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(143), "{err}");
    // Each loss said once as it happens (the two on one line when they come in one tick),
    // and again only as the summary's last warning.
    for gpu in [
        "GPU 1 (NVIDIA A100-SXM4-80GB) lost",
        "GPU 2 (NVIDIA A40) lost",
    ] {
        let said = err
            .lines()
            .filter(|l| l.starts_with("carbontop: ") && l.contains(gpu));
        assert_eq!(said.count(), 1, "{gpu} said once: {err}");
    }
    // GPU 0's cap is back; the lost GPUs' could not be reached, and that is said.
    assert_eq!(f.caps_mw()[0], 280_000, "{err}");
    let last_set = |gpu| {
        f.sets()
            .iter()
            .rev()
            .find(|s| s.gpu == gpu)
            .copied()
            .unwrap()
    };
    assert_eq!(last_set(0).new_mw, 280_000);
    assert_ne!(
        last_set(1).new_mw,
        280_000,
        "GPU 1 was moved before it was lost"
    );
    assert!(
        err.contains("carbontop: GPU 1: cannot restore the 280 W cap: GPU 1 is lost"),
        "{err}"
    );

    let (h, rows) = read_csv(&samples);
    let (p0, p1, e1) = (
        col(&h, "gpu0_power_w"),
        col(&h, "gpu1_power_w"),
        col(&h, "gpu1_energy_j"),
    );
    // GPU 0 measured throughout; GPU 1 until the loss, then unknown (empty, never 0).
    assert!(rows.iter().all(|r| !r[p0].is_empty()));
    let lost_at = rows.iter().position(|r| r[p1].is_empty()).unwrap();
    assert!(lost_at >= 3, "{rows:?}");
    assert!(rows[lost_at..].iter().all(|r| r[p1].is_empty()));
    // Its energy up to the loss is kept: the counter's rise from the first row's reading to
    // the last one it served.
    let counter = f.served("energy", 1);
    let before = &counter[counter.len() - lost_at..];
    let kept_j = (before[lost_at - 1].1 - before[0].1) as f64 / 1000.0;
    assert!(kept_j > 0.0);
    for r in &rows[lost_at..] {
        assert!(near(num(&r[e1]), kept_j, 1e-9), "{r:?} vs {kept_j} J");
    }
}

#[test]
fn a_gpu_lost_before_the_start_leaves_the_others_measured() {
    let scenario =
        "gpus = 3\n[gpu.*]\nname = \"Tesla V100-SXM2-32GB\"\n[gpu.1]\nlost_after_s = 0\n";
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), scenario) else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .args(["--duration", "0.5s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("NVML (measured): 2 × Tesla V100-SXM2-32GB"),
        "{err}"
    );
    let said = err
        .lines()
        .filter(|l| l.starts_with("carbontop: GPU 1 not measured: "));
    assert_eq!(said.count(), 1, "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    // Columns under NVML's numbers: 0 and 2, never 1.
    assert!(!h.iter().any(|c| c.starts_with("gpu1_")), "{h:?}");
    assert!(rows.iter().all(|r| !r[col(&h, "gpu2_power_w")].is_empty()));
    // Read: NVML's GPUs 0 and 2, never 1.
    assert!(f.served("power", 1).is_empty() && !f.served("power", 2).is_empty());
}

#[test]
fn a_driver_that_is_not_loaded_is_one_line_and_the_run_goes_on_without_gpus() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), "init = driver_not_loaded\n") else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .args(["--duration", "0.5s", "--governor", "carbon"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let said = "NVIDIA library present but the kernel driver is not loaded: GPU power not measured";
    assert_eq!(
        err.lines()
            .filter(|l| l == &format!("carbontop: {said}"))
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "carbontop: governor: {said}: there is no cap to change"
        )),
        "{err}"
    );
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    assert!(!h.iter().any(|c| c.starts_with("gpu0_")), "{h:?}");
    assert!(rows.len() >= 3);
}

#[test]
fn the_library_is_found_through_ld_library_path_and_a_bad_carbontop_nvml_lib_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), "gpus = 3\n[gpu.*]\nname = \"Tesla T4\"\n") else {
        return;
    };
    let mut c = quick("record", &dir.path().join("r"));
    f.apply_env(&mut c).env("LD_LIBRARY_PATH", &f.lib_dir);
    let o = c.args(["--duration", "0.3s"]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("NVML (measured): 3 × Tesla T4"), "{err}");

    let o = quick("record", &dir.path().join("r2"))
        .args(["--duration", "0.3s"])
        .env("CARBONTOP_NVML_LIB", dir.path().join("nowhere.so"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("carbontop: CARBONTOP_NVML_LIB=")
            && err.contains("nowhere.so: cannot load it")
            && err.contains("GPU power not measured"),
        "{err}"
    );
}

#[test]
fn gpu_index_picks_nvml_gpus_and_a_missing_one_is_a_usage_error() {
    let scenario = r#"
gpus = 4
[gpu.2]
name = "NVIDIA L4"
power_mw = "0:72000"
"#;
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), scenario) else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .args(["--duration", "0.5s", "--gpu-index", "2,2"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("NVML (measured): 1 × NVIDIA L4"), "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    assert!(!h.iter().any(|c| c.starts_with("gpu0_")), "{h:?}");
    assert_eq!(rows[0][col(&h, "gpu2_power_w")], "72");
    // Only GPU 2 was read, and once a tick.
    assert!(f.served("power", 0).is_empty());
    assert_eq!(f.served("power", 2).len(), rows.len());

    let o = through(&f, "record", &dir.path().join("x"))
        .args(["--duration", "0.5s", "--gpu-index", "4"])
        .output()
        .unwrap();
    assert_one_line_error(&o, "--gpu-index 4: this machine has 4 GPU(s), indices 0..3");
}

#[test]
fn a_broken_scenario_fails_loudly() {
    // The fake refuses to start on a key it does not know, so a typo in a test's scenario
    // cannot silently test the defaults instead.
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), "gpus = 1\n[gpu.0]\npower = 3\n") else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .args(["--duration", "0.3s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(
        err.contains("fake NVML: ") && err.contains("unknown key power"),
        "{err}"
    );
    assert!(err.contains("GPU power not measured"), "{err}");
}

/// Eight A100s whose NVML order is not their PCI order (GPU 0 sits on the last bus), with
/// distinct powers, so which GPUs were counted shows in the figures.
const EIGHT: &str = r#"
gpus = 8
[gpu.*]
name = "NVIDIA A100-SXM4-80GB"
[gpu.0]
pci_bus_id = "00000000:F0:00.0"
power_mw = "0:100000"
[gpu.1]
power_mw = "0:110000"
[gpu.2]
power_mw = "0:120000"
[gpu.3]
power_mw = "0:130000"
uuid = "GPU-3a3a3a3a-0000-4000-8000-000000000003"
mig_devices = "MIG-5c5c5c5c-0000-4000-8000-000000000001"
[gpu.4]
power_mw = "0:140000"
[gpu.5]
power_mw = "0:150000"
minor = 6
[gpu.6]
power_mw = "0:160000"
minor = 5
[gpu.7]
power_mw = "0:170000"
"#;

/// The GPU numbers of samples.csv's column groups (`gpu{N}_power_w`), in column order, and
/// each one's column.
fn gpu_groups(h: &[String]) -> Vec<(u32, usize)> {
    h.iter()
        .enumerate()
        .filter_map(|(c, name)| {
            let n = name.strip_prefix("gpu")?.strip_suffix("_power_w")?;
            Some((n.parse().ok()?, c))
        })
        .collect()
}

/// `run -- sleep 0.3` through `scenario` with `vars` set (and every other deciding variable
/// unset): stderr, the first row's per-GPU powers (W), and the GPUs' numbers.
fn job_run_on(
    scenario: &str,
    vars: &[(&str, &str)],
    extra: &[&str],
) -> Option<(String, Vec<f64>, Vec<u32>)> {
    let dir = tempfile::tempdir().unwrap();
    let f = FakeNvml::new(dir.path(), scenario)?;
    let mut c = through(&f, "run", dir.path());
    c.envs(vars.iter().copied());
    let o = c.args(extra).args(["--", "sleep", "0.3"]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{vars:?}: {err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    let groups = gpu_groups(&h);
    let powers = groups.iter().map(|&(_, c)| num(&rows[0][c])).collect();
    Some((err, powers, groups.iter().map(|g| g.0).collect()))
}

/// [`job_run_on`] the eight GPUs: stderr and the first row's per-GPU powers (W).
fn job_run(vars: &[(&str, &str)], extra: &[&str]) -> Option<(String, Vec<f64>)> {
    job_run_on(EIGHT, vars, extra).map(|(err, w, _)| (err, w))
}

#[test]
fn run_counts_only_the_gpus_its_job_was_given() {
    // CUDA's ordinal 3 in PCI order (NVML's GPU 0 is on the last bus) is NVML's GPU 4.
    let Some((err, w)) = job_run(&[("CUDA_VISIBLE_DEVICES", "3")], &[]) else {
        return;
    };
    assert_eq!(w, [140.0], "{err}");
    let said = "GPU 4 of 8 counted, from CUDA_VISIBLE_DEVICES=3 (--all-gpus counts all 8)";
    assert_eq!(
        err.lines()
            .filter(|l| *l == format!("carbontop: {said}"))
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(&format!("NVML (measured): 1 × NVIDIA A100-SXM4-80GB; energy counter on 1, power trapezoid on the rest; {said}")),
        "the summary says it: {err}"
    );

    for (vars, want) in [
        // A GPU UUID prefix, and a MIG device (its GPU counted).
        (vec![("CUDA_VISIBLE_DEVICES", "GPU-3a3a3a3a")], vec![130.0]),
        (
            vec![(
                "CUDA_VISIBLE_DEVICES",
                "MIG-5c5c5c5c-0000-4000-8000-000000000001",
            )],
            vec![130.0],
        ),
        // SLURM's ids are /dev/nvidiaN: 5 is NVML's GPU 6; the step's narrower list wins.
        (
            vec![("SLURM_JOB_GPUS", "1,5"), ("SLURM_STEP_GPUS", "5")],
            vec![160.0],
        ),
        // The container runtime's host indices are NVML's.
        (vec![("NVIDIA_VISIBLE_DEVICES", "2,7")], vec![120.0, 170.0]),
    ] {
        let (err, w) = job_run(&vars, &[]).unwrap();
        assert_eq!(w, want, "{vars:?}: {err}");
    }

    // --all-gpus and --gpu-index override the environment.
    let (_, w) = job_run(&[("CUDA_VISIBLE_DEVICES", "3")], &["--all-gpus"]).unwrap();
    assert_eq!(w.len(), 8);
    let (_, w) = job_run(&[("CUDA_VISIBLE_DEVICES", "3")], &["--gpu-index", "1"]).unwrap();
    assert_eq!(w, [110.0]);

    // Hidden from the job: no GPU charged, said in one line.
    let (err, w) = job_run(&[("CUDA_VISIBLE_DEVICES", "")], &[]).unwrap();
    assert!(w.is_empty(), "{err}");
    assert!(
        err.contains("carbontop: no GPU counted: CUDA_VISIBLE_DEVICES= shows the job none (--all-gpus counts all 8)"),
        "{err}"
    );
}

#[test]
fn record_counts_the_machine_whatever_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), EIGHT) else {
        return;
    };
    let o = through(&f, "record", dir.path())
        .env("CUDA_VISIBLE_DEVICES", "3")
        .args(["--duration", "0.3s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("NVML (measured): 8 × "), "{err}");
}

#[test]
fn a_gpu_has_one_number_everywhere_nvmls() {
    // CUDA's ordinal 3 is NVML's GPU 4 (nvidia-smi's): the columns, the messages, the
    // summary and run.json all say 4, never its position 0 among the counted GPUs.
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), EIGHT) else {
        return;
    };
    let o = through(&f, "run", dir.path())
        .env("CUDA_VISIBLE_DEVICES", "3")
        .args(["--", "sleep", "0.3"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    assert_eq!(
        gpu_groups(&h).iter().map(|g| g.0).collect::<Vec<_>>(),
        [4],
        "{h:?}"
    );
    for suffix in ["power_w", "energy_j", "util_pct", "mem_used_mib", "cap_w"] {
        assert!(h.contains(&format!("gpu4_{suffix}")), "{h:?}");
    }
    assert!(!h.iter().any(|c| c.starts_with("gpu0_")), "{h:?}");
    assert_eq!(num(&rows[0][col(&h, "gpu4_power_w")]), 140.0);
    assert!(err.contains("GPU 4 of 8 counted"), "{err}");
    // run.json maps the number to NVML's UUID and model.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/run.json")).unwrap())
            .unwrap();
    let map = &run["machine"]["gpu_map"];
    assert_eq!(map.as_array().map(Vec::len), Some(1), "{run}");
    assert_eq!(map[0]["index"], 4);
    assert_eq!(map[0]["uuid"], "GPU-00000000-0000-4000-8000-000000000004");
    assert_eq!(map[0]["name"], "NVIDIA A100-SXM4-80GB");

    // report and replay read the recording back under the same number.
    let out = dir.path().join("again");
    let o = bin()
        .args(["replay", "--headless", "--quiet", "--speed", "max", "--out"])
        .arg(&out)
        .arg(dir.path().join("r/samples.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (h2, _) = read_csv(&out.join("samples.csv"));
    assert_eq!(gpu_groups(&h2).iter().map(|g| g.0).collect::<Vec<_>>(), [4]);
    // /metrics labels it 4 too.
    let samples = dir.path().join("r/samples.csv");
    let (_agent, addr) = agent(samples.to_str().unwrap(), "n");
    let m = metrics_when_done(&addr, rows.len());
    let labels: Vec<&str> = m
        .samples
        .iter()
        .filter(|s| s.metric == "carbontop_gpu_power_watts")
        .filter_map(|s| s.labels.get("gpu"))
        .collect();
    assert_eq!(labels, ["4"], "{:?}", m.samples);
}

/// One A100-80GB in MIG mode with two instances (3 and 2 of its 7 slices), a second GPU whole;
/// the card draws 350 W on its counter and its power readings.
const MIG: &str = r#"
gpus = 2
[gpu.*]
name = "NVIDIA A100-SXM4-80GB"
mem_total_mib = 81920
[gpu.0]
mig = enabled
mig_devices = "MIG-aaaaaaaa-0000-4000-8000-000000000001 MIG-bbbbbbbb-0000-4000-8000-000000000002"
mig_slices = "3 2"
mig_mem_mib = "40192 19968"
power_mw = "0:350000"
[gpu.1]
power_mw = "0:200000"
"#;

#[test]
fn a_mig_instance_is_charged_its_slices_of_the_card_and_says_so() {
    const A: &str = "MIG-aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "MIG-bbbbbbbb-0000-4000-8000-000000000002";
    let Some((err, w, ids)) = job_run_on(MIG, &[("CUDA_VISIBLE_DEVICES", A)], &[]) else {
        return;
    };
    // 3 of 7 slices of the card's 350 W.
    assert_eq!(ids, [0], "{err}");
    assert!((w[0] - 150.0).abs() < 1e-6, "{w:?} {err}");
    let said = "GPU 0 MIG 3g.40gb (3 of 7 slices, estimated)";
    assert!(err.contains(said), "{err}");
    assert!(
        err.contains("NVML measures the card only"),
        "the summary says why: {err}"
    );
    assert!(
        err.contains("1 GPU(s) (a MIG card by the job's slices of it, the others whole)"),
        "its embodied share too: {err}"
    );

    // Both instances of the card: one column group, 5 of 7 slices, the card never twice.
    let (err, w, ids) =
        job_run_on(MIG, &[("CUDA_VISIBLE_DEVICES", &format!("{A},{B}"))], &[]).unwrap();
    assert_eq!(ids, [0], "{err}");
    assert!((w[0] - 250.0).abs() < 1e-6, "{w:?} {err}");
    assert!(
        err.contains("GPU 0 MIG 3g.40gb + 2g.20gb (5 of 7 slices, estimated)"),
        "{err}"
    );

    // The card named whole beside one of its instances is charged whole; a GPU not in MIG
    // mode is whole as before.
    let (_, w, _) = job_run_on(
        MIG,
        &[(
            "CUDA_VISIBLE_DEVICES",
            &format!("{A},GPU-00000000-0000-4000-8000-000000000000"),
        )],
        &[],
    )
    .unwrap();
    assert_eq!(w, [350.0]);
    let (err, w, ids) = job_run_on(MIG, &[("NVIDIA_VISIBLE_DEVICES", "1")], &[]).unwrap();
    assert_eq!((w, ids), (vec![200.0], vec![1]), "{err}");
    assert!(!err.contains("slices, estimated"), "{err}");
    // An instance NVML cannot count the slices of: its card counted whole, and said.
    let broken = MIG.replace(
        "mig = enabled",
        "mig = enabled\nmig_attributes = not_supported",
    );
    let (err, w, _) = job_run_on(&broken, &[("CUDA_VISIBLE_DEVICES", A)], &[]).unwrap();
    assert_eq!(w, [350.0]);
    assert!(
        err.contains(&format!("NVML gives no slice count for {A} ("))
            && err.contains("its GPU counted whole"),
        "{err}"
    );
    // The MIG card given whole, with none of its instances named: counted whole, and said.
    let (err, w, _) = job_run_on(MIG, &[("NVIDIA_VISIBLE_DEVICES", "0")], &[]).unwrap();
    assert_eq!(w, [350.0]);
    assert!(
        err.contains("GPU 0 is in MIG mode but no instance of it was named"),
        "{err}"
    );

    // A MIG card's cap is every instance's: the governor leaves it alone, and says why.
    let dir = tempfile::tempdir().unwrap();
    let f = FakeNvml::new(dir.path(), MIG).unwrap();
    let o = through(&f, "run", dir.path())
        .env("CUDA_VISIBLE_DEVICES", A)
        .args(["--governor", "carbon", "--", "sleep", "0.5"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("GPU 0 is shared through MIG: its power cap is the whole card's"),
        "{err}"
    );
    assert!(f.sets().is_empty(), "{:?}", f.sets());
}

/// GPU 0's counter runs at 250 W while its power readings say `power_mw`: stderr, and the
/// rows' GPU power after the first.
fn counter_run(power_mw: u32) -> Option<(String, Vec<f64>)> {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        "[gpu.0]\nname = \"NVIDIA H100 80GB HBM3\"\npower_mw = \"0:{power_mw}\"\ntrue_power_mw = \"0:250000\"\n"
    );
    let f = FakeNvml::new(dir.path(), &scenario)?;
    // The window decides after 5 s of readings (engine::gpu_check::MIN_SPAN_S).
    let o = through(&f, "record", dir.path())
        .args(["--duration", "6s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    let p = col(&h, "gpu0_power_w");
    Some((err, rows.iter().skip(1).map(|r| num(&r[p])).collect()))
}

#[test]
fn a_counter_and_power_readings_that_disagree_are_flagged_and_the_counter_kept() {
    // Power readings 10% under the counter: said in the summary, with the reason.
    let Some((err, watts)) = counter_run(225_000) else {
        return;
    };
    let line = err
        .lines()
        .find(|l| l.contains("GPU 0: energy counter and power readings differed by up to "))
        .unwrap_or_else(|| panic!("no flag: {err}"));
    let pct: f64 = line
        .split("differed by up to ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((pct - 10.0).abs() < 0.3, "{pct}: {line}");
    assert!(
        line.contains("power below the counter")
            && line.contains("Yang et al., SC'24; Zeus #181")
            && line.ends_with("The counter is used."),
        "{line}"
    );
    // The counter stays the figure: the rows average 250 W, never the readings' 225 W. (A
    // single row's power is the counter's delta over the tick's own interval, and the two
    // clocks' reads differ by however late a busy machine runs the sampler: only the mean
    // decides.)
    let mean = watts.iter().sum::<f64>() / watts.len() as f64;
    assert!(
        watts.len() > 40 && (mean - 250.0).abs() < 1.0,
        "{mean}: {watts:?}"
    );
    // Agreeing readings: no flag.
    let (err, _) = counter_run(250_000).unwrap();
    assert!(!err.contains("energy counter and power readings"), "{err}");
}
