//! `carbontop watch --agent …`: the job across nodes, from their agents' /metrics (issue 8),
//! through the same Session and driver loop as a live run: the agents are its feed. Headless: a
//! line per node and the job's totals every interval; the final totals at the end.

use crate::app::AppError;
use crate::app::caps::CapSide;
use crate::app::drive::{Io, Output, Raw, drive};
use crate::app::feed::{Feed, spawn_agents};
use crate::app::screen::{self, Screen};
use crate::app::session::{Session, SessionConfig};
use crate::config::Settings;
use crate::engine::job::{NodeFigures, Rank};
use crate::engine::{Basis, Ledger, LedgerConfig, Meter};
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh};
use crate::serve::agents::{Agents, Node};
use crate::ui::model::{Dashboard, Mode, RunInfo};
use crate::ui::state::UiState;
use std::sync::mpsc;
use std::time::Instant;

pub fn run(s: &Settings, addrs: &[String]) -> Result<i32, AppError> {
    let agents = Agents::new(addrs).map_err(|e| match e {
        crate::serve::ServeError::BadAgent { .. } => AppError::Usage(e.to_string()),
        _ => AppError::Runtime(e.to_string()),
    })?;
    let use_screen = crate::app::screen::wanted(s.headless);
    let info = RunInfo {
        title: format!("watch {} agent(s)", addrs.len()),
        zone: "per node".into(),
        cpu_estimate: false,
        gpus: Vec::new(),
        cap_mode: "per node".into(),
        samples_path: None,
        mode: Mode::Live,
    };
    let dash = Dashboard::new(info, Meter::new(Basis::default(), use_screen));
    let (tx, rx) = mpsc::channel::<Raw>();
    let sig = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |sig| tx.send(Raw::Signal(sig)).is_ok())?
    };
    let out = if use_screen {
        let themes =
            crate::ui::theme::resolve(s.theme.as_deref(), crate::ui::theme::user_dir().as_deref())
                .map_err(|e| AppError::Usage(e.to_string()))?;
        let sc = Screen::start(&dash, UiState::new(themes.0, themes.1, false, true))
            .map_err(AppError::Runtime)?;
        let tx = tx.clone();
        screen::spawn_input(move |e| tx.send(Raw::Input(e)).is_ok()).map_err(AppError::Runtime)?;
        Output::Screen(Box::new(sc))
    } else {
        Output::Headless {
            quiet: s.quiet,
            cpu_estimate: false,
        }
    };
    let feed = spawn_agents(agents, s.interval, tx)
        .map_err(|e| AppError::Runtime(format!("cannot start the agents' scraper: {e}")))?;
    let cfg = SessionConfig {
        // q leaves at once: there is no run whose end to hold.
        screen: false,
        child: false,
        duration_s: s.duration.map(|d| d.as_secs_f64()),
        recording: false,
        hold: false,
    };
    let caps = CapSide::without_control("caps are each node's own");
    let mut session = Session::new(dash, Ledger::new(LedgerConfig::default()), caps, cfg);
    let mut io = Io::new(rx, Instant::now(), out, Feed::Agents(feed));
    drive(&mut session, &mut io)?;
    sig.close();
    let Io { feed, out, .. } = io;
    feed.join();
    drop(out);
    final_lines(session.nodes())
}

/// One line per node for the screen's pane and the headless lines, cheapest node first by
/// gCO2e per unit of progress (the engine's ranking), then those not ranked.
pub fn node_lines(nodes: &[Node]) -> Vec<String> {
    let answered: Vec<&Node> = nodes.iter().filter(|n| n.answered.is_some()).collect();
    let figs: Vec<&NodeFigures> = answered.iter().map(|n| &n.fig).collect();
    let ranks = crate::engine::job::rank(&figs);
    let mut out: Vec<String> = ranks
        .iter()
        .map(|r| node_line(answered[r.node], Some(r)))
        .collect();
    let ranked: Vec<usize> = ranks.iter().map(|r| r.node).collect();
    out.extend(
        answered
            .iter()
            .enumerate()
            .filter(|(i, _)| !ranked.contains(i))
            .map(|(_, n)| node_line(n, None)),
    );
    out.extend(
        nodes
            .iter()
            .filter(|n| n.answered.is_none())
            .map(|n| node_line(n, None)),
    );
    out
}

/// The job's communication carbon and its share of the job's, for the job's line.
pub fn job_comms_text(nodes: &[Node]) -> String {
    let counted = crate::serve::agents::counted(nodes);
    crate::engine::job::job_comms(&counted).map_or(String::new(), |(g, f)| {
        format!(" · comms {} CO2e ({:.1}%)", fmt_co2e_g(g), f * 100.0)
    })
}

/// One node's line: a node that never answered has no figures to show (it is not in the
/// totals either), only why.
pub fn node_line(n: &Node, rank: Option<&Rank>) -> String {
    if n.answered.is_none() {
        return match &n.fault {
            Some(f) => format!("{} [{}]  no answer yet: {f}", n.node, n.agent),
            None => format!("{} [{}]  no answer yet", n.node, n.agent),
        };
    }
    let stale = if n.fault.is_some() { "  (stale)" } else { "" };
    let comms = n
        .fig
        .comms_share()
        .map_or("—".into(), |c| format!("{:.1}%", c * 100.0));
    let per = rank.map_or(String::new(), |r| {
        format!(
            "  #{} {} per {} (comms {}, {:.1}%)",
            r.place,
            fmt_co2e_g(r.g_per_unit),
            r.unit,
            fmt_co2e_g(r.comms_g_per_unit),
            r.comms_share * 100.0
        )
    });
    format!(
        "{} [{}]  {:.1} W  {}  {} CO2e  comms {comms} of energy, {} CO2e  {}{per}{stale}",
        n.node,
        n.agent,
        n.fig.facility_w,
        fmt_energy_kwh(n.fig.energy_kwh()),
        fmt_co2e_g(n.fig.co2e_g),
        fmt_co2e_g(n.fig.comms_g()),
        n.fig.intensity.map_or("—".into(), |i| format!(
            "{i:.0} g/kWh {}",
            n.intensity_source
        )),
    )
}

/// At the end, at full precision for scripts and the tests: the job's totals, then each node's.
fn final_lines(nodes: &[Node]) -> Result<i32, AppError> {
    let counted = crate::serve::agents::counted(nodes);
    let (kwh, g) = crate::engine::job::totals(&counted);
    let (comms_g, comms_share) = crate::engine::job::job_comms(&counted).unwrap_or((0.0, 0.0));
    crate::outln!(
        "nodes={}/{} energy_kwh={kwh} co2e_g={g} comms_co2e_g={comms_g} comms_share={comms_share}",
        counted.len(),
        nodes.len()
    )?;
    let ranks = crate::engine::job::rank(&counted);
    for (i, n) in nodes.iter().filter(|n| n.answered.is_some()).enumerate() {
        let rank = ranks
            .iter()
            .find(|r| r.node == i)
            .map_or(String::new(), |r| {
                format!(
                    " rank={} co2e_g_per_{}={} comms_co2e_g_per_unit={}",
                    r.place,
                    r.unit.metric(),
                    r.g_per_unit,
                    r.comms_g_per_unit
                )
            });
        crate::outln!(
            "node={} energy_kwh={} co2e_g={} comms_co2e_g={}{rank}",
            n.node,
            n.fig.energy_kwh(),
            n.fig.co2e_g,
            n.fig.comms_g()
        )?;
    }
    Ok(0)
}
