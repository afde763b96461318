//! `carbontop simulate`: the governor against its limit on a measured cap curve and a grid
//! trace (the evaluation is [`crate::control::oracle::evaluate`]; this reads and prints).

pub mod session;

use crate::app::AppError;
use crate::app::reprice::read_trace;
use crate::cli::SimulateArgs;
use crate::control::oracle::{self, Evaluation};
use crate::control::profile::{self, Saved};
use crate::engine::schedule::Signal;
use crate::engine::schedule::{CapCurve, CapPoint};
use chrono::{DateTime, Utc};

pub fn run(a: &SimulateArgs) -> Result<i32, AppError> {
    let (curve, steps_per_epoch, source) = curve_of(a)?;
    let trace = read_trace(&a.trace).map_err(AppError::Usage)?;
    let starts: Vec<DateTime<Utc>> = if a.start.is_empty() {
        // Room for the run at the budget's end from every start, and for the governor's η
        // rule, which runs at most as slowly as the cap of least energy per epoch; and for the
        // governor's profile through the Session.
        let need = a.epochs * curve.slowest_useful_s(a.max_slowdown)
            + session::profile_allowance_s(&curve);
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
    let mut through_session = |signal: &Signal| {
        session::rows(
            &curve,
            steps_per_epoch,
            signal,
            a.epochs,
            a.eta,
            a.max_slowdown,
        )
    };
    let ev = oracle::evaluate(
        &curve,
        &trace,
        &starts,
        a.epochs,
        a.max_slowdown,
        a.eta,
        &mut through_session,
    )
    .map_err(|e| AppError::Usage(format!("{}: {e}", a.trace.display())))?;
    if let Some(png) = &a.png {
        let title = format!(
            "carbontop simulate · {source} · {}",
            crate::report::summary::run_name(&a.trace.display().to_string())
        );
        crate::report::simulate::write_png(&ev, &title, png).map_err(AppError::Usage)?;
    }
    if a.json {
        let v = serde_json::json!({
            "gpu": a.gpu.to_ascii_lowercase(),
            "workload": a.workload,
            "curve": curve.points(),
            "evaluation": ev,
        });
        let text =
            serde_json::to_string_pretty(&v).map_err(|e| AppError::Runtime(e.to_string()))?;
        crate::outln!("{text}")?;
    } else {
        crate::app::out(&text(a, &ev, &source))?;
    }
    Ok(0)
}

/// The curve to run on and its steps per epoch: a saved profile (--profile, or one saved for
/// --gpu and --workload where --gpu is not one Zeus measured), else Zeus's table.
fn curve_of(a: &SimulateArgs) -> Result<(CapCurve, f64, String), AppError> {
    let saved_path = match &a.profile {
        Some(p) => Some(p.clone()),
        None if !oracle::ZEUS_GPUS.contains(&a.gpu.to_ascii_lowercase().as_str()) => {
            profile::dir(|k| std::env::var(k).ok())
                .map(|d| profile::path(&d, &a.gpu, &a.workload))
                .filter(|p| p.exists())
        }
        None => None,
    };
    let Some(path) = saved_path else {
        let curve = oracle::zeus_curve(&a.gpu, &a.workload).map_err(AppError::Usage)?;
        let source = format!(
            "{} on an {} (Zeus's measurements)",
            a.workload,
            a.gpu.to_ascii_uppercase()
        );
        return Ok((curve, oracle::zeus_steps_per_epoch(&a.workload), source));
    };
    let saved = Saved::load(&path)
        .map_err(AppError::Usage)?
        .ok_or_else(|| AppError::Usage(format!("--profile {}: no such file", path.display())))?;
    if !saved.by_steps {
        return Err(AppError::Usage(format!(
            "{}: measured without a step count (utilisation × clock): its speed is not work \
             done, so it cannot be simulated",
            path.display()
        )));
    }
    let pts = saved
        .points
        .iter()
        .map(|p| CapPoint {
            cap_w: p.cap_w,
            s_per_epoch: PROFILE_STEPS_PER_EPOCH / p.throughput,
            j_per_epoch: PROFILE_STEPS_PER_EPOCH / p.throughput * p.power_w,
        })
        .collect();
    let curve =
        CapCurve::new(pts).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
    let source = format!(
        "{} on {} (the profile in {}; an epoch: {PROFILE_STEPS_PER_EPOCH} steps)",
        saved.workload,
        saved.gpu,
        path.display()
    );
    Ok((curve, PROFILE_STEPS_PER_EPOCH, source))
}

/// A saved profile's epoch: 1000 steps (its run's own epoch is not in it).
const PROFILE_STEPS_PER_EPOCH: f64 = 1000.0;

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn fmt_points(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

/// The table.
fn text(a: &SimulateArgs, ev: &Evaluation, source: &str) -> String {
    let mut s = format!(
        "{} epochs of {source}, {} start(s) on {}: means over the starts\n\n",
        ev.epochs,
        ev.starts.len(),
        a.trace.display()
    );
    s += &format!(
        "{:<42} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9}\n",
        "policy", "time h", "Δtime", "energy kWh", "Δenergy", "CO2e kg", "Δcarbon", "oracle*"
    );
    for r in &ev.rows {
        s += &format!(
            "{:<42} {:>7.2} {:>7} {:>10.2} {:>8} {:>8.2} {:>8} {:>9}\n",
            r.policy,
            r.time_s / 3600.0,
            pct(r.d_time),
            r.energy_j / 3.6e6,
            pct(r.d_energy),
            r.carbon_g / 1000.0,
            pct(r.d_carbon),
            r.oracle_same.map(pct).unwrap_or_default()
        );
    }
    s += "* the oracle's carbon change at that row's own slowdown\n";
    s += &format!(
        "\nthe limit within {}: the oracle {} carbon = efficiency {} (the best fixed mix at the \
         oracle's slowdown) + timing {} (following the signal)\n",
        pct(ev.max_slowdown),
        pct(ev.oracle),
        pct(ev.efficiency),
        pct(ev.timing)
    );
    for r in ev.rows.iter().filter(|r| r.oracle_same.is_some()) {
        s += &format!(
            "{}: {} carbon at {} time, {} points from the oracle at that slowdown",
            r.policy,
            pct(r.d_carbon),
            pct(r.d_time),
            fmt_points(r.d_carbon - r.oracle_same.unwrap_or(f64::NAN))
        );
        if let (Some(ps), Some(pt), Some(pc), Some(after)) = (
            r.profile_s,
            r.profile_d_time,
            r.profile_d_carbon,
            r.oracle_after_profile,
        ) && ps > 0.0
        {
            s += &format!(
                ";\n  its profile ({:.0} min, each cap in turn) added {} time and {} carbon; the \
                 oracle at the {} left after it: {}, {} points from the governor",
                ps / 60.0,
                pct(pt),
                pct(pc),
                pct(r.d_time - pt),
                pct(after),
                fmt_points(r.d_carbon - after)
            );
        }
        if let (Some(c), Some(t)) = (r.claimed_d_carbon, r.claimed_d_time) {
            s += &format!(
                "\n  the governor itself said (the screen, the summary): {} carbon, {} time \
                 against the same work uncapped, since its profile",
                pct(c),
                pct(t)
            );
            if let Some(o) = r.claimed_oracle_d_carbon {
                s += &format!(
                    "; the summary's oracle on the intensity the run saw, within {}: {}",
                    pct(t.max(0.0)),
                    pct(o)
                );
            }
        }
        s += "\n";
    }
    s += "(rows without (Session): the governor's rules on the measured curve, deciding every 5 \
          minutes, without a profile; (Session): the governor itself through the Session against \
          the simulated GPU, its profile included; saved profile: starting from the profile the \
          run before measured, as a later run of the same workload does)\n";
    if !ev.not_covered.is_empty() {
        s += &format!(
            "left out (the trace ends before their run does): {}\n",
            ev.not_covered.join(", ")
        );
    }
    s
}
