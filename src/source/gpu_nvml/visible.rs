//! The job's own GPUs: which of the machine's GPUs `run -- CMD` is charged for, from what its
//! environment says the job was given. A job given GPU 3 of 8 must not be charged for 8 (users
//! of CodeCarbon and eco2AI hit exactly this under SLURM).
//!
//! The first variable that is set decides:
//! - `CUDA_VISIBLE_DEVICES` (and `GPU_DEVICE_ORDINAL`, which SLURM sets alike): what CUDA will
//!   show the program. Entries are CUDA ordinals, GPU UUIDs (`GPU-…`, a unique prefix is
//!   enough) or MIG devices (`MIG-<uuid>`, or `MIG-GPU-<uuid>/GI/CI` before driver 470). CUDA
//!   numbers devices its own way: fastest first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, ties
//!   broken by PCI bus id, so an ordinal is mapped through the GPUs' PCI bus ids, never taken
//!   as NVML's index; with GPUs of different models and the default order, which GPU CUDA
//!   calls 1 cannot be told here, and that is said. As in CUDA, an entry that names no device
//!   ends the list, and an empty value hides every GPU.
//! - `SLURM_STEP_GPUS`, then `SLURM_JOB_GPUS`: SLURM's global GPU ids, not relative to the
//!   job's device cgroup; they are the `/dev/nvidiaN` files gres.conf lists, matched here by
//!   NVML's minor number (N), which holds when gres.conf lists them in order, as autodetection
//!   and the usual `File=/dev/nvidia[0-7]` do.
//! - `NVIDIA_VISIBLE_DEVICES` (the NVIDIA container runtime): `all`, `none`, `void` or empty
//!   restrict nothing (NVML shows the container what it was given); UUIDs are matched by UUID;
//!   host indices are NVML's, unless NVML sees exactly as many GPUs as listed (inside the
//!   container, which renumbers them from 0).

/// The variables, in the order they are believed.
pub const VARS: [&str; 5] = [
    "CUDA_VISIBLE_DEVICES",
    "SLURM_STEP_GPUS",
    "SLURM_JOB_GPUS",
    "GPU_DEVICE_ORDINAL",
    "NVIDIA_VISIBLE_DEVICES",
];

/// What NVML says about one GPU: enough to match the names the environment gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// NVML's index (nvidia-smi's numbering).
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// PCI (domain, bus, device), when NVML gives it.
    pub pci: Option<(u32, u32, u32)>,
    /// The N of /dev/nvidiaN, when NVML gives it.
    pub minor: Option<u32>,
}

/// Which GPUs to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// No variable restricts them: every GPU.
    All,
    /// These NVML indices (each once, in the variable's order), as `var=value` says.
    Some {
        indices: Vec<u32>,
        var: &'static str,
        value: String,
    },
    /// The variable hides every GPU from the job.
    Hidden { var: &'static str, value: String },
    /// The variable names GPUs that cannot be matched here, for this reason.
    Unknown {
        var: &'static str,
        value: String,
        why: String,
    },
}

/// A MIG device's UUID → the NVML index of the GPU it is on (`Ok(None)`: NVML knows no such
/// MIG device; `Err`: NVML could not say).
pub type MigParent<'a> = &'a dyn Fn(&str) -> Result<Option<u32>, String>;

/// Decides from `env` (a variable's value, `None` when unset) which of `gpus` the job holds.
pub fn pick(env: &dyn Fn(&str) -> Option<String>, gpus: &[Ident], mig: MigParent<'_>) -> Pick {
    for var in VARS {
        let Some(value) = env(var) else {
            continue;
        };
        let blank = value.trim().is_empty();
        let chosen = match var {
            "CUDA_VISIBLE_DEVICES" => cuda(&value, gpus, env("CUDA_DEVICE_ORDER"), mig),
            // Set by SLURM beside CUDA_VISIBLE_DEVICES; empty means nothing here.
            "GPU_DEVICE_ORDINAL" if !blank => cuda(&value, gpus, env("CUDA_DEVICE_ORDER"), mig),
            "SLURM_STEP_GPUS" | "SLURM_JOB_GPUS" if !blank => slurm(&value, gpus),
            "NVIDIA_VISIBLE_DEVICES" => match value.trim() {
                "" | "all" | "none" | "void" => return Pick::All,
                v => container(v, gpus, mig),
            },
            _ => continue,
        };
        return match chosen {
            Ok(indices) if indices.is_empty() => Pick::Hidden { var, value },
            Ok(indices) => Pick::Some {
                indices,
                var,
                value,
            },
            Err(why) => Pick::Unknown { var, value, why },
        };
    }
    Pick::All
}

/// What to say about a pick among `total` GPUs; `None` when it counts them all.
pub fn describe(p: &Pick, total: usize) -> Option<String> {
    match p {
        Pick::All => None,
        Pick::Some { indices, .. } if indices.len() >= total => None,
        Pick::Some {
            indices,
            var,
            value,
        } => {
            let list = indices
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let s = if indices.len() == 1 { "" } else { "s" };
            Some(format!(
                "GPU{s} {list} of {total} counted, from {var}={value} (--all-gpus counts all {total})"
            ))
        }
        Pick::Hidden { var, value } => Some(format!(
            "no GPU counted: {var}={value} shows the job none (--all-gpus counts all {total})"
        )),
        Pick::Unknown { var, value, why } => Some(format!(
            "{var}={value}: {why}; all {total} GPUs counted (--gpu-index picks them)"
        )),
    }
}

/// Each index once, in order.
fn dedup(v: Vec<u32>) -> Vec<u32> {
    let mut out = Vec::with_capacity(v.len());
    for i in v {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The GPU whose UUID is `u` or starts with it (CUDA takes a unique prefix); `None` when none
/// or several are.
fn by_uuid(u: &str, gpus: &[Ident]) -> Option<u32> {
    let u = u.to_ascii_lowercase();
    let mut hits = gpus
        .iter()
        .filter(|g| g.uuid.to_ascii_lowercase().starts_with(&u));
    match (hits.next(), hits.next()) {
        (Some(g), None) => Some(g.index),
        _ => None,
    }
}

/// A `MIG-…` entry's GPU: the legacy form names its GPU's UUID, the new one is asked of NVML.
fn by_mig(e: &str, gpus: &[Ident], mig: MigParent<'_>) -> Result<Option<u32>, String> {
    match e.strip_prefix("MIG-").and_then(|r| r.split_once('/')) {
        Some((gpu, _)) if gpu.starts_with("GPU-") => Ok(by_uuid(gpu, gpus)),
        _ => mig(e),
    }
}

/// CUDA's device order over `gpus`, or why it cannot be known.
fn cuda_order<'a>(gpus: &'a [Ident], order: Option<&str>) -> Result<Vec<&'a Ident>, String> {
    let mut v: Vec<&Ident> = gpus.iter().collect();
    if v.iter().any(|g| g.pci.is_none()) {
        return Err("NVML gives no PCI bus ids to put the GPUs in CUDA's order".into());
    }
    v.sort_by_key(|g| g.pci);
    let by_bus = order.is_some_and(|o| o.trim() == "PCI_BUS_ID");
    // FASTEST_FIRST, the default: GPUs of one model tie, and ties go by PCI bus id.
    if !by_bus && v.windows(2).any(|w| w[0].name != w[1].name) {
        return Err(
            "CUDA numbers these different GPUs fastest first, which cannot be told here; \
             set CUDA_DEVICE_ORDER=PCI_BUS_ID or give GPU UUIDs"
                .into(),
        );
    }
    Ok(v)
}

fn cuda(
    value: &str,
    gpus: &[Ident],
    order: Option<String>,
    mig: MigParent<'_>,
) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let mut ordered: Option<Vec<&Ident>> = None;
    for e in value.split(',').map(str::trim) {
        let found = if let Ok(n) = e.parse::<usize>() {
            if ordered.is_none() {
                ordered = Some(cuda_order(gpus, order.as_deref())?);
            }
            ordered.as_ref().and_then(|o| o.get(n)).map(|g| g.index)
        } else if e.starts_with("GPU-") {
            by_uuid(e, gpus)
        } else if e.starts_with("MIG-") {
            by_mig(e, gpus, mig)?
        } else {
            None
        };
        // As CUDA does: the first entry that names no device ends the list.
        match found {
            Some(i) => out.push(i),
            None => break,
        }
    }
    Ok(dedup(out))
}

/// SLURM's ids: `0,2,5` or ranges `0-3`.
fn slurm(value: &str, gpus: &[Ident]) -> Result<Vec<u32>, String> {
    let mut ids = Vec::new();
    for e in value.split(',').map(str::trim) {
        let bad = || format!("{e:?} is not a GPU id");
        let (a, b) = match e.split_once('-') {
            Some((a, b)) => (
                a.parse::<u32>().map_err(|_| bad())?,
                b.parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let n = e.parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if b < a || b - a > 1024 {
            return Err(bad());
        }
        ids.extend(a..=b);
    }
    if gpus.iter().any(|g| g.minor.is_none()) {
        return Err("NVML gives no minor numbers to match SLURM's GPU ids".into());
    }
    let mut out = Vec::new();
    for id in ids {
        match gpus.iter().find(|g| g.minor == Some(id)) {
            Some(g) => out.push(g.index),
            None => return Err(format!("no /dev/nvidia{id} among this machine's GPUs")),
        }
    }
    Ok(dedup(out))
}

/// NVIDIA_VISIBLE_DEVICES's list.
fn container(value: &str, gpus: &[Ident], mig: MigParent<'_>) -> Result<Vec<u32>, String> {
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let all_indices = entries
        .iter()
        .all(|e| e.split(':').all(|p| p.parse::<u32>().is_ok()));
    // Inside the container NVML shows exactly the GPUs listed, renumbered from 0.
    if all_indices && entries.len() == gpus.len() {
        return Ok(gpus.iter().map(|g| g.index).collect());
    }
    let mut out = Vec::new();
    for e in entries {
        // `N` or `N:M` (MIG device M of GPU N): host indices, NVML's.
        let found = if let Some(n) = e.split(':').next().and_then(|n| n.parse::<u32>().ok()) {
            gpus.iter().find(|g| g.index == n).map(|g| g.index)
        } else if e.starts_with("GPU-") {
            by_uuid(e, gpus)
        } else if e.starts_with("MIG-") {
            by_mig(e, gpus, mig)?
        } else {
            None
        };
        out.push(found.ok_or_else(|| format!("no GPU {e} here"))?);
    }
    Ok(dedup(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` GPUs named `name`, PCI bus = 0x10 + index, minor = index.
    fn gpus(n: u32, name: &str) -> Vec<Ident> {
        (0..n)
            .map(|i| Ident {
                index: i,
                name: name.into(),
                uuid: format!("GPU-{i:08x}-aaaa-4000-8000-000000000000"),
                pci: Some((0, 0x10 + i, 0)),
                minor: Some(i),
            })
            .collect()
    }

    fn no_mig(_: &str) -> Result<Option<u32>, String> {
        Ok(None)
    }

    fn with(vars: &[(&str, &str)], g: &[Ident]) -> Pick {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        pick(&env, g, &no_mig)
    }

    fn some(p: &Pick) -> Vec<u32> {
        match p {
            Pick::Some { indices, .. } => indices.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_set_is_every_gpu() {
        assert_eq!(with(&[], &gpus(8, "A100")), Pick::All);
        assert_eq!(
            with(&[("NVIDIA_VISIBLE_DEVICES", "all")], &gpus(8, "A100")),
            Pick::All
        );
        assert_eq!(with(&[("SLURM_JOB_GPUS", "")], &gpus(8, "A100")), Pick::All);
    }

    #[test]
    fn cuda_ordinals_follow_pci_order_not_nvmls() {
        // NVML index 0 sits on the highest bus: CUDA's ordinal 0 is NVML's GPU 1.
        let mut g = gpus(3, "A100");
        g[0].pci = Some((0, 0x90, 0));
        let p = with(&[("CUDA_VISIBLE_DEVICES", "0,2")], &g);
        assert_eq!(some(&p), [1, 0]);
        assert_eq!(
            describe(&p, 3).as_deref(),
            Some("GPUs 1, 0 of 3 counted, from CUDA_VISIBLE_DEVICES=0,2 (--all-gpus counts all 3)")
        );
    }

    #[test]
    fn mixed_models_need_pci_order_or_uuids() {
        let mut g = gpus(2, "A100");
        g[1].name = "T4".into();
        let p = with(&[("CUDA_VISIBLE_DEVICES", "1")], &g);
        assert!(
            matches!(&p, Pick::Unknown { why, .. } if why.contains("CUDA_DEVICE_ORDER=PCI_BUS_ID"))
        );
        assert!(
            describe(&p, 2)
                .unwrap()
                .ends_with("; all 2 GPUs counted (--gpu-index picks them)")
        );
        let p = with(
            &[
                ("CUDA_VISIBLE_DEVICES", "1"),
                ("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
            ],
            &g,
        );
        assert_eq!(some(&p), [1]);
        // A UUID needs no order.
        let p = with(&[("CUDA_VISIBLE_DEVICES", "GPU-00000001")], &g);
        assert_eq!(some(&p), [1]);
    }

    #[test]
    fn an_entry_naming_no_device_ends_the_list_and_empty_hides_all() {
        let g = gpus(4, "H100");
        assert_eq!(some(&with(&[("CUDA_VISIBLE_DEVICES", "2,7,1")], &g)), [2]);
        assert_eq!(some(&with(&[("CUDA_VISIBLE_DEVICES", "3,3")], &g)), [3]);
        for hide in ["", "-1", "NoDevFiles"] {
            let p = with(&[("CUDA_VISIBLE_DEVICES", hide)], &g);
            assert!(matches!(p, Pick::Hidden { .. }), "{hide:?}: {p:?}");
        }
        // An ambiguous UUID prefix names no one device.
        let p = with(&[("CUDA_VISIBLE_DEVICES", "GPU-0000000")], &g);
        assert!(matches!(p, Pick::Hidden { .. }), "{p:?}");
    }

    #[test]
    fn mig_devices_count_their_gpu() {
        let g = gpus(4, "A100");
        let legacy = "MIG-GPU-00000002-aaaa-4000-8000-000000000000/1/0";
        assert_eq!(some(&with(&[("CUDA_VISIBLE_DEVICES", legacy)], &g)), [2]);
        let env = |k: &str| (k == "CUDA_VISIBLE_DEVICES").then(|| "MIG-abc".to_owned());
        let mig = |u: &str| Ok((u == "MIG-abc").then_some(3));
        assert_eq!(some(&pick(&env, &g, &mig)), [3]);
        let broken = |_: &str| Err("no MIG support".to_owned());
        assert!(matches!(pick(&env, &g, &broken), Pick::Unknown { .. }));
    }

    #[test]
    fn slurm_ids_are_minor_numbers_and_the_step_comes_first() {
        let mut g = gpus(8, "A100");
        // NVML's order differs from the device files'.
        g[3].minor = Some(5);
        g[5].minor = Some(3);
        let p = with(&[("SLURM_JOB_GPUS", "3,4"), ("SLURM_STEP_GPUS", "3")], &g);
        assert_eq!(some(&p), [5]);
        assert_eq!(some(&with(&[("SLURM_JOB_GPUS", "0-2")], &g)), [0, 1, 2]);
        assert!(matches!(
            with(&[("SLURM_JOB_GPUS", "9")], &g),
            Pick::Unknown { .. }
        ));
        // CUDA_VISIBLE_DEVICES is what the program uses: it wins.
        let p = with(
            &[("SLURM_JOB_GPUS", "3"), ("CUDA_VISIBLE_DEVICES", "0")],
            &g,
        );
        assert_eq!(some(&p), [0]);
    }

    #[test]
    fn container_lists_are_host_indices_or_already_applied() {
        let g = gpus(8, "A100");
        assert_eq!(
            some(&with(&[("NVIDIA_VISIBLE_DEVICES", "6,7")], &g)),
            [6, 7]
        );
        let uuid = "GPU-00000004-aaaa-4000-8000-000000000000";
        assert_eq!(some(&with(&[("NVIDIA_VISIBLE_DEVICES", uuid)], &g)), [4]);
        // Inside the container NVML sees the two it was given, as 0 and 1.
        let inside = gpus(2, "A100");
        assert_eq!(
            some(&with(&[("NVIDIA_VISIBLE_DEVICES", "6,7")], &inside)),
            [0, 1]
        );
    }
}
