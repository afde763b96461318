//! A tiny HTTP/1.1 server on 127.0.0.1 for the grid provider tests: each path answers with a
//! scripted status, headers and body (shaped like the real APIs' answers), the requests are
//! logged, and the server can be stopped and started again on the same port mid-run.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct Shared {
    /// Exact paths, or prefixes ending in `*`.
    routes: Vec<(String, VecDeque<Reply>)>,
    log: Vec<Request>,
}

pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl FakeApi {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut s = Self {
            addr,
            shared: Arc::default(),
            running: None,
        };
        s.serve(l);
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `path` (or every path starting with it, when it ends in `*`) with `r`.
    pub fn route(&self, path: &str, r: Reply) {
        self.route_seq(path, vec![r]);
    }

    /// Answers `path` with each reply in turn, the last one from then on.
    pub fn route_seq(&self, path: &str, replies: Vec<Reply>) {
        let mut sh = self.shared.lock().unwrap();
        sh.routes.retain(|(p, _)| p != path);
        sh.routes.push((path.into(), replies.into()));
    }

    /// How many requests asked for exactly `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().unwrap().log.clone()
    }

    /// Closes the port: connections are refused until `resume`.
    pub fn stop(&mut self) {
        if let Some((flag, h)) = self.running.take() {
            flag.store(true, Ordering::SeqCst);
            let _ = h.join();
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        let l = TcpListener::bind(self.addr).unwrap();
        self.serve(l);
    }

    fn serve(&mut self, l: TcpListener) {
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, shared) = (stop.clone(), self.shared.clone());
        let h = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || handle(s, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.running = Some((stop, h));
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

fn handle(s: TcpStream, shared: &Mutex<Shared>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.clone(), String::new()),
    };
    let reply = {
        let mut sh = shared.lock().unwrap();
        sh.log.push(Request {
            path: path.clone(),
            query,
            headers,
        });
        sh.routes
            .iter_mut()
            .find(|(p, _)| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => *p == path,
            })
            .and_then(|(_, q)| {
                if q.len() > 1 {
                    q.pop_front()
                } else {
                    q.front().cloned()
                }
            })
            .unwrap_or_else(|| Reply::status(404))
    };
    std::thread::sleep(reply.delay);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let mut s = s;
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}
