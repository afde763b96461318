//! The watched child command: started with piped stdout/stderr, whose bytes are forwarded as
//! they come and read as a terminal shows them ([`Term`]): each line, and each redraw of a
//! progress bar, is scanned for progress.

use crate::sample::Progress;
use crate::source::progress::{LogReader, Parser};
use crate::source::term::{ROW_CAP, Shown, Stream, Term};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes read from the command's output at a time.
/// At most this many of the job's processes still running are named in the summary.
const SURVIVORS_NAMED: usize = 5;

const CHUNK: usize = 64 * 1024;

/// The command's forwarded stdout / stderr left its line unfinished (a progress bar being
/// redrawn): a line of carbontop's own on stderr then starts on a fresh line rather than glued
/// to the bar ([`mid_line`]).
static OUT_MID_LINE: AtomicBool = AtomicBool::new(false);
static ERR_MID_LINE: AtomicBool = AtomicBool::new(false);

/// Whether a line carbontop writes to stderr now would land in the middle of one of the
/// command's (its stderr's, or its stdout's on the same terminal); cleared, as that line will
/// end it. Called with stderr locked.
pub fn mid_line() -> bool {
    use std::io::IsTerminal;
    static SHARED: OnceLock<bool> = OnceLock::new();
    let shared =
        *SHARED.get_or_init(|| std::io::stdout().is_terminal() && std::io::stderr().is_terminal());
    let err = ERR_MID_LINE.swap(false, Ordering::Relaxed);
    let out = OUT_MID_LINE.swap(false, Ordering::Relaxed) && shared;
    err || out
}

/// What the child's threads report.
pub enum ChildEvent {
    Progress(Progress),
    /// What the output changed on the screen's pane (only when captured for the screen).
    Output(Stream, Box<Shown>),
    /// Something about the output, said once (a line too long to keep whole).
    Note(String),
    /// One of the output's pipes reached its end (every process holding it is gone).
    OutputClosed,
    Exited(ExitStatus),
    WaitFailed(String),
}

pub struct Child {
    pid: Pid,
    /// The value of `JOB_MARKER_VAR` the command's processes inherit.
    marker: String,
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
        let mut command = Command::new(prog);
        // Python buffers its stdout when it is a pipe: without this a run's progress would
        // arrive in 8 KiB bursts, not as it is printed (as on a terminal).
        // Every process of the job carries it: those still running at the end are named.
        let marker = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        command.env(crate::source::process::JOB_MARKER_VAR, &marker);
        if std::env::var_os("PYTHONUNBUFFERED").is_none() {
            command.env("PYTHONUNBUFFERED", "1");
        }
        let mut child = command
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{prog}`: {e}"))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
        let reader = LogReader::new(parser.clone());
        let cut_said = Arc::new(AtomicBool::new(false));
        let (out_dst, err_dst) = match output {
            Output::Forward => (Dest::Stdout, Dest::Stderr),
            Output::Capture(log) => {
                let log = log.map(|f| Arc::new(Mutex::new(f)));
                (Dest::Capture(log.clone()), Dest::Capture(log))
            }
        };
        let reading = |stream, dst| Reading {
            stream,
            dst,
            reader: reader.clone(),
            cut_said: cut_said.clone(),
        };
        if let Some(out) = child.stdout.take() {
            forward(out, reading(Stream::Out, out_dst), emit.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, reading(Stream::Err, err_dst), emit.clone());
        }
        std::thread::Builder::new()
            .name("carbontop-child-wait".into())
            .spawn(move || match child.wait() {
                Ok(st) => emit(ChildEvent::Exited(st)),
                Err(e) => emit(ChildEvent::WaitFailed(e.to_string())),
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { pid, marker })
    }

    /// The command's process id.
    pub fn id(&self) -> u32 {
        u32::try_from(self.pid.as_raw()).unwrap_or(0)
    }

    /// Sends a signal to the command and every process under it, as a terminal's Ctrl-C or
    /// GNU `timeout` reach the whole job: a `bash` wrapper's Python child must not go on
    /// training, unmeasured, with parent 1. The tree is read from /proc at the moment (the
    /// command first, then its descendants); a process already gone is not an error.
    /// The job's processes still running (a daemon it left, one that outlived the signals),
    /// as one line for the summary each: `4121 python train.py (parent 1)`; at most
    /// `SURVIVORS_NAMED`, then how many more.
    pub fn survivors(&self) -> Option<String> {
        let found = crate::source::process::survivors(
            std::path::Path::new("/proc"),
            &self.marker,
            self.pid.as_raw(),
            i32::try_from(std::process::id()).unwrap_or(0),
        );
        if found.is_empty() {
            return None;
        }
        let mut named: Vec<String> = found
            .iter()
            .take(SURVIVORS_NAMED)
            .map(|s| format!("{} {} (parent {})", s.pid, s.command, s.ppid))
            .collect();
        if found.len() > SURVIVORS_NAMED {
            named.push(format!("and {} more", found.len() - SURVIVORS_NAMED));
        }
        Some(format!(
            "still running after carbontop ended: {}",
            named.join(", ")
        ))
    }

    pub fn signal(&self, sig: Signal) {
        let mut tree = crate::source::process::ProcessTree::new(
            u32::try_from(self.pid.as_raw()).unwrap_or(0),
            "/proc".into(),
        );
        let pids = tree.scan_now().to_vec();
        for p in pids {
            let _ = kill(Pid::from_raw(p), sig);
        }
    }
}

enum Dest {
    Stdout,
    Stderr,
    Capture(Option<Arc<Mutex<File>>>),
}

/// Where one stream's bytes go and how they are read.
struct Reading {
    stream: Stream,
    dst: Dest,
    /// Shared by the command's two streams: they are one log.
    reader: LogReader,
    /// A line was cut at ROW_CAP and that was said (once for the run).
    cut_said: Arc<AtomicBool>,
}

impl Reading {
    /// One chunk: every byte on to its destination, then what it shows and reports.
    fn chunk<F: Fn(ChildEvent)>(&self, term: &mut Term, bytes: &[u8], paused: bool, emit: &F) {
        let unfinished = !bytes.ends_with(b"\n");
        match &self.dst {
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                write_all(&mut out, bytes);
                OUT_MID_LINE.store(unfinished, Ordering::Relaxed);
            }
            Dest::Stderr => {
                // The flag is set under the lock carbontop's own lines take too.
                let mut err = std::io::stderr().lock();
                write_all(&mut err, bytes);
                ERR_MID_LINE.store(unfinished, Ordering::Relaxed);
            }
            Dest::Capture(Some(log)) => {
                if let Ok(mut f) = log.lock() {
                    let _ = f.write_all(bytes);
                }
            }
            Dest::Capture(None) => {}
        }
        let changes = term.feed(bytes, paused);
        self.changes(changes, emit);
    }

    fn changes<F: Fn(ChildEvent)>(&self, ch: crate::source::term::Changes, emit: &F) {
        if ch.cut
            && !self
                .cut_said
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let whole = match self.dst {
                Dest::Capture(Some(_)) => "output.log has every byte",
                Dest::Capture(None) => "the rest of the line is still read",
                Dest::Stdout | Dest::Stderr => "it was forwarded whole",
            };
            emit(ChildEvent::Note(format!(
                "the command wrote a line longer than {} KiB: it is read and shown in pieces \
                 of that size ({whole})",
                ROW_CAP / 1024
            )));
        }
        let mut progress = Progress::default();
        for s in &ch.segments {
            progress.merge(&self.reader.line(s));
        }
        if !progress.is_empty() {
            emit(ChildEvent::Progress(progress));
        }
        if matches!(self.dst, Dest::Capture(_))
            && (!ch.shown.done.is_empty() || ch.shown.live.is_some())
        {
            emit(ChildEvent::Output(self.stream, Box::new(ch.shown)));
        }
    }
}

/// Copies `src` to its destination as it comes, in chunks, and reports what it shows and the
/// progress in it, until the pipe's end: processes the command started may hold it after the
/// command itself has exited.
fn forward<R, F>(mut src: R, to: Reading, emit: F)
where
    R: Read + Send + 'static,
    F: Fn(ChildEvent) + Send + 'static,
{
    let spawned = std::thread::Builder::new()
        .name("carbontop-child-output".into())
        .spawn(move || {
            let mut term = Term::new(matches!(to.dst, Dest::Capture(_)));
            let mut buf = vec![0u8; CHUNK];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => to.chunk(&mut term, &buf[..n], n < buf.len(), &emit),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if let Dest::Capture(Some(log)) = &to.dst
                && let Ok(mut f) = log.lock()
            {
                let _ = f.flush();
            }
            to.changes(term.finish(), &emit);
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
