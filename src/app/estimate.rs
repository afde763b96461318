//! `carbontop estimate`: the what-if, as text or JSON (DESIGN.md §1).

use crate::app::AppError;
use crate::cli::EstimateArgs;
use crate::engine::estimate::{self, Plan};
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh};
use crate::source::grid::table;

/// A GPU model by name: (full name, rated W, source), or the usage error naming `flag`.
pub fn gpu_model(flag: &str, name: &str) -> Result<(&'static str, f64, &'static str), AppError> {
    estimate::gpu(name).ok_or_else(|| {
        AppError::Usage(format!(
            "{flag} {name}: unknown model (known: {})",
            estimate::known_gpus()
        ))
    })
}

/// A zone's (or a fixed) intensity and where it comes from.
pub fn grid_of(intensity: Option<f64>, zone: Option<&str>) -> Result<(f64, String), AppError> {
    Ok(match (intensity, zone) {
        (Some(g), _) => (g, format!("fixed {g} gCO2e/kWh (--intensity)")),
        (None, z) => {
            let r = match z {
                None => table::fallback_for(None, table::Names::Table),
                Some(z) => table::resolve(z).map_err(|e| AppError::Usage(e.to_string()))?,
            };
            (r.entry.g_per_kwh, r.describe())
        }
    })
}

pub fn run(o: &EstimateArgs) -> Result<i32, AppError> {
    if o.serve_days.is_some() || !o.site.is_empty() || o.if_manifest || o.queries_per_day.is_some()
    {
        return crate::app::life::run(o);
    }
    let (name, watts, source) = gpu_model("--gpu", &o.gpu)?;
    let (g_per_kwh, grid) = grid_of(o.intensity, o.zone.as_deref())?;
    let plan = Plan {
        gpu_name: name.into(),
        gpu_w: watts,
        count: o.count,
        hours: o.hours,
        usage: o.utilisation,
        pue: o.pue,
        g_per_kwh,
        mem_gib_per_server: o.memory_gib,
    };
    let e = estimate::estimate(&plan);
    if o.json {
        let v = serde_json::json!({
            "gpu": name, "gpu_w": watts, "count": o.count, "hours": o.hours,
            "utilisation": o.utilisation, "pue": o.pue, "intensity_g_per_kwh": g_per_kwh,
            "servers": e.servers, "gpu_kwh": e.gpu_kwh, "memory_kwh": e.mem_kwh,
            "energy_kwh": e.energy_kwh, "operational_co2e_g": e.operational_g,
            "embodied_co2e_g": e.embodied_g, "embodied_co2e_g_low": e.embodied_low_g,
            "embodied_co2e_g_high": e.embodied_high_g, "total_co2e_g": e.total_g,
            "tree_days": e.tree_days, "car_km": e.car_km,
        });
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| AppError::Runtime(e.to_string()))?
        )?;
        return Ok(0);
    }
    crate::outln!(
        "carbontop estimate: {} × {name} ({watts} W, {source}) for {} h at {:.0}% of rated power",
        o.count,
        o.hours,
        o.utilisation * 100.0
    )?;
    let memory = if o.memory_gib > 0.0 {
        format!("memory {}", fmt_energy_kwh(e.mem_kwh))
    } else {
        "memory not counted: --memory-gib".to_owned()
    };
    crate::outln!(
        "  energy       {} (GPUs {}, {memory}; PUE {})",
        fmt_energy_kwh(e.energy_kwh),
        fmt_energy_kwh(e.gpu_kwh),
        o.pue
    )?;
    crate::outln!(
        "  operational  {} CO2e at {grid}",
        fmt_co2e_g(e.operational_g)
    )?;
    crate::outln!(
        "  embodied     {} CO2e (published range {}–{}; {} server(s), SCI M = TE × time / lifetime)",
        fmt_co2e_g(e.embodied_g),
        fmt_co2e_g(e.embodied_low_g),
        fmt_co2e_g(e.embodied_high_g),
        e.servers
    )?;
    crate::outln!("  total        {} CO2e", fmt_co2e_g(e.total_g))?;
    crate::outln!(
        "  ≈            {:.1} tree-days, {:.1} km by car",
        e.tree_days,
        e.car_km
    )?;
    crate::outln!("  constants    {}", estimate::constants_note(name))?;
    Ok(0)
}
