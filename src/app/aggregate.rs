//! `carbontop watch --agent …`: the job across nodes, from their agents' /metrics (issue 8).
//! Headless: a line per node and the totals every interval; the final totals at the end.

use crate::app::{AppError, say};
use crate::config::Settings;
use crate::engine::{Basis, Meter};
use crate::engine::{Tick, Totals};
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh};
use crate::serve::agents::{Agents, Node};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub fn run(s: &Settings, addrs: &[String]) -> Result<i32, AppError> {
    if crate::app::screen::wanted(s.headless) {
        return run_screen(s, addrs);
    }
    let mut agents = Agents::new(addrs).map_err(AppError::Runtime)?;
    let stop = crate::app::stop_flag()?;
    let start = Instant::now();
    let mut said: Vec<Option<String>> = vec![None; addrs.len()];
    loop {
        agents.scrape();
        for (n, last) in agents.nodes.iter().zip(said.iter_mut()) {
            if n.fault != *last {
                if let Some(f) = &n.fault {
                    say(&format!("{f}; its last values are kept, marked stale"));
                }
                last.clone_from(&n.fault);
            }
        }
        if !s.quiet {
            for n in &agents.nodes {
                crate::errln!("  {}", node_line(n));
            }
        }
        let (kwh, g, counted, all) = agents.totals();
        if !s.quiet {
            crate::errln!(
                "[{:>8.1} s] job: {} · {} CO2e over {counted} of {all} nodes",
                start.elapsed().as_secs_f64(),
                fmt_energy_kwh(kwh),
                fmt_co2e_g(g)
            );
        }
        let done = stop.load(Ordering::Relaxed) || s.duration.is_some_and(|d| start.elapsed() >= d);
        if done {
            return final_lines(&agents);
        }
        let until = Instant::now() + s.interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(s.interval.min(std::time::Duration::from_millis(100)));
        }
    }
}

/// The job's tick now, from the nodes that answered.
fn job_tick(agents: &Agents, elapsed_s: f64, dt_s: f64, k: u64) -> (Tick, Totals, Option<f64>) {
    crate::engine::job::tick(&agents.counted(), chrono::Utc::now(), elapsed_s, dt_s, k)
}

/// One line per node for the screen's pane.
fn node_line(n: &Node) -> String {
    let stale = if n.fault.is_some() { "  (stale)" } else { "" };
    let comms = n
        .fig
        .comms_share()
        .map_or("—".into(), |c| format!("{:.1}%", c * 100.0));
    let per = n.fig.co2e_per_progress().map_or(String::new(), |(k, g)| {
        format!("  {} per {k}", fmt_co2e_g(g))
    });
    format!(
        "{} [{}]  {:.1} W  {}  {} CO2e  comms {comms}  {}{per}{stale}",
        n.node,
        n.agent,
        n.fig.facility_w,
        fmt_energy_kwh(n.fig.energy_kwh()),
        fmt_co2e_g(n.fig.co2e_g),
        n.fig.intensity.map_or("—".into(), |i| format!(
            "{i:.0} g/kWh {}",
            n.intensity_source
        )),
    )
}

enum Ev {
    Input(ratatui::crossterm::event::Event),
    Signal,
}

/// The same, on the live screen: the job's power, energy, carbon and intensity in the usual
/// panels, the nodes in the pane below; `q` quits.
fn run_screen(s: &Settings, addrs: &[String]) -> Result<i32, AppError> {
    use crate::app::screen::{self, Screen};
    use crate::ui::model::{Dashboard, Mode, RunInfo};
    use crate::ui::state::{Effect, UiState};
    use ratatui::crossterm::event::Event as CtEvent;
    let mut agents = Agents::new(addrs).map_err(AppError::Runtime)?;
    let themes =
        crate::ui::theme::resolve(s.theme.as_deref(), crate::ui::theme::user_dir().as_deref())
            .map_err(AppError::Usage)?;
    let (tx, rx) = std::sync::mpsc::channel::<Ev>();
    let sig = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |_| tx.send(Ev::Signal).is_ok())?
    };
    let info = RunInfo {
        title: format!("watch {} agent(s)", addrs.len()),
        zone: "per node".into(),
        cpu_estimate: false,
        gpus: Vec::new(),
        cap_mode: "per node".into(),
        samples_path: None,
        mode: Mode::Live,
    };
    let mut dash = Dashboard::new(info, Meter::new(Basis::default(), true));
    let mut sc = Screen::start(&dash, UiState::new(themes.0, themes.1, false, true))
        .map_err(AppError::Runtime)?;
    {
        let tx = tx.clone();
        screen::spawn_input(move |e| tx.send(Ev::Input(e)).is_ok()).map_err(AppError::Runtime)?;
    }
    drop(tx);
    let start = Instant::now();
    let mut next = start;
    let mut k = 0u64;
    let mut last_elapsed = 0.0;
    loop {
        if Instant::now() >= next {
            agents.scrape();
            let elapsed = start.elapsed().as_secs_f64();
            let (tick, totals, pue) = job_tick(&agents, elapsed, elapsed - last_elapsed, k);
            last_elapsed = elapsed;
            k += 1;
            // The job's PUE, for the "now" figures.
            if let Some(p) = pue {
                dash.meter.basis.pue = p;
            }
            dash.push(&tick, totals);
            dash.output.clear();
            for n in &agents.nodes {
                dash.push_output(&node_line(n));
            }
            let (_, _, counted, all) = agents.totals();
            dash.info.zone = format!("{counted} of {all} nodes");
            if let Some(f) = agents.nodes.iter().find_map(|n| n.fault.clone()) {
                dash.warn(f);
            }
            sc.draw(&dash);
            next += s.interval;
        }
        if s.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        match crate::app::recv_until(&rx, Some(next)) {
            Ok(Some(Ev::Input(CtEvent::Key(key)))) => match sc.ui.handle_key(key, &dash, false) {
                Some(Effect::Quit | Effect::Interrupt) => break,
                _ => sc.draw(&dash),
            },
            Ok(Some(Ev::Input(_))) => sc.draw(&dash),
            Ok(Some(Ev::Signal)) | Err(_) => break,
            Ok(None) => {}
        }
    }
    sig.close();
    drop(sc);
    final_lines(&agents)
}

/// At the end, at full precision for scripts and the tests: the job's totals, then each node's.
fn final_lines(agents: &Agents) -> Result<i32, AppError> {
    let (kwh, g, counted, all) = agents.totals();
    crate::outln!("nodes={counted}/{all} energy_kwh={kwh} co2e_g={g}")?;
    for n in agents.nodes.iter().filter(|n| n.answered.is_some()) {
        crate::outln!(
            "node={} energy_kwh={} co2e_g={}",
            n.node,
            n.fig.energy_kwh(),
            n.fig.co2e_g
        )?;
    }
    Ok(0)
}
