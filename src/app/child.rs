//! The watched child command: started with piped stdout/stderr, whose lines are forwarded
//! unchanged and scanned for progress.

use crate::sample::Progress;
use crate::source::progress::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// What the child's threads report.
pub enum ChildEvent {
    Progress(Progress),
    /// A line of output (only when captured for the screen).
    Line(String),
    OutputClosed,
    Exited(ExitStatus),
    WaitFailed(String),
}

pub struct Child {
    pid: Pid,
}

/// Where the command's output goes.
pub enum Output {
    /// To carbontop's own stdout/stderr, byte for byte (headless).
    Forward,
    /// To the screen's output pane (as `ChildEvent::Line`) and, every byte of it, to a log
    /// file; the command's stdin is closed so it never competes with the screen for keys.
    Capture(Option<File>),
}

impl Child {
    /// Starts `cmd`; every event goes through `emit`.
    pub fn spawn<F>(
        cmd: &[String],
        output: Output,
        parser: &Parser,
        emit: F,
    ) -> Result<Self, String>
    where
        F: Fn(ChildEvent) + Send + Clone + 'static,
    {
        let (prog, args) = cmd.split_first().ok_or("no command given after --")?;
        let stdin = match output {
            Output::Forward => Stdio::inherit(),
            Output::Capture(_) => Stdio::null(),
        };
        let mut child = Command::new(prog)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{prog}`: {e}"))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
        match output {
            Output::Forward => {
                if let Some(out) = child.stdout.take() {
                    forward(out, Dest::Stdout, parser.clone(), emit.clone());
                }
                if let Some(err) = child.stderr.take() {
                    forward(err, Dest::Stderr, parser.clone(), emit.clone());
                }
            }
            Output::Capture(log) => {
                let log = log.map(|f| Arc::new(Mutex::new(f)));
                if let Some(out) = child.stdout.take() {
                    forward(
                        out,
                        Dest::Capture(log.clone()),
                        parser.clone(),
                        emit.clone(),
                    );
                }
                if let Some(err) = child.stderr.take() {
                    forward(err, Dest::Capture(log), parser.clone(), emit.clone());
                }
            }
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

    /// The command's process id.
    pub fn id(&self) -> u32 {
        u32::try_from(self.pid.as_raw()).unwrap_or(0)
    }

    /// Sends a signal; a child already gone is not an error.
    pub fn signal(&self, sig: Signal) {
        let _ = kill(self.pid, sig);
    }
}

enum Dest {
    Stdout,
    Stderr,
    Capture(Option<Arc<Mutex<File>>>),
}

/// Copies lines from `src` to `dst` byte for byte and reports progress found in them.
fn forward<R, F>(src: R, dst: Dest, parser: Parser, emit: F)
where
    R: Read + Send + 'static,
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
                        let text = String::from_utf8_lossy(&line);
                        match &dst {
                            Dest::Stdout => write_all(&mut std::io::stdout(), &line),
                            Dest::Stderr => write_all(&mut std::io::stderr(), &line),
                            Dest::Capture(log) => {
                                if let Some(f) = log
                                    && let Ok(mut f) = f.lock()
                                {
                                    write_all(&mut *f, &line);
                                }
                                emit(ChildEvent::Line(text.clone().into_owned()));
                            }
                        }
                        // Progress bars redraw with \r: the last segment is the current state.
                        let last = text.trim_end().rsplit('\r').next().unwrap_or("");
                        let p = parser.parse(last);
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

fn write_all(w: &mut impl Write, bytes: &[u8]) {
    let _ = w.write_all(bytes);
    let _ = w.flush();
}
