//! The sampler: owns the live sources and turns them into one `Sample` per tick on its own
//! thread, at absolute deadlines (start + k × interval) so ticks never drift.

use crate::sample::{CpuReading, Progress, Sample};
use crate::source::grid::GridSource;
use crate::source::process::{ProcessTree, gpu_tree_share};
use crate::source::sockdiag::{Cidr, SockDiag};
use crate::source::{CpuSource, GpuSource, MemSource, NetSource};
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every live source, chosen at start-up.
pub struct Sources {
    pub gpu: Option<Box<dyn GpuSource>>,
    pub cpu: Option<Box<dyn CpuSource>>,
    pub mem: Option<Box<dyn MemSource>>,
    pub net: Option<Box<dyn NetSource>>,
    pub grid: Box<dyn GridSource>,
    /// `run -- CMD`: the site's own address ranges, for the command's traffic (sock_diag).
    pub cluster: Vec<Cidr>,
    /// The RDMA ports, where the machine has any.
    pub rdma: Option<crate::source::rdma::RdmaPorts>,
}

/// Reads every source once per call.
pub struct Sampler {
    sources: Sources,
    start: Instant,
    /// `run -- CMD`: the command's pid once it has started (0 until then).
    pid: Arc<AtomicU32>,
    tree: Option<ProcessTree>,
    /// The command's own traffic, once it has started.
    sockets: Option<SockDiag>,
}

impl Sampler {
    pub fn new(sources: Sources) -> Self {
        Self {
            sources,
            start: Instant::now(),
            pid: Arc::new(AtomicU32::new(0)),
            tree: None,
            sockets: None,
        }
    }

    /// Watches these processes' share from the first tick (a SLURM job's, `record
    /// --slurm-job`) instead of a command's tree.
    pub fn watch(&mut self, tree: ProcessTree) {
        self.tree = Some(tree);
        self.sockets = Some(SockDiag::new(std::mem::take(&mut self.sources.cluster)));
    }

    /// Where the app puts the command's pid, so its process tree's CPU share is read.
    pub fn pid_slot(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.pid)
    }

    /// Takes one sample now; warnings the sources raised since the last call come with it.
    pub fn sample(&mut self) -> (Sample, Vec<String>) {
        let mut warnings = Vec::new();
        let s = &mut self.sources;
        let mut progress = Progress::default();
        let mut gpus = match s.gpu.as_mut() {
            Some(g) => {
                let r = g.read();
                warnings.extend(g.take_warning());
                if let Some(p) = g.progress() {
                    progress = p;
                }
                r
            }
            None => Vec::new(),
        };
        let mut bands = crate::sample::EstimateBands::default();
        let cpu = match s.cpu.as_mut() {
            Some(c) => {
                let r = c.read();
                warnings.extend(c.take_warning());
                bands.cpu = c.band();
                r
            }
            None => CpuReading::Unknown,
        };
        // The tick's instant: its elapsed_s, and the end of the interval a counter's average
        // power is taken over (so power × Δelapsed is the counter's energy exactly).
        let tick = Instant::now();
        let mem = s.mem.as_mut().and_then(|m| {
            let r = m.read(tick);
            warnings.extend(m.take_warning());
            bands.mem = m.band();
            r
        });
        let mut net = s.net.as_mut().and_then(|n| n.read());
        let elapsed_s = tick.saturating_duration_since(self.start).as_secs_f64();
        // Wall-clock time is for display, the CSV and the grid slot only; energy integrates
        // over `elapsed_s` (monotonic), so an NTP step or a manual clock change moves no joule.
        let time = Utc::now() + test_clock_jump(elapsed_s);
        let pid = self.pid.load(Ordering::Relaxed);
        if self.tree.is_none() && pid != 0 {
            self.tree = Some(ProcessTree::new(pid, "/proc".into()));
            self.sockets = Some(SockDiag::new(std::mem::take(&mut s.cluster)));
        }
        let process = self.tree.as_mut().and_then(ProcessTree::read);
        // The command's own TCP traffic, from its tree's sockets.
        if let (Some(tree), Some(sd), Some(n)) =
            (self.tree.as_mut(), self.sockets.as_mut(), net.as_mut())
        {
            n.own = sd.read(tree);
            warnings.extend(sd.take_warning());
        }
        // RDMA port traffic: the machine's, and the command's while it alone uses RDMA.
        if let Some(r) = s.rdma.as_mut() {
            let reading = r.read(self.tree.as_ref().map(ProcessTree::pids));
            warnings.extend(r.take_warning());
            net.get_or_insert_with(Default::default).rdma = Some(reading);
        }
        // The tree's share of each GPU, where the driver reports its processes.
        if let (Some(tree), Some(g)) = (self.tree.as_ref(), s.gpu.as_mut()) {
            for (r, procs) in gpus.iter_mut().zip(g.processes()) {
                r.tree_share = procs.map(|p| gpu_tree_share(&p, tree.pids()));
            }
        }
        // None while a live provider's first answer is pending: the Session holds the row.
        let intensity = s.grid.reading(time);
        warnings.extend(s.grid.take_warning());
        (
            Sample {
                time,
                elapsed_s,
                gpus,
                cpu,
                mem,
                net,
                intensity,
                progress,
                process,
                bands,
            },
            warnings,
        )
    }
}

/// Fault injection for the tests (debug builds only): `CARBONTOP_TEST_CLOCK_JUMP=AFTER:JUMP`
/// moves the wall clock by JUMP seconds (negative: backwards) once the run is AFTER seconds old,
/// as an NTP step or an operator's `date -s` would.
#[cfg(debug_assertions)]
fn test_clock_jump(elapsed_s: f64) -> chrono::TimeDelta {
    let parsed = std::env::var("CARBONTOP_TEST_CLOCK_JUMP")
        .ok()
        .and_then(|v| {
            let (a, j) = v.split_once(':')?;
            Some((a.parse::<f64>().ok()?, j.parse::<f64>().ok()?))
        });
    match parsed {
        Some((after, jump)) if elapsed_s >= after && jump.is_finite() => {
            chrono::TimeDelta::milliseconds((jump * 1000.0) as i64)
        }
        _ => chrono::TimeDelta::zero(),
    }
}

#[cfg(not(debug_assertions))]
fn test_clock_jump(_elapsed_s: f64) -> chrono::TimeDelta {
    chrono::TimeDelta::zero()
}

/// What the sampler thread emits.
pub enum SamplerEvent {
    Sample(Box<Sample>, Vec<String>),
    /// The sampler has stopped; the sample before this one was the last.
    Done,
}

/// A running sampler thread.
pub struct SamplerHandle {
    stop: Sender<()>,
    join: Option<JoinHandle<()>>,
}

impl SamplerHandle {
    /// Asks for one last sample now, then the end.
    pub fn stop(&self) {
        let _ = self.stop.send(());
    }

    pub fn join(mut self) {
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Starts sampling at once and then every `interval`; each event goes through `emit`, which
/// returns false when nobody listens any more.
pub fn spawn<F>(mut sampler: Sampler, interval: Duration, emit: F) -> std::io::Result<SamplerHandle>
where
    F: Fn(SamplerEvent) -> bool + Send + 'static,
{
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let join = std::thread::Builder::new()
        .name("carbontop-sampler".into())
        .spawn(move || {
            let start = Instant::now();
            let mut k: u32 = 0;
            loop {
                let (s, w) = sampler.sample();
                if !emit(SamplerEvent::Sample(Box::new(s), w)) {
                    return;
                }
                let last = Instant::now();
                // Next deadline on the start + k × interval grid; skip ticks we slept through.
                k = k.saturating_add(1);
                let mut deadline = start + interval * k;
                while deadline <= last {
                    k = k.saturating_add(1);
                    deadline = start + interval * k;
                }
                match stop_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        // A closing sample, unless the last one is only moments old.
                        if last.elapsed() >= Duration::from_millis(20) {
                            let (s, w) = sampler.sample();
                            emit(SamplerEvent::Sample(Box::new(s), w));
                        }
                        emit(SamplerEvent::Done);
                        return;
                    }
                }
            }
        })?;
    Ok(SamplerHandle {
        stop: stop_tx,
        join: Some(join),
    })
}
