//! Human-readable figures: the per-tick status line and the end-of-run summary.

use crate::engine::{Tick, Totals};
use std::fmt::Write as _;

/// Energy with a unit that keeps 3–4 significant figures.
pub fn fmt_energy_kwh(kwh: f64) -> String {
    if kwh >= 1.0 {
        format!("{kwh:.3} kWh")
    } else if kwh >= 1e-3 {
        format!("{:.2} Wh", kwh * 1e3)
    } else {
        format!("{:.2} mWh", kwh * 1e6)
    }
}

/// Mass of CO2e with a readable unit.
/// `1.2 g CO2e (tag, 1.1 g–2.3 g)`: a figure with the published range beside it (DESIGN.md
/// §5: where sources disagree by 2× and more), or without one where there is none.
pub fn fmt_co2e_band(g: f64, band: Option<(f64, f64)>, tag: &str) -> String {
    let range = band.map(|(lo, hi)| format!("{}–{}", fmt_co2e_g(lo), fmt_co2e_g(hi)));
    let inside: Vec<String> = [Some(tag.to_owned()).filter(|t| !t.is_empty()), range]
        .into_iter()
        .flatten()
        .collect();
    if inside.is_empty() {
        format!("{} CO2e", fmt_co2e_g(g))
    } else {
        format!("{} CO2e ({})", fmt_co2e_g(g), inside.join(", "))
    }
}

pub fn fmt_co2e_g(g: f64) -> String {
    if g >= 1e6 {
        format!("{:.3} t", g / 1e6)
    } else if g >= 1e3 {
        format!("{:.3} kg", g / 1e3)
    } else if g >= 1.0 {
        format!("{g:.2} g")
    } else {
        format!("{:.2} mg", g * 1e3)
    }
}

pub fn fmt_power(w: Option<f64>) -> String {
    match w {
        Some(w) if w >= 1000.0 => format!("{:.2} kW", w / 1000.0),
        Some(w) => format!("{w:.1} W"),
        None => "—".into(),
    }
}

pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        let t = s.round() as u64;
        format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
    }
}

/// The one-line status printed per tick in headless mode.
pub fn status_line(t: &Tick, cpu_estimate: bool) -> String {
    let mut s = format!(
        "[{:>8}] {} (GPU {}, CPU {}{}, mem {}, net {}) | {} | {} CO2e",
        fmt_duration(t.elapsed_s),
        fmt_power(t.total_power_w),
        fmt_power(t.gpu_power_w),
        fmt_power(t.cpu_power_w),
        if cpu_estimate && t.cpu_power_w.is_some() {
            " est"
        } else {
            ""
        },
        fmt_power(t.mem_power_w),
        fmt_power(t.net_power_w),
        fmt_energy_kwh(t.energy_kwh),
        fmt_co2e_g(t.co2e_g),
    );
    if let Some(i) = t.intensity_g_per_kwh {
        let _ = write!(s, " @ {i:.0} g/kWh {}", t.intensity_source);
    }
    let p = &t.progress;
    if let Some(e) = p.epoch {
        let _ = write!(s, " | epoch {e}");
    }
    if let Some(a) = p.accuracy {
        let _ = write!(s, " acc {a:.2}%");
    }
    if let Some(l) = p.loss {
        let _ = write!(s, " loss {l:.4}");
    }
    s
}

/// What the summary reports besides the totals.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub title: String,
    pub interval_s: Option<f64>,
    pub pue: f64,
    /// (component, how it was measured), e.g. ("CPU", "estimate, …").
    pub sources: Vec<(String, String)>,
    pub samples_path: Option<String>,
    /// False when no GPU was measured: its energy shows as unknown, not 0.
    pub gpu_measured: bool,
    pub last_progress: Option<String>,
    pub notes: Vec<String>,
}

/// The end-of-run summary (several lines).
pub fn summary(t: &Totals, f: &RunFacts) -> String {
    let j = |x: f64| fmt_energy_kwh(x / crate::engine::constants::J_PER_KWH);
    let mut s = String::new();
    let _ = writeln!(s, "carbontop summary: {}", f.title);
    if t.ticks == 0 {
        let _ = writeln!(
            s,
            "  empty run: no samples were recorded, so there is nothing to total"
        );
        return s;
    }
    let _ = write!(
        s,
        "  duration   {} ({} samples",
        fmt_duration(t.elapsed_s),
        t.ticks
    );
    if let Some(i) = f.interval_s {
        let _ = write!(s, ", every {i} s");
    }
    let _ = writeln!(s, ")");
    let _ = writeln!(
        s,
        "  energy     {} (GPU {}, CPU {}, memory {}, network {}; PUE {})",
        fmt_energy_kwh(t.energy_kwh),
        if f.gpu_measured {
            j(t.gpu_j)
        } else {
            "—".into()
        },
        j(t.cpu_j),
        j(t.mem_j),
        j(t.net_j),
        f.pue
    );
    let _ = write!(s, "  carbon     {} CO2e", fmt_co2e_g(t.co2e_g));
    if let Some(m) = t.mean_intensity() {
        let _ = write!(s, " (mean intensity {m:.1} g/kWh)");
    }
    let _ = writeln!(s);
    if let Some(p) = &f.last_progress {
        let _ = writeln!(s, "  progress   {p}");
    }
    for (i, (what, how)) in f.sources.iter().enumerate() {
        let head = if i == 0 { "  sources" } else { "" };
        let _ = writeln!(s, "{head:<11}{what:<9}{how}");
    }
    for n in &f.notes {
        let _ = writeln!(s, "  note       {n}");
    }
    if let Some(p) = &f.samples_path {
        let _ = writeln!(s, "  samples    {p}");
    }
    s
}

/// `report a.csv b.csv`: the runs side by side, one column each (rows: what, then a value per
/// run). Carbon per accuracy point is the average C_total / (a_last − a_first) (DESIGN.md §5).
pub fn comparison(runs: &[crate::report::account::Account]) -> Vec<(&'static str, Vec<String>)> {
    let first_g = runs.first().map(|a| a.totals.co2e_g);
    let col = |f: &dyn Fn(&crate::report::account::Account) -> String| {
        runs.iter().map(f).collect::<Vec<_>>()
    };
    vec![
        (
            "run",
            col(&|a| {
                let p = std::path::Path::new(&a.file);
                // A run directory's samples.csv is named by its directory.
                match (p.file_name(), p.parent().and_then(|d| d.file_name())) {
                    (Some(f), Some(d)) if f == "samples.csv" => d.to_string_lossy().into_owned(),
                    (Some(f), _) => f.to_string_lossy().into_owned(),
                    _ => a.file.clone(),
                }
            }),
        ),
        ("duration", col(&|a| fmt_duration(a.totals.elapsed_s))),
        ("energy", col(&|a| fmt_energy_kwh(a.totals.energy_kwh))),
        (
            "carbon",
            col(&|a| format!("{} CO2e", fmt_co2e_g(a.totals.co2e_g))),
        ),
        (
            "vs first",
            col(&|a| match first_g {
                Some(f) if f > 0.0 => format!("{:.2}×", a.totals.co2e_g / f),
                _ => "—".into(),
            }),
        ),
        (
            "mean power",
            col(&|a| fmt_power(a.mean_power_w(a.totals.it_j()).map(|w| w * a.pue))),
        ),
        (
            "mean grid",
            col(&|a| {
                a.totals
                    .mean_intensity()
                    .map_or("—".into(), |i| format!("{i:.0} g/kWh"))
            }),
        ),
        (
            "accuracy",
            col(&|a| match (a.first_accuracy, a.last_progress.accuracy) {
                (Some(f), Some(l)) => format!("{f:.2}% → {l:.2}%"),
                _ => "—".into(),
            }),
        ),
        (
            "per point",
            col(&|a| match (a.first_accuracy, a.last_progress.accuracy) {
                (Some(f), Some(l)) if l > f => {
                    format!("{} CO2e/pt", fmt_co2e_g(a.totals.co2e_g / (l - f)))
                }
                _ => "—".into(),
            }),
        ),
    ]
}

/// The comparison as aligned text.
pub fn comparison_text(runs: &[crate::report::account::Account]) -> String {
    let rows = comparison(runs);
    let widths: Vec<usize> = (0..runs.len())
        .map(|i| {
            rows.iter()
                .map(|(_, v)| v[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from("carbontop comparison\n");
    for (k, vals) in &rows {
        let _ = write!(out, "  {k:<11}");
        for (v, w) in vals.iter().zip(&widths) {
            let _ = write!(out, "  {v:<w$}");
        }
        out = out.trim_end().to_owned();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_with_its_published_range() {
        assert_eq!(fmt_co2e_band(2.0, None, ""), "2.00 g CO2e");
        assert_eq!(fmt_co2e_band(2.0, None, "SCI M"), "2.00 g CO2e (SCI M)");
        assert_eq!(
            fmt_co2e_band(2.0, Some((1.0, 4.0)), "SCI M"),
            "2.00 g CO2e (SCI M, 1.00 g–4.00 g)"
        );
    }

    #[test]
    fn units() {
        assert_eq!(fmt_energy_kwh(2.5), "2.500 kWh");
        assert_eq!(fmt_energy_kwh(0.0123), "12.30 Wh");
        assert_eq!(fmt_energy_kwh(0.0000148), "14.80 mWh");
        assert_eq!(fmt_co2e_g(1500.0), "1.500 kg");
        assert_eq!(fmt_co2e_g(0.0065), "6.50 mg");
        assert_eq!(fmt_power(None), "—");
        assert_eq!(fmt_duration(3725.0), "1:02:05");
    }
}
