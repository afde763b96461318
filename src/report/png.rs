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
    NETWORK_KWH_PER_GB, NETWORK_KWH_PER_GB_HIGH, NETWORK_KWH_PER_GB_LOW, TREE_KG_CO2_PER_YEAR,
};
use crate::engine::meter::col;
use crate::engine::series::History;
use crate::engine::{Meter, Snapshot};
use crate::report::summary::{fmt_co2e_band, fmt_co2e_g, fmt_energy_kwh, fmt_sig, trade_off};
use crate::ui::render::clock;
use crate::ui::theme::Theme;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use ratatui::style::Color as TermColor;
use std::cell::RefCell;
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
    // A theme on the terminal's own background: white behind dark text, near-black behind
    // light text (the dark themes'), so the text stays readable.
    let bright = |c: RGBColor| u32::from(c.0) + u32::from(c.1) + u32::from(c.2) > 384;
    let fallback = if bright(rgb(th.text, RGBColor(20, 20, 20))) {
        RGBColor(24, 24, 24)
    } else {
        WHITE
    };
    let bg = rgb(th.background, fallback);
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

/// A box on the image, in pixels (x0, y0 inclusive; x1, y1 exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    /// Whether `o` lies wholly inside this box.
    pub fn holds(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 && o.y0 >= self.y0 && o.x1 <= self.x1 && o.y1 <= self.y1
    }

    /// Whether the two boxes share any pixel.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn of<CT: plotters::coord::CoordTranslate>(a: &DrawingArea<BitMapBackend<'_>, CT>) -> Rect {
        let (x, y) = a.get_pixel_range();
        Rect {
            x0: x.start,
            y0: y.start,
            x1: x.end,
            y1: y.end,
        }
    }
}

/// What a box on the image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A line of text (its box as the font measures it).
    Text,
    /// A chart's legend.
    Legend,
    /// A chart's plotted data (the plotting area).
    Data,
}

/// One thing drawn: what it is, its box, and the panel it must stay inside.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub kind: Kind,
    pub what: String,
    pub rect: Rect,
    pub within: Rect,
}

/// Every text, legend and plotting area of an image, for checking its layout.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub size: (u32, u32),
    pub items: Vec<Placed>,
}

/// The power and carbon series' colours in the default (printable) theme: the Okabe-Ito
/// palette (Okabe & Ito, "Color Universal Design", 2008), distinct under protanopia,
/// deuteranopia and tritanopia; its yellow is left out (unreadable on white).
const OKABE_ITO: [RGBColor; 7] = [
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(0, 114, 178),   // blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// A series' role, for its colour.
#[derive(Clone, Copy)]
enum Role {
    Gpu,
    Cpu,
    Mem,
    Net,
    Intensity,
    Carbon,
    Accuracy,
    Cap,
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
    l.extend(point_lines(sn));
    if sn.cap_changes > 0 {
        l.push((
            format!("{} power-cap change(s), marked", sn.cap_changes),
            false,
        ));
    }
    l
}

/// The per-point lines of the summary.
fn point_lines(sn: &Snapshot) -> Vec<(String, bool)> {
    let mut l = Vec::new();
    match sn.per_point {
        Some(p) => {
            l.push((format!("accuracy +{:.1} pt", p.gained), true));
            // DISCO's style: each point of accuracy in energy and tree-days.
            l.push((
                format!(
                    "average  {} · {} per pt",
                    fmt_co2e_g(p.co2e_g),
                    fmt_energy_kwh(p.energy_kwh)
                ),
                false,
            ));
            l.push((
                format!("  = {} tree-days per pt", fmt_sig(p.tree_days)),
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
    l
}

/// The constants behind the figures, for the summary box's foot.
fn constants_lines() -> Vec<(String, bool)> {
    vec![
        (String::new(), false),
        ("constants".into(), true),
        (
            format!("trees {TREE_KG_CO2_PER_YEAR} kg/yr, car {CAR_G_PER_KM_EU} g/km"),
            false,
        ),
        ("  (Green Algorithms)".into(), false),
        (
            format!("embodied {EMBODIED_KG_PER_GPU} kg/GPU + {EMBODIED_KG_PER_SERVER} kg/server"),
            false,
        ),
        (format!("  over {HARDWARE_LIFETIME_YEARS} y (BLOOM)"), false),
        ("network: NIC + switch port by link".into(), false),
        ("  speed; internet path".into(), false),
        (
            format!(
                "  {NETWORK_KWH_PER_GB} kWh/GB ({NETWORK_KWH_PER_GB_LOW}–{:.3})",
                NETWORK_KWH_PER_GB_HIGH
            ),
            false,
        ),
        ("  (Aslan et al. 2018 trend)".into(), false),
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

type Area<'b> = DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>;

/// What every part of one image shares: the theme, its palette, the scale (1.0 at 1000 px
/// high) and the layout drawn so far.
struct Ctx<'t> {
    th: &'t Theme,
    pal: Palette,
    s: f64,
    log: RefCell<Vec<Placed>>,
}

impl Ctx<'_> {
    /// A theme colour on this image (the palette's text colour where the theme has none).
    fn colour(&self, c: TermColor) -> RGBColor {
        rgb(c, self.pal.text)
    }

    /// A series' colour: Okabe-Ito in the printable light theme, else the theme's own.
    fn role(&self, r: Role) -> RGBColor {
        let th = self.th;
        if th.name == "light" {
            let k = match r {
                Role::Gpu => 0,
                Role::Cpu | Role::Accuracy => 1,
                Role::Mem => 2,
                Role::Net | Role::Intensity => 3,
                Role::Carbon => 4,
                Role::Cap => 6,
            };
            return OKABE_ITO[k];
        }
        self.colour(match r {
            Role::Gpu => th.gpu_color(0),
            Role::Cpu => th.cpu,
            Role::Mem => th.memory,
            Role::Net => th.network,
            Role::Intensity => th.intensity,
            Role::Carbon => th.carbon,
            Role::Accuracy => th.accuracy,
            Role::Cap => th.warning,
        })
    }

    /// GPU `i`'s colour in a per-GPU chart.
    fn gpu(&self, i: usize) -> RGBColor {
        if self.th.name == "light" {
            OKABE_ITO[i % 6]
        } else {
            self.colour(self.th.gpu_color(i))
        }
    }

    /// Run `i`'s colour in a comparison.
    fn run(&self, i: usize) -> RGBColor {
        if self.th.name == "light" {
            return [
                OKABE_ITO[4],
                OKABE_ITO[1],
                OKABE_ITO[0],
                OKABE_ITO[2],
                OKABE_ITO[3],
            ][i % 5];
        }
        let th = self.th;
        let cycle = [th.carbon, th.accuracy, th.cpu, th.network, th.memory];
        self.colour(cycle[i % cycle.len()])
    }

    /// Font of `px` pixels at 1000 px high, in colour `c`.
    fn font(&self, px: f64, bold: bool, c: RGBColor) -> Font {
        Font {
            px: px * self.s,
            bold,
            c,
        }
    }

    /// Body text in colour `c`: bold and larger for headings (`reprice --png`'s bars).
    fn text(&self, bold: bool, c: RGBColor) -> TextStyle<'static> {
        self.font(if bold { 18.0 } else { 16.0 }, bold, c).style()
    }

    /// The muted small font of axis labels and notes.
    fn label(&self) -> TextStyle<'static> {
        self.font(15.0, false, self.pal.muted).style()
    }

    fn record(&self, kind: Kind, what: &str, rect: Rect, within: Rect) {
        self.log.borrow_mut().push(Placed {
            kind,
            what: what.to_owned(),
            rect,
            within,
        });
    }

    /// Draws `text` with its top left at `at` (relative to `area`), no wider than `max_w`:
    /// a smaller font where it would be wider, then cut with "…" (never past its box).
    /// Returns its width.
    fn put(
        &self,
        area: &Area<'_>,
        text: &str,
        at: (i32, i32),
        font: &Font,
        max_w: i32,
    ) -> Result<i32, String> {
        if text.is_empty() {
            return Ok(0);
        }
        let size = |t: &str, st: &TextStyle<'_>| -> Result<(i32, i32), String> {
            let (w, h) = area.estimate_text_size(t, st).map_err(err)?;
            Ok((w as i32, h as i32))
        };
        let mut f = *font;
        let mut st = f.style();
        let mut t = text.to_owned();
        let (mut w, mut h) = size(&t, &st)?;
        while w > max_w && f.px > 11.0 * self.s {
            f.px *= 0.92;
            st = f.style();
            (w, h) = size(&t, &st)?;
        }
        while w > max_w && t.chars().count() > 1 {
            t.pop();
            let cut = format!("{}…", t.trim_end());
            (w, h) = size(&cut, &st)?;
            if w <= max_w {
                t = cut;
                break;
            }
        }
        area.draw(&Text::new(t.clone(), at, st)).map_err(err)?;
        let base = area.get_base_pixel();
        let rect = Rect {
            x0: base.0 + at.0,
            y0: base.1 + at.1,
            x1: base.0 + at.0 + w,
            y1: base.1 + at.1 + h,
        };
        // Its box: from where it starts to `max_w` on, inside the area it is drawn on.
        let whole = Rect::of(area);
        let within = Rect {
            x0: whole.x0.max(rect.x0),
            x1: whole.x1.min(rect.x0 + max_w),
            ..whole
        };
        self.record(Kind::Text, &t, rect, within);
        Ok(w)
    }
}

/// A font: size in pixels, weight and colour.
#[derive(Clone, Copy)]
struct Font {
    px: f64,
    bold: bool,
    c: RGBColor,
}

impl Font {
    fn style(&self) -> TextStyle<'static> {
        let w = if self.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        (FAMILY, self.px, w).into_font().color(&self.c)
    }
}

/// How time reads on an axis: seconds, minutes or hours, whichever gives round ticks.
fn time_unit(span_s: f64) -> (f64, &'static str) {
    if span_s <= 180.0 {
        (1.0, "s")
    } else if span_s <= 3.0 * 3600.0 {
        (60.0, "min")
    } else if span_s <= 3.0 * 86_400.0 {
        (3600.0, "h")
    } else {
        (86_400.0, "days")
    }
}

/// A tick's value without needless decimals.
pub(crate) fn tick(x: &f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    if (r - r.round()).abs() < 1e-9 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// gCO2e as an axis tick.
fn co2e_tick(x: &f64) -> String {
    if *x == 0.0 {
        "0".into()
    } else {
        fmt_co2e_g(*x)
    }
}

/// One legend entry: its name, colour, and whether it is a filled patch (else a line).
struct Entry {
    name: String,
    colour: RGBColor,
    patch: bool,
}

/// A panel's axes, titles and legend.
struct Spec<'f> {
    caption: String,
    legend: Vec<Entry>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: String,
    y_desc: String,
    xfmt: &'f dyn Fn(&f64) -> String,
    yfmt: &'f dyn Fn(&f64) -> String,
}

/// One panel: its caption and legend above the plot (never over the data), axes with titles,
/// a light grid. Returns the chart to draw the data into.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    spec: Spec<'_>,
    cx: &Ctx<'_>,
) -> Result<Chart<'a, 'b>, String> {
    let s = cx.s;
    let (w, _) = area.dim_in_pixel();
    let w = w as i32;
    let pad = (12.0 * s) as i32;
    cx.put(
        area,
        &spec.caption,
        (pad, (6.0 * s) as i32),
        &cx.font(19.0, true, cx.pal.text),
        w - 2 * pad,
    )?;
    let legend_bottom = draw_legend(area, &spec.legend, (34.0 * s) as i32, cx)?;
    let (_, below) = area.split_vertically(legend_bottom + (6.0 * s) as i32);
    // Room for the last x tick, centred on the plot's right edge.
    let last = (spec.xfmt)(&spec.x.end);
    let (lw, _) = below.estimate_text_size(&last, &cx.label()).map_err(err)?;
    let right = ((lw as f64) / 2.0 + 6.0 * s).max(14.0 * s) as u32;
    let descs = (spec.x_desc.clone(), spec.y_desc.clone());
    let mut ch = ChartBuilder::on(area_ref(&below))
        .margin_left((6.0 * s) as u32)
        .margin_right(right)
        .margin_top((4.0 * s) as u32)
        .margin_bottom((4.0 * s) as u32)
        .x_label_area_size((50.0 * s) as u32)
        .y_label_area_size((78.0 * s) as u32)
        .build_cartesian_2d(spec.x.clone(), spec.y.clone())
        .map_err(err)?;
    ch.configure_mesh()
        .x_label_formatter(spec.xfmt)
        .y_label_formatter(spec.yfmt)
        .x_labels(7)
        .y_labels(((f64::from(below.dim_in_pixel().1) / (55.0 * s)) as usize).clamp(3, 8))
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc)
        .label_style(cx.label())
        .axis_desc_style(cx.font(15.0, false, cx.pal.text).style())
        .axis_style(cx.pal.grid)
        .light_line_style(cx.pal.grid.mix(0.12))
        .bold_line_style(cx.pal.grid.mix(0.3))
        .draw()
        .map_err(err)?;
    let data = Rect::of(ch.plotting_area());
    cx.record(Kind::Data, &spec.caption, data, Rect::of(area));
    record_descs(&below, data, &descs, cx)?;
    // The last x tick's box, as wide as it can be (centred on the right edge of the plot).
    let (lw, lh) = below.estimate_text_size(&last, &cx.label()).map_err(err)?;
    let half = lw as i32 / 2;
    cx.record(
        Kind::Text,
        &last,
        Rect {
            x0: data.x1 - half,
            y0: data.y1 + (4.0 * s) as i32,
            x1: data.x1 - half + lw as i32,
            y1: data.y1 + (4.0 * s) as i32 + lh as i32,
        },
        Rect::of(area),
    );
    Ok(ch)
}

/// The axis titles' boxes as plotters places them: the x title centred under the plot at the
/// foot of the area, the y title turned a quarter and centred beside it at the area's left.
fn record_descs(
    area: &Area<'_>,
    data: Rect,
    (x, y): &(String, String),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let style = cx.font(15.0, false, cx.pal.text).style();
    let whole = Rect::of(area);
    let (xw, xh) = area.estimate_text_size(x, &style).map_err(err)?;
    let mid = (data.x0 + data.x1) / 2;
    let bottom = whole.y1 - (4.0 * cx.s) as i32;
    cx.record(
        Kind::Text,
        x,
        Rect {
            x0: mid - xw as i32 / 2,
            y0: bottom - xh as i32,
            x1: mid - xw as i32 / 2 + xw as i32,
            y1: bottom,
        },
        whole,
    );
    let (yw, yh) = area.estimate_text_size(y, &style).map_err(err)?;
    let mid = (data.y0 + data.y1) / 2;
    let left = whole.x0 + (6.0 * cx.s) as i32;
    cx.record(
        Kind::Text,
        y,
        Rect {
            x0: left,
            y0: mid - yw as i32 / 2,
            x1: left + yh as i32,
            y1: mid - yw as i32 / 2 + yw as i32,
        },
        whole,
    );
    Ok(())
}

/// `area` itself: a chart is built on the area it is handed.
fn area_ref<'a, 'b>(a: &'a Area<'b>) -> &'a Area<'b> {
    a
}

/// The legend in rows under the caption, from `top`: a swatch and a name each, wrapped to the
/// panel's width. Returns the y below it.
fn draw_legend(area: &Area<'_>, entries: &[Entry], top: i32, cx: &Ctx<'_>) -> Result<i32, String> {
    let s = cx.s;
    let (w, _) = area.dim_in_pixel();
    let (pad, sw, gap, row_h) = (
        (14.0 * s) as i32,
        (22.0 * s) as i32,
        (18.0 * s) as i32,
        (22.0 * s) as i32,
    );
    let font = cx.font(15.0, false, cx.pal.text);
    let style = font.style();
    let (mut x, mut y) = (pad, top);
    let (mut x_max, mut drawn) = (pad, false);
    for e in entries {
        let (tw, _) = area.estimate_text_size(&e.name, &style).map_err(err)?;
        let need = sw + (6.0 * s) as i32 + tw as i32;
        if x > pad && x + need > w as i32 - pad {
            x = pad;
            y += row_h;
        }
        let mid = y + row_h / 2 - (2.0 * s) as i32;
        if e.patch {
            area.draw(&Rectangle::new(
                [
                    (x, mid - (6.0 * s) as i32),
                    (x + sw, mid + (6.0 * s) as i32),
                ],
                e.colour.mix(0.85).filled(),
            ))
            .map_err(err)?;
        } else {
            area.draw(&PathElement::new(
                vec![(x, mid), (x + sw, mid)],
                e.colour.stroke_width((4.0 * s).max(2.0) as u32),
            ))
            .map_err(err)?;
        }
        let tx = x + sw + (6.0 * s) as i32;
        let used = cx.put(
            area,
            &e.name,
            (tx, y + (2.0 * s) as i32),
            &font,
            w as i32 - pad - tx,
        )?;
        x_max = x_max.max(tx + used);
        x = tx + used + gap;
        drawn = true;
    }
    if !drawn {
        return Ok(top);
    }
    let base = area.get_base_pixel();
    let rect = Rect {
        x0: base.0 + pad,
        y0: base.1 + top,
        x1: base.0 + x_max,
        y1: base.1 + y + row_h,
    };
    cx.record(Kind::Legend, "legend", rect, Rect::of(area));
    Ok(y + row_h)
}

/// A blank image in the theme's background: the whole area and the context.
fn canvas<'b, 't>(
    path: &'b Path,
    size: (u32, u32),
    th: &'t Theme,
) -> Result<(Area<'b>, Ctx<'t>), String> {
    // Said before drawing: the file is only written at the end.
    if path.is_dir() {
        return Err("is a directory: give the PNG's file name, e.g. report.png".into());
    }
    register_font()?;
    let pal = palette(th);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&pal.bg).map_err(err)?;
    let s = f64::from(size.1) / 1000.0;
    Ok((
        root,
        Ctx {
            th,
            pal,
            s,
            log: RefCell::new(Vec::new()),
        },
    ))
}

/// The header: a bold title line and muted lines under it. Returns the body below.
fn header<'b>(
    root: &Area<'b>,
    title: &str,
    lines: &[String],
    cx: &Ctx<'_>,
) -> Result<Area<'b>, String> {
    let s = cx.s;
    let (w, _) = root.dim_in_pixel();
    let pad = (20.0 * s) as i32;
    let line_h = (25.0 * s) as i32;
    let h = (58.0 * s) as i32 + line_h * lines.len() as i32;
    let (head, body) = root.split_vertically(h);
    cx.put(
        &head,
        title,
        (pad, (12.0 * s) as i32),
        &cx.font(30.0, true, cx.pal.text),
        w as i32 - 2 * pad,
    )?;
    for (k, l) in lines.iter().enumerate() {
        cx.put(
            &head,
            l,
            (pad, (54.0 * s) as i32 + k as i32 * line_h),
            &cx.font(17.0, false, cx.pal.muted),
            w as i32 - 2 * pad,
        )?;
    }
    Ok(body)
}

/// What a report image shows: a run's Meter (its history) and Snapshot (its figures), and the
/// governor's last word where the screen exported it.
pub struct Run<'a> {
    pub meter: &'a Meter,
    pub snap: &'a Snapshot,
    pub cpu_estimate: bool,
    pub cap_note: Option<&'a str>,
}

/// `title` without the machine's directories: each absolute or home-relative path (a word
/// starting with `/` or `~/`) becomes its run name (a run directory's samples.csv by its
/// directory, else the file's name).
pub fn no_paths(title: &str) -> String {
    title
        .split(' ')
        .map(|w| {
            let bare = w.trim_matches(|c| c == '`' || c == '\'' || c == '"');
            if bare.starts_with('/') || bare.starts_with("~/") {
                w.replace(bare, &crate::report::summary::run_name(bare))
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run's date and time span (UTC), the GPUs and where the intensity came from.
fn about(run: &Run<'_>) -> String {
    let sn = run.snap;
    let mut parts = Vec::new();
    match (sn.start, sn.end) {
        (Some(a), Some(b)) if a.date_naive() == b.date_naive() => parts.push(format!(
            "{} {}–{} UTC ({})",
            a.format("%Y-%m-%d"),
            a.format("%H:%M"),
            b.format("%H:%M"),
            clock(sn.elapsed_s)
        )),
        (Some(a), Some(b)) => parts.push(format!(
            "{} – {} UTC ({})",
            a.format("%Y-%m-%d %H:%M"),
            b.format("%Y-%m-%d %H:%M"),
            clock(sn.elapsed_s)
        )),
        _ => parts.push(format!("duration {}", clock(sn.elapsed_s))),
    }
    let n = sn.gpu_count;
    parts.push(match n {
        0 => "no GPU measured".into(),
        1 => "1 GPU".into(),
        n => format!("{n} GPUs"),
    });
    if let Some(i) = &sn.intensity {
        let mean = sn
            .mean_intensity
            .map_or(String::new(), |m| format!(", mean {m:.0} gCO2e/kWh"));
        parts.push(format!("intensity from {}{mean}", i.source.kind.label()));
    }
    parts.push(format!("PUE {:.2}", sn.pue));
    parts.join(" · ")
}

/// Draws the report for one run to `path` (PNG). `title`: the run's name, its command and its
/// zone as the caller knows them (never an absolute path).
pub fn write(
    run: &Run<'_>,
    th: &Theme,
    title: &str,
    path: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    render(run, th, title, path, size).map(|_| ())
}

/// [`write`], returning where every text, legend and plot went.
pub fn render(
    run: &Run<'_>,
    th: &Theme,
    title: &str,
    path: &Path,
    size: (u32, u32),
) -> Result<Layout, String> {
    let h = history_of(run.meter);
    let (root, cx) = canvas(path, size, th)?;
    let body = header(
        &root,
        &format!("carbontop report · {}", no_paths(title)),
        &[about(run)],
        &cx,
    )?;
    let (head, body) = body.split_vertically((112.0 * cx.s) as i32);
    draw_headline(&head, run.snap, &cx)?;
    let (charts, side) = body.split_horizontally((f64::from(size.0) * 0.70) as i32);
    let x0 = h.first_t().unwrap_or(0.0);
    let x1 = h.last_t().unwrap_or(1.0).max(x0 + 1.0);
    let unit = time_unit(x1 - x0);
    let xr = x0 / unit.0..x1 / unit.0;
    if gpus_differ(run, h) {
        // Each GPU's power has a chart of its own: three rows, accuracy across the last.
        let (grid, last) = charts.split_vertically(charts.dim_in_pixel().1 as i32 * 2 / 3);
        let panels = grid.split_evenly((2, 2));
        draw_power_panel(&panels[0], run, h, (xr.clone(), unit), &cx)?;
        draw_gpu_panel(&panels[1], run, h, (xr.clone(), unit), &cx)?;
        draw_intensity_panel(&panels[2], h, (xr.clone(), unit), &cx)?;
        draw_carbon_panel(&panels[3], h, (xr, unit), &cx)?;
        draw_accuracy_panel(&last, run.snap, h, &cx)?;
    } else {
        let panels = charts.split_evenly((2, 2));
        draw_power_panel(&panels[0], run, h, (xr.clone(), unit), &cx)?;
        draw_intensity_panel(&panels[1], h, (xr.clone(), unit), &cx)?;
        draw_carbon_panel(&panels[2], h, (xr, unit), &cx)?;
        draw_accuracy_panel(&panels[3], run.snap, h, &cx)?;
    }
    draw_summary(&side, run, &cx)?;
    root.present().map_err(err)?;
    Ok(Layout {
        size,
        items: cx.log.into_inner(),
    })
}

/// The three numbers that matter, in large type across the top.
fn draw_headline(area: &Area<'_>, sn: &Snapshot, cx: &Ctx<'_>) -> Result<(), String> {
    let s = cx.s;
    let boxes = area.split_evenly((1, 3));
    let band = sn.co2e_band.range().map_or(String::new(), |(lo, hi)| {
        format!(" ({}–{})", fmt_co2e_g(lo), fmt_co2e_g(hi))
    });
    let items = [
        (
            format!("{} CO2e", fmt_co2e_g(sn.co2e_g)),
            format!("operational{band}"),
            cx.role(Role::Carbon),
        ),
        (
            fmt_energy_kwh(sn.energy_kwh),
            format!("energy at the facility (PUE {:.2})", sn.pue),
            cx.pal.text,
        ),
        match sn.per_point {
            Some(p) => (
                format!("{} / point", fmt_co2e_g(p.co2e_g)),
                format!(
                    "CO2e per accuracy point ({} / point, +{:.1} pt)",
                    fmt_energy_kwh(p.energy_kwh),
                    p.gained
                ),
                cx.pal.text,
            ),
            None => (
                "—".into(),
                "no accuracy: no cost per point".into(),
                cx.pal.muted,
            ),
        },
    ];
    for (b, (big, small, c)) in boxes.iter().zip(items) {
        let (w, hgt) = b.dim_in_pixel();
        let m = (10.0 * s) as i32;
        b.draw(&Rectangle::new(
            [(m, m / 2), (w as i32 - m, hgt as i32 - m / 2)],
            cx.pal.grid.mix(0.12).filled(),
        ))
        .map_err(err)?;
        let inner = w as i32 - 4 * m;
        cx.put(
            b,
            &big,
            (2 * m, (12.0 * s) as i32),
            &cx.font(36.0, true, c),
            inner,
        )?;
        cx.put(
            b,
            &small,
            (2 * m, (62.0 * s) as i32),
            &cx.font(16.0, false, cx.pal.muted),
            inner,
        )?;
    }
    Ok(())
}

/// Whether the GPUs differ enough to be shown one by one: their mean power more than 10%
/// apart, or their caps at the end different.
fn gpus_differ(run: &Run<'_>, h: &History) -> bool {
    let n = run.meter.basis.gpu_count;
    if n < 2 {
        return false;
    }
    let means: Vec<f64> = (0..n)
        .map(|i| {
            let pts = h.window(col::GPU0 + i, None);
            pts.iter().map(|p| p.1).sum::<f64>() / pts.len().max(1) as f64
        })
        .collect();
    let (lo, hi) = means.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &m| {
        (lo.min(m), hi.max(m))
    });
    let caps: Vec<Option<f64>> = run
        .meter
        .last
        .as_ref()
        .map(|t| t.gpus.iter().map(|g| g.cap_w).collect())
        .unwrap_or_default();
    let caps_differ = caps.windows(2).any(|w| w[0] != w[1]);
    caps_differ || (lo > 0.0 && hi / lo > 1.10)
}

/// Panel 1: power as a stacked area by component (the GPUs summed), cap changes marked.
fn draw_power_panel(
    area: &Area<'_>,
    run: &Run<'_>,
    h: &History,
    (x, unit): (std::ops::Range<f64>, (f64, &str)),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let cpu_name = if run.cpu_estimate {
        "CPU (estimate)"
    } else {
        "CPU"
    };
    let gpu_name = match run.meter.basis.gpu_count {
        0 | 1 => "GPU".to_owned(),
        n => format!("{n} GPUs"),
    };
    let layers = [
        (gpu_name, col::GPU, cx.role(Role::Gpu)),
        (cpu_name.to_owned(), col::CPU, cx.role(Role::Cpu)),
        ("memory".to_owned(), col::MEM, cx.role(Role::Mem)),
        ("network".to_owned(), col::NET, cx.role(Role::Net)),
    ];
    // Each layer stacked on those under it, point by point (the columns share their times).
    let mut stacked: Vec<Vec<(f64, f64)>> = Vec::new();
    for (_, c, _) in &layers {
        let pts = h.window(*c, None);
        let below = stacked.last();
        let layer: Vec<(f64, f64)> = pts
            .iter()
            .enumerate()
            .map(|(k, (t, v))| {
                let under = below.and_then(|b| b.get(k)).map_or(0.0, |p| p.1);
                (t / unit.0, under + v.max(0.0))
            })
            .collect();
        stacked.push(layer);
    }
    let (_, ymax) = range(stacked.iter().flatten().map(|p| p.1), true);
    let mut legend: Vec<Entry> = layers
        .iter()
        .map(|(n, _, c)| Entry {
            name: n.clone(),
            colour: *c,
            patch: true,
        })
        .collect();
    if !run.meter.cap_changes.is_empty() {
        legend.push(Entry {
            name: "power-cap change".into(),
            colour: cx.role(Role::Cap),
            patch: false,
        });
    }
    let spec = Spec {
        caption: "Power by component, stacked (IT, before PUE)".into(),
        legend,
        x,
        y: 0.0..ymax,
        x_desc: format!("time since start ({})", unit.1),
        y_desc: "power (W)".into(),
        xfmt: &tick,
        yfmt: &tick,
    };
    let mut ch = panel(area, spec, cx)?;
    for (layer, (_, _, c)) in stacked.iter().zip(&layers).rev() {
        ch.draw_series(
            AreaSeries::new(layer.iter().copied(), 0.0, c.mix(0.85).filled())
                .border_style(c.stroke_width(1)),
        )
        .map_err(err)?;
    }
    let cap = cx.role(Role::Cap);
    for cc in &run.meter.cap_changes {
        let t = cc.elapsed_s / unit.0;
        ch.draw_series(LineSeries::new(
            [(t, 0.0), (t, ymax)],
            cap.stroke_width((3.0 * cx.s) as u32),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Under the stack where the GPUs differ: each GPU's power.
fn draw_gpu_panel(
    area: &Area<'_>,
    run: &Run<'_>,
    h: &History,
    (x, unit): (std::ops::Range<f64>, (f64, &str)),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let n = run.meter.basis.gpu_count;
    let data: Vec<Vec<(f64, f64)>> = (0..n)
        .map(|i| {
            h.window(col::GPU0 + i, None)
                .into_iter()
                .map(|(t, v)| (t / unit.0, v))
                .collect()
        })
        .collect();
    let (_, ymax) = range(data.iter().flatten().map(|p| p.1), true);
    let spec = Spec {
        caption: "Each GPU's power".into(),
        legend: (0..n)
            .map(|i| Entry {
                // The recording's number for it (NVML's index; the position in older ones).
                name: format!(
                    "GPU{}",
                    run.snap.now.gpus.get(i).map_or(i as u32, |g| g.index)
                ),
                colour: cx.gpu(i),
                patch: false,
            })
            .collect(),
        x,
        y: 0.0..ymax,
        x_desc: format!("time since start ({})", unit.1),
        y_desc: "power (W)".into(),
        xfmt: &tick,
        yfmt: &tick,
    };
    let mut ch = panel(area, spec, cx)?;
    for (i, pts) in data.iter().enumerate() {
        ch.draw_series(LineSeries::new(
            pts.iter().copied(),
            cx.gpu(i).stroke_width((2.0 * cx.s) as u32),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Panel 2: grid intensity; its axis from zero unless the values sit far from it, and then
/// said in the axis title.
fn draw_intensity_panel(
    area: &Area<'_>,
    h: &History,
    (x, unit): (std::ops::Range<f64>, (f64, &str)),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let gi: Vec<(f64, f64)> = h
        .window(col::INTENSITY, None)
        .into_iter()
        .map(|(t, v)| (t / unit.0, v))
        .collect();
    let (lo, hi) = range(gi.iter().map(|p| p.1), false);
    // From zero when that leaves the changes readable (they span a fifth of the axis or more).
    let zero = lo <= 0.0 || (hi - lo) >= 0.2 * hi;
    let (ylo, caption) = if zero {
        (0.0, "Grid carbon intensity".to_owned())
    } else {
        (
            lo,
            format!(
                "Grid carbon intensity (axis from {} gCO2e/kWh, not 0)",
                tick(&lo.floor())
            ),
        )
    };
    let c = cx.role(Role::Intensity);
    let spec = Spec {
        caption,
        legend: vec![Entry {
            name: "intensity of the grid".into(),
            colour: c,
            patch: false,
        }],
        x,
        y: ylo.floor()..hi,
        x_desc: format!("time since start ({})", unit.1),
        y_desc: "gCO2e/kWh".into(),
        xfmt: &tick,
        yfmt: &tick,
    };
    let mut ch = panel(area, spec, cx)?;
    ch.draw_series(LineSeries::new(
        gi.iter().copied(),
        c.stroke_width((3.0 * cx.s) as u32),
    ))
    .map_err(err)?;
    Ok(())
}

/// Panel 3: cumulative gCO2e, filled.
fn draw_carbon_panel(
    area: &Area<'_>,
    h: &History,
    (x, unit): (std::ops::Range<f64>, (f64, &str)),
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let co2: Vec<(f64, f64)> = h
        .window(col::CO2E, None)
        .into_iter()
        .map(|(t, v)| (t / unit.0, v))
        .collect();
    let (_, cmax) = range(co2.iter().map(|p| p.1), true);
    let c = cx.role(Role::Carbon);
    let spec = Spec {
        caption: "Cumulative operational carbon".into(),
        legend: vec![Entry {
            name: "gCO2e so far".into(),
            colour: c,
            patch: false,
        }],
        x,
        y: 0.0..cmax,
        x_desc: format!("time since start ({})", unit.1),
        y_desc: "gCO2e".into(),
        xfmt: &tick,
        yfmt: &co2e_tick,
    };
    let mut ch = panel(area, spec, cx)?;
    ch.draw_series(
        AreaSeries::new(co2.iter().copied(), 0.0, c.mix(0.18))
            .border_style(c.stroke_width((3.0 * cx.s) as u32)),
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
    let (_, ax1) = range(acc.iter().map(|p| p.0), true);
    let (_, ay1) = range(acc.iter().map(|p| p.1), true);
    let caption = match sn.last_point {
        Some(lp) => format!(
            "Accuracy vs carbon · the last point (→{}%) cost {}",
            lp.point,
            fmt_co2e_g(lp.co2e_g)
        ),
        None => "Accuracy vs carbon".into(),
    };
    let (c, m) = (cx.role(Role::Accuracy), cx.role(Role::Carbon));
    let spec = Spec {
        caption,
        legend: vec![
            Entry {
                name: "accuracy".into(),
                colour: c,
                patch: false,
            },
            Entry {
                name: "each whole point reached".into(),
                colour: m,
                patch: true,
            },
        ],
        x: 0.0..ax1,
        y: 0.0..ay1.max(1.0),
        x_desc: "cumulative operational gCO2e".into(),
        y_desc: "accuracy (%)".into(),
        xfmt: &co2e_tick,
        yfmt: &tick,
    };
    let mut ch = panel(area, spec, cx)?;
    if acc.is_empty() {
        ch.plotting_area()
            .draw(&Text::new(
                "no accuracy in this recording",
                (ax1 * 0.05, ay1.max(1.0) / 2.0),
                cx.label(),
            ))
            .map_err(err)?;
        return Ok(());
    }
    ch.draw_series(LineSeries::new(
        acc.iter().copied(),
        c.stroke_width((3.0 * cx.s) as u32),
    ))
    .map_err(err)?;
    ch.draw_series(sn.milestones.iter().map(|ms| {
        Circle::new(
            (ms.co2e_g.0, f64::from(ms.point)),
            (4.0 * cx.s) as u32,
            m.filled(),
        )
    }))
    .map_err(err)?;
    Ok(())
}

/// The summary box beside the charts: the run's figures, the governor's last word, the constants.
fn draw_summary(side: &Area<'_>, run: &Run<'_>, cx: &Ctx<'_>) -> Result<(), String> {
    let s = cx.s;
    let (w, _) = side.dim_in_pixel();
    let pad = (16.0 * s) as i32;
    let line_h = (25.0 * s) as i32;
    let key_w = (128.0 * s) as i32;
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
        let style = cx.font(if *bold { 18.0 } else { 16.0 }, *bold, cx.pal.text);
        let y = (10.0 * s) as i32 + i as i32 * line_h;
        // "key   value": the value in a column of its own (the font is proportional).
        match text.split_once("  ").filter(|(k, _)| !k.trim().is_empty()) {
            Some((k, v)) => {
                cx.put(side, k, (pad, y), &style, key_w - 4)?;
                cx.put(
                    side,
                    v.trim(),
                    (pad + key_w, y),
                    &style,
                    w as i32 - pad - key_w - pad,
                )?;
            }
            None => {
                cx.put(side, text, (pad, y), &style, w as i32 - 2 * pad)?;
            }
        }
    }
    Ok(())
}

/// A compared run: its name, Meter and Snapshot.
pub struct Compared<'a> {
    pub name: String,
    pub meter: &'a Meter,
    pub snap: &'a Snapshot,
}

/// The GPUs' caps at the end of a run, as one label (`4×300 W`, `300/250 W`); None unknown.
fn caps_label(m: &Meter) -> Option<String> {
    let caps: Vec<f64> = m
        .last
        .as_ref()?
        .gpus
        .iter()
        .filter_map(|g| g.cap_w)
        .collect();
    let first = *caps.first()?;
    if caps.iter().all(|c| (c - first).abs() < 0.5) {
        Some(format!("{}×{first:.0} W", caps.len()))
    } else {
        let all: Vec<String> = caps.iter().map(|c| format!("{c:.0}")).collect();
        Some(format!("{} W", all.join("/")))
    }
}

/// A fact of a run that two runs may share: its name and how it reads.
type Fact = (&'static str, Box<dyn Fn(&Compared<'_>) -> String>);

/// What differs between the runs (caps, intensity source and mean, duration, GPUs), in words.
fn differences(runs: &[Compared<'_>]) -> String {
    let facts: [Fact; 4] = [
        (
            "caps",
            Box::new(|r| caps_label(r.meter).unwrap_or("unknown".into())),
        ),
        (
            "intensity",
            Box::new(|r| {
                let src = r
                    .snap
                    .intensity
                    .as_ref()
                    .map_or("none", |i| i.source.kind.label());
                let mean = r
                    .snap
                    .mean_intensity
                    .map_or(String::new(), |m| format!(" {m:.0} g/kWh"));
                format!("{src}{mean}")
            }),
        ),
        ("GPUs", Box::new(|r| format!("×{}", r.snap.gpu_count))),
        ("duration", Box::new(|r| clock(r.snap.elapsed_s))),
    ];
    let (mut differ, mut same) = (Vec::new(), Vec::new());
    for (name, f) in &facts {
        let v: Vec<String> = runs.iter().map(f.as_ref()).collect();
        if v.windows(2).all(|w| w[0] == w[1]) {
            same.push(format!("{name} {}", v[0]));
        } else {
            differ.push(format!("{name} {}", v.join(" → ")));
        }
    }
    let mut out = String::new();
    if !differ.is_empty() {
        out += &format!("Differs: {}", differ.join(" · "));
    }
    if !same.is_empty() {
        if !out.is_empty() {
            out += ".  ";
        }
        out += &format!("Same: {}", same.join(" · "));
    }
    out
}

/// `report a.csv b.csv --png OUT.png`: the runs compared on one image.
pub fn write_compare(
    runs: &[Compared<'_>],
    table: &[(&str, Vec<String>)],
    th: &Theme,
    path: &Path,
    size: (u32, u32),
) -> Result<(), String> {
    render_compare(runs, table, th, path, size).map(|_| ())
}

/// [`write_compare`], returning where every text, legend and plot went: a header saying what
/// differs and the trade-off in words, three charts (cumulative carbon, power, accuracy against
/// carbon) each with its legend, and the side-by-side table.
pub fn render_compare(
    runs: &[Compared<'_>],
    table: &[(&str, Vec<String>)],
    th: &Theme,
    path: &Path,
    size: (u32, u32),
) -> Result<Layout, String> {
    let (root, cx) = canvas(path, size, th)?;
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let mut lines = vec![differences(runs)];
    if let Some(first) = runs.first() {
        for r in &runs[1..] {
            lines.push(format!(
                "{} against {}: {}",
                r.name,
                first.name,
                trade_off(first.snap, r.snap)
            ));
        }
    }
    let body = header(
        &root,
        &format!("carbontop comparison · {}", names.join(" vs ")),
        &lines,
        &cx,
    )?;
    let rows = table.len() as i32;
    let table_h = (24.0 + 27.0 * rows as f64) * cx.s;
    let (_, body_h) = body.dim_in_pixel();
    let (charts, bottom) = body.split_vertically(body_h as i32 - table_h as i32);
    let panels = charts.split_evenly((1, 3));
    draw_compare_time(&panels[0], runs, col::CO2E, &cx)?;
    draw_compare_time(&panels[1], runs, col::TOTAL, &cx)?;
    draw_compare_accuracy(&panels[2], runs, &cx)?;
    draw_compare_table(&bottom, table, runs.len(), &cx)?;
    root.present().map_err(err)?;
    Ok(Layout {
        size,
        items: cx.log.into_inner(),
    })
}

fn run_legend(runs: &[Compared<'_>], cx: &Ctx<'_>) -> Vec<Entry> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| Entry {
            name: r.name.clone(),
            colour: cx.run(i),
            patch: false,
        })
        .collect()
}

/// Cumulative gCO2e (`col::CO2E`) or IT power (`col::TOTAL`) over time, one line per run.
fn draw_compare_time(
    area: &Area<'_>,
    runs: &[Compared<'_>],
    column: usize,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let raw: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| history_of(r.meter).window(column, None))
        .collect();
    let (_, xmax) = range(raw.iter().flatten().map(|p| p.0), true);
    let unit = time_unit(xmax);
    let data: Vec<Vec<(f64, f64)>> = raw
        .iter()
        .map(|pts| pts.iter().map(|(t, v)| (t / unit.0, *v)).collect())
        .collect();
    let (_, ymax) = range(data.iter().flatten().map(|p| p.1), true);
    let carbon = column == col::CO2E;
    let spec = Spec {
        caption: if carbon {
            "Cumulative operational carbon".into()
        } else {
            "Power of the machine (IT)".into()
        },
        legend: run_legend(runs, cx),
        x: 0.0..xmax / unit.0,
        y: 0.0..ymax,
        x_desc: format!("time since start ({})", unit.1),
        y_desc: if carbon { "gCO2e" } else { "power (W)" }.into(),
        xfmt: &tick,
        yfmt: if carbon { &co2e_tick } else { &tick },
    };
    let mut ch = panel(area, spec, cx)?;
    let width = if carbon { 3.0 } else { 1.5 };
    for (i, pts) in data.iter().enumerate() {
        ch.draw_series(LineSeries::new(
            pts.iter().copied(),
            cx.run(i).stroke_width((width * cx.s).max(1.0) as u32),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Accuracy against cumulative gCO2e, one line per run.
fn draw_compare_accuracy(
    area: &Area<'_>,
    runs: &[Compared<'_>],
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let acc: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| history_of(r.meter).xy(col::CO2E, col::ACCURACY, None))
        .collect();
    let (_, ax1) = range(acc.iter().flatten().map(|p| p.0), true);
    let (_, ay1) = range(acc.iter().flatten().map(|p| p.1), true);
    let spec = Spec {
        caption: "Accuracy vs carbon".into(),
        legend: run_legend(runs, cx),
        x: 0.0..ax1,
        y: 0.0..ay1.max(1.0),
        x_desc: "cumulative operational gCO2e".into(),
        y_desc: "accuracy (%)".into(),
        xfmt: &co2e_tick,
        yfmt: &tick,
    };
    let mut ch = panel(area, spec, cx)?;
    if acc.iter().all(Vec::is_empty) {
        ch.plotting_area()
            .draw(&Text::new(
                "no accuracy in these recordings",
                (ax1 * 0.05, ay1.max(1.0) / 2.0),
                cx.label(),
            ))
            .map_err(err)?;
    }
    for (i, pts) in acc.iter().enumerate() {
        ch.draw_series(LineSeries::new(
            pts.iter().copied(),
            cx.run(i).stroke_width((3.0 * cx.s) as u32),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The table: one column per run, the header row in the runs' colours.
fn draw_compare_table(
    bottom: &Area<'_>,
    table: &[(&str, Vec<String>)],
    runs: usize,
    cx: &Ctx<'_>,
) -> Result<(), String> {
    let s = cx.s;
    let (w, _) = bottom.dim_in_pixel();
    let pad = (20.0 * s) as i32;
    let line_h = (27.0 * s) as i32;
    let key_w = (150.0 * s) as i32;
    let col_w = (w as i32 - key_w - 2 * pad) / runs.max(1) as i32;
    for (r, (k, vals)) in table.iter().enumerate() {
        let y = (12.0 * s) as i32 + r as i32 * line_h;
        let bold = r == 0;
        cx.put(
            bottom,
            k,
            (pad, y),
            &cx.font(17.0, bold, cx.pal.muted),
            key_w - 6,
        )?;
        for (i, v) in vals.iter().enumerate() {
            let c = if bold { cx.run(i) } else { cx.pal.text };
            let x = pad + key_w + i as i32 * col_w;
            cx.put(bottom, v, (x, y), &cx.font(17.0, bold, c), col_w - pad)?;
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
    let (root, cx) = canvas(path, size, th)?;
    let s = cx.s;
    let body = header(&root, title, &[], &cx)?;
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

/// One chart of [`write_steps`]: its caption, axis titles and step series (name, points), and
/// whether its y axis starts at zero (else it is fitted to the data and its title says where it
/// starts: [`step_y_axis`]).
pub struct StepPanel {
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub from_zero: bool,
}

/// A step chart's y range and title: an axis that does not start at zero says so in its title
/// ("…, axis from N"), so that a zoomed axis is never read as a swing from nothing.
pub fn step_y_axis(p: &StepPanel) -> (std::ops::Range<f64>, String) {
    let (lo, hi) = range(
        p.series.iter().flat_map(|s| s.1.iter().map(|q| q.1)),
        p.from_zero,
    );
    let desc = if lo == 0.0 {
        p.y_desc.clone()
    } else {
        format!("{}, axis from {}", p.y_desc, tick(&lo))
    };
    (lo..hi, desc)
}

/// Charts stacked under a header, each a set of step lines in the Okabe-Ito palette with its
/// legend above the plot (`simulate --png`: intensity and caps over time, per policy).
pub fn write_steps(
    panels: &[StepPanel],
    th: &Theme,
    title: &str,
    lines: &[String],
    path: &Path,
    size: (u32, u32),
) -> Result<Layout, String> {
    let (root, cx) = canvas(path, size, th)?;
    let body = header(&root, title, lines, &cx)?;
    let areas = body.split_evenly((panels.len().max(1), 1));
    let xmax = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.1.iter().map(|q| q.0)))
        .fold(0.0, f64::max)
        .max(1e-9);
    for (p, area) in panels.iter().zip(&areas) {
        let (y, y_desc) = step_y_axis(p);
        // The light theme's palette, colour-blind safe; another theme's own colours.
        let colour = |i: usize| {
            if th.name == "light" {
                [
                    OKABE_ITO[6],
                    OKABE_ITO[4],
                    OKABE_ITO[1],
                    OKABE_ITO[0],
                    OKABE_ITO[2],
                ][i % 5]
            } else {
                cx.run(i)
            }
        };
        let spec = Spec {
            caption: p.caption.clone(),
            legend: p
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| Entry {
                    name: s.0.clone(),
                    colour: colour(i),
                    patch: false,
                })
                .collect(),
            x: 0.0..xmax,
            y,
            x_desc: p.x_desc.clone(),
            y_desc,
            xfmt: &tick,
            yfmt: &tick,
        };
        let mut ch = panel(area, spec, &cx)?;
        for (i, (_, pts)) in p.series.iter().enumerate() {
            let w = if i == 0 { 3.0 } else { 2.0 };
            ch.draw_series(LineSeries::new(
                pts.iter().copied(),
                colour(i).stroke_width((w * cx.s).max(1.0) as u32),
            ))
            .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(Layout {
        size,
        items: cx.log.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_never_shows_a_directory_of_the_machine() {
        assert_eq!(
            no_paths("replay /home/ann/runs/r1/samples.csv"),
            "replay r1"
        );
        assert_eq!(
            no_paths("r1 · python /srv/x/train.py --lr 0.1 · zone FR"),
            "r1 · python train.py --lr 0.1 · zone FR"
        );
        assert_eq!(no_paths("run `~/t.sh`"), "run `t.sh`");
        assert_eq!(no_paths("a40x4.csv"), "a40x4.csv");
    }

    #[test]
    fn time_reads_in_round_units() {
        assert_eq!(time_unit(90.0).1, "s");
        assert_eq!(time_unit(347.0).1, "min");
        assert_eq!(time_unit(86_400.0).1, "h");
        assert_eq!(time_unit(7.0 * 86_400.0).1, "days");
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&0.5), "0.5");
    }
}
