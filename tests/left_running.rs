//! Issue 20: the command's processes still running when carbontop ends are named in the
//! summary, whatever ended the run — the command's own exit (it left a daemon), --duration,
//! a SIGTERM to carbontop (and `q q` on the screen: tests/pty.rs). Real binaries: only a
//! process shows what outlives it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The daemon a test's command leaves (its pid written to a file), killed when the test ends
/// however it ends.
struct Daemon(PathBuf);

impl Daemon {
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.0).ok()?.trim().parse().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(p) = self.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// `sh -c` leaving `setsid sleep 120` behind (a subshell's child: re-parented at once, out of
/// the command's tree), then running `then`.
fn leaves_a_daemon(dir: &Path, then: &str) -> (Vec<String>, Daemon) {
    let f = dir.join("daemon.pid");
    // The command goes on once the daemon is `sleep` (not yet the forked shell or `setsid`
    // it passes through), so the name the summary gives does not depend on timing.
    let script = format!(
        "(setsid sleep 120 >/dev/null 2>&1 </dev/null & echo $! > {f}); p=$(cat {f}); \
         while [ \"$(cat /proc/$p/comm 2>/dev/null)\" != sleep ]; do sleep 0.01; done; \
         : > {f}.ready; {then}",
        f = f.display()
    );
    (
        vec!["--".into(), "sh".into(), "-c".into(), script],
        Daemon(f),
    )
}

fn says_left_running(err: &str, d: &Daemon) {
    let pid = d.pid().unwrap();
    assert!(
        err.contains(&format!(
            "still running after carbontop ended: {pid} sleep 120 (parent "
        )),
        "{err}"
    );
}

#[test]
fn a_daemon_the_command_left_is_named_when_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, d) = leaves_a_daemon(dir.path(), "exit 0");
    let o = quick("run", &dir.path().join("r"))
        .args(&cmd)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    says_left_running(&stderr(&o), &d);
    // A command that leaves nothing: nothing said.
    let o = quick("run", &dir.path().join("r2"))
        .args(["--", "sh", "-c", "sleep 0.2"])
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("still running"), "{}", stderr(&o));
}

#[test]
fn a_daemon_is_named_after_duration_stops_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, d) = leaves_a_daemon(dir.path(), "exec sleep 60");
    let o = quick("run", &dir.path().join("r"))
        .args(["--duration", "3s"])
        .args(&cmd)
        .output()
        .unwrap();
    // The command itself was stopped (SIGTERM: 128 + 15); its daemon was out of reach.
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    says_left_running(&stderr(&o), &d);
}

#[test]
fn a_daemon_is_named_after_a_sigterm_to_carbontop() {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, d) = leaves_a_daemon(dir.path(), "exec sleep 60");
    let mut c = quick("run", &dir.path().join("r"))
        .args(&cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_while_running(&mut c, 30, "the daemon started", || {
        d.0.with_extension("pid.ready").exists()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    says_left_running(&stderr(&o), &d);
}
