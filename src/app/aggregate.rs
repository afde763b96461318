//! `carbontop watch --agent …`: the job across nodes, from their agents' /metrics (issue 8).
//! Headless: a line per node and the totals every interval; the final totals at the end.

use crate::app::{AppError, say};
use crate::config::Settings;
use crate::report::summary::{fmt_co2e_g, fmt_energy_kwh};
use crate::serve::agents::Agents;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub fn run(s: &Settings, addrs: &[String]) -> Result<i32, AppError> {
    let mut agents = Agents::new(addrs).map_err(AppError::Runtime)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| AppError::Runtime(format!("cannot install signal handlers: {e}")))?;
    }
    if !s.headless {
        say("watch --agent shows the nodes headless (one line per node and the totals)");
    }
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
                let stale = if n.fault.is_some() { " (stale)" } else { "" };
                let comms = n
                    .comms_share()
                    .map_or("—".into(), |c| format!("{:.1}%", c * 100.0));
                let per = n.co2e_per_progress().map_or(String::new(), |(k, g)| {
                    format!(", {} per {k}", fmt_co2e_g(g))
                });
                eprintln!(
                    "  {:<20} {:>9.1} W  {}  {} CO2e  comms {comms}  grid {}{per}{stale}",
                    format!("{} [{}]", n.node, n.agent),
                    n.facility_w,
                    fmt_energy_kwh(n.facility_j / crate::engine::constants::J_PER_KWH),
                    fmt_co2e_g(n.co2e_g),
                    n.intensity.map_or("—".into(), |i| format!(
                        "{i:.0} g/kWh {}",
                        n.intensity_source
                    )),
                );
            }
        }
        let (kwh, g, counted, all) = agents.totals();
        if !s.quiet {
            eprintln!(
                "[{:>8.1} s] job: {} · {} CO2e over {counted} of {all} nodes",
                start.elapsed().as_secs_f64(),
                fmt_energy_kwh(kwh),
                fmt_co2e_g(g)
            );
        }
        let done = stop.load(Ordering::Relaxed) || s.duration.is_some_and(|d| start.elapsed() >= d);
        if done {
            // Full precision, for scripts and the tests.
            println!("nodes={counted}/{all} energy_kwh={kwh} co2e_g={g}");
            return Ok(0);
        }
        let until = Instant::now() + s.interval;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(s.interval.min(std::time::Duration::from_millis(100)));
        }
    }
}
