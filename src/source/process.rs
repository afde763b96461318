//! The watched command's share of the machine on a shared host (after CodeCarbon's process
//! mode): the CPU time of its whole process tree against the machine's busy CPU time, read
//! from /proc. Busy, not all, time: on an otherwise idle machine the run is charged the whole
//! CPU power, idle baseline included, as it would be alone; beside other work it is charged
//! its share. Raw counters only; the Ledger
//! turns them into the tree's share of the CPU energy.
//!
//! Each tick reads /proc/stat and the tree's own `/proc/PID/stat` files; the tree itself (new
//! children, grandchildren) is found by a scan of /proc every few seconds, so a busy machine's
//! thousands of processes are not read every tick.

use crate::sample::ProcessCpu;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the tree is looked for again.
const RESCAN: Duration = Duration::from_secs(5);

pub struct ProcessTree {
    proc_root: PathBuf,
    root: i32,
    pids: Vec<i32>,
    scanned: Option<Instant>,
}

/// `utime + stime + cutime + cstime` (fields 14–17) and the parent pid of a `/proc/PID/stat`
/// line; the command name may hold spaces and parentheses, so fields count from the last `)`.
fn parse_stat(s: &str) -> Option<(i32, u64)> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((ppid, ticks))
}

/// The machine's busy CPU time: /proc/stat's `cpu` line less idle and iowait (guest time is
/// already in user and nice, so fields 9 and 10 are left out).
fn parse_busy(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let all: u64 = v.iter().sum();
    Some(all - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0))
}

impl ProcessTree {
    pub fn new(root: u32, proc_root: PathBuf) -> Self {
        Self {
            proc_root,
            root: i32::try_from(root).unwrap_or(i32::MAX),
            pids: Vec::new(),
            scanned: None,
        }
    }

    fn stat(&self, pid: i32) -> Option<(i32, u64)> {
        std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
    }

    /// The root and every descendant, from one pass over /proc.
    fn scan(&mut self) {
        let mut parent: HashMap<i32, i32> = HashMap::new();
        if let Ok(dir) = std::fs::read_dir(&self.proc_root) {
            for e in dir.flatten() {
                if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok())
                    && let Some((ppid, _)) = self.stat(pid)
                {
                    parent.insert(pid, ppid);
                }
            }
        }
        let mut tree = vec![self.root];
        let mut i = 0;
        while i < tree.len() {
            let p = tree[i];
            tree.extend(parent.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
            i += 1;
        }
        self.pids = tree;
        self.scanned = Some(Instant::now());
    }

    pub fn read(&mut self) -> Option<ProcessCpu> {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.scan();
        }
        let busy = std::fs::read_to_string(self.proc_root.join("stat"))
            .ok()
            .and_then(|s| parse_busy(&s))?;
        let tree = self
            .pids
            .iter()
            .filter_map(|p| self.stat(*p))
            .map(|s| s.1)
            .sum();
        Some(ProcessCpu {
            tree_ticks: tree,
            busy_ticks: busy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        let s = "42 (python3 (train) x) S 7 42 42 0 -1 4194304 100 0 0 0 250 30 5 2 20 0 1 0 100";
        assert_eq!(parse_stat(s), Some((7, 250 + 30 + 5 + 2)));
        assert_eq!(parse_stat("garbage"), None);
        let total = "cpu  100 5 50 800 10 0 5 0 40 0\ncpu0 1 2 3\n";
        assert_eq!(parse_busy(total), Some(100 + 5 + 50 + 5));
    }

    #[test]
    fn a_fake_proc_tree_is_found_and_summed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let stat = |pid: i32, ppid: i32, ticks: u64| {
            std::fs::create_dir_all(p.join(pid.to_string())).unwrap();
            std::fs::write(
                p.join(pid.to_string()).join("stat"),
                format!("{pid} (x) S {ppid} 0 0 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 1"),
            )
            .unwrap();
        };
        stat(10, 1, 100); // the command
        stat(11, 10, 50); // its child
        stat(12, 11, 25); // a grandchild
        stat(20, 1, 999); // someone else
        std::fs::write(p.join("stat"), "cpu  1000 0 0 9000 0 0 0 0 0 0\n").unwrap();
        let mut t = ProcessTree::new(10, p.to_path_buf());
        let r = t.read().unwrap();
        assert_eq!((r.tree_ticks, r.busy_ticks), (175, 1000));
    }
}
