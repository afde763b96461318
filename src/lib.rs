//! carbontop: what an ML training run costs the climate, measured live.
//!
//! Data flows one way (DESIGN.md §2): `source` → [`sample::Sample`] → [`engine::Ledger`] →
//! outputs (`report`). The engine is pure and driven by sample timestamps.

pub mod app;
pub mod capd;
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
        Command::Record { opts, slurm_job } => {
            let s = config::resolve(&opts).map_err(|e| AppError::Usage(e.to_string()))?;
            live(&s, Job::Record(slurm_job.as_ref()))
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
        Command::Capd(o) => capd::run(&o),
        Command::Simulate(a) => app::simulate::run(&a),
        Command::Zones { filter, json } => zones(filter.as_deref(), json),
        Command::Completions { shell } => docs(Some(shell)),
        Command::Man => docs(None),
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
        Command::Report(a) => app::report::report(&a),
    }
}

/// `carbontop zones [FILTER] [--json]`: exit 1 when nothing matches.
/// The completion script for `shell`, or the manual page: both from the same clap definitions
/// as `--help`, so they cannot disagree with it.
fn docs(shell: Option<clap_complete::Shell>) -> Result<i32, AppError> {
    use clap::CommandFactory;
    let mut cmd = cli::Cli::command();
    let mut buf = Vec::new();
    match shell {
        Some(sh) => clap_complete::generate(sh, &mut cmd, "carbontop", &mut buf),
        None => clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| AppError::Runtime(format!("cannot render the manual page: {e}")))?,
    }
    app::out(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}

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
