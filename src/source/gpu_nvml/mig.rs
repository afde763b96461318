//! The job's MIG instances (issue 19): which instances of which card the job was given, their
//! compute slices and the card's, read from NVML. NVML measures power per card only; the
//! engine charges the job the card's figures × these slices (`engine::mig`).
//!
//! NVML calls (nvml-wrapper 0.13): `nvmlDeviceGetHandleByUUID` (a `MIG-…` UUID gives a MIG
//! device handle), `nvmlDeviceGetDeviceHandleFromMigDeviceHandle` (its card),
//! `nvmlDeviceGetAttributes_v2` (MIG handles only: the instance's GPU- and compute-instance
//! slice counts and memory), `nvmlDeviceGetName` (`NVIDIA A100-SXM4-40GB MIG 3g.20gb` on a
//! recent driver), and `nvmlDeviceGetGpuInstanceProfileInfo` on the card for each profile: the
//! card's slices are the largest profile's (7 on A100 and H100, 4 on A30).

use crate::sample::MigShare;
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

/// NVML's GPU-instance profile ids, 1-slice (0) to the last it defines
/// (`NVML_GPU_INSTANCE_PROFILE_COUNT` = 17 in nvml-wrapper-sys 0.10's bindings).
const PROFILES: u32 = 17;

/// One instance the job holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub uuid: String,
    /// Its card's NVML index.
    pub card: u32,
    /// Compute slices, in the card's units.
    pub slices: u32,
    /// `3g.40gb`, `1c.3g.40gb`.
    pub profile: String,
}

/// The profile NVML's name gives after " MIG " (`NVIDIA H100 80GB HBM3 MIG 3g.40gb`), else one
/// made from the slice counts and memory as nvidia-smi writes it (memory in GB rounded up:
/// an A100-40GB 3g.20gb instance has 19968 MiB).
pub fn profile_of(name: Option<&str>, gi: u32, ci: u32, mem_mib: u64) -> String {
    if let Some(p) = name
        .and_then(|n| n.rsplit_once(" MIG "))
        .map(|(_, p)| p.trim())
        .filter(|p| !p.is_empty() && p.len() <= 32)
    {
        return p.to_owned();
    }
    let gb = mem_mib.div_ceil(1024);
    if ci > 0 && ci < gi {
        format!("{ci}c.{gi}g.{gb}gb")
    } else {
        format!("{gi}g.{gb}gb")
    }
}

/// The MIG instance whose UUID is `uuid`, when NVML knows it as one.
pub fn instance(nvml: &Nvml, uuid: &str) -> Result<Option<Instance>, String> {
    let d = match nvml.device_by_uuid(uuid) {
        Ok(d) => d,
        Err(NvmlError::NotFound | NvmlError::InvalidArg) => return Ok(None),
        Err(e) => return Err(format!("NVML cannot look {uuid} up ({e})")),
    };
    if !d.mig_is_mig_device_handle().unwrap_or(false) {
        return Ok(None);
    }
    let card = d
        .mig_parent_device()
        .and_then(|p| p.index())
        .map_err(|e| format!("NVML cannot say which GPU {uuid} is on ({e})"))?;
    let a = d
        .attributes()
        .map_err(|e| format!("NVML gives no slice count for {uuid} ({e})"))?;
    let slices = if a.compute_instance_slice_count > 0 {
        a.compute_instance_slice_count
    } else {
        a.gpu_instance_slice_count
    };
    if slices == 0 {
        return Err(format!("NVML gives {uuid} no slices"));
    }
    Ok(Some(Instance {
        uuid: uuid.to_owned(),
        card,
        slices,
        profile: profile_of(
            d.name().ok().as_deref(),
            a.gpu_instance_slice_count,
            a.compute_instance_slice_count,
            a.memory_size_mb,
        ),
    }))
}

/// The card's slices: the largest GPU-instance profile it offers.
pub fn card_slices(nvml: &Nvml, card: u32) -> Result<u32, String> {
    let d = nvml
        .device_by_index(card)
        .map_err(|e| format!("GPU {card}: {e}"))?;
    (0..PROFILES)
        .filter_map(|p| d.profile_info(p).ok())
        .map(|i| i.slice_count)
        .max()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("NVML gives GPU {card} no MIG profiles to count its slices"))
}

/// The instances one card holds for the job, as one share: their slices summed (each instance
/// once), never more than the card's.
pub fn share_of(instances: &[Instance], of: u32, card_limit_w: Option<f64>) -> MigShare {
    let mut seen: Vec<&str> = Vec::new();
    let mut share = MigShare {
        of,
        card_limit_w,
        ..MigShare::default()
    };
    for i in instances {
        if seen.contains(&i.uuid.as_str()) {
            continue;
        }
        seen.push(&i.uuid);
        share.slices = share.slices.saturating_add(i.slices).min(of);
        share.profiles.push(i.profile.clone());
    }
    share
}

/// The `MIG-…` entries of a variable's value, in order (the others are GPUs or ordinals).
pub fn mig_entries(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| e.starts_with("MIG-"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_nvmls_name_else_made_as_nvidia_smi_writes_it() {
        assert_eq!(
            profile_of(Some("NVIDIA H100 80GB HBM3 MIG 3g.40gb"), 3, 3, 40192),
            "3g.40gb"
        );
        assert_eq!(profile_of(None, 3, 3, 19968), "3g.20gb");
        assert_eq!(profile_of(Some("NVIDIA A100"), 3, 1, 19968), "1c.3g.20gb");
        assert_eq!(profile_of(None, 1, 1, 4864), "1g.5gb");
    }

    #[test]
    fn instances_of_one_card_are_one_share_each_counted_once() {
        let i = |u: &str, s: u32, p: &str| Instance {
            uuid: u.into(),
            card: 0,
            slices: s,
            profile: p.into(),
        };
        let s = share_of(
            &[
                i("MIG-a", 3, "3g.40gb"),
                i("MIG-b", 2, "2g.20gb"),
                i("MIG-a", 3, "3g.40gb"),
            ],
            7,
            Some(700.0),
        );
        assert_eq!((s.slices, s.of), (5, 7));
        assert_eq!(s.profiles, ["3g.40gb", "2g.20gb"]);
        let s = share_of(&[i("MIG-a", 7, "7g"), i("MIG-b", 7, "7g")], 7, None);
        assert_eq!(s.slices, 7, "never more than the card");
        assert_eq!(mig_entries("0, MIG-x ,GPU-y,MIG-z"), ["MIG-x", "MIG-z"]);
    }
}
