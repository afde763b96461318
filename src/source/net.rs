//! Network traffic of the machine's interfaces, counted since the start of the run, with the
//! interfaces' link speeds (read once, at the start) for the port power model.
//!
//! Each tick reads one file, `/proc/net/dev`, which the kernel gives for every interface in one
//! table (bytes, packets, … received, then transmitted; `net/core/net-procfs.c`). The file is
//! opened once and kept open: each tick seeks it back to the start and reads it again (a
//! `seq_file` regenerates its text on every read from offset 0), so a tick costs no `openat` at
//! all. The read is bounded (`DEV_MAX_BYTES`); only the chosen interfaces' two byte counters are
//! kept. (sysinfo, used before, opened nine sysfs files per interface per tick, loopback and
//! interfaces that do not count included.)
//!
//! By default the machine's physical interfaces are counted: loopback is never, and virtual
//! interfaces (bridges, veths, ifb, tunnels — whose traffic also crosses a physical one) are left
//! out when sysfs says which they are; in a container, where every interface is virtual, all but
//! loopback count. `--net-iface` names the interfaces explicitly.

use crate::sample::{Links, NetReading};
use crate::source::NetSource;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The most of `/proc/net/dev` read per tick: a line is about 120 bytes, so about 8,000
/// interfaces (a Kubernetes node with thousands of veths stays well inside it).
pub const DEV_MAX_BYTES: u64 = 1 << 20;

/// One interface's line of `/proc/net/dev`: its name and cumulative byte counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevLine {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `NAME: rx_bytes rx_packets … (8 receive
/// fields) tx_bytes …`. A line that does not have that shape is skipped.
pub fn parse_dev(text: &str) -> Vec<DevLine> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let mut f = rest.split_ascii_whitespace();
            let rx_bytes = f.next()?.parse().ok()?;
            let tx_bytes = f.nth(7)?.parse().ok()?;
            Some(DevLine {
                name: name.trim().to_owned(),
                rx_bytes,
                tx_bytes,
            })
        })
        .collect()
}

/// `/proc/net/dev`, kept open and read again from its start each tick.
struct DevFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl DevFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            buf: Vec::new(),
        }
    }

    /// The table now, or None when the file cannot be read (it is opened again next time).
    fn read(&mut self) -> Option<Vec<DevLine>> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let f = self.file.as_mut()?;
        self.buf.clear();
        let ok = f.seek(SeekFrom::Start(0)).is_ok()
            && f.take(DEV_MAX_BYTES).read_to_end(&mut self.buf).is_ok();
        if !ok {
            self.file = None;
            return None;
        }
        Some(parse_dev(&String::from_utf8_lossy(&self.buf)))
    }
}

pub struct ProcNet {
    dev: DevFile,
    chosen: Vec<String>,
    /// Per interface: last raw counters, and bytes accumulated since start.
    last: HashMap<String, (u64, u64)>,
    rx: u64,
    tx: u64,
    links: Links,
}

/// Why the network interfaces to count could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// `--net-iface` names an interface this machine does not have: a usage error.
    #[error("--net-iface {name}: no such interface (this machine has: {})", .available.join(", "))]
    NoSuchInterface {
        name: String,
        available: Vec<String>,
    },
    /// The interfaces cannot be listed.
    #[error("cannot list network interfaces: {0}")]
    CannotList(String),
}

/// True when sysfs places the interface under devices/virtual.
fn is_virtual(sysfs_root: &Path, iface: &str) -> Option<bool> {
    let link = std::fs::read_link(sysfs_root.join("class/net").join(iface)).ok()?;
    Some(link.to_string_lossy().contains("/devices/virtual/"))
}

/// The link speeds of `ifaces` from `/sys/class/net/IFACE/speed` (Mb/s): virtual NICs report
/// −1, or an error, and count as unknown.
pub fn links_of(sysfs_root: &Path, ifaces: &[String]) -> Links {
    let mut l = Links::default();
    for i in ifaces {
        let mbps = std::fs::read_to_string(sysfs_root.join("class/net").join(i).join("speed"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|m| *m > 0);
        match mbps {
            Some(m) => {
                l.known += 1;
                l.known_gbps += m as f64 / 1000.0;
            }
            None => l.unknown += 1,
        }
    }
    l
}

/// Chooses which interfaces to count.
pub fn choose_interfaces(
    available: &[String],
    wanted: &[String],
    sysfs_root: &Path,
) -> Result<Vec<String>, NetError> {
    if !wanted.is_empty() {
        if let Some(w) = wanted.iter().find(|w| !available.contains(w)) {
            return Err(NetError::NoSuchInterface {
                name: w.clone(),
                available: available.to_vec(),
            });
        }
        return Ok(wanted.to_vec());
    }
    let non_lo: Vec<String> = available
        .iter()
        .filter(|n| n.as_str() != "lo")
        .cloned()
        .collect();
    let physical: Vec<String> = non_lo
        .iter()
        .filter(|n| is_virtual(sysfs_root, n) == Some(false))
        .cloned()
        .collect();
    Ok(if physical.is_empty() {
        non_lo
    } else {
        physical
    })
}

impl ProcNet {
    /// Counts the interfaces `wanted` names (default: the physical ones) from `proc_root`'s
    /// `net/dev`, their link speeds from `sysfs_root`.
    pub fn new(wanted: &[String], sysfs_root: &Path, proc_root: &Path) -> Result<Self, NetError> {
        let path = proc_root.join("net/dev");
        let mut dev = DevFile::new(path.clone());
        // Unreadable (a sandbox without procfs): no interface to count, unless some are named.
        let lines = match dev.read() {
            Some(l) => l,
            None if wanted.is_empty() => Vec::new(),
            None => {
                return Err(NetError::CannotList(format!(
                    "{} is not readable",
                    path.display()
                )));
            }
        };
        let mut available: Vec<String> = lines.iter().map(|l| l.name.clone()).collect();
        available.sort();
        let chosen = choose_interfaces(&available, wanted, sysfs_root)?;
        let links = links_of(sysfs_root, &chosen);
        let mut me = Self {
            dev,
            chosen,
            last: HashMap::new(),
            rx: 0,
            tx: 0,
            links,
        };
        me.absorb(&lines);
        me.rx = 0;
        me.tx = 0;
        Ok(me)
    }

    pub fn interfaces(&self) -> &[String] {
        &self.chosen
    }

    /// The counted interfaces' links.
    pub fn links(&self) -> Links {
        self.links
    }

    fn absorb(&mut self, lines: &[DevLine]) {
        for l in lines {
            if !self.chosen.contains(&l.name) {
                continue;
            }
            let (rx, tx) = (l.rx_bytes, l.tx_bytes);
            let (lrx, ltx) = self.last.get(&l.name).copied().unwrap_or((rx, tx));
            // A counter that went down was reset (interface re-created): count from zero.
            self.rx += if rx >= lrx { rx - lrx } else { rx };
            self.tx += if tx >= ltx { tx - ltx } else { tx };
            self.last.insert(l.name.clone(), (rx, tx));
        }
    }
}

impl NetSource for ProcNet {
    fn read(&mut self) -> Option<NetReading> {
        // An unreadable tick keeps the totals so far; the next readable one catches up.
        if let Some(lines) = self.dev.read() {
            self.absorb(&lines);
        }
        Some(NetReading {
            rx_bytes: self.rx,
            tx_bytes: self.tx,
            links: Some(self.links),
            ..NetReading::default()
        })
    }

    fn describe(&self) -> String {
        if self.chosen.is_empty() {
            "no interface to count".into()
        } else {
            format!("{} via /proc/net/dev", self.chosen.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_interface_must_exist() {
        let have = vec!["eth0".to_string(), "lo".to_string()];
        let err =
            choose_interfaces(&have, &["eth9".into()], Path::new("/nonexistent")).unwrap_err();
        assert!(matches!(err, NetError::NoSuchInterface { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "--net-iface eth9: no such interface (this machine has: eth0, lo)"
        );
        let ok = choose_interfaces(&have, &["lo".into()], Path::new("/nonexistent")).unwrap();
        assert_eq!(ok, vec!["lo"]);
    }

    #[test]
    fn link_speeds_come_from_sysfs_and_virtual_nics_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("class/net");
        for (i, speed) in [
            ("eth0", Some("25000\n")),
            ("eth1", Some("-1\n")),
            ("eth2", None),
        ] {
            std::fs::create_dir_all(net.join(i)).unwrap();
            if let Some(s) = speed {
                std::fs::write(net.join(i).join("speed"), s).unwrap();
            }
        }
        let l = links_of(dir.path(), &["eth0".into(), "eth1".into(), "eth2".into()]);
        assert_eq!((l.known, l.known_gbps, l.unknown), (1, 25.0, 2));
    }

    #[test]
    fn loopback_excluded_without_sysfs() {
        let have = vec!["eth0".to_string(), "lo".to_string(), "wlan0".to_string()];
        let got = choose_interfaces(&have, &[], Path::new("/nonexistent")).unwrap();
        assert_eq!(got, vec!["eth0", "wlan0"]);
    }

    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9000      10    0    0    0     0          0         0     9000      10    0    0    0     0       0          0
  eth0:1000 5 0 0 0 0 0 0 2000 6 0 0 0 0 0 0
 veth1: 70 1 0 0 0 0 0 0 80 1 0 0 0 0 0 0
";

    fn dev_with(rx: u64, tx: u64) -> String {
        DEV.replace("1000 5", &format!("{rx} 5"))
            .replace("2000 6", &format!("{tx} 6"))
    }

    #[test]
    fn proc_net_dev_parses_every_interface() {
        let got = parse_dev(DEV);
        let names: Vec<&str> = got.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "veth1"]);
        assert_eq!((got[1].rx_bytes, got[1].tx_bytes), (1000, 2000));
        assert_eq!((got[2].rx_bytes, got[2].tx_bytes), (70, 80));
        assert!(parse_dev("garbage\nx: 1 2\n").is_empty());
    }

    #[test]
    fn one_kept_open_file_counts_deltas_and_resets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        let dev = dir.path().join("net/dev");
        std::fs::write(&dev, dev_with(1000, 2000)).unwrap();
        let mut n = ProcNet::new(&[], Path::new("/nonexistent"), dir.path()).unwrap();
        // Without sysfs nothing is known virtual: all but loopback count.
        assert_eq!(n.interfaces(), ["eth0", "veth1"]);
        let r = n.read().unwrap();
        assert_eq!((r.rx_bytes, r.tx_bytes), (0, 0));
        // Rewritten in place: the open file sees the new text.
        std::fs::write(&dev, dev_with(1500, 2600)).unwrap();
        let r = n.read().unwrap();
        assert_eq!(
            (r.rx_bytes, r.tx_bytes),
            (500, 600),
            "loopback never counts"
        );
        // eth0 re-created: its counters start again from zero and count from there.
        std::fs::write(&dev, dev_with(100, 50)).unwrap();
        let r = n.read().unwrap();
        assert_eq!((r.rx_bytes, r.tx_bytes), (600, 650));
    }

    #[test]
    fn the_real_proc_net_dev_is_read_again_through_one_open_file() {
        if !Path::new("/proc/net/dev").exists() {
            return;
        }
        let mut f = DevFile::new("/proc/net/dev".into());
        let a = f.read().unwrap();
        let b = f.read().unwrap();
        assert!(a.iter().any(|l| l.name == "lo"), "{a:?}");
        assert_eq!(
            a.len(),
            b.len(),
            "the second read from offset 0 sees the whole table"
        );
    }
}
