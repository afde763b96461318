//! `carbontop simulate`: the governor against its limit on a measured cap curve and a grid
//! trace (the evaluation is [`crate::control::oracle::evaluate`]; this reads and prints).

use crate::app::AppError;
use crate::app::reprice::read_trace;
use crate::cli::SimulateArgs;
use crate::control::oracle::{self, Evaluation};
use chrono::{DateTime, Utc};

pub fn run(a: &SimulateArgs) -> Result<i32, AppError> {
    if !a.gpu.eq_ignore_ascii_case("a40") {
        return Err(AppError::Usage(format!(
            "--gpu {:?}: only a40 has measured cap curves (Zeus's A40 table)",
            a.gpu
        )));
    }
    let curve = oracle::zeus_a40(&a.workload).map_err(AppError::Usage)?;
    let trace = read_trace(&a.trace).map_err(AppError::Usage)?;
    let starts: Vec<DateTime<Utc>> = if a.start.is_empty() {
        // Room for the run at the budget's end from every start, and for the governor's η
        // rule, which runs at most as slowly as the cap of least energy per epoch.
        let need = a.epochs * curve.slowest_useful_s(a.max_slowdown);
        let s = oracle::spread_starts(&trace, need, a.starts);
        if s.is_empty() {
            return Err(AppError::Usage(format!(
                "{}: the trace ({} to {}) is shorter than the run ({:.1} h within the budget)",
                a.trace.display(),
                trace.start(),
                trace.end(),
                need / 3600.0
            )));
        }
        s
    } else {
        a.start
            .iter()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| AppError::Usage(format!("--start {t:?}: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    let ev = oracle::evaluate(&curve, &trace, &starts, a.epochs, a.max_slowdown, a.eta)
        .map_err(|e| AppError::Usage(format!("{}: {e}", a.trace.display())))?;
    if a.json {
        let v = serde_json::json!({
            "gpu": "a40",
            "workload": a.workload,
            "curve": curve.points(),
            "evaluation": ev,
        });
        let text =
            serde_json::to_string_pretty(&v).map_err(|e| AppError::Runtime(e.to_string()))?;
        crate::outln!("{text}")?;
    } else {
        crate::app::out(&text(a, &ev))?;
    }
    Ok(0)
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

/// The table.
fn text(a: &SimulateArgs, ev: &Evaluation) -> String {
    let mut s = format!(
        "{} epochs of {} on an A40 (Zeus's measurements), {} start(s) on {}: means over the starts\n\n",
        ev.epochs,
        a.workload,
        ev.starts.len(),
        a.trace.display()
    );
    s += &format!(
        "{:<40} {:>8} {:>8} {:>9} {:>8} {:>9} {:>8}\n",
        "policy", "time h", "Δtime", "energy kWh", "Δenergy", "CO2e kg", "Δcarbon"
    );
    for r in &ev.rows {
        s += &format!(
            "{:<40} {:>8.2} {:>8} {:>9.2} {:>9} {:>9.2} {:>8}\n",
            r.policy,
            r.time_s / 3600.0,
            pct(r.d_time),
            r.energy_j / 3.6e6,
            pct(r.d_energy),
            r.carbon_g / 1000.0,
            pct(r.d_carbon)
        );
    }
    s += &format!(
        "\nthe limit within {}: the oracle {} carbon = efficiency {} (the best fixed mix at the \
         oracle's slowdown) + timing {} (following the signal)\n",
        pct(ev.max_slowdown),
        pct(ev.oracle),
        pct(ev.efficiency),
        pct(ev.timing)
    );
    if let Some(g) = ev.rows.iter().find(|r| r.policy.contains("time budget")) {
        s += &format!(
            "the time-budget governor: {} carbon at {} time; the oracle at that slowdown {}\n",
            pct(g.d_carbon),
            pct(g.d_time),
            pct(ev.oracle_at_governor)
        );
    }
    s += "(the governor's rules decide on the measured curve every 5 minutes, without the \
          minutes a live profile takes)\n";
    if !ev.not_covered.is_empty() {
        s += &format!(
            "left out (the trace ends before their run does): {}\n",
            ev.not_covered.join(", ")
        );
    }
    s
}
