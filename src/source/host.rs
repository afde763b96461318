//! What this machine can say about the host it runs on, for the embodied share (DESIGN.md §5:
//! "the share of the device the run holds … a VM's threads of the host's"): the hardware threads
//! this process may run on, the threads online, and whether it is a virtual machine (then the
//! host's size is not visible from inside).

use std::path::Path;

/// The facts, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Threads this process may run on (affinity and cgroup quota), at least 1.
    pub visible_threads: usize,
    /// Threads the kernel has online (`/sys/devices/system/cpu/online`), at least `visible`.
    pub online_threads: usize,
    /// Why this is taken for a virtual machine, when it is one.
    pub virtual_machine: Option<String>,
}

/// DMI system vendors of the common hypervisors and clouds (`/sys/class/dmi/id/sys_vendor`).
const VM_VENDORS: &[&str] = &[
    "QEMU",
    "Amazon EC2",
    "Google",
    "Microsoft Corporation",
    "VMware, Inc.",
    "innotek GmbH",
    "Xen",
    "OpenStack Foundation",
    "DigitalOcean",
    "Hetzner",
    "Alibaba Cloud",
    "Oracle Corporation",
];

impl HostFacts {
    /// Reads the facts from `sysfs_root` (normally `/sys`) and `/proc/cpuinfo`.
    pub fn detect(sysfs_root: &Path) -> Self {
        let visible = std::thread::available_parallelism().map_or(1, usize::from);
        let read = |p: &Path| crate::config::read_small(p, 64 << 10).ok();
        let online = read(&sysfs_root.join("devices/system/cpu/online"));
        // About 1.5 KiB a thread: 8 MiB holds the largest machines' cpuinfo.
        let cpuinfo = crate::config::read_small(Path::new("/proc/cpuinfo"), 8 << 20).ok();
        let vendor = read(&sysfs_root.join("class/dmi/id/sys_vendor"));
        let hypervisor = read(&sysfs_root.join("hypervisor/type"));
        Self::from_parts(
            visible,
            online.as_deref(),
            cpuinfo.as_deref(),
            vendor.as_deref(),
            hypervisor.as_deref(),
        )
    }

    /// The facts from the texts of those files (tests give their own).
    pub fn from_parts(
        visible: usize,
        online: Option<&str>,
        cpuinfo: Option<&str>,
        dmi_vendor: Option<&str>,
        hypervisor_type: Option<&str>,
    ) -> Self {
        let visible = visible.max(1);
        let online = online
            .and_then(count_cpu_list)
            .unwrap_or(visible)
            .max(visible);
        let vm = if let Some(h) = hypervisor_type.map(str::trim).filter(|h| !h.is_empty()) {
            Some(format!("hypervisor {h} (/sys/hypervisor/type)"))
        } else if let Some(v) = dmi_vendor
            .map(str::trim)
            .filter(|v| VM_VENDORS.iter().any(|k| v.starts_with(k)))
        {
            Some(format!("DMI vendor \"{v}\""))
        } else if cpuinfo.is_some_and(has_hypervisor_flag) {
            // CPUID leaf 1, ECX bit 31: set by every x86 hypervisor; Linux shows it as a flag.
            Some("the CPU's hypervisor flag".into())
        } else {
            None
        };
        HostFacts {
            visible_threads: visible,
            online_threads: online,
            virtual_machine: vm,
        }
    }
}

/// `0-3,8,10-11` → 7. None for text that is not a CPU list.
pub fn count_cpu_list(text: &str) -> Option<usize> {
    let mut n = 0usize;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let a = part.trim().parse::<usize>().ok()?;
                (a, a)
            }
        };
        n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

/// `/proc/cpuinfo`'s flags include `hypervisor` (CPUID leaf 1, ECX bit 31, which every x86
/// hypervisor sets for its guests).
pub fn has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim() == "flags")
        .any(|(_, v)| v.split_whitespace().any(|f| f == "hypervisor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list("0-18446744073709551615"), None);
    }

    #[test]
    fn a_vm_is_told_by_hypervisor_vendor_or_flag() {
        let flags = "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n";
        let f = HostFacts::from_parts(2, Some("0-1"), Some(flags), None, None);
        assert_eq!(
            (f.visible_threads, f.online_threads),
            (2, 2),
            "online counts threads"
        );
        assert_eq!(
            f.virtual_machine.as_deref(),
            Some("the CPU's hypervisor flag")
        );
        let f = HostFacts::from_parts(4, Some("0-63"), None, Some("Amazon EC2\n"), None);
        assert_eq!(
            f.virtual_machine.as_deref(),
            Some("DMI vendor \"Amazon EC2\"")
        );
        let bare = HostFacts::from_parts(8, Some("0-127"), Some("flags : fpu sse\n"), None, None);
        assert_eq!((bare.visible_threads, bare.online_threads), (8, 128));
        assert_eq!(bare.virtual_machine, None);
        // A cgroup may say more than is online: never fewer online than visible.
        assert_eq!(
            HostFacts::from_parts(8, Some("0-3"), None, None, None).online_threads,
            8
        );
    }
}
