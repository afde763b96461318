//! Past one machine (issues 8, 21): `carbontop serve` exposes the Ledger's figures at
//! `/metrics` in the Prometheus text format (crate `prometheus`, served by `hyper` within
//! [`LIMITS`]), named by Prometheus' conventions (base units, `_total` counters, `_ratio` for
//! 0–1, `_info` series of value 1 for what does not change, labels for node, component, GPU and
//! zone, and [`START_LABEL`] on every series); the names they replace are served for one more
//! release, their help starting `DEPRECATED: use …`. `watch --agent` scrapes such agents back
//! (`agents.rs`). Nothing here can change a cap: the HTTP side only reads.

pub mod agents;

use crate::engine::{Snapshot, Tick};
use http_body_util::Full;
use hyper::body::Bytes;
use prometheus::{CounterVec, Encoder, GaugeVec, Opts, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why the exporter could not start, or an agent's scrape was refused. Each text is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServeError {
    /// The Prometheus registry refused a metric (a bug, not the user's).
    #[error("cannot set up the metrics: {0}")]
    Metrics(String),
    /// `--listen ADDR` could not be bound.
    #[error("--listen {addr}: cannot listen: {reason}")]
    Listen { addr: String, reason: String },
    /// The HTTP thread could not be started.
    #[error("cannot start the metrics server: {0}")]
    Thread(String),
    /// `--agent` is not an address an agent can be asked at.
    #[error("--agent {agent}: {reason}")]
    BadAgent { agent: String, reason: String },
    /// The scraper's HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The agent did not answer (or answered with an HTTP error).
    #[error("agent {agent}: {reason}")]
    Unreachable { agent: String, reason: String },
    /// The answer is not the Prometheus text format.
    #[error("agent {agent}: not the Prometheus text format: {reason}")]
    NotExposition { agent: String, reason: String },
    /// A carbontop metric that is NaN or infinite.
    #[error("agent {agent}: {metric} is {value}")]
    NotFinite {
        agent: String,
        metric: String,
        value: f64,
    },
    /// A carbontop figure above any machine's ([`agents::MAX_FIGURE`]).
    #[error("agent {agent}: {metric} is {value}, beyond what any machine reports")]
    TooLarge {
        agent: String,
        metric: String,
        value: f64,
    },
    /// A carbontop total below zero.
    #[error("agent {agent}: {metric} is negative ({value})")]
    Negative {
        agent: String,
        metric: String,
        value: f64,
    },
    /// The answer has no `carbontop_samples_total`.
    #[error("agent {0}: no carbontop_samples_total: not a carbontop agent?")]
    NotAnAgent(String),
}

/// Static facts of this agent.
#[derive(Debug, Clone, Default)]
pub struct AgentInfo {
    pub node: String,
    pub zone: String,
    pub gpu_models: Vec<String>,
    /// NVML's UUID of each GPU, in the order of `gpu_models` (none where the source has none:
    /// simulated GPUs, a recording).
    pub gpu_uuids: Vec<String>,
    /// `serve --replay`: the speed the recording plays at, as given (`1`, `10`, `max`); `None`
    /// for this machine, live.
    pub replay_speed: Option<String>,
}

/// The label every series of one agent process carries: when it started (UTC, to the
/// millisecond). A restarted agent's counters start again from zero under a new value, so its
/// earlier series stay apart in Prometheus and `max_over_time` over them is exact (README,
/// "Past one machine").
pub const START_LABEL: &str = "agent_start";

/// The version `carbontop_build_info` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Metrics {
    registry: Registry,
    power: GaugeVec,
    facility_power: GaugeVec,
    energy: CounterVec,
    facility_energy: CounterVec,
    co2e: CounterVec,
    embodied: GaugeVec,
    intensity: GaugeVec,
    net_bytes: CounterVec,
    comms_energy: CounterVec,
    comms_co2e: CounterVec,
    gpus: Gpus,
    embodied_total: CounterVec,
    training: Training,
    samples: CounterVec,
    /// What the counters have been advanced to (the client library only moves them by
    /// increments: each update advances them to the Snapshot's totals).
    at: Advanced,
}

/// The totals the counters stand at.
#[derive(Debug, Clone, Default)]
struct Advanced {
    it_j: [f64; 4],
    facility_j: f64,
    co2e_g: f64,
    net: (u64, u64),
    /// The command's (cluster rx, cluster tx, internet rx, internet tx) bytes, and its
    /// (port on cluster traffic, internet path) joules.
    cmd_net: [f64; 4],
    comms_j: [f64; 2],
    /// The (machine, internet path) communication carbon (g).
    comms_g: [f64; 2],
    /// The RDMA ports' (rx, tx) bytes, the machine's then the command's.
    rdma: [f64; 4],
    gpu_j: Vec<f64>,
    ticks: u64,
    steps: f64,
    embodied_g: f64,
}

/// The GPU series' help: the `model` label goes in the next release.
macro_rules! gpu_help {
    ($what:literal) => {
        concat!(
            $what,
            " (the model label is DEPRECATED: use carbontop_gpu_info, joined on node and gpu)"
        )
    };
}

/// The GPUs' series, and what each GPU is (`carbontop_gpu_info`).
struct Gpus {
    power: GaugeVec,
    energy: CounterVec,
    util: GaugeVec,
    cap: GaugeVec,
    info: GaugeVec,
}

impl Gpus {
    fn new(r: &Registry) -> prometheus::Result<Self> {
        let labels = &["node", "gpu", "model"];
        Ok(Self {
            power: gauge(
                r,
                "carbontop_gpu_power_watts",
                gpu_help!("GPU power"),
                labels,
            )?,
            energy: counter(
                r,
                "carbontop_gpu_energy_joules_total",
                gpu_help!("GPU energy"),
                labels,
            )?,
            util: gauge(
                r,
                "carbontop_gpu_utilization_ratio",
                gpu_help!("GPU utilisation, 0–1"),
                labels,
            )?,
            cap: gauge(
                r,
                "carbontop_gpu_power_cap_watts",
                gpu_help!("GPU power-management limit"),
                labels,
            )?,
            info: gauge(
                r,
                "carbontop_gpu_info",
                "Each GPU's model and NVML UUID (empty where the source has none), value 1: \
                 join it on (node, gpu)",
                &["node", "gpu", "uuid", "model"],
            )?,
        })
    }

    /// Each GPU's readings of the tick, its energy counter moved on from `at_j`.
    fn update(&self, a: &AgentInfo, gpus: &[crate::engine::GpuTick], at_j: &mut Vec<f64>) {
        let n = a.node.as_str();
        at_j.resize(gpus.len(), 0.0);
        for (i, g) in gpus.iter().enumerate() {
            let model = a.gpu_models.get(i).map_or("GPU", String::as_str);
            let uuid = a.gpu_uuids.get(i).map_or("", String::as_str);
            // NVML's number, as nvidia-smi, the screen and samples.csv show it.
            let gpu = g.index.to_string();
            self.info
                .with_label_values(&[n, &gpu, uuid, model])
                .set(1.0);
            let labels = [n, &gpu, model];
            if let Some(w) = g.power_w {
                self.power.with_label_values(&labels).set(w);
            }
            if let Some(j) = g.energy_j {
                advance(&self.energy, &labels, j, &mut at_j[i]);
            }
            if let Some(u) = g.util_pct {
                self.util.with_label_values(&labels).set(u / 100.0);
            }
            if let Some(c) = g.cap_w {
                self.cap.with_label_values(&labels).set(c);
            }
        }
    }
}

/// The run's progress, one series each (`carbontop_progress{metric}` kept for one release).
struct Training {
    steps: CounterVec,
    epoch: GaugeVec,
    accuracy: GaugeVec,
    gained: GaugeVec,
    loss: GaugeVec,
    /// Deprecated: `carbontop_progress{metric}`.
    progress: GaugeVec,
}

impl Training {
    fn new(r: &Registry) -> prometheus::Result<Self> {
        Ok(Self {
            steps: counter(
                r,
                "carbontop_training_steps_total",
                "Training steps the run reported",
                &["node"],
            )?,
            epoch: gauge(r, "carbontop_training_epoch", "The run's epoch", &["node"])?,
            accuracy: gauge(
                r,
                "carbontop_accuracy_ratio",
                "The run's accuracy, 0–1",
                &["node"],
            )?,
            gained: gauge(
                r,
                "carbontop_accuracy_gained_ratio",
                "Accuracy now less at its first reading, 0–1 (the basis of the cost per \
                 accuracy point: one point is 0.01)",
                &["node"],
            )?,
            loss: gauge(r, "carbontop_loss", "The run's training loss", &["node"])?,
            progress: gauge(
                r,
                "carbontop_progress",
                "DEPRECATED: use carbontop_training_steps_total, carbontop_training_epoch, \
                 carbontop_accuracy_ratio, carbontop_accuracy_gained_ratio and carbontop_loss \
                 (this one goes in the next release). The run's progress: epoch, step, \
                 accuracy_percent, loss, and accuracy_points_gained",
                &["node", "metric"],
            )?,
        })
    }

    /// The tick's progress as read, and the points gained as the Snapshot counts them.
    fn update(&self, n: &str, t: &Tick, s: &Snapshot, at_steps: &mut f64) {
        let pr = &t.progress;
        let gained = s.per_point.map(|p| p.gained);
        if let Some(step) = pr.step {
            advance(&self.steps, &[n], step as f64, at_steps);
        }
        for (g, v) in [
            (&self.epoch, pr.epoch),
            (&self.accuracy, pr.accuracy.map(|a| a / 100.0)),
            (&self.gained, gained.map(|a| a / 100.0)),
            (&self.loss, pr.loss),
        ] {
            if let Some(v) = v {
                g.with_label_values(&[n]).set(v);
            }
        }
        for (m, v) in [
            ("epoch", pr.epoch),
            ("step", pr.step.map(|s| s as f64)),
            ("accuracy_percent", pr.accuracy),
            ("loss", pr.loss),
            ("accuracy_points_gained", gained),
        ] {
            if let Some(v) = v {
                self.progress.with_label_values(&[n, m]).set(v);
            }
        }
    }
}

/// Moves a counter up to `now` from `*at` (never down: a counter only grows). The series
/// exists from its first figure on, at 0 if need be: a `rate()` over it then has data, and a
/// ratio of two rates is not empty because one of them has not moved yet.
fn advance(c: &CounterVec, labels: &[&str], now: f64, at: &mut f64) {
    let c = c.with_label_values(labels);
    if now > *at {
        c.inc_by(now - *at);
        *at = now;
    }
}

/// `carbontop_build_info{node,version,source,replay_speed} 1`: what serves, and whether its
/// series run at the wall clock's pace (`replay_speed` other than `1`: a replay played faster or
/// slower, whose `rate()`s are that many times off).
fn build_info(r: &Registry, a: &AgentInfo) -> prometheus::Result<()> {
    let g = gauge(
        r,
        "carbontop_build_info",
        "The agent: its version, source=live (this machine) or replay (a recording), and \
         replay_speed, the pace of its series against the wall clock (1 live; a replay at \
         another speed makes every rate() that many times off), value 1",
        &["node", "version", "source", "replay_speed"],
    )?;
    let (source, speed) = match &a.replay_speed {
        Some(x) => ("replay", x.as_str()),
        None => ("live", "1"),
    };
    g.with_label_values(&[a.node.as_str(), VERSION, source, speed])
        .set(1.0);
    Ok(())
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<CounterVec> {
    let c = CounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// The metrics of an agent process started at `start` ([`START_LABEL`]).
    fn new(a: &AgentInfo, start: &str) -> prometheus::Result<Self> {
        let r = Registry::new_custom(
            None,
            Some([(START_LABEL.to_owned(), start.to_owned())].into()),
        )?;
        build_info(&r, a)?;
        Ok(Self {
            power: gauge(
                &r,
                "carbontop_power_watts",
                "IT power by component, average over the last interval",
                &["node", "component"],
            )?,
            facility_power: gauge(
                &r,
                "carbontop_facility_power_watts",
                "IT power × PUE",
                &["node"],
            )?,
            energy: counter(
                &r,
                "carbontop_energy_joules_total",
                "IT energy by component since the agent started",
                &["node", "component"],
            )?,
            facility_energy: counter(
                &r,
                "carbontop_facility_energy_joules_total",
                "Facility energy (IT × PUE) since the agent started",
                &["node"],
            )?,
            co2e: counter(
                &r,
                "carbontop_co2e_grams_total",
                "Operational carbon: sum over ticks of facility energy × the grid intensity then",
                &["node", "zone"],
            )?,
            embodied: gauge(
                &r,
                "carbontop_embodied_co2e_grams",
                "DEPRECATED: use carbontop_embodied_co2e_grams_total (this one goes in the next \
                 release). Embodied carbon amortised over the run (SCI M)",
                &["node"],
            )?,
            embodied_total: counter(
                &r,
                "carbontop_embodied_co2e_grams_total",
                "Embodied carbon amortised over the run so far (SCI M: the hardware's \
                 manufacturing carbon × time / its lifetime × the share the run holds)",
                &["node"],
            )?,
            intensity: gauge(
                &r,
                "carbontop_grid_intensity_grams_per_kwh",
                "Grid carbon intensity now",
                &["node", "zone", "source"],
            )?,
            net_bytes: counter(
                &r,
                "carbontop_network_bytes_total",
                "Network traffic: scope=machine the counted interfaces (all traffic, the \
                 command's included); scope=cluster|internet the watched command's own TCP \
                 traffic by where its peers are (run only); scope=rdma the RDMA \
                 (InfiniBand/RoCE) ports' traffic, cluster traffic the interfaces do not see, \
                 and scope=cluster_rdma the watched command's part of it (run only)",
                &["node", "direction", "scope"],
            )?,
            comms_energy: counter(
                &r,
                "carbontop_comms_energy_joules_total",
                "The watched command's communication energy: scope=cluster its share of this \
                 machine's NIC and switch-port energy for cluster traffic (part of \
                 component=network); scope=internet the internet path's energy for its public \
                 traffic (other people's equipment, not this machine's)",
                &["node", "scope"],
            )?,
            comms_co2e: counter(
                &r,
                "carbontop_comms_co2e_grams_total",
                "Communication carbon: scope=machine this machine's network energy (its NICs' \
                 and switch ports' share by the port model, RDMA ports included) as carbon, \
                 part of carbontop_co2e_grams_total; scope=internet the internet path's carbon \
                 of the watched command's public traffic (run only; other people's equipment, \
                 apart from carbontop_co2e_grams_total)",
                &["node", "scope"],
            )?,
            gpus: Gpus::new(&r)?,
            training: Training::new(&r)?,
            samples: counter(&r, "carbontop_samples_total", "Ticks accounted", &["node"])?,
            registry: r,
            at: Advanced::default(),
        })
    }

    /// Communication carbon: the machine's network (scope=machine) and the command's internet
    /// path (scope=internet).
    fn advance_comms_co2e(&mut self, n: &str, s: &Snapshot) {
        let g = [
            ("machine", s.comms.map(|c| c.g.0)),
            ("internet", s.cmd_net.map(|c| c.internet_co2e.g.0)),
        ];
        for (k, (scope, g)) in g.into_iter().enumerate() {
            if let Some(g) = g {
                advance(&self.comms_co2e, &[n, scope], g, &mut self.at.comms_g[k]);
            }
        }
    }

    /// The RDMA ports' bytes (scope=rdma) and the command's part of them (scope=cluster_rdma).
    fn advance_rdma(&mut self, n: &str, s: &Snapshot) {
        let Some(r) = s.rdma else {
            return;
        };
        let own = s.cmd_net.map(|c| c.rdma);
        let bytes = [
            ("rx", "rdma", Some(r.bytes.rx_bytes)),
            ("tx", "rdma", Some(r.bytes.tx_bytes)),
            ("rx", "cluster_rdma", own.map(|o| o.rx_bytes)),
            ("tx", "cluster_rdma", own.map(|o| o.tx_bytes)),
        ];
        for (k, (dir, scope, b)) in bytes.into_iter().enumerate() {
            if let Some(b) = b {
                advance(
                    &self.net_bytes,
                    &[n, dir, scope],
                    b as f64,
                    &mut self.at.rdma[k],
                );
            }
        }
    }

    fn update(&mut self, a: &AgentInfo, t: &Tick, s: &Snapshot) {
        let n = a.node.as_str();
        let now = &s.now;
        let it = s.it.joules();
        for (k, (c, w)) in crate::engine::job::COMPONENTS
            .iter()
            .zip([now.gpu_w, now.cpu_w, now.mem_w, now.net_w])
            .enumerate()
        {
            if let Some(w) = w {
                self.power.with_label_values(&[n, c]).set(w.0);
            }
            advance(&self.energy, &[n, c], it[k], &mut self.at.it_j[k]);
        }
        if let Some(w) = now.facility_w {
            self.facility_power.with_label_values(&[n]).set(w.0);
        }
        advance(
            &self.facility_energy,
            &[n],
            s.facility_j(),
            &mut self.at.facility_j,
        );
        advance(&self.co2e, &[n, &a.zone], s.co2e_g.0, &mut self.at.co2e_g);
        if let Some(e) = s.embodied {
            self.embodied.with_label_values(&[n]).set(e.g.0);
            advance(&self.embodied_total, &[n], e.g.0, &mut self.at.embodied_g);
        }
        if let Some(i) = &s.intensity {
            self.intensity.reset();
            self.intensity
                .with_label_values(&[n, &a.zone, &i.source.to_string()])
                .set(i.g_per_kwh.0);
        }
        let (mut rx, mut tx) = (self.at.net.0 as f64, self.at.net.1 as f64);
        advance(
            &self.net_bytes,
            &[n, "rx", "machine"],
            s.net_rx_bytes as f64,
            &mut rx,
        );
        advance(
            &self.net_bytes,
            &[n, "tx", "machine"],
            s.net_tx_bytes as f64,
            &mut tx,
        );
        self.at.net = (rx as u64, tx as u64);
        self.advance_rdma(n, s);
        self.advance_comms_co2e(n, s);
        if let Some(c) = s.cmd_net {
            let bytes = [
                ("rx", "cluster", c.cluster.rx_bytes),
                ("tx", "cluster", c.cluster.tx_bytes),
                ("rx", "internet", c.internet.rx_bytes),
                ("tx", "internet", c.internet.tx_bytes),
            ];
            for (k, (dir, scope, b)) in bytes.into_iter().enumerate() {
                advance(
                    &self.net_bytes,
                    &[n, dir, scope],
                    b as f64,
                    &mut self.at.cmd_net[k],
                );
            }
            let joules = [
                (
                    "cluster",
                    c.port_cluster_kwh.0 * crate::engine::constants::J_PER_KWH,
                ),
                (
                    "internet",
                    c.internet_kwh * crate::engine::constants::J_PER_KWH,
                ),
            ];
            for (k, (scope, j)) in joules.into_iter().enumerate() {
                advance(&self.comms_energy, &[n, scope], j, &mut self.at.comms_j[k]);
            }
        }
        self.gpus.update(a, &now.gpus, &mut self.at.gpu_j);
        self.training.update(n, t, s, &mut self.at.steps);
        let mut ticks = self.at.ticks as f64;
        advance(&self.samples, &[n], s.ticks as f64, &mut ticks);
        self.at.ticks = ticks as u64;
    }
}

/// The `/metrics` side of an agent: updated by the run's loop, read by the HTTP thread.
#[derive(Clone)]
pub struct Exporter {
    info: Arc<AgentInfo>,
    metrics: Arc<Mutex<Metrics>>,
}

impl Exporter {
    pub fn new(info: AgentInfo) -> Result<Self, ServeError> {
        let start = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Self::started(info, &start)
    }

    /// [`Exporter::new`] for an agent that started at `start` (its [`START_LABEL`]).
    pub fn started(info: AgentInfo, start: &str) -> Result<Self, ServeError> {
        let m = Metrics::new(&info, start).map_err(|e| ServeError::Metrics(e.to_string()))?;
        Ok(Self {
            info: Arc::new(info),
            metrics: Arc::new(Mutex::new(m)),
        })
    }

    /// Shows the run as the tick's Snapshot says (the tick for its progress as read).
    pub fn update(&self, t: &Tick, s: &Snapshot) {
        let mut m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        m.update(&self.info, t, s);
    }

    /// The Prometheus text exposition of everything so far.
    pub fn render(&self) -> String {
        let m = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&m.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Serves `GET /metrics` on `addr` from a thread of its own; the address it listens on
    /// (port 0 picks a free one). What a client can hold of the agent is bounded ([`LIMITS`]).
    pub fn listen(&self, addr: &str) -> Result<SocketAddr, ServeError> {
        self.listen_with(addr, LIMITS)
    }

    /// [`Exporter::listen`] under other bounds (the tests' shorter timeouts).
    pub fn listen_with(&self, addr: &str, limits: Limits) -> Result<SocketAddr, ServeError> {
        let listen_error = |e: std::io::Error| ServeError::Listen {
            addr: addr.to_owned(),
            reason: e.to_string(),
        };
        let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
        let local = listener.local_addr().map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        // One thread for every connection: an idle socket costs a task, not a thread.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ServeError::Thread(e.to_string()))?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("carbontop-serve".into())
            .spawn(move || rt.block_on(me.serve(listener, limits)))
            .map_err(|e| ServeError::Thread(e.to_string()))?;
        Ok(local)
    }

    /// Accepts connections while the process lives: each served by hyper within the limits,
    /// those beyond `max_connections` answered 503 and closed at once.
    async fn serve(self, listener: std::net::TcpListener, limits: Limits) {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                // Out of file descriptors, or a connection reset before it was accepted: the
                // next one may fare better, after a pause that keeps this from spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                let _ = stream.try_write(BUSY);
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = me.answer(&req);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .max_buf_size(limits.max_header_bytes)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                // Whatever the client does, the connection and its slot end by then.
                let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
                drop(slot);
            });
        }
    }

    /// `GET /metrics`: the exposition; `HEAD /metrics` its headers (hyper sends no body to a
    /// HEAD); anything else: 404.
    fn answer<B>(&self, req: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
        let read = matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD);
        let ok = read && req.uri().path() == "/metrics";
        let (status, content_type, body) = if ok {
            (
                hyper::StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.render(),
            )
        } else {
            (
                hyper::StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "only GET and HEAD /metrics are served here\n".to_owned(),
            )
        };
        let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        resp
    }
}

/// What one client can hold of an agent (issue 20: a 1.5 GB header without CRLF, and 500 idle
/// sockets making 506 threads, under tiny_http).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections served at once; one more is answered 503 and closed. Prometheus and
    /// `watch --agent` each hold one.
    pub max_connections: usize,
    /// The request line and headers, in bytes (hyper's smallest buffer, 8 KiB: a scrape's
    /// request is about 200 B); a longer one is answered 431 and closed.
    pub max_header_bytes: usize,
    /// Time to send the request line and headers, from the connection's start or the end of
    /// the last answer; a client that takes longer is closed.
    pub header_timeout: Duration,
    /// The longest a connection lives, busy or idle (a scrape takes milliseconds).
    pub connection_timeout: Duration,
}

/// The agents' bounds.
pub const LIMITS: Limits = Limits {
    max_connections: 32,
    max_header_bytes: 8 << 10,
    header_timeout: Duration::from_secs(5),
    connection_timeout: Duration::from_secs(30),
};

/// The answer to a connection beyond `max_connections`.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// `--listen`: loopback unless an address is given explicitly.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9184";

/// What to tell the user once the server listens: where, and whether the network can reach it
/// (only ever because `--listen` said so: there is no other way to set the address).
pub fn serving_line(at: SocketAddr) -> String {
    if at.ip().is_loopback() {
        format!("serving /metrics on http://{at}/metrics")
    } else {
        format!(
            "serving /metrics on http://{at}/metrics: reachable from the network, as --listen \
             asked (read-only: GET and HEAD /metrics only, nothing can change a cap over HTTP)"
        )
    }
}
