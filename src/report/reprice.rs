//! `carbontop reprice`'s outputs: a table, JSON and a PNG of the options the engine priced
//! (`engine::reprice`). Nothing here computes a figure; it formats the [`Choice`]s.

use crate::engine::reprice::{Choice, Kind};
use crate::report::summary::{fmt_co2e_band, fmt_duration, fmt_energy_kwh, fmt_utc_minute as when};
use crate::units::{FacilityKwh, ItKwh, Pue};
use chrono::{DateTime, SecondsFormat, Utc};

/// The start-time search, as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub trace: String,
    pub points: usize,
    /// The first start tried: the run's own start, or the trace's when it does not cover the
    /// run's time (`moved`).
    pub from: DateTime<Utc>,
    pub moved: bool,
    pub within_s: f64,
    pub step_s: f64,
    pub tried: usize,
    /// What the best start saves against the first (g, fraction).
    pub saving: (crate::units::GramsCo2e, f64),
}

/// Everything `reprice` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub file: String,
    pub start: DateTime<Utc>,
    pub duration_s: f64,
    pub ticks: u64,
    pub it: ItKwh,
    pub facility: FacilityKwh,
    /// The PUE the options other than `as recorded` are priced under.
    pub pue: Pue,
    pub choices: Vec<Choice>,
    pub window: Option<Window>,
}

fn change(c: &Choice, base: &Choice) -> String {
    match c.change_from(base) {
        _ if std::ptr::eq(c, base) => "—".into(),
        Some(x) => format!("{:+.1}%", x * 100.0),
        None => "—".into(),
    }
}

impl Outcome {
    fn recorded(&self) -> Option<&Choice> {
        self.choices.iter().find(|c| c.kind == Kind::Recorded)
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "{}: {} IT energy over {} ({} ticks) from {}; priced again under PUE {}\n",
            self.file,
            fmt_energy_kwh(self.it),
            fmt_duration(self.duration_s),
            self.ticks,
            when(self.start),
            self.pue
        );
        if let Some(w) = &self.window {
            out += &format!(
                "starts tried: {} from {} every {} for {} on {} ({} points){}\n",
                w.tried,
                when(w.from),
                fmt_duration(w.step_s),
                fmt_duration(w.within_s),
                w.trace,
                w.points,
                if w.moved {
                    " — the trace does not cover the run's own time, so the run is placed from the trace's start"
                } else {
                    ""
                }
            );
        }
        let rows: Vec<[String; 5]> = self
            .choices
            .iter()
            .map(|c| {
                [
                    c.label.clone(),
                    format!("{:.1}", c.mean.0),
                    fmt_co2e_band(c.band.g, c.band.range(), ""),
                    self.recorded().map_or("—".into(), |r| change(c, r)),
                    c.detail.clone(),
                ]
            })
            .collect();
        let head = [
            "option",
            "g/kWh",
            "operational carbon",
            "vs recorded",
            "basis",
        ];
        let width = |k: usize| {
            rows.iter()
                .map(|r| r[k].chars().count())
                .chain([head[k].len()])
                .max()
                .unwrap_or(0)
        };
        let w: Vec<usize> = (0..4).map(width).collect();
        let line = |r: [&str; 5]| {
            format!(
                "{:<a$}  {:>b$}  {:<c$}  {:>d$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                a = w[0],
                b = w[1],
                c = w[2],
                d = w[3]
            )
        };
        out += "\n";
        out += &line(head);
        for r in &rows {
            out += &line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        if let Some(w) = &self.window {
            out += &format!(
                "\nThe best start saves {} CO2e ({:.1}%) against the first.\n",
                crate::report::summary::fmt_co2e_g(w.saving.0),
                w.saving.1 * 100.0
            );
        }
        out += "\nOperational carbon of this machine's energy, C = Σ E_tick × PUE × I(t_tick); embodied \
                carbon and the internet path's energy do not change with place or time and are left out.";
        out.trim_end().to_owned()
    }

    pub fn json(&self) -> String {
        let choices: Vec<serde_json::Value> = self
            .choices
            .iter()
            .map(|c| {
                serde_json::json!({
                    "kind": c.kind,
                    "label": c.label,
                    "basis": c.detail,
                    "start": c.start.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "facility_energy_kwh": c.facility.0,
                    "intensity_g_per_kwh": c.mean.0,
                    "co2e_g": c.band.g.0,
                    "co2e_g_low": c.band.low.0,
                    "co2e_g_high": c.band.high.0,
                    "change_from_recorded": self.recorded().and_then(|r| c.change_from(r)),
                })
            })
            .collect();
        let window = self.window.as_ref().map(|w| {
            serde_json::json!({
                "trace": w.trace, "points": w.points,
                "from": w.from.to_rfc3339_opts(SecondsFormat::Secs, true),
                "placed_at_trace_start": w.moved, "within_s": w.within_s, "step_s": w.step_s,
                "starts_tried": w.tried, "best_saves_co2e_g": w.saving.0.0,
                "best_saves_fraction": w.saving.1,
            })
        });
        let v = serde_json::json!({
            "file": self.file,
            "start": self.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            "duration_s": self.duration_s,
            "ticks": self.ticks,
            "it_energy_kwh": self.it.0,
            "recorded_facility_energy_kwh": self.facility.0,
            "pue": self.pue,
            "options": choices,
            "window": window,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The bars of the PNG: label, carbon with band, and whether it is the recorded run.
    pub fn bars(&self) -> Vec<(String, [f64; 3], bool)> {
        self.choices
            .iter()
            .map(|c| {
                (
                    c.label.clone(),
                    [c.band.g.0, c.band.low.0, c.band.high.0],
                    c.kind == Kind::Recorded,
                )
            })
            .collect()
    }
}

/// The options as one bar each (the recorded run marked), in the light theme.
pub fn write_png(o: &Outcome, path: &std::path::Path) -> Result<String, String> {
    let (themes, i) = crate::ui::theme::resolve(Some("light"), None).map_err(|e| e.to_string())?;
    let th = &themes[i];
    let title = format!(
        "carbontop reprice · {} · {} IT over {}",
        crate::report::summary::run_name(&o.file),
        fmt_energy_kwh(o.it),
        fmt_duration(o.duration_s)
    );
    crate::report::png::write_bars(&o.bars(), th, &title, path, (1600, 900))
        .map_err(|e| format!("--png {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}
