//! The `--json` summary for scripts. Field names are stable (README "JSON summary").

use crate::engine::constants::J_PER_KWH;
use crate::report::account::Account;
use crate::report::emissions::run_id;
use serde_json::{Value, json};

pub fn summary(a: &Account) -> Value {
    let t = &a.totals;
    let kwh = |j: f64| j / J_PER_KWH;
    let p = &a.last_progress;
    json!({
        "file": a.file,
        "run_id": run_id(a),
        "start": a.start.map(|s| s.to_rfc3339()),
        "end": a.end.map(|s| s.to_rfc3339()),
        "duration_s": t.elapsed_s,
        "samples": t.ticks,
        "pue": a.pue,
        "energy_kwh": t.energy_kwh,
        "co2e_g": t.co2e_g,
        "mean_intensity_g_per_kwh": t.mean_intensity(),
        "it_energy_kwh": {
            "gpu": if a.gpu_count > 0 { Some(kwh(t.gpu_j)) } else { None },
            "cpu": kwh(t.cpu_j),
            "memory": kwh(t.mem_j),
            "network": kwh(t.net_j),
        },
        "net_rx_bytes": t.net_rx_bytes,
        "net_tx_bytes": t.net_tx_bytes,
        "gpu_count": a.gpu_count,
        "gpu_util_mean_pct": a.gpu_util_mean,
        "progress": {
            "epoch": p.epoch,
            "step": p.step,
            "accuracy_pct": p.accuracy,
            "loss": p.loss,
        },
    })
}
