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
    /// Progress the node reports (epoch, step, accuracy_percent, loss,
    /// accuracy_points_gained).
    pub progress: BTreeMap<String, f64>,
    /// Communication energy by scope (J): `cluster` (the command's share of the node's port
    /// energy) and `internet` (the path's, other people's equipment), where the agent runs a
    /// command.
    pub comms_j: BTreeMap<String, f64>,
    /// Communication carbon by scope (g): `machine` (the node's network energy as carbon,
    /// part of `co2e_g`) and `internet` (the command's internet path, apart from `co2e_g`).
    pub comms_co2e_g: BTreeMap<String, f64>,
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

    /// The node's communication carbon (g): its network's carbon (as its agent accounted it,
    /// tick by tick; from an older agent, its operational carbon × the network's share of its
    /// IT energy) plus the internet path's carbon of its command's public traffic.
    pub fn comms_g(&self) -> f64 {
        let machine = self
            .comms_co2e_g
            .get("machine")
            .copied()
            .or_else(|| self.comms_share().map(|f| f * self.co2e_g))
            .unwrap_or(0.0);
        machine + self.internet_g()
    }

    /// The internet path's carbon of the node's command (g; not in `co2e_g`).
    pub fn internet_g(&self) -> f64 {
        self.comms_co2e_g.get("internet").copied().unwrap_or(0.0)
    }

    /// The node's whole carbon for ranking: operational plus its internet path.
    pub fn ranked_g(&self) -> f64 {
        self.co2e_g + self.internet_g()
    }

    /// How much progress the node made, in `unit`: accuracy points gained, epochs or steps.
    pub fn progress_in(&self, unit: Progress) -> Option<f64> {
        self.progress
            .get(unit.metric())
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
    }

    /// gCO2e per unit of progress (per accuracy point, else per epoch, else per step), with
    /// the unit.
    pub fn co2e_per_progress(&self) -> Option<(String, f64)> {
        Progress::ALL.iter().find_map(|u| {
            self.progress_in(*u)
                .map(|p| (u.to_string(), self.ranked_g() / p))
        })
    }
}

/// A unit of progress nodes are ranked by, in order of preference: what a federated or
/// data-parallel job wants from a client is accuracy, else epochs of its data, else steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    AccuracyPoint,
    Epoch,
    Step,
}

impl Progress {
    pub const ALL: [Progress; 3] = [Progress::AccuracyPoint, Progress::Epoch, Progress::Step];

    /// Its key in a node's progress: read from `carbontop_training_steps_total`,
    /// `carbontop_training_epoch` and `carbontop_accuracy_gained_ratio` (× 100), or from an
    /// older agent's `carbontop_progress{metric}`, whose label values these are.
    pub fn metric(self) -> &'static str {
        match self {
            Progress::AccuracyPoint => "accuracy_points_gained",
            Progress::Epoch => "epoch",
            Progress::Step => "step",
        }
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Progress::AccuracyPoint => "accuracy point",
            Progress::Epoch => "epoch",
            Progress::Step => "step",
        })
    }
}

/// One node's place in the ranking: its gCO2e per unit of progress and the communication part
/// of it (the data a carbon-aware client-selection policy weighs nodes by, DISCO).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rank {
    /// The node's index in the list ranked.
    pub node: usize,
    /// 1 for the cheapest.
    pub place: usize,
    pub unit: Progress,
    pub g_per_unit: f64,
    pub comms_g_per_unit: f64,
    /// The node's communication share of its carbon (0–1).
    pub comms_share: f64,
}

/// The nodes ranked by gCO2e per unit of progress, cheapest first, in the first unit every
/// node with progress reports (so all are compared alike); nodes without it are not ranked.
pub fn rank(nodes: &[&NodeFigures]) -> Vec<Rank> {
    let with_any: Vec<usize> = (0..nodes.len())
        .filter(|&i| {
            Progress::ALL
                .iter()
                .any(|u| nodes[i].progress_in(*u).is_some())
        })
        .collect();
    let Some(unit) = Progress::ALL
        .into_iter()
        .find(|u| with_any.iter().all(|&i| nodes[i].progress_in(*u).is_some()))
    else {
        return Vec::new();
    };
    let mut r: Vec<Rank> = with_any
        .iter()
        .filter_map(|&i| {
            let n = nodes[i];
            let p = n.progress_in(unit)?;
            let g = n.ranked_g();
            Some(Rank {
                node: i,
                place: 0,
                unit,
                g_per_unit: g / p,
                comms_g_per_unit: n.comms_g() / p,
                comms_share: if g > 0.0 { n.comms_g() / g } else { 0.0 },
            })
        })
        .collect();
    r.sort_by(|a, b| a.g_per_unit.total_cmp(&b.g_per_unit));
    for (k, x) in r.iter_mut().enumerate() {
        x.place = k + 1;
    }
    r
}

/// The job's communication carbon (g) over the nodes and its share of the job's carbon
/// (operational plus the internet path), None when the job has no carbon yet.
pub fn job_comms(nodes: &[&NodeFigures]) -> Option<(f64, f64)> {
    let g = sum(nodes, NodeFigures::ranked_g);
    let c = sum(nodes, NodeFigures::comms_g);
    (g > 0.0).then(|| (c, c / g))
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
        process_mem_w: None,
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
            comms_j: BTreeMap::new(),
            comms_co2e_g: BTreeMap::new(),
        }
    }

    /// A node of `g` operational gCO2e, `comms` of them its network's, `path` on the internet
    /// path, with `progress` as (metric, value).
    fn fed(g: f64, comms: f64, path: f64, progress: &[(&str, f64)]) -> NodeFigures {
        NodeFigures {
            co2e_g: g,
            comms_co2e_g: [("machine".into(), comms), ("internet".into(), path)].into(),
            progress: progress.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_rank_by_carbon_per_unit_of_progress_with_their_comms_part() {
        // A federated round: a clean-grid client far away (most of its carbon on the internet
        // path), a dirty-grid client nearby, a client that reports no progress.
        let far = fed(
            40.0,
            2.0,
            20.0,
            &[("accuracy_points_gained", 10.0), ("epoch", 5.0)],
        );
        let near = fed(
            90.0,
            1.0,
            0.0,
            &[("accuracy_points_gained", 12.0), ("epoch", 5.0)],
        );
        let silent = fed(10.0, 0.0, 0.0, &[]);
        let r = rank(&[&far, &near, &silent]);
        assert_eq!(r.len(), 2, "the silent node is not ranked");
        assert_eq!(r[0].unit, Progress::AccuracyPoint);
        // far: (40 + 20) / 10 = 6 g per point, of which (2 + 20) / 10 = 2.2 comms.
        assert_eq!((r[0].node, r[0].place), (0, 1));
        assert!((r[0].g_per_unit - 6.0).abs() < 1e-12);
        assert!((r[0].comms_g_per_unit - 2.2).abs() < 1e-12);
        assert!((r[0].comms_share - 22.0 / 60.0).abs() < 1e-12);
        // near: 90 / 12 = 7.5 g per point.
        assert_eq!((r[1].node, r[1].place), (1, 2));
        assert!((r[1].g_per_unit - 7.5).abs() < 1e-12);
        // One node without accuracy: all are compared per epoch instead.
        let epochs_only = fed(30.0, 3.0, 0.0, &[("epoch", 2.0)]);
        let r = rank(&[&far, &near, &epochs_only]);
        assert!(r.iter().all(|x| x.unit == Progress::Epoch));
        assert_eq!(r.iter().map(|x| x.node).collect::<Vec<_>>(), [0, 2, 1]);
        // The job's comms: (2 + 20) + 1 + 3 of (60 + 90 + 30).
        let (c, f) = job_comms(&[&far, &near, &epochs_only]).unwrap();
        assert!((c - 26.0).abs() < 1e-12 && (f - 26.0 / 180.0).abs() < 1e-12);
        assert_eq!(
            job_comms(&[&silent, &fed(0.0, 0.0, 0.0, &[])]).unwrap().0,
            0.0
        );
        assert!(job_comms(&[]).is_none());
    }

    #[test]
    fn an_older_agent_without_comms_carbon_is_costed_by_its_networks_energy_share() {
        let mut n = node(300.0, 100.0, 1.0, 400.0, 900.0);
        n.it_j.insert("network".into(), 1000.0);
        // Network: 1000 of 2000 J of IT energy, so half the operational carbon.
        assert!((n.comms_g() - n.co2e_g / 2.0).abs() < 1e-12);
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
