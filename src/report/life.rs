//! `carbontop estimate` over a model's life, formatted: a table by phase and site, JSON, and
//! the same inputs and outputs as an Impact Framework manifest (YAML) for the if-plugin-nnci
//! pipeline, so IF and carbontop can be run on the same figures and compared. Nothing here
//! computes a figure the engine did not (the manifest's inputs are the engine's inputs,
//! split by site share as nn-c's per-location energies are).

use crate::engine::life::{Life, Phase, PhaseFigures, Site, Work};
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh};
use std::fmt::Write as _;

/// What the figures were made from.
pub struct Inputs<'a> {
    pub training: &'a Work,
    pub serving: Option<&'a Work>,
    pub sites: &'a [Site],
}

impl Inputs<'_> {
    fn work(&self, p: Phase) -> Option<&Work> {
        match p {
            Phase::Training => Some(self.training),
            Phase::Serving => self.serving,
        }
    }
}

fn describe(w: &Work) -> String {
    match w {
        Work::Hardware { hw, hours } => format!(
            "{} × {} ({} W × {:.0}%) for {} h",
            hw.count,
            hw.gpu_name,
            hw.gpu_w,
            hw.usage * 100.0,
            hours
        ),
        Work::Queries {
            per_day,
            kwh_per_query,
            days,
            hw,
        } => format!(
            "{per_day} queries/day × {} Wh for {days} days{}",
            kwh_per_query * 1000.0,
            hw.as_ref().map_or(String::new(), |h| format!(
                " on {} × {}",
                h.count, h.gpu_name
            ))
        ),
    }
}

fn band(e: [f64; 3]) -> String {
    if e[1] < e[2] {
        format!(
            "{} ({}–{})",
            fmt_co2e_g(e[0]),
            fmt_co2e_g(e[1]),
            fmt_co2e_g(e[2])
        )
    } else {
        fmt_co2e_g(e[0])
    }
}

pub fn text(i: &Inputs<'_>, l: &Life) -> String {
    let mut out = String::from("carbontop estimate: a model's life\n");
    for p in &l.phases {
        if let Some(w) = i.work(p.phase) {
            let _ = writeln!(out, "  {:<9} {}", p.phase.label(), describe(w));
        }
    }
    let _ = writeln!(
        out,
        "\n  {:<9} {:<12} {:>6} {:>5} {:>9} {:>7} {:>14} {:>14} {:>12}",
        "phase", "site", "share", "PUE", "transport", "g/kWh", "IT", "facility", "operational"
    );
    for p in &l.phases {
        for a in &p.sites {
            let s = &i.sites[a.site];
            let _ = writeln!(
                out,
                "  {:<9} {:<12} {:>5.0}% {:>5.2} {:>9.2} {:>7.1} {:>14} {:>14} {:>12}",
                p.phase.label(),
                s.name,
                s.share * 100.0,
                s.pue,
                s.transport,
                s.g_per_kwh,
                fmt_energy_kwh(a.it_kwh),
                fmt_energy_kwh(a.facility_kwh),
                fmt_co2e_g(a.operational_g)
            );
        }
    }
    out += "\n";
    for p in &l.phases {
        let _ = writeln!(
            out,
            "  {:<9} operational {} CO2e, embodied {}",
            p.phase.label(),
            band([p.operational_g, p.operational_band.0, p.operational_band.1]),
            p.embodied_g.map_or(
                "not counted (give --serve-count for the serving hardware)".into(),
                |e| format!("{} CO2e", band(e))
            )
        );
    }
    let _ = writeln!(
        out,
        "  total     {} CO2e (operational {}, embodied {})",
        band(l.total_g),
        band([l.operational_g, l.operational_band.0, l.operational_band.1]),
        band(l.embodied_g)
    );
    out += "\n  sites:\n";
    for s in i.sites {
        let _ = writeln!(out, "    {} — {}", s.name, s.basis);
    }
    out += "  formulas: the Impact Framework's nn-et / nn-eq (rated power × usage × time × PUE, or \
            queries × energy per query × PUE), nn-c (Σ E_site × I / transport), SCI M for embodied \
            (TE × time / 6-year lifetime, one server per 8 GPUs)";
    out
}

fn phase_json(p: &PhaseFigures, sites: &[Site]) -> serde_json::Value {
    let at: Vec<serde_json::Value> = p
        .sites
        .iter()
        .map(|a| {
            let s = &sites[a.site];
            serde_json::json!({
                "site": s.name, "share": s.share, "pue": s.pue, "transport": s.transport,
                "intensity_g_per_kwh": s.g_per_kwh, "it_energy_kwh": a.it_kwh,
                "facility_energy_kwh": a.facility_kwh, "operational_co2e_g": a.operational_g,
                "operational_co2e_g_low": a.operational_band.0,
                "operational_co2e_g_high": a.operational_band.1,
            })
        })
        .collect();
    let e = p.embodied_g;
    serde_json::json!({
        "phase": p.phase,
        "it_energy_kwh": p.it_kwh,
        "facility_energy_kwh": p.facility_kwh,
        "operational_co2e_g": p.operational_g,
        "operational_co2e_g_low": p.operational_band.0,
        "operational_co2e_g_high": p.operational_band.1,
        "embodied_co2e_g": e.map(|e| e[0]),
        "embodied_co2e_g_low": e.map(|e| e[1]),
        "embodied_co2e_g_high": e.map(|e| e[2]),
        "sites": at,
    })
}

pub fn json(i: &Inputs<'_>, l: &Life) -> String {
    let phases: Vec<serde_json::Value> = l.phases.iter().map(|p| phase_json(p, i.sites)).collect();
    let sites: Vec<serde_json::Value> = i
        .sites
        .iter()
        .map(|s| serde_json::json!({"site": s.name, "basis": s.basis, "phase": s.phase}))
        .collect();
    let v = serde_json::json!({
        "phases": phases,
        "sites": sites,
        "operational_co2e_g": l.operational_g,
        "operational_co2e_g_low": l.operational_band.0,
        "operational_co2e_g_high": l.operational_band.1,
        "embodied_co2e_g": l.embodied_g[0],
        "embodied_co2e_g_low": l.embodied_g[1],
        "embodied_co2e_g_high": l.embodied_g[2],
        "total_co2e_g": l.total_g[0],
        "total_co2e_g_low": l.total_g[1],
        "total_co2e_g_high": l.total_g[2],
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A YAML scalar: numbers bare, text single-quoted.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The plugins' declarations: nn-et and nn-eq as published, one nn-c per phase (its energy
/// list must name what each child computes), and IF's Sum.
const PLUGINS: &str = "initialize:
  plugins:
    nn-et:
      path: 'if-plugin-nnci'
      method: NNET
      global-config:
        input-parameters:
          'hardware/count/training': 'gpu/training'
          'hardware/power/training': 'power/gpu-training'
          'servers/count/training': 'servers/training'
          'servers/power/training': 'power/servers-training'
          'time/training': 'time/training'
          'pue/training': 'pue/training'
        output-parameter: 'energy-consumed-by-training-NN'
    nn-eq:
      path: 'if-plugin-nnci'
      method: NNEQ
      global-config:
        input-parameters:
          'servers/count/query': 'servers/query'
          'servers/power/query': 'power/query'
          'time/query': 'time/query'
          'pue/query': 'pue/query'
        output-parameter: 'energy-consumed-by-query-NN'
    nn-c-training:
      path: 'if-plugin-nnci'
      method: NNC
      global-config:
        input-parameters:
          'location/datacenter-energy': ['energy-consumed-by-training-NN']
          'location/carbon-intensity': ['carbon-intensity/training']
          'location/energy-transport': ['energy-transport-factor/training']
        output-parameter: 'carbon-emission-by-NN'
    nn-c-serving:
      path: 'if-plugin-nnci'
      method: NNC
      global-config:
        input-parameters:
          'location/datacenter-energy': ['energy-consumed-by-query-NN']
          'location/carbon-intensity': ['carbon-intensity/query']
          'location/energy-transport': ['energy-transport-factor/query']
        output-parameter: 'carbon-emission-by-NN'
    sum:
      path: '@grnsft/if-plugins'
      method: Sum
      global-config:
        input-parameters: ['embodied-carbon-of-NN', 'carbon-emission-by-NN']
        output-parameter: 'total-carbon-emission-by-NN'
";

/// One child's inputs for `phase` at one site: the phase's hardware (or queries) at the site's
/// share, its PUE, intensity and transport factor, the site's share of the embodied carbon,
/// and carbontop's own figures for comparison.
fn child_inputs(phase: Phase, w: &Work, s: &Site, p: &PhaseFigures, op_g: f64) -> String {
    let mut out = String::new();
    let emb = p.embodied_g.map_or(0.0, |e| e[0]) * s.share;
    let hours = w.hours();
    let _ = writeln!(out, "        - timestamp: '2026-01-01T00:00:00Z'");
    let _ = writeln!(out, "          duration: {}", hours * 3600.0);
    match (phase, w) {
        (Phase::Training, Work::Hardware { hw, .. }) => {
            let (gw, sw) = hw.power_w();
            let _ = writeln!(
                out,
                "          gpu/training: {}\n          power/gpu-training: {}\n          servers/training: {}\n          power/servers-training: {}\n          time/training: {hours}\n          pue/training: {}\n          carbon-intensity/training: {}\n          energy-transport-factor/training: {}",
                f64::from(hw.count) * s.share,
                gw / f64::from(hw.count),
                f64::from(hw.servers()) * s.share,
                sw / f64::from(hw.servers()),
                s.pue,
                s.g_per_kwh,
                s.transport
            );
        }
        _ => {
            // nn-eq: servers × power × time × PUE; a per-query phase as its mean power.
            let (servers, power) = match w {
                Work::Hardware { hw, .. } => {
                    let (gw, sw) = hw.power_w();
                    (
                        f64::from(hw.count) * s.share,
                        (gw + sw) / f64::from(hw.count),
                    )
                }
                Work::Queries { .. } => (s.share, w.it_kwh() * 1000.0 / hours),
            };
            let _ = writeln!(
                out,
                "          servers/query: {servers}\n          power/query: {power}\n          time/query: {hours}\n          pue/query: {}\n          carbon-intensity/query: {}\n          energy-transport-factor/query: {}",
                s.pue, s.g_per_kwh, s.transport
            );
        }
    }
    let _ = writeln!(out, "          embodied-carbon-of-NN: {emb}");
    let _ = writeln!(out, "          carbontop/operational-g: {op_g}");
    let _ = write!(out, "          carbontop/total-g: {}", op_g + emb);
    out
}

pub fn if_manifest(i: &Inputs<'_>, l: &Life) -> String {
    let mut out = format!(
        "# carbontop {} estimate as an Impact Framework manifest: the if-plugin-nnci pipeline \
         (github.com/teto1992/NN-CI), one child per phase and site.\n\
         # Each child also carries carbontop's own figures (carbontop/*) to compare with IF's \
         output. nn-et and nn-eq reject an input of 0 (e.g. power/servers-training without \
         --memory-gib).\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "name: {}", q("carbontop-estimate"));
    let _ = writeln!(
        out,
        "description: {}",
        q(&format!(
            "a model's life: total {} gCO2e (operational {}, embodied {})",
            l.total_g[0], l.operational_g, l.embodied_g[0]
        ))
    );
    out += "tags:\n";
    out += PLUGINS;
    out += "tree:\n  children:\n";
    for p in &l.phases {
        let Some(w) = i.work(p.phase) else { continue };
        let (first, c) = match p.phase {
            Phase::Training => ("nn-et", "nn-c-training"),
            Phase::Serving => ("nn-eq", "nn-c-serving"),
        };
        for a in &p.sites {
            let s = &i.sites[a.site];
            let _ = writeln!(
                out,
                "    {}:\n      pipeline: [{first}, {c}, sum]\n      inputs:\n{}",
                q(&format!("{}-{}-{}", p.phase.label(), a.site + 1, s.name)),
                child_inputs(p.phase, w, s, p, a.operational_g)
            );
        }
    }
    out.trim_end().to_owned()
}
