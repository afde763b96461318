//! The `--json` summary for scripts. Field names are stable (README "JSON summary"); every
//! figure is the run's Snapshot's.

use crate::engine::Snapshot;
use crate::report::emissions::run_id;
use serde_json::{Value, json};

/// `run_id`: run.json's, where the recording has one (else derived as emissions.csv derives it).
pub fn summary(file: &str, s: &Snapshot, run: Option<&str>) -> Value {
    let p = &s.progress;
    let band = |b: Option<crate::engine::meter::Band>| {
        b.map(|b| json!({ "g": b.g, "low_g": b.low, "high_g": b.high }))
    };
    json!({
        "file": file,
        "run_id": run.map_or_else(|| run_id(file, s), str::to_owned),
        "start": s.start.map(|t| t.to_rfc3339()),
        "end": s.end.map(|t| t.to_rfc3339()),
        "duration_s": s.elapsed_s,
        "samples": s.ticks,
        "pue": s.pue,
        "energy_kwh": s.energy_kwh,
        "co2e_g": s.co2e_g,
        "co2e_band": band(Some(s.co2e_band)),
        "mean_intensity_g_per_kwh": s.mean_intensity,
        "it_energy_kwh": {
            "gpu": s.it.gpu_kwh,
            "cpu": s.it.cpu_kwh,
            "memory": s.it.mem_kwh,
            "network": s.it.net_kwh,
        },
        "embodied_co2e": band(s.embodied),
        "comms_co2e": band(s.comms),
        "command_network": s.cmd_net.map(|c| json!({
            "cluster_rx_bytes": c.cluster.rx_bytes,
            "cluster_tx_bytes": c.cluster.tx_bytes,
            "internet_rx_bytes": c.internet.rx_bytes,
            "internet_tx_bytes": c.internet.tx_bytes,
            "rdma_rx_bytes": c.rdma.rx_bytes,
            "rdma_tx_bytes": c.rdma.tx_bytes,
            "port_energy_kwh": c.port_kwh,
            "port_cluster_energy_kwh": c.port_cluster_kwh,
            "port_co2e": band(Some(c.port_co2e)),
            "internet_path_energy_kwh": c.internet_kwh,
            "internet_path_co2e": band(Some(c.internet_co2e)),
        })),
        "grid_table_co2e": band(s.table_co2e),
        "process": s.process.iter().map(|p| json!({
            "part": match p.part {
                crate::engine::meter::ProcessPart::Cpu => "cpu",
                crate::engine::meter::ProcessPart::Gpu => "gpu",
                crate::engine::meter::ProcessPart::Mem => "memory",
            },
            "share": p.share,
            "energy_kwh": p.energy_kwh,
            "of_kwh": p.of_kwh,
        })).collect::<Vec<_>>(),
        "command": s.command.map(|c| json!({
            "energy_kwh": c.energy_kwh,
            "co2e_g": c.co2e_g,
            "it_energy_kwh": {
                "gpu": c.gpu_kwh,
                "cpu": c.cpu_kwh,
                "memory": c.mem_kwh,
                "network": c.net_kwh,
            },
            "gpu_counted_whole": c.gpu_whole,
        })),
        "rdma": s.rdma.map(|r| json!({
            "rx_bytes": r.bytes.rx_bytes,
            "tx_bytes": r.bytes.tx_bytes,
            "energy_kwh": r.energy.0,
            "co2e_g": r.co2e.0,
        })),
        "total_co2e_g": s.total_co2e_g,
        "total_co2e": band(Some(s.total_band)),
        "tree_days": s.equivalents.tree_days,
        "car_km": s.equivalents.car_km,
        "per_point": s.per_point.map(|p| json!({
            "gained_pct": p.gained,
            "co2e_g": p.co2e_g,
            "energy_kwh": p.energy_kwh,
            "tree_days": p.tree_days,
        })),
        "net_rx_bytes": s.net_rx_bytes,
        "net_tx_bytes": s.net_tx_bytes,
        "gpu_count": s.gpu_count,
        "gpu_util_mean_pct": s.gpu_util_mean,
        "progress": {
            "epoch": p.epoch,
            "step": p.step,
            "accuracy_pct": p.accuracy,
            "loss": p.loss,
        },
    })
}
