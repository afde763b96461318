//! Network traffic from sysinfo, per interface, counted since the start of the run, with the
//! interfaces' link speeds (read once, at the start) for the port power model.
//!
//! By default the machine's physical interfaces are counted: loopback is never, and virtual
//! interfaces (bridges, veths, ifb, tunnels — whose traffic also crosses a physical one) are left
//! out when sysfs says which they are; in a container, where every interface is virtual, all but
//! loopback count. `--net-iface` names the interfaces explicitly.

use crate::sample::{Links, NetReading};
use crate::source::NetSource;
use std::collections::HashMap;
use std::path::Path;
use sysinfo::Networks;

pub struct SysinfoNet {
    nets: Networks,
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

impl SysinfoNet {
    pub fn new(wanted: &[String], sysfs_root: &Path) -> Result<Self, NetError> {
        let nets =
            Networks::new_with_refreshed_list().map_err(|e| NetError::CannotList(e.to_string()))?;
        let mut available: Vec<String> = nets
            .keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect();
        available.sort();
        let chosen = choose_interfaces(&available, wanted, sysfs_root)?;
        let links = links_of(sysfs_root, &chosen);
        let mut me = Self {
            nets,
            chosen,
            last: HashMap::new(),
            rx: 0,
            tx: 0,
            links,
        };
        me.absorb();
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

    fn absorb(&mut self) {
        for (name, data) in self.nets.iter() {
            let name = name.to_string_lossy();
            if !self.chosen.iter().any(|c| *c == name) {
                continue;
            }
            let (rx, tx) = (data.total_received(), data.total_transmitted());
            let (lrx, ltx) = self.last.get(name.as_ref()).copied().unwrap_or((rx, tx));
            // A counter that went down was reset (interface re-created): count from zero.
            self.rx += if rx >= lrx { rx - lrx } else { rx };
            self.tx += if tx >= ltx { tx - ltx } else { tx };
            self.last.insert(name.into_owned(), (rx, tx));
        }
    }
}

impl NetSource for SysinfoNet {
    fn read(&mut self) -> Option<NetReading> {
        self.nets.refresh(true);
        self.absorb();
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
            format!("{} via sysinfo", self.chosen.join(", "))
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
}
