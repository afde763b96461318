//! `run` and `record`: live measurement, headless.

use crate::app::child::{Child, ChildEvent};
use crate::app::{AppError, say};
use crate::config::Settings;
use crate::engine::{Ledger, LedgerConfig, Tick};
use crate::report::account::RunStats;
use crate::report::emissions::{self, RunMeta};
use crate::report::samples::SamplesWriter;
use crate::report::summary::{RunFacts, status_line, summary};
use crate::sample::Progress;
use crate::source::cpu_estimate::CpuEstimate;
use crate::source::cpu_rapl::{RaplSource, RaplUnavailable};
use crate::source::gpu_nvml::NvmlSource;
use crate::source::grid::table::TableIntensity;
use crate::source::grid::{FixedIntensity, GridSource};
use crate::source::mem::MemEstimate;
use crate::source::net::SysinfoNet;
use crate::source::sampler::{self, Sampler, SamplerEvent, Sources};
use crate::source::{CpuSource, GpuSource};
use nix::sys::signal::Signal;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Grace between SIGTERM and SIGKILL when --duration ends a child.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long a child's output may stay open after it exited (grandchildren holding the pipe).
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);
/// A SIGINT sent to carbontop alone (not the terminal's whole group) reaches the child after this.
const SIGINT_FORWARD_AFTER: Duration = Duration::from_secs(2);

enum Event {
    Sampler(SamplerEvent),
    Child(ChildEvent),
    Signal(i32),
}

/// The sources chosen for these settings, and what to say about them.
pub struct Built {
    pub sources: Sources,
    pub facts: Vec<(String, String)>,
    pub cpu_estimate: bool,
    pub gpu_count: usize,
    pub gpu_models: Vec<String>,
    /// Missing hardware and fallbacks, said once the settings are known to be good.
    pub notices: Vec<String>,
}

/// Chooses every source; notices about missing hardware are printed once here.
pub fn build_sources(s: &Settings) -> Result<Built, AppError> {
    let mut facts = Vec::new();
    let mut notices = Vec::new();

    let (gpu, gpu_models): (Option<Box<dyn GpuSource>>, Vec<String>) = if s.no_gpu {
        facts.push(("GPU".into(), "not measured (--no-gpu)".into()));
        (None, vec![])
    } else {
        match NvmlSource::open(&s.gpu_index) {
            Ok(src) => {
                let info = src.info();
                let counters = info.iter().filter(|g| g.has_energy_counter).count();
                facts.push((
                    "GPU".into(),
                    format!(
                        "NVML (measured): {} × {}; energy counter on {counters}, power trapezoid on the rest",
                        info.len(),
                        info.first().map(|g| g.name.as_str()).unwrap_or("GPU")
                    ),
                ));
                let models = src.models();
                (Some(Box::new(src)), models)
            }
            Err(msg) if msg.starts_with("--gpu-index") => return Err(AppError::Usage(msg)),
            Err(msg) => {
                notices.push(msg.clone());
                facts.push(("GPU".into(), msg));
                (None, vec![])
            }
        }
    };

    let (cpu, cpu_estimate): (Box<dyn CpuSource>, bool) = match RaplSource::probe(&s.sysfs_root) {
        Ok(r) => (Box::new(r), false),
        Err(why) => {
            notices.push(if matches!(why, RaplUnavailable::PermissionDenied(_)) {
                format!("{why}; using the CPU estimate meanwhile")
            } else {
                format!("CPU power is an estimate: {why}")
            });
            let est = CpuEstimate::new(s.cpu_tdp, why.to_string()).map_err(AppError::Runtime)?;
            (Box::new(est), true)
        }
    };
    facts.push(("CPU".into(), cpu.describe()));

    let mem = MemEstimate::detect(s.memory_w_per_gib).map_err(AppError::Runtime)?;
    facts.push(("memory".into(), crate::source::MemSource::describe(&mem)));

    let net = SysinfoNet::new(&s.net_iface, &s.sysfs_root).map_err(|e| {
        if e.starts_with("--net-iface") {
            AppError::Usage(e)
        } else {
            AppError::Runtime(e)
        }
    })?;
    facts.push((
        "network".into(),
        format!(
            "{}, {} kWh/GB (CUMULATOR; published range 0.001–0.069)",
            crate::source::NetSource::describe(&net),
            s.net_kwh_per_gb
        ),
    ));

    let grid: Box<dyn GridSource> = match s.intensity {
        Some(g) => Box::new(FixedIntensity(g)),
        None => Box::new(TableIntensity::new(s.zone.as_deref()).map_err(AppError::Usage)?),
    };
    facts.push(("grid".into(), grid.describe()));

    let gpu_count = gpu_models.len();
    Ok(Built {
        sources: Sources {
            gpu,
            cpu: Some(cpu),
            mem: Some(Box::new(mem)),
            net: Some(Box::new(net)),
            grid,
        },
        facts,
        cpu_estimate,
        gpu_count,
        gpu_models,
        notices,
    })
}

/// The output directory: --out, or ./carbontop-runs/<UTC start time>.
fn out_dir(s: &Settings) -> PathBuf {
    s.out.clone().unwrap_or_else(|| {
        PathBuf::from("carbontop-runs")
            .join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
    })
}

/// Creates DIR and DIR/samples.csv; an existing recording is never overwritten.
pub fn open_writer(dir: &std::path::Path, n_gpus: usize) -> Result<SamplesWriter, AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::Usage(format!("--out {}: cannot create: {e}", dir.display())))?;
    let path = dir.join("samples.csv");
    if path.exists() {
        return Err(AppError::Usage(format!(
            "--out {}: samples.csv already exists there; choose another --out (nothing was overwritten)",
            dir.display()
        )));
    }
    SamplesWriter::create(&path, n_gpus).map_err(|e| {
        AppError::Usage(format!(
            "--out {}: cannot write samples.csv: {e}",
            dir.display()
        ))
    })
}

/// Shell convention: the code, or 128 + the signal that ended it.
pub fn exit_code_of(st: ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Describes the latest progress for the summary.
pub fn describe_progress(p: &Progress) -> Option<String> {
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
    Some(parts.join(", "))
}

/// Runs `record` (cmd None) or `run` (cmd Some); returns the exit code.
pub fn measure(settings: &Settings, cmd: Option<&[String]>) -> Result<i32, AppError> {
    let built = build_sources(settings)?;
    let dir = out_dir(settings);
    let mut writer = open_writer(&dir, built.gpu_count)?;
    crate::headless_note(settings.headless);
    for n in &built.notices {
        say(n);
    }
    let mut ledger = Ledger::new(LedgerConfig {
        pue: settings.pue,
        net_kwh_per_gb: settings.net_kwh_per_gb,
    });

    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| AppError::Runtime(format!("cannot install signal handlers: {e}")))?;
    let sig_handle = signals.handle();
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("carbontop-signals".into())
            .spawn(move || {
                for s in signals.forever() {
                    if tx.send(Event::Signal(s)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| AppError::Runtime(e.to_string()))?;
    }

    let start = Instant::now();
    let sampler = {
        let tx = tx.clone();
        sampler::spawn(Sampler::new(built.sources), settings.interval, move |e| {
            tx.send(Event::Sampler(e)).is_ok()
        })
        .map_err(|e| AppError::Runtime(format!("cannot start the sampler: {e}")))?
    };

    let child = match cmd {
        Some(c) => {
            let tx = tx.clone();
            match Child::spawn(c, move |e| {
                let _ = tx.send(Event::Child(e));
            }) {
                Ok(ch) => Some(ch),
                Err(e) => {
                    sampler.stop();
                    sampler.join();
                    sig_handle.close();
                    return Err(AppError::Spawn(e));
                }
            }
        }
        None => None,
    };
    drop(tx);

    let duration_deadline = settings.duration.map(|d| start + d);
    let mut kill_at: Option<Instant> = None;
    let mut sigint_forward_at: Option<Instant> = None;
    let mut child_exit: Option<(ExitStatus, Instant)> = None;
    let mut outputs_open = if child.is_some() { 2 } else { 0 };
    let mut stopping = false;
    let mut progress = Progress::default();
    let mut write_failed = false;
    let mut last_warning: Option<String> = None;
    let mut stop_reason: Option<String> = None;
    let mut stats = RunStats::default();

    loop {
        // The earliest thing we are waiting for.
        let now = Instant::now();
        let deadline = [
            duration_deadline.filter(|_| !stopping && kill_at.is_none()),
            kill_at,
            sigint_forward_at,
            child_exit
                .map(|(_, t)| t + OUTPUT_DRAIN)
                .filter(|_| !stopping),
        ]
        .into_iter()
        .flatten()
        .min();
        let ev = match deadline {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(now)) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(ev) => Some(ev),
                Err(_) => break,
            },
        };
        let now = Instant::now();

        match ev {
            Some(Event::Sampler(SamplerEvent::Sample(s, warnings))) => {
                for w in warnings {
                    say(&w);
                    last_warning = Some(w);
                }
                let mut s = *s;
                s.progress = progress.clone();
                stats.observe(&s);
                let tick = ledger.push(s);
                write_tick(&mut writer, &tick, &mut write_failed);
                if !settings.quiet {
                    eprintln!("{}", status_line(&tick, built.cpu_estimate));
                }
            }
            Some(Event::Sampler(SamplerEvent::Done)) => break,
            Some(Event::Child(ChildEvent::Progress(p))) => progress.merge(&p),
            Some(Event::Child(ChildEvent::OutputClosed)) => outputs_open -= 1,
            Some(Event::Child(ChildEvent::Exited(st))) => {
                child_exit = Some((st, now));
                kill_at = None;
                sigint_forward_at = None;
            }
            Some(Event::Child(ChildEvent::WaitFailed(e))) => {
                say(&format!("lost track of the command: {e}"));
                stop_reason.get_or_insert_with(|| "lost track of the command".into());
                stopping = true;
                sampler.stop();
            }
            Some(Event::Signal(sig)) => match (&child, child_exit) {
                (Some(ch), None) => {
                    if sig == SIGINT {
                        // The terminal's Ctrl-C reached the whole process group already; a
                        // SIGINT sent to carbontop alone is passed on if the child lingers.
                        sigint_forward_at.get_or_insert(now + SIGINT_FORWARD_AFTER);
                    } else if let Ok(s) = Signal::try_from(sig) {
                        ch.signal(s);
                    }
                }
                _ => {
                    stop_reason.get_or_insert_with(|| format!("stopped by signal {sig}"));
                    if !stopping {
                        stopping = true;
                        sampler.stop();
                    }
                }
            },
            None => {}
        }

        // Timers.
        if let Some(d) = duration_deadline
            && now >= d
            && !stopping
            && kill_at.is_none()
        {
            match (&child, child_exit) {
                (Some(ch), None) => {
                    stop_reason = Some("--duration reached: the command was sent SIGTERM".into());
                    ch.signal(Signal::SIGTERM);
                    kill_at = Some(now + KILL_GRACE);
                }
                _ => {
                    stop_reason.get_or_insert_with(|| "--duration reached".into());
                    stopping = true;
                    sampler.stop();
                }
            }
        }
        if let (Some(k), Some(ch)) = (kill_at, &child)
            && now >= k
            && child_exit.is_none()
        {
            say("the command ignored SIGTERM for 5 s: sending SIGKILL");
            ch.signal(Signal::SIGKILL);
            kill_at = None;
        }
        if let (Some(t), Some(ch)) = (sigint_forward_at, &child)
            && now >= t
            && child_exit.is_none()
        {
            ch.signal(Signal::SIGINT);
            sigint_forward_at = None;
        }
        if let Some((_, t)) = child_exit
            && !stopping
            && (outputs_open == 0 || now >= t + OUTPUT_DRAIN)
        {
            stopping = true;
            sampler.stop();
        }
    }
    sampler.join();
    sig_handle.close();

    let totals = ledger.totals();
    let mut notes = Vec::new();
    if let Some(r) = stop_reason {
        notes.push(r);
    }
    if let Some(w) = last_warning {
        notes.push(format!("last warning: {w}"));
    }
    if write_failed {
        notes.push("samples.csv could not be written completely (see the error above)".into());
    }
    if totals.rapl_wraps > 0 {
        notes.push(format!(
            "RAPL counter wrapped {} time(s), accounted",
            totals.rapl_wraps
        ));
    }
    let title = match cmd {
        Some(c) => format!("run `{}`", c.join(" ")),
        None => "record".into(),
    };
    let facts = RunFacts {
        title,
        interval_s: Some(settings.interval.as_secs_f64()),
        pue: settings.pue,
        sources: built.facts,
        samples_path: Some(writer.path().display().to_string()),
        gpu_measured: built.gpu_count > 0,
        last_progress: describe_progress(&progress),
        notes,
    };
    let account = stats.into_account(
        writer.path().display().to_string(),
        totals,
        settings.pue,
        built.gpu_count,
    );
    let em_path = dir.join("emissions.csv");
    if let Err(e) = emissions::append(
        &em_path,
        &account,
        &machine_meta(settings, &built.gpu_models),
    ) {
        say(&format!("cannot write {}: {e}", em_path.display()));
    }
    eprint!("{}", summary(&totals, &facts));
    if !settings.quiet {
        eprintln!("  emissions  {} (CodeCarbon format)", em_path.display());
    }

    Ok(match child_exit {
        Some((st, _)) => exit_code_of(st),
        None if child.is_some() => 1,
        None => 0,
    })
}

/// The machine facts emissions.csv wants (read once, at the end).
fn machine_meta(s: &Settings, gpu_models: &[String]) -> RunMeta {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    let zone = s
        .zone
        .as_deref()
        .and_then(crate::source::grid::table::lookup);
    RunMeta {
        project_name: "carbontop".into(),
        country: zone.map(|e| (e.code3.to_owned(), e.name.to_owned())),
        cpu_count: sys.as_ref().map(|x| x.cpus().len()),
        cpu_model: sys
            .as_ref()
            .and_then(|x| x.cpus().first().map(|c| c.brand().trim().to_owned())),
        gpu_models: gpu_models.to_vec(),
        ram_total_gb: sys.as_ref().map(|x| x.total_memory() as f64 / 1e9),
    }
}

/// Writes one row; a failure is said once and sampling goes on.
pub fn write_tick(w: &mut SamplesWriter, t: &Tick, failed: &mut bool) {
    if let Err(e) = w.write(t) {
        if !*failed {
            say(&format!(
                "cannot write {}: {e}; measuring goes on, totals stay in memory",
                w.path().display()
            ));
        }
        *failed = true;
    }
}
