//! `carbontop estimate`: a what-if before any run (DESIGN.md §1, the Impact Framework / Green
//! Algorithms style of estimate): energy from the hardware's rated power, operational carbon at
//! the zone's grid intensity, embodied carbon (SCI M term), and equivalents. Pure.
//!
//! Power: P = TDP × usage factor (Green Algorithms: Lannelongue, Grealey & Inouye, Adv. Sci.
//! 2021, "power draw = TDP × usage"), per GPU, plus memory at 0.3725 W/GiB; facility energy
//! = IT energy × PUE. Embodied: M = TE × run time / lifetime with TE per GPU from the embodied
//! table (`constants::GPU_EMBODIED`, with its low–high band) and BLOOM's 2,500 kg per server
//! (without GPUs) over 6 years, one server per 8 GPUs.

use crate::engine::constants::{
    EMBODIED_KG_PER_SERVER, HARDWARE_LIFETIME_YEARS, MEMORY_W_PER_GIB, car_km, embodied_g_of,
    gpu_embodied, machine_embodied, tree_days,
};

/// (names it answers to, full name, board power W, source). Board power (TDP / TBP) from the
/// vendors' datasheets; SXM and PCIe parts differ, so both are listed where both exist.
pub const GPUS: &[(&[&str], &str, f64, &str)] = &[
    (
        &["h200", "h200-sxm"],
        "NVIDIA H200 SXM",
        700.0,
        "NVIDIA H200 datasheet",
    ),
    (
        &["h100", "h100-sxm"],
        "NVIDIA H100 SXM",
        700.0,
        "NVIDIA H100 datasheet",
    ),
    (
        &["h100-pcie"],
        "NVIDIA H100 PCIe",
        350.0,
        "NVIDIA H100 datasheet",
    ),
    (
        &["a100", "a100-sxm"],
        "NVIDIA A100 SXM",
        400.0,
        "NVIDIA A100 datasheet",
    ),
    (
        &["a100-pcie"],
        "NVIDIA A100 PCIe",
        300.0,
        "NVIDIA A100 datasheet",
    ),
    (&["l40s"], "NVIDIA L40S", 350.0, "NVIDIA L40S datasheet"),
    (&["a40"], "NVIDIA A40", 300.0, "NVIDIA A40 datasheet"),
    (&["a10"], "NVIDIA A10", 150.0, "NVIDIA A10 datasheet"),
    (&["l4"], "NVIDIA L4", 72.0, "NVIDIA L4 datasheet"),
    (&["t4"], "NVIDIA T4", 70.0, "NVIDIA T4 datasheet"),
    (
        &["v100", "v100-sxm"],
        "NVIDIA V100 SXM2",
        300.0,
        "NVIDIA V100 datasheet",
    ),
    (
        &["v100-pcie"],
        "NVIDIA V100 PCIe",
        250.0,
        "NVIDIA V100 datasheet",
    ),
    (
        &["rtx4090"],
        "NVIDIA GeForce RTX 4090",
        450.0,
        "NVIDIA RTX 4090 specifications",
    ),
    (
        &["rtx3090"],
        "NVIDIA GeForce RTX 3090",
        350.0,
        "NVIDIA RTX 3090 specifications",
    ),
    (
        &["mi300x"],
        "AMD Instinct MI300X",
        750.0,
        "AMD MI300X datasheet",
    ),
    (
        &["mi250x"],
        "AMD Instinct MI250X",
        560.0,
        "AMD MI250X datasheet",
    ),
];

/// A GPU model by any of its names (case-insensitive).
pub fn gpu(name: &str) -> Option<(&'static str, f64, &'static str)> {
    let n = name.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    GPUS.iter()
        .find(|g| g.0.contains(&n.as_str()))
        .map(|g| (g.1, g.2, g.3))
}

/// The names `--gpu` accepts, for error messages.
pub fn known_gpus() -> String {
    GPUS.iter().map(|g| g.0[0]).collect::<Vec<_>>().join(", ")
}

/// What is estimated.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub gpu_name: String,
    pub gpu_w: f64,
    pub count: u32,
    pub hours: f64,
    /// Share of the rated power drawn on average (0–1).
    pub usage: f64,
    pub pue: f64,
    pub g_per_kwh: f64,
    /// Memory per server, GiB (0: not counted).
    pub mem_gib_per_server: f64,
}

/// The figures, each from the formulas above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub servers: u32,
    pub gpu_kwh: f64,
    pub mem_kwh: f64,
    /// IT × PUE.
    pub energy_kwh: f64,
    pub operational_g: f64,
    pub embodied_g: f64,
    /// The embodied figure at the low and high end of the published TE range.
    pub embodied_low_g: f64,
    pub embodied_high_g: f64,
    pub total_g: f64,
    pub tree_days: f64,
    pub car_km: f64,
}

/// GPUs per server for the embodied share (8-GPU servers, as BLOOM's nodes).
pub const GPUS_PER_SERVER: u32 = 8;

pub fn estimate(p: &Plan) -> Estimate {
    let servers = p.count.div_ceil(GPUS_PER_SERVER).max(1);
    let gpu_kwh = f64::from(p.count) * p.gpu_w * p.usage * p.hours / 1000.0;
    let mem_kwh = f64::from(servers) * p.mem_gib_per_server * MEMORY_W_PER_GIB * p.hours / 1000.0;
    let energy_kwh = (gpu_kwh + mem_kwh) * p.pue;
    let operational_g = energy_kwh * p.g_per_kwh;
    let models = vec![p.gpu_name.as_str(); p.count as usize];
    let te = machine_embodied(&models, servers as usize);
    let secs = p.hours * 3600.0;
    let embodied = embodied_g_of(te.kg, secs);
    let total_g = operational_g + embodied;
    Estimate {
        servers,
        gpu_kwh,
        mem_kwh,
        energy_kwh,
        operational_g,
        embodied_g: embodied,
        embodied_low_g: embodied_g_of(te.low, secs),
        embodied_high_g: embodied_g_of(te.high, secs),
        total_g,
        tree_days: tree_days(total_g),
        car_km: car_km(total_g),
    }
}

/// The constants behind an estimate of `gpu_name`, for the output's footer.
pub fn constants_note(gpu_name: &str) -> String {
    let e = gpu_embodied(gpu_name);
    format!(
        "power = TDP × usage (Green Algorithms); memory {MEMORY_W_PER_GIB} W/GiB; embodied \
         {} kg/GPU ({}–{} kg; {}) + {EMBODIED_KG_PER_SERVER} kg/server (BLOOM) over \
         {HARDWARE_LIFETIME_YEARS} years, one server per {GPUS_PER_SERVER} GPUs; trees \
         11 kg CO2/year, car 175 g/km (Green Algorithms)",
        e.te.kg, e.te.low, e.te.high, e.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_a100s_for_a_day_in_france() {
        let (name, w, _) = gpu("A100").unwrap();
        assert_eq!((name, w), ("NVIDIA A100 SXM", 400.0));
        let e = estimate(&Plan {
            gpu_name: name.into(),
            gpu_w: w,
            count: 8,
            hours: 24.0,
            usage: 1.0,
            pue: 1.0,
            g_per_kwh: 56.0,
            mem_gib_per_server: 0.0,
        });
        // 8 × 400 W × 24 h = 76.8 kWh; × 56 g/kWh = 4300.8 g.
        assert!((e.energy_kwh - 76.8).abs() < 1e-9);
        assert!((e.operational_g - 4300.8).abs() < 1e-6);
        // (8 × 150 + 2500) kg × 24 h / (6 × 365.25 × 24 h).
        let want = 3700.0 * 1000.0 * 24.0 / (6.0 * 365.25 * 24.0);
        assert!((e.embodied_g - want).abs() < 1e-6, "{}", e.embodied_g);
        // The band: A100s at 150 and 318 kg (BLOOM; Chien et al.), the server at 2,500 kg.
        let life_h = 6.0 * 365.25 * 24.0;
        assert!((e.embodied_low_g - 3700.0 * 1000.0 * 24.0 / life_h).abs() < 1e-6);
        let high = (8.0 * 318.0 + 2500.0) * 1000.0 * 24.0 / life_h;
        assert!((e.embodied_high_g - high).abs() < 1e-6);
        assert_eq!(e.servers, 1);
        assert!((e.total_g - (4300.8 + want)).abs() < 1e-6);
    }

    #[test]
    fn servers_usage_memory_and_pue() {
        let e = estimate(&Plan {
            gpu_name: "x".into(),
            gpu_w: 100.0,
            count: 9,
            hours: 10.0,
            usage: 0.5,
            pue: 1.2,
            g_per_kwh: 100.0,
            mem_gib_per_server: 100.0,
        });
        assert_eq!(e.servers, 2);
        assert!((e.gpu_kwh - 4.5).abs() < 1e-12);
        assert!((e.mem_kwh - 2.0 * 100.0 * 0.3725 * 10.0 / 1000.0).abs() < 1e-12);
        assert!((e.energy_kwh - (4.5 + e.mem_kwh) * 1.2).abs() < 1e-12);
        assert_eq!(gpu("H100 PCIe").map(|g| g.1), Some(350.0));
        assert_eq!(gpu("nope"), None);
    }
}
