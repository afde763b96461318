//! Who may use capd, and which GPUs are a caller's — decided from what the kernel says about
//! the calling process (SO_PEERCRED, `/proc`, its cgroup), never from what it sends. Pure over
//! a `/proc` and a cgroup root, so the tests give fake trees.
//!
//! A GPU is the caller's, in this order:
//! 1. `--any-gpu` (a single-user workstation): every GPU.
//! 2. The caller's cgroup v1 `devices.list` (SLURM's `ConstrainDevices`, Docker/Kubernetes
//!    device plugins): `c 195:N` allows `/dev/nvidiaN`, the GPU whose NVML minor number is N. A
//!    list that restricts devices but not to this GPU refuses; an unrestricted one (`a *:*`)
//!    proves nothing and the next rule decides.
//! 3. A compute process NVML lists on the GPU, of the caller's uid, in the caller's cgroup, a
//!    cgroup under it, or one above it other than the root (the job's training process under
//!    `carbontop run`, or beside it in the same job).
//!
//! Otherwise the GPU is refused, saying which rule failed and how to proceed.

use std::path::{Path, PathBuf};

/// The caller as SO_PEERCRED gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Where the kernel's views are (`/proc`, `/sys/fs/cgroup`), for tests to replace.
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub cgroup: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            proc: "/proc".into(),
            cgroup: "/sys/fs/cgroup".into(),
        }
    }
}

/// The group whose members may use capd (uid 0 always may).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
}

/// Small files under /proc and /sys are read whole, at most this much (a `Groups:` line of
/// 65,536 groups is under 512 KiB).
const MAX_PROC_FILE: u64 = 1 << 20;

fn read_small(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(p)
        .ok()?
        .take(MAX_PROC_FILE)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The whitespace-separated numbers of `/proc/PID/status`'s `field:` line.
fn status_ids(roots: &Roots, pid: u32, field: &str) -> Option<Vec<u32>> {
    let s = read_small(&roots.proc.join(pid.to_string()).join("status"))?;
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    Some(
        line.split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect(),
    )
}

/// Whether `caller` may use capd: uid 0, or its primary gid or one of its process's
/// supplementary groups is `group`. The error is the one line sent back.
pub fn admit(caller: &Caller, group: Option<&Group>, roots: &Roots) -> Result<(), String> {
    if caller.uid == 0 {
        return Ok(());
    }
    let Some(g) = group else {
        return Err(format!(
            "uid {} (pid {}): this capd admits only root (it was started without --group)",
            caller.uid, caller.pid
        ));
    };
    if caller.gid == g.gid
        || status_ids(roots, caller.pid, "Groups").is_some_and(|gs| gs.contains(&g.gid))
    {
        return Ok(());
    }
    Err(format!(
        "uid {} (pid {}) is not in group {} (gid {}), which may use capd: ask an admin to \
         add you (usermod -aG {} USER) and log in again",
        caller.uid, caller.pid, g.name, g.gid, g.name
    ))
}

/// `name`'s gid from an `/etc/group` text.
pub fn gid_of(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.trim().parse().ok()
    })
}

/// The process's cgroup path: the v2 (`0::`) line, else the v1 `devices` hierarchy, else
/// systemd's.
pub fn cgroup_of(roots: &Roots, pid: u32) -> Option<String> {
    let text = read_small(&roots.proc.join(pid.to_string()).join("cgroup"))?;
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctl, path))
        })
        .collect();
    let find = |want: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .find(|(c, _)| want(c))
            .map(|(_, p)| (*p).to_owned())
    };
    find(&|c| c.is_empty())
        .or_else(|| find(&|c| c.split(',').any(|x| x == "devices")))
        .or_else(|| find(&|c| c == "name=systemd"))
}

/// The caller's v1 device-cgroup path, when it has one.
fn devices_cgroup(roots: &Roots, pid: u32) -> Option<String> {
    let text = read_small(&roots.proc.join(pid.to_string()).join("cgroup"))?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|x| x == "devices")
            .then(|| path.to_owned())
    })
}

/// What a device cgroup's `devices.list` says about NVIDIA's GPU devices (major 195).
#[derive(Debug, PartialEq, Eq)]
pub enum DeviceList {
    /// Every device (`a *:* rwm`, or `c *:*` / `c 195:*`).
    Unrestricted,
    /// These `/dev/nvidiaN` minors (nvidiactl 255 and nvidia-modeset 254 left out).
    Gpus(Vec<u32>),
}

/// NVIDIA's character-device major (`/dev/nvidia*`).
const NVIDIA_MAJOR: &str = "195";

pub fn parse_device_list(text: &str) -> DeviceList {
    let mut gpus = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(&kind), Some(&dev)) = (f.first(), f.get(1)) else {
            continue;
        };
        let (major, minor) = dev.split_once(':').unwrap_or((dev, ""));
        if kind == "a" || (kind == "c" && (major == "*" || (major == NVIDIA_MAJOR && minor == "*")))
        {
            return DeviceList::Unrestricted;
        }
        if kind == "c"
            && major == NVIDIA_MAJOR
            && let Ok(n) = minor.parse::<u32>()
            && n < 254
        {
            gpus.push(n);
        }
    }
    DeviceList::Gpus(gpus)
}

/// Whether cgroups `a` and `b` are one job's: the same, or one under the other where the upper
/// is not the root (`/` holds everything).
pub fn same_job(a: &str, b: &str) -> bool {
    let under = |lo: &str, hi: &str| {
        hi != "/"
            && lo
                .strip_prefix(hi)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    a == b || under(a, b) || under(b, a)
}

/// What capd knows about one GPU from NVML.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuFacts {
    pub uuid: String,
    /// `nvmlDeviceGetMinorNumber`: the N of `/dev/nvidiaN`.
    pub minor: Option<u32>,
    /// The compute processes running on it.
    pub pids: Vec<u32>,
}

/// Whether GPU `gpu` is `caller`'s; why it is (for the log), or why not (sent back).
pub fn owns(
    caller: &Caller,
    gpu: &GpuFacts,
    any_gpu: bool,
    roots: &Roots,
) -> Result<String, String> {
    if any_gpu {
        return Ok("--any-gpu".into());
    }
    let devices = devices_cgroup(roots, caller.pid).map(|cg| {
        let list = roots
            .cgroup
            .join("devices")
            .join(cg.trim_start_matches('/'))
            .join("devices.list");
        read_small(&list).map(|t| parse_device_list(&t))
    });
    match (&devices, gpu.minor) {
        (Some(Some(DeviceList::Gpus(allowed))), Some(n)) if allowed.contains(&n) => {
            return Ok(format!("the caller's device cgroup allows /dev/nvidia{n}"));
        }
        (Some(Some(DeviceList::Gpus(allowed))), minor) => {
            return Err(format!(
                "{} is not held by your job: your device cgroup allows {} but not {}",
                gpu.uuid,
                if allowed.is_empty() {
                    "no GPU".to_owned()
                } else {
                    allowed
                        .iter()
                        .map(|n| format!("/dev/nvidia{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                minor.map_or("this GPU (its minor number is unknown)".into(), |n| {
                    format!("/dev/nvidia{n}")
                })
            ));
        }
        _ => {}
    }
    let mine = cgroup_of(roots, caller.pid);
    for &p in &gpu.pids {
        let uid = status_ids(roots, p, "Uid").and_then(|u| u.first().copied());
        let cg = cgroup_of(roots, p);
        if uid == Some(caller.uid)
            && let (Some(a), Some(b)) = (&mine, &cg)
            && same_job(a, b)
        {
            return Ok(format!(
                "compute process {p} of uid {} runs on it in the caller's cgroup",
                caller.uid
            ));
        }
    }
    let cgroup_said = match devices {
        Some(Some(DeviceList::Unrestricted)) => "your device cgroup allows every device",
        Some(None) => "your device cgroup's list cannot be read",
        _ => "your cgroup has no device list (cgroup v2 or none)",
    };
    Err(format!(
        "{} is not held by your job: no compute process of uid {} in your cgroup runs on it, \
         and {cgroup_said}; start your job first, or start capd with --any-gpu on a single-user \
         machine",
        gpu.uuid, caller.uid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake /proc and cgroup tree: processes (pid, uid, groups, cgroup file text).
    fn tree(procs: &[(u32, u32, &str, &str)]) -> (tempfile::TempDir, Roots) {
        let d = tempfile::tempdir().unwrap();
        let roots = Roots {
            proc: d.path().join("proc"),
            cgroup: d.path().join("cgroup"),
        };
        for (pid, uid, groups, cgroup) in procs {
            let p = roots.proc.join(pid.to_string());
            fs::create_dir_all(&p).unwrap();
            fs::write(
                p.join("status"),
                format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGroups:\t{groups}\n"),
            )
            .unwrap();
            fs::write(p.join("cgroup"), cgroup).unwrap();
        }
        (d, roots)
    }

    fn caller(pid: u32, uid: u32, gid: u32) -> Caller {
        Caller { pid, uid, gid }
    }

    const V2_JOB: &str = "0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_0\n";

    #[test]
    fn members_of_the_group_and_root_are_admitted() {
        let (_d, r) = tree(&[(10, 1000, "27 1001 ", V2_JOB), (11, 1002, "", V2_JOB)]);
        let g = Group {
            name: "carbontop".into(),
            gid: 1001,
        };
        assert_eq!(admit(&caller(10, 1000, 1000), Some(&g), &r), Ok(()));
        assert_eq!(
            admit(&caller(11, 1002, 1001), Some(&g), &r),
            Ok(()),
            "primary gid"
        );
        assert_eq!(admit(&caller(99, 0, 0), Some(&g), &r), Ok(()), "root");
        let e = admit(&caller(11, 1002, 1002), Some(&g), &r).unwrap_err();
        assert!(
            e.contains("uid 1002 (pid 11) is not in group carbontop (gid 1001)"),
            "{e}"
        );
        let e = admit(&caller(10, 1000, 1000), None, &r).unwrap_err();
        assert!(e.contains("admits only root"), "{e}");
        // A process gone (no /proc entry) is not a member.
        assert!(admit(&caller(12, 1000, 1000), Some(&g), &r).is_err());
    }

    #[test]
    fn group_names_are_looked_up() {
        let f = "root:x:0:\ncarbontop:x:977:alice,bob\ncarbon:x:978:\n";
        assert_eq!(gid_of(f, "carbontop"), Some(977));
        assert_eq!(gid_of(f, "carbon"), Some(978));
        assert_eq!(gid_of(f, "nope"), None);
    }

    #[test]
    fn device_lists_and_cgroup_kinship() {
        assert_eq!(parse_device_list("a *:* rwm\n"), DeviceList::Unrestricted);
        assert_eq!(parse_device_list("c 195:* rwm\n"), DeviceList::Unrestricted);
        assert_eq!(
            parse_device_list(
                "c 1:3 rwm\nc 195:255 rw\nc 195:254 rw\nc 195:3 rw\nc 195:5 rw\nb 8:0 r\n"
            ),
            DeviceList::Gpus(vec![3, 5])
        );
        assert!(same_job("/a/job_7", "/a/job_7/step_0"));
        assert!(same_job("/a/job_7/step_0", "/a/job_7"));
        assert!(!same_job("/a/job_7", "/a/job_70"));
        assert!(
            !same_job("/", "/a/job_7"),
            "the root holds everything: not one job"
        );
        assert!(same_job("/", "/"));
    }

    const V1: &str = "12:devices:/slurm/uid_1000/job_7/step_0\n1:name=systemd:/user.slice\n";

    fn gpu(minor: u32, pids: &[u32]) -> GpuFacts {
        GpuFacts {
            uuid: format!("GPU-{minor}"),
            minor: Some(minor),
            pids: pids.to_vec(),
        }
    }

    #[test]
    fn a_v1_device_cgroup_decides() {
        let (_d, r) = tree(&[(10, 1000, "", V1)]);
        let dir = r.cgroup.join("devices/slurm/uid_1000/job_7/step_0");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("devices.list"), "c 195:255 rw\nc 195:3 rw\n").unwrap();
        let me = caller(10, 1000, 1000);
        assert!(
            owns(&me, &gpu(3, &[]), false, &r)
                .unwrap()
                .contains("/dev/nvidia3")
        );
        let e = owns(&me, &gpu(4, &[]), false, &r).unwrap_err();
        assert!(e.contains("GPU-4 is not held by your job: your device cgroup allows /dev/nvidia3 but not /dev/nvidia4"), "{e}");
        // An unrestricted list proves nothing: the processes decide.
        fs::write(dir.join("devices.list"), "a *:* rwm\n").unwrap();
        let e = owns(&me, &gpu(3, &[]), false, &r).unwrap_err();
        assert!(e.contains("allows every device"), "{e}");
        assert_eq!(owns(&me, &gpu(3, &[]), true, &r), Ok("--any-gpu".into()));
    }

    #[test]
    fn a_process_of_the_caller_in_its_job_proves_the_gpu() {
        let job = "0::/slurm/job_7\n";
        let (_d, r) = tree(&[
            (10, 1000, "", job),
            (20, 1000, "", "0::/slurm/job_7/step_0\n"),
            (30, 1001, "", job),
            (40, 1000, "", "0::/slurm/job_8\n"),
        ]);
        let me = caller(10, 1000, 1000);
        assert!(
            owns(&me, &gpu(0, &[30, 20]), false, &r)
                .unwrap()
                .contains("process 20")
        );
        for (pids, why) in [
            (&[30][..], "another user's process"),
            (&[40], "my process in another job"),
            (&[], "no process"),
            (&[50], "a process gone"),
        ] {
            let e = owns(&me, &gpu(0, pids), false, &r).unwrap_err();
            assert!(
                e.contains("GPU-0 is not held by your job: no compute process of uid 1000")
                    && e.contains("no device list")
                    && e.contains("--any-gpu"),
                "{why}: {e}"
            );
        }
    }
}
