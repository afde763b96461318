//! Communication carbon on a real network path: a veth pair into a network namespace the test
//! creates (not loopback), a sink server inside it, and `carbontop run` of a command that sends
//! 1 GB to a cluster (private) address and 100 MB to a public-looking one (from two children
//! it starts: the tree's new processes are found as their sockets appear), while another
//! process, not the command's, sends to the same server over the same interface all along.
//!
//! What must hold, whatever the machine's speed (nothing here is decided by wall-clock time):
//! - the command is charged its own bytes, to the byte, and none of the other process's;
//! - its bytes to the private address are cluster traffic costed on the port model, those to
//!   the public address are internet traffic costed on the internet model, apart;
//! - the port power charged never exceeds the model's bound for the link: the 10 GbE class (a
//!   veth reports 10000 Mb/s, or no speed on older kernels: then the 10 GbE class is assumed),
//!   7.5 W at line rate; so 1.1 GB costs at most 8.8e9 bits × 7.5 W / 10 Gb/s = 6.6 J, however
//!   fast the veth moved it;
//! - the machine's network power (the veth's counters, both processes) is bounded alike.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The port model's bound for one link of the assumed 10 GbE class (W at line rate).
const BOUND_W: f64 = 7.5;
const CLUSTER_BYTES: u64 = 1_000_000_000;
const INTERNET_BYTES: u64 = 100_000_000;

fn has(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The namespace, the veth pair and the processes in them, removed however the test ends.
struct Net {
    ns: String,
    host_if: String,
    procs: Vec<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A TCP sink on `addrs`, port 9000, inside the namespace; returns once it listens.
const SINK: &str = r#"
import socket, sys, threading
def sink(c):
    while c.recv(1 << 20):
        pass
    c.close()
def serve(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=sink, args=(c,), daemon=True).start()
for a in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, 9000))
    s.listen(16)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// Sends `n` bytes to `addr`:9000 in 1 MB writes, pausing `pause` seconds after each; then,
/// if given a file, holds the connection open until that file exists; then closes. Says
/// `ready` once connected.
const SEND: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 9000))
print("ready", flush=True)
n = int(sys.argv[2]); b = b"x" * 1000000
pause = float(sys.argv[3])
while n > 0:
    k = min(n, len(b)); s.sendall(b[:k]); n -= k
    if pause: time.sleep(pause)
if len(sys.argv) > 4:
    while not os.path.exists(sys.argv[4]): time.sleep(0.01)
s.close()
"#;

/// The watched run, killed if the test fails before it ends.
struct Run(Option<Child>);

impl Run {
    fn wait(&mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    fn exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the run's samples.csv shows at least `want` in `column` (a guard of two minutes
/// against a hang; the result never depends on how long it takes).
fn wait_for_bytes(samples: &std::path::Path, column: &str, want: u64, run: &mut Run) {
    let start = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(samples) {
            let mut lines = text.lines();
            let head: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
            if let Some(c) = head.iter().position(|h| *h == column) {
                // A row caught mid-write reads short: never more than what was written.
                let seen = lines
                    .filter_map(|l| l.split(',').nth(c)?.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0);
                if seen >= want {
                    return;
                }
            }
        }
        assert!(
            !run.exited(),
            "the run ended before {column} reached {want}"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "{column} never reached {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn wait_ready(c: &mut Child) {
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
}

#[test]
fn the_commands_own_traffic_is_charged_by_where_it_goes_and_bounded_by_the_ports() {
    if !need("root (network namespaces)", is_root())
        || !need("iproute2's `ip`", has("ip", "-V"))
        || !need("python3", has("python3", "-V"))
    {
        return;
    }
    let id = std::process::id();
    let (a, b) = (200 + id % 50, (id / 50) % 250);
    let mut net = Net {
        ns: format!("ctcomms{id}"),
        host_if: format!("ctc{}h", id % 100_000),
        procs: Vec::new(),
    };
    let peer_if = format!("ctc{}p", id % 100_000);
    let (host, cluster) = (format!("10.{a}.{b}.1"), format!("10.{a}.{b}.2"));
    // 11.0.0.0/8 is public address space: traffic to it is the internet's by its address,
    // though here it never leaves the machine.
    let (host_pub, public) = (format!("11.{a}.{b}.1"), format!("11.{a}.{b}.2"));
    ip(&["netns", "add", &net.ns]);
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &peer_if,
    ]);
    ip(&["link", "set", &peer_if, "netns", &net.ns]);
    ip(&["addr", "add", &format!("{host}/30"), "dev", &net.host_if]);
    ip(&[
        "addr",
        "add",
        &format!("{host_pub}/30"),
        "dev",
        &net.host_if,
    ]);
    ip(&["link", "set", &net.host_if, "up"]);
    let inside = |args: &[&str]| {
        let mut v = vec!["netns", "exec", &net.ns, "ip"];
        v.extend(args);
        ip(&v);
    };
    inside(&["addr", "add", &format!("{cluster}/30"), "dev", &peer_if]);
    inside(&["addr", "add", &format!("{public}/30"), "dev", &peer_if]);
    inside(&["link", "set", &peer_if, "up"]);
    inside(&["link", "set", "lo", "up"]);

    let mut sink = Command::new("ip")
        .args(["netns", "exec", &net.ns, "python3", "-c", SINK])
        .args([&cluster, &public])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut sink);
    net.procs.push(sink);
    // Another process, not the command's, sends to the same server all along: 1 MB every
    // 10 ms until the test ends.
    let mut other = Command::new("python3")
        .args(["-c", SEND, &cluster, "1000000000000", "0.01"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut other);
    net.procs.push(other);

    // The command: two children in turn, each sending then holding its connection open
    // until the test has seen its bytes in samples.csv (a connection opened and closed within
    // one tick, never seen open in a dump, cannot be attributed: its bytes stay the
    // machine's), then closing.
    let dir = tempfile::tempdir().unwrap();
    let release = |k: usize| dir.path().join(format!("release{k}"));
    let script = format!(
        "import subprocess, sys\n\
         for a, n, r in (({cluster:?}, {CLUSTER_BYTES}, {r0:?}), \
         ({public:?}, {INTERNET_BYTES}, {r1:?})):\n\
         \x20   subprocess.run([sys.executable, '-c', {SEND:?}, a, str(n), '0', r], check=True, \
         stdout=subprocess.DEVNULL)\n",
        r0 = release(0).display().to_string(),
        r1 = release(1).display().to_string(),
    );
    let out = dir.path().join("run");
    let child = bin()
        .args(["run", "--headless", "--quiet", "--interval", "100ms"])
        .args(["--net-iface", &net.host_if, "--out"])
        .arg(&out)
        .args(["--", "python3", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = Run(Some(child));
    for (k, column, want) in [
        (0, "net_cmd_cluster_tx_bytes", CLUSTER_BYTES),
        (1, "net_cmd_internet_tx_bytes", INTERNET_BYTES),
    ] {
        wait_for_bytes(&out.join("samples.csv"), column, want, &mut run);
        std::fs::write(release(k), "").unwrap();
    }
    let o = run.wait();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");

    let (h, rows) = read_csv(&out.join("samples.csv"));
    let last = rows.last().unwrap();
    let cell = |r: &[String], c: &str| r[col(&h, c)].clone();
    let n = |c: &str| num(&cell(last, c));
    // To the byte the command's own, by where they went: its TCP payload acknowledged (the
    // kernel's count includes the SYN and the FIN, one each per connection) and none of the
    // other process's 300 MB, though it crossed the same interface at the same time.
    let cluster_tx = n("net_cmd_cluster_tx_bytes");
    let internet_tx = n("net_cmd_internet_tx_bytes");
    assert!(
        (CLUSTER_BYTES as f64..=CLUSTER_BYTES as f64 + 2.0).contains(&cluster_tx),
        "cluster {cluster_tx}\n{err}"
    );
    assert!(
        (INTERNET_BYTES as f64..=INTERNET_BYTES as f64 + 2.0).contains(&internet_tx),
        "internet {internet_tx}\n{err}"
    );
    // The machine's counters on that interface saw both senders (the other's megabytes too).
    assert!(
        n("net_tx_bytes") > cluster_tx + internet_tx + 1e6,
        "the other process sent nothing during the run?"
    );

    // The port model's bound, interval by interval, for the command and the machine.
    let mut port_j = 0.0;
    for pair in rows.windows(2) {
        let dt = num(&cell(&pair[1], "elapsed_s")) - num(&cell(&pair[0], "elapsed_s"));
        for c in ["net_cmd_power_w", "net_power_w"] {
            let w = cell(&pair[1], c);
            if !w.is_empty() {
                assert!(num(&w) <= BOUND_W + 1e-9, "{c} {w} W > {BOUND_W} W");
                if c == "net_cmd_power_w" {
                    port_j += num(&w) * dt;
                }
            }
        }
    }
    let bits = ((CLUSTER_BYTES + INTERNET_BYTES) * 8) as f64;
    assert!(port_j > 0.0, "the command's traffic costs some port energy");
    assert!(
        port_j <= bits * BOUND_W / 10e9 * 1.000_001,
        "{port_j} J for {bits} bits"
    );
    // The internet path: 100 MB at the default 0.00265 kWh/GB, apart from the machine's
    // energy (energy_kwh is the machine's: its CPU, memory and ports, never the path's).
    let path_kwh = n("net_internet_kwh");
    let internet = internet_tx + n("net_cmd_internet_rx_bytes");
    assert!(
        close(path_kwh, internet / 1e9 * 0.00265, 1e-9),
        "{path_kwh}"
    );
    assert!(n("net_internet_co2e_g") > 0.0);

    // The summary says it, and report --json of the recording says the same.
    assert!(err.contains("↓ 1.00 GB ↑, internet"), "{err}");
    assert!(err.contains("along the internet path"), "{err}");
    let (v, _) = report_json(&out.join("samples.csv"));
    let c = &v["runs"][0]["command_network"];
    assert_eq!(c["cluster_tx_bytes"].as_f64(), Some(cluster_tx));
    assert_eq!(c["internet_tx_bytes"].as_f64(), Some(internet_tx));
    assert!(close(
        c["internet_path_energy_kwh"].as_f64().unwrap(),
        path_kwh,
        1e-9
    ));
    let band = &c["internet_path_co2e"];
    assert!(band["low_g"].as_f64() < band["g"].as_f64());
    assert!(band["g"].as_f64() < band["high_g"].as_f64());
}
