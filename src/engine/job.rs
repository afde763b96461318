//! A job across nodes (`watch --agent`): each node's figures as its agent exported them,
//! summed into the job's tick. The agents did the accounting (each with its own PUE and grid);
//! here they are only added up, and the job's intensity and PUE are the power-weighted means
//! those sums imply. The job's tick then goes through a Meter like any other, so the screen and
//! the headless lines format the same Snapshot.

use crate::engine::constants::J_PER_KWH;
use crate::engine::ledger::ByComponent;
use crate::engine::{Tick, Totals};
use crate::sample::SourceKind;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The IT components an agent exports (`carbontop_power_watts{component}`).
pub const COMPONENTS: [&str; 4] = ["gpu", "cpu", "memory", "network"];

/// One node's figures, as its agent last exported them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeFigures {
    /// Facility power (IT × the node's PUE) and energy (J).
    pub facility_w: f64,
    pub facility_j: f64,
    /// IT power by component (W), over the agent's last interval.
    pub power_w: BTreeMap<String, f64>,
    /// IT energy by component (J).
    pub it_j: BTreeMap<String, f64>,
    /// Operational carbon (g, with the node's PUE, at its grid's intensity tick by tick).
    pub co2e_g: f64,
    pub embodied_g: Option<f64>,
    pub intensity: Option<f64>,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Progress the node reports (epoch, step, accuracy_percent, loss).
    pub progress: BTreeMap<String, f64>,
}

impl NodeFigures {
    /// Facility energy (kWh).
    pub fn energy_kwh(&self) -> f64 {
        self.facility_j / J_PER_KWH
    }

    /// Network energy's share of the node's IT energy (the communication cost).
    pub fn comms_share(&self) -> Option<f64> {
        let it: f64 = self.it_j.values().sum();
        (it > 0.0).then(|| self.it_j.get("network").copied().unwrap_or(0.0) / it)
    }

    /// gCO2e per unit of progress (per step, else per epoch): what a client-selection policy
    /// weighs nodes by.
    pub fn co2e_per_progress(&self) -> Option<(String, f64)> {
        for k in ["step", "epoch"] {
            if let Some(v) = self.progress.get(k).filter(|v| **v > 0.0) {
                return Some((k.to_owned(), self.co2e_g / v));
            }
        }
        None
    }
}

/// Σ over the nodes, from +0 (an empty `Iterator::sum` of floats is −0, which prints `-0`).
fn sum(nodes: &[&NodeFigures], f: impl Fn(&NodeFigures) -> f64) -> f64 {
    nodes.iter().fold(0.0, |a, n| a + f(n))
}

/// The job's totals over the nodes counted: facility kWh and operational gCO2e.
pub fn totals(nodes: &[&NodeFigures]) -> (f64, f64) {
    (
        sum(nodes, |n| n.facility_j) / J_PER_KWH,
        sum(nodes, |n| n.co2e_g),
    )
}

/// The job as one tick: IT power and energy by component summed over the nodes that answered,
/// facility energy and carbon as the agents counted them, intensity weighted by each node's
/// facility power now; and the job's PUE now (facility over IT power, at least 1).
pub fn tick(
    nodes: &[&NodeFigures],
    timestamp: DateTime<Utc>,
    elapsed_s: f64,
    dt_s: f64,
    k: u64,
) -> (Tick, Totals, Option<f64>) {
    let sum_w = |c: &str| {
        nodes
            .iter()
            .filter_map(|n| n.power_w.get(c))
            .copied()
            .reduce(|a, b| a + b)
    };
    let sum_j = |c: &str| sum(nodes, |n| n.it_j.get(c).copied().unwrap_or(0.0));
    let (kwh, g) = totals(nodes);
    let fw = sum(nodes, |n| n.facility_w);
    let intensity =
        (fw > 0.0).then(|| sum(nodes, |n| n.facility_w * n.intensity.unwrap_or(0.0)) / fw);
    let parts = COMPONENTS.map(sum_w);
    let rx: u64 = nodes.iter().map(|n| n.net_rx_bytes).sum();
    let tx: u64 = nodes.iter().map(|n| n.net_tx_bytes).sum();
    let embodied = nodes
        .iter()
        .filter_map(|n| n.embodied_g)
        .reduce(|a, b| a + b);
    let tick = Tick {
        timestamp,
        elapsed_s,
        dt_s,
        gpu_power_w: parts[0],
        cpu_power_w: parts[1],
        mem_power_w: parts[2],
        net_rx_bytes: Some(rx),
        net_tx_bytes: Some(tx),
        net_power_w: parts[3],
        total_power_w: parts.iter().flatten().copied().reduce(|a, b| a + b),
        energy_kwh: kwh,
        intensity_g_per_kwh: intensity,
        intensity_source: Some(SourceKind::Agents.into()),
        co2e_g: g,
        embodied_co2e_g: embodied,
        progress: Default::default(),
        power_cap_w: None,
        gpus: Vec::new(),
        cap_change: Default::default(),
        process_cpu_w: None,
        process_gpu_w: None,
        cmd_net: None,
        rdma: None,
    };
    let joules = ByComponent {
        gpu: sum_j("gpu"),
        cpu: sum_j("cpu"),
        mem: sum_j("memory"),
        net: sum_j("network"),
    };
    let totals = Totals {
        ticks: k,
        elapsed_s,
        gpu_j: joules.gpu,
        cpu_j: joules.cpu,
        mem_j: joules.mem,
        net_j: joules.net,
        energy_kwh: kwh,
        co2e_g: g,
        // The nodes export their carbon, not each component's: split by energy (exact where
        // the nodes' intensities were alike).
        co2e_by: joules.split(g),
        co2e_low_by: joules.split(g),
        co2e_high_by: joules.split(g),
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        ..Default::default()
    };
    let pue = tick
        .total_power_w
        .filter(|w| *w > 0.0)
        .map(|it| (fw / it).max(1.0));
    (tick, totals, pue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(gpu_w: f64, cpu_w: f64, pue: f64, i: f64, gpu_j: f64) -> NodeFigures {
        let it_w = gpu_w + cpu_w;
        NodeFigures {
            facility_w: it_w * pue,
            facility_j: (gpu_j + 100.0) * pue,
            power_w: [("gpu".into(), gpu_w), ("cpu".into(), cpu_w)].into(),
            it_j: [("gpu".into(), gpu_j), ("cpu".into(), 100.0)].into(),
            co2e_g: (gpu_j + 100.0) * pue / J_PER_KWH * i,
            embodied_g: Some(1.0),
            intensity: Some(i),
            net_rx_bytes: 10,
            net_tx_bytes: 5,
            progress: BTreeMap::new(),
        }
    }

    #[test]
    fn the_job_is_the_sum_of_its_nodes_with_power_weighted_intensity_and_pue() {
        let (a, b) = (
            node(300.0, 100.0, 1.0, 100.0, 900.0),
            node(100.0, 100.0, 1.5, 400.0, 300.0),
        );
        let (t, tot, pue) = tick(&[&a, &b], DateTime::UNIX_EPOCH, 10.0, 1.0, 3);
        assert_eq!(t.gpu_power_w, Some(400.0));
        assert_eq!(t.cpu_power_w, Some(200.0));
        assert_eq!(t.total_power_w, Some(600.0));
        assert_eq!(tot.gpu_j, 1200.0);
        assert_eq!((tot.net_rx_bytes, tot.net_tx_bytes), (20, 10));
        assert_eq!(t.embodied_co2e_g, Some(2.0));
        // Facility 400 + 300 W; intensity (400×100 + 300×400) / 700.
        let i = t.intensity_g_per_kwh.unwrap();
        assert!((i - (400.0 * 100.0 + 300.0 * 400.0) / 700.0).abs() < 1e-9);
        assert!((pue.unwrap() - 700.0 / 600.0).abs() < 1e-12);
        let (kwh, g) = totals(&[&a, &b]);
        assert!((kwh - (1000.0 + 400.0 * 1.5) / J_PER_KWH).abs() < 1e-15);
        assert!((g - a.co2e_g - b.co2e_g).abs() < 1e-15);
        assert_eq!(t.energy_kwh, kwh);
    }
}
