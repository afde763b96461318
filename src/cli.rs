//! The command line (DESIGN.md §3). Every measuring option is also a config-file key.

use crate::source::grid::ProviderKind;
use crate::source::replay::Speed;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Constants (DESIGN.md §5; override where a flag exists):
  CPU without RAPL   TDP × sockets × (0.1 + 0.9 × load³); TDP from         CodeCarbon 3.x
                     CodeCarbon 3.3.2's 4,918-CPU table, its matching;
                     unknown model 4 W/thread
  memory             RAPL DRAM, else 5 W per module (SMBIOS count or the  CodeCarbon 3.x
                     size heuristic), band 1.5–5.3 W per module
  network, cluster   NIC + switch-port power × utilisation by link speed  datasheets (README)
                     (unknown speed: 10 GbE assumed)
  network, internet  0.00265 kWh/GB (range 0.001–0.069), apart from the   Aslan et al. 2018
                     machine's energy
  grid (offline)     annual mean by zone, with year and basis: `carbontop zones`
                     213 countries (life-cycle)                           OWID / Ember, CC BY 4.0
                     US states, US-CA (combustion at the plant)           EPA eGRID2023
                     Canadian provinces, CA-QC (mix × life-cycle factors) IPCC AR5 medians
                     gcp:REGION (Google's own figure)                     Google Cloud 2023
                     aws:REGION, azure:REGION (their country or state)    AWS, Azure lists
                     WORLD 436 g/kWh (CodeCarbon uses 475, IEA 2019)      Ember 2022
  grid (live)        Electricity Maps v3, GB Carbon Intensity API, WattTime v3 MOER
                     (lbs/MWh × 0.45359237 = g/kWh, marginal); last value held 3 h, then the
                     table's row for the zone's state or country (CAISO_NORTH → US-CA)
  PUE presets        local 1.0, gcp 1.12, aws 1.2, azure 1.12, datacenter 1.56  Green Algorithms v3
  tree-days          kgCO2e / (11 kg per tree-year / 365)                  Green Algorithms
  car-km             gCO2e / 175 g/km (EU average car; US 251)             Green Algorithms

Power caps (root, `carbontop capd`, or --simulate-gpus N): + / - step the cap of the chosen
GPUs (c cycles all, GPU 0, 1, …), r back to the default, g toggles the carbon governor (Zeus:
cost = η·(I/750)·P/T + (1−η)·P_max/T; with --max-slowdown X% instead the least I·E + λ·t per
step, λ steered to finish within X% of the fastest cap — η's own λ is (1−η)·P_max·750/η). The
original caps are put back on exit unless --no-restore.

Screen keys: q quit, ? help, p pause view, o output pane, t theme, ←/→ window, tab panels;
replay adds space play/pause, ,/. seek, </> speed. Without a terminal it runs headless.

Config: --config PATH, $CARBONTOP_CONFIG, or $XDG_CONFIG_HOME/carbontop/config.toml
(~/.config/carbontop/config.toml). The command line wins over the file, the file over defaults.";

#[derive(Debug, Parser)]
#[command(
    name = "carbontop",
    version,
    about = "Watch what an ML training run costs the climate: power, energy and gCO2e, live",
    after_help = AFTER_HELP,
)]
pub struct Cli {
    /// Without a command: `watch`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start CMD, measure until it exits (or --duration), exit with its status.
    ///
    /// CMD's stdout and stderr are forwarded unchanged; progress lines (epoch, accuracy, loss)
    /// are read from them. With --duration, CMD is sent SIGTERM when the time is up (SIGKILL 5 s
    /// later), like `timeout`.
    Run {
        #[command(flatten)]
        opts: MeasureOpts,
        /// The command to run and its arguments (after `--`).
        #[arg(required = true, last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Watch this machine on the live screen until `q` (the default command). Writes
    /// samples.csv only when --out is given. With --agent: the job across nodes instead.
    Watch {
        #[command(flatten)]
        opts: MeasureOpts,
        /// A `carbontop serve` agent to aggregate (repeat for each node): the job's totals on
        /// the screen and a row per node, every --interval; an agent that stops answering
        /// keeps its last values, marked stale.
        #[arg(long = "agent", value_name = "HOST:PORT")]
        agents: Vec<String>,
    },
    /// Headless agent: measure like `record` and serve GET (and HEAD) /metrics (Prometheus
    /// text format) for Prometheus or `watch --agent`. Never changes caps over HTTP.
    Serve {
        #[command(flatten)]
        opts: MeasureOpts,
        /// Address for /metrics; loopback unless you give another.
        #[arg(long, default_value = crate::serve::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// The `node` label (default: this machine's host name).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// Serve a recording instead of this machine (played at --speed), then hold its totals
        /// until stopped.
        #[arg(long, value_name = "FILE")]
        replay: Option<PathBuf>,
        /// Playback speed of --replay: a factor or `max` (other than 1, carbontop_build_info's
        /// replay_speed label says so: rates are that many times off).
        #[arg(long, default_value = "1", value_parser = parse_speed)]
        speed: Speed,
    },
    /// Measure this machine with no child command, until Ctrl-C, SIGTERM or --duration.
    Record {
        #[command(flatten)]
        opts: MeasureOpts,
        /// Measure this SLURM job (its id) as the job's own share of the node, the way
        /// `dist/slurm/prolog` starts it: the processes of the job's cgroup, or below its
        /// `slurmstepd` or with its SLURM_JOB_ID, the job's GPUs (SLURM_JOB_GPUS), its ids in
        /// run.json; emissions.csv holds the job's figures (tracking_mode process).
        #[arg(long, value_name = "ID", value_parser = parse_slurm_job)]
        slurm_job: Option<crate::source::process::SlurmJob>,
    },
    /// Play a samples.csv recorded by carbontop through the same engine.
    Replay {
        /// The recording (a samples.csv written by carbontop).
        file: PathBuf,
        /// Playback speed: a factor (10, 2.5x) or `max`.
        #[arg(long, default_value = "1", value_parser = parse_speed)]
        speed: Speed,
        /// Also write the replayed rows to DIR/samples.csv.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// No screen: one status line per tick on stderr and a summary at the end.
        #[arg(long)]
        headless: bool,
        /// Override the PUE the recording was made with (default: recovered from the file).
        #[arg(long, value_parser = parse_pue, allow_negative_numbers = true)]
        pue: Option<f64>,
        /// Print only the summary, no per-tick status lines.
        #[arg(long, short)]
        quiet: bool,
        /// Screen theme: default, light, colorblind, a user theme's name, or a .toml path.
        #[arg(long, value_name = "NAME|PATH")]
        theme: Option<String>,
    },
    /// Totals of one or more recordings: text, JSON, Markdown or LaTeX for a paper, a model
    /// card's metadata, CodeCarbon's emissions.csv and PNG; several are also compared.
    Report(ReportArgs),
    /// A shell completion script on stdout: `carbontop completions bash >
    /// /etc/bash_completion.d/carbontop` (zsh: a `_carbontop` file on $fpath; fish:
    /// ~/.config/fish/completions/carbontop.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout: `carbontop man > carbontop.1; man ./carbontop.1`.
    Man,
    /// Start CMD at the cleanest window of the grid's forecast within --within (at once when
    /// the grid has no forecast, or no later window is 5% cleaner), then become CMD.
    Wait {
        #[command(flatten)]
        grid: WaitGrid,
        /// How long the command will run: the window to keep clean.
        #[arg(long, value_parser = parse_duration, value_name = "D")]
        length: Duration,
        /// Latest start: try windows from now to this much later.
        #[arg(long, value_parser = parse_duration, default_value = "24h", value_name = "D")]
        within: Duration,
        /// The command to start and its arguments (after `--`).
        #[arg(required = true, last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// The recorded energy profile priced again: in other zones (the embedded annual means),
    /// at other start times on an intensity trace (the best start within --within), under
    /// another PUE; tick by tick, C = Σ E × PUE × I(t).
    Reprice {
        /// A recording (samples.csv written by carbontop).
        file: PathBuf,
        /// Zones to price it in (comma-separated): FR,DE,US-CA,gcp:europe-north1 (`carbontop zones`).
        #[arg(long, value_delimiter = ',', value_name = "CODE")]
        zone: Vec<String>,
        /// A grid intensity over time: a carbontop samples.csv, or a CSV with a time column
        /// (timestamp, time, datetime, from, point_time) and a g/kWh column (g_per_kwh,
        /// intensity, carbon_intensity, value).
        #[arg(long, value_name = "FILE")]
        intensity_trace: Option<PathBuf>,
        /// With --intensity-trace: try starts from the run's own (or the trace's first) to
        /// this much later.
        #[arg(long, value_parser = parse_duration, default_value = "24h", value_name = "D")]
        within: Duration,
        /// With --intensity-trace: the step between the starts tried.
        #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "D")]
        step: Duration,
        /// Price under this PUE instead of the recording's (number from 1 to 3 or a preset).
        #[arg(long, value_parser = parse_pue, allow_negative_numbers = true)]
        pue: Option<f64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also draw the options as bars (with their bands) to this PNG.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
    },
    /// The embedded grid zones: code, gCO2e/kWh (an annual mean, with the band of the hours of
    /// a run: ×0.7–1.3), year, basis (life-cycle, combustion at the plant, operational) and
    /// source of each.
    Zones {
        /// Keep the zones whose code, name, region or country contains this (any case).
        filter: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The privileged cap helper, run by root (dist/carbontop-capd.service): sets GPU power
    /// caps for members of --group over a Unix socket, only within the constraints and on GPUs
    /// of the caller's job, and puts them back when the caller goes (even after kill -9) or
    /// capd stops. The screen uses it when the socket is there and it is not root.
    Capd(crate::capd::CapdOpts),
    /// What-if before any run: energy, operational and embodied carbon of N GPUs for H hours
    /// in a zone, from rated power (Green Algorithms) and the embodied table (per GPU model,
    /// with the published low–high range); with --serve-days and --site, a model's whole life
    /// (training, then serving) across data centres (the Impact Framework's NN plugins).
    Estimate(EstimateArgs),
    /// The governor against its limit, offline: a run of N epochs on a measured cap curve (Zeus's
    /// A40 or V100 measurements, or a saved profile) over a grid trace, from several start
    /// times, in compressed time: uncapped, each static cap, the best static cap and fixed
    /// two-cap mix within --max-slowdown, the governor's η and time-budget rules on the curve,
    /// the governor itself through the Session against the simulated GPU (its profile
    /// included), and the oracle (a cap per trace slot knowing the future, mixes of two caps in
    /// a slot allowed), its saving split into efficiency (the fixed mix at the same slowdown)
    /// and timing (the rest).
    Simulate(SimulateArgs),
}

/// `carbontop simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The GPU whose measured curve to use (a40, v100: Zeus's measurements; another model: a
    /// profile the governor saved for it).
    #[arg(long, default_value = "a40", value_name = "MODEL")]
    pub gpu: String,
    /// A workload of Zeus's tables, DATASET-NETWORK-bBATCH[-OPTIMIZER] (imagenet-resnet50-b128,
    /// cifar100-shufflenetv2-b1024, librispeech-deepspeech2-b32, squad-bert_base_uncased-b32, …;
    /// a wrong name lists them), or a saved profile's workload name.
    #[arg(long, default_value = "imagenet-resnet50-b128", value_name = "NAME")]
    pub workload: String,
    /// The grid intensity over time: a carbontop samples.csv, the Zeus carbon_hist.csv, or a
    /// CSV with a time column and a g/kWh column (as `reprice --intensity-trace`).
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// The run's length in epochs.
    #[arg(long, default_value = "10", value_parser = parse_epochs, value_name = "N")]
    pub epochs: f64,
    /// How many start times, spread evenly over the trace (ignored with --start).
    #[arg(long, default_value = "10", value_parser = parse_starts, value_name = "K")]
    pub starts: usize,
    /// A start time (RFC 3339; repeat for several).
    #[arg(long = "start", value_name = "TIME")]
    pub start: Vec<String>,
    /// The slowdown budget against uncapped (3%, 10%).
    #[arg(long, default_value = "3%", value_parser = parse_slowdown, value_name = "X%")]
    pub max_slowdown: f64,
    /// η of the governor's Zeus-form rule (shown beside the time budget).
    #[arg(long, default_value = "0.5", value_parser = parse_unit, value_name = "X")]
    pub eta: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A profile the governor saved (`run --governor carbon`, see --workload there) instead
    /// of Zeus's table: its caps' power and steps/s, an epoch taken as 1000 steps. Without it,
    /// a --gpu other than a40/v100 is looked up among the saved profiles by --workload.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Also draw the grid intensity and each policy's cap over time (the first start) to FILE.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

/// A slowdown budget: `3%` or `3` (percent), from 0 to 100%; the fraction.
pub fn parse_slowdown(s: &str) -> Result<f64, String> {
    match parse_number(s.trim().trim_end_matches('%')) {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!(
            "{s:?} is not a slowdown (a percentage from 0 to 100, like 3%)"
        )),
    }
}

/// How many start times `simulate` tries: 1 to 1000.
fn parse_starts(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a count of start times (1 to 1000)")),
    }
}

/// `carbontop wait`'s grid: where the forecast comes from (the measuring commands' options of
/// the same names, and the config file's keys).
#[derive(Debug, Clone, Default, Args)]
pub struct WaitGrid {
    /// Grid zone (see `carbontop zones`; GB zones have the GB API's 48-hour forecast).
    #[arg(long, value_name = "CODE")]
    pub zone: Option<String>,
    /// Grid intensity provider: auto, emaps, uk, watttime, table (tokens from the environment
    /// or the config file).
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// Base URL of the provider's API instead of its public one (tests, proxies).
    #[arg(long, value_name = "URL")]
    pub grid_url: Option<String>,
    /// Latitude for Electricity Maps (with --lon) instead of --zone.
    #[arg(long, value_parser = parse_latitude, allow_negative_numbers = true, requires = "lon")]
    pub lat: Option<f64>,
    /// Longitude for Electricity Maps (with --lat).
    #[arg(long, value_parser = parse_longitude, allow_negative_numbers = true, requires = "lat")]
    pub lon: Option<f64>,
    /// Config file (TOML).
    #[arg(long, env = "CARBONTOP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl WaitGrid {
    /// As the measuring commands' options, for the config file's resolution.
    pub fn measure_opts(&self) -> MeasureOpts {
        MeasureOpts {
            zone: self.zone.clone(),
            provider: self.provider,
            grid_url: self.grid_url.clone(),
            lat: self.lat,
            lon: self.lon,
            config: self.config.clone(),
            ..Default::default()
        }
    }
}

/// `carbontop report`'s options.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Recordings (samples.csv written by carbontop); with --by-job, directories holding them.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Sum SLURM jobs' recordings (every samples.csv with a run.json at most 4 levels below
    /// each DIR, e.g. /var/lib/carbontop/jobs) per job, user and account, from run.json's job
    /// ids: a table, --json, or --emissions (a row per recording).
    #[arg(long, conflicts_with_all = ["png", "model_card", "format"])]
    pub by_job: bool,
    /// With --by-job: one line for Slurm's AdminComment (`carbontop energy_kwh=… co2e_g=…`)
    /// for the one job found (dist/slurm/epilog-slurmctld).
    #[arg(long, requires = "by_job", conflicts_with = "json")]
    pub admin_comment: bool,
    /// Append one row per recording to this CodeCarbon-format emissions.csv.
    #[arg(long, value_name = "OUT.csv")]
    pub emissions: Option<PathBuf>,
    /// Print a JSON summary (stable field names, see README): `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// text (default), json, markdown or latex: the last two a paragraph, a table of each
    /// figure and how it was made, and the sources of the constants, for a paper.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Print Hugging Face's `co2_eq_emissions` model-card metadata (YAML) instead.
    #[arg(long, conflicts_with_all = ["format", "json"])]
    pub model_card: bool,
    /// The model card's training_type (default: pre-training; e.g. fine-tuning).
    #[arg(long, value_name = "TYPE")]
    pub training_type: Option<String>,
    /// Grid zone of the recording (else run.json's), for emissions.csv's country columns, the
    /// paper's and model card's location and the PNG's header.
    #[arg(long, value_name = "CODE")]
    pub zone: Option<String>,
    /// Override the PUE the recording was made with.
    #[arg(long, value_parser = parse_pue, allow_negative_numbers = true)]
    pub pue: Option<f64>,
    /// project_name in emissions.csv (default: the run's own, from run.json: its --project
    /// or SLURM job name; else carbontop).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Write a PNG report (1600×1000). With several recordings: one PNG each, named
    /// OUT-1.png, OUT-2.png, …, and OUT-compare.png comparing them.
    #[arg(long, value_name = "OUT.png")]
    pub png: Option<PathBuf>,
    /// Theme of the PNG (default: light, for print).
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
}

/// What `report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    Latex,
}

/// `carbontop estimate`'s options.
#[derive(Debug, Clone, Args)]
pub struct EstimateArgs {
    /// GPU model: h200, h100, h100-pcie, a100, a100-pcie, l40s, a40, a10, l4, t4, v100,
    /// v100-pcie, rtx4090, rtx3090, mi300x, mi250x.
    #[arg(long, value_name = "MODEL")]
    pub gpu: String,
    /// Number of GPUs.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Run time in hours.
    #[arg(long, value_parser = parse_hours, value_name = "H")]
    pub hours: f64,
    /// Grid zone for the table's annual intensity (see `carbontop zones`); default WORLD.
    #[arg(long, value_name = "CODE")]
    pub zone: Option<String>,
    /// Fixed grid intensity in gCO2e/kWh instead of the zone's.
    #[arg(long, value_parser = parse_intensity, value_name = "G", allow_negative_numbers = true)]
    pub intensity: Option<f64>,
    /// Power usage effectiveness: a number from 1 to 3 or a preset (local, gcp, aws, azure, datacenter).
    #[arg(long, value_parser = parse_pue, default_value = "1", allow_negative_numbers = true)]
    pub pue: f64,
    /// Average share of the GPUs' rated power drawn, 0–1 (Green Algorithms' usage factor).
    #[arg(long, value_parser = parse_unit, default_value = "1", value_name = "X", allow_negative_numbers = true)]
    pub utilisation: f64,
    /// Memory per 8-GPU server in GiB, counted at 0.3725 W/GiB (default: not counted).
    #[arg(long, value_parser = parse_memory_gib, default_value = "0", value_name = "GIB")]
    pub memory_gib: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Serving: how long the model is deployed, in days (adds a serving phase).
    #[arg(long, value_parser = parse_days, value_name = "DAYS")]
    pub serve_days: Option<f64>,
    /// Serving: GPU model of the servers (default: --gpu).
    #[arg(long, value_name = "MODEL")]
    pub serve_gpu: Option<String>,
    /// Serving: number of GPUs deployed (their power over the deployment, or only their
    /// embodied carbon with --queries-per-day).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub serve_count: Option<u32>,
    /// Serving: share of the GPUs' rated power drawn, 0–1 (default: --utilisation).
    #[arg(long, value_parser = parse_unit, value_name = "X", allow_negative_numbers = true)]
    pub serve_utilisation: Option<f64>,
    /// Serving: queries per day, priced per query (with --wh-per-query or --per-query-from).
    #[arg(long, value_parser = parse_queries, value_name = "Q")]
    pub queries_per_day: Option<f64>,
    /// Serving: IT energy per query in Wh.
    #[arg(long, value_parser = parse_wh_per_query, value_name = "WH", conflicts_with = "per_query_from")]
    pub wh_per_query: Option<f64>,
    /// Serving: the energy per query measured from a recording of a serving run that answered
    /// --queries queries (its IT energy ÷ that count).
    #[arg(long, value_name = "RUN.csv", requires = "queries")]
    pub per_query_from: Option<PathBuf>,
    /// The number of queries the --per-query-from recording answered.
    #[arg(long, value_parser = parse_queries, value_name = "N", requires = "per_query_from")]
    pub queries: Option<f64>,
    /// A data centre and its share of the work (repeat): zone=FR,pue=1.1,share=0.6 with
    /// optional intensity=G (instead of the zone's), transport=0.95 (the Impact Framework's
    /// energy transport factor) and phase=training|serving (default both). A phase's shares
    /// sum to 1. Default: one site from --zone/--intensity/--pue.
    #[arg(long, value_parser = parse_site, value_name = "SPEC")]
    pub site: Vec<SiteSpec>,
    /// Print the same inputs and outputs as an Impact Framework manifest (YAML, the
    /// if-plugin-nnci pipeline nn-et, nn-eq, nn-c, sum; one child per site).
    #[arg(long, conflicts_with = "json")]
    pub if_manifest: bool,
}

/// Options of the measuring commands.
#[derive(Debug, Clone, Default, Args)]
pub struct MeasureOpts {
    /// Sampling interval (e.g. 1s, 500ms, 100ms).
    #[arg(long, value_parser = parse_interval, value_name = "D")]
    pub interval: Option<Duration>,
    /// Directory for samples.csv (default: ./carbontop-runs/<UTC start time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No screen: one status line per tick on stderr and a summary at the end.
    #[arg(long)]
    pub headless: bool,
    /// Stop after this long (e.g. 30s, 10m, 2h).
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    pub duration: Option<Duration>,
    /// Grid zone: ISO country (FR, FRA), US state (US-CA), Canadian province (CA-QC), cloud
    /// region (gcp:europe-west1, aws:us-east-1, azure:westeurope) or a provider's zone
    /// (CAISO_NORTH, US-CAL-CISO: its state is the fallback); `carbontop zones` lists them;
    /// default WORLD.
    #[arg(long, value_name = "CODE")]
    pub zone: Option<String>,
    /// Grid intensity provider: auto (GB zones → uk; an Electricity Maps token → emaps; else
    /// table), emaps, uk, watttime, table. Tokens come from the environment
    /// (ELECTRICITYMAPS_API_KEY, WATTTIME_USERNAME/WATTTIME_PASSWORD) or the config file.
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// Base URL of the provider's API instead of its public one (tests, proxies), e.g.
    /// http://127.0.0.1:8080 for the GB API's /intensity, .../v3 for Electricity Maps.
    #[arg(long, value_name = "URL")]
    pub grid_url: Option<String>,
    /// Latitude for Electricity Maps (with --lon) instead of --zone.
    #[arg(long, value_parser = parse_latitude, allow_negative_numbers = true, requires = "lon")]
    pub lat: Option<f64>,
    /// Longitude for Electricity Maps (with --lat).
    #[arg(long, value_parser = parse_longitude, allow_negative_numbers = true, requires = "lat")]
    pub lon: Option<f64>,
    /// Ask the provider this often instead of when its data changes (≥ 1s).
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    pub grid_poll: Option<Duration>,
    /// Fixed grid intensity in gCO2e/kWh; overrides the zone.
    #[arg(long, value_parser = parse_intensity, value_name = "G", allow_negative_numbers = true)]
    pub intensity: Option<f64>,
    /// Power usage effectiveness: a number from 1 to 3 or a preset (local, gcp, aws, azure, datacenter).
    #[arg(long, value_parser = parse_pue, allow_negative_numbers = true)]
    pub pue: Option<f64>,
    /// CPU thermal design power in W, for the estimate when RAPL is absent.
    #[arg(long, value_parser = parse_cpu_tdp, value_name = "W", allow_negative_numbers = true)]
    pub cpu_tdp: Option<f64>,
    /// Root of the sysfs tree to read RAPL and network facts from (for tests and containers).
    #[arg(long, env = "CARBONTOP_SYSFS_ROOT", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// Network interfaces to count (repeat or comma-separate); default: physical interfaces.
    #[arg(long, value_delimiter = ',', value_name = "IFACE")]
    pub net_iface: Vec<String>,
    /// The internet path's energy intensity, kWh per GB: the footprint of `run`'s traffic to
    /// public addresses (default 0.00265, Aslan et al. 2018's trend; range 0.001–0.069).
    #[arg(long, value_parser = parse_net_kwh_per_gb, value_name = "KWH", allow_negative_numbers = true)]
    pub net_kwh_per_gb: Option<f64>,
    /// Address ranges of this cluster or site, beside the private ones (repeat or
    /// comma-separate, e.g. 203.0.113.0/24): `run`'s traffic to them is costed on the port
    /// model, not the internet's.
    #[arg(long, value_delimiter = ',', value_name = "CIDR", value_parser = parse_cidr)]
    pub cluster_cidr: Vec<crate::source::sockdiag::Cidr>,
    /// Link speed (Gb/s) assumed where an interface does not say (virtual NICs); default 10.
    #[arg(long, value_parser = parse_link_gbps, value_name = "GBPS", allow_negative_numbers = true)]
    pub net_link_gbps: Option<f64>,
    /// Power (W) of one NIC port plus its switch port at line rate, instead of the model's
    /// table by link speed.
    #[arg(long, value_parser = parse_port_w, value_name = "W", allow_negative_numbers = true)]
    pub net_port_w: Option<f64>,
    /// Only these GPUs (comma-separated NVML indices, as nvidia-smi numbers them; every output
    /// numbers GPUs so). Default: `run` counts the GPUs its job was given (CUDA_VISIBLE_DEVICES,
    /// SLURM_STEP_GPUS, SLURM_JOB_GPUS, GPU_DEVICE_ORDINAL, NVIDIA_VISIBLE_DEVICES; MIG
    /// instances are charged their slices' share of the card, estimated), the others every GPU.
    #[arg(long, value_delimiter = ',', value_name = "I")]
    pub gpu_index: Vec<u32>,
    /// `run`: whose figures emissions.csv holds, as CodeCarbon's `tracking_mode`: `machine`
    /// (default) the whole machine's; `process` the command's own — its CPU-time share of the
    /// CPU, its SM share of each GPU, its resident memory's share of the memory, its traffic's
    /// share of the ports, with the PUE. The screen and summary show both either way.
    #[arg(long, value_name = "MODE", value_parser = ["machine", "process"])]
    pub tracking_mode: Option<String>,
    /// emissions.csv's project_name (default: the SLURM job's name under SLURM, else
    /// carbontop). The SLURM job id, step, array index and node go in run.json and, as sacct
    /// names the job (1234_7.0), in emissions.csv's experiment_id.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// `run`: count every GPU of the machine, whatever the job was given.
    #[arg(long, conflicts_with = "gpu_index")]
    pub all_gpus: bool,
    /// Do not load NVML even when a driver is present.
    #[arg(long)]
    pub no_gpu: bool,
    /// An extra progress pattern NAME=REGEX (repeatable): the first capture group is the value.
    /// NAME accuracy, loss, epoch or step overrides that reading; any other NAME is recorded
    /// as samples.csv's metric_NAME.
    #[arg(long = "metric", value_name = "NAME=REGEX")]
    pub metrics: Vec<String>,
    /// Read progress from a JSON-lines or CSV file another process writes (followed as it
    /// grows) instead of only from the command's output.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Price the gain of this metric (one of --metric's NAMEs, e.g. f1) like accuracy's: gCO2e
    /// per 0.01 (0–1 metrics) or per 1.
    #[arg(long, value_name = "NAME")]
    pub target_metric: Option<String>,
    /// The run will train this many epochs: the screen forecasts the time, energy and carbon
    /// to the end at the recent rate (with the grid's forecast where the provider has one).
    #[arg(long, value_parser = parse_epochs, value_name = "N", conflicts_with = "target_accuracy")]
    pub epochs: Option<f64>,
    /// The run stops at this accuracy (percent): the screen forecasts what reaching it costs.
    #[arg(long, value_parser = parse_percent, value_name = "A")]
    pub target_accuracy: Option<f64>,
    /// Embodied emissions charged to this run in kg CO2e (default: each GPU in use by model,
    /// e.g. 150 for an A100 [BLOOM; range to 318, Chien et al.], + the run's share of a 2,500 kg
    /// server [BLOOM]), amortised over 6 years into samples.csv's embodied_co2e_g; 0 leaves it
    /// out.
    #[arg(long, value_parser = parse_embodied_kg, value_name = "KG", allow_negative_numbers = true)]
    pub embodied_kg: Option<f64>,
    /// Hardware threads of the host this machine runs on (a VM's host cannot be seen from
    /// inside): the server's embodied carbon is charged by this machine's threads over N.
    #[arg(long, value_parser = parse_threads, value_name = "N")]
    pub host_threads: Option<usize>,
    /// The share of the server's embodied carbon this run holds (0–1), instead of the share
    /// carbontop finds (GPUs in use over the server's, else threads over the host's).
    #[arg(long, value_parser = parse_share, value_name = "X")]
    pub embodied_share: Option<f64>,
    /// Simulate N NVIDIA A40s training CIFAR-100 instead of reading NVML: their power and speed
    /// follow Zeus's measurements at each power cap, so caps and the governor can be tried
    /// without a GPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
    pub simulate_gpus: Option<u8>,
    /// Write the simulated GPUs' caps to PATH (JSON) after every change (tests read it).
    #[arg(long, value_name = "PATH", requires = "simulate_gpus")]
    pub sim_state: Option<PathBuf>,
    /// Power-cap governor: `carbon` caps harder when the grid is dirtier (toggle with `g`);
    /// `off` (default) leaves caps to the keys.
    #[arg(long, value_name = "MODE", value_parser = ["off", "carbon"])]
    pub governor: Option<String>,
    /// The governor's knob: 0 = pure speed, 1 = least energy per step; default 0.5.
    #[arg(long, value_parser = parse_unit, value_name = "X", allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// The governor's time budget instead of η: the least carbon finishing within this much
    /// more time than the fastest cap (3%, 0.5%): per decision the cap minimising
    /// I·E(p) + λ·t(p) per step, λ steered so the slowdown so far meets the budget. η is Zeus's
    /// fixed price of time (its λ is (1−η)·P_max·I_ref/η, whatever the slowdown comes to).
    #[arg(long, value_parser = parse_slowdown, value_name = "X%")]
    pub max_slowdown: Option<f64>,
    /// The workload's name for the governor's saved profile (default: `run`'s script or
    /// command name): the curve it measures is saved per GPU model and this name, in
    /// $CARBONTOP_PROFILE_DIR or ~/.local/share/carbontop/profiles, and reused next time.
    #[arg(long, value_name = "NAME")]
    pub workload: Option<String>,
    /// How long the governor measures each candidate cap at least (plus half as long to
    /// settle); longer, up to ten times or a minute, until its throughput is known to ±2%.
    #[arg(long, value_parser = parse_duration, value_name = "D")]
    pub governor_profile: Option<Duration>,
    /// How far `+`/`-` move a cap, in W (default 10).
    #[arg(long, value_parser = parse_cap_step, value_name = "W", allow_negative_numbers = true)]
    pub cap_step: Option<f64>,
    /// Leave the caps as they are on exit instead of putting the original ones back.
    #[arg(long)]
    pub no_restore: bool,
    /// Config file (TOML).
    #[arg(long, env = "CARBONTOP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print only the summary, no per-tick status lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Screen theme: default, light, colorblind, a user theme's name, or a path to a .toml file.
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
}

/// Parses `1s`, `500ms`, `2m`, `1.5h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a duration: use e.g. 1s, 500ms, 10m, 2h");
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => v,
        "ms" => v / 1000.0,
        "m" | "min" | "mins" => v * 60.0,
        "h" | "hr" | "hrs" => v * 3600.0,
        "d" => v * 86_400.0,
        _ => return Err(bad()),
    };
    let max = crate::engine::constants::MAX_DURATION_S;
    if !secs.is_finite() || secs > max {
        return Err(format!(
            "{s:?}: a duration is at most {max} s (about 31 years)"
        ));
    }
    if secs <= 0.0 {
        return Err(format!("{s:?}: a duration must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A sampling interval: a duration between 100 ms and 1 h.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!("{s:?}: the interval must be between 100ms and 1h"));
    }
    Ok(d)
}

/// A PUE: a number from 1 to 3 (`PUE_BOUND`) or a preset name.
pub fn parse_pue(s: &str) -> Result<f64, String> {
    if let Some(v) = crate::engine::constants::pue_preset(s.trim()) {
        return Ok(v);
    }
    match s.trim().parse::<f64>() {
        Ok(v) => crate::engine::constants::PUE_BOUND
            .check(v)
            .map_err(|e| format!("{s:?}: {e}")),
        Err(_) => Err(format!(
            "{s:?} is not a PUE: give a number from 1 to 3 or one of local, gcp, aws, azure, datacenter"
        )),
    }
}

fn parse_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{s:?} is not a number"))
}

pub fn parse_positive(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s:?}: must be greater than 0"))
    }
}

/// An address range, `10.0.0.0/8` or `fd00::/8` (an address alone is one host).
pub fn parse_cidr(s: &str) -> Result<crate::source::sockdiag::Cidr, String> {
    s.parse()
}

pub fn parse_non_negative(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s:?}: must not be negative"))
    }
}

/// A grid intensity in gCO2e/kWh, within [`INTENSITY_BOUND`](crate::engine::constants::INTENSITY_BOUND).
pub fn parse_intensity(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::INTENSITY_BOUND)
}

/// A number within a physical bound (`engine::constants`); the error quotes it and the range.
pub fn bounded(s: &str, b: &crate::engine::constants::Bound) -> Result<f64, String> {
    let v = s
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number"))?;
    b.check(v).map_err(|e| format!("{s:?}: {e}"))
}

pub fn parse_cpu_tdp(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::CPU_TDP_BOUND)
}

pub fn parse_net_kwh_per_gb(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::NET_KWH_PER_GB_BOUND)
}

pub fn parse_link_gbps(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::LINK_GBPS_BOUND)
}

pub fn parse_port_w(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::PORT_W_BOUND)
}

pub fn parse_embodied_kg(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::EMBODIED_KG_BOUND)
}

pub fn parse_cap_step(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::CAP_STEP_BOUND)
}

pub fn parse_epochs(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::EPOCHS_BOUND)
}

fn parse_hours(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::HOURS_BOUND)
}

fn parse_memory_gib(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::SERVER_MEMORY_GIB_BOUND)
}

/// A SLURM job id (digits).
pub fn parse_slurm_job(s: &str) -> Result<crate::source::process::SlurmJob, String> {
    crate::source::process::SlurmJob::new(s.trim())
        .ok_or_else(|| format!("{s:?} is not a SLURM job id (SLURM_JOB_ID: digits)"))
}

/// A percentage above 0 and at most 100.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a thread count (1 or more)")),
    }
}

/// A share of the hardware, (0, 1].
pub fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a share (a number above 0, at most 1)"
        )),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v = parse_number(s.trim_end_matches('%'))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s:?}: an accuracy is a percentage, above 0 and at most 100"
        ))
    }
}

/// A number from 0 to 1.
fn parse_days(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::DAYS_BOUND)
}

fn parse_queries(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::QUERIES_BOUND)
}

fn parse_wh_per_query(s: &str) -> Result<f64, String> {
    bounded(s, &crate::engine::constants::WH_PER_QUERY_BOUND)
}

/// `--site zone=FR,pue=1.1,share=0.6[,intensity=G][,transport=0.95][,phase=training]`, as given
/// (the zone is resolved by the command).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSpec {
    pub zone: Option<String>,
    pub intensity: Option<f64>,
    pub pue: f64,
    pub share: f64,
    pub transport: f64,
    pub phase: Option<crate::engine::life::Phase>,
}

pub fn parse_site(s: &str) -> Result<SiteSpec, String> {
    use crate::engine::life::Phase;
    let mut site = SiteSpec {
        zone: None,
        intensity: None,
        pue: 1.0,
        share: 1.0,
        transport: 1.0,
        phase: None,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            format!("{part:?}: give key=value (zone, intensity, pue, share, transport, phase)")
        })?;
        let v = v.trim();
        match k.trim() {
            "zone" => site.zone = Some(v.to_owned()),
            "intensity" => site.intensity = Some(parse_intensity(v)?),
            "pue" => site.pue = parse_pue(v)?,
            "share" => {
                site.share = parse_unit(v)?;
                if site.share == 0.0 {
                    return Err(format!("share={v}: a site's share must be above 0"));
                }
            }
            "transport" => site.transport = bounded(v, &crate::engine::constants::TRANSPORT_BOUND)?,
            "phase" => {
                site.phase = Some(match v {
                    "training" | "train" => Phase::Training,
                    "serving" | "serve" => Phase::Serving,
                    _ => return Err(format!("phase={v}: training or serving")),
                })
            }
            other => {
                return Err(format!(
                    "{other:?}: not a site key (zone, intensity, pue, share, transport, phase)"
                ));
            }
        }
    }
    if site.zone.is_none() && site.intensity.is_none() {
        return Err(format!("{s:?}: a site needs zone=CODE or intensity=G"));
    }
    Ok(site)
}

pub fn parse_unit(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?}: must be between 0 and 1"))
    }
}

fn parse_provider(s: &str) -> Result<ProviderKind, String> {
    s.parse()
        .map_err(|e: crate::source::grid::GridError| e.to_string())
}

fn parse_latitude(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if (-90.0..=90.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?}: a latitude is between -90 and 90"))
    }
}

fn parse_longitude(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if (-180.0..=180.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?}: a longitude is between -180 and 180"))
    }
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_interval("10ms").is_err());
    }

    #[test]
    fn pue_values() {
        assert_eq!(parse_pue("1.2"), Ok(1.2));
        assert_eq!(parse_pue("aws"), Ok(1.2));
        assert!(parse_pue("-1").is_err());
        assert!(parse_pue("0.9").is_err());
        assert!(parse_pue("nan").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
