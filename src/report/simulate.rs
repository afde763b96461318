//! `carbontop simulate --png`: the grid intensity and each policy's cap over time, from the
//! first start time, as the evaluation ([`crate::control::oracle::Evaluation`]) made them.
//! Formats; computes nothing.

use crate::control::oracle::{Evaluation, Spans};
use crate::report::png::{Layout, StepPanel, write_steps};
use std::path::Path;

/// Spans (offset s, length s, value) as the corners of a step line, hours on x, cut at `end_s`.
fn steps(spans: &Spans, end_s: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(spans.len() * 2);
    for &(o, l, v) in spans.iter().filter(|s| s.0 < end_s) {
        pts.push((o / 3600.0, v));
        pts.push(((o + l).min(end_s) / 3600.0, v));
    }
    pts
}

/// The policies (by the start of their names) in a panel, in this order, where present: the
/// governors run through the Session (`session`) or their rules on the curve.
fn series(
    ev: &Evaluation,
    names: &[&str],
    session: bool,
    end_s: f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    names
        .iter()
        .filter_map(|n| {
            let (policy, spans) = ev.first.iter().find(|(p, _)| {
                p.starts_with(n)
                    && (!p.starts_with("governor") || p.ends_with("(Session)") == session)
            })?;
            Some((policy.clone(), steps(spans, end_s)))
        })
        .collect()
}

/// The three charts: the signal, the rules and the oracle, the governor through the Session.
pub fn panels(ev: &Evaluation) -> Vec<StepPanel> {
    let end_s = ev
        .first
        .iter()
        .flat_map(|(_, s)| s.last().map(|l| l.0 + l.1))
        .fold(0.0, f64::max);
    let x = "time since the start (h)".to_owned();
    let caps = "power cap (W)".to_owned();
    vec![
        StepPanel {
            caption: "Grid intensity (the trace, from the first start)".into(),
            x_desc: x.clone(),
            y_desc: "gCO2e/kWh".into(),
            series: vec![("intensity".into(), steps(&ev.first_signal, end_s))],
        },
        StepPanel {
            caption:
                "The limit and the governor's rules on the measured curve (a mix: its mean cap)"
                    .into(),
            x_desc: x.clone(),
            y_desc: caps.clone(),
            series: series(
                ev,
                &["oracle", "best fixed mix", "governor ≤", "governor η"],
                false,
                end_s,
            ),
        },
        StepPanel {
            caption: "The governor itself, through the Session against the simulated GPU (its \
                      profile first)"
                .into(),
            x_desc: x,
            y_desc: caps,
            series: series(
                ev,
                &["oracle", "uncapped", "governor ≤", "governor η"],
                true,
                end_s,
            ),
        },
    ]
}

/// Writes the image; where every text, legend and plot went.
pub fn write_png(ev: &Evaluation, title: &str, path: &Path) -> Result<Layout, String> {
    let (themes, i) = crate::ui::theme::resolve(Some("light"), None).map_err(|e| e.to_string())?;
    let lines = vec![format!(
        "{} epochs; the charts from the first start, {}; over all {} starts, within {:+.1}% \
         time the oracle saves {:+.1}% carbon (efficiency {:+.1}%, timing {:+.1}%)",
        ev.epochs,
        ev.starts
            .first()
            .map(|s| s.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        ev.starts.len(),
        ev.max_slowdown * 100.0,
        ev.oracle * 100.0,
        ev.efficiency * 100.0,
        ev.timing * 100.0
    )];
    write_steps(&panels(ev), &themes[i], title, &lines, path, (1600, 1200))
        .map_err(|e| format!("--png {}: {e}", path.display()))
}
