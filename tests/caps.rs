//! Power caps end to end, on the simulated GPUs (Zeus's measured A40 curves): the governor
//! changes caps, every change is logged in samples.csv, and the original caps come back at the
//! end, on SIGTERM and on a panic — read from the state file the simulated actuator rewrites
//! after every change, so what a dead process left behind is visible. Nothing here depends on
//! how fast the ticks come; which cap the governor chooses is decided on scripted time in
//! src/app/caps.rs.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// `record --headless` on two simulated A40s with the governor (η=1, short profile).
fn governed(dir: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = bin();
    c.arg("record");
    sim_governed(&mut c, &dir.join("caps.json"));
    c.arg("--out").arg(dir.join("r")).args(extra);
    c
}

/// Waits until the simulated caps are no longer all at 300 W.
fn wait_for_a_cap_change(state: &Path, child: &mut Child) {
    wait_while_running(child, 60, "the governor to change a cap", || {
        state.exists() && caps_in(state).iter().any(|&c| c < 300.0)
    });
}

/// What only a real process shows, and what holds however busy the machine: the governor ran,
/// its first change is logged on a row, and the caps are put back at the end and that is said.
/// Which cap it chooses depends on the ticks' timing; that is decided on scripted time in
/// src/app/caps.rs (`the_governor_profiles_decides_logs_every_change_and_restores`).
#[test]
fn the_governed_binary_logs_its_changes_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    // Until the governor has moved a cap (however long a busy machine makes that), then a
    // little longer so the change's row is written, then SIGTERM.
    let state = dir.path().join("caps.json");
    let mut child = governed(dir.path(), &["--duration", "60s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_cap_change(&state, &mut child);
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    // After the GPU groups: the cap changes, then the command's own share (none here: the
    // simulated GPUs' job is not a process of the watched command's), then its network.
    let gpu_end = h.iter().rposition(|c| c.starts_with("gpu")).unwrap();
    assert_eq!(
        h[gpu_end + 1..gpu_end + 4],
        ["cap_change", "process_cpu_w", "process_gpu_w"]
    );
    assert!(rows.iter().all(|r| r[col(&h, "process_gpu_w")].is_empty()));
    let change = col(&h, "cap_change");
    let first = rows
        .iter()
        .find(|r| !r[change].is_empty())
        .unwrap_or_else(|| panic!("no cap change logged: {err}"));
    // Profiling starts from the top, on both GPUs.
    assert_eq!(
        first[change],
        "governor gpu0 300->275 W; governor gpu1 300->275 W"
    );
    // Put back at the end, and said so.
    assert!(err.contains("caps put back: restore gpu0"), "{err}");
    assert_eq!(caps_in(&dir.path().join("caps.json")), [300.0, 300.0]);
}

#[test]
fn sigterm_puts_the_caps_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("caps.json");
    let mut child = governed(dir.path(), &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_a_cap_change(&state, &mut child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(caps_in(&state), [300.0, 300.0]);
}

#[test]
fn a_panic_puts_the_caps_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("caps.json");
    // The first change comes once the maximum cap's throughput is timed to ±2% (about 20 s
    // of the simulated job's steps, which follow the wall clock however busy the machine);
    // 45 s leaves room.
    let o = governed(dir.path(), &["--duration", "90s"])
        .env("CARBONTOP_TEST_PANIC_AFTER", "45.0")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("a deliberate panic"), "{err}");
    // The governor had moved the caps before the panic; unwinding put them back.
    let (h, rows) = read_csv(&dir.path().join("r/samples.csv"));
    let change = col(&h, "cap_change");
    assert!(
        rows.iter().any(|r| !r[change].is_empty()),
        "no change before the panic"
    );
    assert_eq!(caps_in(&state), [300.0, 300.0]);
}

#[test]
fn no_restore_leaves_the_caps() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough for the first change (about 20 s: the maximum cap timed to ±2%).
    let o = governed(dir.path(), &["--duration", "45s", "--no-restore"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("caps left as they are (--no-restore)"),
        "{err}"
    );
    assert!(
        caps_in(&dir.path().join("caps.json"))
            .iter()
            .all(|&c| c < 300.0)
    );
}

#[test]
fn without_gpus_the_governor_says_why_and_monitoring_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("record", &dir.path().join("r"))
        .args(["--no-gpu", "--governor", "carbon", "--duration", "1s"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("carbontop: governor: --no-gpu: GPUs are not watched"),
        "{err}"
    );
    let (_, rows) = read_csv(&dir.path().join("r/samples.csv"));
    assert!(rows.len() >= 5);
}
