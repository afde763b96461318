//! `carbontop capd` through the fake NVML (tests/fake_nvml): real processes on a temporary
//! socket. capd sets caps only within the constraints, only on the caller's GPUs, only for
//! its group; it puts back what a client set when the client goes — including a
//! `carbontop run` killed with SIGKILL — and everything when it is stopped. The fake's shared
//! state file shows what capd did (every set names the process that made it).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::fake_nvml::FakeNvml;
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Two 100–300 W GPUs whose caps stand at 280 W (the default is 300 W, so putting a cap back
/// cannot be mistaken for resetting it to the default).
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

const GPU0: &str = "GPU-00000000-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-00000000-0000-4000-8000-000000000001";

/// A capd started by the test, killed when dropped.
struct Capd {
    child: Child,
    sock: PathBuf,
    /// Its stderr (journald's view).
    err: PathBuf,
    /// Its --log file.
    log: PathBuf,
}

impl Capd {
    fn start(f: &FakeNvml, dir: &Path, extra: &[&str]) -> Self {
        let sock = dir.join("capd.sock");
        let err = dir.join("capd.stderr");
        let log = dir.join("capd.log");
        let mut c = bin();
        f.apply(&mut c);
        let mut child = c
            .args(["capd", "--socket"])
            .arg(&sock)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        wait_while_running(&mut child, 30, "capd's socket", || sock.exists());
        Self {
            child,
            sock,
            err,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Capd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw protocol client in this process (its pid, uid and cgroup are the caller's).
struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    /// Connects; the hello.
    fn connect(sock: &Path) -> (Self, serde_json::Value) {
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Self {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        let hello = c.reply();
        (c, hello)
    }

    fn reply(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or(serde_json::Value::Null)
    }

    fn ask(&mut self, line: &str) -> serde_json::Value {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.reply()
    }

    fn set(&mut self, gpu: &str, watts: f64) -> serde_json::Value {
        self.ask(&format!(r#"{{"op":"set","gpu":"{gpu}","watts":{watts}}}"#))
    }
}

/// Polls `done` every 20 ms for up to `secs` s.
fn poll(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn error(v: &serde_json::Value) -> String {
    v["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_cap_within_the_constraints_is_set_and_put_back_when_the_client_goes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(&capd.sock).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o777,
            0o660,
            "the socket's default mode"
        );
    }
    let (mut c, hello) = Client::connect(&capd.sock);
    assert_eq!(hello["ok"], true, "{hello}");
    assert_eq!(
        hello["pid"],
        std::process::id(),
        "SO_PEERCRED's pid: {hello}"
    );
    let l = c.ask(&format!(r#"{{"op":"limits","gpu":"{GPU1}"}}"#));
    assert_eq!(
        (&l["min_w"], &l["max_w"], &l["default_w"], &l["current_w"]),
        (&100.0.into(), &300.0.into(), &300.0.into(), &280.0.into()),
        "{l}"
    );
    let r = c.set(GPU1, 200.0);
    assert_eq!(
        (&r["old_w"], &r["new_w"]),
        (&280.0.into(), &200.0.into()),
        "{r}"
    );
    assert_eq!(f.caps_mw(), [280_000, 200_000]);
    // Outside the constraints: refused, nothing set.
    let r = c.set(GPU0, 301.0);
    assert_eq!(
        error(&r),
        format!("301 W is outside {GPU0}'s constraints, 100–300 W")
    );
    let r = c.set(GPU0, 99.0);
    assert!(error(&r).contains("outside"), "{r}");
    // A request that is not one: an answer, and the connection stays.
    assert!(
        error(&c.ask(r#"{"op":"set","gpu":"GPU-x","watts":200,"pid":1}"#))
            .contains("unknown field")
    );
    assert_eq!(f.caps_mw(), [280_000, 200_000]);
    let capd_pid = capd.child.id();
    assert!(f.sets().iter().all(|s| s.pid == capd_pid), "{:?}", f.sets());
    // A line over 4 KiB: one error line, and the connection closes — and with it the hold.
    let r = c.ask(&"x".repeat(5000));
    assert_eq!(error(&r), "request longer than 4096 bytes: closed");
    let me = std::process::id();
    // The log line follows the set: wait for both.
    poll(30, "the cap put back at the client's end", || {
        f.caps_mw() == [280_000, 280_000] && capd.log().contains("disconnect")
    });
    let log = capd.log();
    assert!(
        log.contains(&format!(
            "set uid=0 pid={me} gpu={GPU1} old_w=280 new_w=200"
        )) && log.contains(&format!(
            "disconnect uid=0 pid={me} gpu={GPU1} old_w=200 new_w=280"
        )),
        "{log}"
    );
    assert!(
        std::fs::read_to_string(&capd.err)
            .unwrap()
            .contains("new_w=200")
    );

    // `keep` (--no-restore): the cap stays after the client goes.
    let (mut c, _) = Client::connect(&capd.sock);
    assert_eq!(c.ask(r#"{"op":"keep"}"#)["ok"], true);
    assert_eq!(c.set(GPU0, 150.0)["ok"], true);
    drop(c);
    poll(30, "capd to see the kept client go", || {
        capd.log().contains("keep uid=0")
    });
    assert_eq!(f.caps_mw(), [150_000, 280_000]);
}

/// `run` with the carbon governor (η=1, 0.2 s profile, which moves the caps at once) through
/// capd at `sock`.
fn governed_via(f: &FakeNvml, dir: &Path, sock: &Path, cmd: &[&str]) -> Command {
    governed_with(f, dir, sock, &[], cmd)
}

/// [`governed_via`] with `extra` options.
fn governed_with(f: &FakeNvml, dir: &Path, sock: &Path, extra: &[&str], cmd: &[&str]) -> Command {
    let mut c = quick("run", &dir.join("r"));
    f.apply(&mut c);
    c.args(extra);
    c.env("CARBONTOP_CAPD_SOCKET", sock)
        .args([
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

#[test]
fn kill_9_of_a_run_that_set_caps_through_capd_leaves_no_cap_changed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
    let err = dir.path().join("run.stderr");
    let mut run = governed_via(&f, dir.path(), &capd.sock, &["sleep", "60"])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let run_pid = run.id();
    wait_while_running(
        &mut run,
        60,
        "the governor's first cap through capd",
        || f.caps_mw().iter().any(|&c| c != 280_000),
    );
    kill(Pid::from_raw(run_pid as i32), Signal::SIGKILL).unwrap();
    let status = run.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // Every GPU the run set is put back, and logged (the line follows the set).
    let gpus_in = |log: &str, what: &str| {
        let mut g: Vec<String> = log
            .lines()
            .filter(|l| l.contains(&format!("{what} uid=0 pid={run_pid} gpu=")))
            .filter_map(|l| l.split("gpu=").nth(1)?.split(' ').next().map(str::to_owned))
            .collect();
        g.sort();
        g.dedup();
        g
    };
    poll(30, "capd to put the caps back", || {
        let log = capd.log();
        f.caps_mw() == [280_000, 280_000] && gpus_in(&log, "disconnect") == gpus_in(&log, "set")
    });
    // Every set was capd's: the run never touched NVML's caps itself.
    let sets = f.sets();
    let capd_pid = capd.child.id();
    assert!(
        sets.len() >= 2 && sets.iter().all(|s| s.pid == capd_pid),
        "{sets:?}"
    );
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(
        said.contains(&format!("caps via capd at {}", capd.sock.display())),
        "{said}"
    );
    let log = capd.log();
    assert!(
        log.contains(&format!("set uid=0 pid={run_pid} gpu="))
            && log.contains(&format!("disconnect uid=0 pid={run_pid} gpu="))
            && log.contains("new_w=280"),
        "{log}"
    );
}

#[test]
fn a_run_through_capd_ends_with_its_caps_put_back_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
    let flag = dir.path().join("done");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", flag.display());
    let mut run = governed_via(&f, dir.path(), &capd.sock, &["sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_while_running(&mut run, 60, "a cap through capd", || {
        f.caps_mw().iter().any(|&c| c != 280_000)
    });
    std::fs::write(&flag, "").unwrap();
    let o = run.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // The Session's own restore went through capd (a `restore`), before the connection ended.
    assert!(err.contains("caps put back: restore gpu0"), "{err}");
    assert_eq!(f.caps_mw(), [280_000, 280_000]);
    assert!(capd.log().contains("restore uid=0"), "{}", capd.log());
}

#[test]
fn a_gpu_not_the_callers_is_refused_and_one_running_its_process_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A process of this test's uid, in its cgroup, runs on GPU 1 only.
    let job = Agent::adopt(Command::new("sleep").arg("120").spawn().unwrap());
    let scenario = format!("{CAPS}[gpu.1]\nprocs = \"{}:1024:50\"\n", job.id());
    let Some(f) = FakeNvml::new(dir.path(), &scenario) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &[]);
    let (mut c, _) = Client::connect(&capd.sock);
    let r = c.set(GPU0, 200.0);
    let e = error(&r);
    assert!(
        e.starts_with(&format!(
            "{GPU0} is not held by your job: no compute process of uid 0 in your cgroup runs on it"
        )) && e.contains("--any-gpu"),
        "{r}"
    );
    let r = c.set(GPU1, 200.0);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(f.caps_mw(), [280_000, 200_000]);
    assert!(capd.log().contains(&format!(
        "refused uid=0 pid={} gpu={GPU0}",
        std::process::id()
    )));
    drop(job);
}

#[test]
fn stopping_capd_puts_every_cap_back() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
            return;
        };
        let mut capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
        let (mut a, _) = Client::connect(&capd.sock);
        let (mut b, _) = Client::connect(&capd.sock);
        assert_eq!(a.set(GPU0, 150.0)["ok"], true);
        assert_eq!(b.set(GPU1, 250.0)["ok"], true);
        // Two clients on one GPU: the latest request is in force.
        assert_eq!(b.set(GPU0, 120.0)["ok"], true);
        assert_eq!(f.caps_mw(), [120_000, 250_000]);
        kill(Pid::from_raw(capd.child.id() as i32), sig).unwrap();
        let status = capd.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{sig}");
        assert_eq!(f.caps_mw(), [280_000, 280_000], "{sig}");
        assert!(!capd.sock.exists(), "{sig}: the socket is removed");
        assert!(capd.log().contains("stop uid=0"), "{sig}: {}", capd.log());
        // The clients see the end.
        assert!(a.reply().is_null(), "{sig}: the connection ends");
    }
}

#[test]
fn two_clients_on_one_gpu_the_original_comes_back_when_the_last_goes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
    let (mut a, _) = Client::connect(&capd.sock);
    let (mut b, _) = Client::connect(&capd.sock);
    assert_eq!(a.set(GPU0, 200.0)["ok"], true);
    assert_eq!(b.set(GPU0, 250.0)["ok"], true);
    drop(b);
    poll(30, "a's request back in force", || {
        f.caps_mw()[0] == 200_000
    });
    drop(a);
    poll(30, "the original back", || f.caps_mw()[0] == 280_000);
}

/// Run by [`a_user_outside_the_group_is_refused`] as another user: connects to
/// `CAPD_TEST_SOCKET`, asks to set a cap, and prints each reply line. Does nothing otherwise.
#[test]
fn as_a_client() {
    let Ok(sock) = std::env::var("CAPD_TEST_SOCKET") else {
        return;
    };
    let s = UnixStream::connect(&sock);
    let Ok(s) = s else {
        println!("CONNECT {}", s.unwrap_err());
        return;
    };
    let (mut c, hello) = (
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        },
        serde_json::Value::Null,
    );
    let hello = if hello.is_null() { c.reply() } else { hello };
    println!("REPLY {hello}");
    if hello["ok"] == true {
        println!("REPLY {}", c.set(GPU0, 200.0));
    }
}

/// Runs [`as_a_client`] as uid 65534 with primary group `gid`; its replies.
fn client_as(sock: &Path, gid: u32) -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let o = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "as_a_client",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CAPD_TEST_SOCKET", sock)
        .uid(65534)
        .gid(gid)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        // The harness prints "test as_a_client ... " before the first line.
        .filter_map(|l| {
            let at = l.find("REPLY ").or_else(|| l.find("CONNECT "))?;
            Some(l[at..].to_owned())
        })
        .collect()
}

#[test]
fn a_user_outside_the_group_is_refused() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !need("root (to run a client as another user)", root) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Group `root` (gid 0), and a socket anyone may open: capd's own check decides.
    let capd = Capd::start(
        &f,
        dir.path(),
        &["--group", "root", "--socket-mode", "0666"],
    );
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = std::fs::metadata(&capd.sock).unwrap();
        assert_eq!((m.permissions().mode() & 0o777, m.gid()), (0o666, 0));
    }
    let out = client_as(&capd.sock, 65534);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].contains("is not in group root (gid 0), which may use capd"),
        "{out:?}"
    );
    assert_eq!(f.caps_mw(), [280_000, 280_000]);
    // The same user with the group as its primary one is admitted (and, with no process on
    // the GPU and no --any-gpu, refused the GPU).
    let out = client_as(&capd.sock, 0);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains(r#""uid":65534"#), "{out:?}");
    assert!(
        out[1].contains("is not held by your job: no compute process of uid 65534"),
        "{out:?}"
    );
    assert_eq!(f.caps_mw(), [280_000, 280_000]);
    assert!(capd.log().contains("refused uid 65534"), "{}", capd.log());
}

#[test]
fn an_idle_connection_holding_no_cap_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu", "--idle-timeout", "1s"]);
    let (mut idle, _) = Client::connect(&capd.sock);
    let (mut holding, _) = Client::connect(&capd.sock);
    assert_eq!(holding.set(GPU0, 200.0)["ok"], true);
    // The idle one reads the end of its connection (after 1–2 s; 30 s allowed).
    assert!(idle.reply().is_null());
    // The one holding a cap is still served, and its cap still held.
    assert_eq!(
        holding.ask(&format!(r#"{{"op":"limits","gpu":"{GPU0}"}}"#))["current_w"],
        200.0
    );
    assert_eq!(f.caps_mw(), [200_000, 280_000]);
}

#[test]
fn clients_past_max_clients_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu", "--max-clients", "1"]);
    let (_first, hello) = Client::connect(&capd.sock);
    assert_eq!(hello["ok"], true);
    let (mut second, busy) = Client::connect(&capd.sock);
    assert_eq!(error(&busy), "capd is busy: 1 clients already");
    assert!(second.reply().is_null(), "and closed");
}

#[test]
fn a_run_with_no_restore_leaves_its_caps_through_capd() {
    let dir = tempfile::tempdir().unwrap();
    let Some(f) = FakeNvml::new(dir.path(), CAPS) else {
        return;
    };
    let capd = Capd::start(&f, dir.path(), &["--any-gpu"]);
    let flag = dir.path().join("done");
    let script = format!("while [ ! -e {} ]; do sleep 0.05; done", flag.display());
    let mut run = governed_with(
        &f,
        dir.path(),
        &capd.sock,
        &["--no-restore"],
        &["sh", "-c", &script],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_while_running(&mut run, 60, "a cap through capd", || {
        f.caps_mw().iter().any(|&c| c != 280_000)
    });
    std::fs::write(&flag, "").unwrap();
    let pid = run.id();
    let o = run.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    poll(30, "capd to see the run go", || {
        capd.log().contains(&format!("keep uid=0 pid={pid}"))
    });
    let left = f.caps_mw();
    assert!(left.iter().all(|&c| c != 280_000), "{left:?}");
    assert!(!capd.log().contains("disconnect"), "{}", capd.log());
}
