//! The PNG report (DESIGN.md §4): power by component, grid intensity, cumulative gCO2e, accuracy
//! against gCO2e with the cost of each point, cap changes marked, and a summary box with the
//! constants used. Drawn with plotters' bitmap backend and an embedded font (DejaVu Sans), so it
//! renders the same on a headless machine with no fonts installed.
//!
//! It draws from a [`Meter`]: the same bounded, downsampled history the screen keeps, so a
//! week-long recording is plotted from ≤ 1,024 points per series and the full file is only ever
//! streamed; every figure in its text is the run's [`Snapshot`]'s.

use crate::engine::constants::{
    CAR_G_PER_KM_EU, EMBODIED_KG_PER_GPU, EMBODIED_KG_PER_SERVER, HARDWARE_LIFETIME_YEARS,
    TREE_KG_CO2_PER_YEAR,
};
use crate::engine::meter::col;
use crate::engine::series::History;
use crate::engine::{Meter, Snapshot};
use crate::report::summary::{fmt_co2e_band, fmt_co2e_g, fmt_energy_kwh, fmt_sig};
use crate::ui::render::clock;
use crate::ui::theme::Theme;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use ratatui::style::Color as TermColor;
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/DejaVu-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Default size: readable on a screen and when printed.
pub const DEFAULT_SIZE: (u32, u32) = (1600, 1000);

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FAMILY, style, FONT)
                .map_err(|_| "the embedded font could not be loaded".to_owned())?;
        }
        Ok(())
    })
    .clone()
}

/// A theme colour as RGB (the terminal's own colours become black on white or the reverse).
fn rgb(c: TermColor, fallback: RGBColor) -> RGBColor {
    match c {
        TermColor::Rgb(r, g, b) => RGBColor(r, g, b),
        TermColor::Reset => fallback,
        other => {
            let hex = crate::ui::svg::hex(other, "#808080");
            let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0x808080);
            RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
        }
    }
}

struct Palette {
    bg: RGBColor,
    text: RGBColor,
    muted: RGBColor,
    grid: RGBColor,
}

fn palette(th: &Theme) -> Palette {
    let bg = rgb(th.background, WHITE);
    let light = u32::from(bg.0) + u32::from(bg.1) + u32::from(bg.2) > 384;
    let (text_fb, muted_fb) = if light {
        (RGBColor(20, 20, 20), RGBColor(100, 100, 100))
    } else {
        (RGBColor(220, 220, 220), RGBColor(150, 150, 150))
    };
    Palette {
        bg,
        text: rgb(th.text, text_fb),
        muted: rgb(th.muted, muted_fb),
        grid: rgb(th.border, muted_fb),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("cannot draw the PNG: {e:?}")
}

/// Range with a little room, never empty.
fn range(vals: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1e-9);
    (if from_zero { lo } else { lo - pad }, hi + pad)
}

/// The summary box's lines: every figure from the run's Snapshot.
pub fn summary_lines(sn: &Snapshot, title: &str) -> Vec<(String, bool)> {
    if sn.ticks == 0 {
        return vec![
            (title.to_owned(), true),
            ("empty run: no samples were recorded".into(), false),
        ];
    }
    let mut l: Vec<(String, bool)> = vec![
        (title.to_owned(), true),
        (format!("duration      {}", clock(sn.elapsed_s)), false),
        (
            format!("energy        {}", fmt_energy_kwh(sn.energy_kwh)),
            false,
        ),
        (
            format!("operational   {} CO2e", fmt_co2e_g(sn.co2e_g)),
            true,
        ),
    ];
    if let Some(c) = sn.comms {
        let band = c.range().map_or(String::new(), |(lo, hi)| {
            format!(", {}–{}", fmt_co2e_g(lo), fmt_co2e_g(hi))
        });
        l.push((
            format!("network  {} of it (comms{band})", fmt_co2e_g(c.g)),
            false,
        ));
    }
    if let Some(e) = sn.embodied {
        l.push((
            format!("embodied      {}", fmt_co2e_band(e.g, e.range(), "")),
            false,
        ));
    }
    l.extend([
        (
            format!("total         {} CO2e", fmt_co2e_g(sn.total_co2e_g)),
            true,
        ),
        (
            format!(
                "mean grid     {}",
                sn.mean_intensity
                    .map_or("—".into(), |i| format!("{i:.0} gCO2e/kWh"))
            ),
            false,
        ),
        (format!("PUE           {:.2}", sn.pue), false),
        (
            format!(
                "≈ {} tree-days · {} car-km",
                fmt_sig(sn.equivalents.tree_days),
                fmt_sig(sn.equivalents.car_km)
            ),
            false,
        ),
        (String::new(), false),
    ]);
    match sn.per_point {
        Some(p) => {
            l.push((format!("accuracy +{:.1} pt", p.gained), true));
            l.push((
                // DISCO's style: each point of accuracy in energy and tree-days.
                format!(
                    "average  {} · {} per pt ({} tree-days)",
                    fmt_co2e_g(p.co2e_g),
                    fmt_energy_kwh(p.energy_kwh),
                    fmt_sig(p.tree_days)
                ),
                false,
            ));
            if let Some(lp) = sn.last_point {
                l.push((
                    format!(
                        "last (→{}%)  {} · {}",
                        lp.point,
                        fmt_co2e_g(lp.co2e_g),
                        fmt_energy_kwh(lp.energy_kwh)
                    ),
                    false,
                ));
                if let Some(x) = lp.vs_first {
                    l.push((format!("last point cost {x:.1}× the first"), false));
                }
            }
        }
        None => l.push(("no accuracy in this recording".into(), false)),
    }
    if sn.cap_changes > 0 {
        l.push((
            format!("{} power-cap change(s), marked", sn.cap_changes),
            false,
        ));
    }
    l
}

/// The constants behind the figures, for the summary box's foot.
fn constants_lines() -> Vec<(String, bool)> {
    vec![
        (String::new(), false),
        ("constants".into(), true),
        (
            format!(
                "trees {TREE_KG_CO2_PER_YEAR} kg/yr, car {CAR_G_PER_KM_EU} g/km (Green Algorithms)"
            ),
            false,
        ),
        (
            format!(
                "embodied {EMBODIED_KG_PER_GPU} kg/GPU + {EMBODIED_KG_PER_SERVER} kg/server over {HARDWARE_LIFETIME_YEARS} y (BLOOM)"
            ),
            false,
        ),
        ("network 0.001–0.069 kWh/GB (CCF … CUMULATOR)".into(), false),
    ]
}

/// An empty history, for a meter that keeps none.
fn no_history() -> &'static History {
    static EMPTY: OnceLock<History> = OnceLock::new();
    EMPTY.get_or_init(|| History::new(Vec::new()))
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel: caption, axes and a light grid, in the report's style.
#[allow(clippy::too_many_arguments)]
fn panel<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: String,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    xfmt: &dyn Fn(&f64) -> String,
    x_labels: usize,
    s: f64,
    pal: &Palette,
) -> Result<Chart<'a, 'b>, String> {
    let mut ch = ChartBuilder::on(area)
        .caption(
            caption,
            (FAMILY, 20.0 * s, FontStyle::Bold)
                .into_font()
                .color(&pal.text),
        )
        .margin((10.0 * s) as u32)
        .x_label_area_size((30.0 * s) as u32)
        .y_label_area_size((55.0 * s) as u32)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    ch.configure_mesh()
        .x_label_formatter(xfmt)
        .x_labels(x_labels)
        .label_style((FAMILY, 14.0 * s).into_font().color(&pal.muted))
        .axis_style(pal.grid)
        .light_line_style(pal.grid.mix(0.15))
        .bold_line_style(pal.grid.mix(0.3))
        .draw()
        .map_err(err)?;
    Ok(ch)
}

type Area<'b> = DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>;

/// A blank image in the theme's background with `title` across the top: the whole area, the
/// body under the title, the palette, and the scale (1.0 at 1000 px high).
fn canvas<'b>(
    path: &'b Path,
    size: (u32, u32),
    th: &Theme,
    title: &str,
) -> Result<(Area<'b>, Area<'b>, Palette, f64), String> {
    register_font()?;
    let pal = palette(th);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&pal.bg).map_err(err)?;
    let s = f64::from(size.1) / 1000.0;
    let (head, body) = root.split_vertically((60.0 * s) as u32);
    head.draw(&Text::new(
        title.to_owned(),
        ((20.0 * s) as i32, (16.0 * s) as i32),
        (FAMILY, 28.0 * s, FontStyle::Bold)
            .into_font()
            .color(&pal.text),
    ))
    .map_err(err)?;
    Ok((root, body, pal, s))
}

/// Draws the report for `d` to `path` (PNG).
/// What a report image shows: a run's Meter (its history) and Snapshot (its figures), and the
/// governor's last word where the screen exported it.
pub struct Run<'a> {
    pub meter: &'a Meter,
    pub snap: &'a Snapshot,
    pub cpu_estimate: bool,
    pub cap_note: Option<&'a str>,
}

pub fn write(
    run: &Run<'_>,
    th: &Theme,
    title: &str,
    path: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    let h = run.meter.history.as_ref().unwrap_or_else(|| no_history());
    let (root, body, pal, s) = canvas(path, size, th, &format!("carbontop report · {title}"))?;
    let w = size.0;
    let (charts, side) = body.split_horizontally((f64::from(w) * 0.70) as u32);
    let panels = charts.split_evenly((2, 2));
    let window = None;
    let (x0, x1) = (
        h.first_t().unwrap_or(0.0),
        h.last_t()
            .unwrap_or(1.0)
            .max(h.first_t().unwrap_or(0.0) + 1.0),
    );
    let label = (FAMILY, 14.0 * s).into_font().color(&pal.muted);
    let xfmt = |x: &f64| clock(*x);

    // 1. Power by component.
    let mut series: Vec<(String, usize, RGBColor)> =
        vec![("total".into(), col::TOTAL, rgb(th.total, pal.text))];
    for i in 0..run.meter.basis.gpu_count {
        series.push((
            format!("GPU{i}"),
            col::GPU0 + i,
            rgb(th.gpu_color(i), pal.text),
        ));
    }
    let cpu_name = if run.cpu_estimate {
        "CPU (estimate)"
    } else {
        "CPU"
    };
    series.push((cpu_name.into(), col::CPU, rgb(th.cpu, pal.text)));
    series.push(("memory".into(), col::MEM, rgb(th.memory, pal.text)));
    series.push(("network".into(), col::NET, rgb(th.network, pal.text)));
    let data: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, c, _)| h.window(*c, window))
        .collect();
    let (_, ymax) = range(data.iter().flatten().map(|p| p.1), true);
    {
        let mut ch = panel(
            &panels[0],
            "Power by component (IT, W)".into(),
            x0..x1,
            0.0..ymax,
            &xfmt,
            6,
            s,
            &pal,
        )?;
        for ((name, _, c), pts) in series.iter().zip(&data).rev() {
            let c = *c;
            // Width 1: plotters mitres thick polylines, and a zigzag's sharp joins spike.
            ch.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(1)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        for cc in &run.meter.cap_changes {
            let c = rgb(th.warning, pal.text);
            ch.draw_series(LineSeries::new(
                [(cc.elapsed_s, 0.0), (cc.elapsed_s, ymax)],
                c.stroke_width(1),
            ))
            .map_err(err)?;
        }
        ch.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(pal.bg.mix(0.85))
            .border_style(pal.grid)
            .label_font(label.clone())
            .draw()
            .map_err(err)?;
    }

    // 2. Grid intensity.
    let gi = h.window(col::INTENSITY, window);
    let (ilo, ihi) = range(gi.iter().map(|p| p.1), false);
    {
        let mut ch = panel(
            &panels[1],
            "Grid carbon intensity (gCO2e/kWh)".into(),
            x0..x1,
            ilo..ihi,
            &xfmt,
            6,
            s,
            &pal,
        )?;
        let c = rgb(th.intensity, pal.text);
        ch.draw_series(LineSeries::new(gi.iter().copied(), c.stroke_width(1)))
            .map_err(err)?;
    }

    // 3. Cumulative gCO2e.
    let co2 = h.window(col::CO2E, window);
    let (_, cmax) = range(co2.iter().map(|p| p.1), true);
    {
        let mut ch = panel(
            &panels[2],
            "Cumulative operational carbon (gCO2e)".into(),
            x0..x1,
            0.0..cmax,
            &xfmt,
            6,
            s,
            &pal,
        )?;
        let c = rgb(th.carbon, pal.text);
        ch.draw_series(
            AreaSeries::new(co2.iter().copied(), 0.0, c.mix(0.2)).border_style(c.stroke_width(2)),
        )
        .map_err(err)?;
    }

    // 4. Accuracy against gCO2e, each whole point marked.
    let acc = h.xy(col::CO2E, col::ACCURACY, window);
    {
        let (ax0, ax1) = range(acc.iter().map(|p| p.0), false);
        let (ay0, ay1) = range(acc.iter().map(|p| p.1), false);
        let cap = match run.snap.last_point {
            Some(lp) => format!(
                "Accuracy vs gCO2e · last point (→{}%) cost {}",
                lp.point,
                fmt_co2e_g(lp.co2e_g)
            ),
            None => "Accuracy (%) vs cumulative gCO2e".into(),
        };
        let mut ch = panel(
            &panels[3],
            cap,
            ax0..ax1,
            ay0..ay1,
            &|x: &f64| fmt_co2e_g(*x),
            5,
            s,
            &pal,
        )?;
        let c = rgb(th.accuracy, pal.text);
        if acc.is_empty() {
            ch.plotting_area()
                .draw(&Text::new(
                    "no accuracy in this recording",
                    (ax0, (ay0 + ay1) / 2.0),
                    label.clone(),
                ))
                .map_err(err)?;
        } else {
            ch.draw_series(LineSeries::new(acc.iter().copied(), c.stroke_width(1)))
                .map_err(err)?;
            let m = rgb(th.carbon, pal.text);
            ch.draw_series(run.snap.milestones.iter().map(|ms| {
                Circle::new(
                    (ms.co2e_g, f64::from(ms.point)),
                    (3.0 * s) as u32,
                    m.filled(),
                )
            }))
            .map_err(err)?;
        }
    }

    // Summary box.
    let pad = (20.0 * s) as i32;
    let line_h = (27.0 * s) as i32;
    let mut lines = summary_lines(run.snap, "summary");
    if let Some(n) = run.cap_note {
        // The governor's choice and its savings against uncapped (exported from the screen).
        lines.push((
            format!("governor: {}", n.split("; ").last().unwrap_or(n)),
            false,
        ));
    }
    lines.extend(constants_lines());
    for (i, (text, bold)) in lines.iter().enumerate() {
        let style = if *bold {
            (FAMILY, 18.0 * s, FontStyle::Bold)
                .into_font()
                .color(&pal.text)
        } else {
            (FAMILY, 16.0 * s).into_font().color(&pal.text)
        };
        let y = pad + i as i32 * line_h;
        // "key   value": the value in a column of its own (the font is proportional).
        match text.split_once("  ").filter(|(k, _)| !k.trim().is_empty()) {
            Some((k, v)) => {
                side.draw(&Text::new(k.to_owned(), (pad, y), style.clone()))
                    .map_err(err)?;
                side.draw(&Text::new(
                    v.trim().to_owned(),
                    (pad + (150.0 * s) as i32, y),
                    style,
                ))
                .map_err(err)?;
            }
            None => side
                .draw(&Text::new(text.clone(), (pad, y), style))
                .map_err(err)?,
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// `report a.csv b.csv --png OUT.png`: the runs compared on one image — cumulative gCO2e over
/// time and accuracy against gCO2e, one colour per run, over the side-by-side table.
pub fn write_compare(
    runs: &[&Meter],
    table: &[(&str, Vec<String>)],
    th: &Theme,
    path: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    let title = format!("carbontop comparison · {} runs", runs.len());
    let (root, body, pal, s) = canvas(path, size, th, &title)?;
    let (charts, bottom) = body.split_vertically((f64::from(size.1) * 0.58) as u32);
    let panels = charts.split_evenly((1, 2));
    let names = table.first().map(|(_, v)| v.clone()).unwrap_or_default();
    // Distinct theme colours, one per run (the colour-blind theme keeps them apart).
    let cycle = [
        th.carbon,
        th.intensity,
        th.cpu,
        th.network,
        th.memory,
        th.accuracy,
    ];
    let colour = |i: usize| rgb(cycle[i % cycle.len()], pal.text);
    let label = (FAMILY, 14.0 * s).into_font().color(&pal.muted);

    let co2: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|m| {
            m.history
                .as_ref()
                .unwrap_or_else(|| no_history())
                .window(col::CO2E, None)
        })
        .collect();
    let (_, xmax) = range(co2.iter().flatten().map(|p| p.0), true);
    let (_, cmax) = range(co2.iter().flatten().map(|p| p.1), true);
    {
        let mut ch = panel(
            &panels[0],
            "Cumulative operational carbon (gCO2e)".into(),
            0.0..xmax,
            0.0..cmax,
            &|x: &f64| clock(*x),
            6,
            s,
            &pal,
        )?;
        for (i, pts) in co2.iter().enumerate() {
            let c = colour(i);
            ch.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(names.get(i).cloned().unwrap_or_default())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        ch.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(pal.bg.mix(0.85))
            .border_style(pal.grid)
            .label_font(label.clone())
            .draw()
            .map_err(err)?;
    }
    let acc: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|m| {
            m.history
                .as_ref()
                .unwrap_or_else(|| no_history())
                .xy(col::CO2E, col::ACCURACY, None)
        })
        .collect();
    {
        let (ax0, ax1) = range(acc.iter().flatten().map(|p| p.0), true);
        let (ay0, ay1) = range(acc.iter().flatten().map(|p| p.1), false);
        let mut ch = panel(
            &panels[1],
            "Accuracy (%) vs cumulative gCO2e".into(),
            ax0..ax1,
            ay0..ay1,
            &|x: &f64| fmt_co2e_g(*x),
            5,
            s,
            &pal,
        )?;
        if acc.iter().all(Vec::is_empty) {
            ch.plotting_area()
                .draw(&Text::new(
                    "no accuracy in these recordings",
                    (ax0, (ay0 + ay1) / 2.0),
                    label.clone(),
                ))
                .map_err(err)?;
        }
        for (i, pts) in acc.iter().enumerate() {
            ch.draw_series(LineSeries::new(
                pts.iter().copied(),
                colour(i).stroke_width(2),
            ))
            .map_err(err)?;
        }
    }
    // The table: one column per run, in the run's colour.
    let pad = (20.0 * s) as i32;
    let line_h = (28.0 * s) as i32;
    let key_w = (160.0 * s) as i32;
    let col_w = ((f64::from(size.0) - f64::from(key_w) - 2.0 * f64::from(pad))
        / runs.len().max(1) as f64) as i32;
    for (r, (k, vals)) in table.iter().enumerate() {
        let y = pad + r as i32 * line_h;
        let bold = r == 0;
        let font = |c: RGBColor| {
            if bold {
                (FAMILY, 18.0 * s, FontStyle::Bold).into_font().color(&c)
            } else {
                (FAMILY, 16.0 * s).into_font().color(&c)
            }
        };
        bottom
            .draw(&Text::new(k.to_string(), (pad, y), font(pal.muted)))
            .map_err(err)?;
        for (i, v) in vals.iter().enumerate() {
            let c = if bold { colour(i) } else { pal.text };
            bottom
                .draw(&Text::new(
                    v.clone(),
                    (pad + key_w + i as i32 * col_w, y),
                    font(c),
                ))
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}
