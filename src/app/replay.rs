//! `replay FILE`: a recording played back through the same engine.

use crate::app::measure::{open_writer, write_tick};
use crate::app::{AppError, say};
use crate::engine::{Ledger, LedgerConfig};
use crate::report::summary::{RunFacts, status_line, summary};
use crate::source::replay::{Replay, Speed};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct ReplayOpts<'a> {
    pub file: &'a Path,
    pub speed: Speed,
    pub out: Option<&'a Path>,
    pub pue: Option<f64>,
    pub quiet: bool,
    pub headless: bool,
}

pub fn replay(o: &ReplayOpts<'_>) -> Result<i32, AppError> {
    let mut rp = Replay::open(o.file).map_err(|e| AppError::Usage(format!("replay {e}")))?;
    let mut writer = match o.out {
        Some(dir) => Some(open_writer(dir, rp.gpu_count())?),
        None => None,
    };
    crate::headless_note(o.headless);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| AppError::Runtime(format!("cannot install signal handlers: {e}")))?;
    }

    let mut ledger = Ledger::new(LedgerConfig {
        pue: o.pue.unwrap_or(1.0),
        ..Default::default()
    });
    let mut failed = false;
    let mut last_progress = None;
    let mut error = None;
    let started = Instant::now();
    let mut first_elapsed = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(next) = rp.next_sample() else { break };
        let (s, _gap) = match next {
            Ok(x) => x,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        rp.apply_pue(&mut ledger, o.pue);
        if let Speed::Times(x) = o.speed {
            // Pace against the start so sleep overshoot never accumulates.
            let t0 = *first_elapsed.get_or_insert(s.elapsed_s);
            let due = started + Duration::from_secs_f64(((s.elapsed_s - t0) / x).max(0.0));
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(100)));
            }
        }
        if !s.progress.is_empty() {
            last_progress = Some(s.progress.clone());
        }
        let tick = ledger.push(s);
        if let Some(w) = writer.as_mut() {
            write_tick(w, &tick, &mut failed);
        }
        if !o.quiet && o.speed != Speed::Max {
            eprintln!("{}", status_line(&tick, false));
        }
    }
    let mut notes = Vec::new();
    if stop.load(Ordering::Relaxed) {
        notes.push("stopped by signal before the end of the recording".into());
    }
    let facts = RunFacts {
        title: format!("replay {}", rp.path()),
        interval_s: None,
        pue: ledger.config().pue,
        sources: vec![("all".into(), format!("replayed from {}", rp.path()))],
        samples_path: writer.as_ref().map(|w| w.path().display().to_string()),
        gpu_measured: rp.gpu_count() > 0,
        last_progress: last_progress.map(|p| {
            format!(
                "epoch {}, accuracy {}",
                p.epoch.map_or("—".into(), |e| e.to_string()),
                p.accuracy.map_or("—".into(), |a| format!("{a:.2}%"))
            )
        }),
        notes,
    };
    eprint!("{}", summary(&ledger.totals(), &facts));
    if let Some(e) = error {
        say(&format!("replay {e}"));
        return Ok(2);
    }
    Ok(0)
}
