//! Helpers shared by the end-to-end test binaries.
#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

pub mod fake_api;
pub mod fake_nvml;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_carbontop"));
    // Never pick up a developer's own config file.
    c.env("XDG_CONFIG_HOME", "/nonexistent-carbontop-test")
        .env_remove("CARBONTOP_CONFIG")
        .env_remove("CARBONTOP_SYSFS_ROOT")
        .env_remove("CARBONTOP_NVML_LIB")
        .env_remove("CARBONTOP_CAPD_SOCKET")
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

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// A `VmHWM:`/`Threads:`-style field of /proc/PID/status (kB for memory), while it runs.
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The memory bound of issue 20: no input takes carbontop past this peak (VmHWM).
pub const PEAK_BOUND_KIB: u64 = 32 << 10;

/// Runs `c` to its end with its output captured, reading its peak resident memory (VmHWM,
/// KiB) every few milliseconds; the output and the highest peak read. A peak only grows, so
/// the last read before the process exits holds all of it but its last few milliseconds:
/// a reproduction that reads 100 MB is caught well before that.
pub fn run_peak(c: &mut Command) -> (Output, u64) {
    use std::io::Read;
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = proc_status(pid, "VmHWM") {
            peak = peak.max(kib);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let o = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (o, peak)
}

/// A file of `len` bytes without a newline (sparse: zeros, no disk used).
pub fn endless_line(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve --replay FILE --speed max` on a free loopback port: the agent and its address.
pub fn agent(file: &str, node: &str) -> (Agent, String) {
    let c = bin()
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
    let (agent, addr, _) = adopt_agent(c);
    (agent, addr)
}

/// Takes over an agent spawned with a piped stderr: reads its first line (`serving /metrics on
/// http://ADDR/metrics…`) and keeps reading the rest, so it never writes into a closed pipe.
/// The agent, its address, and the rest of its stderr once it has ended.
pub fn adopt_agent(mut c: Child) -> (Agent, String, std::sync::mpsc::Receiver<String>) {
    let mut line = String::new();
    let mut err = BufReader::new(c.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let first = line.clone();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        let _ = tx.send(first + &rest);
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Agent(c), addr, rx)
}

/// `run --headless --interval 100ms --grid-poll 1s --grid-url URL --out OUT`: a run that asks a
/// (fake) provider every second; the caller adds the provider, the zone and `-- CMD`.
pub fn grid_run(c: &mut Command, url: &str, out: &Path) {
    c.args([
        "run",
        "--headless",
        "--interval",
        "100ms",
        "--grid-poll",
        "1s",
    ])
    .args(["--grid-url", url, "--out"])
    .arg(out);
}

/// The caps the simulated GPUs' state file holds now (W).
pub fn caps_in(state: &Path) -> Vec<f64> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    v["caps_w"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Two simulated A40s (Zeus's curves) whose carbon governor (η=1, 0.2 s profile) moves the
/// caps at once, ticking every 100 ms, the caps in `state`.
pub fn sim_governed(c: &mut Command, state: &Path) {
    c.args([
        "--headless",
        "--quiet",
        "--interval",
        "100ms",
        "--simulate-gpus",
        "2",
        "--governor",
        "carbon",
        "--eta",
        "1",
        "--governor-profile",
        "0.2s",
        "--sim-state",
    ])
    .arg(state);
}

/// `run` on a fake sysfs with one RAPL package whose counter wraps at `max_uj`
/// (`max_energy_range_uj`), starts at `start` µJ and is moved by the child to each of `moves`
/// in turn, 0.35 s apart (atomic renames, so a tick never reads half a file). The run's output
/// and samples.csv.
///
/// The Ledger tells a wrap from a reset by the power the wrap would imply over the tick's Δt,
/// and a busy machine stretches or squeezes Δt: choose `max_uj` so the verdict holds for any
/// Δt a tick can have (a wrap of at most `max_uj` µJ is plausible for Δt ≥ max_uj / 5e9 s).
pub fn rapl_run(
    dir: &Path,
    max_uj: u64,
    start: u64,
    moves: [u64; 2],
) -> (Output, (Vec<String>, Vec<Vec<String>>)) {
    let root = dir.join("sysfs");
    let zone = root.join("class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    let src = fixture("sysfs/rapl-wrap/class/powercap/intel-rapl:0");
    std::fs::copy(src.join("name"), zone.join("name")).unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), format!("{max_uj}\n")).unwrap();
    let f = zone.join("energy_uj");
    std::fs::write(&f, format!("{start}\n")).unwrap();
    let script = format!(
        "sleep 0.35; echo {} > {f}.tmp && mv {f}.tmp {f}; sleep 0.35; \
         echo {} > {f}.tmp && mv {f}.tmp {f}; sleep 0.35",
        moves[0],
        moves[1],
        f = f.display()
    );
    let out = dir.join("out");
    let o = run_on_sysfs(&root, &out, &script);
    let csv = if out.join("samples.csv").exists() {
        read_csv(&out.join("samples.csv"))
    } else {
        (vec![], vec![])
    };
    (o, csv)
}

/// CPU energy (J) in a samples.csv: Σ cpu_power_w × Δelapsed_s (each power is the average over
/// the interval its row closes); no row's power is negative.
pub fn cpu_joules(h: &[String], rows: &[Vec<String>]) -> f64 {
    let (cpu, el) = (col(h, "cpu_power_w"), col(h, "elapsed_s"));
    let mut joules = 0.0;
    for k in 1..rows.len() {
        if !rows[k][cpu].is_empty() {
            assert!(num(&rows[k][cpu]) >= 0.0, "{:?}", rows[k]);
            joules += num(&rows[k][cpu]) * (num(&rows[k][el]) - num(&rows[k - 1][el]));
        }
    }
    joules
}

// /metrics over plain HTTP/1.1 on loopback, parsed as Prometheus text.

pub fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, "")
}

/// `METHOD path` with `body` (none when empty): the status code and the body of the answer.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{length}Connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The agent's metrics once it has played its whole recording (`rows` ticks).
pub fn metrics_when_done(addr: &str, rows: usize) -> prometheus_parse::Scrape {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let done = scrape.samples.iter().any(|s| {
            s.metric == "carbontop_samples_total"
                && matches!(s.value, prometheus_parse::Value::Counter(v) if v as usize == rows)
        });
        if done {
            return scrape;
        }
        assert!(
            std::time::Instant::now() < end,
            "agent at {addr} never finished its replay"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn value(s: &prometheus_parse::Scrape, metric: &str) -> f64 {
    s.samples
        .iter()
        .find(|x| x.metric == metric)
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("no {metric}"))
}

/// Runs `c`, which must exit 0 (else the failure shows its stderr), and parses its stdout as
/// JSON: `json_of(bin().args(["zones", "FR", "--json"]))`.
pub fn json_of(c: &mut Command) -> serde_json::Value {
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{c:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        let out = String::from_utf8_lossy(&o.stdout);
        panic!("{c:?}: stdout is not JSON ({e}): {out}")
    })
}

/// `report FILE --json`: must read the file, whatever happened to its writer.
pub fn report_json(path: &Path) -> (serde_json::Value, String) {
    let o = bin()
        .arg("report")
        .arg(path)
        .arg("--json")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "report {}: {err}", path.display());
    (serde_json::from_slice(&o.stdout).unwrap(), err)
}

/// `watch --headless --agent …` for `secs`: its stdout and stderr (it must exit 0).
pub fn aggregate(addrs: &[&str], secs: &str) -> (String, String) {
    let mut c = bin();
    c.args([
        "watch",
        "--headless",
        "--interval",
        "200ms",
        "--duration",
        secs,
    ]);
    for a in addrs {
        c.args(["--agent", a]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
}

/// The number after `k=` in a `key=value …` line.
pub fn field(line: &str, k: &str) -> f64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{k}=")))
        .map(num)
        .unwrap_or_else(|| panic!("no {k} in {line}"))
}

/// Whether a test that needs something outside the project (a system package, root, a Python
/// package) can run: true when `have`; else it says why in one line and the test skips, unless
/// `CI` or `CARBONTOP_CI_STRICT` is set (`.ci/run` sets the latter; see `fake_nvml::strict`),
/// where a skip is a failure: CI never passes by skipping.
/// Whether this test runs as root (the real uid, from /proc).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// A port free now on 127.0.0.1 (the kernel's choice; released for a daemon to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn need(what: &str, have: bool) -> bool {
    if have {
        return true;
    }
    if fake_nvml::strict() {
        panic!("CI or CARBONTOP_CI_STRICT is set and this test needs {what}");
    }
    eprintln!("skipped: needs {what}");
    false
}

/// Polls `done` every 20 ms for up to `secs` seconds while `child` (carbontop) runs: a test's
/// wait for what only a real process shows. Fails if `child` ends first or time runs out.
pub fn wait_while_running(
    child: &mut Child,
    secs: u64,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if done() {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "carbontop ended before {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// `carbontop run --headless` at 100 ms on the fake sysfs tree `root`, writing to `out`, around
/// `sh -c script` (a script that moves the tree's counters while it runs).
pub fn run_on_sysfs(root: &Path, out: &Path, script: &str) -> Output {
    bin()
        .args(["run", "--headless", "--interval", "100ms", "--sysfs-root"])
        .arg(root)
        .arg("--out")
        .arg(out)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap()
}
