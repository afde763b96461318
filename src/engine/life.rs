//! A model's whole life before it runs (`carbontop estimate` with a serving phase or sites):
//! training, then serving queries, across several data centres each with its own grid, PUE,
//! share of the work and energy transport factor, plus the hardware's embodied carbon. The
//! formulas are the Impact Framework's NN plugins (Lannelongue-style rated power, as
//! `estimate`), so an IF pipeline and carbontop can be checked against each other
//! (`--if-manifest`):
//!
//! - nn-et: E_train = PUE × (GPUs × P_gpu × usage + servers × P_server) × hours / 1000 (kWh);
//!   P_server here is the servers' memory power (0.3725 W/GiB, Green Algorithms), as
//!   `estimate` counts it.
//! - nn-eq: E_serve = PUE × servers × P × hours / 1000; or, per query, queries × kWh per
//!   query (× PUE), the energy per query given or measured from a recording of a serving run.
//! - nn-c: C = Σ_sites E_site × I_site / transport_site, E_site the site's share of the
//!   phase's energy at its own PUE (a transport factor of 0.95 loses 5% on the way).
//! - Embodied: SCI's M = TE × time / lifetime per phase's hardware (the per-device table with
//!   its published range; one server per 8 GPUs), not nn-emb's production-energy form, whose
//!   inputs (kWh to make a GPU, the factory's grid) have no published per-model figures.
//!   Source: teto1992/NN-CI (the IF `if-plugin-nnci` plugins, MIT), `src/lib/NN-*/index.ts`.

use crate::engine::constants::{MEMORY_W_PER_GIB, embodied_g_of, machine_embodied};
use crate::engine::estimate::GPUS_PER_SERVER;

/// Which phases a site serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Training,
    Serving,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Training => "training",
            Phase::Serving => "serving",
        }
    }
}

/// A data centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The zone's code, or `fixed` for a given intensity.
    pub name: String,
    /// Where its intensity comes from (zone, year, basis, source).
    pub basis: String,
    pub g_per_kwh: f64,
    pub pue: f64,
    /// Its share of each phase's work (0–1; a phase's sites sum to 1).
    pub share: f64,
    /// nn-c's energy transport factor (0–1]: the intensity is divided by it.
    pub transport: f64,
    /// The intensity's band as factors of it: a table's annual mean ×0.7–1.3
    /// (`constants::GRID_TABLE_BAND`), a given one (1, 1).
    pub band: (f64, f64),
    /// The phases it takes part in (None: both).
    pub phase: Option<Phase>,
}

/// GPUs drawing a share of their rated power, in servers of [`GPUS_PER_SERVER`].
#[derive(Debug, Clone, PartialEq)]
pub struct Hardware {
    pub gpu_name: String,
    pub gpu_w: f64,
    pub count: u32,
    pub usage: f64,
    /// Memory per server (GiB, 0: not counted).
    pub mem_gib_per_server: f64,
}

impl Hardware {
    pub fn servers(&self) -> u32 {
        self.count.div_ceil(GPUS_PER_SERVER).max(1)
    }

    /// The GPUs' and the servers' power (W): nn-et's |H| × P_H and |S| × P_S.
    pub fn power_w(&self) -> (f64, f64) {
        (
            f64::from(self.count) * self.gpu_w * self.usage,
            f64::from(self.servers()) * self.mem_gib_per_server * MEMORY_W_PER_GIB,
        )
    }

    /// IT energy over `hours` (kWh).
    pub fn it_kwh(&self, hours: f64) -> f64 {
        let (g, s) = self.power_w();
        (g + s) * hours / 1000.0
    }

    /// Embodied carbon over `hours` (g; point, low, high): M = TE × time / lifetime.
    pub fn embodied_g(&self, hours: f64) -> [f64; 3] {
        let models = vec![self.gpu_name.as_str(); self.count as usize];
        let te = machine_embodied(&models, self.servers() as usize);
        let s = hours * 3600.0;
        [
            embodied_g_of(te.kg, s),
            embodied_g_of(te.low, s),
            embodied_g_of(te.high, s),
        ]
    }
}

/// How a phase draws energy.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Hardware for a time (nn-et, nn-eq).
    Hardware { hw: Hardware, hours: f64 },
    /// Queries × energy per query, over the deployment (`hw` for its embodied carbon, if said).
    Queries {
        per_day: f64,
        kwh_per_query: f64,
        days: f64,
        hw: Option<Hardware>,
    },
}

impl Work {
    pub fn it_kwh(&self) -> f64 {
        match self {
            Work::Hardware { hw, hours } => hw.it_kwh(*hours),
            Work::Queries {
                per_day,
                kwh_per_query,
                days,
                ..
            } => per_day * days * kwh_per_query,
        }
    }

    pub fn hours(&self) -> f64 {
        match self {
            Work::Hardware { hours, .. } => *hours,
            Work::Queries { days, .. } => days * 24.0,
        }
    }

    pub fn hardware(&self) -> Option<&Hardware> {
        match self {
            Work::Hardware { hw, .. } => Some(hw),
            Work::Queries { hw, .. } => hw.as_ref(),
        }
    }
}

/// One phase at one site.
#[derive(Debug, Clone, PartialEq)]
pub struct AtSite {
    pub site: usize,
    pub it_kwh: f64,
    /// IT × the site's PUE.
    pub facility_kwh: f64,
    /// Facility energy × I / transport, and at the ends of the intensity's band.
    pub operational_g: f64,
    pub operational_band: (f64, f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseFigures {
    pub phase: Phase,
    pub it_kwh: f64,
    pub facility_kwh: f64,
    pub operational_g: f64,
    pub operational_band: (f64, f64),
    /// None: no hardware known for it (a per-query serving phase without `--serve-count`).
    pub embodied_g: Option<[f64; 3]>,
    pub sites: Vec<AtSite>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    pub phases: Vec<PhaseFigures>,
    pub operational_g: f64,
    pub operational_band: (f64, f64),
    pub embodied_g: [f64; 3],
    /// Operational + embodied, with the embodied band.
    pub total_g: [f64; 3],
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifeError {
    #[error("the {0} phase has no site (give a --site for it)")]
    NoSite(&'static str),
    #[error("the {0} phase's site shares sum to {1}, not 1")]
    Shares(&'static str, f64),
}

/// The sites of `phase`, by index.
fn sites_of(sites: &[Site], phase: Phase) -> Vec<usize> {
    (0..sites.len())
        .filter(|&i| sites[i].phase.is_none_or(|p| p == phase))
        .collect()
}

fn phase_figures(phase: Phase, work: &Work, sites: &[Site]) -> Result<PhaseFigures, LifeError> {
    let ix = sites_of(sites, phase);
    if ix.is_empty() {
        return Err(LifeError::NoSite(phase.label()));
    }
    let sum: f64 = ix.iter().map(|&i| sites[i].share).sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(LifeError::Shares(phase.label(), sum));
    }
    let it = work.it_kwh();
    let at: Vec<AtSite> = ix
        .iter()
        .map(|&i| {
            let s = &sites[i];
            let it_kwh = it * s.share;
            let facility_kwh = it_kwh * s.pue;
            let g = facility_kwh * s.g_per_kwh / s.transport;
            AtSite {
                site: i,
                it_kwh,
                facility_kwh,
                operational_g: g,
                operational_band: (g * s.band.0, g * s.band.1),
            }
        })
        .collect();
    Ok(PhaseFigures {
        phase,
        it_kwh: it,
        facility_kwh: at.iter().map(|a| a.facility_kwh).sum(),
        operational_g: at.iter().map(|a| a.operational_g).sum(),
        operational_band: (
            at.iter().map(|a| a.operational_band.0).sum(),
            at.iter().map(|a| a.operational_band.1).sum(),
        ),
        embodied_g: work.hardware().map(|hw| hw.embodied_g(work.hours())),
        sites: at,
    })
}

/// The whole life: each phase given, at its sites.
pub fn life(
    training: Option<&Work>,
    serving: Option<&Work>,
    sites: &[Site],
) -> Result<Life, LifeError> {
    let mut phases = Vec::new();
    for (phase, work) in [(Phase::Training, training), (Phase::Serving, serving)] {
        if let Some(w) = work {
            phases.push(phase_figures(phase, w, sites)?);
        }
    }
    let operational_g: f64 = phases.iter().map(|p| p.operational_g).sum();
    let operational_band = (
        phases.iter().map(|p| p.operational_band.0).sum::<f64>(),
        phases.iter().map(|p| p.operational_band.1).sum::<f64>(),
    );
    let mut embodied_g = [0.0; 3];
    for e in phases.iter().filter_map(|p| p.embodied_g) {
        for k in 0..3 {
            embodied_g[k] += e[k];
        }
    }
    Ok(Life {
        total_g: [
            operational_g + embodied_g[0],
            operational_band.0 + embodied_g[1],
            operational_band.1 + embodied_g[2],
        ],
        phases,
        operational_g,
        operational_band,
        embodied_g,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, g: f64, pue: f64, share: f64, phase: Option<Phase>) -> Site {
        Site {
            name: name.into(),
            basis: String::new(),
            g_per_kwh: g,
            pue,
            share,
            transport: 1.0,
            band: (0.7, 1.3),
            phase,
        }
    }

    fn a100(count: u32) -> Hardware {
        Hardware {
            gpu_name: "NVIDIA A100 SXM".into(),
            gpu_w: 400.0,
            count,
            usage: 1.0,
            mem_gib_per_server: 0.0,
        }
    }

    #[test]
    fn training_and_serving_over_two_sites_add_up_by_hand() {
        let train = Work::Hardware {
            hw: a100(16),
            hours: 100.0,
        };
        let serve = Work::Queries {
            per_day: 1e6,
            kwh_per_query: 0.0003,
            days: 365.0,
            hw: Some(a100(8)),
        };
        let mut sites = vec![
            site("FR", 56.0, 1.1, 0.6, None),
            site("DE", 381.0, 1.2, 0.4, None),
        ];
        sites[1].transport = 0.95;
        let l = life(Some(&train), Some(&serve), &sites).unwrap();
        // Training: 16 × 400 W × 100 h = 640 kWh; FR 384 kWh × 1.1 × 56; DE 256 × 1.2 × 381 / 0.95.
        let t = &l.phases[0];
        assert!((t.it_kwh - 640.0).abs() < 1e-9);
        let want_t = 384.0 * 1.1 * 56.0 + 256.0 * 1.2 * 381.0 / 0.95;
        assert!(
            (t.operational_g - want_t).abs() < 1e-6,
            "{}",
            t.operational_g
        );
        // Serving: 1e6 × 365 × 0.3 Wh = 109,500 kWh.
        let s = &l.phases[1];
        assert!((s.it_kwh - 109_500.0).abs() < 1e-6);
        let want_s = 109_500.0 * (0.6 * 1.1 * 56.0 + 0.4 * 1.2 * 381.0 / 0.95);
        assert!((s.operational_g - want_s).abs() < 1e-3);
        // Embodied: (16 × 150 + 2 × 2500) kg × 100 h and (8 × 150 + 2500) kg × 8760 h, over 6 years.
        let life_h = 6.0 * 365.25 * 24.0;
        let want_e = (7400.0 * 100.0 + 3700.0 * 8760.0) * 1000.0 / life_h;
        assert!(
            (l.embodied_g[0] - want_e).abs() < 1e-6,
            "{:?}",
            l.embodied_g
        );
        assert!((l.total_g[0] - (want_t + want_s + want_e)).abs() < 1e-3);
        assert!(l.total_g[2] > l.total_g[0] && l.total_g[1] <= l.total_g[0]);
        // The table's band on the operational part, the published TE range on the embodied.
        assert!((l.total_g[1] - (0.7 * (want_t + want_s) + want_e)).abs() < 1e-3);
    }

    #[test]
    fn sites_must_cover_each_phase_once() {
        let train = Work::Hardware {
            hw: a100(1),
            hours: 1.0,
        };
        let half = [site("FR", 56.0, 1.0, 0.5, None)];
        assert_eq!(
            life(Some(&train), None, &half),
            Err(LifeError::Shares("training", 0.5))
        );
        let only_serving = [site("FR", 56.0, 1.0, 1.0, Some(Phase::Serving))];
        assert_eq!(
            life(Some(&train), None, &only_serving),
            Err(LifeError::NoSite("training"))
        );
        // A site per phase.
        let split = [
            site("FR", 56.0, 1.0, 1.0, Some(Phase::Training)),
            site("DE", 381.0, 1.0, 1.0, Some(Phase::Serving)),
        ];
        let serve = Work::Hardware {
            hw: a100(1),
            hours: 2.0,
        };
        let l = life(Some(&train), Some(&serve), &split).unwrap();
        assert!((l.phases[0].operational_g - 0.4 * 56.0).abs() < 1e-9);
        assert!((l.phases[1].operational_g - 0.8 * 381.0).abs() < 1e-9);
    }
}
