//! The fake `libnvidia-ml.so.1` (tests/fake_nvml/fake_nvml.c), built once per test binary with
//! the system C compiler, and what a test reads back from it: the caps in its shared state
//! file, the history of every cap set, and the log of every power and energy reading it served.
//!
//! No C compiler: the tests that need the fake say why and pass, unless `CI` or
//! `CARBONTOP_CI_STRICT` is set (to anything but empty, `0` or `false`): then that is a failure,
//! so CI never silently stops running the NVML path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = include_str!("../fake_nvml/fake_nvml.c");

/// Set to anything but empty, `0` or `false`.
fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Whether a missing prerequisite must fail the test instead of skipping it.
pub fn strict() -> bool {
    flag("CI") || flag("CARBONTOP_CI_STRICT")
}

/// Compiles the fake into `target/tmp/fake-nvml-HASH/libnvidia-ml.so.1` (once per source
/// version: written under a temporary name and renamed, so parallel test binaries never load
/// half a file). The directory, or why it could not be built.
fn build() -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    SOURCE.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-nvml-{:016x}", h.finish()));
    let lib = dir.join("libnvidia-ml.so.1");
    if lib.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
    let tmp = dir.join(format!("libnvidia-ml.so.1.tmp.{}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args([
            "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&tmp)
        .arg(&src)
        .output()
        .map_err(|e| format!("no C compiler ({cc}: {e}) to build the fake NVML"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{cc} could not build {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    Ok(dir)
}

/// The directory holding the fake `libnvidia-ml.so.1`; `None` (said once) when there is no C
/// compiler and the run is not strict. A compiler that fails on the source always fails.
pub fn library_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(build) {
        Ok(d) => Some(d),
        Err(why) if why.starts_with("no C compiler") && !strict() => {
            eprintln!("skipped: {why}");
            None
        }
        Err(why) => panic!("{why}"),
    }
}

/// One scenario for the fake in a test's directory: the scenario file, the shared state and
/// the log of what was served.
pub struct FakeNvml {
    pub lib_dir: PathBuf,
    pub scenario: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

/// One cap the fake was asked to set: when (s since the scenario's origin), by which process,
/// on which GPU, from and to (mW).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapSet {
    pub t: f64,
    pub pid: u32,
    pub gpu: u32,
    pub old_mw: u32,
    pub new_mw: u32,
}

impl FakeNvml {
    /// Writes `scenario` (tests/fake_nvml/README.md) into `dir`; `None` when the fake cannot
    /// be built here (skipped, see `library_dir`).
    pub fn new(dir: &Path, scenario: &str) -> Option<Self> {
        let lib_dir = library_dir()?.to_path_buf();
        let f = Self {
            lib_dir,
            scenario: dir.join("scenario.toml"),
            state: dir.join("nvml-state"),
            log: dir.join("nvml-served.log"),
        };
        std::fs::write(&f.scenario, scenario).unwrap();
        Some(f)
    }

    pub fn lib(&self) -> PathBuf {
        self.lib_dir.join("libnvidia-ml.so.1")
    }

    /// Points `c` at the fake through `CARBONTOP_NVML_LIB`.
    pub fn apply<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        self.apply_env(c).env("CARBONTOP_NVML_LIB", self.lib())
    }

    /// The scenario, state and log variables alone (for a test that loads the library another
    /// way, e.g. `LD_LIBRARY_PATH`). The variables that say which GPUs a job was given are
    /// removed: they are about the machine running the tests, not the scenario's (a test sets
    /// the ones it means after this).
    pub fn apply_env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        for v in [
            "CUDA_VISIBLE_DEVICES",
            "CUDA_DEVICE_ORDER",
            "SLURM_STEP_GPUS",
            "SLURM_JOB_GPUS",
            "GPU_DEVICE_ORDINAL",
            "NVIDIA_VISIBLE_DEVICES",
        ] {
            c.env_remove(v);
        }
        c.env("FAKE_NVML_SCENARIO", &self.scenario)
            .env("FAKE_NVML_STATE", &self.state)
            .env("FAKE_NVML_LOG", &self.log)
    }

    fn state_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.state)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The caps in force now (mW), per GPU; empty before any process loaded the fake.
    pub fn caps_mw(&self) -> Vec<u32> {
        self.state_lines()
            .iter()
            .filter_map(|l| l.strip_prefix("cap "))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
            .collect()
    }

    /// Every cap set so far, in order.
    pub fn sets(&self) -> Vec<CapSet> {
        self.state_lines()
            .iter()
            .filter_map(|l| l.strip_prefix("set "))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                CapSet {
                    t: f[0].parse().unwrap(),
                    pid: f[1].parse().unwrap(),
                    gpu: f[2].parse().unwrap(),
                    old_mw: f[3].parse().unwrap(),
                    new_mw: f[4].parse().unwrap(),
                }
            })
            .collect()
    }

    /// Every `what` (`power` in mW, `energy` in mJ) reading served for `gpu`, in order, as (s
    /// since the scenario's origin, value).
    pub fn served(&self, what: &str, gpu: u32) -> Vec<(f64, u64)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 5 && f[2] == what && f[3] == gpu.to_string())
                    .then(|| (f[0].parse().unwrap(), f[4].parse().unwrap()))
            })
            .collect()
    }
}

/// ∫ of a step trace `[(from s, mW)]` (the first value also before its time) over [a, b], in mJ.
pub fn trace_mj(trace: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let mut e = 0.0;
    for (k, &(_, mw)) in trace.iter().enumerate() {
        let from = if k == 0 {
            f64::NEG_INFINITY
        } else {
            trace[k].0
        };
        let until = trace.get(k + 1).map_or(f64::INFINITY, |s| s.0);
        let (lo, hi) = (from.max(a), until.min(b));
        if hi > lo {
            e += mw * (hi - lo);
        }
    }
    e
}
