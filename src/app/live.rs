//! `run`, `record`, `watch` and `serve`: live measurement. Sets up the sources, the outputs and
//! the Session, runs the one driver loop (`drive.rs`), and prints the summary.

use crate::app::caps::CapSide;
use crate::app::child::{self, Child, ChildEvent};
use crate::app::drive::{Io, Output, Raw, drive};
use crate::app::feed::Feed;
use crate::app::screen::{self, Screen};
use crate::app::session::{Session, SessionConfig, exit_code_of};
use crate::app::{AppError, say};
use crate::config::Settings;
use crate::control::PowerCap;
use crate::control::sim::SimGpus;
use crate::engine::constants::{NVML_POWER_ERROR, RAPL_ERROR};
use crate::engine::embodied::{Holding, Share};
use crate::engine::{Bands, Basis, Ledger, LedgerConfig, Meter, Tick};
use crate::report::emissions;
use crate::report::run_file::{self, Embodied, GpuId, Machine, RunFile};
use crate::report::samples::SamplesWriter;
use crate::report::summary::{RunFacts, summary};
use crate::source::cpu_estimate::CpuEstimate;
use crate::source::cpu_rapl::{RaplSource, RaplUnavailable};
use crate::source::gpu_nvml::{NvmlOpenError, NvmlSource, Which};
use crate::source::grid::live::GridHandle;
use crate::source::host::HostFacts;
use crate::source::net::{NetError, ProcNet};
use crate::source::progress::Parser;
use crate::source::sampler::{self, Sampler, SamplerHandle, Sources};
use crate::source::{CpuSource, GpuSource};
use crate::ui::model::{Dashboard, Mode, RunInfo};
use crate::ui::state::UiState;
use crate::ui::theme;
use crate::units::Pue;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

/// The sources chosen for these settings, and what to say about them.
pub struct Built {
    pub sources: Sources,
    pub facts: Vec<(String, String)>,
    pub cpu_estimate: bool,
    pub gpu_count: usize,
    pub gpu_models: Vec<String>,
    /// Each GPU's number (NVML's index), UUID, model and MIG share: samples.csv's column
    /// groups and run.json's map.
    pub gpu_ids: Vec<GpuId>,
    /// The part of each GPU the run holds (1; a MIG job's slices of its card), for its
    /// embodied carbon.
    pub gpu_held: Vec<f64>,
    /// The run's share of the server, for its embodied carbon.
    pub share: Share,
    /// Each component's band (measurement error or estimate range).
    pub bands: Bands,
    /// Missing hardware and fallbacks, said once the settings are known to be good.
    pub notices: Vec<String>,
    /// The live grid provider's shared state (forecast, staleness), when one is used.
    pub grid: Option<GridHandle>,
    /// The GPUs' power caps, or why they cannot be changed.
    pub caps: Result<Box<dyn PowerCap>, String>,
}

/// Chooses every source; notices about missing hardware are printed once here. `run` counts
/// only the GPUs its job was given (`source::gpu_nvml::Which::Job`).
pub fn build_sources(s: &Settings, run: bool) -> Result<Built, AppError> {
    let mut facts = Vec::new();
    let mut notices = s.warnings.clone();
    // Bad grid settings are usage errors, found before any hardware is touched; a live
    // provider's first request goes out now, while the rest starts.
    let grid = crate::source::grid::build(&s.grid).map_err(|e| AppError::Usage(e.to_string()))?;
    notices.extend(grid.notices);

    let gpus = choose_gpus(s, run, &mut facts, &mut notices)?;
    let (cpu, cpu_estimate) = choose_cpu(s, &mut notices)?;
    facts.push(("CPU".into(), cpu.describe()));

    let proc_root = std::path::Path::new("/proc");
    let (mem, _) = crate::source::mem::detect(
        &s.sysfs_root,
        proc_root,
        crate::source::cpu_estimate::is_vm(proc_root),
    )
    .map_err(AppError::Runtime)?;
    facts.push(("memory".into(), mem.describe()));

    let net = ProcNet::new(&s.net_iface, &s.sysfs_root, proc_root).map_err(|e| match e {
        NetError::NoSuchInterface { .. } => AppError::Usage(e.to_string()),
        NetError::CannotList(_) => AppError::Runtime(e.to_string()),
    })?;
    facts.push(("network".into(), describe_network(s, &net)));
    let rdma = crate::source::rdma::RdmaPorts::probe(&s.sysfs_root, proc_root);
    if let Some(r) = &rdma {
        facts.push(("RDMA".into(), describe_rdma(s, r)));
    }

    facts.push(("grid".into(), grid.source.describe()));

    let gpu_count = gpus.models.len();
    let share = server_share(s, gpu_count, gpus.on_server.max(gpu_count));
    let bands = Bands {
        gpu: Bands::pm(NVML_POWER_ERROR),
        cpu: if cpu_estimate {
            (1.0, 1.0)
        } else {
            Bands::pm(RAPL_ERROR)
        },
        // An estimate's band comes with each reading; RAPL's DRAM counter is measured.
        mem: if mem.band().is_none() {
            Bands::pm(RAPL_ERROR)
        } else {
            (1.0, 1.0)
        },
    };
    let mig_held = gpus.held.iter().any(|h| *h < 1.0);
    facts.push((
        "embodied".into(),
        describe_embodied(s, gpu_count, mig_held, &share),
    ));
    Ok(Built {
        sources: Sources {
            gpu: gpus.source,
            cpu: Some(cpu),
            mem: Some(mem),
            net: Some(Box::new(net)),
            grid: grid.source,
            cluster: s.cluster_cidr.clone(),
            rdma,
        },
        facts,
        cpu_estimate,
        gpu_count,
        gpu_models: gpus.models,
        gpu_ids: gpus.ids,
        gpu_held: gpus.held,
        share,
        bands,
        notices,
        grid: grid.live,
        caps: gpus.caps,
    })
}

/// The GPUs chosen: their source, models, caps (or why there are none to change) and how many
/// the server has (NVML's count, for the embodied share; the simulated ones are all).
struct Gpus {
    source: Option<Box<dyn GpuSource>>,
    models: Vec<String>,
    caps: Result<Box<dyn PowerCap>, String>,
    on_server: usize,
    ids: Vec<GpuId>,
    held: Vec<f64>,
}

/// GPUs and their caps: simulated, NVML, or none (and why, for the cap keys).
fn choose_gpus(
    s: &Settings,
    run: bool,
    facts: &mut Vec<(String, String)>,
    notices: &mut Vec<String>,
) -> Result<Gpus, AppError> {
    if let Some(n) = s.simulate_gpus {
        let sim =
            SimGpus::new(n, s.sim_state.clone()).map_err(|e| AppError::Usage(e.to_string()))?;
        facts.push((
            "GPU".into(),
            format!(
                "simulated: {n} × {} (power and speed per cap as Zeus measured, CIFAR-100/ShuffleNetV2)",
                crate::control::sim::MODEL
            ),
        ));
        notices.push(format!("GPUs are simulated ({n} × A40, --simulate-gpus)"));
        let src = sim.source();
        return Ok(Gpus {
            ids: (0..n as u32)
                .map(|index| GpuId {
                    index,
                    name: crate::control::sim::MODEL.into(),
                    ..GpuId::default()
                })
                .collect(),
            held: vec![1.0; n],
            models: src.models(),
            source: Some(Box::new(src)),
            caps: Ok(Box::new(sim.actuator())),
            on_server: 0,
        });
    }
    let none = |caps: String| Gpus {
        source: None,
        models: vec![],
        caps: Err(caps),
        on_server: 0,
        ids: vec![],
        held: vec![],
    };
    if s.no_gpu {
        facts.push(("GPU".into(), "not measured (--no-gpu)".into()));
        return Ok(none("--no-gpu: GPUs are not watched".into()));
    }
    let env = |k: &str| std::env::var(k).ok();
    let which = if !s.gpu_index.is_empty() {
        Which::Indices(&s.gpu_index)
    } else if run && !s.all_gpus {
        Which::Job(&env)
    } else {
        Which::All
    };
    match NvmlSource::open(which) {
        Ok(src) => {
            let info = src.info();
            let counters = info.iter().filter(|g| g.has_energy_counter).count();
            let mut fact = format!(
                "NVML (measured): {} × {}; energy counter on {counters}, power trapezoid on the rest",
                info.len(),
                info.first().map(|g| g.name.as_str()).unwrap_or("GPU")
            );
            if let Some(why) = src.selection() {
                notices.push(why.to_owned());
                fact = format!("{fact}; {why}");
            }
            facts.push(("GPU".into(), fact));
            // A MIG card's cap is the whole card's: it would slow the other instances' jobs.
            let caps = match info.iter().find(|g| g.mig.is_some()) {
                Some(g) => Err(format!(
                    "GPU {} is shared through MIG: its power cap is the whole card's, other \
                     instances' too, so carbontop leaves caps alone",
                    g.index
                )),
                None => {
                    let ids: Vec<_> = info.iter().map(|g| (g.index, g.uuid.clone())).collect();
                    let (caps, via) = crate::control::capd::open_caps(&ids, s.restore_caps);
                    if let Some(via) = via {
                        notices.push(format!("caps {via}"));
                        facts.push(("GPU caps".into(), via));
                    }
                    caps
                }
            };
            Ok(Gpus {
                ids: info
                    .iter()
                    .map(|g| GpuId {
                        index: g.index,
                        uuid: g.uuid.clone(),
                        name: g.name.clone(),
                        mig: g.mig.as_ref().map(crate::engine::mig::label),
                    })
                    .collect(),
                held: info
                    .iter()
                    .map(|g| g.mig.as_ref().map_or(1.0, crate::engine::mig::share))
                    .collect(),
                models: src.models(),
                on_server: src.machine_gpus(),
                source: Some(Box::new(src)),
                caps,
            })
        }
        Err(e @ NvmlOpenError::NoSuchIndex { .. }) => Err(AppError::Usage(e.to_string())),
        Err(e) => {
            let msg = e.to_string();
            notices.push(msg.clone());
            facts.push(("GPU".into(), msg.clone()));
            Ok(none(format!("{msg}: there is no cap to change")))
        }
    }
}

/// RAPL where readable, else the estimate (and why, said once); true when it is the estimate.
fn choose_cpu(
    s: &Settings,
    notices: &mut Vec<String>,
) -> Result<(Box<dyn CpuSource>, bool), AppError> {
    match RaplSource::probe(&s.sysfs_root) {
        Ok(r) => Ok((Box::new(r), false)),
        Err(why) => {
            notices.push(if matches!(why, RaplUnavailable::PermissionDenied(_)) {
                format!("{why}; using the CPU estimate meanwhile")
            } else {
                format!("CPU power is an estimate: {why}")
            });
            let est = CpuEstimate::new(s.cpu_tdp, why.to_string(), &s.sysfs_root)
                .map_err(AppError::Runtime)?;
            Ok((Box::new(est), true))
        }
    }
}

/// The sources line for embodied carbon: what is charged, and the server share's basis.
fn describe_embodied(s: &Settings, gpu_count: usize, mig: bool, share: &Share) -> String {
    match s.embodied_kg {
        Some(kg) => format!("{kg} kg CO2e charged (--embodied-kg), over a 6-year life"),
        None if gpu_count > 0 => format!(
            "{gpu_count} GPU(s) {} + the server (2,500 kg, BLOOM) × {}; 6-year life",
            if mig {
                "(a MIG card by the job's slices of it, the others whole)"
            } else {
                "whole"
            },
            share.basis
        ),
        None => format!(
            "the server (2,500 kg, BLOOM) × {}; 6-year life",
            share.basis
        ),
    }
}

/// How the RDMA ports are costed and attributed.
fn describe_rdma(s: &Settings, r: &crate::source::rdma::RdmaPorts) -> String {
    let (ports, known, gbps) = r.links();
    let b = s.port.bound_rdma(ports, known, gbps);
    format!(
        "{} (InfiniBand/RoCE port counters × 4 octets); cluster traffic on the port model: \
         adapter + switch port ≤ {:.1} W at line rate{} (band {:.1}–{:.1} W); the command's \
         only while it alone holds an RDMA device (/dev/infiniband/uverbs*) open",
        r.describe(),
        b.w,
        if b.assumed {
            format!(
                ", {} Gb/s assumed where the rate is unknown",
                crate::engine::constants::ASSUMED_RDMA_GBPS
            )
        } else {
            String::new()
        },
        b.low_w,
        b.high_w
    )
}

/// How the network is costed: the counted interfaces, the port model's bound for them (the
/// link class assumed where the speed is unknown, said so), and the internet model.
fn describe_network(s: &Settings, net: &ProcNet) -> String {
    let links = net.links();
    let b = s.port.bound(Some(links));
    let speed = if b.assumed {
        format!(
            "link speed unknown for {} interface(s): {} Gb/s assumed (--net-link-gbps)",
            links.unknown.max(1),
            s.port.assumed_gbps
        )
    } else {
        format!("{} Gb/s", b.gbps)
    };
    let cidrs: Vec<String> = s.cluster_cidr.iter().map(ToString::to_string).collect();
    format!(
        "{}; port model: NIC + switch port ≤ {:.1} W at line rate ({}; band {:.1}–{:.1} W); \
         run's own TCP traffic by socket (sock_diag), cluster = private, link-local, CGNAT, ULA{}; \
         internet path {} kWh/GB (Aslan et al. 2018 trend; range 0.001–0.069), apart from this \
         machine's energy",
        crate::source::NetSource::describe(net),
        b.w,
        speed,
        b.low_w,
        b.high_w,
        if cidrs.is_empty() {
            String::new()
        } else {
            format!(", {}", cidrs.join(", "))
        },
        s.net_kwh_per_gb
    )
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
    gpu_ids: &[u32],
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
    SamplesWriter::create(&path, gpu_ids, metrics).map_err(|e| {
        AppError::Usage(format!(
            "--out {}: cannot write samples.csv: {e}",
            dir.display()
        ))
    })
}

/// What a measuring command measures.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    /// `run -- CMD`: until CMD exits.
    Run(&'a [String]),
    /// `record`: this machine, writing samples.csv; with a SLURM job, that job's share of it.
    Record(Option<&'a crate::source::process::SlurmJob>),
    /// `watch`: this machine on the screen; samples.csv only with --out.
    Watch,
    /// `serve`: this machine, headless, its figures at /metrics; samples.csv only with --out.
    Serve { listen: &'a str, node: &'a str },
}

impl Job<'_> {
    fn title(&self) -> String {
        match self {
            Job::Run(c) => format!("run `{}`", c.join(" ")),
            Job::Record(None) => "record".into(),
            Job::Record(Some(j)) => format!("record SLURM job {}", j.id()),
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
        pue: Pue::saturating(s.pue),
        embodied: Some(embodied_te(s, built)),
        target: s.target,
        target_metric: s.target_metric.clone(),
        gpu_count: built.gpu_count,
        bands: built.bands,
    }
}

/// The TE behind embodied_co2e_g: `--embodied-kg` as given, else the GPUs in use by model and
/// the run's share of the server (`engine::embodied`, each with its published range).
fn embodied_te(s: &Settings, built: &Built) -> crate::engine::constants::EmbodiedKg {
    use crate::engine::constants::EmbodiedKg;
    s.embodied_kg.map_or_else(
        || {
            let held: Vec<(&str, f64)> = built
                .gpu_models
                .iter()
                .enumerate()
                .map(|(i, m)| (m.as_str(), built.gpu_held.get(i).copied().unwrap_or(1.0)))
                .collect();
            crate::engine::embodied::scoped_te_held(&held, &built.share)
        },
        EmbodiedKg::exact,
    )
}

/// The run's share of the server, from what the machine and the user say.
fn server_share(s: &Settings, gpus_used: usize, gpus_on_server: usize) -> Share {
    let host = HostFacts::detect(&s.sysfs_root);
    crate::engine::embodied::server_share(&Holding {
        gpus_used,
        gpus_on_server,
        visible_threads: host.visible_threads,
        online_threads: host.online_threads,
        virtual_machine: host.virtual_machine,
        host_threads: s.host_threads,
        share: s.embodied_share,
    })
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

/// `run`, `record`, `watch`, `serve`: measures until the command ends, `--duration`, a signal
/// or `q`; prints the summary; returns the exit code (the command's, for `run`).
pub fn live(settings: &Settings, job: Job<'_>) -> Result<i32, AppError> {
    let parser = progress_parser(settings)?;
    crate::app::survive_file_size_limit();
    let (mut p, sources) = prepare(settings, job, &parser)?;
    let (tx, rx) = mpsc::channel::<Raw>();
    let sig_handle = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |s| tx.send(Raw::Signal(s)).is_ok())?
    };
    let out = match p.ui.take() {
        Some(ui) => {
            let sc = Screen::start(&p.dash, ui).map_err(AppError::Runtime)?;
            let tx = tx.clone();
            screen::spawn_input(move |e| tx.send(Raw::Input(e)).is_ok())
                .map_err(AppError::Runtime)?;
            Output::Screen(Box::new(sc))
        }
        None => Output::Headless {
            quiet: settings.quiet,
            cpu_estimate: p.dash.info.cpu_estimate,
        },
    };
    let start = Instant::now();
    let screen = matches!(out, Output::Screen(_));
    let (sampler, child) = match start_threads(settings, job, sources, &p, screen, &parser, &tx) {
        Ok(t) => t,
        Err(e) => {
            sig_handle.close();
            drop(out);
            if let AppError::Spawn(_) = e {
                discard_unstarted(p);
            }
            return Err(e);
        }
    };
    drop(tx);
    let cfg = SessionConfig {
        screen,
        child: child.is_some(),
        duration_s: settings.duration.map(|d| d.as_secs_f64()),
        recording: p.writer.is_some(),
        hold: false,
    };
    let mut session = Session::new(p.dash, p.ledger, p.caps, cfg);
    if let Some(h) = p.grid.clone() {
        // Rows sampled before the provider's first answer wait for it, priced at their time.
        session.price_with(Box::new(move |t| h.intensity(t)));
    }
    let feed = Feed::Sampler(sampler);
    let mut io = Io::new(rx, start, out, feed);
    (io.child, io.grid, io.writer, io.exporter) = (child, p.grid, p.writer, p.exporter);
    io.export_dir = p.end.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    io.meta = {
        let meta = p.end.run.meta(None);
        Box::new(move || meta.clone())
    };
    drive(&mut session, &mut io)?;
    let Io {
        feed,
        out,
        writer,
        child,
        ..
    } = io;
    feed.join();
    sig_handle.close();
    // Give the terminal back before anything is printed.
    drop(out);
    let mut end = p.end;
    // Whatever ended the run: the job's processes it leaves behind are named.
    end.left_running = child.as_ref().and_then(Child::survivors);
    finish(settings, job, session, writer, end, screen)
}

/// A command that could not start measured nothing: its samples.csv (the header alone),
/// run.json and empty output.log go, and the directory if this run made it, so the same
/// `--out` can be used again (issue 20: the header-only file blocked the rerun).
fn discard_unstarted(p: Prepared) {
    if let Some(w) = p.writer {
        let path = w.path().to_path_buf();
        drop(w);
        let _ = std::fs::remove_file(path);
    }
    if let Some(d) = &p.end.dir {
        let _ = std::fs::remove_file(d.join("run.json"));
        let log = d.join("output.log");
        if std::fs::metadata(&log).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(log);
        }
        if p.end.made_dir {
            // Only when empty: anything else in it is not this run's.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The run's progress parser: the built-in formats plus --metric patterns (bad ones are usage
/// errors), and the --target-metric among them.
fn progress_parser(s: &Settings) -> Result<Parser, AppError> {
    let parser = Parser::new(&s.metrics).map_err(AppError::Usage)?;
    if let Some(m) = &s.target_metric
        && !parser.metric_names().contains(m)
    {
        return Err(AppError::Usage(format!(
            "--target-metric {m}: no --metric {m}=REGEX says how to read it"
        )));
    }
    Ok(parser)
}

/// Everything a live run needs before its threads start.
struct Prepared {
    dash: Dashboard,
    /// The screen's state, when the screen is the output.
    ui: Option<UiState>,
    ledger: Ledger,
    caps: CapSide,
    writer: Option<SamplesWriter>,
    exporter: Option<crate::serve::Exporter>,
    grid: Option<GridHandle>,
    end: RunEnd,
}

/// What the summary and emissions.csv need at the end of a run beside its Snapshot.
struct RunEnd {
    /// The run's directory (samples.csv, emissions.csv, output.log), when it records.
    dir: Option<PathBuf>,
    /// (component, how it was measured), for the summary's sources.
    facts: Vec<(String, String)>,
    /// What run.json holds (written beside samples.csv at the start).
    run: RunFile,
    /// `dir` did not exist before this run.
    made_dir: bool,
    /// The command's processes still running when carbontop ended, as the summary names them.
    left_running: Option<String>,
}

/// `run`'s workload name for the governor's saved profile: its script (the first argument
/// naming a .py or .sh file), else the command's name.
fn workload_of(cmd: &[String]) -> Option<String> {
    let base = |a: &String| {
        std::path::Path::new(a)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
    };
    cmd.iter()
        .skip(1)
        .find(|a| a.ends_with(".py") || a.ends_with(".sh"))
        .and_then(base)
        .or_else(|| cmd.first().and_then(base))
}

/// Chooses the sources, the caps, samples.csv, /metrics and the output; says the notices.
fn prepare(s: &Settings, job: Job<'_>, parser: &Parser) -> Result<(Prepared, Sources), AppError> {
    // A command's or a SLURM job's own GPUs (the ones SLURM gave the job).
    let mut built = build_sources(s, matches!(job, Job::Run(_) | Job::Record(Some(_))))?;
    if let Job::Run(_) = job
        && let Some(n) = local_rank_notice(|k| std::env::var(k).ok())
    {
        built.notices.push(n);
    }
    // The caps: restored when `caps` is dropped, whatever ends the run.
    let mut caps = CapSide::new(std::mem::replace(&mut built.caps, Err(String::new())), s);
    let workload = match job {
        Job::Run(cmd) => s.workload.clone().or_else(|| workload_of(cmd)),
        _ => s.workload.clone(),
    };
    // Simulated GPUs keep profiles only where CARBONTOP_PROFILE_DIR says (tests, demos):
    // their curve is Zeus's, not worth a file in the user's home.
    let var = |k: &str| {
        let sim_home = s.simulate_gpus.is_some() && k != "CARBONTOP_PROFILE_DIR";
        (!sim_home).then(|| std::env::var(k).ok()).flatten()
    };
    if let (Some(w), Some(gpu), Some(dir)) = (
        workload,
        built.gpu_models.first(),
        crate::control::profile::dir(var),
    ) {
        caps.keep_profiles(crate::control::profile::path(&dir, gpu, &w), gpu, &w);
    }
    if s.governor {
        // Monitoring goes on without it.
        built
            .notices
            .push(caps.start_governor().unwrap_or_else(|e| e));
    }
    let themes = theme::resolve(s.theme.as_deref(), theme::user_dir().as_deref())
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let dir = match (job, &s.out) {
        (Job::Watch | Job::Serve { .. }, None) => None,
        _ => Some(out_dir(s)),
    };
    let made_dir = dir.as_ref().is_some_and(|d| !d.exists());
    let writer = match &dir {
        Some(d) => Some(open_writer(
            d,
            &built.gpu_ids.iter().map(|g| g.index).collect::<Vec<_>>(),
            &parser.metric_names(),
        )?),
        None => None,
    };
    let run = run_file(s, job, &built, dir.as_deref());
    if let Some(d) = &dir
        && let Err(e) = run_file::write(d, &run)
    {
        built.notices.push(format!(
            "cannot write {}: {e}",
            d.join("run.json").display()
        ));
    }
    let use_screen = screen::wanted(s.headless || matches!(job, Job::Serve { .. }));
    let exporter = match job {
        Job::Serve { listen, node } => Some(start_exporter(s, listen, node, &built)?),
        _ => None,
    };
    if !use_screen {
        for n in &built.notices {
            say(n);
        }
    }
    let samples = writer.as_ref().map(|w| w.path().display().to_string());
    let mut dash = Dashboard::new(
        run_info(s, job, &built, samples, caps.mode()),
        Meter::new(basis(s, &built), use_screen),
    );
    dash.notices = built.notices.clone();
    if writer.is_none() {
        dash.notices
            .push("not recording: give --out DIR to keep samples.csv".into());
    }
    let ledger = Ledger::new(LedgerConfig {
        pue: Pue::saturating(s.pue),
        net_kwh_per_gb: s.net_kwh_per_gb,
        port: s.port,
        embodied_kg: embodied_te(s, &built).kg,
    });
    let p = Prepared {
        ui: use_screen.then(|| UiState::new(themes.0, themes.1, false, matches!(job, Job::Run(_)))),
        dash,
        ledger,
        caps,
        writer,
        exporter,
        grid: built.grid,
        end: RunEnd {
            dir,
            facts: built.facts,
            run,
            made_dir,
            left_running: None,
        },
    };
    Ok((p, built.sources))
}

/// `serve`: /metrics, listening.
fn start_exporter(
    s: &Settings,
    listen: &str,
    node: &str,
    built: &Built,
) -> Result<crate::serve::Exporter, AppError> {
    let ex = crate::serve::Exporter::new(crate::serve::AgentInfo {
        node: node.to_owned(),
        zone: s.grid.zone_label(),
        gpu_models: built.gpu_models.clone(),
        gpu_uuids: built.gpu_ids.iter().map(|g| g.uuid.clone()).collect(),
        replay_speed: None,
    })
    .map_err(|e| AppError::Runtime(e.to_string()))?;
    let at = ex
        .listen(listen)
        .map_err(|e| AppError::Usage(e.to_string()))?;
    say(&crate::serve::serving_line(at));
    Ok(ex)
}

/// Starts the sampler, the command (its output to the pane and output.log on the screen,
/// forwarded headless) and the --metrics-file follower, each sending to `tx`.
fn start_threads(
    s: &Settings,
    job: Job<'_>,
    sources: Sources,
    p: &Prepared,
    screen: bool,
    parser: &Parser,
    tx: &mpsc::Sender<Raw>,
) -> Result<(SamplerHandle, Option<Child>), AppError> {
    let mut sampler_state = Sampler::new(sources);
    if let Job::Record(Some(j)) = job {
        sampler_state.watch(crate::source::process::ProcessTree::slurm_job(
            j.clone(),
            "/proc".into(),
        ));
    }
    // The command's pid goes here once it runs: its process tree's CPU share is then read.
    let pid_slot = sampler_state.pid_slot();
    let sampler = {
        let tx = tx.clone();
        sampler::spawn(sampler_state, s.interval, move |e| {
            tx.send(Raw::Sampler(e)).is_ok()
        })
        .map_err(|e| AppError::Runtime(format!("cannot start the sampler: {e}")))?
    };
    let child = match job {
        Job::Run(c) => {
            let output = if screen {
                // Every byte of the command's output is kept in output.log beside samples.csv.
                let log = p
                    .end
                    .dir
                    .as_ref()
                    .and_then(|d| std::fs::File::create(d.join("output.log")).ok());
                child::Output::Capture(log)
            } else {
                child::Output::Forward
            };
            let tx = tx.clone();
            match Child::spawn(c, output, parser, move |e| {
                let _ = tx.send(Raw::Child(e));
            }) {
                Ok(ch) => {
                    pid_slot.store(ch.id(), std::sync::atomic::Ordering::Relaxed);
                    Some(ch)
                }
                Err(e) => {
                    sampler.stop();
                    sampler.join();
                    return Err(AppError::Spawn(e));
                }
            }
        }
        _ => None,
    };
    if let Some(path) = &s.metrics_file {
        let tx = tx.clone();
        crate::source::progress::follow_file(path.clone(), parser.clone(), move |pr| {
            tx.send(Raw::Child(ChildEvent::Progress(pr))).is_ok()
        })
        .map_err(|e| AppError::Runtime(format!("--metrics-file: cannot start its reader: {e}")))?;
    }
    Ok((sampler, child))
}

/// The summary, emissions.csv beside samples.csv, and the exit code.
fn finish(
    settings: &Settings,
    job: Job<'_>,
    session: Session,
    mut writer: Option<SamplesWriter>,
    end: RunEnd,
    screen: bool,
) -> Result<i32, AppError> {
    let RunEnd {
        dir,
        facts,
        run,
        left_running,
        ..
    } = end;
    let had_child = matches!(job, Job::Run(_));
    let outcome = session.finish();
    let mut notes = outcome.notes;
    notes.extend(left_running);
    notes.extend(writer.as_mut().and_then(finish_writer));
    if screen
        && had_child
        && let Some(d) = &dir
    {
        notes.push(format!(
            "the command's output is in {}",
            d.join("output.log").display()
        ));
    }
    let samples_path = writer.as_ref().map(|w| w.path().display().to_string());
    let run_facts = RunFacts {
        title: job.title(),
        interval_s: Some(settings.interval.as_secs_f64()),
        sources: facts,
        samples_path: samples_path.clone(),
        notes,
    };
    let snap = &outcome.snapshot;
    match (samples_path, &dir) {
        (Some(file), Some(d)) => {
            let em_path = d.join("emissions.csv");
            let meta = run.meta(None);
            if let Err(e) = emissions::append(&em_path, &file, snap, &meta) {
                say(&format!("cannot write {}: {e}", em_path.display()));
            }
            crate::app::err_out(&summary(snap, &run_facts));
            if !settings.quiet {
                crate::errln!("  emissions  {} (CodeCarbon format)", em_path.display());
            }
        }
        _ => crate::app::err_out(&summary(snap, &run_facts)),
    }
    Ok(match outcome.child_exit {
        Some(st) => exit_code_of(st),
        None if had_child => 1,
        None => 0,
    })
}

/// Fault injection for the tests of cap restoration (debug builds only): panics once the run
/// has lasted `CARBONTOP_TEST_PANIC_AFTER` seconds.
#[cfg(debug_assertions)]
pub fn test_panic(elapsed_s: f64) {
    if let Some(after) = std::env::var("CARBONTOP_TEST_PANIC_AFTER")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        && elapsed_s >= after
    {
        panic!("CARBONTOP_TEST_PANIC_AFTER={after}: a deliberate panic");
    }
}

/// What is fixed for the run, for run.json and emissions.csv (read once, at the start).
fn run_file(s: &Settings, job: Job<'_>, built: &Built, dir: Option<&std::path::Path>) -> RunFile {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    let started = chrono::Utc::now();
    let ((country_iso_code, country_name), region) = run_file::place_of(&s.grid);
    let (mode, command) = match job {
        Job::Run(c) => ("run", c.to_vec()),
        Job::Record(_) => ("record", vec![]),
        Job::Watch => ("watch", vec![]),
        Job::Serve { .. } => ("serve", vec![]),
    };
    let embodied_basis = match s.embodied_kg {
        Some(_) => "--embodied-kg".to_owned(),
        None => built.share.basis.clone(),
    };
    // The command's own figures exist for `run` only.
    let tracking_mode = match job {
        Job::Run(_) => s.tracking_mode,
        // A job recorder's figures are the job's own: the node may run other jobs.
        Job::Record(Some(_)) => run_file::TrackingMode::Process,
        _ => run_file::TrackingMode::Machine,
    };
    let slurm = match job {
        Job::Record(Some(j)) => Some(crate::source::scheduler::Slurm::of_job(
            j.id(),
            &crate::source::scheduler::env,
        )),
        _ => crate::source::scheduler::Slurm::from_env(&crate::source::scheduler::env),
    };
    RunFile {
        project_name: s
            .project
            .clone()
            .or_else(|| slurm.as_ref().and_then(|j| j.job_name.clone())),
        slurm,
        tracking_mode,
        run_id: run_file::new_run_id(&started, dir.unwrap_or(std::path::Path::new("."))),
        carbontop_version: env!("CARGO_PKG_VERSION").into(),
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        mode: mode.into(),
        command,
        zone: s.grid.zone.clone(),
        country_iso_code,
        country_name,
        region,
        intensity: built
            .facts
            .iter()
            .find(|(k, _)| k == "grid")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        pue: s.pue,
        machine: Machine {
            cpu_count: sys.as_ref().map(|x| x.cpus().len()),
            cpu_model: sys
                .as_ref()
                .and_then(|x| x.cpus().first().map(|c| c.brand().trim().to_owned())),
            gpus: built.gpu_models.clone(),
            gpu_map: built.gpu_ids.clone(),
            ram_total_gib: sys
                .as_ref()
                .map(|x| x.total_memory() as f64 / (1u64 << 30) as f64),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        },
        embodied: Some(Embodied::new(
            embodied_te(s, built),
            s.embodied_kg.is_none().then_some(&built.share),
            embodied_basis,
        )),
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
