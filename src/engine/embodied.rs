//! The share of the hardware a run holds, for embodied carbon (DESIGN.md §5): M = TE × (run
//! time / lifetime) × share. A GPU is charged whole while the run uses it; the server around the
//! GPUs is charged by the GPUs in use over the server's GPUs, and a machine without GPUs by the
//! threads the run may use over the host's. Inside a virtual machine the host is not visible:
//! then the share is a labelled assumption with a wide band, never a value picked to look small.

use crate::engine::constants::{EMBODIED_KG_PER_SERVER, EmbodiedKg, gpu_embodied};

/// Hardware threads of the host a cloud VM is taken to run on when its host cannot be seen: a
/// two-socket server of 24-core Xeon Platinum 8175M/8275CL (2 × 24 cores × 2 threads), the host
/// of AWS's m5 and c5 families, whose `.metal` sizes (the whole host) have 96 vCPUs (AWS, "Amazon
/// EC2 instance types", general purpose and compute optimized specifications).
pub const ASSUMED_HOST_THREADS: usize = 96;
/// The largest common two-socket host: 2 × AMD EPYC 9654 (96 cores, 192 threads each; AMD
/// product page) = 384 threads. The low end of a VM's share.
pub const LARGEST_HOST_THREADS: usize = 384;

/// What the share is computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holding {
    /// GPUs the run measures (and is charged for whole).
    pub gpus_used: usize,
    /// GPUs the server has (NVML's count), ≥ `gpus_used`.
    pub gpus_on_server: usize,
    /// Threads the run may use (affinity, cgroup).
    pub visible_threads: usize,
    /// Threads online on this (possibly virtual) machine.
    pub online_threads: usize,
    /// Why this is taken for a VM, if it is one.
    pub virtual_machine: Option<String>,
    /// `--host-threads`: the host's threads, as the user knows them.
    pub host_threads: Option<usize>,
    /// `--embodied-share`: the share, as the user states it.
    pub share: Option<f64>,
}

/// The share of the server the run holds: a point value and its band, and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub point: f64,
    pub low: f64,
    pub high: f64,
    pub basis: String,
}

impl Share {
    fn exact(x: f64, basis: String) -> Self {
        let x = x.clamp(0.0, 1.0);
        Share {
            point: x,
            low: x,
            high: x,
            basis,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    (a as f64 / b.max(1) as f64).min(1.0)
}

/// The server share for this holding.
pub fn server_share(h: &Holding) -> Share {
    let v = h.visible_threads.max(1);
    if let Some(x) = h.share {
        return Share::exact(x, format!("{x} of the server (--embodied-share)"));
    }
    if let Some(n) = h.host_threads {
        return Share::exact(ratio(v, n), format!("{v} of {n} threads (--host-threads)"));
    }
    if h.gpus_on_server > 0 && h.virtual_machine.is_none() {
        return Share::exact(
            ratio(h.gpus_used, h.gpus_on_server),
            format!("{} of {} GPUs of the server", h.gpus_used, h.gpus_on_server),
        );
    }
    match &h.virtual_machine {
        None => Share::exact(
            ratio(v, h.online_threads),
            format!("{v} of {} threads", h.online_threads.max(v)),
        ),
        Some(why) => {
            let point = ratio(v, ASSUMED_HOST_THREADS);
            let low = ratio(v, LARGEST_HOST_THREADS);
            Share {
                point,
                low,
                high: 1.0,
                basis: format!(
                    "{v} of {ASSUMED_HOST_THREADS} threads of an assumed host (a VM by {why}; its \
                     host unknown: band {v} of {LARGEST_HOST_THREADS} to the whole host; \
                     --host-threads or --embodied-share to say)"
                ),
            }
        }
    }
}

/// The TE a run is charged with: each GPU in use whole (its model's row, with the published
/// range), and the server (BLOOM's 2,500 kg) times the run's share of it, band by band.
pub fn scoped_te<S: AsRef<str>>(gpu_models: &[S], share: &Share) -> EmbodiedKg {
    let whole: Vec<(&str, f64)> = gpu_models.iter().map(|m| (m.as_ref(), 1.0)).collect();
    scoped_te_held(&whole, share)
}

/// [`scoped_te`] where the run holds part of a GPU: each (model, part held, 0–1), e.g. a MIG
/// job's slices of its card (`engine::mig::share`).
pub fn scoped_te_held(gpus: &[(&str, f64)], share: &Share) -> EmbodiedKg {
    let server = EMBODIED_KG_PER_SERVER;
    gpus.iter().fold(
        EmbodiedKg {
            kg: server * share.point,
            low: server * share.low,
            high: server * share.high,
        },
        |acc, &(m, held)| {
            let g = gpu_embodied(m).te;
            let held = if held.is_finite() {
                held.clamp(0.0, 1.0)
            } else {
                1.0
            };
            EmbodiedKg {
                kg: acc.kg + g.kg * held,
                low: acc.low + g.low * held,
                high: acc.high + g.high * held,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(visible: usize) -> Holding {
        Holding {
            visible_threads: visible,
            online_threads: visible,
            virtual_machine: Some("the CPU's hypervisor flag".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_small_vm_is_charged_an_assumed_share_with_the_whole_range() {
        let s = server_share(&vm(2));
        assert_eq!(s.point, 2.0 / 96.0);
        assert_eq!(s.low, 2.0 / 384.0);
        assert_eq!(s.high, 1.0);
        assert!(s.basis.contains("assumed host"), "{}", s.basis);
        let te = scoped_te::<&str>(&[], &s);
        assert!((te.kg - 2500.0 * 2.0 / 96.0).abs() < 1e-9);
        assert_eq!(te.high, 2500.0);
        // A MIG job's 3 of 7 slices of an A100 carry 3/7 of its TE.
        let whole = scoped_te(&["NVIDIA A100-SXM4-80GB"], &s);
        let part = scoped_te_held(&[("NVIDIA A100-SXM4-80GB", 3.0 / 7.0)], &s);
        let server = 2500.0 * 2.0 / 96.0;
        assert!(((part.kg - server) - (whole.kg - server) * 3.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn the_user_or_the_machine_can_say_the_share() {
        let mut h = vm(2);
        h.host_threads = Some(64);
        assert_eq!(server_share(&h).point, 2.0 / 64.0);
        h.share = Some(0.25);
        assert_eq!(server_share(&h).point, 0.25);
        let bare = Holding {
            visible_threads: 16,
            online_threads: 128,
            ..Default::default()
        };
        let s = server_share(&bare);
        assert_eq!((s.point, s.low, s.high), (0.125, 0.125, 0.125));
        let gpu_node = Holding {
            gpus_used: 1,
            gpus_on_server: 8,
            ..bare
        };
        assert_eq!(server_share(&gpu_node).point, 0.125);
    }

    #[test]
    fn gpus_in_use_are_charged_whole_beside_the_servers_share() {
        let s = Share::exact(0.5, "half".into());
        let te = scoped_te(&["NVIDIA A100-SXM4-80GB"], &s);
        assert_eq!((te.kg, te.low, te.high), (1400.0, 1400.0, 1568.0));
        assert_eq!(Share::exact(7.0, String::new()).point, 1.0);
    }
}
