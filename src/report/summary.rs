//! Human-readable figures: the per-tick status line and the end-of-run summary.

use crate::engine::meter::ProcessPart;
use crate::engine::{Snapshot, Tick};
use crate::units::{Carbon, Energy, Power};
use std::fmt::Write as _;

/// Energy with a unit that keeps 3–4 significant figures.
pub fn fmt_energy_kwh(kwh: impl Energy) -> String {
    let kwh = kwh.kwh();
    if kwh >= 1.0 {
        format!("{kwh:.3} kWh")
    } else if kwh >= 1e-3 {
        format!("{:.2} Wh", kwh * 1e3)
    } else {
        format!("{:.2} mWh", kwh * 1e6)
    }
}

/// Bytes with a decimal unit (kB, MB, GB: 10^3, 10^6, 10^9).
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// Mass of CO2e with a readable unit.
/// `1.2 g CO2e (tag, 1.1 g–2.3 g)`: a figure with the published range beside it (DESIGN.md
/// §5: where sources disagree by 2× and more), or without one where there is none.
pub fn fmt_co2e_band<C: Carbon>(g: C, band: Option<(C, C)>, tag: &str) -> String {
    let range = band.and_then(|(lo, hi)| fmt_range(fmt_co2e_g(lo), fmt_co2e_g(hi)));
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

/// `lo–hi`, unless both ends read the same at the precision shown (a band too narrow to see).
fn fmt_range(lo: String, hi: String) -> Option<String> {
    (lo != hi).then(|| format!("{lo}–{hi}"))
}

pub fn fmt_co2e_g(g: impl Carbon) -> String {
    let g = g.grams();
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

/// A share as a whole percent ("64%"), "—" when unknown.
pub fn fmt_share(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{:.0}%", x * 100.0))
}

/// Three significant figures, never scientific notation (0.000289, 1.23, 456).
pub fn fmt_sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).clamp(0, 9) as usize;
    format!("{x:.digits$}")
}

pub fn fmt_power(w: Option<impl Power>) -> String {
    match w.map(Power::watts) {
        Some(w) if w >= 1000.0 => format!("{:.2} kW", w / 1000.0),
        Some(w) => format!("{w:.1} W"),
        None => "—".into(),
    }
}

/// A time to the minute, in UTC: `2026-03-02 09:00 UTC`.
pub fn fmt_utc_minute(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
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
        let source = t.intensity_source.as_ref().map(ToString::to_string);
        let _ = write!(s, " @ {i:.0} g/kWh {}", source.unwrap_or_default());
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

/// What the summary reports besides the Snapshot's figures.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub title: String,
    pub interval_s: Option<f64>,
    /// (component, how it was measured), e.g. ("CPU", "estimate, …").
    pub sources: Vec<(String, String)>,
    pub samples_path: Option<String>,
    pub notes: Vec<String>,
}

/// The lines every report of a run shares (the headless summary, `report` text): energy and
/// its split, operational, embodied and communication carbon with their bands, the cost of an
/// accuracy point, equivalents. One line each, `  label      text`.
pub fn figure_lines(s: &Snapshot) -> Vec<(&'static str, String)> {
    let it = &s.it;
    let mut l = vec![(
        "energy",
        format!(
            "{} (GPU {}, CPU {}, memory {}, network {}; PUE {})",
            fmt_energy_kwh(s.energy_kwh),
            it.gpu_kwh.map_or("—".into(), fmt_energy_kwh),
            fmt_energy_kwh(it.cpu_kwh),
            fmt_energy_kwh(it.mem_kwh),
            fmt_energy_kwh(it.net_kwh),
            s.pue
        ),
    )];
    let mean = s
        .mean_intensity
        .map_or(String::new(), |m| format!(" (mean intensity {m:.1} g/kWh)"));
    let band = s
        .co2e_band
        .range()
        .and_then(|(lo, hi)| fmt_range(fmt_co2e_g(lo), fmt_co2e_g(hi)))
        .map_or(String::new(), |r| {
            let whose = if s.table_co2e.is_some() {
                "the components' and the grid table's bands"
            } else {
                "the components' bands"
            };
            format!(", {r} by {whose}")
        });
    l.push((
        "carbon",
        format!("{} CO2e{mean}{band}", fmt_co2e_g(s.co2e_g)),
    ));
    l.extend(grid_and_command_lines(s));
    if let Some(c) = s.comms {
        let band = c.range().map_or(String::new(), |(lo, hi)| {
            format!(
                ", {}–{} by the port model's range",
                fmt_co2e_g(lo),
                fmt_co2e_g(hi)
            )
        });
        l.push((
            "comms",
            format!(
                "{} CO2e of it is the network's (this machine's NIC and switch ports){band}",
                fmt_co2e_g(c.g)
            ),
        ));
    }
    l.extend(rdma_line(s));
    if let Some(c) = &s.cmd_net {
        l.extend(traffic_lines(c));
    }
    if s.embodied.is_some() || s.cmd_net.is_some_and(|c| c.internet.total() > 0) {
        if let Some(e) = s.embodied {
            l.push(("embodied", fmt_co2e_band(e.g, e.range(), "SCI M")));
        }
        let parts = match (
            s.embodied.is_some(),
            s.cmd_net.is_some_and(|c| c.internet.total() > 0),
        ) {
            (true, true) => "operational + embodied + internet path",
            (false, true) => "operational + internet path",
            _ => "operational + embodied",
        };
        l.push((
            "total",
            fmt_co2e_band(s.total_band.g, s.total_band.range(), parts),
        ));
    }
    if let Some(p) = s.per_point {
        let mut t = format!(
            "{} CO2e · {} per accuracy point over +{:.1} pt ({} tree-days)",
            fmt_co2e_g(p.co2e_g),
            fmt_energy_kwh(p.energy_kwh),
            p.gained,
            fmt_sig(p.tree_days)
        );
        if let Some(lp) = s.last_point {
            let _ = write!(t, "; last (→{}%) {}", lp.point, fmt_co2e_g(lp.co2e_g));
        }
        l.push(("per point", t));
    } else if let Some(g) = s.per_loss_hundredth {
        l.push((
            "per loss",
            format!("{} CO2e per 0.01 of loss", fmt_co2e_g(g)),
        ));
    }
    if let Some(m) = &s.per_metric {
        l.push((
            "per metric",
            format!(
                "{} CO2e per {} of {} (+{:.3})",
                fmt_co2e_g(m.co2e_g),
                m.unit,
                m.name,
                m.gained
            ),
        ));
    }
    l.push((
        "≈",
        format!(
            "{} tree-days, {} km by car",
            fmt_sig(s.equivalents.tree_days),
            fmt_sig(s.equivalents.car_km)
        ),
    ));
    l
}

/// The part of the carbon priced from the table's annual means with its band, and `run`'s
/// command's own figures.
fn grid_and_command_lines(s: &Snapshot) -> Vec<(&'static str, String)> {
    let mut l = Vec::new();
    if let Some(t) = s.table_co2e {
        let (lo, hi) = crate::engine::constants::GRID_TABLE_BAND;
        l.push((
            "grid",
            format!(
                "{} of it priced from the table's annual mean: {} for the hours of the run \
                 (×{lo}–{hi}, annual-mean against hourly accounting, Miller et al. 2022; a \
                 live provider gives the hour's own value)",
                fmt_co2e_g(t.g),
                fmt_range(fmt_co2e_g(t.low), fmt_co2e_g(t.high)).unwrap_or_default(),
            ),
        ));
    }
    if let Some(c) = &s.command {
        l.push(("command", command_line(c)));
    }
    l
}

/// `run -- CMD`: the command's own figures (CodeCarbon's process mode), beside the machine's.
fn command_line(c: &crate::engine::meter::Command) -> String {
    let gpu = match c.gpu_kwh {
        Some(g) if c.gpu_whole => format!(
            "GPU {} (a GPU without per-process figures whole)",
            fmt_energy_kwh(g)
        ),
        Some(g) => format!("GPU {}", fmt_energy_kwh(g)),
        None => "GPU —".into(),
    };
    format!(
        "the command's own, as --tracking-mode process writes them: {}, {} CO2e ({gpu}, CPU {}, \
         memory {}, network {})",
        fmt_energy_kwh(c.energy_kwh),
        fmt_co2e_g(c.co2e_g),
        fmt_energy_kwh(c.cpu_kwh),
        fmt_energy_kwh(c.mem_kwh),
        fmt_energy_kwh(c.net_kwh),
    )
}

/// The RDMA ports' traffic (cluster traffic the interfaces do not see) and its part of the
/// network's energy and carbon; for `run`, the command's part of it.
fn rdma_line(s: &Snapshot) -> Option<(&'static str, String)> {
    let r = s.rdma?;
    let own = s.cmd_net.map_or(String::new(), |c| {
        format!(
            "; the command's own {} ↓ {} ↑ (counted only while it alone used RDMA)",
            fmt_bytes(c.rdma.rx_bytes),
            fmt_bytes(c.rdma.tx_bytes)
        )
    });
    Some((
        "RDMA",
        format!(
            "{} ↓ {} ↑ on the InfiniBand/RoCE ports (cluster traffic): {}, {} CO2e of the \
             network's{own}",
            fmt_bytes(r.bytes.rx_bytes),
            fmt_bytes(r.bytes.tx_bytes),
            fmt_energy_kwh(r.energy),
            fmt_co2e_g(r.co2e)
        ),
    ))
}

/// `run -- CMD`: the command's own traffic, its share of the ports, and the internet path's
/// footprint of its public traffic (apart from the machine's energy).
fn traffic_lines(c: &crate::engine::meter::CmdComms) -> Vec<(&'static str, String)> {
    if c.cluster.total() + c.internet.total() == 0 {
        return vec![(
            "traffic",
            "the command's own: no TCP traffic off this machine (loopback never counts)".into(),
        )];
    }
    let mut l = vec![(
        "traffic",
        format!(
            "the command's own: cluster {} ↓ {} ↑, internet {} ↓ {} ↑; its share of the ports \
             {} ({} of it to the cluster), {}",
            fmt_bytes(c.cluster.rx_bytes),
            fmt_bytes(c.cluster.tx_bytes),
            fmt_bytes(c.internet.rx_bytes),
            fmt_bytes(c.internet.tx_bytes),
            fmt_energy_kwh(c.port_kwh),
            fmt_energy_kwh(c.port_cluster_kwh),
            fmt_co2e_band(c.port_co2e.g, c.port_co2e.range(), "")
        ),
    )];
    if c.internet.total() > 0 {
        l.push((
            "internet",
            format!(
                "{} along the internet path ({}, other people's equipment: not this machine's \
                 energy)",
                fmt_co2e_band(
                    c.internet_co2e.g,
                    c.internet_co2e.range(),
                    "published kWh/GB range"
                ),
                fmt_energy_kwh(c.internet_kwh)
            ),
        ));
    }
    l
}

/// The end-of-run summary (several lines).
pub fn summary(s: &Snapshot, f: &RunFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "carbontop summary: {}", f.title);
    if s.ticks == 0 {
        let _ = writeln!(
            out,
            "  empty run: no samples were recorded, so there is nothing to total"
        );
        return out;
    }
    let _ = write!(
        out,
        "  duration   {} ({} samples",
        fmt_duration(s.elapsed_s),
        s.ticks
    );
    if let Some(i) = f.interval_s {
        let _ = write!(out, ", every {i} s");
    }
    let _ = writeln!(out, ")");
    for (k, v) in figure_lines(s) {
        let _ = writeln!(out, "  {k:<10} {v}");
    }
    if let Some(p) = describe_progress(&s.progress) {
        let _ = writeln!(out, "  progress   {p}");
    }
    for (i, (what, how)) in f.sources.iter().enumerate() {
        let head = if i == 0 { "  sources" } else { "" };
        let _ = writeln!(out, "{head:<11}{what:<9}{how}");
    }
    for n in notes(s).iter().chain(&f.notes) {
        let _ = writeln!(out, "  note       {n}");
    }
    if let Some(p) = &f.samples_path {
        let _ = writeln!(out, "  samples    {p}");
    }
    out
}

/// What the figures themselves call for a word on: the command's share, counter resets.
fn notes(s: &Snapshot) -> Vec<String> {
    let mut n = Vec::new();
    // The command's part beside the machine's: CPU after CodeCarbon's process mode (its share
    // of the busy CPU time), GPU by Kepler's split (its share of each GPU's SM time).
    for p in &s.process {
        let (of_what, energy) = match p.part {
            ProcessPart::Cpu => ("the machine's busy CPU time", "CPU energy"),
            ProcessPart::Gpu => ("the GPU energy by SM share", "GPU energy"),
            ProcessPart::Mem => (
                "the memory by resident set (RSS of MemTotal)",
                "memory energy",
            ),
        };
        n.push(format!(
            "the command's processes: {:.1}% of {of_what}, {} of its {} {energy}",
            p.share * 100.0,
            fmt_energy_kwh(p.energy_kwh),
            fmt_energy_kwh(p.of_kwh),
        ));
    }
    if s.rapl_wraps > 0 {
        n.push(format!(
            "RAPL counter wrapped {} time(s), accounted",
            s.rapl_wraps
        ));
    }
    if s.rapl_resets > 0 {
        n.push(format!(
            "RAPL counter went backwards {} time(s) without a plausible wrap (reset): counted \
             from its new value, no phantom energy",
            s.rapl_resets
        ));
    }
    for g in &s.now.gpus {
        if let Some(m) = &g.mig {
            n.push(format!(
                "GPU {} {}: NVML measures the card only; charged {}/{} of its energy, with a \
                 band from the slices' share of the card's idle draw to all but the other \
                 slices' share of it",
                g.index,
                crate::engine::mig::label(m),
                m.slices,
                m.of
            ));
        }
    }
    n.extend(s.counter_divergence.iter().map(counter_note));
    n
}

/// Why NVML's power readings and its energy counter can disagree, with the sources.
pub const COUNTER_WHY: &str = "NVML's power is a 1 s average covering ~25% of the time on \
     A100/H100: Yang et al., SC'24; Zeus #181";

/// `GPU 0: energy counter and power readings differed by 7.2% over a minute (…)`.
fn counter_note(d: &crate::engine::meter::CounterDivergence) -> String {
    format!(
        "GPU {}: energy counter and power readings differed by up to {:.1}% over a minute \
         (power {} the counter; largest in the window ending at {}; {COUNTER_WHY}). \
         The counter is used.",
        d.index,
        d.worst.abs() * 100.0,
        if d.worst < 0.0 { "below" } else { "above" },
        fmt_duration(d.worst_at_s),
    )
}

/// The screen's flag for a GPU whose counter and power readings differ over the last minute,
/// in two lines of a narrow panel (the summary says why).
pub fn counter_flag(index: u32, rel: f64) -> [String; 2] {
    [
        format!("GPU {index}: counter vs power readings"),
        format!(
            "  differ {:.1}% (last min); counter used",
            rel.abs() * 100.0
        ),
    ]
}

/// Describes the latest progress for the summary.
pub fn describe_progress(p: &crate::sample::Progress) -> Option<String> {
    if p.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(e) = p.epoch {
        parts.push(format!("epoch {e}"));
    }
    if let Some(s) = p.step {
        parts.push(format!("step {s}"));
    }
    if let Some(a) = p.accuracy {
        parts.push(format!("accuracy {a:.2}%"));
    }
    if let Some(l) = p.loss {
        parts.push(format!("loss {l}"));
    }
    // The user's own metrics (`--metric f1=…`): a run that reports only those has a progress
    // line all the same (issue 20: it printed an empty one).
    for (name, v) in &p.metrics {
        parts.push(format!("{name} {v}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The name a comparison shows for a recording: a run directory's samples.csv by its
/// directory, else the file's name.
pub fn run_name(file: &str) -> String {
    let p = std::path::Path::new(file);
    match (p.file_name(), p.parent().and_then(|d| d.file_name())) {
        (Some(f), Some(d)) if f == "samples.csv" => d.to_string_lossy().into_owned(),
        (Some(f), _) => f.to_string_lossy().into_owned(),
        _ => file.to_owned(),
    }
}

/// `report a.csv b.csv`: the runs side by side, one column each (rows: what, then a value per
/// run), every figure from the run's Snapshot.
pub fn comparison(runs: &[(&str, &Snapshot)]) -> Vec<(&'static str, Vec<String>)> {
    let first = runs.first().map(|r| r.1);
    let col = |f: &dyn Fn(&str, &Snapshot) -> String| {
        runs.iter().map(|(n, s)| f(n, s)).collect::<Vec<_>>()
    };
    vec![
        ("run", col(&|n, _| run_name(n))),
        ("duration", col(&|_, s| fmt_duration(s.elapsed_s))),
        ("energy", col(&|_, s| fmt_energy_kwh(s.energy_kwh))),
        (
            "carbon",
            col(&|_, s| format!("{} CO2e", fmt_co2e_g(s.co2e_g))),
        ),
        (
            "vs first",
            col(&|_, s| {
                first
                    .and_then(|f| s.co2e_ratio_to(f))
                    .map_or("—".into(), |r| format!("{r:.2}×"))
            }),
        ),
        (
            "mean power",
            col(&|_, s| fmt_power(s.mean_power_w.facility_w)),
        ),
        (
            "mean grid",
            col(&|_, s| {
                s.mean_intensity
                    .map_or("—".into(), |i| format!("{i:.0} g/kWh"))
            }),
        ),
        (
            "accuracy",
            col(&|_, s| match (s.first_accuracy, s.progress.accuracy) {
                (Some(f), Some(l)) => format!("{f:.2}% → {l:.2}%"),
                _ => "—".into(),
            }),
        ),
        (
            "per point",
            col(&|_, s| {
                s.per_point.map_or("—".into(), |p| {
                    format!("{} CO2e/pt", fmt_co2e_g(p.co2e_g))
                })
            }),
        ),
    ]
}

/// Run `b` against run `a` in words: energy, carbon, time and final accuracy, each as the
/// difference of the two Snapshots' figures ("−10.7 Wh, −3.8 g, +9 s, same 55%").
pub fn trade_off(a: &Snapshot, b: &Snapshot) -> String {
    let sign = |d: f64| if d < 0.0 { "−" } else { "+" };
    let de = b.energy_kwh.0 - a.energy_kwh.0;
    let dc = b.co2e_g.0 - a.co2e_g.0;
    let dt = b.elapsed_s - a.elapsed_s;
    let time = if dt.abs() < 120.0 {
        format!("{}{:.0} s", sign(dt), dt.abs())
    } else {
        format!("{}{}", sign(dt), fmt_duration(dt.abs()))
    };
    let acc = match (a.progress.accuracy, b.progress.accuracy) {
        (Some(x), Some(y)) if (x - y).abs() < 0.05 => format!("same {y:.0}%"),
        (Some(x), Some(y)) => format!(
            "{}{:.1} pt accuracy ({x:.1}% → {y:.1}%)",
            sign(y - x),
            (y - x).abs()
        ),
        _ => "accuracy not recorded".into(),
    };
    format!(
        "{}{}, {}{} CO2e, {time}, {acc}",
        sign(de),
        fmt_energy_kwh(de.abs()),
        sign(dc),
        fmt_co2e_g(dc.abs())
    )
}

/// The comparison as aligned text.
pub fn comparison_text(runs: &[(&str, &Snapshot)]) -> String {
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
        assert_eq!(fmt_power(None::<f64>), "—");
        assert_eq!(fmt_duration(3725.0), "1:02:05");
    }
}
