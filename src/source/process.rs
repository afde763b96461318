//! The watched command's share of the machine on a shared host (after CodeCarbon's process
//! mode): the CPU time of its whole process tree against the machine's busy CPU time, read
//! from /proc. Busy, not all, time: on an otherwise idle machine the run is charged the whole
//! CPU power, idle baseline included, as it would be alone; beside other work it is charged
//! its share. Raw counters only; the Ledger
//! turns them into the tree's share of the CPU energy.
//!
//! Its memory: the tree's resident set (`VmRSS` of each process's `/proc/PID/status`) against
//! the machine's MemTotal ([`MemShare`]), read at every tick beside the CPU time.
//!
//! Each tick reads /proc/stat and the tree's own `/proc/PID/stat` files; the tree itself (new
//! children, grandchildren) is found by a scan of /proc every few seconds, so a busy machine's
//! thousands of processes are not read every tick.
//!
//! A SLURM job's processes (`record --slurm-job ID`, started by `dist/slurm/prolog`) are the
//! tree below every process of the job ([`SlurmJob::owns`]): one in the job's cgroup where
//! SLURM uses cgroups (proctrack/cgroup: a `job_ID` component in `/proc/PID/cgroup`), else the
//! job's step daemons (`slurmstepd: [ID.…]`) and any process whose environment says
//! `SLURM_JOB_ID=ID` (proctrack/linuxproc, as on a VM without cgroup delegation).

use crate::sample::{ProcessCpu, ProcessMem, ProcessReading};
use crate::source::mem::MemShare;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the tree is looked for again.
const RESCAN: Duration = Duration::from_secs(5);

pub struct ProcessTree {
    proc_root: PathBuf,
    root: i32,
    /// A SLURM job's processes instead of one root's tree.
    job: Option<SlurmJob>,
    /// Whether each process is one of the job's, as last judged, with what it was judged as:
    /// its start time and command name (a pid reused, or a process that has since run
    /// another program — slurmd's fork becoming a `slurmstepd` — is judged again).
    judged: HashMap<i32, (Identity, bool)>,
    pids: Vec<i32>,
    scanned: Option<Instant>,
    /// How many times the tree has been scanned (a new scan may have found new processes).
    generation: u64,
    /// The parent of every process seen at the last scan: a scan between the full ones reads
    /// the `stat` of new processes only.
    parents: HashMap<i32, i32>,
    /// The tree's resident memory against MemTotal (None: MemTotal unreadable).
    mem: Option<MemShare>,
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

/// One process on a GPU over the last interval, as NVML reports it: its pid (the host's pid
/// namespace), its mean SM (compute) utilisation in percent where the driver samples it
/// (`nvmlDeviceGetProcessUtilization`), and its GPU memory where given
/// (`nvmlDeviceGetComputeRunningProcesses`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuProc {
    pub pid: u32,
    pub sm_util: Option<f64>,
    pub mem_bytes: Option<u64>,
}

/// The running compute processes merged with the utilisation samples since the last read:
/// one entry per pid, its SM utilisation the mean of its samples. A pid with samples but no
/// longer running (it ended within the interval) still counts for the work it did.
pub fn merge_gpu_procs(running: &[(u32, Option<u64>)], samples: &[(u32, u32)]) -> Vec<GpuProc> {
    let mut by_pid: BTreeMap<u32, (Option<u64>, f64, u32)> = BTreeMap::new();
    for &(pid, mem) in running {
        by_pid.entry(pid).or_insert((None, 0.0, 0)).0 = mem;
    }
    for &(pid, sm) in samples {
        let e = by_pid.entry(pid).or_insert((None, 0.0, 0));
        e.1 += f64::from(sm.min(100));
        e.2 += 1;
    }
    by_pid
        .into_iter()
        .map(|(pid, (mem, sum, n))| GpuProc {
            pid,
            sm_util: (n > 0).then(|| sum / f64::from(n)),
            mem_bytes: mem,
        })
        .collect()
}

/// The watched tree's share (0–1) of one GPU's work, the way Kepler splits a GPU's power:
/// by SM utilisation where the driver gives it per process; else by GPU memory held; else by
/// the count of compute processes. Each pid counts once, so several ranks of one job on one
/// GPU add up to at most the whole GPU and never more (no double counting); a GPU with no
/// process on it does no work for the tree (share 0).
pub fn gpu_tree_share(procs: &[GpuProc], tree: &[i32]) -> f64 {
    let mine = |p: &GpuProc| i32::try_from(p.pid).is_ok_and(|pid| tree.contains(&pid));
    let split = |w: &dyn Fn(&GpuProc) -> f64| {
        let all: f64 = procs.iter().map(w).sum();
        (all > 0.0).then(|| procs.iter().filter(|p| mine(p)).map(w).sum::<f64>() / all)
    };
    split(&|p| p.sm_util.unwrap_or(0.0))
        .or_else(|| split(&|p| p.mem_bytes.unwrap_or(0) as f64))
        .or_else(|| split(&|_| 1.0))
        .unwrap_or(0.0)
        .clamp(0.0, 1.0)
}

/// The tree as the command's sockets are judged against it (`source::sockdiag`).
impl crate::source::sockdiag::Tree for ProcessTree {
    fn inodes(&mut self) -> std::collections::HashSet<u32> {
        crate::source::sockdiag::socket_inodes(&self.proc_root, &self.pids)
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    /// A new socket of the tree's user that no process of the tree holds: a child started
    /// since the last scan may hold it. Looked for at once, reading only new processes' `stat`
    /// (one listing of /proc), so a short-lived child's connection is not missed.
    fn rescan(&mut self) -> bool {
        self.scan_new();
        true
    }

    fn uid(&self) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        let root = match &self.job {
            Some(_) => *self.pids.first()?,
            None => self.root,
        };
        std::fs::metadata(self.proc_root.join(root.to_string()))
            .ok()
            .map(|m| m.uid())
    }
}

impl ProcessTree {
    /// The root and its descendants as last scanned.
    pub fn pids(&self) -> &[i32] {
        &self.pids
    }

    /// A number that changes each time the tree is scanned again.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn new(root: u32, proc_root: PathBuf) -> Self {
        Self {
            mem: MemShare::new(&proc_root),
            proc_root,
            root: i32::try_from(root).unwrap_or(i32::MAX),
            job: None,
            judged: HashMap::new(),
            pids: Vec::new(),
            scanned: None,
            generation: 0,
            parents: HashMap::new(),
        }
    }

    /// A SLURM job's processes (see the module's notes); this process itself is never one.
    pub fn slurm_job(job: SlurmJob, proc_root: PathBuf) -> Self {
        let mut t = Self::new(std::process::id(), proc_root);
        t.job = Some(job);
        t
    }

    fn stat(&self, pid: i32) -> Option<(i32, u64)> {
        std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
    }

    /// The root and every descendant now (one pass over /proc).
    pub fn scan_now(&mut self) -> &[i32] {
        self.scan();
        &self.pids
    }

    /// The root and every descendant, from one pass over /proc (every process's `stat` read
    /// again: a pid reused since the last full scan is seen for what it is now).
    fn scan(&mut self) {
        self.parents.clear();
        self.scan_new();
        self.scanned = Some(Instant::now());
    }

    /// The tree again, reading the `stat` of processes not seen at the last scan only.
    fn scan_new(&mut self) {
        let mut present = std::collections::HashSet::new();
        let mut fresh = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&self.proc_root) {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                present.insert(pid);
                if !self.parents.contains_key(&pid)
                    && let Some((ppid, _)) = self.stat(pid)
                {
                    self.parents.insert(pid, ppid);
                    fresh.push(pid);
                }
            }
        }
        self.parents.retain(|p, _| present.contains(p));
        let roots = match &self.job {
            None => vec![self.root],
            Some(_) => self.job_roots(&fresh, &present),
        };
        let mut seen: std::collections::HashSet<i32> = roots.iter().copied().collect();
        let mut tree = roots;
        let mut i = 0;
        while i < tree.len() {
            let p = tree[i];
            let children: Vec<i32> = self
                .parents
                .iter()
                .filter(|(c, pp)| **pp == p && !seen.contains(c))
                .map(|(c, _)| *c)
                .collect();
            seen.extend(&children);
            tree.extend(children);
            i += 1;
        }
        if self.job.is_some() {
            let me = i32::try_from(std::process::id()).unwrap_or(0);
            tree.retain(|p| *p != me);
        }
        self.pids = tree;
        self.generation += 1;
    }

    /// The job's processes among those now present: the `fresh` ones judged (again, where
    /// their identity changed), the others as judged before.
    fn job_roots(&mut self, fresh: &[i32], present: &std::collections::HashSet<i32>) -> Vec<i32> {
        self.judged.retain(|p, _| present.contains(p));
        let Some(job) = self.job.clone() else {
            return Vec::new();
        };
        for &pid in fresh {
            let dir = self.proc_root.join(pid.to_string());
            let Some(id) = read_bounded(&dir.join("stat"), 4096)
                .and_then(|b| identity(&String::from_utf8_lossy(&b)))
            else {
                continue;
            };
            if self.judged.get(&pid).is_some_and(|(s, _)| *s == id) {
                continue;
            }
            self.judged.insert(pid, (id, job.owns(&dir)));
        }
        let mut roots: Vec<i32> = self
            .judged
            .iter()
            .filter(|(_, (_, ours))| *ours)
            .map(|(p, _)| *p)
            .collect();
        roots.sort_unstable();
        roots
    }

    /// The tree's CPU time against the machine's busy time, and its resident memory against
    /// MemTotal; None when neither can be read.
    pub fn read(&mut self) -> Option<ProcessReading> {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.scan();
        } else if self.job.is_some() {
            // A job's tasks start after its recorder (the prolog runs first) and come and go
            // with its steps: new processes are looked at every tick (one listing of /proc,
            // the `stat` of new pids only), so a short step's work is not missed.
            self.scan_new();
        }
        let cpu = std::fs::read_to_string(self.proc_root.join("stat"))
            .ok()
            .and_then(|s| parse_busy(&s))
            .map(|busy| ProcessCpu {
                tree_ticks: self
                    .pids
                    .iter()
                    .filter_map(|p| self.stat(*p))
                    .map(|s| s.1)
                    .sum(),
                busy_ticks: busy,
            });
        let mem = self.mem.as_ref().map(|m| ProcessMem {
            rss_bytes: m.tree_rss_bytes(&self.pids),
            total_bytes: m.total_bytes(),
        });
        (cpu.is_some() || mem.is_some()).then_some(ProcessReading {
            cpu,
            mem,
            recorded: None,
        })
    }
}

/// A process as judged: its start time (clock ticks after boot, field 22 of its stat: with
/// the pid it names one process) and its command name (field 2, which changes at `exec`).
type Identity = (u64, String);

fn identity(s: &str) -> Option<Identity> {
    let (open, close) = (s.find('(')?, s.rfind(')')?);
    let start = s[close + 1..].split_whitespace().nth(19)?.parse().ok()?;
    Some((start, s.get(open + 1..close)?.to_owned()))
}

/// A SLURM job, as its processes show it in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    id: String,
}

impl SlurmJob {
    /// A job id as SLURM gives it (`SLURM_JOB_ID`: digits); None for anything else.
    pub fn new(id: &str) -> Option<Self> {
        (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
            .then(|| SlurmJob { id: id.to_owned() })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the process whose /proc directory is `dir` is one of the job's: in the job's
    /// cgroup (SLURM's cgroup v1 `/slurm/uid_U/job_ID/…` and v2
    /// `/system.slice/slurmstepd.scope/job_ID/…` layouts both hold a `job_ID` component), one
    /// of its step daemons (`slurmstepd: [ID.0]`, `[ID.batch]`, `[ID.extern]`), or a process
    /// whose environment holds `SLURM_JOB_ID=ID` — but not a prolog or epilog (their
    /// environment has `SLURM_SCRIPT_CONTEXT`), nor what they start.
    pub fn owns(&self, dir: &std::path::Path) -> bool {
        let component = format!("job_{}", self.id);
        let in_cgroup = read_bounded(&dir.join("cgroup"), 64 << 10).is_some_and(|b| {
            String::from_utf8_lossy(&b).lines().any(|l| {
                l.splitn(3, ':')
                    .nth(2)
                    .is_some_and(|path| path.split('/').any(|c| c == component))
            })
        });
        if in_cgroup {
            return true;
        }
        let stepd = format!("slurmstepd: [{}.", self.id);
        if read_bounded(&dir.join("cmdline"), CMDLINE_MAX)
            .is_some_and(|c| c.starts_with(stepd.as_bytes()))
        {
            return true;
        }
        let var = format!("SLURM_JOB_ID={}", self.id);
        read_bounded(&dir.join("environ"), ENVIRON_MAX).is_some_and(|env| {
            let mut vars = env.split(|b| *b == 0);
            let (mut ours, mut script) = (false, false);
            for v in &mut vars {
                ours |= v == var.as_bytes();
                script |= v.starts_with(b"SLURM_SCRIPT_CONTEXT=");
            }
            ours && !script
        })
    }
}

/// The environment variable every process of a watched command's job inherits, its value
/// unique to the run: the job is found by it after its processes have left the tree
/// (`setsid`, a double fork re-parents them to init). Jenkins's ProcessTreeKiller finds a
/// build's processes the same way, by the `BUILD_ID` it sets
/// (<https://wiki.jenkins.io/display/JENKINS/ProcessTreeKiller>, 2024).
pub const JOB_MARKER_VAR: &str = "CARBONTOP_JOB";
/// The most of one `/proc/PID/environ` read (Linux's whole argument and environment space is
/// at most a quarter of the stack limit, 2 MiB by default; carbontop's variable is set among
/// the first the command gets).
const ENVIRON_MAX: u64 = 1 << 20;
/// The most of one `/proc/PID/cmdline` read, and of the command line shown.
const CMDLINE_MAX: u64 = 4096;
const CMDLINE_SHOWN: usize = 80;

/// A process of the watched command's job still running (not a zombie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub pid: i32,
    pub ppid: i32,
    /// Its command line, shortened.
    pub command: String,
}

/// The state letter and the parent pid of a `/proc/PID/stat` line.
fn parse_state(s: &str) -> Option<(char, i32)> {
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?))
}

fn read_bounded(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut v)
        .ok()?;
    Some(v)
}

/// The processes still running whose environment holds `JOB_MARKER_VAR=marker`, or that
/// descend from `root` (one that cleared its environment but is still under the command),
/// `skip` (carbontop itself) aside. Processes of other users are not readable and not listed
/// (as root, all are).
pub fn survivors(proc_root: &std::path::Path, marker: &str, root: i32, skip: i32) -> Vec<Survivor> {
    let tagged = format!("{JOB_MARKER_VAR}={marker}");
    let mut tree = ProcessTree::new(u32::try_from(root).unwrap_or(0), proc_root.to_path_buf());
    let under_root: std::collections::HashSet<i32> = tree.scan_now().iter().copied().collect();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == skip {
            continue;
        }
        let stat = read_bounded(&e.path().join("stat"), 4096)
            .and_then(|b| parse_state(&String::from_utf8_lossy(&b)));
        let Some((_, ppid)) = stat.filter(|(st, _)| !matches!(st, 'Z' | 'X' | 'x')) else {
            continue;
        };
        let ours = under_root.contains(&pid)
            || read_bounded(&e.path().join("environ"), ENVIRON_MAX)
                .is_some_and(|env| env.split(|b| *b == 0).any(|v| v == tagged.as_bytes()));
        if !ours {
            continue;
        }
        let cmd = read_bounded(&e.path().join("cmdline"), CMDLINE_MAX).unwrap_or_default();
        let mut command: String = String::from_utf8_lossy(&cmd)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if command.chars().count() > CMDLINE_SHOWN {
            command = command.chars().take(CMDLINE_SHOWN - 1).collect::<String>() + "…";
        }
        found.push(Survivor { pid, ppid, command });
    }
    found.sort_by_key(|s| s.pid);
    found
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
    fn gpu_share_by_sm_then_memory_then_count_and_ranks_count_once() {
        let p = |pid, sm, mem| GpuProc {
            pid,
            sm_util: sm,
            mem_bytes: mem,
        };
        // Two ranks of the job (10, 11) and someone else's process (99) on one GPU: by SM.
        let g = [
            p(10, Some(40.0), Some(1)),
            p(11, Some(40.0), Some(1)),
            p(99, Some(20.0), Some(1)),
        ];
        assert!((gpu_tree_share(&g, &[10, 11, 12]) - 0.8).abs() < 1e-12);
        // The same pid listed twice by the caller's merge is one entry: never above 1.
        let merged = merge_gpu_procs(&[(10, Some(5)), (10, Some(5))], &[(10, 90), (10, 70)]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].sm_util, Some(80.0));
        assert_eq!(gpu_tree_share(&merged, &[10]), 1.0);
        // No SM samples (idle, or not supported): by memory, then by count.
        let g = [p(10, None, Some(3 << 30)), p(99, Some(0.0), Some(1 << 30))];
        assert!((gpu_tree_share(&g, &[10]) - 0.75).abs() < 1e-12);
        let g = [p(10, None, None), p(99, None, None), p(98, None, None)];
        assert!((gpu_tree_share(&g, &[10]) - 1.0 / 3.0).abs() < 1e-12);
        // Nobody of ours on it, or nobody at all: no share.
        assert_eq!(gpu_tree_share(&[p(99, Some(50.0), None)], &[10]), 0.0);
        assert_eq!(gpu_tree_share(&[], &[10]), 0.0);
        // A pid that ended within the interval still counts for its samples.
        let m = merge_gpu_procs(&[(99, None)], &[(10, 30), (99, 10)]);
        assert!((gpu_tree_share(&m, &[10]) - 0.75).abs() < 1e-12);
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
        // Resident memory: the tree's 3 GiB of the machine's 16 GiB, someone else's not.
        std::fs::write(p.join("meminfo"), "MemTotal:       16777216 kB\n").unwrap();
        for (pid, kb) in [(10, 2_097_152u64), (12, 1_048_576), (20, 4_194_304)] {
            std::fs::write(
                p.join(pid.to_string()).join("status"),
                format!("Name:\tx\nVmRSS:\t{kb} kB\n"),
            )
            .unwrap();
        }
        let mut t = ProcessTree::new(10, p.to_path_buf());
        let r = t.read().unwrap();
        let cpu = r.cpu.unwrap();
        assert_eq!((cpu.tree_ticks, cpu.busy_ticks), (175, 1000));
        assert_eq!(
            r.mem,
            Some(ProcessMem {
                rss_bytes: 3 << 30,
                total_bytes: 16 << 30
            })
        );
        assert_eq!(r.recorded, None);
    }

    #[test]
    fn a_slurm_jobs_processes_by_cgroup_step_daemon_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let proc = |pid: i32, ppid: i32, ticks: u64, files: &[(&str, &[u8])]| {
            let d = p.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("stat"),
                format!("{pid} (x) S {ppid} 0 0 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {pid}"),
            )
            .unwrap();
            for (name, body) in files {
                std::fs::write(d.join(name), body).unwrap();
            }
        };
        std::fs::write(p.join("stat"), "cpu  1000 0 0 9000 0 0 0 0 0 0\n").unwrap();
        // Job 7 under proctrack/linuxproc: its step daemon and the task below it, a daemon
        // of job 71 (not 7's), and a process that left the tree but kept the job's variable.
        proc(100, 1, 1, &[("cmdline", b"slurmstepd: [7.0]\0")]);
        proc(101, 100, 10, &[("environ", b"PATH=/bin\0")]);
        proc(102, 101, 20, &[]);
        proc(200, 1, 1000, &[("cmdline", b"slurmstepd: [71.0]\0")]);
        proc(300, 1, 40, &[("environ", b"A=1\0SLURM_JOB_ID=7\0")]);
        // The prolog that started the recorder has the job's id too, but is no task of it.
        proc(
            400,
            1,
            500,
            &[(
                "environ",
                b"SLURM_JOB_ID=7\0SLURM_SCRIPT_CONTEXT=prolog_slurmd\0",
            )],
        );
        // Job 8 under proctrack/cgroup (v2 and v1 layouts); job_80 is another job.
        proc(
            500,
            1,
            3,
            &[(
                "cgroup",
                b"0::/system.slice/slurmstepd.scope/job_8/step_0/user/task_0\n",
            )],
        );
        proc(
            501,
            1,
            5,
            &[("cgroup", b"4:memory:/slurm/uid_0/job_8/step_batch\n0::/\n")],
        );
        proc(
            502,
            1,
            900,
            &[(
                "cgroup",
                b"0::/system.slice/slurmstepd.scope/job_80/step_0\n",
            )],
        );

        let job = |id| ProcessTree::slurm_job(SlurmJob::new(id).unwrap(), p.to_path_buf());
        let mut seven = job("7");
        let mut pids = seven.scan_now().to_vec();
        pids.sort_unstable();
        assert_eq!(pids, vec![100, 101, 102, 300]);
        assert_eq!(
            seven.read().unwrap().cpu.unwrap().tree_ticks,
            1 + 10 + 20 + 40
        );
        let mut eight = job("8");
        let mut pids = eight.scan_now().to_vec();
        pids.sort_unstable();
        assert_eq!(pids, vec![500, 501]);
        // A job with no process yet: empty, and found once it starts (without waiting for
        // the next full scan).
        let mut nine = job("9");
        assert!(nine.read().unwrap().cpu.unwrap().tree_ticks == 0);
        proc(600, 1, 6, &[("cmdline", b"slurmstepd: [9.batch]\0")]);
        assert_eq!(nine.read().unwrap().cpu.unwrap().tree_ticks, 6);
        // slurmd's fork, seen before it becomes the job's step daemon, is judged again once
        // it has (same pid and start time, another command name).
        proc(700, 1, 2, &[("cmdline", b"/usr/sbin/slurmd\0")]);
        let mut ten = job("10");
        assert!(ten.scan_now().is_empty());
        std::fs::write(
            p.join("700/stat"),
            "700 (slurmstepd) S 1 0 0 0 -1 0 0 0 0 0 2 0 0 0 20 0 1 0 700",
        )
        .unwrap();
        std::fs::write(p.join("700/cmdline"), b"slurmstepd: [10.0]\0").unwrap();
        assert_eq!(ten.scan_now(), [700]);
        assert_eq!(SlurmJob::new("7; rm"), None);
        assert_eq!(SlurmJob::new(""), None);
    }
}
