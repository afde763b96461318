//! Power caps through `carbontop capd` (src/capd), for a carbontop that is not root: the same
//! `PowerCap` as NVML's, each call one request on capd's socket. capd knows this process by
//! SO_PEERCRED and puts back whatever it set when the connection ends — at the end of the run,
//! or when carbontop dies, even by `kill -9` — so the Session's own restore on exit is the
//! first line and capd the backstop.
//!
//! Which path sets the caps ([`socket_to_use`]): `CARBONTOP_CAPD_SOCKET` when set (`none`: never
//! capd), even as root; else NVML directly when carbontop is root; else capd's default socket
//! when it exists; else NVML, which then says it needs root.

use super::{CapError, CapLimits, PowerCap};
use crate::capd::proto::{self, Line, Reply, Request};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names capd's socket, overriding the default and root's direct path (`none`: NVML directly).
pub const SOCKET_ENV: &str = "CARBONTOP_CAPD_SOCKET";

/// How long one request may take before capd is taken for gone (a cap set is milliseconds).
const TIMEOUT: Duration = Duration::from_secs(10);

/// The socket to reach capd at, or None for NVML directly (see the module's text).
pub fn socket_to_use(
    env: &dyn Fn(&str) -> Option<String>,
    root: bool,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    match env(SOCKET_ENV).filter(|v| !v.is_empty()) {
        Some(v) if v == "none" => None,
        Some(v) => Some(PathBuf::from(v)),
        None if root => None,
        None => {
            let p = Path::new(crate::capd::DEFAULT_SOCKET);
            exists(p).then(|| p.to_path_buf())
        }
    }
}

/// Whether this process runs as root (its effective uid, from /proc/self/status).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The caps of these GPUs (NVML index, UUID): through capd ([`socket_to_use`]) or NVML
/// directly; with capd, `via capd at PATH` (for the screen's notices and the summary's sources).
pub fn open_caps(
    gpus: &[(u32, String)],
    restore: bool,
) -> (Result<Box<dyn PowerCap>, String>, Option<String>) {
    let env = |k: &str| std::env::var(k).ok();
    match socket_to_use(&env, is_root(), &|p: &Path| p.exists()) {
        Some(path) => {
            let uuids = gpus.iter().map(|(_, u)| u.clone()).collect();
            match CapdCap::open(&path, uuids, !restore) {
                Ok(mut c) => (
                    Ok({
                        c.numbers = gpus.iter().map(|(i, _)| *i).collect();
                        Box::new(c)
                    }),
                    Some(format!("via capd at {}", path.display())),
                ),
                Err(e) => (Err(e.to_string()), None),
            }
        }
        None => (
            super::nvml::NvmlCap::open(gpus.iter().map(|(i, _)| *i).collect())
                .map(|c| Box::new(c) as Box<dyn PowerCap>)
                .map_err(|e| e.to_string()),
            None,
        ),
    }
}

struct Conn {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

pub struct CapdCap {
    path: PathBuf,
    uuids: Vec<String>,
    limits: Vec<Result<CapLimits, CapError>>,
    /// The cap each GPU had when this client first read it: setting it again is a `restore`,
    /// so capd drops this client's hold instead of taking a new one.
    baseline: Vec<Option<f64>>,
    /// `--no-restore`: capd is asked to leave the caps when this client goes.
    keep: bool,
    conn: Option<Conn>,
    /// The GPUs' NVML indices, for messages (empty: their positions).
    numbers: Vec<u32>,
}

impl CapdCap {
    /// Connects to capd at `path` for the GPUs `uuids` (carbontop's order) and reads their
    /// constraints; an error says why capd cannot be used (not running, refused the caller).
    pub fn open(path: &Path, uuids: Vec<String>, keep: bool) -> Result<Self, CapError> {
        let mut c = Self {
            path: path.to_path_buf(),
            limits: Vec::new(),
            baseline: vec![None; uuids.len()],
            uuids,
            keep,
            conn: None,
            numbers: Vec::new(),
        };
        c.connect()?;
        c.limits = (0..c.uuids.len())
            .map(|i| {
                let r = c.ask(&Request::Limits {
                    gpu: c.uuids[i].clone(),
                })?;
                c.baseline[i] = r.current_w;
                match (r.min_w, r.max_w, r.default_w) {
                    (Some(min_w), Some(max_w), Some(default_w)) => Ok(CapLimits {
                        min_w,
                        max_w,
                        default_w,
                    }),
                    _ => Err(c.err("its reply has no power-cap range")),
                }
            })
            .collect();
        Ok(c)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, why: impl std::fmt::Display) -> CapError {
        CapError::Capd(format!("capd at {}: {why}", self.path.display()))
    }

    fn connect(&mut self) -> Result<(), CapError> {
        let s = UnixStream::connect(&self.path).map_err(|e| self.err(e))?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(|e| self.err(e))?;
        s.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| self.err(e))?;
        let w = s.try_clone().map_err(|e| self.err(e))?;
        let mut conn = Conn {
            r: BufReader::with_capacity(proto::MAX_LINE + 1, s),
            w,
        };
        let hello = read_reply(&mut conn).map_err(|e| self.err(e))?;
        if !hello.ok {
            return Err(CapError::Refused(hello.error.unwrap_or_default()));
        }
        self.conn = Some(conn);
        if self.keep {
            self.ask(&Request::Keep {})?;
        }
        Ok(())
    }

    /// One request and its reply; a connection that broke is made again once (capd holds
    /// nothing for a connection it closed, e.g. one idle past its timeout).
    fn ask(&mut self, req: &Request) -> Result<Reply, CapError> {
        let mut line = serde_json::to_string(req).map_err(|e| self.err(e))?;
        line.push('\n');
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.connect()?;
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let got = conn
                .w
                .write_all(line.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|()| read_reply(conn));
            match got {
                Ok(r) if r.ok => return Ok(r),
                Ok(r) => return Err(CapError::Refused(r.error.unwrap_or_default())),
                Err(e) if attempt == 1 => return Err(self.err(e)),
                Err(_) => self.conn = None,
            }
        }
        Err(self.err("no answer"))
    }

    fn uuid(&self, gpu: usize) -> Result<String, CapError> {
        self.uuids.get(gpu).cloned().ok_or(CapError::NoSuchGpu {
            gpu,
            simulated: false,
        })
    }
}

/// One reply line (bounded), or why there is none.
fn read_reply(c: &mut Conn) -> Result<Reply, String> {
    let mut buf = Vec::new();
    match proto::read_line(&mut c.r, &mut buf, proto::MAX_LINE).map_err(|e| e.to_string())? {
        Line::Line => serde_json::from_slice(&buf).map_err(|e| format!("bad reply: {e}")),
        Line::Eof => Err("closed the connection".into()),
        Line::TooLong => Err("reply too long".into()),
    }
}

impl PowerCap for CapdCap {
    fn number(&self, gpu: usize) -> usize {
        self.numbers.get(gpu).map_or(gpu, |&i| i as usize)
    }

    fn count(&self) -> usize {
        self.uuids.len()
    }

    fn limits(&self, gpu: usize) -> Result<CapLimits, CapError> {
        self.limits
            .get(gpu)
            .cloned()
            .unwrap_or(Err(CapError::NoSuchGpu {
                gpu,
                simulated: false,
            }))
    }

    fn get(&mut self, gpu: usize) -> Result<f64, CapError> {
        let gpu_id = self.uuid(gpu)?;
        let r = self.ask(&Request::Limits { gpu: gpu_id })?;
        let now = r
            .current_w
            .ok_or_else(|| self.err("its reply has no cap"))?;
        self.baseline[gpu].get_or_insert(now);
        Ok(now)
    }

    fn set(&mut self, gpu: usize, watts: f64) -> Result<(), CapError> {
        let gpu_id = self.uuid(gpu)?;
        let back = self.baseline[gpu].is_some_and(|b| (b - watts).abs() < 0.5);
        if back {
            self.ask(&Request::Restore { gpu: gpu_id })?;
        } else {
            self.ask(&Request::Set { gpu: gpu_id, watts })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    /// A capd stand-in: answers `replies` on each connection in turn, one per request line
    /// after the hello, then closes it; the lines it received, per connection.
    fn stand_in(
        path: &Path,
        conns: Vec<Vec<&'static str>>,
    ) -> std::thread::JoinHandle<Vec<Vec<String>>> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for replies in conns {
                let (s, _) = l.accept().unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                w.write_all(b"{\"ok\":true,\"capd\":1}\n").unwrap();
                let mut got = Vec::new();
                for reply in replies {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    got.push(line.trim().to_owned());
                    w.write_all(format!("{reply}\n").as_bytes()).unwrap();
                }
                seen.push(got);
            }
            seen
        })
    }

    const LIMITS: &str =
        r#"{"ok":true,"min_w":100.0,"max_w":300.0,"default_w":300.0,"current_w":280.0}"#;

    #[test]
    fn a_connection_capd_closed_is_made_again_and_the_baseline_is_a_restore() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("c.sock");
        let server = stand_in(
            &sock,
            vec![
                // open: keep (--no-restore), limits; then capd closes it (idle).
                vec![r#"{"ok":true}"#, LIMITS],
                // a new connection: keep again, the set, the way back, a refusal.
                vec![
                    r#"{"ok":true}"#,
                    r#"{"ok":true,"old_w":280.0,"new_w":200.0}"#,
                    r#"{"ok":true,"cap_w":280.0}"#,
                    r#"{"ok":false,"error":"GPU-a is not held by your job"}"#,
                ],
            ],
        );
        let mut c = CapdCap::open(&sock, vec!["GPU-a".into()], true).unwrap();
        assert_eq!(c.limits(0).unwrap().max_w, 300.0);
        c.set(0, 200.0).unwrap();
        c.set(0, 280.0).unwrap();
        assert_eq!(
            c.set(0, 150.0).unwrap_err().to_string(),
            "capd refused: GPU-a is not held by your job"
        );
        let seen = server.join().unwrap();
        assert_eq!(
            seen[0],
            [r#"{"op":"keep"}"#, r#"{"op":"limits","gpu":"GPU-a"}"#]
        );
        assert_eq!(
            seen[1],
            [
                r#"{"op":"keep"}"#,
                r#"{"op":"set","gpu":"GPU-a","watts":200.0}"#,
                r#"{"op":"restore","gpu":"GPU-a"}"#,
                r#"{"op":"set","gpu":"GPU-a","watts":150.0}"#,
            ]
        );
    }

    #[test]
    fn a_refusal_at_the_door_and_no_capd_are_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("c.sock");
        let e = CapdCap::open(&sock, vec![], false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with(&format!("capd at {}: ", sock.display())),
            "{e}"
        );
        let l = UnixListener::bind(&sock).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(
                b"{\"ok\":false,\"error\":\"uid 1000 (pid 1) is not in group carbontop\"}\n",
            )
            .unwrap();
        });
        let e = CapdCap::open(&sock, vec![], false)
            .err()
            .unwrap()
            .to_string();
        t.join().unwrap();
        assert_eq!(
            e,
            "capd refused: uid 1000 (pid 1) is not in group carbontop"
        );
    }

    #[test]
    fn the_socket_is_chosen_env_first_then_root_then_the_default() {
        let set = |v: &'static str| move |k: &str| (k == SOCKET_ENV).then(|| v.to_owned());
        let unset = |_: &str| None;
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        assert_eq!(
            socket_to_use(&set("/tmp/c.sock"), true, &no),
            Some("/tmp/c.sock".into())
        );
        assert_eq!(socket_to_use(&set("none"), false, &yes), None);
        assert_eq!(
            socket_to_use(&unset, true, &yes),
            None,
            "root: NVML directly"
        );
        assert_eq!(
            socket_to_use(&unset, false, &yes),
            Some(crate::capd::DEFAULT_SOCKET.into())
        );
        assert_eq!(socket_to_use(&unset, false, &no), None);
        assert_eq!(socket_to_use(&set(""), false, &no), None, "empty is unset");
    }
}
