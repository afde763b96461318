//! carbontop: what an ML training run costs the climate, measured live.
//!
//! Data flows one way (DESIGN.md §2): `source` → [`sample::Sample`] → [`engine::Ledger`] →
//! outputs (`report`). The engine is pure and driven by sample timestamps.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod engine;
pub mod report;
pub mod sample;
pub mod serve;
pub mod source;
pub mod ui;
pub mod units;

use app::AppError;
use cli::{Cli, Command};

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, AppError> {
    use app::live::{Job, live};
    match cli.command.unwrap_or(Command::Watch {
        opts: cli::MeasureOpts::default(),
        agents: Vec::new(),
    }) {
        Command::Run { opts, cmd } => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            live(&s, Job::Run(&cmd))
        }
        Command::Wait {
            grid,
            length,
            within,
            cmd,
        } => {
            let s = config::resolve(&grid.measure_opts())
                .map_err(|e| AppError::Usage(e.to_string()))?;
            app::wait::wait(&app::wait::WaitOpts {
                settings: &s,
                length,
                within,
                cmd: &cmd,
            })
        }
        Command::Record { opts } => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            live(&s, Job::Record)
        }
        Command::Watch { opts, agents } if !agents.is_empty() => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            app::aggregate::run(&s, &agents)
        }
        Command::Watch { opts, .. } => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            live(&s, Job::Watch)
        }
        Command::Serve {
            opts,
            listen,
            node,
            replay,
            speed,
        } => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            app::serve::run(&s, &listen, node, replay.as_deref(), speed)
        }
        Command::Replay {
            file,
            speed,
            out,
            headless,
            pue,
            quiet,
            theme,
        } => app::replay::replay(&app::replay::ReplayOpts {
            file: &file,
            speed,
            out: out.as_deref(),
            pue,
            quiet,
            headless,
            theme: theme.as_deref(),
            exporter: None,
        }),
        Command::Estimate(a) => app::estimate::run(&a),
        Command::Simulate(a) => app::simulate::run(&a),
        Command::Zones { filter, json } => zones(filter.as_deref(), json),
        Command::Reprice {
            file,
            zone,
            intensity_trace,
            within,
            step,
            pue,
            json,
            png,
        } => app::reprice::run(&app::reprice::RepriceOpts {
            file: &file,
            zones: &zone,
            trace: intensity_trace.as_deref(),
            within_s: within.as_secs_f64(),
            step_s: step.as_secs_f64(),
            pue,
            json,
            png: png.as_deref(),
        }),
        Command::Report {
            files,
            emissions,
            json,
            zone,
            pue,
            project,
            png,
            theme,
        } => app::report::report(&app::report::ReportOpts {
            png: png.as_deref(),
            theme: theme.as_deref(),
            files: &files,
            emissions: emissions.as_deref(),
            json,
            zone: zone.as_deref(),
            pue,
            project: &project,
        }),
    }
}

/// `carbontop zones [FILTER] [--json]`: exit 1 when nothing matches.
fn zones(filter: Option<&str>, json: bool) -> Result<i32, AppError> {
    use source::grid::table;
    let (found, aliases) = (table::matching(filter), table::matching_aliases(filter));
    let none = found.is_empty() && aliases.is_empty();
    if json {
        let text = serde_json::to_string_pretty(&table::listing_json(&found, &aliases))
            .map_err(|e| AppError::Runtime(e.to_string()))?;
        outln!("{text}")?;
    } else if none {
        errln!(
            "carbontop: no zone matches {:?}",
            filter.unwrap_or_default()
        );
    } else {
        app::out(&table::listing_text(&found, &aliases))?;
    }
    Ok(if none { 1 } else { 0 })
}
