//! The watched child command: started with piped stdout/stderr, whose lines are forwarded
//! unchanged and scanned for progress.

use crate::sample::Progress;
use crate::source::progress::parse_line;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};

/// What the child's threads report.
pub enum ChildEvent {
    Progress(Progress),
    OutputClosed,
    Exited(ExitStatus),
    WaitFailed(String),
}

pub struct Child {
    pid: Pid,
}

impl Child {
    /// Starts `cmd`; every event goes through `emit`.
    pub fn spawn<F>(cmd: &[String], emit: F) -> Result<Self, String>
    where
        F: Fn(ChildEvent) + Send + Clone + 'static,
    {
        let (prog, args) = cmd.split_first().ok_or("no command given after --")?;
        let mut child = Command::new(prog)
            .args(args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{prog}`: {e}"))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
        if let Some(out) = child.stdout.take() {
            forward(out, std::io::stdout, emit.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, std::io::stderr, emit.clone());
        }
        std::thread::Builder::new()
            .name("carbontop-child-wait".into())
            .spawn(move || match child.wait() {
                Ok(st) => emit(ChildEvent::Exited(st)),
                Err(e) => emit(ChildEvent::WaitFailed(e.to_string())),
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { pid })
    }

    /// Sends a signal; a child already gone is not an error.
    pub fn signal(&self, sig: Signal) {
        let _ = kill(self.pid, sig);
    }
}

/// Copies lines from `src` to `dst` byte for byte and reports progress found in them.
fn forward<R, W, D, F>(src: R, dst: D, emit: F)
where
    R: Read + Send + 'static,
    W: Write,
    D: Fn() -> W + Send + 'static,
    F: Fn(ChildEvent) + Send + 'static,
{
    let spawned = std::thread::Builder::new()
        .name("carbontop-child-output".into())
        .spawn(move || {
            let mut r = BufReader::new(src);
            let mut line = Vec::with_capacity(256);
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut out = dst();
                        let _ = out.write_all(&line);
                        let _ = out.flush();
                        // Progress bars redraw with \r: the last segment is the current state.
                        let text = String::from_utf8_lossy(&line);
                        let last = text.trim_end().rsplit('\r').next().unwrap_or("");
                        let p = parse_line(last);
                        if !p.is_empty() {
                            emit(ChildEvent::Progress(p));
                        }
                    }
                }
            }
            emit(ChildEvent::OutputClosed);
        });
    if spawned.is_err() {
        // Without a thread the pipe would fill and block the child: nothing safe to do but say.
        crate::app::say("cannot start a thread to forward the command's output");
    }
}
