//! RDMA traffic (InfiniBand, RoCE: what NCCL uses between nodes) from the RDMA ports' counters,
//! which the machine's network interfaces do not see: RDMA bypasses the kernel's network stack.
//!
//! Each port `SYSFS/class/infiniband/DEV/ports/N/` has `counters/port_xmit_data` and
//! `counters/port_rcv_data`: "Total number of data octets, divided by 4 (lanes), transmitted
//! [received] on all VLs. This is 64 bit counter." (Linux `Documentation/ABI/stable/
//! sysfs-class-infiniband`; the InfiniBand Architecture Specification Vol. 1, §16.1.3.5
//! PortCounters and §16.1.4.11 PortCountersExtended, defines PortXmitData/PortRcvData in units
//! of 4 octets). So bytes = value × 4. Where the device has only the 32-bit PortCounters the
//! value stops at 2^32 − 1 (the spec's counters saturate); a counter seen stuck there is
//! reported once. The port's `rate` ("200 Gb/sec (4X HDR)") gives its line rate for the port
//! model. `hw_counters/` holds per-device operation counts (packets, retransmits, out of
//! sequence), not bytes, so it is not read.
//!
//! The counter files are opened once and kept open: each tick seeks each back to its start and
//! reads it again (sysfs calls the attribute's show() on every read from offset 0), so a tick
//! costs no `openat`.
//!
//! **Attribution.** Port counters are per port, not per process. All RDMA traffic is the
//! machine's (it is cluster traffic, costed on the port model with the RDMA link's power). For
//! `run -- CMD` a tick's RDMA bytes are also the command's only when the command's process tree
//! holds an RDMA device open (`/dev/infiniband/uverbs*`, the verbs device every RDMA user,
//! NCCL's IB transport included, opens) and no other process does; when another job also holds
//! one, the port is shared and its bytes cannot be split: they stay the machine's and the
//! command is charged none of them (said once). Finding the other holders means listing every
//! process's open files, so it is done every `HOLDER_CHECK_TICKS` ticks, not every tick.

use crate::sample::{RdmaReading, Traffic};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How often (in ticks) the processes holding an RDMA device open are listed again.
pub const HOLDER_CHECK_TICKS: u32 = 10;
/// The verbs device files' directory and name prefix.
const UVERBS: &str = "/dev/infiniband/uverbs";
/// The largest value a 32-bit PortCounters counter reaches, where it stops.
const SATURATED_32: u64 = u32::MAX as u64;
/// The most read of one counter file (a decimal u64 and a newline).
const COUNTER_MAX_BYTES: u64 = 64;

/// A sysfs counter file kept open and read again from its start each tick.
struct Counter {
    path: PathBuf,
    file: Option<File>,
}

impl Counter {
    fn new(path: PathBuf) -> Self {
        Self { path, file: None }
    }

    fn read(&mut self) -> Option<u64> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let f = self.file.as_mut()?;
        let mut s = String::new();
        let ok = f.seek(SeekFrom::Start(0)).is_ok()
            && f.take(COUNTER_MAX_BYTES).read_to_string(&mut s).is_ok();
        if !ok {
            self.file = None;
            return None;
        }
        s.trim().parse().ok()
    }
}

/// One RDMA port: its counters, their last values (in 4-octet words) and its line rate.
struct Port {
    name: String,
    xmit: Counter,
    rcv: Counter,
    last: Option<(u64, u64)>,
    gbps: Option<f64>,
}

/// Parses a port's `rate` file: "200 Gb/sec (4X HDR)", "2.5 Gb/sec (1X SDR)" → Gb/s.
pub fn parse_rate(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let v: f64 = it.next()?.parse().ok()?;
    (it.next()? == "Gb/sec" && v.is_finite() && v > 0.0).then_some(v)
}

/// The bytes a counter moved from `old` to `new` (4-octet words): a counter that went down was
/// reset (driver reload, `perfquery -R`): counted from zero. Returns (bytes, saturated).
pub fn word_delta(old: u64, new: u64) -> (u64, bool) {
    let words = if new >= old { new - old } else { new };
    (
        words.saturating_mul(4),
        new == SATURATED_32 && old == SATURATED_32,
    )
}

/// The machine's RDMA ports.
pub struct RdmaPorts {
    ports: Vec<Port>,
    proc_root: PathBuf,
    /// Bytes since the start, the machine's and the command's.
    machine: Traffic,
    own: Traffic,
    /// Whether the command held the RDMA devices alone at the last check (None: not checked,
    /// or not a run).
    exclusive: Option<bool>,
    ticks: u32,
    warned_saturated: bool,
    warned_shared: bool,
    warning: Option<String>,
}

impl RdmaPorts {
    /// The ports under `sysfs_root/class/infiniband`, or None where there are none.
    pub fn probe(sysfs_root: &Path, proc_root: &Path) -> Option<Self> {
        let base = sysfs_root.join("class/infiniband");
        let mut devs: Vec<_> = std::fs::read_dir(&base)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        devs.sort();
        let mut ports = Vec::new();
        for d in devs {
            let Ok(rd) = std::fs::read_dir(base.join(&d).join("ports")) else {
                continue;
            };
            let mut nums: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            nums.sort();
            for n in nums {
                let dir = base.join(&d).join("ports").join(&n);
                let counters = dir.join("counters");
                if !counters.join("port_xmit_data").exists() {
                    continue;
                }
                let gbps = crate::config::read_small(&dir.join("rate"), 256)
                    .ok()
                    .and_then(|s| parse_rate(&s));
                ports.push(Port {
                    name: format!("{d}/{n}"),
                    xmit: Counter::new(counters.join("port_xmit_data")),
                    rcv: Counter::new(counters.join("port_rcv_data")),
                    last: None,
                    gbps,
                });
            }
        }
        if ports.is_empty() {
            return None;
        }
        let mut me = Self {
            ports,
            proc_root: proc_root.to_path_buf(),
            machine: Traffic::default(),
            own: Traffic::default(),
            exclusive: None,
            ticks: 0,
            warned_saturated: false,
            warned_shared: false,
            warning: None,
        };
        me.absorb();
        me.machine = Traffic::default();
        Some(me)
    }

    /// The ports, for the start-up facts: "mlx5_0/1 200 Gb/s, …".
    pub fn describe(&self) -> String {
        let each: Vec<String> = self
            .ports
            .iter()
            .map(|p| match p.gbps {
                Some(g) => format!("{} {g} Gb/s", p.name),
                None => format!("{} rate unknown", p.name),
            })
            .collect();
        each.join(", ")
    }

    /// The ports, those whose rate is known, and their summed rate (Gb/s).
    pub fn links(&self) -> (u16, u16, f64) {
        let known: Vec<f64> = self.ports.iter().filter_map(|p| p.gbps).collect();
        (
            u16::try_from(self.ports.len()).unwrap_or(u16::MAX),
            u16::try_from(known.len()).unwrap_or(u16::MAX),
            known.iter().sum(),
        )
    }

    /// Reads every port's counters; returns the tick's bytes.
    fn absorb(&mut self) -> Traffic {
        let mut tick = Traffic::default();
        let mut saturated = false;
        for p in &mut self.ports {
            let (Some(x), Some(r)) = (p.xmit.read(), p.rcv.read()) else {
                continue;
            };
            if let Some((lx, lr)) = p.last {
                let (tx, sx) = word_delta(lx, x);
                let (rx, sr) = word_delta(lr, r);
                tick.tx_bytes = tick.tx_bytes.saturating_add(tx);
                tick.rx_bytes = tick.rx_bytes.saturating_add(rx);
                saturated |= sx || sr;
            }
            p.last = Some((x, r));
        }
        self.machine.tx_bytes = self.machine.tx_bytes.saturating_add(tick.tx_bytes);
        self.machine.rx_bytes = self.machine.rx_bytes.saturating_add(tick.rx_bytes);
        if saturated && !self.warned_saturated {
            self.warned_saturated = true;
            self.warning = Some(
                "an RDMA port counter is stuck at 2^32−1 (32-bit PortCounters saturate): \
                 RDMA traffic beyond it is not seen"
                    .into(),
            );
        }
        tick
    }

    /// One tick: the machine's RDMA bytes since the start, and (for `run`, `tree` the
    /// command's pids) the command's, by the attribution rule above.
    pub fn read(&mut self, tree: Option<&[i32]>) -> RdmaReading {
        let tick = self.absorb();
        if let Some(pids) = tree {
            if self.ticks.is_multiple_of(HOLDER_CHECK_TICKS) || self.exclusive.is_none() {
                let holders = uverbs_holders(&self.proc_root);
                self.exclusive = Some(exclusive(&holders, pids));
                if self.exclusive == Some(false)
                    && holders.iter().any(|h| pids.contains(h))
                    && !self.warned_shared
                {
                    self.warned_shared = true;
                    self.warning = Some(
                        "another process also uses this machine's RDMA devices: their port \
                         traffic cannot be split by process, so it is the machine's and none \
                         of it is charged to the command"
                            .into(),
                    );
                }
            }
            self.ticks = self.ticks.wrapping_add(1);
            if self.exclusive == Some(true) {
                self.own.tx_bytes = self.own.tx_bytes.saturating_add(tick.tx_bytes);
                self.own.rx_bytes = self.own.rx_bytes.saturating_add(tick.rx_bytes);
            }
        }
        let (ports, known, known_gbps) = self.links();
        RdmaReading {
            machine: self.machine,
            own: tree.map(|_| self.own),
            ports,
            known,
            known_gbps,
            power_w: None,
        }
    }

    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

/// True when some pid of `tree` holds an RDMA device open and no process outside it does.
pub fn exclusive(holders: &[i32], tree: &[i32]) -> bool {
    holders.iter().any(|h| tree.contains(h)) && holders.iter().all(|h| tree.contains(h))
}

/// The processes holding a verbs device (`/dev/infiniband/uverbs*`) open, from the links under
/// `proc_root/PID/fd`. Processes that cannot be read (another user's, without the right) are
/// not seen.
pub fn uverbs_holders(proc_root: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().starts_with(UVERBS))
        });
        if holds {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(root: &Path, dev: &str, n: u32, rate: &str, x: u64, r: u64) {
        let d = root.join(format!("class/infiniband/{dev}/ports/{n}"));
        std::fs::create_dir_all(d.join("counters")).unwrap();
        std::fs::write(d.join("rate"), rate).unwrap();
        set(root, dev, n, x, r);
    }

    fn set(root: &Path, dev: &str, n: u32, x: u64, r: u64) {
        let d = root.join(format!("class/infiniband/{dev}/ports/{n}/counters"));
        std::fs::write(d.join("port_xmit_data"), format!("{x}\n")).unwrap();
        std::fs::write(d.join("port_rcv_data"), format!("{r}\n")).unwrap();
    }

    #[test]
    fn rates_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_rate("200 Gb/sec (4X HDR)\n"), Some(200.0));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(parse_rate("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(parse_rate("0 Gb/sec"), None);
        assert_eq!(parse_rate("fast"), None);
    }

    #[test]
    fn counters_are_words_of_four_octets_and_resets_count_from_zero() {
        assert_eq!(word_delta(100, 350), (1000, false));
        assert_eq!(word_delta(1000, 10), (40, false), "reset: from zero");
        assert_eq!(word_delta(SATURATED_32, SATURATED_32), (0, true));
    }

    #[test]
    fn ports_are_read_from_a_fake_tree_with_reset_and_saturation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        port(root, "mlx5_0", 1, "200 Gb/sec (4X HDR)\n", 1000, 2000);
        port(root, "mlx5_1", 1, "400 Gb/sec (4X NDR)\n", 0, 0);
        let mut p = RdmaPorts::probe(root, Path::new("/nonexistent")).unwrap();
        assert_eq!(p.describe(), "mlx5_0/1 200 Gb/s, mlx5_1/1 400 Gb/s");
        let r = p.read(None);
        assert_eq!(r.machine, Traffic::default(), "counted from the start");
        assert_eq!((r.ports, r.known, r.known_gbps), (2, 2, 600.0));
        assert_eq!(r.own, None, "not a run");
        set(root, "mlx5_0", 1, 1250, 2500);
        set(root, "mlx5_1", 1, 100, 0);
        let r = p.read(None);
        assert_eq!((r.machine.tx_bytes, r.machine.rx_bytes), (1400, 2000));
        // mlx5_0 reset (driver reload): its new values count from zero.
        set(root, "mlx5_0", 1, 10, 20);
        let r = p.read(None);
        assert_eq!((r.machine.tx_bytes, r.machine.rx_bytes), (1440, 2080));
        // A 32-bit counter stuck at its top: said once.
        set(root, "mlx5_1", 1, SATURATED_32, 0);
        p.read(None);
        assert!(p.take_warning().is_none());
        p.read(None);
        assert!(p.take_warning().unwrap().contains("saturate"));
    }

    #[test]
    fn no_infiniband_class_no_source() {
        let dir = tempfile::tempdir().unwrap();
        assert!(RdmaPorts::probe(dir.path(), Path::new("/nonexistent")).is_none());
    }

    #[test]
    fn the_command_gets_the_ports_bytes_only_when_it_alone_holds_a_verbs_device() {
        assert!(exclusive(&[10, 11], &[10, 11, 12]));
        assert!(!exclusive(&[10, 99], &[10, 11]), "shared with pid 99");
        assert!(!exclusive(&[], &[10]), "not an RDMA user");
        assert!(!exclusive(&[99], &[10]));
    }

    #[test]
    fn verbs_holders_come_from_fd_links_and_decide_attribution() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let proc_root = dir.path().join("proc");
        port(&sys, "mlx5_0", 1, "200 Gb/sec (4X HDR)\n", 0, 0);
        let fd = |pid: i32, n: u32, target: &str| {
            let d = proc_root.join(pid.to_string()).join("fd");
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::symlink(target, d.join(n.to_string())).unwrap();
        };
        fd(10, 3, "/dev/infiniband/uverbs0");
        fd(10, 4, "socket:[123]");
        fd(20, 3, "/dev/null");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        assert_eq!(uverbs_holders(&proc_root), vec![10]);
        let mut p = RdmaPorts::probe(&sys, &proc_root).unwrap();
        assert_eq!(p.read(Some(&[10])).own, Some(Traffic::default()));
        set(&sys, "mlx5_0", 1, 100, 50);
        let r = p.read(Some(&[10]));
        assert_eq!(r.own, Some(r.machine), "the command alone: all of it");
        assert_eq!(r.machine.tx_bytes, 400);
        // Another job opens a verbs device: from the next check, nothing more is the command's.
        fd(30, 5, "/dev/infiniband/uverbs1");
        for k in 2..=HOLDER_CHECK_TICKS {
            set(&sys, "mlx5_0", 1, 100 + u64::from(k), 50);
            p.read(Some(&[10]));
        }
        let before = p.read(Some(&[10]));
        set(&sys, "mlx5_0", 1, 10_000, 50);
        let after = p.read(Some(&[10]));
        assert_eq!(after.own, before.own, "shared port: none to the command");
        assert!(after.machine.tx_bytes > before.machine.tx_bytes);
        assert!(p.take_warning().unwrap().contains("another process"));
    }
}
