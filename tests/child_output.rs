//! The command's output as it comes: forwarded byte for byte as it is written (a `\r` progress
//! bar is not held back until a newline) and read as it is drawn, read until the pipe's end (a
//! process the command left behind may still write), and a line without end forwarded whole in
//! bounded memory. Where a real process must be waited for, the bound is generous and only
//! fails a test that would otherwise hang.
#![allow(clippy::unwrap_used)]

mod common;

use carbontop::app::child::{Child, ChildEvent, Output};
use carbontop::source::progress::Parser;
use carbontop::source::term::{Colour, Stream};
use common::{col, quick, read_csv};
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: only a hung test waits this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// Reads `r` on a thread, sending each chunk.
fn chunks(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Receives until `got` satisfies `done`.
fn until(rx: &mpsc::Receiver<Vec<u8>>, got: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let end = Instant::now() + PATIENCE;
    while !done(got) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(c) => got.extend(c),
            Err(_) => panic!("waited {PATIENCE:?}; got {} bytes", got.len()),
        }
    }
}

/// A shell loop that waits for `go` to exist.
fn wait_for(go: &Path) -> String {
    format!("while [ ! -e '{}' ]; do sleep 0.05; done", go.display())
}

/// A shell command printing `s` exactly (`\r`, `\n` as escapes; `%` as itself).
fn printf(s: &str) -> String {
    let s = s
        .replace('%', "%%")
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    format!("printf '{s}'")
}

/// carbontop running a command that waits for `go`: a failing test still ends both (the
/// command let go, carbontop killed).
struct Running {
    child: std::process::Child,
    go: std::path::PathBuf,
}

impl Running {
    /// Lets the command finish; carbontop's exit status.
    fn finish(mut self) -> std::process::ExitStatus {
        std::fs::write(&self.go, "").unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.go, "");
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn carriage_returns_are_forwarded_and_output_after_the_command_exits_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let o = quick("run", &dir.path().join("a"))
        .env_remove("PYTHONUNBUFFERED")
        .args([
            "--",
            "sh",
            "-c",
            r#"printf 'a\rb\rc\n'; echo "py=$PYTHONUNBUFFERED"; (sleep 0.2; echo late) &"#,
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a\rb\rc\npy=1\nlate\n");
}

#[test]
fn a_progress_bar_is_forwarded_and_read_as_it_is_drawn() {
    // The command draws a bar, no newline, and waits: the bar reaches carbontop's stdout, and
    // its accuracy samples.csv, while the command still waits.
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let first = "\rEpoch 1:  50%|#####     | 5/10 [00:01<00:01, v_num=0, val_acc=0.625]";
    let last = "\rEpoch 1: 100%|##########| 10/10 [00:02<00:00, v_num=0, val_acc=0.750]\n";
    let script = format!("{}; {}; {}", printf(first), wait_for(&go), printf(last));
    let out = dir.path().join("out");
    let mut child = Running {
        child: quick("run", &out)
            .args(["--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .unwrap(),
        go: go.clone(),
    };
    let rx = chunks(child.child.stdout.take().unwrap());
    let mut got = Vec::new();
    until(&rx, &mut got, |g| g.len() >= first.len());
    assert_eq!(String::from_utf8_lossy(&got), first);
    // A row after the bar was drawn carries its accuracy.
    let end = Instant::now() + PATIENCE;
    let read = |rows: &[Vec<String>], h: &[String]| {
        rows.iter()
            .any(|r| r[col(h, "accuracy")].parse::<f64>().ok() == Some(62.5))
    };
    loop {
        if out.join("samples.csv").exists() {
            let (h, rows) = read_csv(&out.join("samples.csv"));
            if read(&rows, &h) {
                break;
            }
        }
        assert!(Instant::now() < end, "no row with the bar's accuracy");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.finish().success());
    until(&rx, &mut got, |g| g.len() >= first.len() + last.len());
    assert_eq!(String::from_utf8_lossy(&got), format!("{first}{last}"));
    // The last redraw's accuracy is the run's (the summary has what came after the last row).
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(err.contains("accuracy 75.00%"), "{err}");
}

#[test]
fn carbontops_own_lines_start_below_a_bar_being_drawn() {
    // Headless, the status line each tick goes to stderr, where the bar is being drawn: it
    // starts on a line of its own instead of being glued to the bar's end.
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let bar = "\r 50%|#####     | 5/10";
    let script = format!("{} >&2; {}", printf(bar), wait_for(&go));
    let mut child = Running {
        child: common::bin()
            .args(["run", "--headless", "--interval", "100ms", "--out"])
            .arg(dir.path().join("out"))
            .args(["--", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        go,
    };
    let rx = chunks(child.child.stderr.take().unwrap());
    let mut got = Vec::new();
    let at = |g: &[u8]| g.windows(bar.len()).position(|w| w == bar.as_bytes());
    until(&rx, &mut got, |g| {
        at(g).is_some_and(|i| g.len() > i + bar.len())
    });
    let i = at(&got).unwrap() + bar.len();
    assert!(child.finish().success());
    let next = String::from_utf8_lossy(&got[i..]).into_owned();
    assert!(next.starts_with('\n'), "{next:?}");
}

/// carbontop's peak memory (VmHWM, KiB) while `body` is written by the command, which then
/// waits; and what it forwarded and said.
fn peak_while(dir: &Path, name: &str, body: &str, bytes: usize) -> (u64, Vec<u8>, String) {
    let go = dir.join(format!("{name}.go"));
    let script = format!("{body}; {}", wait_for(&go));
    let mut child = Running {
        child: common::bin()
            .args(["run", "--headless", "--interval", "1s", "--out"])
            .arg(dir.join(name))
            .args(["--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        go,
    };
    let rx = chunks(child.child.stdout.take().unwrap());
    let err = chunks(child.child.stderr.take().unwrap());
    let mut got = Vec::new();
    until(&rx, &mut got, |g| g.len() >= bytes);
    // Started in full: its first row written.
    let samples = dir.join(name).join("samples.csv");
    let end = Instant::now() + PATIENCE;
    while std::fs::read_to_string(&samples).map_or(0, |s| s.lines().count()) < 2 {
        assert!(Instant::now() < end, "no first row");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.child.id())).unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(child.finish().success());
    let said: Vec<u8> = err.iter().flatten().collect();
    (peak, got, String::from_utf8_lossy(&said).into_owned())
}

#[test]
fn a_line_without_end_is_forwarded_whole_in_bounded_memory() {
    // 16 MiB without a newline: kept whole it would take 64 MiB (a char is 4 bytes) or more.
    let dir = tempfile::tempdir().unwrap();
    let n = 16 * 1024 * 1024;
    let (idle, _, _) = peak_while(dir.path(), "idle", "printf y", 1);
    let body = format!("head -c {n} /dev/zero | tr '\\0' x");
    let (peak, got, said) = peak_while(dir.path(), "long", &body, n);
    assert_eq!(got.len(), n);
    assert!(got.iter().all(|b| *b == b'x'));
    assert!(
        peak < idle + 8 * 1024,
        "peak {peak} KiB, idle {idle} KiB: memory grew with the line"
    );
    assert_eq!(said.matches("longer than 64 KiB").count(), 1, "{said}");
}

#[test]
fn captured_output_goes_whole_to_the_log_and_to_the_pane_as_a_terminal_shows_it() {
    // The screen's path: every byte to output.log, the pane's lines as a terminal shows them.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("output.log");
    let script = "printf 'a\\rb\\rc\\n\\033[32mgreen\\033[0m val_acc=0.5\\n'; \
                  head -c 70000 /dev/zero | tr '\\0' x; printf '\\n\\r10%%\\r20%%'; \
                  (sleep 0.2; echo late) &";
    let (tx, rx) = mpsc::channel();
    let cmd: Vec<String> = ["sh", "-c", script].map(String::from).to_vec();
    let output = Output::Capture(Some(std::fs::File::create(&log).unwrap()));
    let _child = Child::spawn(&cmd, output, &Parser::default(), move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    let (mut done, mut live, mut notes, mut accuracy, mut closed) =
        (Vec::new(), None, Vec::new(), None, 0);
    let end = Instant::now() + PATIENCE;
    while closed < 2 {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left).unwrap() {
            ChildEvent::Output(Stream::Out, shown) => {
                done.extend(shown.done);
                live = shown.live.or(live);
            }
            ChildEvent::Output(Stream::Err, shown) => assert!(shown.done.is_empty()),
            ChildEvent::Note(n) => notes.push(n),
            ChildEvent::Progress(p) => accuracy = p.accuracy.or(accuracy),
            ChildEvent::OutputClosed => closed += 1,
            ChildEvent::Exited(st) => assert!(st.success()),
            ChildEvent::WaitFailed(e) => panic!("{e}"),
        }
    }
    let mut want = b"a\rb\rc\n\x1b[32mgreen\x1b[0m val_acc=0.5\n".to_vec();
    want.extend(std::iter::repeat_n(b'x', 70000));
    want.extend(b"\n\r10%\r20%late\n");
    assert!(std::fs::read(&log).unwrap() == want, "output.log differs");
    let text: Vec<&str> = done.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(text[0], "c");
    assert_eq!(text[1], "green val_acc=0.5");
    assert_eq!(done[1].pens[0].1.fg, Some(Colour::Indexed(2)));
    // The long line in two pieces (cut at 64 Ki characters), each shown to 1000 and a `…`.
    assert_eq!(text.len(), 5, "{text:?}");
    assert!(
        text[2..4]
            .iter()
            .all(|t| t.ends_with('…') && t.len() == 1000 + 3)
    );
    // The bar in its last state, then what came after the command exited.
    assert_eq!(text[4], "20%late");
    assert_eq!(live, Some(vec![]));
    assert_eq!(accuracy, Some(50.0));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("output.log has every byte"), "{notes:?}");
}
