//! `carbontop wait -- CMD`: start CMD at the cleanest window of the grid's forecast within
//! `--within` (DESIGN.md §3), saying what that saves; at once when the grid has no forecast or
//! no later window is clearly cleaner. The window is the screen's "greener window"
//! (`engine::forecast::greener_window`: the lowest mean intensity over the run's length,
//! starting at a forecast slot's start, at least 5% below starting now — less is within the
//! forecast's own error). CMD then replaces carbontop (exec), with its stdin, stdout, stderr and
//! signals, so `carbontop wait … -- carbontop run -- python train.py` measures the run too.

use crate::app::AppError;
use crate::config::Settings;
use crate::engine::forecast::{self, Slot};
use crate::report::summary::{fmt_duration, fmt_utc_minute as when};
use crate::source::grid::{self, live::GridHandle};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for the provider's first answer (its own timeout is 10 s; one retry).
const FIRST_ANSWER_S: u64 = 25;

pub struct WaitOpts<'a> {
    pub settings: &'a Settings,
    pub length: Duration,
    pub within: Duration,
    pub cmd: &'a [String],
}

/// The forecast's slots once the provider has answered (or failed, or the wait ran out).
fn forecast_slots(h: &GridHandle) -> Vec<Slot> {
    let until = Instant::now() + Duration::from_secs(FIRST_ANSWER_S);
    loop {
        let v = h.view(Utc::now());
        if v.last_ok.is_some() || v.failure.is_some() || Instant::now() >= until {
            return v
                .ahead
                .iter()
                .map(|p| Slot {
                    from: p.from,
                    to: p.to,
                    g_per_kwh: p.g_per_kwh,
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Test builds only: `CARBONTOP_TEST_TIME_SCALE=N` waits 1/N of the time (a compressed clock
/// for the tests; a release build always waits in real time).
#[cfg(debug_assertions)]
fn time_scale() -> f64 {
    std::env::var("CARBONTOP_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 1.0)
        .unwrap_or(1.0)
}

#[cfg(not(debug_assertions))]
fn time_scale() -> f64 {
    1.0
}

/// Sleeps until `at` (scaled), unless a signal comes first: then the signal's number.
fn sleep_until(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<i32>, AppError> {
    // The signal's number; 0 while none came (signal numbers start at 1).
    let got = Arc::new(AtomicI32::new(0));
    let g = got.clone();
    let handle = crate::app::spawn_signal_thread(move |sig| {
        g.store(sig, Ordering::SeqCst);
        false
    })?;
    let secs = (at - now).as_seconds_f64().max(0.0) / time_scale();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end && got.load(Ordering::SeqCst) == 0 {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    handle.close();
    let sig = got.load(Ordering::SeqCst);
    Ok((sig != 0).then_some(sig))
}

pub fn wait(o: &WaitOpts<'_>) -> Result<i32, AppError> {
    let built = grid::build(&o.settings.grid).map_err(|e| AppError::Usage(e.to_string()))?;
    for n in &built.notices {
        crate::app::say(n);
    }
    let len = TimeDelta::from_std(o.length).map_err(|e| AppError::Usage(e.to_string()))?;
    let within = TimeDelta::from_std(o.within).map_err(|e| AppError::Usage(e.to_string()))?;
    let window = match &built.live {
        None => {
            crate::app::say(&format!(
                "{} has no forecast: starting now",
                built.source.describe()
            ));
            None
        }
        Some(h) => {
            let slots = forecast_slots(h);
            let now = Utc::now();
            let w = forecast::greener_window(&slots, now, within, len);
            if w.is_none() {
                let covered = slots.last().map(|s| s.to);
                crate::app::say(&format!(
                    "no {} window within {} is {}% cleaner than starting now{}: starting now",
                    fmt_duration(o.length.as_secs_f64()),
                    fmt_duration(o.within.as_secs_f64()),
                    forecast::MIN_SAVING_PCT,
                    covered.map_or(" (no forecast)".into(), |t| format!(
                        " (forecast to {})",
                        when(t)
                    ))
                ));
            }
            w.map(|w| (w, now))
        }
    };
    drop(built);
    if let Some((w, now)) = window {
        crate::app::say(&format!(
            "cleanest {} window within {}: {} to {}, {:.0} gCO2e/kWh, {:.1}% below starting now \
             ({:.0}); waiting {}",
            fmt_duration(o.length.as_secs_f64()),
            fmt_duration(o.within.as_secs_f64()),
            when(w.start),
            when(w.end),
            w.mean_g,
            w.saving_pct(),
            w.now_mean_g,
            fmt_duration((w.start - now).as_seconds_f64())
        ));
        if let Some(sig) = sleep_until(w.start, now)? {
            crate::app::say("stopped while waiting: the command was not started");
            return Ok(128 + sig);
        }
    }
    exec(o.cmd)
}

/// Replaces this process with `cmd` (returns only if it could not start).
fn exec(cmd: &[String]) -> Result<i32, AppError> {
    use std::os::unix::process::CommandExt;
    let (prog, args) = cmd
        .split_first()
        .ok_or_else(|| AppError::Usage("no command given after --".into()))?;
    let e = std::process::Command::new(prog).args(args).exec();
    Err(AppError::Spawn(format!("cannot start {prog}: {e}")))
}
