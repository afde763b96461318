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
            // From zero: carbon is in proportion to intensity, and a fitted axis would draw the
            // trace's few-percent swing as the chart's full height.
            from_zero: true,
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
            // Fitted to the caps set (the GPU's range, not zero): the title says where it starts.
            from_zero: false,
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
            from_zero: false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::reprice::read_trace;
    use crate::control::oracle::{evaluate, spread_starts, zeus_curve};
    use crate::report::png::{Kind, step_y_axis, tick};

    #[test]
    fn legends_stay_outside_the_data_and_every_text_in_its_box() {
        let curve = zeus_curve("a40", "imagenet-resnet50-b128").unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/zeus/carbon_hist.csv");
        let tr = read_trace(Path::new(path)).unwrap();
        let starts = spread_starts(&tr, 12.0 * 3600.0, 1);
        let ev = evaluate(&curve, &tr, &starts, 10.0, 0.03, 0.5, &mut |_| Ok(vec![])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("sim.png");
        let layout = write_png(&ev, "carbontop simulate · test", &png).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
        let data: Vec<_> = layout
            .items
            .iter()
            .filter(|p| p.kind == Kind::Data)
            .collect();
        assert_eq!(data.len(), 3);
        for p in &layout.items {
            assert!(p.within.holds(&p.rect), "{p:?}");
            if p.kind == Kind::Legend {
                assert!(data.iter().all(|d| !d.rect.overlaps(&p.rect)), "{p:?}");
            }
        }
        // Axis titles with units.
        let texts: Vec<&str> = layout.items.iter().map(|p| p.what.as_str()).collect();
        assert!(texts.contains(&"time since the start (h)"), "{texts:?}");
        assert!(texts.contains(&"gCO2e/kWh"), "{texts:?}");
        // Each y axis starts at zero or its title, as drawn, says where it starts; the
        // intensity's starts at zero.
        for p in panels(&ev) {
            let (y, desc) = step_y_axis(&p);
            assert!(texts.contains(&desc.as_str()), "{desc} {texts:?}");
            assert!(
                y.start == 0.0 || desc.ends_with(&format!(", axis from {}", tick(&y.start))),
                "{}: {y:?} {desc}",
                p.caption
            );
            if p.y_desc == "gCO2e/kWh" {
                assert_eq!(y.start, 0.0, "{}", p.caption);
            } else {
                assert!(desc.starts_with("power cap (W), axis from "), "{desc}");
            }
        }
        // Each policy drawn is one the evaluation holds.
        let names: Vec<String> = panels(&ev)
            .iter()
            .flat_map(|p| p.series.iter().map(|s| s.0.clone()))
            .collect();
        assert!(names.iter().any(|n| n.starts_with("oracle")), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("governor ≤")),
            "{names:?}"
        );
    }
}
