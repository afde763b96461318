//! The screen: a pure function of the dashboard, the screen state and the theme (DESIGN.md §7).
//! Nothing here samples, accounts or touches the terminal; it only draws into a frame.

use crate::engine::Snapshot;
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh, fmt_power, fmt_share};
use crate::source::term::{Colour, Pen, StyledLine};
use crate::ui::model::{Dashboard, Mode, Target, col};
use crate::ui::state::{KEYS, Panel, UiState, window_label};
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Clear, Dataset, GraphType, Paragraph, Wrap};

/// Width of the energy & carbon panel beside the power chart.
const TOTALS_W: u16 = 36;
/// Below this body height the intensity and progress row folds away.
const TWO_ROWS_MIN_H: u16 = 16;
/// Below this width panels stack instead of sitting side by side.
const SIDE_BY_SIDE_MIN_W: u16 = 72;

/// `h:mm:ss` of a run-relative time.
pub fn clock(secs: f64) -> String {
    let t = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, live: &Dashboard, ui: &UiState) {
    let th = ui.theme();
    let d = ui.frozen.as_deref().unwrap_or(live);
    // Every figure of this frame, made once by the engine.
    let s = d.meter.snapshot();
    let s = &s;
    let area = f.area();
    f.render_widget(
        Block::new().style(Style::new().bg(th.background).fg(th.text)),
        area,
    );
    let [header, body, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, d, s, ui, th);
    draw_status(f, status, live, ui, th);

    if ui.zoom {
        draw_panel(f, body, ui.focus, d, s, ui, th);
    } else {
        let (main, out) = if ui.output_shown {
            let out_h = if body.height < 24 {
                body.height / 2
            } else {
                (body.height / 3).max(6)
            };
            let [m, o] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(out_h)]).areas(body);
            (m, Some(o))
        } else {
            (body, None)
        };
        let two_rows = main.height >= TWO_ROWS_MIN_H;
        let side = main.width >= SIDE_BY_SIDE_MIN_W;
        let rows: Vec<Rect> = if two_rows {
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
                .split(main)
                .to_vec()
        } else {
            vec![main]
        };
        if side {
            let [power, totals] = Layout::horizontal([
                Constraint::Min(0),
                Constraint::Length(TOTALS_W.max(main.width / 4)),
            ])
            .areas(rows[0]);
            draw_panel(f, power, Panel::Power, d, s, ui, th);
            draw_panel(f, totals, Panel::Totals, d, s, ui, th);
        } else {
            let [totals, power] = Layout::vertical([
                Constraint::Length(9.min(rows[0].height)),
                Constraint::Min(0),
            ])
            .areas(rows[0]);
            draw_panel(f, totals, Panel::Totals, d, s, ui, th);
            draw_panel(f, power, Panel::Power, d, s, ui, th);
        }
        if two_rows {
            let [gi, pr] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(rows[1]);
            draw_panel(f, gi, Panel::Intensity, d, s, ui, th);
            draw_panel(f, pr, Panel::Progress, d, s, ui, th);
        }
        if let Some(o) = out {
            draw_panel(f, o, Panel::Output, d, s, ui, th);
        }
    }
    if ui.help {
        draw_help(f, area, ui, th);
    }
}

fn panel_block<'a>(title: Line<'a>, focused: bool, th: &Theme) -> Block<'a> {
    let border = if focused { th.focus } else { th.border };
    Block::bordered()
        .border_style(Style::new().fg(border))
        .title(title)
        .style(Style::new().bg(th.background).fg(th.text))
}

fn title<'a>(text: impl Into<String>, extra: Option<String>, th: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(
        format!(" {} ", text.into()),
        Style::new().fg(th.title).add_modifier(Modifier::BOLD),
    )];
    if let Some(e) = extra {
        spans.push(Span::styled(format!("{e} "), Style::new().fg(th.text)));
    }
    Line::from(spans)
}

/// What every panel draws from: the screen's state and the engine's figures.
type View<'a> = (&'a Dashboard, &'a Snapshot);

fn draw_panel(
    f: &mut Frame,
    area: Rect,
    p: Panel,
    d: &Dashboard,
    s: &Snapshot,
    ui: &UiState,
    th: &Theme,
) {
    if area.height < 3 || area.width < 10 {
        return;
    }
    let focused = ui.focus == p;
    match p {
        Panel::Power => draw_power(f, area, (d, s), ui, th, focused),
        Panel::Totals => draw_totals(f, area, (d, s), th, focused),
        Panel::Intensity => draw_intensity(f, area, (d, s), ui, th, focused),
        Panel::Progress => draw_progress(f, area, (d, s), ui, th, focused),
        Panel::Output => draw_output(f, area, d, ui, th, focused),
    }
}

fn draw_header(f: &mut Frame, area: Rect, d: &Dashboard, s: &Snapshot, ui: &UiState, th: &Theme) {
    let bold = Style::new().fg(th.title).add_modifier(Modifier::BOLD);
    let muted = Style::new().fg(th.muted);
    let state = match &d.info.mode {
        Mode::Live if d.ended.is_some() => Span::styled("■ ended", Style::new().fg(th.muted)),
        Mode::Live => Span::styled("● live", Style::new().fg(th.good)),
        Mode::Replay { ended: true, .. } => {
            Span::styled("■ end of recording", Style::new().fg(th.muted))
        }
        Mode::Replay { speed, playing, .. } => {
            let sp = speed.map_or("max".to_owned(), |x| format!("{x}×"));
            if *playing {
                Span::styled(format!("▶ replay {sp}"), Style::new().fg(th.good))
            } else {
                Span::styled(format!("⏸ replay {sp}"), Style::new().fg(th.warning))
            }
        }
    };
    let mut l1 = vec![
        Span::styled(" carbontop ", bold),
        Span::styled(d.info.title.clone(), Style::new().fg(th.text)),
        Span::styled("  elapsed ", muted),
        Span::styled(clock(d.elapsed_s()), Style::new().fg(th.text)),
        Span::raw("  "),
        state,
    ];
    if ui.frozen.is_some() {
        l1.push(Span::styled(
            "  ⏸ view paused (p)",
            Style::new().fg(th.warning).add_modifier(Modifier::BOLD),
        ));
    }
    let mut l2 = vec![
        Span::styled(" zone ", muted),
        Span::raw(d.info.zone.clone()),
    ];
    match &s.intensity {
        Some(i) => {
            l2.push(Span::styled("  grid ", muted));
            l2.push(Span::styled(
                format!("{:.0} g/kWh", i.g_per_kwh),
                Style::new().fg(th.intensity),
            ));
            // A held value (the provider failing) stands out.
            let src_style = if i.stale() {
                Style::new().fg(th.warning)
            } else {
                muted
            };
            l2.push(Span::styled(
                format!(" ({}, {})", i.source, clock(i.age_s)),
                src_style,
            ));
            if let Some(detail) = d.meter.grid.as_ref().and_then(|g| g.detail.as_ref()) {
                l2.push(Span::styled(format!(" {detail}"), muted));
            }
        }
        None if s.ticks == 0 => {
            l2.push(Span::styled("  waiting for the first sample", muted));
        }
        None => l2.push(Span::styled(
            "  grid intensity unknown",
            Style::new().fg(th.warning),
        )),
    }
    l2.push(Span::styled("  PUE ", muted));
    l2.push(Span::raw(format!("{:.2}", s.pue)));
    l2.push(Span::styled("  caps ", muted));
    l2.push(Span::raw(d.info.cap_mode.clone()));
    f.render_widget(
        Paragraph::new(vec![Line::from(l1), Line::from(l2)])
            .style(Style::new().bg(th.background).fg(th.text)),
        area,
    );
}

fn draw_status(f: &mut Frame, area: Rect, d: &Dashboard, ui: &UiState, th: &Theme) {
    let (text, style) = if ui.confirm_quit {
        (
            "the command is still running: q again stops it (SIGTERM) and quits; any other key stays"
                .to_owned(),
            Style::new().fg(th.warning).add_modifier(Modifier::BOLD),
        )
    } else if let Some(fl) = &ui.flash {
        (fl.clone(), Style::new().fg(th.text))
    } else if let Some(e) = &d.ended {
        (e.clone(), Style::new().fg(th.text))
    } else if let Some((w, at)) = &d.warning {
        (
            format!("⚠ {w} (at {})", clock(*at)),
            Style::new().fg(th.warning),
        )
    } else if !d.notices.is_empty() {
        (
            format!("ⓘ {}", d.notices.join(" · ")),
            Style::new().fg(th.muted),
        )
    } else {
        (String::new(), Style::new())
    };
    let hint = " ? keys  q quit ";
    let [left, right] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(hint.chars().count() as u16),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(format!(" {text}"), style)))
            .style(Style::new().bg(th.background)),
        left,
    );
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(
            hint,
            Style::new().fg(th.background).bg(th.muted),
        ))),
        right,
    );
}

/// X bounds of the chart window ending at the last tick.
fn x_bounds(d: &Dashboard, window: Option<f64>) -> [f64; 2] {
    let h = d.meter.history.as_ref();
    let last = h.and_then(|h| h.last_t()).unwrap_or(0.0);
    let first = h.and_then(|h| h.first_t()).unwrap_or(0.0);
    let lo = window.map_or(first, |w| (last - w).max(first));
    [lo, last.max(lo + 1.0)]
}

/// A column of the history over the window (empty where no history is kept).
fn series(d: &Dashboard, c: usize, window: Option<f64>) -> Vec<(f64, f64)> {
    d.meter
        .history
        .as_ref()
        .map_or_else(Vec::new, |h| h.window(c, window))
}

/// The x axis of a chart over run time.
fn time_axis<'a>(b: [f64; 2], th: &Theme) -> Axis<'a> {
    Axis::default()
        .bounds(b)
        .labels(time_labels(b, th))
        .style(Style::new().fg(th.border))
}

fn time_labels<'a>(b: [f64; 2], th: &Theme) -> Vec<Line<'a>> {
    let s = Style::new().fg(th.muted);
    vec![
        Line::styled(clock(b[0]), s),
        Line::styled(clock((b[0] + b[1]) / 2.0), s),
        Line::styled(clock(b[1]), s),
    ]
}

/// A y range from 0 (or the data's floor) to a rounded-up top.
fn y_bounds<'a>(
    sets: &[&[(f64, f64)]],
    from_zero: bool,
    fmt: impl Fn(f64) -> String,
    th: &Theme,
) -> ([f64; 2], Vec<Line<'a>>) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in sets {
        for &(_, y) in *s {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    if !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let pad = ((hi - lo).abs() * 0.1).max(hi.abs() * 0.05).max(1e-9);
    let top = hi + pad;
    let bottom = if from_zero { lo } else { lo - pad };
    let st = Style::new().fg(th.muted);
    (
        [bottom, top],
        vec![
            Line::styled(fmt(bottom), st),
            Line::styled(fmt((bottom + top) / 2.0), st),
            Line::styled(fmt(top), st),
        ],
    )
}

fn watts_label(w: f64) -> String {
    if w.abs() >= 1000.0 {
        format!("{:.1}k", w / 1000.0)
    } else if w.abs() >= 10.0 {
        format!("{w:.0}")
    } else {
        format!("{w:.1}")
    }
}

fn dataset<'a>(name: String, data: &'a [(f64, f64)], color: Color) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(data)
}

fn draw_power(f: &mut Frame, area: Rect, (d, s): View, ui: &UiState, th: &Theme, focus: bool) {
    let w = ui.window();
    let now = &s.now;
    // Series: total, each GPU (or the GPUs summed, for a job of nodes), CPU, memory, network.
    let mut series: Vec<(String, usize, Color)> = vec![(
        format!("total {}", fmt_power(now.total_w)),
        col::TOTAL,
        th.total,
    )];
    for (i, _) in d.info.gpus.iter().enumerate() {
        let g = now.gpus.get(i);
        let p = g.and_then(|g| g.power_w);
        // NVML's number, as nvidia-smi, samples.csv and /metrics show it.
        let n = g.map_or(i as u32, |g| g.index);
        series.push((
            format!("GPU{n} {}", fmt_power(p)),
            col::GPU0 + i,
            th.gpu_color(i),
        ));
    }
    if d.info.gpus.is_empty() && now.gpu_w.is_some() {
        series.push((
            format!("GPU {}", fmt_power(now.gpu_w)),
            col::GPU,
            th.gpu_color(0),
        ));
    }
    let cpu_name = if d.info.cpu_estimate {
        "CPU est"
    } else {
        "CPU"
    };
    series.push((
        format!("{cpu_name} {}", fmt_power(now.cpu_w)),
        col::CPU,
        th.cpu,
    ));
    series.push((format!("mem {}", fmt_power(now.mem_w)), col::MEM, th.memory));
    series.push((
        format!("net {}", fmt_power(now.net_w)),
        col::NET,
        th.network,
    ));
    let data: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, c, _)| self::series(d, *c, w))
        .collect();

    let block = panel_block(
        title(
            "Power",
            Some(format!("IT, before PUE · {}", window_label(w))),
            th,
        ),
        focus,
        th,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    // A legend line with the current values, then the chart.
    let legend: Vec<Span> = series
        .iter()
        .flat_map(|(n, _, c)| {
            [
                Span::styled("━\u{a0}", Style::new().fg(*c)),
                // No-break spaces keep "GPU0 215 W" on one line when the legend wraps.
                Span::styled(
                    format!("{}  ", n.replace(' ', "\u{a0}")),
                    Style::new().fg(th.text),
                ),
            ]
        })
        .collect();
    let legend_h = if inner.width > 0 {
        let len: usize = series.iter().map(|(n, _, _)| n.chars().count() + 4).sum();
        (len as u16).div_ceil(inner.width).clamp(1, 3)
    } else {
        1
    };
    let [lg, ch] =
        Layout::vertical([Constraint::Length(legend_h), Constraint::Min(0)]).areas(inner);
    f.render_widget(
        Paragraph::new(Line::from(legend)).wrap(Wrap { trim: true }),
        lg,
    );
    if s.ticks == 0 {
        f.render_widget(
            Paragraph::new("waiting for the first sample…").style(Style::new().fg(th.muted)),
            ch,
        );
        return;
    }
    let refs: Vec<&[(f64, f64)]> = data.iter().map(Vec::as_slice).collect();
    let xb = x_bounds(d, w);
    let (yb, ylabels) = y_bounds(&refs, true, watts_label, th);
    // Total last, so it draws on top.
    let mut sets: Vec<Dataset> = series
        .iter()
        .zip(&data)
        .skip(1)
        .map(|((_, _, c), pts)| dataset(String::new(), pts, *c))
        .collect();
    sets.push(dataset(String::new(), &data[0], th.total));
    let chart = Chart::new(sets)
        .style(Style::new().bg(th.background))
        .x_axis(time_axis(xb, th))
        .y_axis(
            Axis::default()
                .title(Span::styled("W", Style::new().fg(th.muted)))
                .bounds(yb)
                .labels(ylabels)
                .style(Style::new().fg(th.border)),
        );
    f.render_widget(chart, ch);
}

fn draw_totals(f: &mut Frame, area: Rect, (d, s): View, th: &Theme, focus: bool) {
    let block = panel_block(title("Energy & carbon", None, th), focus, th);
    let mut lines = headline_rows(s, th);
    // What the caps do comes next, while they do something: the rows a user acting on them
    // (or watching the governor) looks for, before a short panel cuts the rest.
    lines.extend(cap_effect_row(s, th));
    if let Some(n) = &d.cap_note {
        lines.push(kv_row("caps", n.clone(), th.text, th));
    }
    for (k, v) in &d.cap_limits {
        lines.push(kv_row(k, v.clone(), th.text, th));
    }
    lines.extend(this_run_row(s, th));
    lines.extend(to_go_row(s, th));
    lines.extend(embodied_rows(s, th));
    lines.extend(grid_rows((d, s), th));
    lines.extend(equivalent_rows((d, s), th));
    lines.extend(comms_row(s, th));
    lines.extend(traffic_rows(s, th));
    lines.push(mean_row(s, th));
    if let Some(p) = &d.info.samples_path {
        lines.push(Line::styled(format!("→ {p}"), Style::new().fg(th.muted)));
    }
    // Per GPU, when there is room: power, utilisation, memory, cap.
    let room = area.height.saturating_sub(2) as usize;
    push_gpu_table(&mut lines, s, room, th);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// One row of the energy & carbon panel: a muted key, a bold value in its colour.
fn kv_row(k: &str, v: String, c: Color, th: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{k:<9}"), Style::new().fg(th.muted)),
        Span::styled(v, Style::new().fg(c).add_modifier(Modifier::BOLD)),
    ])
}

/// Energy, carbon and the present power and carbon rate.
fn headline_rows(s: &Snapshot, th: &Theme) -> Vec<Line<'static>> {
    vec![
        kv_row("energy", fmt_energy_kwh(s.energy_kwh), th.total, th),
        kv_row(
            "carbon",
            format!("{} CO2e", fmt_co2e_g(s.co2e_g)),
            th.carbon,
            th,
        ),
        kv_row(
            "now",
            format!(
                "{} · {}/h",
                fmt_power(s.now.facility_w),
                s.now.co2e_g_per_h.map_or("—".into(), fmt_co2e_g)
            ),
            th.text,
            th,
        ),
    ]
}

/// The command's process tree on a shared host: its share of the machine's CPU, GPUs and
/// memory, beside the machine's figures.
fn this_run_row(s: &Snapshot, th: &Theme) -> Option<Line<'static>> {
    let parts: Vec<String> = [
        ("CPU", s.now.process_cpu_w, s.now.cpu_w),
        ("GPU", s.now.process_gpu_w, s.now.gpu_w),
        ("mem", s.now.process_mem_w, s.now.mem_w),
    ]
    .into_iter()
    .filter_map(|(what, p, m)| {
        Some(format!(
            "{what} {} of {}",
            fmt_power(Some(p?)),
            fmt_power(Some(m?))
        ))
    })
    .collect();
    (!parts.is_empty()).then(|| kv_row("this run", parts.join(" · "), th.cpu, th))
}

/// Time, energy and carbon to the target, at the recent rate and the present power (forecast
/// intensity where there is one).
fn to_go_row(s: &Snapshot, th: &Theme) -> Option<Line<'static>> {
    let t = s.to_go?;
    let what = match s.target {
        Some(Target::Epochs(n)) => format!("→ epoch {n}"),
        Some(Target::Accuracy(a)) => format!("→ {a}%"),
        None => String::new(),
    };
    let text = if t.secs == 0.0 {
        format!("reached {what}")
    } else {
        format!(
            "{} · {} · {}",
            clock(t.secs),
            fmt_energy_kwh(t.energy_kwh),
            fmt_co2e_g(t.co2e_g)
        )
    };
    Some(kv_row("to go", text, th.carbon, th))
}

/// SCI M: the hardware's manufacturing emissions, amortised over the run, then the total
/// (operational + embodied). Sources disagree on TE by 2× and more: each with its band.
fn embodied_rows(s: &Snapshot, th: &Theme) -> Vec<Line<'static>> {
    let Some(e) = s.embodied else {
        return Vec::new();
    };
    let with_band = |b: crate::engine::meter::Band| {
        let band = b.range().map_or(String::new(), |(lo, hi)| {
            format!(" ({}–{})", fmt_co2e_g(lo), fmt_co2e_g(hi))
        });
        format!("{}{band}", fmt_co2e_g(b.g))
    };
    vec![
        kv_row("embodied", with_band(e), th.muted, th),
        kv_row("total", with_band(s.total_band), th.carbon, th),
    ]
}

/// With a grid source: the carbon forecast for the window ahead and the greener window.
fn grid_rows((d, s): View, th: &Theme) -> Vec<Line<'static>> {
    let Some(g) = &d.meter.grid else {
        return Vec::new();
    };
    let win = fmt_window(g.window);
    let mut lines = Vec::new();
    if let Some(fc) = s.forecast {
        let basis = if fc.covered >= 0.999 {
            "forecast".to_owned()
        } else {
            format!("{:.0}% forecast", fc.covered * 100.0)
        };
        lines.push(kv_row(
            &format!("next {win}"),
            format!("{} ({basis})", fmt_co2e_g(fc.co2e_g)),
            th.carbon,
            th,
        ));
    }
    lines.push(match &s.greener {
        // The window has the same length as the row above.
        Some(w) => kv_row(
            "greener",
            format!(
                "{}Z {:.0} g/kWh −{:.0}%",
                w.start.format("%a %H:%M"),
                w.mean_g,
                w.saving_pct()
            ),
            th.good,
            th,
        ),
        None if g.slots.len() > 1 => kv_row(
            "greener",
            format!("none: now is the greenest {win} ahead"),
            th.text,
            th,
        ),
        None => kv_row("greener", "no forecast".into(), th.muted, th),
    });
    lines
}

/// The effect of the last power-cap change.
/// P: GPU power, T: throughput (steps/s), E/step: energy per step, after vs before.
fn cap_effect_row(s: &Snapshot, th: &Theme) -> Option<Line<'static>> {
    let e = s.cap_effect.as_ref()?;
    let w = |v: Option<f64>| v.map_or("—".to_owned(), |x| format!("{x:.0}"));
    let pct = |v: Option<f64>| v.map_or("—".to_owned(), |x| format!("{:+.0}%", x * 100.0));
    let text = match e.deltas() {
        // The caps themselves are in the header and the GPU table.
        Some(dl) => format!(
            "P {} T {} E/step {}",
            pct(Some(dl.power)),
            pct(dl.speed),
            pct(dl.energy_per_step)
        ),
        None => format!("{}→{} W: measuring…", w(e.old_w), w(e.new_w)),
    };
    Some(kv_row("Δ cap", text, th.text, th))
}

/// Everyday equivalents, each component's share of the energy, and the network traffic.
fn equivalent_rows((d, s): View, th: &Theme) -> [Line<'static>; 4] {
    [
        kv_row(
            "≈ trees",
            format!("{} tree-days", fmt_sig(s.equivalents.tree_days)),
            th.good,
            th,
        ),
        kv_row(
            "≈ car",
            format!("{} km driven", fmt_sig(s.equivalents.car_km)),
            th.text,
            th,
        ),
        shares_line((d, s), th),
        kv_row(
            "network",
            format!(
                "↓{} ↑{}",
                fmt_bytes(s.net_rx_bytes),
                fmt_bytes(s.net_tx_bytes)
            ),
            th.text,
            th,
        ),
    ]
}

/// GPU, CPU, memory and network shares of the IT energy, each in its component's colour.
fn shares_line((d, s): View, th: &Theme) -> Line<'static> {
    let it = &s.it;
    Line::from(vec![
        Span::styled(
            if it.gpu_kwh.is_some() {
                format!("GPU {} ", fmt_share(it.gpu_share))
            } else {
                String::new()
            },
            Style::new().fg(th.gpu_color(0)),
        ),
        Span::styled(
            format!(
                "CPU{} {} ",
                if d.info.cpu_estimate { "~" } else { "" },
                fmt_share(it.cpu_share)
            ),
            Style::new().fg(th.cpu),
        ),
        Span::styled(
            format!("mem {} ", fmt_share(it.mem_share)),
            Style::new().fg(th.memory),
        ),
        Span::styled(
            format!("net {}", fmt_share(it.net_share)),
            Style::new().fg(th.network),
        ),
    ])
}

/// `run -- CMD`: the command's own traffic by scope, and the internet path's footprint of its
/// public traffic (other people's equipment: in the total, not in this machine's energy).
fn traffic_rows(s: &Snapshot, th: &Theme) -> Vec<Line<'static>> {
    let Some(c) = s.cmd_net else {
        return Vec::new();
    };
    let mut rows = vec![kv_row(
        "traffic",
        if c.rdma.total() > 0 {
            format!(
                "cluster {} + RDMA {} · internet {}",
                fmt_bytes(c.cluster.total()),
                fmt_bytes(c.rdma.total()),
                fmt_bytes(c.internet.total())
            )
        } else {
            format!(
                "cluster {} · internet {}",
                fmt_bytes(c.cluster.total()),
                fmt_bytes(c.internet.total())
            )
        },
        th.network,
        th,
    )];
    if c.internet.total() > 0 {
        let band = c.internet_co2e.range().map_or(String::new(), |(lo, hi)| {
            format!(" ({}–{})", fmt_co2e_g(lo), fmt_co2e_g(hi))
        });
        rows.push(kv_row(
            "internet",
            format!("{} CO2e path{band}", fmt_co2e_g(c.internet_co2e.g)),
            th.network,
            th,
        ));
    }
    rows
}

/// Communication: the machine's network carbon at both ends of the port model's range.
fn comms_row(s: &Snapshot, th: &Theme) -> Option<Line<'static>> {
    let (lo, hi) = s.comms.and_then(|c| c.range())?;
    // RDMA (InfiniBand/RoCE) port traffic, which the interfaces' counters do not see.
    let rdma = s.rdma.map_or(String::new(), |r| {
        format!(" · RDMA {}", fmt_bytes(r.bytes.total()))
    });
    Some(kv_row(
        "comms",
        format!("{}–{} CO2e{rdma}", fmt_co2e_g(lo), fmt_co2e_g(hi)),
        th.network,
        th,
    ))
}

/// The energy-weighted mean intensity and the PUE.
fn mean_row(s: &Snapshot, th: &Theme) -> Line<'static> {
    kv_row(
        "mean",
        s.mean_intensity.map_or("—".into(), |i| {
            format!("{i:.0} gCO2e/kWh · PUE {:.2}", s.pue)
        }),
        th.text,
        th,
    )
}

/// Per GPU, when `room` (the panel's inner height) leaves space below `lines`: power,
/// utilisation, memory, cap.
fn push_gpu_table(lines: &mut Vec<Line<'static>>, s: &Snapshot, room: usize, th: &Theme) {
    if s.now.gpus.is_empty() || room <= lines.len() + 1 {
        return;
    }
    for d in &s.counter_divergence {
        if let Some(rel) = d.now
            && room > lines.len() + 3
        {
            for l in crate::report::summary::counter_flag(d.index, rel) {
                lines.push(Line::styled(l, Style::new().fg(th.warning)));
            }
        }
    }
    lines.push(Line::styled(
        "GPU  power   util  mem     cap",
        Style::new().fg(th.muted),
    ));
    for (i, g) in s.now.gpus.iter().enumerate() {
        if lines.len() >= room {
            break;
        }
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("—".to_owned(), |x| format!("{x:.0}{unit}"));
        lines.push(Line::from(vec![
            Span::styled(format!("{:<4} ", g.index), Style::new().fg(th.gpu_color(i))),
            Span::raw(format!(
                "{:<7} {:<5} {:<7} {}",
                opt(g.power_w, " W"),
                opt(g.util_pct, "%"),
                opt(g.mem_used_mib.map(|m| m / 1024.0), " G"),
                opt(g.cap_w, " W"),
            )),
        ]));
        if let Some(m) = &g.mig
            && room > lines.len()
        {
            lines.push(Line::styled(
                format!("     {}", crate::engine::mig::short_label(m)),
                Style::new().fg(th.muted),
            ));
        }
    }
}

/// "1 h", "30 min", "2.5 h".
fn fmt_window(w: chrono::TimeDelta) -> String {
    let m = w.num_minutes();
    if m < 60 {
        format!("{m} min")
    } else if m % 60 == 0 {
        format!("{} h", m / 60)
    } else {
        format!("{:.1} h", m as f64 / 60.0)
    }
}

pub use crate::report::summary::fmt_sig;

pub use crate::report::summary::fmt_bytes;

fn draw_intensity(f: &mut Frame, area: Rect, (d, s): View, ui: &UiState, th: &Theme, focus: bool) {
    let w = ui.window();
    let now = s
        .intensity
        .as_ref()
        .map_or("—".into(), |i| format!("{:.0} g/kWh", i.g_per_kwh));
    let block = panel_block(title("Grid intensity", Some(now), th), focus, th);
    let data = series(d, col::INTENSITY, w);
    if data.is_empty() {
        f.render_widget(
            Paragraph::new("no intensity yet")
                .style(Style::new().fg(th.muted))
                .block(block),
            area,
        );
        return;
    }
    let xb = x_bounds(d, w);
    // Not from zero: what matters is how the grid moves.
    let (yb, yl) = y_bounds(&[&data], false, |v| format!("{v:.0}"), th);
    let chart = Chart::new(vec![dataset(String::new(), &data, th.intensity)])
        .block(block)
        .x_axis(time_axis(xb, th))
        .y_axis(
            Axis::default()
                .bounds(yb)
                .labels(yl)
                .style(Style::new().fg(th.border)),
        );
    f.render_widget(chart, area);
}

fn draw_progress(f: &mut Frame, area: Rect, (d, s): View, ui: &UiState, th: &Theme, focus: bool) {
    let w = ui.window();
    let p = d.last().map(|t| t.progress.clone()).unwrap_or_default();
    let mut extra = Vec::new();
    if let Some(a) = p.accuracy {
        extra.push(format!("acc {a:.2}%"));
    } else if let Some(l) = p.loss {
        extra.push(format!("loss {l:.4}"));
    }
    if let Some(pp) = s.per_point {
        extra.push(format!("{} CO2e/pt", fmt_co2e_g(pp.co2e_g)));
    } else if let Some(g) = s.per_loss_hundredth {
        extra.push(format!("{} CO2e per 0.01 loss", fmt_co2e_g(g)));
    }
    if let Some(m) = &s.per_metric {
        extra.push(format!(
            "{} +{:.3}: {} CO2e per {}",
            m.name,
            m.gained,
            fmt_co2e_g(m.co2e_g),
            m.unit
        ));
    }
    if let Some(e) = p.epoch {
        extra.push(format!("epoch {e}"));
    }
    if let Some(pp) = s.per_point
        && area.width > 80
    {
        extra.push(format!(
            "{}/pt over +{:.1} pt",
            fmt_energy_kwh(pp.energy_kwh),
            pp.gained
        ));
    }
    let block = panel_block(
        title("Progress vs carbon", Some(extra.join(" · ")), th),
        focus,
        th,
    );
    let (ycol, yname, color) = if p.accuracy.is_some() || s.first_accuracy.is_some() {
        (col::ACCURACY, "%", th.accuracy)
    } else if p.loss.is_some() {
        (col::LOSS, "loss", th.loss)
    } else {
        f.render_widget(
            Paragraph::new(
                "no progress seen yet: accuracy, loss and epoch are read from the command's \
                 output (Keras, Hugging Face, Lightning, PyTorch examples, timm, key=value, JSON)",
            )
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(th.muted))
            .block(block),
            area,
        );
        return;
    };
    let data = d
        .meter
        .history
        .as_ref()
        .map_or_else(Vec::new, |h| h.xy(col::CO2E, ycol, w));
    if data.is_empty() {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    }
    let (x0, x1) = (data[0].0, data[data.len() - 1].0);
    let xb = [x0, if x1 > x0 { x1 } else { x0 + 1e-6 }];
    let st = Style::new().fg(th.muted);
    let xl = vec![
        Line::styled(fmt_co2e_g(xb[0]), st),
        Line::styled(fmt_co2e_g(xb[1]), st),
    ];
    // With room, the milestone table beside the chart: each whole point first reached, its
    // cumulative kWh and gCO2e, and what that one point cost (DESIGN.md §5).
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (chart_area, table_area) =
        if ycol == col::ACCURACY && inner.width >= 90 && s.milestones.len() > 1 {
            let [a, b] =
                Layout::horizontal([Constraint::Min(40), Constraint::Length(44)]).areas(inner);
            (a, Some(b))
        } else {
            (inner, None)
        };
    if let Some(ta) = table_area {
        draw_milestones(f, ta, s, th);
    }
    let (yb, yl) = y_bounds(&[&data], false, |v| format!("{v:.1}"), th);
    let chart = Chart::new(vec![dataset(String::new(), &data, color)])
        .x_axis(
            Axis::default()
                .title(Span::styled("CO2e", st))
                .bounds(xb)
                .labels(xl)
                .style(Style::new().fg(th.border)),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled(yname, st))
                .bounds(yb)
                .labels(yl)
                .style(Style::new().fg(th.border)),
        );
    f.render_widget(chart, chart_area);
}

/// The milestone table: the latest points that fit, newest last, and how the last point's
/// cost compares with the first's (diminishing returns made visible).
fn draw_milestones(f: &mut Frame, area: Rect, s: &Snapshot, th: &Theme) {
    let m = Style::new().fg(th.muted);
    let mut lines = vec![Line::styled("  pt  at       kWh      gCO2e    this pt", m)];
    let ms = &s.milestones;
    let room = (area.height as usize).saturating_sub(3).max(1);
    let from = ms.len().saturating_sub(room).max(1);
    for b in &ms[from.min(ms.len())..] {
        lines.push(Line::raw(format!(
            "  {:<3} {:<7}  {:<7}  {:<7}  {}",
            b.point,
            clock(b.elapsed_s),
            fmt_sig(b.energy_kwh.0),
            fmt_sig(b.co2e_g.0),
            fmt_co2e_g(b.cost_g)
        )));
    }
    if let Some(l) = s.last_point
        && let Some(x) = l.vs_first
    {
        lines.push(Line::styled(
            format!(" point {} cost {x:.1}× the first", l.point),
            Style::new().fg(th.carbon),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_output(f: &mut Frame, area: Rect, d: &Dashboard, ui: &UiState, th: &Theme, focus: bool) {
    let n = d.output_len();
    let rows = area.height.saturating_sub(2) as usize;
    let scroll = ui.output_scroll.min(n.saturating_sub(rows));
    let end = n - scroll;
    let start = end.saturating_sub(rows);
    let mut extra = format!("{n} lines");
    if d.output_dropped > 0 {
        extra.push_str(&format!(", {} older in output.log", d.output_dropped));
    }
    if scroll > 0 {
        extra.push_str(&format!(", scrolled up {scroll}"));
    }
    let block = panel_block(title("Output", Some(extra), th), focus, th);
    let lines: Vec<Line> = d
        .output_rows()
        .skip(start)
        .take(end - start)
        .map(output_line)
        .collect();
    let text = if lines.is_empty() {
        vec![Line::styled("(no output yet)", Style::new().fg(th.muted))]
    } else {
        lines
    };
    f.render_widget(Paragraph::new(text).block(block), area);
}

/// A line of the command's output in the colours it asked for (SGR escapes).
fn output_line(l: &StyledLine) -> Line<'_> {
    Line::from(
        l.runs()
            .map(|(text, pen)| Span::styled(text, pen_style(pen)))
            .collect::<Vec<_>>(),
    )
}

fn pen_style(p: Pen) -> Style {
    let colour = |c: Colour| match c {
        Colour::Indexed(i) => match i {
            0 => Color::Black,
            1 => Color::Red,
            2 => Color::Green,
            3 => Color::Yellow,
            4 => Color::Blue,
            5 => Color::Magenta,
            6 => Color::Cyan,
            7 => Color::Gray,
            8 => Color::DarkGray,
            9 => Color::LightRed,
            10 => Color::LightGreen,
            11 => Color::LightYellow,
            12 => Color::LightBlue,
            13 => Color::LightMagenta,
            14 => Color::LightCyan,
            15 => Color::White,
            i => Color::Indexed(i),
        },
        Colour::Rgb(r, g, b) => Color::Rgb(r, g, b),
    };
    let mut s = Style::new();
    if let Some(c) = p.fg {
        s = s.fg(colour(c));
    }
    if let Some(c) = p.bg {
        s = s.bg(colour(c));
    }
    for (on, m) in [
        (p.bold, Modifier::BOLD),
        (p.dim, Modifier::DIM),
        (p.italic, Modifier::ITALIC),
        (p.underline, Modifier::UNDERLINED),
        (p.reverse, Modifier::REVERSED),
    ] {
        if on {
            s = s.add_modifier(m);
        }
    }
    s
}

fn draw_help(f: &mut Frame, area: Rect, ui: &UiState, th: &Theme) {
    let keys: Vec<_> = KEYS.iter().filter(|k| ui.replay || !k.2).collect();
    let h = (keys.len() as u16 + 4).min(area.height);
    let w = 64.min(area.width);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(k, what, _)| {
            Line::from(vec![
                Span::styled(format!(" {k:<16}"), Style::new().fg(th.focus)),
                Span::styled(*what, Style::new().fg(th.text)),
            ])
        })
        .collect();
    lines.push(Line::styled(
        " numbers: DESIGN.md §5 formulas; constants in --help",
        Style::new().fg(th.muted),
    ));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(panel_block(title("Keys", None, th), true, th))
            .alignment(Alignment::Left),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_figures() {
        assert_eq!(fmt_sig(0.000_289_4), "0.000289");
        assert_eq!(fmt_sig(1.234), "1.23");
        assert_eq!(fmt_sig(456.7), "457");
        assert_eq!(fmt_sig(0.0), "0");
        assert_eq!(clock(3725.4), "1:02:05");
    }
}
