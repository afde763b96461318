//! `run` and `record`: live measurement, headless.

use crate::app::caps::CapSide;
use crate::app::child::{self, Child, ChildEvent};
use crate::app::screen::{self, Screen};
use crate::app::{AppError, say};
use crate::config::Settings;
use crate::control::PowerCap;
use crate::control::nvml::NvmlCap;
use crate::control::sim::SimGpus;
use crate::engine::forecast::Slot;
use crate::engine::{Basis, Ledger, LedgerConfig, Meter, Tick};
use crate::report::emissions::{self, RunMeta};
use crate::report::samples::SamplesWriter;
pub use crate::report::summary::describe_progress;
use crate::report::summary::{RunFacts, status_line, summary};
use crate::sample::Progress;
use crate::source::cpu_estimate::CpuEstimate;
use crate::source::cpu_rapl::{RaplSource, RaplUnavailable};
use crate::source::gpu_nvml::{NvmlOpenError, NvmlSource};
use crate::source::grid::live::GridHandle;
use crate::source::mem::MemEstimate;
use crate::source::net::{NetError, SysinfoNet};
use crate::source::progress::Parser;
use crate::source::sampler::{self, Sampler, SamplerEvent, Sources};
use crate::source::{CpuSource, GpuSource};
use crate::ui::model::{Dashboard, GridInfo, Mode, RunInfo};
use crate::ui::state::{Effect, UiState};
use crate::ui::theme;
use nix::sys::signal::Signal;
use ratatui::crossterm::event::Event as CtEvent;
use signal_hook::consts::SIGINT;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc;
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
    Input(CtEvent),
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
    /// The live grid provider's shared state (forecast, staleness), when one is used.
    pub grid: Option<GridHandle>,
    /// The GPUs' power caps, or why they cannot be changed.
    pub caps: Result<Box<dyn PowerCap>, String>,
}

/// Chooses every source; notices about missing hardware are printed once here.
pub fn build_sources(s: &Settings) -> Result<Built, AppError> {
    let mut facts = Vec::new();
    let mut notices = s.warnings.clone();
    // Bad grid settings are usage errors, found before any hardware is touched; a live
    // provider's first request goes out now, while the rest starts.
    let grid = crate::source::grid::build(&s.grid).map_err(AppError::Usage)?;
    notices.extend(grid.notices);

    // GPUs and their caps: simulated, NVML, or none (and why, for the cap keys).
    let caps: Result<Box<dyn PowerCap>, String>;
    let (gpu, gpu_models): (Option<Box<dyn GpuSource>>, Vec<String>) = if let Some(n) =
        s.simulate_gpus
    {
        let sim = SimGpus::new(n, s.sim_state.clone()).map_err(AppError::Usage)?;
        facts.push((
            "GPU".into(),
            format!(
                "simulated: {n} × {} (power and speed per cap as Zeus measured, CIFAR-100/ShuffleNetV2)",
                crate::control::sim::MODEL
            ),
        ));
        notices.push(format!("GPUs are simulated ({n} × A40, --simulate-gpus)"));
        caps = Ok(Box::new(sim.actuator()));
        let src = sim.source();
        let models = src.models();
        (Some(Box::new(src)), models)
    } else if s.no_gpu {
        facts.push(("GPU".into(), "not measured (--no-gpu)".into()));
        caps = Err("--no-gpu: GPUs are not watched".into());
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
                caps = NvmlCap::open(info.iter().map(|g| g.index).collect())
                    .map(|c| Box::new(c) as Box<dyn PowerCap>);
                let models = src.models();
                (Some(Box::new(src)), models)
            }
            Err(e @ NvmlOpenError::NoSuchIndex { .. }) => {
                return Err(AppError::Usage(e.to_string()));
            }
            Err(e) => {
                let msg = e.to_string();
                notices.push(msg.clone());
                caps = Err(format!("{msg}: there is no cap to change"));
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

    let net = SysinfoNet::new(&s.net_iface, &s.sysfs_root).map_err(|e| match e {
        NetError::NoSuchInterface { .. } => AppError::Usage(e.to_string()),
        NetError::CannotList(_) => AppError::Runtime(e.to_string()),
    })?;
    facts.push((
        "network".into(),
        format!(
            "{}, {} kWh/GB (CUMULATOR; published range 0.001–0.069)",
            crate::source::NetSource::describe(&net),
            s.net_kwh_per_gb
        ),
    ));

    facts.push(("grid".into(), grid.source.describe()));

    let gpu_count = gpu_models.len();
    Ok(Built {
        sources: Sources {
            gpu,
            cpu: Some(cpu),
            mem: Some(Box::new(mem)),
            net: Some(Box::new(net)),
            grid: grid.source,
        },
        facts,
        cpu_estimate,
        gpu_count,
        gpu_models,
        notices,
        grid: grid.live,
        caps,
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
pub fn open_writer(
    dir: &std::path::Path,
    n_gpus: usize,
    metrics: &[String],
) -> Result<SamplesWriter, AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::Usage(format!("--out {}: cannot create: {e}", dir.display())))?;
    let path = dir.join("samples.csv");
    if path.exists() {
        return Err(AppError::Usage(format!(
            "--out {}: samples.csv already exists there; choose another --out (nothing was overwritten)",
            dir.display()
        )));
    }
    SamplesWriter::create(&path, n_gpus, metrics).map_err(|e| {
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

/// What a measuring command measures.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    /// `run -- CMD`: until CMD exits.
    Run(&'a [String]),
    /// `record`: this machine, writing samples.csv.
    Record,
    /// `watch`: this machine on the screen; samples.csv only with --out.
    Watch,
    /// `serve`: this machine, headless, its figures at /metrics; samples.csv only with --out.
    Serve { listen: &'a str, node: &'a str },
}

impl Job<'_> {
    fn title(&self) -> String {
        match self {
            Job::Run(c) => format!("run `{}`", c.join(" ")),
            Job::Record => "record".into(),
            Job::Watch => "watch".into(),
            Job::Serve { node, .. } => format!("serve ({node})"),
        }
    }
}

/// The screen's run facts for these settings.
fn run_info(
    s: &Settings,
    job: Job<'_>,
    built: &Built,
    samples: Option<String>,
    cap_mode: String,
) -> RunInfo {
    let zone = match (s.grid.intensity, s.grid.zone.as_deref()) {
        (Some(_), z) => format!("{} (fixed --intensity)", z.unwrap_or("—")),
        (None, _) => s.grid.zone_label(),
    };
    RunInfo {
        title: job.title(),
        zone,
        cpu_estimate: built.cpu_estimate,
        gpus: built.gpu_models.clone(),
        cap_mode,
        samples_path: samples,
        mode: Mode::Live,
    }
}

/// What this run's figures rest on besides its ticks.
fn basis(s: &Settings, built: &Built) -> Basis {
    Basis {
        pue: s.pue,
        embodied: Some(embodied_te(s, &built.gpu_models)),
        target: s.target,
        target_metric: s.target_metric.clone(),
        gpu_count: built.gpu_count,
    }
}

/// The meter: the screen's when there is one, else the headless run's own.
fn meter<'a>(screen: &'a mut Option<Screen>, own: &'a mut Meter) -> &'a mut Meter {
    match screen {
        Some(sc) => &mut sc.dash.meter,
        None => own,
    }
}

/// The TE behind embodied_co2e_g: `--embodied-kg` as given, else this machine's GPUs by model
/// and one server (the embodied table in `engine::constants`, with its published range).
fn embodied_te(s: &Settings, gpu_models: &[String]) -> crate::engine::constants::EmbodiedKg {
    use crate::engine::constants::{EmbodiedKg, machine_embodied};
    s.embodied_kg
        .map_or_else(|| machine_embodied(gpu_models, 1), EmbodiedKg::exact)
}

/// One carbontop per rank (`srun carbontop run -- python train.py`, or a launcher that wraps
/// each local rank): every copy measures the whole node, so summing their machine figures counts
/// the node once per rank (the double counting users of per-process trackers hit under SLURM).
/// Each copy's process figures (its own tree's CPU and GPU shares) do add up; the local ranks
/// other than 0 are told so. `env` reads an environment variable.
pub fn local_rank_notice(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let (var, rank) = ["SLURM_LOCALID", "LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"]
        .into_iter()
        .find_map(|k| Some((k, env(k)?.trim().parse::<u32>().ok()?)))?;
    (rank > 0).then(|| {
        format!(
            "local rank {rank} ({var}): this node's machine figures are also measured by local \
             rank 0; sum the ranks' process_cpu_w/process_gpu_w, not their machine totals, or \
             run one carbontop per node around the launcher"
        )
    })
}

/// Runs `run`, `record` or `watch`; returns the exit code.
pub fn measure(settings: &Settings, job: Job<'_>) -> Result<i32, AppError> {
    // The run's progress: built-in formats plus --metric patterns (bad ones are usage errors).
    let parser = Parser::new(&settings.metrics).map_err(AppError::Usage)?;
    if let Some(m) = &settings.target_metric
        && !parser.metric_names().contains(m)
    {
        return Err(AppError::Usage(format!(
            "--target-metric {m}: no --metric {m}=REGEX says how to read it"
        )));
    }
    crate::app::survive_file_size_limit();
    let mut built = build_sources(settings)?;
    if let Job::Run(_) = job
        && let Some(n) = local_rank_notice(|k| std::env::var(k).ok())
    {
        built.notices.push(n);
    }
    // The caps: restored when `caps` is dropped, whatever ends the run.
    let mut caps = CapSide::new(
        std::mem::replace(&mut built.caps, Err(String::new())),
        settings,
    );
    if settings.governor {
        match caps.start_governor() {
            Ok(m) => built.notices.push(m),
            // Monitoring goes on without it.
            Err(e) => built.notices.push(e),
        }
    }
    let themes = theme::resolve(settings.theme.as_deref(), theme::user_dir().as_deref())
        .map_err(AppError::Usage)?;
    let dir = match (job, &settings.out) {
        (Job::Watch | Job::Serve { .. }, None) => None,
        _ => Some(out_dir(settings)),
    };
    let mut writer = match &dir {
        Some(d) => Some(open_writer(d, built.gpu_count, &parser.metric_names())?),
        None => None,
    };
    let use_screen = screen::wanted(settings.headless || matches!(job, Job::Serve { .. }));
    let exporter = match job {
        Job::Serve { listen, node } => {
            let ex = crate::serve::Exporter::new(crate::serve::AgentInfo {
                node: node.to_owned(),
                zone: settings.grid.zone_label(),
                gpu_models: built.gpu_models.clone(),
            })
            .map_err(AppError::Runtime)?;
            let at = ex.listen(listen).map_err(AppError::Usage)?;
            say(&crate::serve::serving_line(at));
            Some(ex)
        }
        _ => None,
    };
    if !use_screen {
        for n in &built.notices {
            say(n);
        }
    }
    let mut ledger = Ledger::new(LedgerConfig {
        pue: settings.pue,
        net_kwh_per_gb: settings.net_kwh_per_gb,
        embodied_kg: embodied_te(settings, &built.gpu_models).kg,
    });

    let (tx, rx) = mpsc::channel::<Event>();
    let sig_handle = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |s| tx.send(Event::Signal(s)).is_ok())?
    };

    // Headless, the run's figures are kept here; on the screen, in its dashboard.
    let mut own_meter = Meter::new(basis(settings, &built), false);
    let mut screen = if use_screen {
        let mut dash = Dashboard::new(
            run_info(
                settings,
                job,
                &built,
                writer.as_ref().map(|w| w.path().display().to_string()),
                caps.mode(),
            ),
            Meter::new(basis(settings, &built), true),
        );
        dash.notices = built.notices.clone();
        if writer.is_none() {
            dash.notices
                .push("not recording: give --out DIR to keep samples.csv".into());
        }
        let ui = UiState::new(themes.0, themes.1, false, matches!(job, Job::Run(_)));
        let sc = Screen::start(dash, ui).map_err(AppError::Runtime)?;
        let tx = tx.clone();
        screen::spawn_input(move |e| tx.send(Event::Input(e)).is_ok())
            .map_err(AppError::Runtime)?;
        Some(sc)
    } else {
        None
    };

    let start = Instant::now();
    let grid = built.grid.clone();
    let mut grid_seen = 0u64;
    let mut grid_hint: Option<String> = None;
    let mut grid_slots: Vec<Slot> = Vec::new();
    let sampler_state = Sampler::new(built.sources);
    // The command's pid goes here once it runs: its process tree's CPU share is then read.
    let pid_slot = sampler_state.pid_slot();
    let sampler = {
        let tx = tx.clone();
        sampler::spawn(sampler_state, settings.interval, move |e| {
            tx.send(Event::Sampler(e)).is_ok()
        })
        .map_err(|e| AppError::Runtime(format!("cannot start the sampler: {e}")))?
    };

    let child = match job {
        Job::Run(c) => {
            let output = if screen.is_some() {
                // Every byte of the command's output is kept in output.log beside samples.csv.
                let log = dir
                    .as_ref()
                    .and_then(|d| std::fs::File::create(d.join("output.log")).ok());
                child::Output::Capture(log)
            } else {
                child::Output::Forward
            };
            let tx = tx.clone();
            match Child::spawn(c, output, &parser, move |e| {
                let _ = tx.send(Event::Child(e));
            }) {
                Ok(ch) => {
                    pid_slot.store(ch.id(), std::sync::atomic::Ordering::Relaxed);
                    Some(ch)
                }
                Err(e) => {
                    sampler.stop();
                    sampler.join();
                    sig_handle.close();
                    drop(screen.take());
                    return Err(AppError::Spawn(e));
                }
            }
        }
        _ => None,
    };
    if let Some(path) = &settings.metrics_file {
        let tx = tx.clone();
        crate::source::progress::follow_file(path.clone(), parser.clone(), move |p| {
            tx.send(Event::Child(ChildEvent::Progress(p))).is_ok()
        })
        .map_err(|e| AppError::Runtime(format!("--metrics-file: cannot start its reader: {e}")))?;
    }
    drop(tx);

    let duration_deadline = settings.duration.map(|d| start + d);
    let mut kill_at: Option<Instant> = None;
    let mut sigint_forward_at: Option<Instant> = None;
    let mut child_exit: Option<(ExitStatus, Instant)> = None;
    let mut outputs_open = if child.is_some() { 2 } else { 0 };
    let mut stopping = false;
    // The screen stays up after the run ends until `q`; a signal or `q` ends it for good.
    let mut leave = screen.is_none();
    let mut sampler_done = false;
    let mut progress = Progress::default();
    let mut write_failed = false;
    let mut last_warning: Option<String> = None;
    let mut stop_reason: Option<String> = None;

    loop {
        // The earliest thing we are waiting for.
        let deadline = [
            duration_deadline.filter(|_| !stopping && kill_at.is_none()),
            kill_at,
            sigint_forward_at,
            child_exit
                .map(|(_, t)| t + OUTPUT_DRAIN)
                .filter(|_| !stopping),
            screen.as_ref().and_then(|s| s.owed),
        ]
        .into_iter()
        .flatten()
        .min();
        let Ok(ev) = crate::app::recv_until(&rx, deadline) else {
            break;
        };
        let now = Instant::now();
        let running = child.is_some() && child_exit.is_none();

        match ev {
            Some(Event::Sampler(SamplerEvent::Sample(s, warnings))) => {
                for w in warnings {
                    tell(&mut screen, w.clone());
                    last_warning = Some(w);
                }
                let mut s = *s;
                // The command's own progress over what the source reports (simulated GPUs).
                s.progress.merge(&progress);
                let mut tick = ledger.push(s);
                // Cap changes made during the interval this row closes.
                tick.cap_change = caps.take_log();
                #[cfg(debug_assertions)]
                test_panic(tick.elapsed_s);
                if let Some(h) = &grid
                    && let v = h.version()
                    && v != grid_seen
                {
                    grid_seen = v;
                    let info = grid_info(h, &tick, settings.duration);
                    grid_slots = info.slots.clone();
                    let hint = info.hint();
                    if hint != grid_hint {
                        if let Some(line) = &hint
                            && screen.is_none()
                            && !settings.quiet
                        {
                            say(&format!("grid: {line}"));
                        }
                        grid_hint = hint;
                    }
                    meter(&mut screen, &mut own_meter).grid = Some(info);
                }
                meter(&mut screen, &mut own_meter).push(&tick, ledger.totals());
                if let Some(w) = writer.as_mut()
                    && let Some(e) = write_tick(w, &tick, &mut write_failed)
                {
                    tell(&mut screen, e);
                }
                if let Some(ex) = &exporter {
                    ex.update(&tick, &meter(&mut screen, &mut own_meter).snapshot());
                }
                // The governor decides for the next interval, on the forecast's mean over it
                // where the provider has one.
                let ahead = crate::engine::forecast::mean_over(
                    &grid_slots,
                    tick.timestamp,
                    chrono::TimeDelta::minutes(30),
                );
                if let Some(m) = caps.on_tick(&tick, ahead) {
                    match screen.as_mut() {
                        Some(sc) => sc.ui.flash = Some(m),
                        None if !settings.quiet => say(&m),
                        None => {}
                    }
                }
                match screen.as_mut() {
                    Some(sc) => {
                        sc.dash.info.cap_mode = caps.mode();
                        sc.dash.cap_note = caps.note();
                        sc.draw();
                    }
                    None if !settings.quiet => {
                        crate::errln!("{}", status_line(&tick, built.cpu_estimate));
                    }
                    None => {}
                }
            }
            Some(Event::Sampler(SamplerEvent::Done)) => {
                sampler_done = true;
                if leave {
                    break;
                }
                if let Some(sc) = screen.as_mut() {
                    let why = stop_reason.clone().unwrap_or_else(|| match child_exit {
                        Some((st, _)) => format!("the command exited ({})", describe_exit(st)),
                        None => "measuring stopped".into(),
                    });
                    let saved = if writer.is_some() {
                        " · samples.csv complete"
                    } else {
                        ""
                    };
                    sc.dash.ended = Some(format!("{why}{saved} · q quits"));
                    sc.draw();
                }
            }
            Some(Event::Child(ChildEvent::Progress(p))) => {
                meter(&mut screen, &mut own_meter).observe_progress(&p);
                progress.merge(&p);
            }
            Some(Event::Child(ChildEvent::Line(l))) => {
                if let Some(sc) = screen.as_mut() {
                    sc.dash.push_output(&l);
                    sc.draw_soon();
                }
            }
            Some(Event::Child(ChildEvent::OutputClosed)) => outputs_open -= 1,
            Some(Event::Child(ChildEvent::Exited(st))) => {
                child_exit = Some((st, now));
                kill_at = None;
                sigint_forward_at = None;
            }
            Some(Event::Child(ChildEvent::WaitFailed(e))) => {
                tell(&mut screen, format!("lost track of the command: {e}"));
                stop_reason.get_or_insert_with(|| "lost track of the command".into());
                stopping = true;
                sampler.stop();
            }
            Some(Event::Signal(sig)) => {
                // A signal ends carbontop for good, screen or not.
                leave = true;
                match (&child, child_exit) {
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
                }
                if sampler_done {
                    break;
                }
            }
            Some(Event::Input(e)) => {
                if let Some(sc) = screen.as_mut() {
                    let effect = match e {
                        CtEvent::Key(k) => sc.ui.handle_key(k, &sc.dash, running),
                        _ => None,
                    };
                    match effect {
                        Some(Effect::Quit) | Some(Effect::Interrupt) if sampler_done => break,
                        Some(Effect::Quit) => {
                            leave = true;
                            match &child {
                                Some(ch) if running => {
                                    stop_reason = Some(
                                        "quit from the screen: the command was sent SIGTERM".into(),
                                    );
                                    ch.signal(Signal::SIGTERM);
                                    kill_at.get_or_insert(now + KILL_GRACE);
                                    sc.dash.warn("stopping the command (SIGTERM)…".into());
                                }
                                _ => {
                                    stop_reason
                                        .get_or_insert_with(|| "quit from the screen".into());
                                    stopping = true;
                                    sampler.stop();
                                }
                            }
                        }
                        Some(Effect::Cap(k, target)) => {
                            sc.ui.flash = Some(caps.key(k, target));
                            sc.dash.info.cap_mode = caps.mode();
                        }
                        Some(Effect::ToggleGovernor) => {
                            sc.ui.flash = Some(caps.toggle_governor());
                            sc.dash.info.cap_mode = caps.mode();
                            sc.dash.cap_note = caps.note();
                        }
                        Some(Effect::Export) => {
                            let meta = machine_meta(settings, &built.gpu_models);
                            screen::export(sc, dir.as_deref().unwrap_or(Path::new(".")), &meta);
                        }
                        Some(Effect::Interrupt) => match &child {
                            Some(ch) if running => {
                                // What Ctrl-C would have done without the screen.
                                ch.signal(Signal::SIGINT);
                                sc.dash.warn("Ctrl-C: SIGINT sent to the command".into());
                            }
                            _ => {
                                leave = true;
                                stop_reason.get_or_insert_with(|| "quit from the screen".into());
                                stopping = true;
                                sampler.stop();
                            }
                        },
                        _ => {}
                    }
                    sc.draw();
                }
            }
            None => {}
        }
        if let Some(sc) = screen.as_mut() {
            sc.pay_owed();
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
            tell(
                &mut screen,
                "the command ignored SIGTERM for 5 s: sending SIGKILL".into(),
            );
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
    let snap = meter(&mut screen, &mut own_meter).snapshot();
    // Give the terminal back before anything is printed.
    drop(screen.take());

    let mut notes = Vec::new();
    notes.extend(caps.finish());
    if let Some(r) = stop_reason {
        notes.push(r);
    }
    if let Some((st, _)) = child_exit
        && !st.success()
    {
        notes.push(format!("the command ended: {}", describe_exit(st)));
    }
    if let Some(w) = last_warning {
        notes.push(format!("last warning: {w}"));
    }
    if let Some(h) = grid_hint {
        notes.push(h);
    }
    if let Some(n) = writer.as_mut().and_then(finish_writer) {
        notes.push(n);
    }
    if use_screen
        && matches!(job, Job::Run(_))
        && let Some(d) = &dir
    {
        notes.push(format!(
            "the command's output is in {}",
            d.join("output.log").display()
        ));
    }
    let samples_path = writer.as_ref().map(|w| w.path().display().to_string());
    let facts = RunFacts {
        title: job.title(),
        interval_s: Some(settings.interval.as_secs_f64()),
        sources: built.facts,
        samples_path: samples_path.clone(),
        notes,
    };
    match (samples_path, &dir) {
        (Some(file), Some(d)) => {
            let em_path = d.join("emissions.csv");
            let meta = machine_meta(settings, &built.gpu_models);
            if let Err(e) = emissions::append(&em_path, &file, &snap, &meta) {
                say(&format!("cannot write {}: {e}", em_path.display()));
            }
            crate::app::err_out(&summary(&snap, &facts));
            if !settings.quiet {
                crate::errln!("  emissions  {} (CodeCarbon format)", em_path.display());
            }
        }
        _ => crate::app::err_out(&summary(&snap, &facts)),
    }

    Ok(match child_exit {
        Some((st, _)) => exit_code_of(st),
        None if child.is_some() => 1,
        None => 0,
    })
}

/// A live provider's state for the screen: the forecast ahead of this tick and the window the
/// hint looks at (what is left of --duration, else an hour; at least 30 min).
fn grid_info(h: &GridHandle, t: &Tick, duration: Option<Duration>) -> GridInfo {
    let v = h.view(t.timestamp);
    let left = duration.map(|d| d.as_secs_f64() - t.elapsed_s);
    let window =
        chrono::TimeDelta::seconds(left.map_or(3600.0, |s| s.max(1800.0)).min(86_400.0) as i64);
    let slots = v
        .ahead
        .iter()
        .map(|p| Slot {
            from: p.from,
            to: p.to,
            g_per_kwh: p.g_per_kwh,
        })
        .collect();
    GridInfo::new(v.label, v.failure, v.detail, slots, t.timestamp, window)
}

/// Fault injection for the tests of cap restoration (debug builds only): panics once the run
/// has lasted `CARBONTOP_TEST_PANIC_AFTER` seconds.
#[cfg(debug_assertions)]
fn test_panic(elapsed_s: f64) {
    if let Some(after) = std::env::var("CARBONTOP_TEST_PANIC_AFTER")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        && elapsed_s >= after
    {
        panic!("CARBONTOP_TEST_PANIC_AFTER={after}: a deliberate panic");
    }
}

/// A warning: on the screen's status line when there is one, else on stderr.
fn tell(screen: &mut Option<Screen>, msg: String) {
    match screen.as_mut() {
        Some(sc) => sc.dash.warn(msg),
        None => say(&msg),
    }
}

/// "status 0", "killed by signal 15".
fn describe_exit(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => match Signal::try_from(s) {
            Ok(name) => format!("killed by signal {s} ({name})"),
            Err(_) => format!("killed by signal {s}"),
        },
        _ => "unknown status".into(),
    }
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
        .grid
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

/// Writes one row. The first failure returns the message to say (once); sampling goes on.
/// Writes one tick; a line to show when the disk starts refusing rows (once per outage) and
/// when it takes them again. `failing` is the outage in progress.
pub fn write_tick(w: &mut SamplesWriter, t: &Tick, failing: &mut bool) -> Option<String> {
    match w.write(t) {
        Err(e) if !*failing => {
            *failing = true;
            Some(format!(
                "cannot write {}: {e}; measuring goes on, the rows are held in memory and \
                 written once the disk takes them",
                w.path().display()
            ))
        }
        Ok(()) if *failing => {
            *failing = false;
            Some(format!(
                "{} is writable again: every held row is written",
                w.path().display()
            ))
        }
        _ => None,
    }
}

/// At the end of a run: one last try to write the held rows, then, if the disk still refuses
/// them, a copy of them in the temporary directory, so nothing recorded is lost. A line for
/// the summary when anything was held or given up.
pub fn finish_writer(w: &mut SamplesWriter) -> Option<String> {
    let dropped = w.dropped_rows();
    let tail = (dropped > 0).then(|| {
        format!(
            " ({dropped} rows beyond the {} MiB held in memory were lost)",
            crate::report::samples::MAX_HELD_BYTES >> 20
        )
    });
    if w.drain().is_ok() {
        return tail.map(|t| format!("samples.csv is complete up to the outage{t}"));
    }
    let held = w.held_rows();
    let spare = std::env::temp_dir().join(format!(
        "carbontop-unsaved-{}-{}.csv",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    ));
    Some(match w.save_held_to(&spare) {
        Ok(n) => format!(
            "the disk refused the last {n} rows of {}: they are saved in {} (same columns; \
             append them after the last whole row){}",
            w.path().display(),
            spare.display(),
            tail.unwrap_or_default()
        ),
        Err(e) => format!(
            "the disk refused the last {held} rows of {} and {} could not be written either \
             ({e}): those rows are lost{}",
            w.path().display(),
            spare.display(),
            tail.unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_ranks_above_zero_are_told_about_double_counting() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_owned())
        };
        assert_eq!(local_rank_notice(env(&[])), None);
        assert_eq!(local_rank_notice(env(&[("SLURM_LOCALID", "0")])), None);
        let n = local_rank_notice(env(&[("SLURM_LOCALID", "3")])).unwrap();
        assert!(n.starts_with("local rank 3 (SLURM_LOCALID)"), "{n}");
        let n = local_rank_notice(env(&[("LOCAL_RANK", "1")])).unwrap();
        assert!(n.contains("(LOCAL_RANK)"), "{n}");
        assert_eq!(local_rank_notice(env(&[("LOCAL_RANK", "x")])), None);
    }
}
