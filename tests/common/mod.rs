//! Helpers shared by the end-to-end test binaries.
#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

pub mod fake_api;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbontop"));
    // Never pick up a developer's own config file.
    c.env("XDG_CONFIG_HOME", "/nonexistent-carbontop-test")
        .env_remove("CARBONTOP_CONFIG")
        .env_remove("CARBONTOP_SYSFS_ROOT")
        .env_remove("ELECTRICITYMAPS_API_KEY")
        .env_remove("WATTTIME_USERNAME")
        .env_remove("WATTTIME_PASSWORD");
    c
}

/// `carbontop CMD --headless --quiet --interval 100ms --out DIR`: a fast, quiet measuring run.
pub fn quick(cmd: &str, dir: &Path) -> Command {
    let mut c = bin();
    c.args([cmd, "--headless", "--quiet", "--interval", "100ms", "--out"])
        .arg(dir);
    c
}

pub fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(p)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// samples.csv as (header, rows).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (h, rows)
}

pub fn col(h: &[String], name: &str) -> usize {
    h.iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

pub fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}

/// The one-line error contract: exit 2, a single `carbontop: …` line naming `what`.
pub fn assert_one_line_error(o: &Output, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line, got: {err}");
    assert!(lines[0].starts_with("carbontop: "), "{err}");
    assert!(lines[0].contains(what), "{what:?} not named in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An agent process, killed when the test ends however it ends.
pub struct Agent(Child);

impl Agent {
    /// Takes over a process started by the test itself.
    pub fn adopt(c: Child) -> Self {
        Agent(c)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve --replay FILE --speed max` on a free loopback port: the agent and its address.
pub fn agent(file: &str, node: &str) -> (Agent, String) {
    let mut c = bin()
        .args([
            "serve",
            "--quiet",
            "--speed",
            "max",
            "--listen",
            "127.0.0.1:0",
            "--node",
            node,
            "--replay",
        ])
        .arg(fixture(file))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut err = BufReader::new(c.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    // Keep reading, so the agent never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Agent(c), addr)
}
