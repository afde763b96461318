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

/// plotters' error in one line (its Display: the Debug form printed the enum's insides).
fn err<E: std::fmt::Display>(e: E) -> String {
    format!("cannot draw the PNG: {}", e.to_string().replace('\n', " "))
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
    if let Some(c) = sn.cmd_net.filter(|c| c.internet.total() > 0) {
        l.push((
            format!(
                "internet path {}",
                fmt_co2e_band(c.internet_co2e.g, c.internet_co2e.range(), "")
            ),
            false,
        ));
    }
    l.extend([
        (
            format!(
                "total         {}",
                fmt_co2e_band(sn.total_band.g, sn.total_band.range(), "")
            ),
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

/// A meter's history, or an empty one for a meter that keeps none.
fn history_of(m: &Meter) -> &History {
    static EMPTY: OnceLock<History> = OnceLock::new();
    m.history
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(|| History::new(Vec::new())))
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What every part of one image shares: the theme, its palette and the scale (1.0 at 1000 px
/// high).
struct Ctx<'t> {
    th: &'t Theme,
    pal: Palette,
    s: f64,
}

impl Ctx<'_> {
    /// A theme colour on this image (the palette's text colour where the theme has none).
    fn colour(&self, c: TermColor) -> RGBColor {
        rgb(c, self.pal.text)
    }

    /// The muted small font of axis labels, legends and notes.
    fn label(&self) -> TextStyle<'static> {
        (FAMILY, 14.0 * self.s).into_font().color(&self.pal.muted)
    }

    /// Body text in colour `c`: bold and larger for headings.
    fn text(&self, bold: bool, c: RGBColor) -> TextStyle<'static> {
        if bold {
            (FAMILY, 18.0 * self.s, FontStyle::Bold)
                .into_font()
                .color(&c)
        } else {
            (FAMILY, 16.0 * self.s).into_font().color(&c)
        }
    }
}

/// A panel's axes: the ranges, how the x labels read and how many there are.
struct Axes<'f> {
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    xfmt: &'f dyn Fn(&f64) -> String,
    x_labels: usize,
}

/// Run-relative time as an x label.
fn clock_label(x: &f64) -> String {
    clock(*x)
}

/// gCO2e as an x label.
fn co2e_label(x: &f64) -> String {
    fmt_co2e_g(*x)
}

/// One panel: caption, axes and a light grid, in the report's style.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: String,
    axes: Axes<'_>,
    cx: &Ctx<'_>,
) -> Result<Chart<'a, 'b>, String> {
    let (s, pal) = (cx.s, &cx.pal);
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
        .build_cartesian_2d(axes.x, axes.y)
        .map_err(err)?;
    ch.configure_mesh()
        .x_label_formatter(axes.xfmt)
        .x_labels(axes.x_labels)
        .label_style(cx.label())
        .axis_style(pal.grid)
        .light_line_style(pal.grid.mix(0.15))
        .bold_line_style(pal.grid.mix(0.3))
        .draw()
        .map_err(err)?;
    Ok(ch)
}

/// The series' legend, boxed in the corner `pos`.
fn draw_legend<'a, 'b: 'a>(
    ch: &mut Chart<'a, 'b>,
    pos: SeriesLabelPosition,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    ch.configure_series_labels()
        .position(pos)
        .background_style(cx.pal.bg.mix(0.85))
        .border_style(cx.pal.grid)
        .label_font(cx.label())
        .draw()
        .map_err(err)
}

/// A note in the middle of the left edge of an empty panel.
fn draw_note(
    ch: &Chart<'_, '_>,
    note: &str,
    x: f64,
    y: (f64, f64),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    ch.plotting_area()
        .draw(&Text::new(note, (x, (y.0 + y.1) / 2.0), cx.label()))
        .map_err(err)
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
    // Said before drawing: the file is only written at the end.
    if path.is_dir() {
        return Err("is a directory: give the PNG's file name, e.g. report.png".into());
    }
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
    let h = history_of(run.meter);
    let (root, body, pal, s) = canvas(path, size, th, &format!("carbontop report · {title}"))?;
    let cx = Ctx { th, pal, s };
    let (charts, side) = body.split_horizontally((f64::from(size.0) * 0.70) as u32);
    let panels = charts.split_evenly((2, 2));
    let x0 = h.first_t().unwrap_or(0.0);
    let xr = x0..h.last_t().unwrap_or(1.0).max(x0 + 1.0);
    draw_power_panel(&panels[0], run, h, xr.clone(), &cx)?;
    draw_intensity_panel(&panels[1], h, xr.clone(), &cx)?;
    draw_carbon_panel(&panels[2], h, xr, &cx)?;
    draw_accuracy_panel(&panels[3], run.snap, h, &cx)?;
    draw_summary(&side, run, &cx)?;
    root.present().map_err(err)?;
    Ok(())
}

/// The power series, in drawing order reversed: total, each GPU, CPU, memory, network; each with
/// its name, history column and colour.
fn power_series(run: &Run<'_>, cx: &Ctx<'_>) -> Vec<(String, usize, RGBColor)> {
    let th = cx.th;
    let mut series: Vec<(String, usize, RGBColor)> =
        vec![("total".into(), col::TOTAL, cx.colour(th.total))];
    for i in 0..run.meter.basis.gpu_count {
        // The recording's number for it (NVML's index; the position in older recordings).
        let n = run.snap.now.gpus.get(i).map_or(i as u32, |g| g.index);
        series.push((format!("GPU{n}"), col::GPU0 + i, cx.colour(th.gpu_color(i))));
    }
    let cpu_name = if run.cpu_estimate {
        "CPU (estimate)"
    } else {
        "CPU"
    };
    series.push((cpu_name.into(), col::CPU, cx.colour(th.cpu)));
    series.push(("memory".into(), col::MEM, cx.colour(th.memory)));
    series.push(("network".into(), col::NET, cx.colour(th.network)));
    series
}

/// Panel 1: power by component, cap changes marked.
fn draw_power_panel(
    area: &Area<'_>,
    run: &Run<'_>,
    h: &History,
    x: std::ops::Range<f64>,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let series = power_series(run, cx);
    let data: Vec<Vec<(f64, f64)>> = series.iter().map(|(_, c, _)| h.window(*c, None)).collect();
    let (_, ymax) = range(data.iter().flatten().map(|p| p.1), true);
    let axes = Axes {
        x,
        y: 0.0..ymax,
        xfmt: &clock_label,
        x_labels: 6,
    };
    let mut ch = panel(area, "Power by component (IT, W)".into(), axes, cx)?;
    for ((name, _, c), pts) in series.iter().zip(&data).rev() {
        let c = *c;
        // Width 1: plotters mitres thick polylines, and a zigzag's sharp joins spike.
        ch.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(1)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    for cc in &run.meter.cap_changes {
        let c = cx.colour(cx.th.warning);
        ch.draw_series(LineSeries::new(
            [(cc.elapsed_s, 0.0), (cc.elapsed_s, ymax)],
            c.stroke_width(1),
        ))
        .map_err(err)?;
    }
    draw_legend(&mut ch, SeriesLabelPosition::UpperRight, cx)
}

/// Panel 2: grid intensity, its axis not from zero.
fn draw_intensity_panel(
    area: &Area<'_>,
    h: &History,
    x: std::ops::Range<f64>,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let gi = h.window(col::INTENSITY, None);
    let (ilo, ihi) = range(gi.iter().map(|p| p.1), false);
    let axes = Axes {
        x,
        y: ilo..ihi,
        xfmt: &clock_label,
        x_labels: 6,
    };
    let mut ch = panel(area, "Grid carbon intensity (gCO2e/kWh)".into(), axes, cx)?;
    let c = cx.colour(cx.th.intensity);
    ch.draw_series(LineSeries::new(gi.iter().copied(), c.stroke_width(1)))
        .map_err(err)?;
    Ok(())
}

/// Panel 3: cumulative gCO2e, filled.
fn draw_carbon_panel(
    area: &Area<'_>,
    h: &History,
    x: std::ops::Range<f64>,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let co2 = h.window(col::CO2E, None);
    let (_, cmax) = range(co2.iter().map(|p| p.1), true);
    let axes = Axes {
        x,
        y: 0.0..cmax,
        xfmt: &clock_label,
        x_labels: 6,
    };
    let mut ch = panel(
        area,
        "Cumulative operational carbon (gCO2e)".into(),
        axes,
        cx,
    )?;
    let c = cx.colour(cx.th.carbon);
    ch.draw_series(
        AreaSeries::new(co2.iter().copied(), 0.0, c.mix(0.2)).border_style(c.stroke_width(2)),
    )
    .map_err(err)?;
    Ok(())
}

/// Panel 4: accuracy against gCO2e, each whole point marked.
fn draw_accuracy_panel(
    area: &Area<'_>,
    sn: &Snapshot,
    h: &History,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let acc = h.xy(col::CO2E, col::ACCURACY, None);
    let (ax0, ax1) = range(acc.iter().map(|p| p.0), false);
    let (ay0, ay1) = range(acc.iter().map(|p| p.1), false);
    let cap = match sn.last_point {
        Some(lp) => format!(
            "Accuracy vs gCO2e · last point (→{}%) cost {}",
            lp.point,
            fmt_co2e_g(lp.co2e_g)
        ),
        None => "Accuracy (%) vs cumulative gCO2e".into(),
    };
    let axes = Axes {
        x: ax0..ax1,
        y: ay0..ay1,
        xfmt: &co2e_label,
        x_labels: 5,
    };
    let mut ch = panel(area, cap, axes, cx)?;
    if acc.is_empty() {
        return draw_note(&ch, "no accuracy in this recording", ax0, (ay0, ay1), cx);
    }
    let c = cx.colour(cx.th.accuracy);
    ch.draw_series(LineSeries::new(acc.iter().copied(), c.stroke_width(1)))
        .map_err(err)?;
    let m = cx.colour(cx.th.carbon);
    ch.draw_series(sn.milestones.iter().map(|ms| {
        Circle::new(
            (ms.co2e_g.0, f64::from(ms.point)),
            (3.0 * cx.s) as u32,
            m.filled(),
        )
    }))
    .map_err(err)?;
    Ok(())
}

/// The summary box beside the charts: the run's figures, the governor's last word, the constants.
fn draw_summary(side: &Area<'_>, run: &Run<'_>, cx: &Ctx<'_>) -> Result<(), String> {
    let s = cx.s;
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
        let style = cx.text(*bold, cx.pal.text);
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
    let cx = Ctx { th, pal, s };
    let (charts, bottom) = body.split_vertically((f64::from(size.1) * 0.58) as u32);
    let panels = charts.split_evenly((1, 2));
    let names = table.first().map(|(_, v)| v.clone()).unwrap_or_default();
    draw_compare_carbon(&panels[0], runs, &names, &cx)?;
    draw_compare_accuracy(&panels[1], runs, &cx)?;
    draw_compare_table(&bottom, table, runs.len(), size.0, &cx)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Run `i`'s colour: distinct theme colours in turn (the colour-blind theme keeps them apart).
fn run_colour(i: usize, cx: &Ctx<'_>) -> RGBColor {
    let th = cx.th;
    let cycle = [
        th.carbon,
        th.intensity,
        th.cpu,
        th.network,
        th.memory,
        th.accuracy,
    ];
    cx.colour(cycle[i % cycle.len()])
}

/// Cumulative gCO2e over time, one line per run, named in the legend.
fn draw_compare_carbon(
    area: &Area<'_>,
    runs: &[&Meter],
    names: &[String],
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let co2: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|m| history_of(m).window(col::CO2E, None))
        .collect();
    let (_, xmax) = range(co2.iter().flatten().map(|p| p.0), true);
    let (_, cmax) = range(co2.iter().flatten().map(|p| p.1), true);
    let axes = Axes {
        x: 0.0..xmax,
        y: 0.0..cmax,
        xfmt: &clock_label,
        x_labels: 6,
    };
    let mut ch = panel(
        area,
        "Cumulative operational carbon (gCO2e)".into(),
        axes,
        cx,
    )?;
    for (i, pts) in co2.iter().enumerate() {
        let c = run_colour(i, cx);
        ch.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(names.get(i).cloned().unwrap_or_default())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    draw_legend(&mut ch, SeriesLabelPosition::UpperLeft, cx)
}

/// Accuracy against cumulative gCO2e, one line per run.
fn draw_compare_accuracy(area: &Area<'_>, runs: &[&Meter], cx: &Ctx<'_>) -> Result<(), String> {
    let acc: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|m| history_of(m).xy(col::CO2E, col::ACCURACY, None))
        .collect();
    let (ax0, ax1) = range(acc.iter().flatten().map(|p| p.0), true);
    let (ay0, ay1) = range(acc.iter().flatten().map(|p| p.1), false);
    let axes = Axes {
        x: ax0..ax1,
        y: ay0..ay1,
        xfmt: &co2e_label,
        x_labels: 5,
    };
    let mut ch = panel(area, "Accuracy (%) vs cumulative gCO2e".into(), axes, cx)?;
    if acc.iter().all(Vec::is_empty) {
        draw_note(&ch, "no accuracy in these recordings", ax0, (ay0, ay1), cx)?;
    }
    for (i, pts) in acc.iter().enumerate() {
        ch.draw_series(LineSeries::new(
            pts.iter().copied(),
            run_colour(i, cx).stroke_width(2),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The table: one column per run across an image `width` wide, the header row in the runs'
/// colours.
fn draw_compare_table(
    bottom: &Area<'_>,
    table: &[(&str, Vec<String>)],
    runs: usize,
    width: u32,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let s = cx.s;
    let pad = (20.0 * s) as i32;
    let line_h = (28.0 * s) as i32;
    let key_w = (160.0 * s) as i32;
    let col_w =
        ((f64::from(width) - f64::from(key_w) - 2.0 * f64::from(pad)) / runs.max(1) as f64) as i32;
    for (r, (k, vals)) in table.iter().enumerate() {
        let y = pad + r as i32 * line_h;
        let bold = r == 0;
        bottom
            .draw(&Text::new(
                k.to_string(),
                (pad, y),
                cx.text(bold, cx.pal.muted),
            ))
            .map_err(err)?;
        for (i, v) in vals.iter().enumerate() {
            let c = if bold { run_colour(i, cx) } else { cx.pal.text };
            bottom
                .draw(&Text::new(
                    v.clone(),
                    (pad + key_w + i as i32 * col_w, y),
                    cx.text(bold, c),
                ))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// One horizontal bar per option with its band as a whisker, the marked one (`true`) in the
/// carbon colour and the others muted; each bar's figure at its end (`reprice --png`).
pub fn write_bars(
    bars: &[(String, [f64; 3], bool)],
    th: &Theme,
    title: &str,
    path: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    let (root, body, pal, s) = canvas(path, size, th, title)?;
    let cx = Ctx { th, pal, s };
    let n = bars.len().max(1);
    let (_, xmax) = range(bars.iter().flat_map(|b| b.1), true);
    // Room at the right for the figure written after the longest bar.
    let xmax = xmax * 1.25;
    // The first option on top.
    let row = |k: usize| (n - 1 - k) as f64;
    let names: Vec<String> = bars.iter().rev().map(|b| b.0.clone()).collect();
    let label = move |y: &f64| {
        let k = y.round();
        if (y - k).abs() < 1e-6 && k >= 0.0 {
            names.get(k as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let xfmt = |x: &f64| {
        if *x == 0.0 {
            "0".to_owned()
        } else {
            fmt_co2e_g(*x)
        }
    };
    let mut ch = ChartBuilder::on(&body)
        .caption(
            "Operational carbon of the same energy, priced again (gCO2e; whiskers: the band)",
            (FAMILY, 20.0 * s, FontStyle::Bold)
                .into_font()
                .color(&cx.pal.text),
        )
        .margin((20.0 * s) as u32)
        .x_label_area_size((40.0 * s) as u32)
        .y_label_area_size((360.0 * s) as u32)
        .build_cartesian_2d(0.0..xmax, -0.5..(n as f64 - 0.5))
        .map_err(err)?;
    ch.configure_mesh()
        .x_label_formatter(&xfmt)
        .x_labels(8)
        .y_labels(n * 2 + 1)
        .y_label_formatter(&label)
        .x_desc("gCO2e")
        .label_style(cx.text(false, cx.pal.text))
        .axis_desc_style(cx.label())
        .axis_style(cx.pal.grid)
        .disable_y_mesh()
        .light_line_style(cx.pal.grid.mix(0.15))
        .bold_line_style(cx.pal.grid.mix(0.3))
        .draw()
        .map_err(err)?;
    let marked = cx.colour(th.carbon);
    for (k, (_, [g, lo, hi], mine)) in bars.iter().enumerate() {
        let y = row(k);
        let c = if *mine { marked } else { cx.pal.muted };
        ch.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.32), (*g, y + 0.32)],
            c.mix(if *mine { 0.9 } else { 0.55 }).filled(),
        )))
        .map_err(err)?;
        if lo < hi {
            let w = cx.pal.text.stroke_width((2.0 * s).max(1.0) as u32);
            let whisker = [
                vec![(*lo, y), (*hi, y)],
                vec![(*lo, y - 0.15), (*lo, y + 0.15)],
                vec![(*hi, y - 0.15), (*hi, y + 0.15)],
            ];
            ch.draw_series(whisker.into_iter().map(|p| PathElement::new(p, w)))
                .map_err(err)?;
        }
        let tag = if *mine { " (recorded)" } else { "" };
        ch.draw_series(std::iter::once(Text::new(
            format!("  {}{tag}", fmt_co2e_g(*g)),
            (g.max(*hi), y),
            cx.text(*mine, cx.pal.text),
        )))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
