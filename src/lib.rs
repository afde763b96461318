//! carbontop: what an ML training run costs the climate, measured live.
//!
//! Data flows one way (DESIGN.md §2): `source` → [`sample::Sample`] → [`engine::Ledger`] →
//! outputs (`report`). The engine is pure and driven by sample timestamps.

pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod report;
pub mod sample;
pub mod source;

use app::AppError;
use cli::{Cli, Command};

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, AppError> {
    match cli.command {
        Command::Run { opts, cmd } => {
            let s = config::resolve(&opts).map_err(AppError::Usage)?;
            app::measure::measure(&s, Some(&cmd))
        }
        Command::Record { opts } => {
            let s = config::resolve(&opts).map_err(AppError::Usage)?;
            app::measure::measure(&s, None)
        }
        Command::Replay {
            file,
            speed,
            out,
            headless,
            pue,
            quiet,
        } => app::replay::replay(&app::replay::ReplayOpts {
            file: &file,
            speed,
            out: out.as_deref(),
            pue,
            quiet,
            headless,
        }),
        Command::Report {
            files,
            emissions,
            json,
            zone,
            pue,
            project,
        } => app::report::report(&app::report::ReportOpts {
            files: &files,
            emissions: emissions.as_deref(),
            json,
            zone: zone.as_deref(),
            pue,
            project: &project,
        }),
    }
}

/// Said once inputs are validated, when the screen was asked for.
pub(crate) fn headless_note(headless: bool) {
    if !headless {
        app::say("this build has no live screen yet: running headless");
    }
}
