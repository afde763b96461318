//! The Ledger folds samples into energy and carbon (DESIGN.md §5).
//!
//! - Energy per component: counter deltas where the source has a counter (NVML mJ, RAPL µJ with
//!   wrap-around at `max_energy_range_uj`), else the trapezoid of instantaneous power, or
//!   power × Δt for readings that are already interval averages.
//! - Facility energy: E_facility = E_it × PUE.
//! - Operational carbon: C = Σ_ticks E_tick × I(t_tick) — the intensity valid at each tick, never
//!   the total times the latest intensity.
//!
//! Every power figure in a `Tick` is the average over the interval that ends at that tick, so
//! `energy_kwh[k] − energy_kwh[k−1] = total_power_w[k] × Δt × PUE / 3.6e6` holds row by row in
//! samples.csv, and replaying a recording reproduces it exactly.

use crate::engine::caplog::CapLog;
use crate::engine::constants::{GRID_TABLE_BAND, J_PER_KWH, PortModel, network_energy_j};
use crate::sample::{
    CpuReading, GpuReading, Intensity, IntensitySource, NetReading, OwnTraffic, PowerReading,
    ProcessRecorded, Progress, RaplCounter, Sample, SourceKind, Traffic,
};
use crate::units::{FacilityKwh, GPerKwh, GramsCo2e, Pue};
use chrono::{DateTime, Utc};

/// A RAPL package draws far less than this; a "wrap" implying more is a counter reset.
const RAPL_MAX_PLAUSIBLE_W: f64 = 5_000.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LedgerConfig {
    /// Power usage effectiveness, ≥ 1.
    pub pue: Pue,
    /// The internet path's energy intensity (kWh per GB) for the command's traffic to public
    /// addresses: its comms footprint, apart from the machine's energy.
    pub net_kwh_per_gb: f64,
    /// The port power model that turns bytes into the power of this machine's NICs and switch
    /// ports, bounded by their power at line rate.
    pub port: PortModel,
    /// Embodied emissions of the hardware (TE, kg) amortised over the run: each tick's
    /// `embodied_co2e_g` is TE × elapsed / lifetime (SCI M). 0: not counted.
    pub embodied_kg: f64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            pue: Pue::default(),
            net_kwh_per_gb: crate::engine::constants::NETWORK_KWH_PER_GB,
            port: PortModel::default(),
            embodied_kg: 0.0,
        }
    }
}

/// One GPU's figures for one tick (a samples.csv column group).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuTick {
    /// The GPU's number as NVML and nvidia-smi give it (a replayed recording: its column
    /// group's number): the one number every output shows.
    pub index: u32,
    pub power_w: Option<f64>,
    /// Cumulative energy since the start of the run (J, IT energy, without PUE).
    pub energy_j: Option<f64>,
    pub util_pct: Option<f64>,
    pub mem_used_mib: Option<f64>,
    pub cap_w: Option<f64>,
    /// SM clock (MHz), not recorded (the governor's proxy).
    pub sm_clock_mhz: Option<f64>,
    /// The job holds MIG instances of this card: power and energy above are their share of
    /// the card's (`engine::mig`), an estimate.
    pub mig: Option<crate::sample::MigShare>,
    /// Over the last minute, (integrated power readings − energy counter) / counter, once the
    /// window decides (`engine::gpu_check`); the counter stays the figure.
    pub power_vs_counter: Option<f64>,
}

/// One row of samples.csv: everything the outputs need about one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub timestamp: DateTime<Utc>,
    pub elapsed_s: f64,
    /// Length of the interval this tick closes (0 for the first).
    pub dt_s: f64,
    pub gpu_power_w: Option<f64>,
    pub cpu_power_w: Option<f64>,
    pub mem_power_w: Option<f64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub net_power_w: Option<f64>,
    pub total_power_w: Option<f64>,
    /// Cumulative facility energy (includes PUE).
    pub energy_kwh: f64,
    pub intensity_g_per_kwh: Option<f64>,
    /// Where the intensity comes from; `None` while no intensity is known.
    pub intensity_source: Option<IntensitySource>,
    /// Cumulative operational carbon (includes PUE).
    pub co2e_g: f64,
    pub embodied_co2e_g: Option<f64>,
    pub progress: Progress,
    /// Sum of the GPUs' caps (W) when every GPU reports one.
    pub power_cap_w: Option<f64>,
    pub gpus: Vec<GpuTick>,
    /// Cap changes made during the interval this tick closes (set by the app, which makes
    /// them; the Ledger leaves it empty).
    pub cap_change: CapLog,
    /// `run -- CMD`: the CPU power attributed to the command's process tree (its share of the
    /// machine's busy CPU time over the interval × the CPU power).
    pub process_cpu_w: Option<f64>,
    /// `run -- CMD`: the GPU power attributed to the command's process tree: Σ over GPUs whose
    /// driver reports processes of the tree's share × the GPU's power (Kepler's SM split).
    pub process_gpu_w: Option<f64>,
    /// `run -- CMD`: the memory power attributed to the command's process tree: its resident
    /// memory's share of MemTotal × the memory power.
    pub process_mem_w: Option<f64>,
    /// `run -- CMD`: the command's own network traffic and what it cost, where known.
    pub cmd_net: Option<CmdNet>,
    /// The RDMA ports' traffic and power, where the machine has RDMA ports.
    pub rdma: Option<RdmaTick>,
}

/// The RDMA ports at a tick (samples.csv's `net_rdma_*` and `net_cmd_rdma_*` columns).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RdmaTick {
    /// The machine's RDMA bytes since the start.
    pub machine: Traffic,
    /// The RDMA ports' power over the interval (W; part of `net_power_w`); None on the first.
    pub power_w: Option<f64>,
    /// `run -- CMD`: the command's part of the RDMA bytes.
    pub own: Option<Traffic>,
}

/// `run -- CMD`: the command's own TCP traffic at a tick (samples.csv's `net_cmd_*` columns).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CmdNet {
    /// Bytes since the command started, to cluster and to internet peers.
    pub cluster: Traffic,
    pub internet: Traffic,
    /// The port power of its traffic over the interval (W): its share of this machine's NIC
    /// and switch-port power (part of the machine's network power, like `process_cpu_w` of the
    /// CPU's); None on the first interval.
    pub port_w: Option<f64>,
    /// The internet path's energy for its public traffic so far (kWh): other people's
    /// equipment, never this machine's energy.
    pub internet_kwh: f64,
    /// That energy's carbon so far (g, at the tick's intensity, without this site's PUE).
    pub internet_co2e_g: f64,
    /// Its RDMA bytes since it started (cluster traffic; in `port_w`).
    pub rdma: Traffic,
}

/// Cumulative totals, by component.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub ticks: u64,
    pub elapsed_s: f64,
    /// IT energy per component (J, without PUE).
    pub gpu_j: f64,
    pub cpu_j: f64,
    pub mem_j: f64,
    pub net_j: f64,
    /// Facility energy (kWh, with PUE).
    pub energy_kwh: f64,
    pub co2e_g: f64,
    /// Operational carbon per component (g, with PUE): each tick's carbon split by its
    /// components' energy, so each is Σ E_c × PUE × I(t) and they add up to `co2e_g`.
    pub co2e_by: ByComponent,
    /// Each component's carbon at the low and high ends of its estimate's band, tick by tick
    /// (the band the source gave for that tick; a measured one's point value).
    pub co2e_low_by: ByComponent,
    pub co2e_high_by: ByComponent,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Ticks whose interval saw a RAPL counter go backwards implausibly (reset, not wrap).
    pub rapl_resets: u64,
    /// Ticks that wrapped a RAPL counter.
    pub rapl_wraps: u64,
    /// CPU energy attributed to the watched process tree (J, IT), and the CPU energy of the
    /// intervals it was measured over, for its share.
    pub process_cpu_j: f64,
    pub process_machine_cpu_j: f64,
    /// GPU energy attributed to the tree (J, IT), and the energy of the GPUs (and intervals)
    /// whose processes were known, for its share.
    pub process_gpu_j: f64,
    pub process_machine_gpu_j: f64,
    /// Memory energy attributed to the tree by its resident share (J, IT), and the memory
    /// energy of the intervals it was measured over.
    pub process_mem_j: f64,
    pub process_machine_mem_j: f64,
    /// `run -- CMD` (`--tracking-mode process`): the command's own figures — whether any sample
    /// watched a process tree; the GPU energy counted for it (its share where the driver
    /// reports its processes, else the whole GPU, as CodeCarbon counts the GPUs it is given;
    /// J, IT); and the operational carbon of its CPU, GPU, memory and port energy (g, with PUE,
    /// tick by tick at I(t)).
    pub process_known: bool,
    pub process_mode_gpu_j: f64,
    pub process_co2e_g: f64,
    /// Operational carbon priced from the embedded table's annual means (g, with PUE): its
    /// part of `co2e_g` that carries the table's band (`GRID_TABLE_BAND`).
    pub co2e_table_g: f64,
    /// The machine's network energy at the ends of the port model's band (J, IT).
    pub net_low_j: f64,
    pub net_high_j: f64,
    /// `run -- CMD`: the command's own traffic and its cost.
    pub cmd_net: CmdNetTotals,
    /// The RDMA ports: their bytes since the start (None: no RDMA port seen) and their part of
    /// `net_j` (J, IT).
    pub rdma: Option<Traffic>,
    pub rdma_j: f64,
}

/// `run -- CMD`: the command's own network traffic and its cost, so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CmdNetTotals {
    /// Whether any sample carried the command's traffic.
    pub known: bool,
    pub cluster: Traffic,
    pub internet: Traffic,
    /// Port energy of its traffic (J, IT; a share of `net_j`), the cluster traffic's part of
    /// it, and the band's ends.
    pub port_j: f64,
    pub port_cluster_j: f64,
    pub port_low_j: f64,
    pub port_high_j: f64,
    /// The internet path's energy (J; not this machine's) and its carbon (g).
    pub internet_j: f64,
    pub internet_co2e_g: f64,
    /// Its RDMA bytes (cluster traffic, part of `port_j` and `port_cluster_j`).
    pub rdma: Traffic,
}

/// One figure per IT component.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ByComponent {
    pub gpu: f64,
    pub cpu: f64,
    pub mem: f64,
    pub net: f64,
}

impl ByComponent {
    /// `total` split in proportion to these parts (all zero when they sum to zero).
    pub fn split(&self, total: f64) -> ByComponent {
        let sum = self.gpu + self.cpu + self.mem + self.net;
        if sum > 0.0 {
            let k = total / sum;
            ByComponent {
                gpu: self.gpu * k,
                cpu: self.cpu * k,
                mem: self.mem * k,
                net: self.net * k,
            }
        } else {
            ByComponent::default()
        }
    }

    pub fn add(&mut self, o: &ByComponent) {
        self.gpu += o.gpu;
        self.cpu += o.cpu;
        self.mem += o.mem;
        self.net += o.net;
    }
}

impl Totals {
    pub fn it_j(&self) -> f64 {
        self.gpu_j + self.cpu_j + self.mem_j + self.net_j
    }

    /// Energy-weighted mean intensity over the run (g/kWh), if any energy was used.
    pub fn mean_intensity(&self) -> Option<f64> {
        (self.energy_kwh > 0.0).then(|| self.co2e_g / self.energy_kwh)
    }
}

/// The pure accounting engine.
#[derive(Debug, Clone)]
pub struct Ledger {
    cfg: LedgerConfig,
    prev: Option<Sample>,
    totals: Totals,
    gpu_energy_j: Vec<f64>,
    gpu_has_energy: Vec<bool>,
    /// Each GPU's energy counter checked against its integrated power readings.
    gpu_check: crate::engine::gpu_check::CounterCheck,
    last_intensity: Option<Intensity>,
    /// The last RAPL counters read and when: a tick whose read failed loses no energy, the
    /// next good read counts the whole gap.
    last_rapl: Option<(Vec<RaplCounter>, f64)>,
    /// The command's traffic as last accounted, and when (its bytes since then are the next
    /// interval's, however many ticks had none).
    last_own: Option<(OwnTraffic, f64)>,
    /// A replay's last recorded internet-path energy (kWh).
    last_internet_kwh: f64,
    /// The command's RDMA bytes as last accounted.
    last_own_rdma: Traffic,
    /// The RDMA ports' power over this tick's interval (W), for its row.
    rdma_w: Option<f64>,
}

impl Ledger {
    pub fn new(cfg: LedgerConfig) -> Self {
        Self {
            cfg,
            prev: None,
            totals: Totals::default(),
            gpu_energy_j: Vec::new(),
            gpu_has_energy: Vec::new(),
            gpu_check: Default::default(),
            last_intensity: None,
            last_rapl: None,
            last_own: None,
            last_internet_kwh: 0.0,
            last_own_rdma: Traffic::default(),
            rdma_w: None,
        }
    }

    /// Changes the PUE for the ticks that follow (replay learns it from the recording).
    pub fn set_pue(&mut self, pue: Pue) {
        self.cfg.pue = pue;
    }

    pub fn config(&self) -> LedgerConfig {
        self.cfg
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Folds one sample in and returns the tick's row.
    pub fn push(&mut self, s: Sample) -> Tick {
        let prev = self.prev.take();
        let p = prev.as_ref();
        let dt = p.map_or(0.0, |p| (s.elapsed_s - p.elapsed_s).max(0.0));
        let first = p.is_none();
        let gpu = self.fold_gpus(&s, p, dt, first);
        let cpu = self.fold_cpu(&s, p, dt, first);
        let old_mem = p.and_then(|p| p.mem);
        let mem = s
            .mem
            .map_or((None, None), |m| power_interval(old_mem, m, dt, first));
        let (intensity, source) = self.intensity_at(&s);
        self.rdma_w = None;
        let net = self.fold_net(&s, p, dt, first);
        let port_before = self.totals.cmd_net.port_j;
        let cmd_net = s
            .net
            .and_then(|n| self.fold_cmd_net(&n, s.elapsed_s, intensity));
        let process = self.fold_process(&s, p, dt, &gpu, cpu, mem);
        let iv = Interval {
            dt,
            gpu,
            cpu,
            mem,
            net,
            process,
            cmd_net,
        };
        // E_facility = E_it × PUE; C = E_facility × I(t) (DESIGN.md §5).
        let price = |j: f64| {
            let facility = FacilityKwh::from_it_joules(j, self.cfg.pue);
            (
                facility,
                intensity.map_or(GramsCo2e(0.0), |i| facility * GPerKwh(i)),
            )
        };
        let (facility, co2e_tick) = price(iv.it_j());
        // The command's own carbon: its CPU, GPU and memory energy and its traffic's port
        // energy, at the same PUE and intensity.
        let port_j = self.totals.cmd_net.port_j - port_before;
        self.totals.process_co2e_g += price(iv.process.it_j + port_j).1.0;
        // A table value is an annual mean: its band widens this tick's carbon.
        let grid = match &source {
            Some(src) if src.kind == SourceKind::Table => {
                self.totals.co2e_table_g += co2e_tick.0;
                GRID_TABLE_BAND
            }
            _ => (1.0, 1.0),
        };
        self.add_to_totals(&s, &iv, facility, co2e_tick, grid);
        let tick = self.tick(&s, iv, intensity, source);
        self.prev = Some(s);
        tick
    }

    /// The GPUs over the interval: each one's energy and power, its counter's running total,
    /// and the watched tree's share of it.
    fn fold_gpus(&mut self, s: &Sample, prev: Option<&Sample>, dt: f64, first: bool) -> GpuPart {
        if self.gpu_energy_j.len() < s.gpus.len() {
            self.gpu_energy_j.resize(s.gpus.len(), 0.0);
            self.gpu_has_energy.resize(s.gpus.len(), false);
        }
        let mut part = GpuPart {
            gpus: Vec::with_capacity(s.gpus.len()),
            sum_w: None,
            sum_j: 0.0,
            unattributed_j: 0.0,
            low_j: 0.0,
            high_j: 0.0,
            process_w: None,
            power_cap_w: if s.gpus.is_empty() {
                None
            } else {
                s.gpus.iter().map(|g| g.cap_w).sum::<Option<f64>>()
            },
        };
        for (i, g) in s.gpus.iter().enumerate() {
            let prev_g = prev.and_then(|p| p.gpus.get(i));
            let (card_j, card_w) = gpu_interval(prev_g, g, dt, first);
            let power_vs_counter = self.check_counter(i, prev_g, g, s.elapsed_s, dt, first);
            // A MIG job is charged its instances' share of the card (an estimate, banded).
            let (e_j, p_w) = match &g.mig {
                Some(m) => {
                    let share = crate::engine::mig::share(m);
                    (card_j.map(|e| share * e), card_w.map(|w| share * w))
                }
                None => (card_j, card_w),
            };
            if let Some(e) = e_j {
                self.gpu_energy_j[i] += e;
                self.gpu_has_energy[i] = true;
                part.sum_j += e;
                let (lo, hi) = match (&g.mig, card_j) {
                    (Some(m), Some(card)) => {
                        let (_, lo, hi) = crate::engine::mig::charge(m, card, dt);
                        (lo, hi)
                    }
                    _ => (e, e),
                };
                part.low_j += lo;
                part.high_j += hi;
            }
            // The watched tree's share of this GPU over the interval (Kepler's SM split).
            if let Some(f) = g
                .tree_share
                .filter(|f| f.is_finite())
                .map(|f| f.clamp(0.0, 1.0))
            {
                if let Some(w) = p_w {
                    *part.process_w.get_or_insert(0.0) += f * w;
                }
                if let Some(e) = e_j {
                    self.totals.process_gpu_j += f * e;
                    self.totals.process_machine_gpu_j += e;
                }
            } else if let Some(e) = e_j {
                part.unattributed_j += e;
            }
            if let Some(w) = p_w {
                *part.sum_w.get_or_insert(0.0) += w;
            }
            part.gpus.push(GpuTick {
                index: g.index,
                power_w: p_w,
                energy_j: (self.gpu_has_energy[i] || g.power.is_some() || g.energy_mj.is_some())
                    .then_some(self.gpu_energy_j[i]),
                util_pct: g.util_pct,
                mem_used_mib: g.mem_used_mib,
                cap_w: g.cap_w,
                sm_clock_mhz: g.sm_clock_mhz,
                mig: g.mig.clone(),
                power_vs_counter,
            });
        }
        part
    }

    /// GPU `i`'s energy counter against the trapezoid of its power readings over the interval,
    /// when both ends have both; the window's difference once it decides.
    fn check_counter(
        &mut self,
        i: usize,
        prev: Option<&GpuReading>,
        cur: &GpuReading,
        end_s: f64,
        dt: f64,
        first: bool,
    ) -> Option<f64> {
        if first || dt <= 0.0 {
            return None;
        }
        let both = prev.and_then(|p| Some((p.energy_mj?, p.power?, cur.energy_mj?, cur.power?)));
        match both {
            Some((old_mj, old_p, new_mj, new_p)) if new_mj >= old_mj => {
                let counter_j = (new_mj - old_mj) as f64 / 1000.0;
                let power_j = power_interval(Some(old_p), new_p, dt, false).0?;
                self.gpu_check.push(i, end_s, dt, counter_j, power_j)
            }
            _ => {
                self.gpu_check.gap(i);
                None
            }
        }
    }

    /// The CPU over the interval: RAPL counter deltas (wraps and resets counted), else the
    /// power reading.
    fn fold_cpu(&mut self, s: &Sample, prev: Option<&Sample>, dt: f64, first: bool) -> Part {
        match (&s.cpu, prev.map(|p| &p.cpu)) {
            (CpuReading::Rapl(cur), _) => {
                let span = self
                    .last_rapl
                    .as_ref()
                    .map(|(old, t)| (old, s.elapsed_s - t));
                let out = match span {
                    Some((old, span)) if span > 0.0 => {
                        let (j, wraps, resets) = rapl_delta_j(old, cur, span);
                        self.totals.rapl_wraps += wraps;
                        self.totals.rapl_resets += resets;
                        // Power over this row's interval, so energy = power × Δt row by row
                        // (a gap's energy lands on the row that closes it).
                        (Some(j), (dt > 0.0).then(|| j / dt))
                    }
                    _ => (None, None),
                };
                self.last_rapl = Some((cur.clone(), s.elapsed_s));
                out
            }
            (CpuReading::Power(cur), old) => {
                let old = match old {
                    Some(CpuReading::Power(p)) => Some(*p),
                    _ => None,
                };
                power_interval(old, *cur, dt, first)
            }
            _ => (None, None),
        }
    }

    /// The machine's network over the interval: its power reading (a replay), else its
    /// interface counters' deltas through the port model, never above the ports' power at line
    /// rate; the counters themselves go into the totals.
    fn fold_net(&mut self, s: &Sample, prev: Option<&Sample>, dt: f64, first: bool) -> Part {
        let Some(cur) = s.net else {
            return (None, None);
        };
        let old = prev.and_then(|p| p.net);
        let bound = self.cfg.port.bound(cur.links);
        let (part, (lo, hi)) = match cur.power {
            Some(p) => {
                let part = power_interval(old.and_then(|o| o.power), p, dt, first);
                // A recording's power, at the band of the links it is replayed against.
                let j = part.0.unwrap_or(0.0);
                let (lo, hi) = bound.factors();
                (part, (j * lo, j * hi))
            }
            None => match old {
                Some(old) if dt > 0.0 => {
                    let bytes = counter_delta(old.rx_bytes, cur.rx_bytes)
                        + counter_delta(old.tx_bytes, cur.tx_bytes);
                    let (w, lo, hi) = bound.power_w(bytes, dt);
                    ((Some(w * dt), Some(w)), (lo * dt, hi * dt))
                }
                _ => ((None, None), (0.0, 0.0)),
            },
        };
        let (part, lo, hi) = self.fold_rdma(&cur, old.as_ref(), dt, part, (lo, hi));
        let t = &mut self.totals;
        t.net_low_j += lo;
        t.net_high_j += hi;
        t.net_rx_bytes = cur.rx_bytes;
        t.net_tx_bytes = cur.tx_bytes;
        part
    }

    /// The RDMA ports over the interval, added to the network's part: their counters' deltas
    /// through the port model with the RDMA links' power (cluster traffic: this machine's
    /// adapters and switch ports). A recording's network power already holds them.
    fn fold_rdma(
        &mut self,
        cur: &NetReading,
        old: Option<&NetReading>,
        dt: f64,
        part: Part,
        (lo, hi): (f64, f64),
    ) -> (Part, f64, f64) {
        let Some(r) = cur.rdma else {
            return (part, lo, hi);
        };
        self.totals.rdma = Some(r.machine);
        // A replay's ports are unknown: one of the assumed class, for the band.
        let bound = self
            .cfg
            .port
            .bound_rdma(r.ports.max(1), r.known, r.known_gbps);
        let (w, wl, wh) = match (cur.power, r.power_w, old.and_then(|o| o.rdma)) {
            (None, Some(w), _) if dt > 0.0 => {
                let (l, h) = bound.factors();
                (w, w * l, w * h)
            }
            (None, None, Some(o)) if dt > 0.0 => {
                bound.power_w(traffic_delta(o.machine, r.machine), dt)
            }
            _ => {
                // A recording's network power holds its RDMA ports' already.
                self.rdma_w = r.power_w;
                if dt > 0.0 {
                    self.totals.rdma_j += r.power_w.unwrap_or(0.0) * dt;
                }
                return (part, lo, hi);
            }
        };
        self.rdma_w = Some(w);
        self.totals.rdma_j += w * dt;
        let part = (
            Some(part.0.unwrap_or(0.0) + w * dt),
            Some(part.1.unwrap_or(0.0) + w),
        );
        (part, lo + wl * dt, hi + wh * dt)
    }

    /// `run -- CMD`: the command's own traffic since the last time it was accounted: its port
    /// power (its share of the machine's, bounded like it) and the internet path's energy of
    /// its public traffic at the configured kWh/GB (a replay: as recorded).
    fn fold_cmd_net(&mut self, n: &NetReading, at: f64, intensity: Option<f64>) -> Option<CmdNet> {
        let own = n.own?;
        let bound = self.cfg.port.bound(n.links);
        let (old, since) = self.last_own.unwrap_or((OwnTraffic::default(), at));
        let dt = at - since;
        let rec = n.own_recorded.unwrap_or_default();
        let t = &mut self.totals.cmd_net;
        t.known = true;
        t.cluster = own.cluster;
        t.internet = own.internet;
        let cluster = traffic_delta(old.cluster, own.cluster);
        let internet = traffic_delta(old.internet, own.internet);
        // Its RDMA bytes: cluster traffic on the RDMA ports, at their links' power.
        let rdma_own = n.rdma.and_then(|r| r.own).unwrap_or_default();
        t.rdma = rdma_own;
        let rdma = traffic_delta(self.last_own_rdma, rdma_own);
        let rdma_bound = n
            .rdma
            .map(|r| self.cfg.port.bound_rdma(r.ports, r.known, r.known_gbps));
        // With no interval yet (the first reading), the bytes wait for the next one.
        let port_w = if dt > 0.0 {
            let (w, lo, hi) = match rec.port_w {
                Some(w) => {
                    let (lo, hi) = bound.factors();
                    (w, w * lo, w * hi)
                }
                None => {
                    let (w, lo, hi) = bound.power_w(cluster + internet, dt);
                    let (rw, rlo, rhi) =
                        rdma_bound.map_or((0.0, 0.0, 0.0), |b| b.power_w(rdma, dt));
                    (w + rw, lo + rlo, hi + rhi)
                }
            };
            t.port_j += w * dt;
            t.port_low_j += lo * dt;
            t.port_high_j += hi * dt;
            let all = cluster + internet + rdma;
            if all > 0 {
                t.port_cluster_j += w * dt * (cluster + rdma) as f64 / all as f64;
            }
            self.last_own_rdma = rdma_own;
            let path_j = match rec.internet_kwh {
                Some(kwh) => {
                    let j = (kwh - self.last_internet_kwh).max(0.0) * J_PER_KWH;
                    self.last_internet_kwh = kwh;
                    j
                }
                None => network_energy_j(internet, self.cfg.net_kwh_per_gb),
            };
            t.internet_j += path_j;
            // The path's carbon at the tick's intensity, without this site's PUE: the path is
            // other people's equipment, its overheads are in the kWh/GB figure's boundary.
            t.internet_co2e_g += path_j / J_PER_KWH * intensity.unwrap_or(0.0);
            self.last_own = Some((own, at));
            Some(w)
        } else {
            if self.last_own.is_none() {
                self.last_own = Some((OwnTraffic::default(), at));
            }
            None
        };
        Some(CmdNet {
            cluster: own.cluster,
            internet: own.internet,
            port_w,
            internet_kwh: t.internet_j / J_PER_KWH,
            internet_co2e_g: t.internet_co2e_g,
            rdma: rdma_own,
        })
    }

    /// The command's share of the machine's busy CPU time over this interval, applied to the
    /// CPU's energy (into the totals) and power (returned).
    fn fold_process_cpu(&mut self, s: &Sample, prev: Option<&Sample>, cpu: Part) -> Option<f64> {
        let (cpu_j, cpu_w) = cpu;
        let now = s.process.and_then(|p| p.cpu);
        let share = match (now, prev.and_then(|p| p.process).and_then(|p| p.cpu)) {
            (Some(c), Some(o)) if c.busy_ticks > o.busy_ticks => Some(
                (c.tree_ticks.saturating_sub(o.tree_ticks) as f64
                    / (c.busy_ticks - o.busy_ticks) as f64)
                    .clamp(0.0, 1.0),
            ),
            (Some(c), Some(o)) if c.busy_ticks == o.busy_ticks => Some(0.0),
            _ => None,
        };
        if let (Some(f), Some(j)) = (share, cpu_j) {
            self.totals.process_cpu_j += f * j;
            self.totals.process_machine_cpu_j += j;
        }
        share.zip(cpu_w).map(|(f, w)| f * w)
    }

    /// `run -- CMD`: the command's share of each component over the interval, into the totals;
    /// a replayed row's recorded shares as they were recorded.
    fn fold_process(
        &mut self,
        s: &Sample,
        prev: Option<&Sample>,
        dt: f64,
        gpu: &GpuPart,
        cpu: Part,
        mem: Part,
    ) -> ProcessPart {
        let Some(reading) = s.process else {
            // GPUs may know their processes without a tree read (its /proc unreadable).
            return ProcessPart {
                gpu_w: gpu.process_w,
                ..ProcessPart::default()
            };
        };
        self.totals.process_known = true;
        if let Some(r) = reading.recorded {
            return self.fold_recorded_process(r, dt, gpu, cpu, mem);
        }
        let cpu_w = self.fold_process_cpu(s, prev, cpu);
        // Resident memory's share of MemTotal at this tick, applied to the memory's energy.
        let share = reading
            .mem
            .filter(|m| m.total_bytes > 0)
            .map(|m| (m.rss_bytes as f64 / m.total_bytes as f64).clamp(0.0, 1.0));
        if let (Some(f), Some(j)) = (share, mem.0) {
            self.totals.process_mem_j += f * j;
            self.totals.process_machine_mem_j += j;
        }
        let mem_w = share.zip(mem.1).map(|(f, w)| f * w);
        let gpu_j = gpu.process_w.map_or(0.0, |w| w * dt) + gpu.unattributed_j;
        self.totals.process_mode_gpu_j += gpu_j;
        ProcessPart {
            cpu_w,
            gpu_w: gpu.process_w,
            mem_w,
            it_j: cpu_w.map_or(0.0, |w| w * dt) + gpu_j + mem_w.map_or(0.0, |w| w * dt),
        }
    }

    /// A replayed row's recorded shares (W over the interval): their energy is power × Δt, the
    /// machine's energy beside them what the row's own columns give; a GPU share not recorded
    /// counts the whole GPU in the command's figures, as it did live.
    fn fold_recorded_process(
        &mut self,
        r: ProcessRecorded,
        dt: f64,
        gpu: &GpuPart,
        cpu: Part,
        mem: Part,
    ) -> ProcessPart {
        let t = &mut self.totals;
        let j = |w: Option<f64>| w.map_or(0.0, |w| w * dt);
        if r.cpu_w.is_some() {
            t.process_cpu_j += j(r.cpu_w);
            t.process_machine_cpu_j += cpu.0.unwrap_or(0.0);
        }
        if r.mem_w.is_some() {
            t.process_mem_j += j(r.mem_w);
            t.process_machine_mem_j += mem.0.unwrap_or(0.0);
        }
        let gpu_j = match r.gpu_w {
            Some(_) => {
                t.process_gpu_j += j(r.gpu_w);
                t.process_machine_gpu_j += gpu.sum_j;
                j(r.gpu_w)
            }
            None => gpu.sum_j,
        };
        t.process_mode_gpu_j += gpu_j;
        ProcessPart {
            cpu_w: r.cpu_w,
            gpu_w: r.gpu_w,
            mem_w: r.mem_w,
            it_j: j(r.cpu_w) + gpu_j + j(r.mem_w),
        }
    }

    /// Intensity valid at this tick and its source; an unknown one holds the last known value.
    fn intensity_at(&mut self, s: &Sample) -> (Option<f64>, Option<IntensitySource>) {
        if let Some(i) = &s.intensity {
            self.last_intensity = Some(i.clone());
        }
        match &self.last_intensity {
            Some(i) => (Some(i.g_per_kwh.0), Some(i.source.clone())),
            None => (None, None),
        }
    }

    /// Adds the interval's energy and carbon to the running totals.
    /// `grid`: the band of this tick's intensity (the table's, or (1, 1) for a live value).
    fn add_to_totals(
        &mut self,
        s: &Sample,
        iv: &Interval,
        facility: FacilityKwh,
        co2e: GramsCo2e,
        grid: (f64, f64),
    ) {
        let t = &mut self.totals;
        let joules = ByComponent {
            gpu: iv.gpu.sum_j,
            cpu: iv.cpu.0.unwrap_or(0.0),
            mem: iv.mem.0.unwrap_or(0.0),
            net: iv.net.0.unwrap_or(0.0),
        };
        t.ticks += 1;
        t.elapsed_s = s.elapsed_s;
        t.gpu_j += joules.gpu;
        t.cpu_j += joules.cpu;
        t.mem_j += joules.mem;
        t.net_j += joules.net;
        t.energy_kwh += facility.0;
        t.co2e_g += co2e.0;
        let by = joules.split(co2e.0);
        let (cpu, mem) = (
            s.bands.cpu.unwrap_or((1.0, 1.0)),
            s.bands.mem.unwrap_or((1.0, 1.0)),
        );
        // A MIG share's band, as factors of the GPUs' point energy this interval.
        let gpu = if iv.gpu.sum_j > 0.0 {
            (iv.gpu.low_j / iv.gpu.sum_j, iv.gpu.high_j / iv.gpu.sum_j)
        } else {
            (1.0, 1.0)
        };
        // Each component's band times the intensity's: the ends of a product of two
        // independent factors.
        let end = |k: fn((f64, f64)) -> f64| ByComponent {
            gpu: by.gpu * k(gpu) * k(grid),
            cpu: by.cpu * k(cpu) * k(grid),
            mem: by.mem * k(mem) * k(grid),
            net: by.net * k(grid),
        };
        t.co2e_low_by.add(&end(|b| b.0));
        t.co2e_high_by.add(&end(|b| b.1));
        t.co2e_by.add(&by);
    }

    /// The tick's row: the interval's powers beside the running totals.
    fn tick(
        &self,
        s: &Sample,
        iv: Interval,
        intensity: Option<f64>,
        source: Option<IntensitySource>,
    ) -> Tick {
        let t = &self.totals;
        let total_power_w = iv.total_power_w();
        Tick {
            timestamp: s.time,
            elapsed_s: s.elapsed_s,
            dt_s: iv.dt,
            gpu_power_w: iv.gpu.sum_w,
            cpu_power_w: iv.cpu.1,
            mem_power_w: iv.mem.1,
            net_rx_bytes: s.net.map(|n| n.rx_bytes),
            net_tx_bytes: s.net.map(|n| n.tx_bytes),
            net_power_w: iv.net.1,
            total_power_w,
            energy_kwh: t.energy_kwh,
            intensity_g_per_kwh: intensity,
            intensity_source: source,
            co2e_g: t.co2e_g,
            embodied_co2e_g: (self.cfg.embodied_kg > 0.0).then(|| {
                crate::engine::constants::embodied_g_of(self.cfg.embodied_kg, s.elapsed_s)
            }),
            progress: s.progress.clone(),
            power_cap_w: iv.gpu.power_cap_w,
            gpus: iv.gpu.gpus,
            cap_change: CapLog::default(),
            process_cpu_w: iv.process.cpu_w,
            process_gpu_w: iv.process.gpu_w,
            process_mem_w: iv.process.mem_w,
            cmd_net: iv.cmd_net,
            rdma: s.net.and_then(|n| n.rdma).map(|r| RdmaTick {
                machine: r.machine,
                power_w: self.rdma_w,
                own: r.own,
            }),
        }
    }
}

/// One component's energy (J) and interval-average power (W) over an interval.
type Part = (Option<f64>, Option<f64>);

/// The GPUs over one interval.
struct GpuPart {
    /// Each GPU's row.
    gpus: Vec<GpuTick>,
    /// Σ power (W), if any GPU reported one.
    sum_w: Option<f64>,
    /// Σ energy (J).
    sum_j: f64,
    /// Σ energy of the GPUs whose driver reports no processes (J).
    unattributed_j: f64,
    /// Σ energy at the low and high ends of the MIG estimates' bands (J; a whole GPU's
    /// measured energy at both ends).
    low_j: f64,
    high_j: f64,
    /// The watched tree's share of the power (W), if any GPU knows its processes.
    process_w: Option<f64>,
    /// Σ caps (W) when every GPU reports one.
    power_cap_w: Option<f64>,
}

/// What one interval adds, component by component.
struct Interval {
    /// Its length (s; 0 for the first tick).
    dt: f64,
    gpu: GpuPart,
    cpu: Part,
    mem: Part,
    net: Part,
    /// The command's share of each component.
    process: ProcessPart,
    /// The command's own traffic.
    cmd_net: Option<CmdNet>,
}

/// The command's share over one interval: its CPU, GPU and memory power (W) and the IT energy
/// counted for it (J; the GPUs whose processes are unknown whole).
#[derive(Debug, Clone, Copy, Default)]
struct ProcessPart {
    cpu_w: Option<f64>,
    gpu_w: Option<f64>,
    mem_w: Option<f64>,
    it_j: f64,
}

impl Interval {
    /// IT energy (J, without PUE).
    fn it_j(&self) -> f64 {
        self.gpu.sum_j
            + self.cpu.0.unwrap_or(0.0)
            + self.mem.0.unwrap_or(0.0)
            + self.net.0.unwrap_or(0.0)
    }

    /// Σ of the components' powers, if any reported one.
    fn total_power_w(&self) -> Option<f64> {
        [self.gpu.sum_w, self.cpu.1, self.mem.1, self.net.1]
            .into_iter()
            .flatten()
            .reduce(|a, b| a + b)
    }
}

/// Energy (J) and interval-average power (W) of one power reading over the interval ending now.
/// On the first tick there is no interval: no energy, and the reading itself as the power.
fn power_interval(
    prev: Option<PowerReading>,
    cur: PowerReading,
    dt: f64,
    first: bool,
) -> (Option<f64>, Option<f64>) {
    if first || dt <= 0.0 {
        return (Some(0.0), Some(cur.watts().0));
    }
    let avg = match (cur, prev) {
        (PowerReading::Average(w), _) => w.0,
        (PowerReading::Instant(w1), Some(p0)) => (p0.watts().0 + w1.0) / 2.0,
        // No earlier reading: hold the current one over the interval.
        (PowerReading::Instant(w1), None) => w1.0,
    };
    (Some(avg * dt), Some(avg))
}

/// One GPU's energy (J) and interval-average power (W): the NVML counter delta when both ends
/// have one, else the power reading.
fn gpu_interval(
    prev: Option<&GpuReading>,
    cur: &GpuReading,
    dt: f64,
    first: bool,
) -> (Option<f64>, Option<f64>) {
    if !first
        && dt > 0.0
        && let (Some(old), Some(new)) = (prev.and_then(|p| p.energy_mj), cur.energy_mj)
    {
        // NVML's counter only resets with the driver; a smaller value means that happened,
        // and the energy since then is the new value.
        let mj = if new >= old { new - old } else { new };
        let j = mj as f64 / 1000.0;
        return (Some(j), Some(j / dt));
    }
    match cur.power {
        Some(p) => power_interval(prev.and_then(|g| g.power), p, dt, first),
        None => (None, None),
    }
}

/// Sum of RAPL package energy (J) over the interval, with wrap-around at `max_energy_range_uj`.
/// Returns (joules, wraps seen, resets seen).
fn rapl_delta_j(old: &[RaplCounter], cur: &[RaplCounter], dt: f64) -> (f64, u64, u64) {
    let mut uj: u64 = 0;
    let (mut wraps, mut resets) = (0, 0);
    for c in cur {
        let Some(o) = old.iter().find(|o| o.zone == c.zone) else {
            continue;
        };
        let delta = if c.energy_uj >= o.energy_uj {
            c.energy_uj - o.energy_uj
        } else {
            // Wrapped: new + max − old (RAPL counters wrap at max_energy_range_uj).
            let wrapped = c.max_energy_range_uj.saturating_sub(o.energy_uj) + c.energy_uj;
            if wrapped as f64 / 1e6 / dt > RAPL_MAX_PLAUSIBLE_W {
                // Backwards without a plausible wrap: the counter was reset (e.g. a driver
                // reload). Count what it has gathered since, never a huge phantom delta.
                resets += 1;
                c.energy_uj
            } else {
                wraps += 1;
                wrapped
            }
        };
        uj = uj.saturating_add(delta);
    }
    (uj as f64 / 1e6, wraps, resets)
}

/// Delta of a monotonic byte counter; a smaller value means it restarted from zero.
fn counter_delta(old: u64, new: u64) -> u64 {
    if new >= old { new - old } else { new }
}

/// Bytes moved both ways between two cumulative readings.
fn traffic_delta(old: Traffic, new: Traffic) -> u64 {
    counter_delta(old.rx_bytes, new.rx_bytes) + counter_delta(old.tx_bytes, new.tx_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::NetReading;
    use chrono::TimeZone;

    fn at(secs: f64) -> Sample {
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        Sample {
            time: t0 + chrono::Duration::milliseconds((secs * 1000.0) as i64),
            elapsed_s: secs,
            gpus: vec![],
            cpu: CpuReading::Unknown,
            mem: None,
            net: None,
            intensity: Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(500.0),
                source: crate::sample::SourceKind::Fixed.into(),
            }),
            progress: Progress::default(),
            process: None,
            bands: Default::default(),
        }
    }

    fn rapl(zone: &str, uj: u64, max: u64) -> RaplCounter {
        RaplCounter {
            zone: zone.into(),
            energy_uj: uj,
            max_energy_range_uj: max,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    #[test]
    fn rapl_wrap_is_exact() {
        let mut l = Ledger::new(LedgerConfig::default());
        let max = 1_000_000_000; // 1 kJ
        let mut s = at(0.0);
        s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 999_000_000, max)]);
        let t0 = l.push(s);
        assert_eq!(
            t0.cpu_power_w, None,
            "no interval yet: power unknown, not 0"
        );
        let mut s = at(1.0);
        s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 49_000_000, max)]); // wrapped: +50 J
        let t1 = l.push(s);
        assert_eq!(t1.cpu_power_w, Some(50.0));
        let mut s = at(3.0);
        s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 109_000_000, max)]); // +60 J over 2 s
        let t2 = l.push(s);
        assert_eq!(t2.cpu_power_w, Some(30.0));
        let tot = l.totals();
        assert_eq!(tot.cpu_j, 110.0);
        assert_eq!(tot.rapl_wraps, 1);
        assert!(close(tot.energy_kwh, 110.0 / 3.6e6));
        assert!(close(tot.co2e_g, 110.0 / 3.6e6 * 500.0));
    }

    #[test]
    fn rapl_read_failure_loses_no_energy() {
        let mut l = Ledger::new(LedgerConfig::default());
        let max = 1_000_000_000;
        for (t, uj) in [
            (0.0, Some(10_000_000)),
            (1.0, None),
            (2.0, Some(30_000_000)),
        ] {
            let mut s = at(t);
            s.cpu = match uj {
                Some(v) => CpuReading::Rapl(vec![rapl("intel-rapl:0", v, max)]),
                None => CpuReading::Unknown,
            };
            let tick = l.push(s);
            if t == 1.0 {
                assert_eq!(tick.cpu_power_w, None);
            }
            if t == 2.0 {
                assert_eq!(
                    tick.cpu_power_w,
                    Some(20.0),
                    "the gap's 20 J land on this 1 s row"
                );
            }
        }
        assert_eq!(l.totals().cpu_j, 20.0);
    }

    #[test]
    fn rapl_two_packages_summed_once_and_reset_is_not_a_wrap() {
        let mut l = Ledger::new(LedgerConfig::default());
        let max = 262_143_328_850;
        let mut s = at(0.0);
        s.cpu = CpuReading::Rapl(vec![
            rapl("intel-rapl:0", 5_000_000, max),
            rapl("intel-rapl:1", 7_000_000, max),
        ]);
        l.push(s);
        let mut s = at(1.0);
        s.cpu = CpuReading::Rapl(vec![
            rapl("intel-rapl:0", 105_000_000, max), // +100 J
            rapl("intel-rapl:1", 2_000_000, max),   // went backwards: reset, +2 J since
        ]);
        let t = l.push(s);
        assert_eq!(t.cpu_power_w, Some(102.0));
        assert_eq!(l.totals().rapl_resets, 1);
        assert_eq!(l.totals().rapl_wraps, 0);
    }

    #[test]
    fn wrap_or_reset_is_judged_by_the_power_it_would_imply_over_the_interval() {
        // The same step back, 999 J → 200 J on a 1 kJ counter: a wrap would mean 201 J.
        let verdict = |dt: f64| {
            let mut l = Ledger::new(LedgerConfig::default());
            let max = 1_000_000_000;
            let mut s = at(0.0);
            s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 999_000_000, max)]);
            l.push(s);
            let mut s = at(dt);
            s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 200_000_000, max)]);
            l.push(s);
            let t = l.totals();
            (t.rapl_wraps, t.rapl_resets, t.cpu_j)
        };
        // Over 1 s that is 201 W: a wrap, all 201 J counted.
        assert_eq!(verdict(1.0), (1, 0, 201.0));
        // Over 10 ms it would be 20 kW, beyond any package: a reset, only the 200 J since.
        assert_eq!(verdict(0.01), (0, 1, 200.0));
        // On a real package's range (about 262 kJ) a step back is a reset for any interval
        // under 52 s.
        let mut l = Ledger::new(LedgerConfig::default());
        let max = 262_143_328_850;
        let mut s = at(0.0);
        s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 100_000_000, max)]);
        l.push(s);
        let mut s = at(50.0);
        s.cpu = CpuReading::Rapl(vec![rapl("intel-rapl:0", 2_000_000, max)]);
        l.push(s);
        assert_eq!((l.totals().rapl_resets, l.totals().cpu_j), (1, 2.0));
    }

    #[test]
    fn a_mig_share_is_charged_its_slices_of_the_card_with_the_physical_band() {
        use crate::sample::MigShare;
        let mig = MigShare {
            slices: 3,
            of: 7,
            profiles: vec!["3g.40gb".into()],
            card_limit_w: Some(700.0),
        };
        // The card: 350 W on its counter for 2 s (700 J); its idle floor 70 W (140 J).
        let card = |mj: u64, mig: Option<MigShare>| GpuReading {
            index: 3,
            power: Some(PowerReading::Instant(crate::units::Watts(350.0))),
            energy_mj: Some(mj),
            mig,
            ..Default::default()
        };
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.gpus = vec![card(5_000_000, Some(mig.clone()))];
        l.push(s);
        let mut s = at(2.0);
        s.gpus = vec![card(5_700_000, Some(mig.clone()))];
        let t = l.push(s);
        assert!((t.gpus[0].power_w.unwrap() - 150.0).abs() < 1e-9);
        assert!((t.gpus[0].energy_j.unwrap() - 300.0).abs() < 1e-9);
        assert_eq!(t.gpus[0].index, 3);
        assert_eq!(t.gpus[0].mig.as_ref(), Some(&mig));
        let tot = l.totals();
        assert!((tot.gpu_j - 300.0).abs() < 1e-9);
        // Carbon at the band's ends: 3/7 of the idle (60 J), all but 4/7 of it (620 J).
        let g_per_j = 500.0 / 3.6e6;
        assert!((tot.co2e_by.gpu - 300.0 * g_per_j).abs() < 1e-12);
        assert!((tot.co2e_low_by.gpu - 60.0 * g_per_j).abs() < 1e-12);
        assert!((tot.co2e_high_by.gpu - 620.0 * g_per_j).abs() < 1e-12);
        // A whole card beside it is charged whole, its band a point.
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.gpus = vec![card(0, None)];
        l.push(s);
        let mut s = at(2.0);
        s.gpus = vec![card(700_000, None)];
        l.push(s);
        let tot = l.totals();
        assert_eq!((tot.gpu_j, tot.co2e_low_by.gpu), (700.0, tot.co2e_by.gpu));
    }

    #[test]
    fn the_counter_is_checked_against_the_power_readings_and_stays_the_figure() {
        // Counter at 250 W, power readings at 225 W: 10% apart, said once 5 s are in.
        let reading = |t: f64, w: f64| GpuReading {
            index: 5,
            power: Some(PowerReading::Instant(crate::units::Watts(w))),
            energy_mj: Some((250_000.0 * t) as u64),
            ..Default::default()
        };
        let mut l = Ledger::new(LedgerConfig::default());
        let mut said = Vec::new();
        for k in 0..=60 {
            let t = f64::from(k) * 0.1;
            let mut s = at(t);
            s.gpus = vec![reading(t, 225.0)];
            let tick = l.push(s);
            said.push(tick.gpus[0].power_vs_counter);
        }
        assert!(said[..50].iter().all(Option::is_none), "{said:?}");
        let d = said[60].unwrap();
        assert!((d + 0.1).abs() < 1e-6, "{d}");
        assert!(
            (l.totals().gpu_j - 1500.0).abs() < 1e-6,
            "the counter's energy"
        );
        // A tick without the power reading restarts the window.
        let mut s = at(6.1);
        s.gpus = vec![GpuReading {
            power: None,
            ..reading(6.1, 0.0)
        }];
        assert_eq!(l.push(s).gpus[0].power_vs_counter, None);
        let mut s = at(6.2);
        s.gpus = vec![reading(6.2, 225.0)];
        assert_eq!(l.push(s).gpus[0].power_vs_counter, None);
    }

    #[test]
    fn gpu_counter_preferred_and_trapezoid_without_counter() {
        let mut l = Ledger::new(LedgerConfig::default());
        let gpu = |p: f64, mj: Option<u64>| GpuReading {
            index: 0,
            power: Some(PowerReading::Instant(crate::units::Watts(p))),
            energy_mj: mj,
            cap_w: Some(300.0),
            ..Default::default()
        };
        let mut s = at(0.0);
        s.gpus = vec![gpu(100.0, Some(1_000_000)), gpu(100.0, None)];
        let t0 = l.push(s);
        assert_eq!(t0.gpus[0].energy_j, Some(0.0));
        assert_eq!(t0.power_cap_w, Some(600.0));
        let mut s = at(2.0);
        // GPU0's counter says 500 J in 2 s (250 W) whatever its instantaneous reading says.
        // GPU1 has no counter: trapezoid (100 + 300) / 2 × 2 s = 400 J.
        s.gpus = vec![gpu(999.0, Some(1_500_000)), gpu(300.0, None)];
        let t1 = l.push(s);
        assert_eq!(t1.gpus[0].power_w, Some(250.0));
        assert_eq!(t1.gpus[1].power_w, Some(200.0));
        assert_eq!(t1.gpus[0].energy_j, Some(500.0));
        assert_eq!(t1.gpus[1].energy_j, Some(400.0));
        assert_eq!(t1.gpu_power_w, Some(450.0));
        assert_eq!(l.totals().gpu_j, 900.0);
    }

    #[test]
    fn intensity_changing_mid_run_weights_each_tick() {
        // 1 kW constant for 3 intervals of 1 h each at 100, 300, 500 g/kWh (PUE 1.5).
        let mut l = Ledger::new(LedgerConfig {
            pue: Pue::new(1.5).unwrap(),
            ..Default::default()
        });
        let intensities = [100.0, 100.0, 300.0, 500.0];
        let mut last = None;
        for (k, g) in intensities.into_iter().enumerate() {
            let mut s = at(k as f64 * 3600.0);
            s.mem = Some(PowerReading::Average(crate::units::Watts(1000.0)));
            s.intensity = Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(g),
                source: crate::sample::SourceKind::Fixed.into(),
            });
            last = Some(l.push(s));
        }
        let t = last.unwrap_or_else(|| unreachable!());
        // 3 kWh IT × 1.5 = 4.5 kWh; carbon = 1.5 × (100 + 300 + 500) = 1350 g, not 4.5 × 500.
        assert!(close(t.energy_kwh, 4.5));
        assert!(close(t.co2e_g, 1350.0));
        assert!(close(l.totals().mean_intensity().unwrap_or(0.0), 300.0));
    }

    fn links_unknown() -> Option<crate::sample::Links> {
        Some(crate::sample::Links {
            known: 0,
            known_gbps: 0.0,
            unknown: 1,
        })
    }

    #[test]
    fn the_machines_bytes_go_through_the_port_model_and_never_exceed_its_bound() {
        let mut l = Ledger::new(LedgerConfig::default());
        let net = |rx, tx| {
            Some(NetReading {
                rx_bytes: rx,
                tx_bytes: tx,
                links: links_unknown(),
                ..Default::default()
            })
        };
        let mut s = at(0.0);
        s.net = net(0, 0);
        l.push(s);
        // 1 GB over 10 s on a virtual NIC (the assumed 10 GbE class, 7.5 W at line rate):
        // 0.8 Gb/s is 8% of the line, 0.6 W; 0.069 kWh/GB said 25 kW.
        let mut s = at(10.0);
        s.net = net(1_000_000_000, 0);
        let t = l.push(s);
        assert!(close(t.net_power_w.unwrap_or(0.0), 0.6));
        // 100 GB in 10 s (80 Gb/s: more than the link): held at the ports' 7.5 W.
        let mut s = at(20.0);
        s.net = net(1_000_000_000, 100_000_000_000);
        let t = l.push(s);
        assert_eq!(t.net_power_w, Some(7.5));
        // Counters restarted: 1000 bytes, never negative.
        let mut s = at(30.0);
        s.net = net(500, 500);
        let t = l.push(s);
        assert!(t.net_power_w.unwrap_or(-1.0) >= 0.0);
        let tot = l.totals();
        let j = 6.0 + 75.0 + 7.5 * 1000.0 * 8.0 / 1e10;
        assert!(close(tot.net_j, j));
        assert!(close(tot.net_low_j, j * 3.0 / 7.5) && close(tot.net_high_j, j * 11.0 / 7.5));
        assert!(!tot.cmd_net.known, "no command traffic in these samples");
    }

    #[test]
    fn rdma_port_bytes_are_cluster_power_of_the_machine_bounded_by_the_ib_ports() {
        use crate::sample::{OwnTraffic, RdmaReading, Traffic};
        let mut l = Ledger::new(LedgerConfig::default());
        // One HDR port (200 Gb/s, 23 W at line rate); the command alone uses RDMA.
        let net = |tx: u64, own: bool| {
            Some(NetReading {
                links: links_unknown(),
                own: Some(OwnTraffic::default()),
                rdma: Some(RdmaReading {
                    machine: Traffic {
                        rx_bytes: 0,
                        tx_bytes: tx,
                    },
                    own: Some(Traffic {
                        rx_bytes: 0,
                        tx_bytes: if own { tx } else { 0 },
                    }),
                    ports: 1,
                    known: 1,
                    known_gbps: 200.0,
                    power_w: None,
                }),
                ..Default::default()
            })
        };
        let mut s = at(0.0);
        s.net = net(0, true);
        let t = l.push(s);
        assert_eq!(t.rdma.map(|r| r.power_w), Some(None), "no interval yet");
        // An NCCL all-reduce at 100 Gb/s for 10 s: half the line, 11.5 W (0.069 kWh/GB would
        // have said 3.1 MW).
        let mut s = at(10.0);
        s.net = net(125_000_000_000, true);
        let t = l.push(s);
        assert!(
            close(t.net_power_w.unwrap_or(0.0), 11.5),
            "{:?}",
            t.net_power_w
        );
        assert_eq!(t.rdma.and_then(|r| r.power_w), t.net_power_w);
        let c = t.cmd_net.unwrap_or_default();
        assert!(
            close(c.port_w.unwrap_or(0.0), 11.5),
            "the command's, all of it"
        );
        assert_eq!(c.rdma.tx_bytes, 125_000_000_000);
        // Far beyond the line: held at the port's 23 W. Not the command's (shared port).
        let mut s = at(20.0);
        s.net = net(10_000_000_000_000, false);
        let t = l.push(s);
        assert_eq!(t.net_power_w, Some(23.0));
        assert_eq!(t.cmd_net.and_then(|c| c.port_w), Some(0.0));
        let tot = l.totals();
        assert!(close(tot.rdma_j, 115.0 + 230.0) && close(tot.net_j, tot.rdma_j));
        assert!(close(tot.cmd_net.port_cluster_j, 115.0));
        assert!(close(tot.net_high_j, tot.rdma_j * 35.0 / 23.0));
    }

    #[test]
    fn the_commands_traffic_costs_port_power_and_an_internet_footprint_apart() {
        use crate::sample::{OwnTraffic, Traffic};
        let mut l = Ledger::new(LedgerConfig {
            net_kwh_per_gb: 0.01,
            ..Default::default()
        });
        let own = |cluster_tx, internet_rx| NetReading {
            rx_bytes: 0,
            tx_bytes: 0,
            links: links_unknown(),
            own: Some(OwnTraffic {
                cluster: Traffic {
                    rx_bytes: 0,
                    tx_bytes: cluster_tx,
                },
                internet: Traffic {
                    rx_bytes: internet_rx,
                    tx_bytes: 0,
                },
            }),
            ..Default::default()
        };
        let mut s = at(0.0);
        s.net = Some(own(0, 0));
        let t = l.push(s);
        assert_eq!(t.cmd_net.map(|c| c.port_w), Some(None), "no interval yet");
        // 1 s: 0.75 GB to a cluster peer, 0.25 GB from the internet: 8 Gb/s, 80% of 10 GbE.
        let mut s = at(1.0);
        s.net = Some(own(750_000_000, 250_000_000));
        let t = l.push(s);
        let c = t.cmd_net.unwrap_or_default();
        assert!(close(c.port_w.unwrap_or(0.0), 6.0));
        // The internet path: 0.25 GB × 0.01 kWh/GB = 2.5 Wh, at 500 g/kWh: 1.25 g.
        assert!(close(c.internet_kwh, 0.0025) && close(c.internet_co2e_g, 1.25));
        // Not this machine's energy: the machine's counters moved nothing, its energy is 0.
        assert_eq!(t.energy_kwh, 0.0);
        let tot = l.totals().cmd_net;
        assert!(close(tot.port_j, 6.0) && close(tot.port_cluster_j, 4.5));
        assert!(close(tot.port_low_j, 2.4) && close(tot.port_high_j, 8.8));
        // A burst faster than the link is held at the ports' power.
        let mut s = at(2.0);
        s.net = Some(own(750_000_000 + 10_000_000_000, 250_000_000));
        let t = l.push(s);
        assert_eq!(t.cmd_net.and_then(|c| c.port_w), Some(7.5));
        assert_eq!(l.totals().cmd_net.cluster.tx_bytes, 10_750_000_000);
    }

    #[test]
    fn embodied_carbon_is_amortised_by_elapsed_time() {
        let mut l = Ledger::new(LedgerConfig {
            embodied_kg: 2650.0, // one GPU and one server (BLOOM)
            ..Default::default()
        });
        assert_eq!(l.push(at(0.0)).embodied_co2e_g, Some(0.0));
        let t = l.push(at(3600.0));
        // SCI M = TE × time / lifetime: 2,650 kg × 1 h / 6 years.
        let want = 2650e3 * 3600.0 / (6.0 * 365.25 * 86_400.0);
        assert!(close(t.embodied_co2e_g.unwrap_or(0.0), want));
        assert_eq!(
            Ledger::new(LedgerConfig::default())
                .push(at(1.0))
                .embodied_co2e_g,
            None
        );
    }

    #[test]
    fn the_commands_cpu_share_is_its_part_of_the_busy_time() {
        use crate::sample::ProcessCpu;
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(100.0)));
        let cpu = |tree_ticks, busy_ticks| {
            Some(crate::sample::ProcessReading {
                cpu: Some(ProcessCpu {
                    tree_ticks,
                    busy_ticks,
                }),
                ..Default::default()
            })
        };
        s.process = cpu(0, 1000);
        l.push(s.clone());
        s.elapsed_s = 10.0;
        // 300 of the 400 busy ticks were the command's.
        s.process = cpu(300, 1400);
        let t = l.push(s);
        assert!(close(t.process_cpu_w.unwrap_or(0.0), 75.0));
        assert!(close(l.totals().process_cpu_j, 750.0));
        assert!(close(l.totals().process_machine_cpu_j, 1000.0));
    }

    #[test]
    fn the_commands_gpu_share_is_its_sm_part_of_each_gpu() {
        use crate::sample::GpuReading;
        let gpu = |w: f64, share: Option<f64>| GpuReading {
            power: Some(PowerReading::Average(crate::units::Watts(w))),
            tree_share: share,
            ..Default::default()
        };
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        // GPU 0: 200 W, 3/4 of its SM time the command's; GPU 1: 100 W, none of it;
        // GPU 2: 50 W, its driver gives no per-process figures (left out of both sides).
        s.gpus = vec![
            gpu(200.0, Some(0.75)),
            gpu(100.0, Some(0.0)),
            gpu(50.0, None),
        ];
        l.push(s.clone());
        s.elapsed_s = 10.0;
        let t = l.push(s);
        assert!(close(t.process_gpu_w.unwrap_or(0.0), 150.0));
        assert!(close(t.gpu_power_w.unwrap_or(0.0), 350.0));
        assert!(close(l.totals().process_gpu_j, 1500.0));
        assert!(close(l.totals().process_machine_gpu_j, 3000.0));
        // No GPU reports processes: the command's GPU power is unknown, not 0.
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.gpus = vec![gpu(200.0, None)];
        assert_eq!(l.push(s).process_gpu_w, None);
    }

    #[test]
    fn the_commands_memory_share_is_its_resident_part_of_memtotal() {
        use crate::sample::{ProcessMem, ProcessReading};
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.mem = Some(PowerReading::Average(crate::units::Watts(20.0)));
        // 3 GiB resident of 16 GiB: 3/16 of the memory power.
        s.process = Some(ProcessReading {
            mem: Some(ProcessMem {
                rss_bytes: 3 << 30,
                total_bytes: 16 << 30,
            }),
            ..Default::default()
        });
        let t = l.push(s.clone());
        assert!(close(t.process_mem_w.unwrap_or(0.0), 3.75));
        s.elapsed_s = 10.0;
        let t = l.push(s.clone());
        assert!(close(t.process_mem_w.unwrap_or(0.0), 3.75));
        assert!(t.process_mem_w <= t.mem_power_w);
        let tot = l.totals();
        assert!(close(tot.process_mem_j, 37.5) && close(tot.process_machine_mem_j, 200.0));
        // A share read as more than the machine (RSS counts shared pages once per process)
        // is held at the whole memory, never above it.
        s.elapsed_s = 20.0;
        s.process = Some(ProcessReading {
            mem: Some(ProcessMem {
                rss_bytes: 40 << 30,
                total_bytes: 16 << 30,
            }),
            ..Default::default()
        });
        assert_eq!(l.push(s).process_mem_w, Some(20.0));
        // No tree watched: unknown, not 0.
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(0.0);
        s.mem = Some(PowerReading::Average(crate::units::Watts(20.0)));
        assert_eq!(l.push(s).process_mem_w, None);
        assert!(!l.totals().process_known);
    }

    #[test]
    fn the_commands_carbon_is_its_energy_at_each_ticks_intensity_with_pue() {
        use crate::sample::{ProcessCpu, ProcessMem, ProcessReading};
        let mut l = Ledger::new(LedgerConfig {
            pue: Pue::new(1.5).unwrap(),
            ..Default::default()
        });
        let reading = |busy: u64| {
            Some(ProcessReading {
                cpu: Some(ProcessCpu {
                    tree_ticks: busy / 2,
                    busy_ticks: busy,
                }),
                mem: Some(ProcessMem {
                    rss_bytes: 1,
                    total_bytes: 4,
                }),
                recorded: None,
            })
        };
        // A GPU whose driver names no processes: counted whole in the command's figures.
        let gpu = GpuReading {
            power: Some(PowerReading::Average(crate::units::Watts(100.0))),
            ..Default::default()
        };
        for (k, (busy, g)) in [(0, 100.0), (100, 100.0), (200, 300.0)]
            .into_iter()
            .enumerate()
        {
            let mut s = at(k as f64 * 3600.0);
            s.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(40.0)));
            s.mem = Some(PowerReading::Average(crate::units::Watts(20.0)));
            s.gpus = vec![gpu.clone()];
            s.process = reading(busy);
            s.intensity = Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(g),
                source: crate::sample::SourceKind::Fixed.into(),
            });
            l.push(s);
        }
        let t = l.totals();
        // Each hour: CPU 20 W, memory 5 W, the GPU's 100 W: 125 Wh; × 1.5 at 100 then 300.
        assert!(close(t.process_cpu_j, 2.0 * 20.0 * 3600.0));
        assert!(close(t.process_mem_j, 2.0 * 5.0 * 3600.0));
        assert!(close(t.process_mode_gpu_j, 2.0 * 100.0 * 3600.0));
        assert_eq!(t.process_gpu_j, 0.0, "no share where the driver names none");
        assert!(close(t.process_co2e_g, 0.125 * 1.5 * (100.0 + 300.0)));
        assert!(t.process_co2e_g < t.co2e_g);
    }

    #[test]
    fn recorded_shares_replay_as_recorded() {
        use crate::sample::{ProcessReading, ProcessRecorded};
        let mut l = Ledger::new(LedgerConfig::default());
        for k in 0..3 {
            let mut s = at(f64::from(k) * 10.0);
            s.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(40.0)));
            s.mem = Some(PowerReading::Average(crate::units::Watts(20.0)));
            s.process = Some(ProcessReading {
                recorded: Some(ProcessRecorded {
                    cpu_w: (k > 0).then_some(10.0),
                    gpu_w: None,
                    mem_w: Some(2.5),
                }),
                ..Default::default()
            });
            let t = l.push(s);
            assert_eq!(t.process_mem_w, Some(2.5));
        }
        let t = l.totals();
        assert!(close(t.process_cpu_j, 200.0) && close(t.process_machine_cpu_j, 800.0));
        assert!(close(t.process_mem_j, 50.0) && close(t.process_machine_mem_j, 400.0));
        assert!(close(t.process_co2e_g, 250.0 / 3.6e6 * 500.0));
    }

    #[test]
    fn a_table_intensity_widens_every_components_band_by_the_tables() {
        let run = |source: crate::sample::SourceKind| {
            let mut l = Ledger::new(LedgerConfig::default());
            for k in 0..2 {
                let mut s = at(f64::from(k) * 3600.0);
                s.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(100.0)));
                s.mem = Some(PowerReading::Average(crate::units::Watts(10.0)));
                // The CPU an estimate of ×0.5–1.5; memory measured.
                s.bands.cpu = Some((0.5, 1.5));
                s.intensity = Some(Intensity {
                    g_per_kwh: crate::units::GPerKwh(400.0),
                    source: source.clone().into(),
                });
                l.push(s);
            }
            l.totals()
        };
        let live = run(crate::sample::SourceKind::ElectricityMaps);
        let table = run(crate::sample::SourceKind::Table);
        // The same energy and carbon either way.
        assert_eq!(live.co2e_g, table.co2e_g);
        assert!(close(live.co2e_by.cpu, 40.0) && close(live.co2e_by.mem, 4.0));
        // Live: the CPU's own band only.
        assert!(close(live.co2e_low_by.cpu, 20.0) && close(live.co2e_high_by.cpu, 60.0));
        assert!(close(live.co2e_low_by.mem, 4.0) && close(live.co2e_high_by.mem, 4.0));
        assert_eq!(live.co2e_table_g, 0.0);
        // Table: × the table's 0.7–1.3 on top, for every component.
        let (lo, hi) = GRID_TABLE_BAND;
        assert!(close(table.co2e_low_by.cpu, 20.0 * lo));
        assert!(close(table.co2e_high_by.cpu, 60.0 * hi));
        assert!(close(table.co2e_low_by.mem, 4.0 * lo));
        assert!(close(table.co2e_high_by.mem, 4.0 * hi));
        assert!(close(table.co2e_table_g, table.co2e_g));
    }

    #[test]
    fn unknown_stays_unknown() {
        let mut l = Ledger::new(LedgerConfig::default());
        l.push(at(0.0));
        let t = l.push(at(1.0));
        assert_eq!(t.cpu_power_w, None);
        assert_eq!(t.gpu_power_w, None);
        assert_eq!(t.total_power_w, None);
        assert_eq!(t.power_cap_w, None);
        assert_eq!(t.energy_kwh, 0.0);
    }

    #[test]
    fn replayed_averages_reproduce_energy_exactly() {
        // Rows as samples.csv writes them: interval-average powers.
        let mut l = Ledger::new(LedgerConfig::default());
        let powers = [7.0, 9.0, 11.5, 3.25];
        let mut expect = 0.0;
        for (k, p) in powers.into_iter().enumerate() {
            let mut s = at(k as f64 * 0.5);
            s.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(p)));
            if k > 0 {
                expect += p * 0.5;
            }
            l.push(s);
        }
        assert!(close(l.totals().cpu_j, expect));
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let mut l = Ledger::new(LedgerConfig::default());
        let mut s = at(5.0);
        s.mem = Some(PowerReading::Average(crate::units::Watts(10.0)));
        l.push(s);
        let mut s = at(4.0);
        s.mem = Some(PowerReading::Average(crate::units::Watts(10.0)));
        let t = l.push(s);
        assert_eq!(t.dt_s, 0.0);
        assert_eq!(l.totals().mem_j, 0.0);
    }
}

/// Properties that hold for any input the sources can produce (proptest).
#[cfg(test)]
mod properties {
    use super::*;
    use crate::sample::{GpuReading, Intensity, RaplCounter};
    use proptest::prelude::*;

    fn sample(t: f64, cpu: CpuReading, gpu_w: Option<f64>, g: f64) -> Sample {
        Sample {
            time: chrono::DateTime::UNIX_EPOCH,
            elapsed_s: t,
            gpus: vec![GpuReading {
                power: gpu_w.map(|w| PowerReading::Instant(crate::units::Watts(w))),
                tree_share: Some(0.5),
                ..Default::default()
            }],
            cpu,
            mem: Some(PowerReading::Average(crate::units::Watts(5.0))),
            net: None,
            intensity: Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(g),
                source: "p".into(),
            }),
            progress: Default::default(),
            process: None,
            bands: Default::default(),
        }
    }

    proptest! {
        // Deterministic: the same 512 cases on every machine and every run (tests must not
        // flake); raise `cases` for a longer search.
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x00C0_2B07),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Energy and carbon never decrease and never become NaN or infinite, whatever the
        /// readings (powers up to 10 kW, gaps up to a day, intensities up to 5,000 g/kWh, RAPL
        /// counters anywhere in their range).
        #[test]
        fn energy_and_carbon_never_decrease(
            steps in proptest::collection::vec(
                (0.0f64..86_400.0, 0.0f64..10_000.0, proptest::option::of(0.0f64..10_000.0),
                 0.0f64..5_000.0, any::<u64>(), 1u64..u64::MAX, any::<bool>()),
                1..40),
            pue in 1.0f64..3.0,
        ) {
            let mut l = Ledger::new(LedgerConfig { pue: Pue::saturating(pue), ..Default::default() });
            let (mut t, mut kwh, mut g, mut proc_j) = (0.0, 0.0, 0.0, 0.0);
            for (dt, cpu_w, gpu_w, i, uj, max, rapl) in steps {
                t += dt;
                let cpu = if rapl {
                    CpuReading::Rapl(vec![RaplCounter {
                        zone: "intel-rapl:0".into(),
                        energy_uj: uj % max,
                        max_energy_range_uj: max,
                    }])
                } else {
                    CpuReading::Power(PowerReading::Average(crate::units::Watts(cpu_w)))
                };
                let tick = l.push(sample(t, cpu, gpu_w, i));
                prop_assert!(tick.energy_kwh.is_finite() && tick.co2e_g.is_finite());
                prop_assert!(tick.energy_kwh >= kwh, "{} < {kwh}", tick.energy_kwh);
                prop_assert!(tick.co2e_g >= g, "{} < {g}", tick.co2e_g);
                for w in [tick.cpu_power_w, tick.gpu_power_w, tick.total_power_w].into_iter().flatten() {
                    prop_assert!(w >= 0.0 && w.is_finite());
                }
                // The command's share of a GPU is never more than the GPU.
                if let (Some(p), Some(m)) = (tick.process_gpu_w, tick.gpu_power_w) {
                    prop_assert!(p <= m + 1e-9);
                }
                let pj = l.totals().process_gpu_j;
                prop_assert!(pj >= proc_j && pj <= l.totals().gpu_j + 1e-6);
                proc_j = pj;
                kwh = tick.energy_kwh;
                g = tick.co2e_g;
            }
        }

        /// A RAPL delta is never negative and never more than one full turn of the counter,
        /// wrap or reset.
        #[test]
        fn rapl_deltas_are_bounded(old in any::<u64>(), new in any::<u64>(),
                                   max in 1u64..u64::MAX, dt in 0.001f64..1e6) {
            let c = |uj: u64| vec![RaplCounter {
                zone: "z".into(), energy_uj: uj % max, max_energy_range_uj: max,
            }];
            let (j, wraps, resets) = rapl_delta_j(&c(old), &c(new), dt);
            prop_assert!(j >= 0.0);
            prop_assert!(j <= max as f64 / 1e6 + 1e-6);
            prop_assert!(wraps + resets <= 1);
            if new % max >= old % max {
                prop_assert_eq!(j, ((new % max) - (old % max)) as f64 / 1e6);
            }
        }
    }
}
