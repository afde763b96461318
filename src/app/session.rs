//! The Session: a measuring command's state and rules, with no I/O and no clock of its own.
//!
//! It takes [`Event`]s — a sample, the command's output, progress and exit, a signal, what a
//! key asked for, a timer — each with the time it happened (seconds on the driver's monotonic
//! clock), and returns [`Effect`]s for the driver to carry out: record a row, warn, draw,
//! signal the command, stop the sampler, export, quit. The Ledger, the Meter (inside the
//! dashboard) and the cap side live here, so one tick is accounted, recorded and shown the same
//! way whether the output is the screen or headless, and tests script a whole run — its
//! deadlines included — without sleeping (DESIGN.md §2 "Session and one loop").

use crate::app::caps::CapSide;
use crate::app::child::ChildEvent;
use crate::engine::forecast::{self, Slot};
use crate::engine::meter::GridInfo;
use crate::engine::{Ledger, Snapshot, Tick, Totals};
use crate::sample::{Intensity, Progress, Sample};
use crate::serve::agents::Node;
use crate::source::grid::live::GridView;
use crate::ui::model::Dashboard;
use crate::ui::state::Effect as Action;
use crate::units::Pue;
use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use signal_hook::consts::SIGINT;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Grace between SIGTERM and SIGKILL when --duration or `q` ends a command (as `timeout -k`).
pub const KILL_GRACE_S: f64 = 5.0;
/// How long a command's output may stay open after it exited (grandchildren holding the pipe).
pub const OUTPUT_DRAIN_S: f64 = 1.0;
/// A SIGINT sent to carbontop alone (not the terminal's whole group) reaches the command after
/// this.
pub const SIGINT_FORWARD_AFTER_S: f64 = 2.0;

/// How long rows wait for a live grid provider's first answer before they are written at the
/// table's value (labelled `table`). A minute covers a slow provider's first answer and the
/// retries after a failed first request (5 s, then 10 s, then 20 s) while keeping samples.csv
/// no more than a minute behind; the providers' history covers the past slots it prices.
pub const GRID_HOLD_S: f64 = 60.0;
/// At most this many rows are held (a Sample is a few hundred bytes, a few KiB with many GPUs:
/// a few MiB at most). Past it the hold ends early — the rows are written, priced with what is
/// known then (the table's value, labelled, when the provider has not answered) — so memory is
/// bounded whatever the interval; at 100 ms the minute takes 600.
pub const GRID_HOLD_ROWS: usize = 1200;

/// The label of a held row's provisional intensity on the screen and the status line (never
/// written: the row is written once priced).
pub const PENDING: &str = "pending";

/// The intensity valid at a past time by what a live provider has said so far (the table's
/// value, labelled `table`, where it said nothing for that time).
pub type Pricer = Box<dyn Fn(DateTime<Utc>) -> Intensity + Send>;

/// The rows sampled before a live provider's first answer, in order (DESIGN.md §9: a slow
/// provider delays rows, it never makes one be skipped).
struct Hold {
    pricer: Pricer,
    /// Rows are held until the first release; after it, a pending row is priced at once.
    open: bool,
    /// Each held sample and the cap changes of the interval it closes.
    rows: Vec<(Sample, crate::engine::caplog::CapLog)>,
    /// When the first row was held (the Session's time).
    since: f64,
    /// The dashboard's meter before the hold: the screen meanwhile shows the held rows priced
    /// provisionally (labelled `pending`), and the written ones replace them.
    meter: Option<crate::engine::Meter>,
    /// The Ledger the provisional figures come from (a copy of the real one).
    preview: Option<Ledger>,
}

/// Something that happened, at the time the driver hands it in.
pub enum Event {
    /// One tick's readings, the warnings the sources raised, and the live grid provider's
    /// state when it changed since the last tick.
    Sample {
        sample: Box<Sample>,
        warnings: Vec<String>,
        grid: Option<GridView>,
    },
    /// A tick a recording's source accounted (replay, `serve --replay`), with the Ledger's
    /// totals after it and the recording's PUE.
    Tick {
        tick: Box<Tick>,
        totals: Box<Totals>,
        pue: Pue,
    },
    /// The agents' figures as scraped at `at` (`watch --agent`).
    Agents {
        nodes: Vec<Node>,
        at: DateTime<Utc>,
    },
    /// The source starts over (a replay seeking back): the figures restart from zero.
    Restart,
    /// A recording came to its end (with the error that cut it short, if one did).
    Ended(Option<String>),
    /// The source stopped (the sampler after its closing sample, a replay or the agents after
    /// a stop); nothing more comes.
    SamplerDone,
    Child(ChildEvent),
    /// SIGINT, SIGTERM or SIGHUP reached carbontop.
    Signal(i32),
    /// What a key on the screen asked for.
    Action(Action),
    /// A deadline from [`Session::next_deadline`] passed.
    Timer,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append the tick to samples.csv and show it on /metrics.
    Record(Box<Tick>),
    /// A warning: on the screen it is already on the status line; headless, one stderr line.
    Warn(String),
    /// The cap side's or the governor's word: flashed on the screen, said headless (unless
    /// --quiet).
    Note(String),
    /// Said headless (unless --quiet); the screen shows it in its panels.
    Info(String),
    /// A line of its own on stderr headless (unless --quiet): the agents' per-node rows.
    Print(String),
    /// A replay key (pause, seek, speed, restart) for the source.
    Playback(Action),
    /// A tick was accounted: draw it, or print the status line.
    Ticked,
    Draw,
    /// Draw, unless a frame was drawn moments ago (output lines arriving fast).
    DrawSoon,
    /// `e`: the PNG and CSV of the run so far.
    Export,
    SignalChild(Signal),
    StopSampler,
    /// Leave the loop.
    Quit,
}

/// How a session is set up.
pub struct SessionConfig {
    /// The screen is the output (it stays up after the run until `q`).
    pub screen: bool,
    /// `run -- CMD`: there is a command to watch and stop.
    pub child: bool,
    /// `--duration`, in seconds.
    pub duration_s: Option<f64>,
    /// samples.csv is written (the screen says it is complete at the end).
    pub recording: bool,
    /// At the end of a recording, wait for a signal rather than quit (`serve --replay` holds
    /// its totals on /metrics).
    pub hold: bool,
}

/// How the run ended, for the summary and the exit code.
pub struct Outcome {
    pub snapshot: Snapshot,
    pub notes: Vec<String>,
    pub child_exit: Option<ExitStatus>,
}

pub struct Session {
    pub dash: Dashboard,
    ledger: Ledger,
    pub caps: CapSide,
    cfg: SessionConfig,
    /// The command's progress so far (merged into every sample).
    progress: Progress,
    kill_at: Option<f64>,
    sigint_forward_at: Option<f64>,
    child_exit: Option<(ExitStatus, f64)>,
    outputs_open: u8,
    stopping: bool,
    /// Leave as soon as the sampler is done (no screen to hold, or a signal or `q`).
    leave: bool,
    sampler_done: bool,
    stop_reason: Option<String>,
    last_warning: Option<String>,
    grid_hint: Option<String>,
    /// The live provider's faults ended so far, as last said.
    grid_recoveries: u64,
    /// `watch --agent`: the nodes as last scraped, and each one's fault as last said.
    nodes: Vec<Node>,
    faults_said: Vec<Option<String>>,
    /// A live grid provider: the rows held for its first answer.
    hold: Option<Hold>,
}

/// The cap changes made during the interval `tick` closes, numbered as every output numbers
/// GPUs (NVML's index; the actuator counts them by position).
fn with_caps(tick: &mut crate::engine::Tick, mut caps: crate::engine::caplog::CapLog) {
    for c in &mut caps.0 {
        if let Some(g) = tick.gpus.get(c.gpu) {
            c.gpu = g.index as usize;
        }
    }
    tick.cap_change = caps;
}

impl Session {
    pub fn new(dash: Dashboard, ledger: Ledger, caps: CapSide, cfg: SessionConfig) -> Self {
        Self {
            dash,
            ledger,
            caps,
            progress: Progress::default(),
            kill_at: None,
            sigint_forward_at: None,
            child_exit: None,
            outputs_open: if cfg.child { 2 } else { 0 },
            stopping: false,
            leave: !cfg.screen,
            sampler_done: false,
            stop_reason: None,
            last_warning: None,
            grid_hint: None,
            grid_recoveries: 0,
            nodes: Vec::new(),
            faults_said: Vec::new(),
            hold: None,
            cfg,
        }
    }

    /// A live grid provider prices the ticks: rows sampled before its first answer (their
    /// intensity `None`) are held, then written in order, each priced by `pricer` at its own
    /// time, when the first priced sample comes, when the provider fails, at GRID_HOLD_S, at
    /// GRID_HOLD_ROWS, or at the end of sampling, whichever is first; then the hold is over.
    pub fn price_with(&mut self, pricer: Pricer) {
        self.hold = Some(Hold {
            pricer,
            open: true,
            rows: Vec::new(),
            since: 0.0,
            meter: None,
            preview: None,
        });
    }

    /// How many rows wait for the grid provider's first answer.
    pub fn held_rows(&self) -> usize {
        self.hold.as_ref().map_or(0, |h| h.rows.len())
    }

    /// The agents as last scraped (`watch --agent`).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The command is running (started and not yet exited).
    pub fn running(&self) -> bool {
        self.cfg.child && self.child_exit.is_none()
    }

    /// Folds one event in; what the driver must do.
    pub fn handle(&mut self, now: f64, ev: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match ev {
            Event::Sample {
                sample,
                warnings,
                grid,
            } => self.on_sample(now, *sample, warnings, grid, &mut fx),
            Event::Tick { tick, totals, pue } => self.on_tick(*tick, *totals, pue, &mut fx),
            Event::Agents { nodes, at } => self.on_agents(now, nodes, at, &mut fx),
            Event::Restart => {
                let basis = self.dash.meter.basis.clone();
                let history = self.dash.meter.history.is_some();
                self.dash.meter = crate::engine::Meter::new(basis, history);
                self.dash.ended = None;
            }
            Event::Ended(error) => self.on_ended(error, &mut fx),
            Event::SamplerDone => self.on_sampler_done(&mut fx),
            Event::Child(c) => self.on_child(now, c, &mut fx),
            Event::Signal(sig) => self.on_signal(now, sig, &mut fx),
            Event::Action(a) => self.on_action(now, a, &mut fx),
            Event::Timer => {}
        }
        self.timers(now, &mut fx);
        fx
    }

    /// The earliest time something is due, if anything is.
    pub fn next_deadline(&self) -> Option<f64> {
        let duration = self
            .cfg
            .duration_s
            .filter(|_| !self.stopping && self.kill_at.is_none());
        let drain = self
            .child_exit
            .map(|(_, t)| t + OUTPUT_DRAIN_S)
            .filter(|_| !self.stopping);
        let hold = self
            .hold
            .as_ref()
            .filter(|h| !h.rows.is_empty())
            .map(|h| h.since + GRID_HOLD_S);
        [duration, self.kill_at, self.sigint_forward_at, drain, hold]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }

    /// A warning: on the screen's status line, or one stderr line; kept for the summary.
    pub fn warn(&mut self, msg: String, fx: &mut Vec<Effect>) {
        self.dash.warn(msg.clone());
        self.last_warning = Some(msg.clone());
        fx.push(Effect::Warn(msg));
    }

    fn stop(&mut self, fx: &mut Vec<Effect>) {
        if !self.stopping {
            self.stopping = true;
            // Before the closing sample, so its row records the caps put back.
            self.caps.restore_at_stop();
            fx.push(Effect::StopSampler);
        }
    }

    fn on_sample(
        &mut self,
        now: f64,
        mut s: Sample,
        warnings: Vec<String>,
        grid: Option<GridView>,
        fx: &mut Vec<Effect>,
    ) {
        for w in warnings {
            self.warn(w, fx);
        }
        // The command's own progress over what the source reports (simulated GPUs).
        s.progress.merge(&self.progress);
        // Cap changes made during the interval this row closes.
        let caps = self.caps.take_log();
        if let Some(v) = grid {
            let failed = v.failure.is_some();
            self.on_grid(v, s.elapsed_s, s.time, fx);
            if failed {
                // A provider failing before its first answer (offline, refused, a bad token)
                // ends the hold: its retries back off from 5 s, and rows kept in memory are
                // rows a crash could lose.
                self.release(fx);
            }
        }
        if let Some(h) = self.hold.as_mut()
            && s.intensity.is_none()
        {
            if h.open {
                self.hold_row(now, s, caps, fx);
                return;
            }
            // After the hold: a row still without an answer is priced at once (the table).
            s.intensity = Some((h.pricer)(s.time));
        }
        // The provider answered: what it held goes first, in order.
        self.release(fx);
        let mut tick = self.ledger.push(s);
        with_caps(&mut tick, caps);
        self.dash.push(&tick, self.ledger.totals());
        self.govern(&tick, fx);
        fx.push(Effect::Record(Box::new(tick)));
        fx.push(Effect::Ticked);
    }

    /// The governor decides for the next interval, on the forecast's mean over it where the
    /// provider has one.
    fn govern(&mut self, tick: &crate::engine::Tick, fx: &mut Vec<Effect>) {
        let slots = self.dash.meter.grid.as_ref().map_or(&[][..], |g| &g.slots);
        let ahead = forecast::mean_over(slots, tick.timestamp, chrono::TimeDelta::minutes(30));
        if let Some(m) = self.caps.on_tick(tick, ahead) {
            fx.push(Effect::Note(m));
        }
        self.caps.look_ahead(tick, slots);
        self.dash.info.cap_mode = self.caps.mode();
        self.dash.cap_note = self.caps.note();
        self.dash.cap_limits = self.caps.limit_rows();
    }

    /// A row sampled before the provider's first answer: kept, and shown meanwhile priced by
    /// what is known now (the table), its intensity labelled `pending`; nothing is written.
    fn hold_row(
        &mut self,
        now: f64,
        s: Sample,
        caps: crate::engine::caplog::CapLog,
        fx: &mut Vec<Effect>,
    ) {
        let Some(h) = self.hold.as_mut() else {
            return;
        };
        if h.rows.is_empty() {
            h.since = now;
            h.meter = Some(self.dash.meter.clone());
            h.preview = Some(self.ledger.clone());
            let line = format!(
                "grid: waiting for the provider's first answer: rows are held (up to {GRID_HOLD_S:.0} s) \
                 and written then, each priced at its own time; carbon meanwhile is pending"
            );
            self.dash.notices.push(line.clone());
            fx.push(Effect::Info(line));
        }
        let mut shown = s.clone();
        shown.intensity = Some(Intensity {
            source: crate::sample::SourceKind::from_label(PENDING).into(),
            ..(h.pricer)(s.time)
        });
        h.rows.push((s, caps.clone()));
        let full = h.rows.len() >= GRID_HOLD_ROWS;
        if let Some(p) = h.preview.as_mut() {
            let mut tick = p.push(shown);
            with_caps(&mut tick, caps);
            let totals = p.totals();
            self.dash.push(&tick, totals);
            self.govern(&tick, fx);
        }
        fx.push(Effect::Ticked);
        if full {
            self.release(fx);
        }
    }

    /// Ends the hold: the held rows written in order, each priced at its own time by what the
    /// provider has said (the table's value, labelled, where it said nothing), and the screen's
    /// provisional figures replaced by them.
    fn release(&mut self, fx: &mut Vec<Effect>) {
        let Some(h) = self.hold.as_mut() else {
            return;
        };
        if !h.open {
            return;
        }
        h.open = false;
        if h.rows.is_empty() {
            return;
        }
        h.preview = None;
        if let Some(before) = h.meter.take() {
            let grid = self.dash.meter.grid.take();
            self.dash.meter = before;
            self.dash.meter.grid = grid;
            self.dash.meter.observe_progress(&self.progress);
        }
        self.dash
            .notices
            .retain(|n| !n.starts_with("grid: waiting for"));
        for (mut s, caps) in std::mem::take(&mut h.rows) {
            s.intensity = Some((h.pricer)(s.time));
            let mut tick = self.ledger.push(s);
            with_caps(&mut tick, caps);
            self.dash.push(&tick, self.ledger.totals());
            fx.push(Effect::Record(Box::new(tick)));
        }
        fx.push(Effect::Draw);
    }

    /// A live provider's new state: the forecast ahead of this tick over the window the hint
    /// looks at (what is left of --duration, else an hour; at least 30 min).
    fn on_grid(&mut self, v: GridView, elapsed_s: f64, at: DateTime<Utc>, fx: &mut Vec<Effect>) {
        // A fault that ended is news, not a warning: said, and never the summary's "last
        // warning".
        if v.recoveries > self.grid_recoveries {
            self.grid_recoveries = v.recoveries;
            fx.extend(v.recovered.clone().map(Effect::Note));
        }
        let left = self.cfg.duration_s.map(|d| d - elapsed_s);
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
        let info = GridInfo::new(v.label, v.failure, v.detail, slots, at, window);
        let hint = info.hint();
        if hint != self.grid_hint {
            if let Some(line) = &hint {
                fx.push(Effect::Info(format!("grid: {line}")));
            }
            self.grid_hint = hint;
        }
        self.dash.meter.grid = Some(info);
    }

    /// A recording's tick: shown and recorded as a live one is (its PUE is the recording's).
    fn on_tick(&mut self, tick: Tick, totals: Totals, pue: Pue, fx: &mut Vec<Effect>) {
        self.dash.meter.basis.pue = pue;
        self.dash.push(&tick, totals);
        fx.push(Effect::Record(Box::new(tick)));
        fx.push(Effect::Ticked);
    }

    /// The end of a recording: the screen holds it until `q`; headless ends, unless it holds
    /// its totals until a signal (`serve --replay`).
    fn on_ended(&mut self, error: Option<String>, fx: &mut Vec<Effect>) {
        if let Some(e) = &error {
            self.stop_reason = Some(format!("replay stopped: {e}"));
        }
        if self.cfg.screen {
            if self.dash.ended.is_none() {
                self.dash.ended = Some(match error {
                    Some(e) => format!("replay stopped: {e} · q to quit"),
                    None => "end of recording · q to quit (, seeks back, home restarts)".into(),
                });
            }
            fx.push(Effect::Draw);
        } else if !self.cfg.hold {
            self.stop(fx);
        }
    }

    /// The agents as scraped: a fault said once per node when it starts, the job's tick (the
    /// nodes summed by the engine), a row per node.
    fn on_agents(&mut self, now: f64, nodes: Vec<Node>, at: DateTime<Utc>, fx: &mut Vec<Effect>) {
        self.faults_said.resize(nodes.len(), None);
        for (n, said) in nodes.iter().zip(self.faults_said.iter_mut()) {
            if n.fault != *said {
                if let Some(f) = &n.fault {
                    let kept = if n.answered.is_some() {
                        "its last values are kept, marked stale"
                    } else {
                        "not counted until it answers"
                    };
                    fx.push(Effect::Warn(format!("{f}; {kept}")));
                }
                said.clone_from(&n.fault);
            }
        }
        let counted = crate::serve::agents::counted(&nodes);
        let dt = now - self.dash.elapsed_s();
        let k = self.dash.meter.totals.ticks + 1;
        let (tick, totals, pue) = crate::engine::job::tick(&counted, at, now, dt, k);
        if let Some(p) = pue {
            self.dash.meter.basis.pue = Pue::saturating(p);
        }
        self.dash.push(&tick, totals);
        self.dash.output.clear();
        for line in crate::app::aggregate::node_lines(&nodes) {
            self.dash.push_output(&line);
            fx.push(Effect::Print(format!("  {line}")));
        }
        self.dash.info.zone = format!("{} of {} nodes", counted.len(), nodes.len());
        if let Some(f) = nodes.iter().find_map(|n| n.fault.clone()) {
            self.dash.warn(f);
        }
        fx.push(Effect::Print(format!(
            "[{now:>8.1} s] job: {} · {} CO2e over {} of {} nodes{}",
            crate::report::summary::fmt_energy_kwh(tick.energy_kwh),
            crate::report::summary::fmt_co2e_g(tick.co2e_g),
            counted.len(),
            nodes.len(),
            crate::app::aggregate::job_comms_text(&nodes)
        )));
        self.nodes = nodes;
        fx.push(Effect::Draw);
    }

    fn on_sampler_done(&mut self, fx: &mut Vec<Effect>) {
        self.sampler_done = true;
        // Nothing more comes: the held rows are written with what is known now.
        self.release(fx);
        if self.leave {
            fx.push(Effect::Quit);
            return;
        }
        // The screen holds the final figures until `q`.
        let why = self
            .stop_reason
            .clone()
            .unwrap_or_else(|| match self.child_exit {
                Some((st, _)) => format!("the command exited ({})", describe_exit(st)),
                None => "measuring stopped".into(),
            });
        let saved = if self.cfg.recording {
            " · samples.csv complete"
        } else {
            ""
        };
        self.dash.ended = Some(format!("{why}{saved} · q quits"));
        fx.push(Effect::Draw);
    }

    fn on_child(&mut self, now: f64, ev: ChildEvent, fx: &mut Vec<Effect>) {
        match ev {
            ChildEvent::Progress(p) => {
                self.dash.meter.observe_progress(&p);
                self.progress.merge(&p);
            }
            ChildEvent::Output(stream, shown) => {
                if self.cfg.screen {
                    self.dash.show_output(stream, *shown);
                    fx.push(Effect::DrawSoon);
                }
            }
            ChildEvent::Note(m) => fx.push(Effect::Note(m)),
            ChildEvent::OutputClosed => self.outputs_open = self.outputs_open.saturating_sub(1),
            ChildEvent::Exited(st) => {
                self.child_exit = Some((st, now));
                self.kill_at = None;
                self.sigint_forward_at = None;
            }
            ChildEvent::WaitFailed(e) => {
                self.warn(format!("lost track of the command: {e}"), fx);
                self.stop_reason
                    .get_or_insert_with(|| "lost track of the command".into());
                self.stop(fx);
            }
        }
    }

    fn on_signal(&mut self, now: f64, sig: i32, fx: &mut Vec<Effect>) {
        // A signal ends carbontop for good, screen or not.
        self.leave = true;
        if self.running() {
            if sig == SIGINT {
                // The terminal's Ctrl-C reached the whole process group already; a SIGINT
                // sent to carbontop alone is passed on if the command lingers.
                self.sigint_forward_at
                    .get_or_insert(now + SIGINT_FORWARD_AFTER_S);
            } else if let Ok(s) = Signal::try_from(sig) {
                fx.push(Effect::SignalChild(s));
            }
        } else {
            self.stop_reason
                .get_or_insert_with(|| format!("stopped by signal {sig}"));
            self.stop(fx);
        }
        if self.sampler_done {
            fx.push(Effect::Quit);
        }
    }

    fn on_action(&mut self, now: f64, a: Action, fx: &mut Vec<Effect>) {
        match a {
            Action::Quit | Action::Interrupt if self.sampler_done => {
                fx.push(Effect::Quit);
                return;
            }
            Action::Quit => {
                self.leave = true;
                if self.running() {
                    self.stop_reason =
                        Some("quit from the screen: the command was sent SIGTERM".into());
                    fx.push(Effect::SignalChild(Signal::SIGTERM));
                    self.kill_at.get_or_insert(now + KILL_GRACE_S);
                    self.dash.warn("stopping the command (SIGTERM)…".into());
                } else {
                    self.stop_reason
                        .get_or_insert_with(|| "quit from the screen".into());
                    self.stop(fx);
                }
            }
            Action::Interrupt if self.running() => {
                // What Ctrl-C would have done without the screen.
                fx.push(Effect::SignalChild(Signal::SIGINT));
                self.dash.warn("Ctrl-C: SIGINT sent to the command".into());
            }
            Action::Interrupt => {
                self.leave = true;
                self.stop_reason
                    .get_or_insert_with(|| "quit from the screen".into());
                self.stop(fx);
            }
            Action::Cap(k, target) => fx.push(Effect::Note(self.caps.key(k, target))),
            Action::ToggleGovernor => fx.push(Effect::Note(self.caps.toggle_governor())),
            Action::Export => fx.push(Effect::Export),
            Action::TogglePlay | Action::Seek(_) | Action::Speed(_) | Action::Restart => {
                fx.push(Effect::Playback(a));
            }
        }
        self.dash.info.cap_mode = self.caps.mode();
        self.dash.cap_note = self.caps.note();
        self.dash.cap_limits = self.caps.limit_rows();
        fx.push(Effect::Draw);
    }

    /// --duration, the SIGKILL after the grace, a forwarded SIGINT, and the end once the
    /// command's output has drained.
    fn timers(&mut self, now: f64, fx: &mut Vec<Effect>) {
        if let Some(h) = &self.hold
            && h.open
            && !h.rows.is_empty()
            && now >= h.since + GRID_HOLD_S
        {
            fx.push(Effect::Info(format!(
                "grid: no answer from the provider in {GRID_HOLD_S:.0} s: the held rows are \
                 written with what is known, the table's value (labelled table)"
            )));
            self.release(fx);
        }
        if let Some(d) = self.cfg.duration_s
            && now >= d
            && !self.stopping
            && self.kill_at.is_none()
        {
            if self.running() {
                self.stop_reason = Some("--duration reached: the command was sent SIGTERM".into());
                fx.push(Effect::SignalChild(Signal::SIGTERM));
                self.kill_at = Some(now + KILL_GRACE_S);
            } else {
                self.stop_reason
                    .get_or_insert_with(|| "--duration reached".into());
                self.stop(fx);
            }
        }
        if let Some(k) = self.kill_at
            && now >= k
            && self.running()
        {
            self.warn(
                "the command ignored SIGTERM for 5 s: sending SIGKILL".into(),
                fx,
            );
            fx.push(Effect::SignalChild(Signal::SIGKILL));
            self.kill_at = None;
        }
        if let Some(t) = self.sigint_forward_at
            && now >= t
            && self.running()
        {
            fx.push(Effect::SignalChild(Signal::SIGINT));
            self.sigint_forward_at = None;
        }
        if let Some((_, t)) = self.child_exit
            && !self.stopping
            && (self.outputs_open == 0 || now >= t + OUTPUT_DRAIN_S)
        {
            self.stop(fx);
        }
    }

    /// The run's end: the caps put back (unless --no-restore), the figures and what to say.
    pub fn finish(mut self) -> Outcome {
        let mut notes = self.caps.finish();
        notes.extend(self.stop_reason.take());
        if let Some((st, _)) = self.child_exit
            && !st.success()
        {
            notes.push(format!("the command ended: {}", describe_exit(st)));
        }
        if let Some(w) = self.last_warning.take() {
            notes.push(format!("last warning: {w}"));
        }
        notes.extend(self.grid_hint.take());
        // Only if the loop ended without the sampler's end (which writes them).
        let held = self.held_rows();
        if held > 0 {
            notes.push(format!(
                "{held} rows held for the grid provider's first answer were not written"
            ));
        }
        Outcome {
            snapshot: self.dash.meter.snapshot(),
            notes,
            child_exit: self.child_exit.map(|c| c.0),
        }
    }
}

/// "status 0", "killed by signal 15 (SIGTERM)".
pub fn describe_exit(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => match Signal::try_from(s) {
            Ok(name) => format!("killed by signal {s} ({name})"),
            Err(_) => format!("killed by signal {s}"),
        },
        _ => "unknown status".into(),
    }
}

/// Shell convention: the code, or 128 + the signal that ended it.
pub fn exit_code_of(st: ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    //! Whole runs scripted as events with their times: no thread, no sleep, no clock.
    use super::*;
    use crate::engine::{Basis, LedgerConfig, Meter};
    use crate::sample::{CpuReading, Intensity, PowerReading};
    use crate::source::grid::live::GridHandle;
    use crate::ui::model::{Mode, RunInfo};

    fn session(screen: bool, child: bool, duration_s: Option<f64>) -> Session {
        let dash = Dashboard::new(
            RunInfo {
                title: "run `train`".into(),
                zone: "FR".into(),
                cpu_estimate: true,
                gpus: vec![],
                cap_mode: "no GPU".into(),
                samples_path: None,
                mode: Mode::Live,
            },
            Meter::new(Basis::default(), screen),
        );
        let caps = CapSide::without_control("no GPU");
        let cfg = SessionConfig {
            screen,
            child,
            duration_s,
            recording: true,
            hold: false,
        };
        Session::new(dash, Ledger::new(LedgerConfig::default()), caps, cfg)
    }

    fn sample(t: f64) -> Event {
        Event::Sample {
            sample: Box::new(Sample {
                time: chrono::DateTime::UNIX_EPOCH
                    + chrono::TimeDelta::milliseconds((t * 1000.0) as i64),
                elapsed_s: t,
                gpus: vec![],
                cpu: CpuReading::Power(PowerReading::Average(crate::units::Watts(36.0))),
                mem: None,
                net: None,
                intensity: Some(Intensity {
                    g_per_kwh: crate::units::GPerKwh(500.0),
                    source: "fixed".into(),
                }),
                progress: Progress::default(),
                process: None,
                bands: Default::default(),
            }),
            warnings: vec![],
            grid: None,
        }
    }

    /// The command printed `text` on stdout, as the pane receives it.
    fn output(text: &str) -> Event {
        let mut t = crate::source::term::Term::new(true);
        let shown = t.feed(text.as_bytes(), false).shown;
        Event::Child(ChildEvent::Output(
            crate::source::term::Stream::Out,
            Box::new(shown),
        ))
    }

    fn exited(code: i32) -> Event {
        Event::Child(ChildEvent::Exited(ExitStatus::from_raw(code << 8)))
    }

    fn records(fx: &[Effect]) -> usize {
        fx.iter().filter(|f| matches!(f, Effect::Record(_))).count()
    }

    #[test]
    fn a_run_records_each_tick_and_ends_when_the_command_and_its_output_are_done() {
        let mut s = session(false, true, None);
        assert_eq!(records(&s.handle(0.0, sample(0.0))), 1);
        let p = Progress {
            accuracy: Some(42.0),
            ..Default::default()
        };
        s.handle(0.5, Event::Child(ChildEvent::Progress(p)));
        // The next row carries the command's progress.
        let fx = s.handle(1.0, sample(1.0));
        let Some(Effect::Record(t)) = fx.first() else {
            panic!("{fx:?}")
        };
        assert_eq!(t.progress.accuracy, Some(42.0));
        assert!(fx.contains(&Effect::Ticked));
        assert!(s.running());
        assert!(s.handle(1.2, exited(3)).is_empty());
        assert!(!s.running());
        // Its output still open: the run waits for it, at most OUTPUT_DRAIN_S.
        assert_eq!(s.next_deadline(), Some(1.2 + OUTPUT_DRAIN_S));
        s.handle(1.3, Event::Child(ChildEvent::OutputClosed));
        let fx = s.handle(1.4, Event::Child(ChildEvent::OutputClosed));
        assert_eq!(fx, [Effect::StopSampler]);
        assert_eq!(records(&s.handle(1.4, sample(1.4))), 1);
        assert_eq!(s.handle(1.4, Event::SamplerDone), [Effect::Quit]);
        let o = s.finish();
        assert_eq!(o.child_exit.map(exit_code_of), Some(3));
        assert!(
            o.notes.iter().any(|n| n == "the command ended: status 3"),
            "{:?}",
            o.notes
        );
        // 36 W for 1.4 s at 500 g/kWh.
        assert!((o.snapshot.energy_kwh.0 - 36.0 * 1.4 / 3.6e6).abs() < 1e-15);
        assert!((o.snapshot.co2e_g.0 - o.snapshot.energy_kwh.0 * 500.0).abs() < 1e-12);
        assert_eq!(o.snapshot.progress.accuracy, Some(42.0));
    }

    #[test]
    fn signals_reach_the_command_and_a_lone_sigint_is_forwarded_late() {
        let mut s = session(false, true, None);
        // SIGTERM and SIGHUP go on at once.
        assert_eq!(
            s.handle(1.0, Event::Signal(signal_hook::consts::SIGTERM)),
            [Effect::SignalChild(Signal::SIGTERM)]
        );
        // A SIGINT: the terminal's Ctrl-C reached the group; carbontop's own is passed on
        // only if the command is still there SIGINT_FORWARD_AFTER_S later.
        let mut s = session(false, true, None);
        assert!(s.handle(1.0, Event::Signal(SIGINT)).is_empty());
        assert_eq!(s.next_deadline(), Some(1.0 + SIGINT_FORWARD_AFTER_S));
        assert_eq!(
            s.handle(3.0, Event::Timer),
            [Effect::SignalChild(Signal::SIGINT)]
        );
        // Without a command a signal stops measuring.
        let mut s = session(false, false, None);
        assert_eq!(s.handle(1.0, Event::Signal(SIGINT)), [Effect::StopSampler]);
        assert_eq!(s.handle(1.0, Event::SamplerDone), [Effect::Quit]);
        assert!(s.finish().notes.contains(&"stopped by signal 2".to_owned()));
    }

    #[test]
    fn the_screen_stays_after_the_run_until_q_and_q_asks_the_command_to_stop_first() {
        let mut s = session(true, true, None);
        s.handle(0.0, sample(0.0));
        let fx = s.handle(0.5, output("epoch 1\n"));
        assert_eq!(fx, [Effect::DrawSoon]);
        assert_eq!(
            s.dash.output.back().map(|l| l.text.as_str()),
            Some("epoch 1")
        );
        // q while the command runs: SIGTERM, SIGKILL 5 s later if it lingers.
        let fx = s.handle(1.0, Event::Action(Action::Quit));
        assert_eq!(fx, [Effect::SignalChild(Signal::SIGTERM), Effect::Draw]);
        assert_eq!(s.next_deadline(), Some(1.0 + KILL_GRACE_S));
        s.handle(1.5, exited(0));
        s.handle(1.5, Event::Child(ChildEvent::OutputClosed));
        s.handle(1.5, Event::Child(ChildEvent::OutputClosed));
        // q left for good: the end of sampling quits.
        assert_eq!(s.handle(1.6, Event::SamplerDone), [Effect::Quit]);

        // The run ends by itself: the screen holds the figures until q.
        let mut s = session(true, true, None);
        s.handle(0.0, sample(0.0));
        s.handle(1.0, exited(0));
        s.handle(1.0, Event::Child(ChildEvent::OutputClosed));
        s.handle(1.0, Event::Child(ChildEvent::OutputClosed));
        assert_eq!(s.handle(1.1, Event::SamplerDone), [Effect::Draw]);
        let ended = s.dash.ended.clone().unwrap();
        assert!(ended.starts_with("the command exited (status 0) · samples.csv complete"));
        assert_eq!(s.handle(9.0, Event::Action(Action::Quit)), [Effect::Quit]);
    }

    #[test]
    fn a_source_warning_is_said_once_and_kept_for_the_summary() {
        let mut s = session(false, false, None);
        let Event::Sample { sample, .. } = sample(0.0) else {
            unreachable!()
        };
        let fx = s.handle(
            0.0,
            Event::Sample {
                sample,
                warnings: vec!["GPU 1 is lost".into()],
                grid: None,
            },
        );
        assert_eq!(fx[0], Effect::Warn("GPU 1 is lost".into()));
        assert!(
            s.finish()
                .notes
                .contains(&"last warning: GPU 1 is lost".to_owned())
        );
    }

    #[test]
    fn a_recovery_is_said_but_is_not_the_last_warning() {
        let mut s = session(false, false, None);
        let grid = |recoveries: u64, failure: Option<&str>| GridView {
            label: "uk".into(),
            failure: failure.map(str::to_owned),
            recoveries,
            recovered: (recoveries > 0)
                .then(|| "grid: uk answering again (after: HTTP 500)".into()),
            ..GridView::default()
        };
        let fault = "grid: uk failed: HTTP 500; holding the last value (stale), retrying";
        for (t, warnings, view) in [
            (0.0, vec![fault.to_owned()], grid(0, Some("HTTP 500"))),
            (1.0, vec![], grid(1, None)),
            (2.0, vec![], grid(1, None)),
        ] {
            let Event::Sample { sample, .. } = sample(t) else {
                unreachable!()
            };
            let fx = s.handle(
                t,
                Event::Sample {
                    sample,
                    warnings,
                    grid: Some(view),
                },
            );
            let said: Vec<&Effect> = fx
                .iter()
                .filter(|e| matches!(e, Effect::Note(m) if m.contains("answering again")))
                .collect();
            assert_eq!(said.len(), usize::from(t == 1.0), "at {t}: {fx:?}");
        }
        let notes = s.finish().notes;
        assert!(
            notes.contains(&format!("last warning: {fault}")),
            "{notes:?}"
        );
        assert!(
            !notes
                .iter()
                .any(|n| n.contains("last warning: grid: uk answering again")),
            "{notes:?}"
        );
    }

    /// The grid's test clock: the run starts at 11:59:45 UTC, 15 s before the provider's
    /// half-hour slots change (200 g/kWh before noon, 300 after).
    fn at(t: f64) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2024, 3, 6, 11, 59, 45).unwrap()
            + chrono::TimeDelta::milliseconds((t * 1000.0).round() as i64)
    }

    /// A tick at `t` with the live provider's figure (`None`: its first answer is pending).
    fn live_sample(t: f64, grid: &GridHandle) -> Event {
        let Event::Sample { mut sample, .. } = sample(t) else {
            unreachable!()
        };
        sample.time = at(t);
        sample.intensity = grid.answered().then(|| grid.intensity(at(t)));
        Event::Sample {
            sample,
            warnings: vec![],
            grid: None,
        }
    }

    /// A session priced by a GB provider that has not answered yet (the table: 237.6 g/kWh).
    fn live_session() -> (Session, GridHandle) {
        use crate::source::grid::live::{Fallback, LiveState};
        let grid = GridHandle::new(LiveState::new(
            crate::sample::SourceKind::GbCarbonIntensity,
            Fallback {
                g_per_kwh: 237.6,
                label: String::new(),
            },
        ));
        let mut s = session(false, false, None);
        let h = grid.clone();
        s.price_with(Box::new(move |t| h.intensity(t)));
        (s, grid)
    }

    /// The provider's answer: the slot before noon at 200, the one after at 300.
    fn answer(grid: &GridHandle, now: f64) {
        use crate::source::grid::series::{Kind, Point};
        let slot = |from: DateTime<Utc>, g| Point {
            from,
            to: from + chrono::TimeDelta::minutes(30),
            g_per_kwh: g,
            kind: Kind::Actual,
        };
        let noon = at(15.0);
        grid.on_answer(
            at(now),
            crate::source::grid::Answer {
                points: vec![
                    slot(noon - chrono::TimeDelta::minutes(30), 200.0),
                    slot(noon, 300.0),
                ],
                ..Default::default()
            },
        );
    }

    fn ticks(fx: &[Effect]) -> Vec<Tick> {
        fx.iter()
            .filter_map(|f| match f {
                Effect::Record(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }

    /// Rows every 100 ms with none missing: each row's energy is the one before's plus
    /// 36 W × 0.1 s, and its elapsed time 0.1 s on.
    fn assert_consecutive(rows: &[Tick]) {
        let step = 36.0 * 0.1 / 3.6e6;
        for (k, t) in rows.iter().enumerate() {
            assert!(
                (t.elapsed_s - k as f64 * 0.1).abs() < 1e-9,
                "row {k}: {t:?}"
            );
            let want = step * k as f64;
            assert!(
                (t.energy_kwh - want).abs() <= 1e-12 * want.max(1e-9),
                "row {k}"
            );
        }
    }

    /// samples.csv of `rows` and the same file written again from its replay give the same
    /// rows (embodied carbon aside: this test's ledger charges none, a replay its table's TE).
    fn assert_replay_gives_the_same_rows(rows: &[Tick]) {
        let (a, b) = replayed(rows);
        assert_eq!(a.lines().count(), rows.len() + 1);
        let header: Vec<&str> = a.lines().next().unwrap().split(',').collect();
        let embodied = header.iter().position(|h| *h == "embodied_co2e_g").unwrap();
        for (k, (x, y)) in a.lines().zip(b.lines()).enumerate() {
            let cells = |l: &str| -> Vec<String> {
                let mut c: Vec<String> = l.split(',').map(str::to_owned).collect();
                c.remove(embodied);
                c
            };
            assert_eq!(cells(x), cells(y), "line {k}");
        }
        assert_eq!(a.lines().count(), b.lines().count());
    }

    fn replayed(rows: &[Tick]) -> (String, String) {
        use crate::report::samples::SamplesWriter;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        let mut w = SamplesWriter::create(&a, &[], &[]).unwrap();
        for t in rows {
            w.write(t).unwrap();
        }
        drop(w);
        let mut rec = crate::report::account::Recorded::open(&a, None).unwrap();
        let mut w = SamplesWriter::create(&b, &[], &[]).unwrap();
        while let Some(t) = rec.step() {
            w.write(&t).unwrap();
        }
        drop(w);
        (
            std::fs::read_to_string(a).unwrap(),
            std::fs::read_to_string(b).unwrap(),
        )
    }

    #[test]
    fn a_slow_first_grid_answer_delays_rows_and_prices_each_at_its_own_time() {
        let (mut s, grid) = live_session();
        // 300 ticks at 100 ms while the answer is pending: nothing written, every tick shown
        // with its energy and its carbon marked pending.
        for k in 0..300 {
            let t = f64::from(k) * 0.1;
            let fx = s.handle(t, live_sample(t, &grid));
            assert_eq!(records(&fx), 0, "tick {k}: {fx:?}");
            assert!(fx.contains(&Effect::Ticked));
            let shown = s.dash.last().unwrap();
            assert_eq!(
                shown.intensity_source.as_ref().unwrap().to_string(),
                PENDING
            );
            assert!((shown.elapsed_s - t).abs() < 1e-9);
        }
        assert_eq!(s.held_rows(), 300);
        assert!(s.dash.meter.snapshot().energy_kwh.0 > 0.0);
        assert_eq!(s.next_deadline(), Some(GRID_HOLD_S));
        // The answer, then the next tick: 301 consecutive rows, the first 150 (before noon)
        // at 200, the rest at 300, all labelled uk.
        answer(&grid, 30.0);
        let fx = s.handle(30.0, live_sample(30.0, &grid));
        let rows = ticks(&fx);
        assert_eq!(rows.len(), 301);
        assert_consecutive(&rows);
        for (k, t) in rows.iter().enumerate() {
            let want = if k < 150 { 200.0 } else { 300.0 };
            assert_eq!(t.intensity_g_per_kwh, Some(want), "row {k}");
            assert_eq!(t.intensity_source.as_ref().unwrap().to_string(), "uk");
        }
        assert_eq!((s.held_rows(), s.next_deadline()), (0, None));
        // C = Σ E_tick × I(t_tick), and the screen's figures are the written rows'.
        let step = 36.0 * 0.1 / 3.6e6;
        // Row 0 has no energy yet: 149 intervals before noon, 151 from it.
        let want = step * (149.0 * 200.0 + 151.0 * 300.0);
        let last = rows.last().unwrap();
        assert!(
            (last.co2e_g - want).abs() < 1e-12,
            "{} vs {want}",
            last.co2e_g
        );
        let snap = s.dash.meter.snapshot();
        assert_eq!(snap.co2e_g.0, last.co2e_g);
        assert!(s.dash.notices.iter().all(|n| !n.contains("waiting for")));
        // The next ticks are written at once.
        assert_eq!(records(&s.handle(30.1, live_sample(30.1, &grid))), 1);
        // A replay of the written file gives the same file.
        assert_replay_gives_the_same_rows(&rows);
    }

    #[test]
    fn past_the_grid_deadline_held_rows_are_written_at_the_table_value_labelled() {
        let (mut s, grid) = live_session();
        for k in 0..600 {
            let t = f64::from(k) * 0.1;
            assert_eq!(records(&s.handle(t, live_sample(t, &grid))), 0);
        }
        assert_eq!(s.next_deadline(), Some(GRID_HOLD_S));
        let fx = s.handle(GRID_HOLD_S, Event::Timer);
        assert!(
            fx.iter()
                .any(|f| matches!(f, Effect::Info(m) if m.contains("no answer"))),
            "{fx:?}"
        );
        let rows = ticks(&fx);
        assert_eq!(rows.len(), 600);
        assert_consecutive(&rows);
        for t in &rows {
            assert_eq!(t.intensity_g_per_kwh, Some(237.6));
            assert_eq!(t.intensity_source.as_ref().unwrap().to_string(), "table");
        }
        // The hold is over: a tick still without an answer is written at once, at the table's
        // value; once the provider answers, at its.
        let next = ticks(&s.handle(60.0, live_sample(60.0, &grid)));
        assert_eq!(
            next[0].intensity_source.as_ref().unwrap().to_string(),
            "table"
        );
        answer(&grid, 60.05);
        let next = ticks(&s.handle(60.1, live_sample(60.1, &grid)));
        assert_eq!(next[0].intensity_g_per_kwh, Some(300.0));
        assert_replay_gives_the_same_rows(&rows);
    }

    #[test]
    fn a_grid_fault_before_the_first_answer_ends_the_hold() {
        let (mut s, grid) = live_session();
        for k in 0..10 {
            let t = f64::from(k) * 0.1;
            assert_eq!(records(&s.handle(t, live_sample(t, &grid))), 0);
        }
        // The provider fails: the held rows and this one are written at once, at the table's
        // value, labelled; the next ones too, until it answers.
        let Event::Sample { sample, .. } = live_sample(1.0, &grid) else {
            unreachable!()
        };
        let view = GridView {
            label: "uk".into(),
            failure: Some("HTTP 500".into()),
            version: 1,
            ..GridView::default()
        };
        let fx = s.handle(
            1.0,
            Event::Sample {
                sample,
                warnings: vec![],
                grid: Some(view),
            },
        );
        let rows = ticks(&fx);
        assert_eq!(rows.len(), 11);
        assert_consecutive(&rows);
        assert!(rows.iter().all(|t| t.intensity_g_per_kwh == Some(237.6)
            && t.intensity_source.as_ref().unwrap().to_string() == "table"));
        assert_eq!(records(&s.handle(1.1, live_sample(1.1, &grid))), 1);
    }

    #[test]
    fn the_grid_hold_is_bounded_and_ends_with_the_run() {
        // At the cap the rows are written, never dropped.
        let (mut s, grid) = live_session();
        let mut written = 0;
        for k in 0..GRID_HOLD_ROWS {
            let t = k as f64 * 0.01;
            written += records(&s.handle(t, live_sample(t, &grid)));
        }
        assert_eq!((written, s.held_rows()), (GRID_HOLD_ROWS, 0));
        // The run ends before the answer: the held rows are written before the end.
        let (mut s, grid) = live_session();
        for k in 0..5 {
            let t = f64::from(k) * 0.1;
            s.handle(t, live_sample(t, &grid));
        }
        let fx = s.handle(0.5, Event::SamplerDone);
        assert_eq!(records(&fx), 5);
        assert_eq!(fx.last(), Some(&Effect::Quit));
        assert!(s.finish().snapshot.energy_kwh.0 > 0.0);
    }

    /// A scenario file (tests/scenarios/*.toml, after trippy's state scenarios): the session's
    /// set-up, then steps — an event at a time, the effects it must give and the deadline after
    /// it — and what the run must end with.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Scenario {
        #[serde(default)]
        session: Setup,
        step: Vec<Step>,
        end: End,
    }

    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Setup {
        #[serde(default)]
        screen: bool,
        #[serde(default)]
        child: bool,
        duration_s: Option<f64>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Step {
        at: f64,
        event: String,
        power_w: Option<f64>,
        code: Option<i32>,
        signal: Option<i32>,
        text: Option<String>,
        key: Option<String>,
        expect: Vec<String>,
        deadline: Option<f64>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct End {
        exit_code: i32,
        #[serde(default)]
        notes: Vec<String>,
        energy_kwh: Option<f64>,
    }

    fn event(st: &Step) -> Event {
        match st.event.as_str() {
            "sample" => {
                let Event::Sample { mut sample, .. } = sample(st.at) else {
                    unreachable!()
                };
                sample.cpu = CpuReading::Power(PowerReading::Average(crate::units::Watts(
                    st.power_w.unwrap(),
                )));
                Event::Sample {
                    sample,
                    warnings: vec![],
                    grid: None,
                }
            }
            "timer" => Event::Timer,
            "sampler_done" => Event::SamplerDone,
            "child_exited" => exited(st.code.unwrap()),
            "child_killed" => {
                Event::Child(ChildEvent::Exited(ExitStatus::from_raw(st.signal.unwrap())))
            }
            "output_closed" => Event::Child(ChildEvent::OutputClosed),
            "child_line" => output(st.text.as_deref().unwrap()),
            "signal" => Event::Signal(st.signal.unwrap()),
            "key" => Event::Action(match st.key.as_deref().unwrap() {
                "quit" => Action::Quit,
                "interrupt" => Action::Interrupt,
                "export" => Action::Export,
                k => panic!("unknown key {k}"),
            }),
            e => panic!("unknown event {e}"),
        }
    }

    /// An effect as a scenario names it.
    fn label(e: &Effect) -> String {
        match e {
            Effect::Record(_) => "record".into(),
            Effect::Warn(m) => format!("warn {m}"),
            Effect::Note(m) => format!("note {m}"),
            Effect::Info(m) => format!("info {m}"),
            Effect::Print(m) => format!("print {m}"),
            Effect::Playback(a) => format!("playback {a:?}"),
            Effect::Ticked => "ticked".into(),
            Effect::Draw => "draw".into(),
            Effect::DrawSoon => "draw_soon".into(),
            Effect::Export => "export".into(),
            Effect::SignalChild(s) => format!("signal_child {s}"),
            Effect::StopSampler => "stop_sampler".into(),
            Effect::Quit => "quit".into(),
        }
    }

    #[test]
    fn scenario_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "{files:?}");
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let sc: Scenario = toml::from_str(&std::fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let setup = &sc.session;
            let mut s = session(setup.screen, setup.child, setup.duration_s);
            for (i, st) in sc.step.iter().enumerate() {
                let got: Vec<String> = s.handle(st.at, event(st)).iter().map(label).collect();
                assert_eq!(
                    got,
                    st.expect,
                    "{name}: step {} ({} at {})",
                    i + 1,
                    st.event,
                    st.at
                );
                if let Some(d) = st.deadline {
                    assert_eq!(
                        s.next_deadline(),
                        Some(d),
                        "{name}: deadline after step {}",
                        i + 1
                    );
                }
            }
            let had_child = setup.child;
            let o = s.finish();
            let code = match o.child_exit {
                Some(st) => exit_code_of(st),
                None if had_child => 1,
                None => 0,
            };
            assert_eq!(code, sc.end.exit_code, "{name}: exit code");
            for n in &sc.end.notes {
                assert!(
                    o.notes.contains(n),
                    "{name}: no note {n:?} in {:?}",
                    o.notes
                );
            }
            if let Some(kwh) = sc.end.energy_kwh {
                assert!(
                    (o.snapshot.energy_kwh.0 - kwh).abs() <= 1e-12 * kwh.max(1e-9),
                    "{name}: {} kWh, want {kwh}",
                    o.snapshot.energy_kwh.0
                );
            }
        }
    }
}
