//! The cost of measuring, as only the running binary shows it: `record --headless` at 1 s
//! opens no file more than once per tick, and only a handful of files each tick (DESIGN.md §8:
//! "each counter file read once per tick"). Seen through strace; skipped where it is missing.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Command;

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Start-up opens a file may add to its once-per-tick count (the probes read /proc/stat,
/// /proc/cpuinfo and a few sysfs facts while choosing the sources).
const STARTUP_OPENS: usize = 5;
/// The most files opened on every tick: /proc/stat (the CPU estimate) and, where the platform
/// has them, RAPL's counters; /proc/net/dev is kept open and costs no open at all.
const PER_TICK_FILES: usize = 4;

#[test]
fn record_opens_each_counter_file_at_most_once_per_tick() {
    if !need("strace (apt-get install strace)", have_strace()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let out = dir.path().join("out");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,open", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_carbontop"))
        .args([
            "record",
            "--headless",
            "--quiet",
            "--interval",
            "1s",
            "--duration",
            "6s",
            "--intensity",
            "300",
            "--out",
        ])
        .arg(&out)
        .env("XDG_CONFIG_HOME", "/nonexistent-carbontop-test")
        .env_remove("CARBONTOP_CONFIG")
        .env_remove("CARBONTOP_SYSFS_ROOT")
        .env_remove("CARBONTOP_NVML_LIB")
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    if !o.status.success() && text.contains("PTRACE") {
        // strace present but not allowed to trace here (a container without CAP_SYS_PTRACE).
        need("ptrace permission for strace", false);
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, rows) = read_csv(&out.join("samples.csv"));
    assert!(rows.len() >= 5, "{} rows", rows.len());
    let mut opens: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        if let Some(path) = line.split('"').nth(1) {
            *opens.entry(path.to_owned()).or_default() += 1;
        }
    }
    let ticks = rows.len();
    for (path, n) in &opens {
        assert!(
            *n <= ticks + STARTUP_OPENS,
            "{path} opened {n} times in {ticks} ticks"
        );
    }
    let mut per_tick: Vec<&String> = opens
        .iter()
        .filter(|(_, n)| **n + 1 >= ticks)
        .map(|(p, _)| p)
        .collect();
    per_tick.sort();
    assert!(
        per_tick.len() <= PER_TICK_FILES,
        "{} files opened on every tick: {per_tick:?}",
        per_tick.len()
    );
}
