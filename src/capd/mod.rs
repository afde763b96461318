//! `carbontop capd`: the small privileged helper that sets GPU power caps for users who are not
//! root, so the screen — which parses untrusted logs and talks to web APIs — never needs to be.
//!
//! It listens on a Unix socket (mode 0660, group `--group`), knows each caller by SO_PEERCRED
//! (pid, uid, gid: the kernel's word, not the caller's), admits root and members of the group
//! (`policy::admit`), and sets a cap only within the GPU's constraints and on a GPU the caller's
//! job holds (`policy::owns`). Every cap a client set goes back when its connection ends —
//! EOF, which is also what `kill -9` of the client gives — unless it asked `keep`, and every
//! one when capd stops (SIGTERM, SIGINT, SIGHUP). Two clients on one GPU: `holds`. Every change
//! is logged (time, uid, pid, GPU, old and new W, why) to stderr (journald) and `--log`.
//!
//! The protocol is in `proto`. Bounded: lines of 4 KiB, `--max-clients` connections (a thread
//! each), and a connection that holds no cap is closed after `--idle-timeout` without a request.

pub mod holds;
pub mod policy;
pub mod proto;

use crate::app::AppError;
use holds::{ClientId, Holds, Put};
use policy::{Caller, GpuFacts, Group, Roots};
use proto::{Line, Reply, Request};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where capd listens unless told otherwise (systemd's `RuntimeDirectory=carbontop`).
pub const DEFAULT_SOCKET: &str = "/run/carbontop/capd.sock";

/// `carbontop capd`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct CapdOpts {
    /// The Unix socket to listen on (its directory is created; a stale socket is replaced).
    #[arg(long, default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// The group whose members may use capd: the socket is chgrp'ed to it. Without it only
    /// root may (which is of little use).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// The socket's mode, octal. capd checks the group itself too, so a wider mode (0666)
    /// still admits only the group.
    #[arg(long, default_value = "0660", value_parser = parse_mode, value_name = "MODE")]
    pub socket_mode: u32,
    /// Also append every change to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Let every admitted caller cap every GPU (a single-user workstation). Otherwise a GPU
    /// must be the caller's job's: its cgroup's device list, or a compute process of the
    /// caller's uid in its cgroup.
    #[arg(long)]
    pub any_gpu: bool,
    /// At most N connections at once; more are refused with one line.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_clients: usize,
    /// Close a connection that holds no cap after this long without a request (carbontop
    /// connects again when it next needs capd).
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0660"))
}

/// A GPU's constraints and default (mW).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min_mw: u32,
    pub max_mw: u32,
    pub default_mw: u32,
}

/// The GPUs, by UUID: NVML in capd, a fake in the tests.
pub trait Gpus: Send {
    fn limits(&self, uuid: &str) -> Result<Limits, String>;
    fn current(&self, uuid: &str) -> Result<u32, String>;
    fn facts(&self, uuid: &str) -> Result<GpuFacts, String>;
    fn set(&mut self, uuid: &str, mw: u32) -> Result<(), String>;
}

/// The GPUs through NVML (the `CARBONTOP_NVML_LIB` library when set).
pub struct NvmlGpus(nvml_wrapper::Nvml);

impl NvmlGpus {
    pub fn open() -> Result<Self, String> {
        crate::source::gpu_nvml::init()
            .map(Self)
            .map_err(|e| crate::source::gpu_nvml::explain(&e))
    }

    fn device(&self, uuid: &str) -> Result<nvml_wrapper::Device<'_>, String> {
        if !uuid.starts_with("GPU-")
            || uuid.len() > 96
            || !uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "{uuid:?} is not a GPU UUID (GPU-…; caps are per GPU, not per MIG slice)"
            ));
        }
        self.0
            .device_by_uuid(uuid)
            .map_err(|e| format!("{uuid}: {e}"))
    }
}

impl Gpus for NvmlGpus {
    fn limits(&self, uuid: &str) -> Result<Limits, String> {
        let d = self.device(uuid)?;
        let c = d
            .power_management_limit_constraints()
            .map_err(|e| format!("{uuid}: no power-cap range: {e}"))?;
        let default_mw = d
            .power_management_limit_default()
            .map_err(|e| format!("{uuid}: {e}"))?;
        Ok(Limits {
            min_mw: c.min_limit,
            max_mw: c.max_limit,
            default_mw,
        })
    }

    fn current(&self, uuid: &str) -> Result<u32, String> {
        self.device(uuid)?
            .power_management_limit()
            .map_err(|e| format!("{uuid}: {e}"))
    }

    fn facts(&self, uuid: &str) -> Result<GpuFacts, String> {
        let d = self.device(uuid)?;
        Ok(GpuFacts {
            uuid: uuid.to_owned(),
            minor: d.minor_number().ok(),
            pids: d
                .running_compute_processes()
                .map(|ps| ps.iter().map(|p| p.pid).collect())
                .unwrap_or_default(),
        })
    }

    fn set(&mut self, uuid: &str, mw: u32) -> Result<(), String> {
        self.device(uuid)?
            .set_power_management_limit(mw)
            .map_err(|e| format!("{uuid}: NVML refused {} W: {e}", w(mw)))
    }
}

fn w(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

/// Where every change is said: stderr (journald under systemd) and `--log`.
pub struct Log {
    file: Option<std::fs::File>,
}

impl Log {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("--log {}: {e}", p.display()))?,
            ),
            None => None,
        };
        Ok(Self { file })
    }

    /// A log that writes nowhere but stderr.
    pub fn stderr() -> Self {
        Self { file: None }
    }

    fn say(&mut self, what: &str) {
        let line = format!(
            "{} carbontop capd: {what}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        crate::app::err_out(&line);
        if let Some(f) = &mut self.file {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn change(&mut self, why: &str, c: &Caller, gpu: &str, old_mw: Option<u32>, new_mw: u32) {
        let old = old_mw.map_or("?".into(), |m| format!("{}", w(m)));
        self.say(&format!(
            "{why} uid={} pid={} gpu={gpu} old_w={old} new_w={}",
            c.uid,
            c.pid,
            w(new_mw)
        ));
    }
}

#[derive(Debug, Clone, Copy)]
struct Client {
    caller: Caller,
    keep: bool,
}

/// The state every connection shares, behind one lock: requests are served one at a time.
pub struct Daemon {
    gpus: Box<dyn Gpus>,
    holds: Holds,
    clients: HashMap<ClientId, Client>,
    log: Log,
    any_gpu: bool,
    roots: Roots,
}

impl Daemon {
    pub fn new(gpus: Box<dyn Gpus>, log: Log, any_gpu: bool, roots: Roots) -> Self {
        Self {
            gpus,
            holds: Holds::default(),
            clients: HashMap::new(),
            log,
            any_gpu,
            roots,
        }
    }

    pub fn connect(&mut self, id: ClientId, caller: Caller) {
        self.clients.insert(
            id,
            Client {
                caller,
                keep: false,
            },
        );
    }

    /// Whether the client holds a cap (then it is never closed for being idle).
    pub fn holds_any(&self, id: ClientId) -> bool {
        self.holds.holds_any(id)
    }

    /// One request line from client `id`; the reply.
    pub fn handle(&mut self, id: ClientId, line: &[u8]) -> Reply {
        let Some(client) = self.clients.get(&id).copied() else {
            return Reply::err("not connected");
        };
        match proto::parse(line) {
            Err(e) => Reply::err(e),
            Ok(Request::Limits { gpu }) => self.limits(&gpu),
            Ok(Request::Set { gpu, watts }) => self.set(id, &client.caller, &gpu, watts),
            Ok(Request::Restore { gpu }) => {
                let put = self.holds.release(id, &gpu, false);
                self.apply(&client.caller, put.into_iter().collect(), "restore");
                match self.gpus.current(&gpu) {
                    Ok(mw) => Reply {
                        cap_w: Some(w(mw)),
                        ..Reply::ok()
                    },
                    Err(e) => Reply::err(e),
                }
            }
            Ok(Request::Keep {}) => {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.keep = true;
                }
                Reply::ok()
            }
        }
    }

    fn limits(&self, gpu: &str) -> Reply {
        match (self.gpus.limits(gpu), self.gpus.current(gpu)) {
            (Ok(l), Ok(cur)) => Reply {
                min_w: Some(w(l.min_mw)),
                max_w: Some(w(l.max_mw)),
                default_w: Some(w(l.default_mw)),
                current_w: Some(w(cur)),
                ..Reply::ok()
            },
            (Err(e), _) | (_, Err(e)) => Reply::err(e),
        }
    }

    fn set(&mut self, id: ClientId, caller: &Caller, gpu: &str, watts: f64) -> Reply {
        let l = match self.gpus.limits(gpu) {
            Ok(l) => l,
            Err(e) => return Reply::err(e),
        };
        let mw = (watts * 1000.0).round();
        if mw < f64::from(l.min_mw) || mw > f64::from(l.max_mw) {
            return Reply::err(format!(
                "{watts} W is outside {gpu}'s constraints, {}–{} W",
                w(l.min_mw),
                w(l.max_mw)
            ));
        }
        let mw = mw as u32;
        let owner = self
            .gpus
            .facts(gpu)
            .and_then(|f| policy::owns(caller, &f, self.any_gpu, &self.roots));
        if let Err(why) = owner {
            self.log.say(&format!(
                "refused uid={} pid={} gpu={gpu} new_w={}: {why}",
                caller.uid,
                caller.pid,
                w(mw)
            ));
            return Reply::err(why);
        }
        let old = match self.gpus.current(gpu) {
            Ok(o) => o,
            Err(e) => return Reply::err(e),
        };
        if let Err(e) = self.gpus.set(gpu, mw) {
            return Reply::err(e);
        }
        self.holds.set(id, gpu, old, mw);
        self.log.change("set", caller, gpu, Some(old), mw);
        Reply {
            old_w: Some(w(old)),
            new_w: Some(w(mw)),
            ..Reply::ok()
        }
    }

    fn apply(&mut self, caller: &Caller, puts: Vec<Put>, why: &str) {
        for p in puts {
            let old = self.gpus.current(&p.gpu).ok();
            if old == Some(p.mw) {
                continue;
            }
            match self.gpus.set(&p.gpu, p.mw) {
                Ok(()) => self.log.change(why, caller, &p.gpu, old, p.mw),
                Err(e) => self.log.say(&format!(
                    "{why} failed uid={} pid={} gpu={} new_w={}: {e}",
                    caller.uid,
                    caller.pid,
                    p.gpu,
                    w(p.mw)
                )),
            }
        }
    }

    /// Client `id` is gone (EOF, an error, or `kill -9`): its caps go back unless it kept them.
    pub fn leave(&mut self, id: ClientId) {
        let Some(c) = self.clients.remove(&id) else {
            return;
        };
        let held = self.holds.held_by(id);
        let puts = self.holds.leave(id, c.keep);
        if c.keep {
            for g in held {
                self.log.say(&format!(
                    "keep uid={} pid={} gpu={g}: left as it is (the client asked keep)",
                    c.caller.uid, c.caller.pid
                ));
            }
        }
        self.apply(&c.caller, puts, "disconnect");
    }

    /// capd stops: every client's caps go back (except those kept).
    pub fn stop(&mut self) {
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.clients.get(&id).copied() {
                let puts = self.holds.leave(id, c.keep);
                self.apply(&c.caller, puts, "stop");
            }
        }
        self.clients.clear();
    }
}

/// Locks the daemon; a thread that panicked while holding it leaves the state usable (the
/// caps must still come back).
fn lock(d: &Mutex<Daemon>) -> MutexGuard<'_, Daemon> {
    d.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `carbontop capd`: runs until SIGTERM, SIGINT or SIGHUP.
pub fn run(o: &CapdOpts) -> Result<i32, AppError> {
    let group = match &o.group {
        Some(name) => {
            let text = std::fs::read_to_string("/etc/group")
                .map_err(|e| AppError::Runtime(format!("/etc/group: {e}")))?;
            let gid = policy::gid_of(&text, name).ok_or_else(|| {
                AppError::Usage(format!(
                    "--group {name}: no such group (create it: groupadd --system {name})"
                ))
            })?;
            Some(Group {
                name: name.clone(),
                gid,
            })
        }
        None => None,
    };
    let gpus = NvmlGpus::open().map_err(|e| AppError::Runtime(format!("capd: {e}")))?;
    let mut log = Log::open(o.log.as_deref()).map_err(AppError::Usage)?;
    let listener =
        bind(&o.socket, group.as_ref().map(|g| g.gid), o.socket_mode).map_err(AppError::Runtime)?;
    log.say(&format!(
        "listening on {} (mode {:04o}, {}; {})",
        o.socket.display(),
        o.socket_mode,
        group
            .as_ref()
            .map_or("root only".into(), |g| format!("group {}", g.name)),
        if o.any_gpu {
            "--any-gpu: every GPU"
        } else {
            "GPUs of the caller's job"
        }
    ));
    let daemon = Arc::new(Mutex::new(Daemon::new(
        Box::new(gpus),
        log,
        o.any_gpu,
        Roots::default(),
    )));
    let d = daemon.clone();
    let path = o.socket.clone();
    crate::app::spawn_signal_thread(move |sig| {
        let mut d = lock(&d);
        d.log.say(&format!("signal {sig}: putting every cap back"));
        d.stop();
        let _ = std::fs::remove_file(&path);
        // Exits holding the lock: no request is served after the restore.
        std::process::exit(0)
    })?;
    accept(&listener, &daemon, group, o);
    Ok(0)
}

/// Creates the socket at `path`: its directory, a stale socket replaced (a live one or any
/// other file is an error), the group and mode.
fn bind(path: &Path, gid: Option<u32>, mode: u32) -> Result<UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let at = |e: std::io::Error| format!("capd socket {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(at)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "capd socket {}: another capd is listening there",
                    path.display()
                ));
            }
            std::fs::remove_file(path).map_err(at)?;
        }
        Ok(_) => {
            return Err(format!(
                "capd socket {}: exists and is not a socket (not removed)",
                path.display()
            ));
        }
        Err(_) => {}
    }
    // Bound and listening under a temporary name, given its group and mode, then renamed:
    // the path appears only when it accepts, and only with its final permissions.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let l = UnixListener::bind(&tmp).map_err(at)?;
    let ready = std::os::unix::fs::chown(&tmp, None, gid)
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = ready {
        let _ = std::fs::remove_file(&tmp);
        return Err(at(e));
    }
    Ok(l)
}

/// Who is at the other end, as the kernel says.
fn peer(s: &UnixStream) -> Option<Caller> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let c = getsockopt(s, PeerCredentials).ok()?;
    Some(Caller {
        pid: u32::try_from(c.pid()).ok()?,
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// Counts a connection's thread for `--max-clients` while it lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept(l: &UnixListener, daemon: &Arc<Mutex<Daemon>>, group: Option<Group>, o: &CapdOpts) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut next: ClientId = 0;
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        if live.fetch_add(1, Ordering::SeqCst) >= o.max_clients {
            live.fetch_sub(1, Ordering::SeqCst);
            let _ = s.write_all(
                Reply::err(format!("capd is busy: {} clients already", o.max_clients))
                    .line()
                    .as_bytes(),
            );
            continue;
        }
        let slot = Slot(live.clone());
        next += 1;
        let (id, d, g, idle) = (next, daemon.clone(), group.clone(), o.idle_timeout);
        let spawned = std::thread::Builder::new()
            .name(format!("capd-client-{id}"))
            .spawn(move || {
                let _slot = slot;
                serve(s, id, &d, g.as_ref(), idle);
            });
        if let Err(e) = spawned {
            lock(daemon)
                .log
                .say(&format!("cannot start a client thread: {e}"));
        }
    }
}

/// One connection: admit, hello, requests until EOF; then its caps go back.
fn serve(s: UnixStream, id: ClientId, d: &Mutex<Daemon>, group: Option<&Group>, idle: Duration) {
    let Ok(mut out) = s.try_clone() else { return };
    let Some(caller) = peer(&s) else {
        let _ = out.write_all(Reply::err("no peer credentials").line().as_bytes());
        return;
    };
    if let Err(why) = policy::admit(&caller, group, &Roots::default()) {
        lock(d).log.say(&format!("refused {why}"));
        let _ = out.write_all(Reply::err(why).line().as_bytes());
        return;
    }
    let hello = Reply {
        capd: Some(proto::VERSION),
        uid: Some(caller.uid),
        pid: Some(caller.pid),
        ..Reply::ok()
    };
    lock(d).connect(id, caller);
    // A read wakes at least every second to check the idle time.
    if out.write_all(hello.line().as_bytes()).is_ok()
        && s.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
    {
        requests(s, out, id, d, idle);
    }
    lock(d).leave(id);
}

/// Answers client `id`'s requests until it closes, sends a line too long, stays idle past
/// `idle` holding no cap, or cannot be written to.
fn requests(s: UnixStream, mut out: UnixStream, id: ClientId, d: &Mutex<Daemon>, idle: Duration) {
    let mut r = BufReader::with_capacity(proto::MAX_LINE + 1, s);
    let mut buf = Vec::new();
    let mut last = Instant::now();
    loop {
        let reply = match proto::read_line(&mut r, &mut buf, proto::MAX_LINE) {
            Ok(Line::Line) => {
                last = Instant::now();
                let rep = lock(d).handle(id, &buf);
                buf.clear();
                rep
            }
            Ok(Line::Eof) => return,
            Ok(Line::TooLong) => {
                let why = format!("request longer than {} bytes: closed", proto::MAX_LINE);
                let _ = out.write_all(Reply::err(why).line().as_bytes());
                return;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Closed without a word: a client that writes its next request now reads the
                // end of the connection, not a reply to something it did not ask.
                if last.elapsed() >= idle && !lock(d).holds_any(id) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        if out.write_all(reply.line().as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two GPUs of 100–300 W whose caps stand at 280 W.
    struct Fake(Arc<Mutex<HashMap<String, u32>>>);

    impl Gpus for Fake {
        fn limits(&self, uuid: &str) -> Result<Limits, String> {
            self.current(uuid).map(|_| Limits {
                min_mw: 100_000,
                max_mw: 300_000,
                default_mw: 300_000,
            })
        }
        fn current(&self, uuid: &str) -> Result<u32, String> {
            self.0
                .lock()
                .unwrap()
                .get(uuid)
                .copied()
                .ok_or(format!("{uuid}: not found"))
        }
        fn facts(&self, uuid: &str) -> Result<GpuFacts, String> {
            Ok(GpuFacts {
                uuid: uuid.into(),
                minor: Some(0),
                pids: vec![],
            })
        }
        fn set(&mut self, uuid: &str, mw: u32) -> Result<(), String> {
            self.0.lock().unwrap().insert(uuid.into(), mw);
            Ok(())
        }
    }

    fn daemon(any_gpu: bool) -> (Daemon, Arc<Mutex<HashMap<String, u32>>>) {
        let caps = Arc::new(Mutex::new(HashMap::from([
            ("GPU-a".to_owned(), 280_000),
            ("GPU-b".to_owned(), 280_000),
        ])));
        let d = Daemon::new(
            Box::new(Fake(caps.clone())),
            Log::stderr(),
            any_gpu,
            Roots {
                proc: "/nonexistent".into(),
                cgroup: "/nonexistent".into(),
            },
        );
        (d, caps)
    }

    const ME: Caller = Caller {
        pid: 4242,
        uid: 1000,
        gid: 1000,
    };

    fn ask(d: &mut Daemon, id: ClientId, line: &str) -> Reply {
        d.handle(id, line.as_bytes())
    }

    #[test]
    fn set_within_the_constraints_and_put_back_when_the_client_goes() {
        let (mut d, caps) = daemon(true);
        d.connect(1, ME);
        let r = ask(&mut d, 1, r#"{"op":"limits","gpu":"GPU-a"}"#);
        assert_eq!(
            (r.min_w, r.max_w, r.current_w),
            (Some(100.0), Some(300.0), Some(280.0))
        );
        let r = ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-a","watts":200}"#);
        assert_eq!((r.ok, r.old_w, r.new_w), (true, Some(280.0), Some(200.0)));
        assert_eq!(caps.lock().unwrap()["GPU-a"], 200_000);
        let r = ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-a","watts":301}"#);
        assert_eq!(
            r.error.as_deref(),
            Some("301 W is outside GPU-a's constraints, 100–300 W")
        );
        let r = ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-z","watts":200}"#);
        assert_eq!(r.error.as_deref(), Some("GPU-z: not found"));
        assert!(d.holds_any(1));
        d.leave(1);
        assert_eq!(caps.lock().unwrap()["GPU-a"], 280_000);
    }

    #[test]
    fn restore_keep_and_stop() {
        let (mut d, caps) = daemon(true);
        d.connect(1, ME);
        d.connect(2, ME);
        ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-a","watts":150}"#);
        let r = ask(&mut d, 1, r#"{"op":"restore","gpu":"GPU-a"}"#);
        assert_eq!(r.cap_w, Some(280.0));
        ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-a","watts":150}"#);
        ask(&mut d, 2, r#"{"op":"keep"}"#);
        ask(&mut d, 2, r#"{"op":"set","gpu":"GPU-b","watts":120}"#);
        d.stop();
        let c = caps.lock().unwrap();
        assert_eq!((c["GPU-a"], c["GPU-b"]), (280_000, 120_000), "kept stays");
    }

    #[test]
    fn a_gpu_not_the_callers_is_refused_and_bad_lines_answered() {
        let (mut d, caps) = daemon(false);
        d.connect(1, ME);
        let r = ask(&mut d, 1, r#"{"op":"set","gpu":"GPU-a","watts":200}"#);
        let e = r.error.unwrap();
        assert!(e.starts_with("GPU-a is not held by your job"), "{e}");
        assert_eq!(caps.lock().unwrap()["GPU-a"], 280_000);
        assert!(!ask(&mut d, 1, "{").ok);
        assert!(!ask(&mut d, 9, r#"{"op":"keep"}"#).ok, "unknown client");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("666"), Ok(0o666));
        assert!(parse_mode("0999").is_err() && parse_mode("7777").is_err());
    }
}
