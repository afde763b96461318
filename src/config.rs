//! The config file (TOML) and the resolved settings: defaults < config file < command line.

use crate::cli::{self, MeasureOpts};
use crate::engine::constants::{
    Bound, CAP_STEP_BOUND, CPU_TDP_BOUND, EMBODIED_KG_BOUND, EPOCHS_BOUND, INTENSITY_BOUND,
    LINK_GBPS_BOUND, MEMORY_W_PER_GIB_BOUND, NET_KWH_PER_GB_BOUND, PORT_W_BOUND,
};
use crate::source::grid::http::Secret;
use crate::source::grid::{GridSettings, ProviderKind};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every key a config file may hold; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub interval: Option<String>,
    pub out: Option<PathBuf>,
    pub zone: Option<String>,
    pub intensity: Option<f64>,
    pub pue: Option<PueValue>,
    pub cpu_tdp: Option<f64>,
    pub sysfs_root: Option<PathBuf>,
    pub net_iface: Option<Vec<String>>,
    pub net_kwh_per_gb: Option<f64>,
    pub cluster_cidr: Option<Vec<String>>,
    pub net_link_gbps: Option<f64>,
    pub net_port_w: Option<f64>,
    pub memory_w_per_gib: Option<f64>,
    pub embodied_kg: Option<f64>,
    pub host_threads: Option<usize>,
    pub embodied_share: Option<f64>,
    /// `--metric` patterns, NAME=REGEX each.
    pub metric: Option<Vec<String>>,
    pub metrics_file: Option<PathBuf>,
    pub target_metric: Option<String>,
    pub epochs: Option<f64>,
    pub target_accuracy: Option<f64>,
    pub gpu_index: Option<Vec<u32>>,
    pub no_gpu: Option<bool>,
    /// `machine` or `process` (`run`).
    pub tracking_mode: Option<String>,
    pub project: Option<String>,
    pub governor: Option<String>,
    pub eta: Option<f64>,
    /// The governor's time budget, e.g. "3%".
    pub max_slowdown: Option<String>,
    pub governor_profile: Option<String>,
    pub cap_step: Option<f64>,
    pub no_restore: Option<bool>,
    /// Screen theme: a built-in or user theme name, or a path to a .toml file.
    pub theme: Option<String>,
    pub provider: Option<String>,
    pub grid_url: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub grid_poll: Option<String>,
    /// Secrets: read from here when the environment has none; the file should not be
    /// world-readable (a warning says so).
    pub electricitymaps_api_key: Option<String>,
    pub watttime_username: Option<String>,
    pub watttime_password: Option<String>,
}

/// `pue = 1.2` or `pue = "aws"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PueValue {
    Number(f64),
    Preset(String),
}

/// Settings for a measuring run, after merging.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub interval: Duration,
    pub out: Option<PathBuf>,
    pub duration: Option<Duration>,
    /// Zone, fixed intensity and live provider settings.
    pub grid: GridSettings,
    pub pue: f64,
    pub cpu_tdp: Option<f64>,
    pub sysfs_root: PathBuf,
    pub net_iface: Vec<String>,
    pub net_kwh_per_gb: f64,
    /// `--cluster-cidr`: the site's own address ranges (cluster traffic, not internet).
    pub cluster_cidr: Vec<crate::source::sockdiag::Cidr>,
    /// The port power model: `--net-link-gbps`, `--net-port-w`.
    pub port: crate::engine::constants::PortModel,
    pub memory_w_per_gib: f64,
    /// TE of this machine (kg); None: from its GPUs and one server (BLOOM).
    pub embodied_kg: Option<f64>,
    /// `--host-threads`: the threads of the host a VM runs on.
    pub host_threads: Option<usize>,
    /// `--embodied-share`: the server share the run holds.
    pub embodied_share: Option<f64>,
    /// `--epochs` / `--target-accuracy`.
    pub target: Option<crate::ui::model::Target>,
    /// `--metric NAME=REGEX` patterns.
    pub metrics: Vec<String>,
    pub target_metric: Option<String>,
    pub metrics_file: Option<PathBuf>,
    pub gpu_index: Vec<u32>,
    /// `run` counts every GPU, not only those its job was given.
    pub all_gpus: bool,
    /// `--tracking-mode`: whose figures `run`'s emissions.csv holds.
    pub tracking_mode: crate::report::run_file::TrackingMode,
    /// `--project`: emissions.csv's project_name.
    pub project: Option<String>,
    pub no_gpu: bool,
    pub simulate_gpus: Option<usize>,
    /// `--workload`: the governor's saved profile's name.
    pub workload: Option<String>,
    pub sim_state: Option<PathBuf>,
    /// The carbon governor from the start.
    pub governor: bool,
    pub eta: f64,
    /// The governor's time budget (a fraction): least carbon within this slowdown, instead of η.
    pub max_slowdown: Option<f64>,
    /// Seconds each candidate cap is measured.
    pub governor_profile: Duration,
    pub cap_step: f64,
    pub restore_caps: bool,
    pub quiet: bool,
    pub headless: bool,
    pub theme: Option<String>,
    /// Said once the run starts (e.g. a world-readable config holding a token).
    pub warnings: Vec<String>,
}

/// An environment variable, or None when unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A config file holding a secret should be readable by its owner only.
fn world_readable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// Where the config file is looked for when none is named.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("carbontop/config.toml"))
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The keys whose values are secrets.
const SECRET_KEYS: [&str; 2] = ["electricitymaps_api_key", "watttime_password"];

/// The values of the secret keys in config text, found line by line (so even a file that does
/// not parse gives them up for redaction).
fn secrets_in_text(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            SECRET_KEYS
                .contains(&k.trim())
                .then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
        .filter(|v| v.len() >= 4)
        .collect()
}

/// `msg` with every secret in it replaced by `***`: error messages quote bad values, and a
/// token pasted under the wrong key must not be quoted back to a terminal or a log.
pub fn redact(msg: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(msg.to_owned(), |m, s| m.replace(s.as_str(), "***"))
}

/// Why a config file, or its merge with the command line, failed. Each text is one line naming
/// the file (and the line and key where known); none quotes a secret once `redacted`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file could not be read.
    #[error("config {}: cannot read: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A key no config file may hold (the text is TOML's own, listing the known keys).
    #[error("config {}{}: {message}", .path.display(), at_line(*.line))]
    UnknownKey {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
    /// Not TOML, or a value of the wrong type.
    #[error("config {}{}: {message}", .path.display(), at_line(*.line))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A key's value is out of range or not understood; `reason` quotes it.
    #[error("config {}: key `{key}`: {reason}", .path.display())]
    BadValue {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    /// `lat` without `lon` (or the reverse), or either out of range.
    #[error("config {}: keys `lat` and `lon` go together, within ±90 and ±180", .path.display())]
    LatLon { path: PathBuf },
}

impl ConfigError {
    /// The same error with every secret in its quoted text replaced by `***`.
    fn redacted(self, secrets: &[String]) -> Self {
        let r = |s: String| redact(&s, secrets);
        match self {
            ConfigError::UnknownKey {
                path,
                line,
                key,
                message,
            } => ConfigError::UnknownKey {
                path,
                line,
                key: r(key),
                message: r(message),
            },
            ConfigError::Syntax {
                path,
                line,
                message,
            } => ConfigError::Syntax {
                path,
                line,
                message: r(message),
            },
            ConfigError::BadValue { path, key, reason } => ConfigError::BadValue {
                path,
                key,
                reason: r(reason),
            },
            e @ (ConfigError::Read { .. } | ConfigError::LatLon { .. }) => e,
        }
    }
}

/// `, line N`, or nothing when the line is not known.
pub(crate) fn at_line(line: Option<usize>) -> String {
    line.map(|n| format!(", line {n}")).unwrap_or_default()
}

/// A TOML error's line (1-based) and its message on one line (the message names the key).
pub(crate) fn toml_parts(text: &str, e: &toml::de::Error) -> (Option<usize>, String) {
    (
        e.span().map(|s| line_of(text, s.start)),
        e.message().trim().replace('\n', " "),
    )
}

/// The key serde names in an `unknown field `KEY`, expected …` message.
pub(crate) fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(k, _)| k.to_owned())
}

/// Parses config text; errors name the file, the line and the key (never a secret's value).
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let (line, message) = toml_parts(text, &e);
        let path = path.to_path_buf();
        let err = match unknown_key(&message) {
            Some(key) => ConfigError::UnknownKey {
                path,
                line,
                key,
                message,
            },
            None => ConfigError::Syntax {
                path,
                line,
                message,
            },
        };
        err.redacted(&secrets_in_text(text))
    })
}

/// Loads the named file (which must exist) or the default one (if it exists).
pub fn load(named: Option<&Path>) -> Result<(FileConfig, Option<PathBuf>), ConfigError> {
    let path = match named {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.is_file() => p,
            _ => return Ok((FileConfig::default(), None)),
        },
    };
    let text = read_small(&path, MAX_CONFIG_BYTES).map_err(|error| ConfigError::Read {
        path: path.clone(),
        error,
    })?;
    Ok((parse(&text, &path)?, Some(path)))
}

/// The largest config or theme file read: a full config is about 2 KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A small text file, refused past `max` bytes rather than read whole (`--config /dev/zero`
/// would never end).
pub fn read_small(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB: not a carbontop file", max >> 10),
        ));
    }
    Ok(text)
}

/// `v` if `f` (a reason when not) accepts it.
fn check<T>(
    path: &Path,
    key: &'static str,
    v: Option<T>,
    f: impl Fn(&T) -> Result<(), String>,
) -> Result<Option<T>, ConfigError> {
    if let Some(x) = &v {
        f(x).map_err(key_error(path, key))?;
    }
    Ok(v)
}

/// Merges the command line over the config file over the defaults; errors never quote a
/// secret of the file's or the environment's.
pub fn resolve(cli: &MeasureOpts) -> Result<Settings, ConfigError> {
    let (file, path) = load(cli.config.as_deref())?;
    let secrets: Vec<String> = [
        file.electricitymaps_api_key.clone(),
        file.watttime_password.clone(),
        env("ELECTRICITYMAPS_API_KEY"),
        env("WATTTIME_PASSWORD"),
    ]
    .into_iter()
    .flatten()
    .collect();
    resolve_loaded(cli, file, path).map_err(|e| e.redacted(&secrets))
}

fn resolve_loaded(
    cli: &MeasureOpts,
    file: FileConfig,
    path: Option<PathBuf>,
) -> Result<Settings, ConfigError> {
    let p = path.unwrap_or_default();
    // Checked concern by concern, in this order: the first bad key is the one reported.
    let basis = basis_settings(cli, &file, &p)?;
    let target = target_setting(cli, &file, &p)?;
    let grid = grid_settings(cli, &file, &p)?;
    let mut warnings = secret_warnings(&file, &p);
    if file.memory_w_per_gib.is_some() {
        warnings.push(format!(
            "config {}: key `memory_w_per_gib` is no longer used: memory is RAPL's DRAM \
             counter, else 5 W per module (CodeCarbon 3.x); remove the key",
            p.display()
        ));
    }
    let gov = governor_settings(cli, &file, &p)?;
    let tracking_mode = match cli.tracking_mode.as_deref() {
        Some(m) => m.parse().map_err(key_error(&p, "tracking_mode"))?,
        None => file
            .tracking_mode
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(key_error(&p, "tracking_mode"))?
            .unwrap_or_default(),
    };
    Ok(Settings {
        project: cli.project.clone().or(file.project),
        tracking_mode,
        simulate_gpus: cli.simulate_gpus.map(usize::from),
        workload: cli.workload.clone(),
        sim_state: cli.sim_state.clone(),
        governor: gov.governor,
        eta: gov.eta,
        max_slowdown: gov.max_slowdown,
        governor_profile: gov.governor_profile,
        cap_step: gov.cap_step,
        restore_caps: !(cli.no_restore || file.no_restore.unwrap_or(false)),
        grid,
        warnings,
        interval: basis.interval,
        out: cli.out.clone().or(file.out),
        duration: cli.duration,
        pue: basis.pue,
        cpu_tdp: basis.cpu_tdp,
        sysfs_root: cli
            .sysfs_root
            .clone()
            .or(file.sysfs_root)
            .unwrap_or_else(|| PathBuf::from("/sys")),
        net_iface: cli_or_file(&cli.net_iface, file.net_iface),
        net_kwh_per_gb: basis.net_kwh_per_gb,
        cluster_cidr: basis.cluster_cidr,
        port: basis.port,
        memory_w_per_gib: basis.memory_w_per_gib,
        embodied_kg: basis.embodied_kg,
        host_threads: basis.host_threads,
        embodied_share: basis.embodied_share,
        metrics: cli_or_file(&cli.metrics, file.metric),
        metrics_file: cli.metrics_file.clone().or(file.metrics_file),
        target_metric: cli
            .target_metric
            .clone()
            .or(file.target_metric)
            .map(|m| m.trim().to_ascii_lowercase()),
        target,
        gpu_index: cli_or_file(&cli.gpu_index, file.gpu_index),
        all_gpus: cli.all_gpus,
        no_gpu: cli.no_gpu || file.no_gpu.unwrap_or(false),
        quiet: cli.quiet,
        headless: cli.headless,
        theme: cli.theme.clone().or(file.theme),
    })
}

/// A list option: the command line's when it names any, else the file's, else none.
fn cli_or_file<T: Clone>(cli: &[T], file: Option<Vec<T>>) -> Vec<T> {
    if cli.is_empty() {
        file.unwrap_or_default()
    } else {
        cli.to_vec()
    }
}

/// `config FILE: key `KEY`: REASON`.
fn key_error<E: std::fmt::Display>(p: &Path, key: &'static str) -> impl Fn(E) -> ConfigError {
    let path = p.to_path_buf();
    move |reason| ConfigError::BadValue {
        path: path.clone(),
        key,
        reason: reason.to_string(),
    }
}

/// A check that `v` is within the physical bound `b` (its reason quotes the value and range).
fn within(b: &'static Bound) -> impl Fn(&f64) -> Result<(), String> {
    move |v| {
        b.check(*v)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", Bound::show(*v)))
    }
}

/// How the run measures: the interval, the PUE and the power and carbon models' constants.
struct Basis {
    interval: Duration,
    pue: f64,
    cpu_tdp: Option<f64>,
    net_kwh_per_gb: f64,
    cluster_cidr: Vec<crate::source::sockdiag::Cidr>,
    port: crate::engine::constants::PortModel,
    memory_w_per_gib: f64,
    embodied_kg: Option<f64>,
    host_threads: Option<usize>,
    embodied_share: Option<f64>,
}

fn basis_settings(cli: &MeasureOpts, file: &FileConfig, p: &Path) -> Result<Basis, ConfigError> {
    let file_interval = file
        .interval
        .as_deref()
        .map(cli::parse_interval)
        .transpose()
        .map_err(key_error(p, "interval"))?;
    let file_pue = match &file.pue {
        Some(PueValue::Number(n)) => Some(cli::parse_pue(&Bound::show(*n))),
        Some(PueValue::Preset(s)) => Some(cli::parse_pue(s)),
        None => None,
    }
    .transpose()
    .map_err(key_error(p, "pue"))?;
    let file_tdp = check(p, "cpu_tdp", file.cpu_tdp, within(&CPU_TDP_BOUND))?;
    let file_net = check(
        p,
        "net_kwh_per_gb",
        file.net_kwh_per_gb,
        within(&NET_KWH_PER_GB_BOUND),
    )?;
    let file_mem = check(
        p,
        "memory_w_per_gib",
        file.memory_w_per_gib,
        within(&MEMORY_W_PER_GIB_BOUND),
    )?;
    let file_embodied = check(
        p,
        "embodied_kg",
        file.embodied_kg,
        within(&EMBODIED_KG_BOUND),
    )?;
    let file_link = check(
        p,
        "net_link_gbps",
        file.net_link_gbps,
        within(&LINK_GBPS_BOUND),
    )?;
    let file_port = check(p, "net_port_w", file.net_port_w, within(&PORT_W_BOUND))?;
    let file_cidrs = file
        .cluster_cidr
        .as_deref()
        .map(|v| {
            v.iter()
                .map(|c| cli::parse_cidr(c))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(key_error(p, "cluster_cidr"))?;
    let cluster_cidr = cli_or_file(&cli.cluster_cidr, file_cidrs);
    let file_host_threads = file
        .host_threads
        .map(|n| cli::parse_threads(&n.to_string()))
        .transpose()
        .map_err(key_error(p, "host_threads"))?;
    let file_share = file
        .embodied_share
        .map(|x| cli::parse_share(&x.to_string()))
        .transpose()
        .map_err(key_error(p, "embodied_share"))?;
    Ok(Basis {
        interval: cli
            .interval
            .or(file_interval)
            .unwrap_or(Duration::from_secs(1)),
        pue: cli.pue.or(file_pue).unwrap_or(1.0),
        cpu_tdp: cli.cpu_tdp.or(file_tdp),
        net_kwh_per_gb: cli
            .net_kwh_per_gb
            .or(file_net)
            .unwrap_or(crate::engine::constants::NETWORK_KWH_PER_GB),
        cluster_cidr,
        port: crate::engine::constants::PortModel {
            assumed_gbps: cli
                .net_link_gbps
                .or(file_link)
                .unwrap_or(crate::engine::constants::ASSUMED_LINK_GBPS),
            port_w: cli.net_port_w.or(file_port),
        },
        memory_w_per_gib: file_mem.unwrap_or(crate::engine::constants::MEMORY_W_PER_GIB),
        embodied_kg: cli.embodied_kg.or(file_embodied),
        host_threads: cli.host_threads.or(file_host_threads),
        embodied_share: cli.embodied_share.or(file_share),
    })
}

/// The progress target: `--epochs` first, else `--target-accuracy`.
fn target_setting(
    cli: &MeasureOpts,
    file: &FileConfig,
    p: &Path,
) -> Result<Option<crate::ui::model::Target>, ConfigError> {
    let file_epochs = check(p, "epochs", file.epochs, within(&EPOCHS_BOUND))?;
    let file_target_acc = check(p, "target_accuracy", file.target_accuracy, |v| {
        if *v > 0.0 && *v <= 100.0 {
            Ok(())
        } else {
            Err(format!(
                "{v}: an accuracy is a percentage, above 0 and at most 100"
            ))
        }
    })?;
    Ok(
        match (
            cli.epochs.or(file_epochs),
            cli.target_accuracy.or(file_target_acc),
        ) {
            (Some(n), _) => Some(crate::ui::model::Target::Epochs(n)),
            (None, Some(a)) => Some(crate::ui::model::Target::Accuracy(a)),
            (None, None) => None,
        },
    )
}

/// The grid: zone, fixed intensity, live provider and its credentials (the environment's first).
fn grid_settings(
    cli: &MeasureOpts,
    file: &FileConfig,
    p: &Path,
) -> Result<GridSettings, ConfigError> {
    let file_int = check(p, "intensity", file.intensity, within(&INTENSITY_BOUND))?;
    let file_provider = file
        .provider
        .as_deref()
        .map(str::parse::<ProviderKind>)
        .transpose()
        .map_err(key_error(p, "provider"))?;
    let file_poll = file
        .grid_poll
        .as_deref()
        .map(cli::parse_duration)
        .transpose()
        .map_err(key_error(p, "grid_poll"))?;
    let file_lat_lon = match (file.lat, file.lon) {
        (Some(a), Some(o)) if (-90.0..=90.0).contains(&a) && (-180.0..=180.0).contains(&o) => {
            Some((a, o))
        }
        (None, None) => None,
        _ => {
            return Err(ConfigError::LatLon {
                path: p.to_path_buf(),
            });
        }
    };
    Ok(GridSettings {
        provider: cli.provider.or(file_provider).unwrap_or_default(),
        zone: cli.zone.clone().or_else(|| file.zone.clone()),
        intensity: cli.intensity.or(file_int),
        grid_url: cli.grid_url.clone().or_else(|| file.grid_url.clone()),
        lat_lon: cli.lat.zip(cli.lon).or(file_lat_lon),
        grid_poll: cli.grid_poll.or(file_poll),
        emaps_token: Secret::new(
            env("ELECTRICITYMAPS_API_KEY").or_else(|| file.electricitymaps_api_key.clone()),
        ),
        watttime_user: env("WATTTIME_USERNAME").or_else(|| file.watttime_username.clone()),
        watttime_password: Secret::new(
            env("WATTTIME_PASSWORD").or_else(|| file.watttime_password.clone()),
        ),
    })
}

/// A config file holding a token or password should not be readable by everyone.
fn secret_warnings(file: &FileConfig, p: &Path) -> Vec<String> {
    let file_has_secret =
        file.electricitymaps_api_key.is_some() || file.watttime_password.is_some();
    if file_has_secret && world_readable(p) {
        vec![format!(
            "config {} holds a token or password and is readable by everyone: chmod 600 it",
            p.display()
        )]
    } else {
        Vec::new()
    }
}

/// The carbon governor and the GPU power caps it steps through.
struct Governor {
    governor: bool,
    eta: f64,
    max_slowdown: Option<f64>,
    governor_profile: Duration,
    cap_step: f64,
}

fn governor_settings(
    cli: &MeasureOpts,
    file: &FileConfig,
    p: &Path,
) -> Result<Governor, ConfigError> {
    let file_gov = match file.governor.as_deref() {
        None => None,
        Some("off") => Some(false),
        Some("carbon") => Some(true),
        Some(other) => {
            return Err(key_error(p, "governor")(format!(
                "{other:?} is not off or carbon"
            )));
        }
    };
    let file_eta = check(p, "eta", file.eta, |v| {
        cli::parse_unit(&v.to_string()).map(|_| ())
    })?;
    let file_cap_step = check(p, "cap_step", file.cap_step, within(&CAP_STEP_BOUND))?;
    let file_slowdown = file
        .max_slowdown
        .as_deref()
        .map(cli::parse_slowdown)
        .transpose()
        .map_err(key_error(p, "max_slowdown"))?;
    let file_profile = file
        .governor_profile
        .as_deref()
        .map(cli::parse_duration)
        .transpose()
        .map_err(key_error(p, "governor_profile"))?;
    Ok(Governor {
        governor: match cli.governor.as_deref() {
            Some(g) => g == "carbon",
            None => file_gov.unwrap_or(false),
        },
        eta: cli.eta.or(file_eta).unwrap_or(0.5),
        max_slowdown: cli.max_slowdown.or(file_slowdown),
        governor_profile: cli
            .governor_profile
            .or(file_profile)
            .unwrap_or(Duration::from_secs(10)),
        cap_step: cli.cap_step.or(file_cap_step).unwrap_or(10.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_in_raw_text_and_redacted_from_messages() {
        let text =
            "pue = 1.2\nelectricitymaps_api_key = \"tok-1234\"\n watttime_password='pw-5678'\n";
        let found = secrets_in_text(text);
        assert_eq!(found, ["tok-1234", "pw-5678"]);
        assert_eq!(
            redact("key `pue`: \"tok-1234\" is not a PUE", &found),
            "key `pue`: \"***\" is not a PUE"
        );
        // Too short to be a secret: not redacted (it would blank out ordinary words).
        assert_eq!(redact("a b c", &["b".into()]), "a b c");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("zone = \"FR\"\n\nintervall = \"2s\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config c.toml, line 3:"), "{err}");
        assert!(err.contains("intervall"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse("pue = true\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn cli_wins_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "zone = \"FR\"\npue = \"aws\"\ninterval = \"2s\"\n").unwrap();
        let mut cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        let s = resolve(&cli).unwrap();
        assert_eq!(s.grid.zone.as_deref(), Some("FR"));
        assert_eq!(s.pue, 1.2);
        assert_eq!(s.interval, Duration::from_secs(2));
        cli.zone = Some("DE".into());
        cli.pue = Some(1.5);
        let s = resolve(&cli).unwrap();
        assert_eq!(s.grid.zone.as_deref(), Some("DE"));
        assert_eq!(s.pue, 1.5);
        std::fs::write(&f, "pue = 0.5\n").unwrap();
        let err = resolve(&cli).unwrap_err().to_string();
        assert!(err.contains("`pue`"), "{err}");
    }

    #[test]
    fn tracking_mode_from_the_file_or_the_command_line() {
        use crate::report::run_file::TrackingMode;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let mut cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        std::fs::write(&f, "zone = \"FR\"\n").unwrap();
        assert_eq!(resolve(&cli).unwrap().tracking_mode, TrackingMode::Machine);
        std::fs::write(&f, "tracking_mode = \"process\"\n").unwrap();
        assert_eq!(resolve(&cli).unwrap().tracking_mode, TrackingMode::Process);
        cli.tracking_mode = Some("machine".into());
        assert_eq!(resolve(&cli).unwrap().tracking_mode, TrackingMode::Machine);
        cli.tracking_mode = None;
        std::fs::write(&f, "tracking_mode = \"both\"\n").unwrap();
        let err = resolve(&cli).unwrap_err().to_string();
        assert!(
            err.contains("`tracking_mode`") && err.contains("machine or process"),
            "{err}"
        );
    }

    #[test]
    fn grid_keys_and_a_world_readable_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "zone = \"GB-13\"\nprovider = \"uk\"\ngrid_url = \"http://127.0.0.1:1\"\n\
             grid_poll = \"10m\"\nlat = 51.5\nlon = -0.1\nwatttime_username = \"u\"\n\
             electricitymaps_api_key = \"k\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        let s = resolve(&cli).unwrap();
        assert_eq!(s.grid.provider, ProviderKind::Uk);
        assert_eq!(s.grid.grid_poll, Some(Duration::from_secs(600)));
        assert_eq!(s.grid.lat_lon, Some((51.5, -0.1)));
        assert_eq!(s.grid.zone.as_deref(), Some("GB-13"));
        assert!(s.grid.emaps_token.is_some());
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("chmod 600"), "{:?}", s.warnings);
        // The warning never shows the secret.
        assert!(!s.warnings[0].contains("= \"k\""));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(resolve(&cli).unwrap().warnings.is_empty());
        std::fs::write(&f, "provider = \"bing\"\n").unwrap();
        assert!(
            resolve(&cli)
                .unwrap_err()
                .to_string()
                .contains("`provider`")
        );
        std::fs::write(&f, "lat = 10.0\n").unwrap();
        assert!(
            resolve(&cli)
                .unwrap_err()
                .to_string()
                .contains("`lat` and `lon`")
        );
    }

    #[test]
    fn run_keys_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "epochs = 20.0\nmetric = [\"f1=F1 ([0-9.]+)\"]\ntarget_metric = \"F1\"\n\
             governor = \"carbon\"\neta = 0.3\nembodied_kg = 100.0\nmax_slowdown = \"3%\"\n",
        )
        .unwrap();
        let cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        let s = resolve(&cli).unwrap();
        assert_eq!(s.target, Some(crate::ui::model::Target::Epochs(20.0)));
        assert_eq!(s.metrics, ["f1=F1 ([0-9.]+)"]);
        assert_eq!(s.target_metric.as_deref(), Some("f1"));
        assert!(s.governor);
        assert_eq!((s.eta, s.embodied_kg), (0.3, Some(100.0)));
        assert_eq!(s.max_slowdown, Some(0.03));
        let over = MeasureOpts {
            max_slowdown: Some(0.1),
            ..cli.clone()
        };
        assert_eq!(resolve(&over).unwrap().max_slowdown, Some(0.1));
        std::fs::write(&f, "max_slowdown = \"-2%\"\n").unwrap();
        assert!(
            resolve(&cli)
                .unwrap_err()
                .to_string()
                .contains("`max_slowdown`")
        );
        std::fs::write(&f, "target_accuracy = 150.0\n").unwrap();
        assert!(
            resolve(&cli)
                .unwrap_err()
                .to_string()
                .contains("`target_accuracy`")
        );
        std::fs::write(&f, "governor = \"max\"\n").unwrap();
        assert!(
            resolve(&cli)
                .unwrap_err()
                .to_string()
                .contains("`governor`")
        );
    }

    #[test]
    fn errors_are_typed_and_keep_their_one_line_texts() {
        let err = parse("zone = \"FR\"\n\nintervall = \"2s\"\n", Path::new("c.toml")).unwrap_err();
        let ConfigError::UnknownKey {
            line, key, message, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*line, key.as_str()), (Some(3), "intervall"));
        assert!(message.starts_with("unknown field `intervall`, expected one of"));
        assert_eq!(err.to_string(), format!("config c.toml, line 3: {message}"));
        let err = parse("pue = true\n", Path::new("c.toml")).unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line: Some(1), .. }),
            "{err:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        let err = resolve(&cli).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("config {}: cannot read: ", f.display()))
        );
        std::fs::write(&f, "pue = 0.5\n").unwrap();
        let err = resolve(&cli).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadValue { key: "pue", .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "config {}: key `pue`: \"0.5\": a PUE is from 1 to 3",
                f.display()
            )
        );
        std::fs::write(&f, "governor = \"max\"\n").unwrap();
        assert_eq!(
            resolve(&cli).unwrap_err().to_string(),
            format!(
                "config {}: key `governor`: \"max\" is not off or carbon",
                f.display()
            )
        );
        std::fs::write(&f, "lon = 1.0\n").unwrap();
        let err = resolve(&cli).unwrap_err();
        assert!(matches!(err, ConfigError::LatLon { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "config {}: keys `lat` and `lon` go together, within ±90 and ±180",
                f.display()
            )
        );
    }

    #[test]
    fn a_secret_under_the_wrong_key_is_redacted_in_the_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "watttime_password = \"hunter22\"\npue = \"hunter22\"\n").unwrap();
        let cli = MeasureOpts {
            config: Some(f.clone()),
            ..Default::default()
        };
        let err = resolve(&cli).unwrap_err();
        let ConfigError::BadValue { key, reason, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*key, "pue");
        assert!(
            !reason.contains("hunter22") && reason.contains("***"),
            "{reason}"
        );
        assert!(!err.to_string().contains("hunter22"));
    }
}
