//! The cap side of a measuring run: the one `CapControl` (or why there is none), the cap keys
//! and the carbon governor, turned into changes, status-line text and summary notes. The
//! control puts the original caps back when it is dropped, so every exit path — the end of the
//! run, `q`, a signal, a panic unwinding — restores them.

use crate::config::Settings;
use crate::control::governor::{Governor, GovernorConfig, Obs, Point, Savings};
use crate::control::oracle::{AgainstOracle, Ahead};
use crate::control::profile::Saved;
use crate::control::{CapControl, CapLog, PowerCap, Target, Who};
use crate::engine::Tick;
use crate::engine::savings::Seen;
use crate::ui::state::CapKey;

/// The governor's setting for the status line: `η=0.5`, or `≤+3.0% time` in time-budget mode.
fn knob(c: &GovernorConfig) -> String {
    match c.max_slowdown {
        Some(x) => format!("≤{:+.1}% time", x * 100.0),
        None => format!("η={}", c.eta),
    }
}

pub struct CapSide {
    control: Option<CapControl>,
    /// Why caps cannot be changed, when there is no control.
    why: String,
    governor: Option<Governor>,
    cfg: GovernorConfig,
    step_w: f64,
    /// Savings of governors switched off earlier in the run.
    past: Savings,
    /// Why the last governor ended without savings to show: "not enough signal", or stopped by
    /// a refused cap (said in the summary, which a --quiet run still prints).
    past_blind: Option<String>,
    /// What the stop put back (and could not), for the summary.
    put_back: CapLog,
    put_back_errs: Vec<String>,
    /// Where the governor's profile for this GPU and workload is kept (reused, then saved).
    profile: Option<(std::path::PathBuf, String, String)>,
    /// A saved profile handed in (`carbontop simulate`), used before any file.
    preloaded: Option<Saved>,
    /// The intensity each interval the governor accounted was priced at (the Ledger's rows'),
    /// and the profile of the last governor switched off: the oracle's trace and curve.
    seen: Seen,
    last_profile: Vec<Point>,
    /// The screen's comparison with the limit, refreshed every [`LIMIT_EVERY_S`]: the oracle on
    /// what the run has seen (at the governor's accounted seconds then), and the governor's
    /// rule beside the oracle over the provider's forecast (at the run's seconds then).
    so_far: Option<(f64, Result<AgainstOracle, String>)>,
    ahead: Option<(f64, Result<Ahead, String>)>,
}

/// How often the screen's comparison with the oracle is made again (seconds of the run): the
/// governor decides at most this often (`BUDGET_DECISION_S`), so a fresher figure would say
/// nothing new.
pub const LIMIT_EVERY_S: f64 = crate::control::governor::BUDGET_DECISION_S;

/// How far ahead of now a forecast is compared (providers forecast 24–72 h).
const AHEAD_MAX: chrono::TimeDelta = chrono::TimeDelta::hours(72);

impl CapSide {
    pub fn new(caps: Result<Box<dyn PowerCap>, String>, s: &Settings) -> Self {
        let (control, why) = match caps {
            Ok(a) => (Some(CapControl::new(a, s.restore_caps)), String::new()),
            Err(why) => (None, why),
        };
        let measure_s = s.governor_profile.as_secs_f64();
        Self {
            control,
            cfg: GovernorConfig {
                eta: s.eta,
                max_slowdown: s.max_slowdown,
                warmup_s: measure_s / 2.0,
                measure_s,
                ..GovernorConfig::default()
            },
            step_w: s.cap_step,
            ..Self::without_control(&why)
        }
    }

    /// The governor reuses the profile at `path` (saved for `gpu` and `workload`) where there
    /// is one, and saves the one it measures there.
    pub fn keep_profiles(&mut self, path: std::path::PathBuf, gpu: &str, workload: &str) {
        self.profile = Some((path, gpu.to_owned(), workload.to_owned()));
    }

    /// The governor starts from `saved` (where its caps are the governor's candidates).
    pub fn preload(&mut self, saved: Saved) {
        self.preloaded = Some(saved);
    }

    /// Caps through `act` for the governor `cfg` alone, put back at the end (`carbontop
    /// simulate`: no config file, no keys).
    pub fn governed(act: Box<dyn PowerCap>, cfg: GovernorConfig) -> Self {
        Self {
            control: Some(CapControl::new(act, true)),
            step_w: cfg.step_w,
            cfg,
            ..Self::without_control("")
        }
    }

    /// The governor, while it runs.
    pub fn governor(&self) -> Option<&Governor> {
        self.governor.as_ref()
    }

    /// No caps to change, for `why` (a session's tests, a machine without GPUs).
    pub fn without_control(why: &str) -> Self {
        Self {
            control: None,
            why: why.to_owned(),
            governor: None,
            cfg: GovernorConfig::default(),
            step_w: 25.0,
            past: Savings::default(),
            past_blind: None,
            put_back: CapLog::default(),
            put_back_errs: Vec::new(),
            profile: None,
            preloaded: None,
            seen: Seen::default(),
            last_profile: Vec::new(),
            so_far: None,
            ahead: None,
        }
    }

    /// Why the keys cannot act, if they cannot.
    fn refused(&self) -> Option<String> {
        match &self.control {
            None => Some(self.why.clone()),
            Some(c) => c.refused().map(ToString::to_string),
        }
    }

    /// Turns the governor on; the message for the status line.
    pub fn start_governor(&mut self) -> Result<String, String> {
        if let Some(r) = self.refused() {
            return Err(format!("governor: {r}"));
        }
        let l = self
            .control
            .as_ref()
            .and_then(CapControl::common_limits)
            .ok_or("governor: the GPUs report no power-cap range")?;
        let mut g = Governor::new(self.cfg, l.min_w, l.max_w);
        let reused = match (&self.preloaded, &self.profile) {
            (Some(p), _) if g.reuse(&p.points, p.by_steps) => {
                Some(format!("the profile saved for {} on {}", p.workload, p.gpu))
            }
            (_, Some((path, ..))) => match Saved::load(path) {
                Ok(Some(p)) if g.reuse(&p.points, p.by_steps) => {
                    Some(format!("the profile saved in {}", path.display()))
                }
                Ok(Some(_)) => Some(format!(
                    "{} holds other caps: profiling again",
                    path.display()
                )),
                Ok(None) => None,
                Err(e) => Some(format!("{e}: profiling again")),
            },
            _ => None,
        };
        let reusing = g.reused();
        self.governor = Some(g);
        if reusing {
            return Ok(format!(
                "governor on ({}): {}",
                knob(&self.cfg),
                reused.unwrap_or_default()
            ));
        }
        Ok(format!(
            "governor on ({}): profiling caps {:.0}–{:.0} W, {:.1} s each{}",
            knob(&self.cfg),
            l.max_w,
            l.min_w,
            self.cfg.warmup_s + self.cfg.measure_s,
            reused.map(|r| format!(" ({r})")).unwrap_or_default()
        ))
    }

    /// The governor has just measured its profile: saved where profiles are kept.
    fn save_profile(&self, g: &Governor) -> Option<String> {
        let (path, gpu, workload) = self.profile.as_ref()?;
        let saved = Saved {
            gpu: gpu.clone(),
            workload: workload.clone(),
            by_steps: g.by_steps(),
            points: g.profile().to_vec(),
        };
        Some(match saved.save(path) {
            Ok(()) => format!("profile saved to {} (reused next time)", path.display()),
            Err(e) => format!("profile not saved: {e}"),
        })
    }

    fn stop_governor(&mut self) {
        self.ahead = None;
        if let Some(g) = self.governor.take() {
            self.past.add(&g.savings);
            self.past_blind = g.blind().map(str::to_owned);
            if !g.profile().is_empty() {
                self.last_profile = g.profile().to_vec();
            }
        }
    }

    /// `g`.
    pub fn toggle_governor(&mut self) -> String {
        if self.governor.is_some() {
            self.stop_governor();
            let errs = self
                .control
                .as_mut()
                .map(CapControl::restore)
                .unwrap_or_default();
            match errs.first() {
                Some(e) => format!("governor off; {e}"),
                None => "governor off: caps back to where they were".into(),
            }
        } else {
            match self.start_governor() {
                Ok(m) | Err(m) => m,
            }
        }
    }

    /// `+`, `-`, `r` (after the screen's confirmation).
    pub fn key(&mut self, k: CapKey, target: Option<usize>) -> String {
        if let Some(r) = self.refused() {
            return r;
        }
        let mut prefix = String::new();
        if self.governor.is_some() {
            self.stop_governor();
            prefix = "governor off (manual caps); ".into();
        }
        let Some(c) = self.control.as_mut() else {
            return self.why.clone();
        };
        let t = target.map_or(Target::All, Target::Gpu);
        let r = match k {
            CapKey::Up => c.step(t, self.step_w, Who::User),
            CapKey::Down => c.step(t, -self.step_w, Who::User),
            CapKey::Default => c.to_default(t, Who::User),
        };
        match r {
            Ok(ch) if ch.is_empty() => format!("{prefix}caps already at that limit"),
            Ok(ch) => format!(
                "{prefix}caps: {}",
                ch.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("{prefix}{e}"),
        }
    }

    /// Lets the governor see this tick; a message when it changed the caps (or had to stop).
    pub fn on_tick(&mut self, t: &Tick, intensity_ahead: Option<f64>) -> Option<String> {
        let g = self.governor.as_mut()?;
        let utils: Vec<f64> = t.gpus.iter().filter_map(|g| g.util_pct).collect();
        let clocks: Vec<f64> = t.gpus.iter().filter_map(|g| g.sm_clock_mhz).collect();
        let obs = Obs {
            elapsed_s: t.elapsed_s,
            gpu_w: t.gpu_power_w,
            steps: t.progress.step.map(|s| s as f64),
            util_pct: (!utils.is_empty()).then(|| utils.iter().sum::<f64>() / utils.len() as f64),
            sm_clock_mhz: (!clocks.is_empty())
                .then(|| clocks.iter().sum::<f64>() / clocks.len() as f64),
            intensity: t.intensity_g_per_kwh,
            intensity_ahead,
        };
        let was_profiling = g.is_profiling();
        let before = g.savings.time_s;
        let cap = g.observe(&obs);
        // The stretch the governor just accounted, at the intensity it was priced at.
        if let Some(i) = t.intensity_g_per_kwh {
            self.seen.push(g.savings.time_s - before, i);
        }
        let saved = if was_profiling && !g.is_profiling() && g.blind().is_none() {
            let g = g.clone();
            self.save_profile(&g)
        } else {
            None
        };
        self.refresh_so_far();
        let Some(cap) = cap else {
            return saved;
        };
        let g = self.governor.as_ref()?;
        let reason = match saved {
            Some(s) => format!("{}; {s}", g.reason),
            None => g.reason.clone(),
        };
        let c = self.control.as_mut()?;
        match c.set(Target::All, cap, Who::Governor) {
            Ok(_) => Some(format!("governor: {reason}")),
            Err(e) => {
                self.stop_governor();
                let msg = format!("governor stopped: {e}");
                // Said again in the summary: a --quiet run shows no notes while it runs.
                self.past_blind = Some(msg.clone());
                Some(msg)
            }
        }
    }

    /// The header's cap mode.
    pub fn mode(&self) -> String {
        let Some(c) = &self.control else {
            return "no GPU".into();
        };
        if let Some(g) = &self.governor {
            return format!("governor {} · {}", knob(&g.config()), short(&g.reason));
        }
        let caps: Vec<f64> = (0..c.count()).filter_map(|i| c.current(i)).collect();
        let all_same = caps.windows(2).all(|w| (w[0] - w[1]).abs() < 0.5);
        let now = match (caps.first(), all_same) {
            (None, _) => "unknown".to_owned(),
            (Some(w), true) => format!("{}× {w:.0} W", caps.len()),
            (Some(_), false) => {
                caps.iter()
                    .map(|w| format!("{w:.0}"))
                    .collect::<Vec<_>>()
                    .join("/")
                    + " W"
            }
        };
        if c.changed() {
            format!("user {now}")
        } else {
            format!("untouched {now}")
        }
    }

    /// The governor's full reason while it runs, and what it has saved so far.
    pub fn note(&self) -> Option<String> {
        let g = self.governor.as_ref()?;
        let s = g.savings;
        if s.uncapped_co2e_g > 0.0 {
            Some(format!(
                "{}; saved {:.1}% of GPU CO2e vs uncapped, {:+.1}% time",
                g.reason,
                s.saved_pct(),
                s.extra_time_pct()
            ))
        } else {
            Some(g.reason.clone())
        }
    }

    /// What the governor accounted in this run (all its stretches) beside the oracle on the
    /// intensity those stretches saw, on its profile; None where it accounted nothing (no
    /// governor, or its profile never finished), else the comparison or why there is none.
    pub fn against_oracle(&self) -> Option<Result<AgainstOracle, String>> {
        let mut s = self.past;
        let mut profile = self.last_profile.as_slice();
        if let Some(g) = &self.governor {
            s.add(&g.savings);
            if !g.profile().is_empty() {
                profile = g.profile();
            }
        }
        if s.uncapped_time_s <= 0.0 {
            return None;
        }
        if profile.is_empty() {
            return Some(Err("no profile to run it on".into()));
        }
        Some(crate::control::oracle::against_oracle(
            profile, &self.seen, &s,
        ))
    }

    /// The oracle on what the run has seen, again once the governor has accounted another
    /// [`LIMIT_EVERY_S`] (the first after that much: over a few seconds it would say nothing).
    fn refresh_so_far(&mut self) {
        let accounted = self.past.time_s + self.governor.as_ref().map_or(0.0, |g| g.savings.time_s);
        let last = self.so_far.as_ref().map_or(0.0, |s| s.0);
        if accounted - last < LIMIT_EVERY_S {
            return;
        }
        if let Some(a) = self.against_oracle() {
            self.so_far = Some((accounted, a));
        }
    }

    /// The governor's rule beside the oracle over the provider's forecast from this tick
    /// (`forecast`: its slots), again every [`LIMIT_EVERY_S`] of the run; nothing without a
    /// running governor with a profile, or without a forecast covering now.
    pub fn look_ahead(&mut self, t: &Tick, forecast: &[crate::engine::forecast::Slot]) {
        let Some(g) = self
            .governor
            .as_ref()
            .filter(|g| !g.is_profiling() && g.blind().is_none())
        else {
            self.ahead = None;
            return;
        };
        if self
            .ahead
            .as_ref()
            .is_some_and(|a| t.elapsed_s - a.0 < LIMIT_EVERY_S)
        {
            return;
        }
        let slots = crate::engine::forecast::ahead(forecast, t.timestamp, AHEAD_MAX);
        self.ahead = (!slots.is_empty()).then(|| {
            (
                t.elapsed_s,
                crate::control::oracle::ahead(g.profile(), &g.config(), &slots),
            )
        });
    }

    /// The screen's rows on the governor against its limit: (key, text).
    pub fn limit_rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = Vec::new();
        if self.governor.is_none() && self.past.uncapped_time_s <= 0.0 {
            return rows;
        }
        // Short enough for the totals panel at 80 columns: the governor's carbon change, then
        // the oracle's for the same work within the same slowdown (README: "on the screen").
        if let Some((_, a)) = &self.so_far {
            rows.push((
                "vs best",
                match a {
                    Ok(a) => format!(
                        "so far {:+.1}% of {:+.1}%",
                        a.d_carbon * 100.0,
                        a.oracle_d_carbon * 100.0
                    ),
                    Err(why) => format!("none yet: {why}"),
                },
            ));
        }
        if let Some((_, a)) = &self.ahead {
            rows.push((
                "ahead",
                match a {
                    Ok(a) => format!(
                        "{:+.1}% of {:+.1}% · {:.1} h",
                        a.d_carbon * 100.0,
                        a.oracle_d_carbon * 100.0,
                        a.horizon_s / 3600.0
                    ),
                    Err(why) => format!("none: {why}"),
                },
            ));
        }
        rows
    }

    /// Changes since the last row, for its `cap_change` cell.
    pub fn take_log(&mut self) -> CapLog {
        self.control
            .as_mut()
            .map(CapControl::take_log)
            .unwrap_or_default()
    }

    /// The run is stopping (its command ended, `--duration`, `q`, a signal): the governor stops
    /// and the caps go back now (unless --no-restore), so the closing row's `cap_change`
    /// records the restore (issue 20: it was made after the last row and recorded nowhere).
    pub fn restore_at_stop(&mut self) {
        self.stop_governor();
        if let Some(c) = self.control.as_mut()
            && c.restores_on_exit()
        {
            let (log, errs) = c.restore_logged();
            self.put_back.0.extend(log.0);
            self.put_back_errs.extend(errs);
        }
    }

    /// At the end: put the caps back (unless --no-restore) and say what the governor saved.
    pub fn finish(&mut self) -> Vec<String> {
        self.stop_governor();
        let mut notes = Vec::new();
        let s = self.past;
        if let Some(why) = &self.past_blind {
            notes.push(match why.strip_prefix("governor stopped: ") {
                Some(_) => why.clone(),
                None => format!("governor ({}): {why}", knob(&self.cfg)),
            });
        }
        if s.uncapped_time_s > 0.0 {
            notes.push(format!(
                "governor ({}): {} CO2e of GPU energy against {} uncapped for the same work \
                 ({:.1}% less), {:+.1}% time (estimated from its profile)",
                knob(&self.cfg),
                crate::report::summary::fmt_co2e_g(s.co2e_g),
                crate::report::summary::fmt_co2e_g(s.uncapped_co2e_g),
                s.saved_pct(),
                s.extra_time_pct()
            ));
            notes.extend(self.against_oracle().map(|a| oracle_note(&a)));
        }
        if let Some(c) = self.control.as_mut() {
            // A change made on the last tick had no row left to go on: said here, apart from
            // the restore, so "caps put back" only ever lists what the end put back.
            let unrecorded: Vec<_> = c
                .take_log()
                .0
                .into_iter()
                .filter(|ch| ch.who != crate::control::Who::Restore)
                .collect();
            if !unrecorded.is_empty() {
                notes.push(format!(
                    "changed after the last row: {}",
                    CapLog(unrecorded)
                ));
            }
            if c.restores_on_exit() {
                let (log, errs) = c.restore_logged();
                c.take_log();
                self.put_back.0.extend(log.0);
                if !self.put_back.is_empty() {
                    notes.push(format!("caps put back: {}", self.put_back));
                }
                notes.append(&mut self.put_back_errs);
                notes.extend(errs);
            } else if c.changed() {
                notes.push("caps left as they are (--no-restore)".into());
            }
        }
        notes
    }
}

/// The summary's line on the oracle: what it would have saved on the intensity this run saw.
fn oracle_note(a: &Result<AgainstOracle, String>) -> String {
    match a {
        Ok(a) => format!(
            "governor {:+.1}% carbon at {:+.1}% time against uncapped; the oracle on the intensity \
             this run saw, within {:+.1}%: {:+.1}%{}",
            a.d_carbon * 100.0,
            a.d_time * 100.0,
            a.d_time.max(0.0) * 100.0,
            a.oracle_d_carbon * 100.0,
            a.share()
                .map(|f| format!(" (the governor got {:.0}% of it)", f * 100.0))
                .unwrap_or_default()
        ),
        Err(why) => format!("no oracle figure for the governor: {why}"),
    }
}

/// The governor's reason up to its first `;`, for the header.
fn short(r: &str) -> &str {
    r.split(';').next().unwrap_or(r)
}

#[cfg(test)]
mod tests {
    //! The governor on the simulated GPUs, decided by scripted time: the ticks, the simulated
    //! job and the Ledger all read the same scripted seconds, so the choice does not depend on
    //! how busy the machine is (tests/caps.rs keeps what only a real process shows).
    use super::*;
    use crate::app::session::{Effect, Event, Session, SessionConfig};
    use crate::cli::MeasureOpts;
    use crate::control::sim::{ScriptedClock, SimGpus};
    use crate::engine::forecast::Slot;
    use crate::engine::{Ledger, LedgerConfig, Meter};
    use crate::sample::{CpuReading, Intensity, Sample};
    use crate::source::GpuSource;
    use crate::ui::model::{Dashboard, Mode, RunInfo};
    use chrono::TimeZone;
    use std::path::Path;
    use std::time::Duration;

    /// Settings as `--simulate-gpus 2 --governor carbon --eta 1 --governor-profile 0.2s`
    /// (an empty config file, so a developer's own config is never read).
    fn governed_settings(dir: &Path) -> Settings {
        let cfg = dir.join("empty.toml");
        std::fs::write(&cfg, "").unwrap();
        let opts = MeasureOpts {
            simulate_gpus: Some(2),
            governor: Some("carbon".into()),
            eta: Some(1.0),
            governor_profile: Some(Duration::from_millis(200)),
            config: Some(cfg),
            ..Default::default()
        };
        crate::config::resolve(&opts).unwrap()
    }

    /// Scripted seconds in which the governor profiles 9 caps (each until the run's whole step
    /// counts time it to ±2%: ~20 s at 300 W, ~45 s at 100 W) and chooses.
    const GOVERNED_S: f64 = 300.0;

    fn caps_in(state: &Path) -> Vec<f64> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
        serde_json::from_value(v["caps_w"].clone()).unwrap()
    }

    /// Two simulated A40s governed as the binary does it — through the Session, one sample
    /// every 100 ms of scripted time for `secs`: the session closes a Ledger row, puts the
    /// changes made during its interval on it, then lets the governor see it. The rows
    /// recorded, and the session (whose cap side still holds the caps).
    fn governed_run(state: &Path, secs: f64) -> (Session, Vec<Tick>) {
        governed(state, secs, false)
    }

    /// [`governed_run`], and with `stop` a SIGTERM after `secs`, then the closing sample.
    fn governed(state: &Path, secs: f64, stop: bool) -> (Session, Vec<Tick>) {
        governed_with(state, secs, stop, None, &[])
    }

    /// [`governed`], with the time budget `max_slowdown` instead of η where given, and a
    /// provider's `forecast` where it is not empty.
    fn governed_with(
        state: &Path,
        secs: f64,
        stop: bool,
        max_slowdown: Option<f64>,
        forecast: &[Slot],
    ) -> (Session, Vec<Tick>) {
        let dir = state.parent().unwrap();
        let mut s = governed_settings(dir);
        s.max_slowdown = max_slowdown;
        let clock = ScriptedClock::default();
        let sim =
            SimGpus::with_clock(2, Some(state.to_path_buf()), Box::new(clock.clone())).unwrap();
        let mut caps = CapSide::new(Ok(Box::new(sim.actuator())), &s);
        caps.start_governor().unwrap();
        let mut src = sim.source();
        let dash = Dashboard::new(
            RunInfo {
                title: "record".into(),
                zone: "fixed".into(),
                cpu_estimate: false,
                gpus: src.models(),
                cap_mode: caps.mode(),
                samples_path: None,
                mode: Mode::Live,
            },
            Meter::new(Default::default(), false),
        );
        let cfg = SessionConfig {
            screen: false,
            child: false,
            duration_s: None,
            recording: true,
            hold: false,
        };
        let mut session = Session::new(dash, Ledger::new(LedgerConfig::default()), caps, cfg);
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        if !forecast.is_empty() {
            session.dash.meter.grid = Some(crate::engine::meter::GridInfo::new(
                "test".into(),
                None,
                None,
                forecast.to_vec(),
                t0,
                chrono::TimeDelta::hours(1),
            ));
        }
        let mut rows = Vec::new();
        let last = (secs * 10.0).round() as u32;
        for k in 0..=last + u32::from(stop) {
            let t = f64::from(k) / 10.0;
            if stop && k == last + 1 {
                let fx = session.handle(t - 0.05, Event::Signal(signal_hook::consts::SIGTERM));
                assert!(fx.contains(&Effect::StopSampler), "{fx:?}");
            }
            clock.set(t);
            let sample = Sample {
                time: t0 + chrono::TimeDelta::milliseconds(i64::from(k) * 100),
                elapsed_s: t,
                gpus: src.read(),
                cpu: CpuReading::Unknown,
                mem: None,
                net: None,
                intensity: Some(Intensity {
                    g_per_kwh: crate::units::GPerKwh(400.0),
                    source: crate::sample::SourceKind::Fixed.into(),
                }),
                progress: src.progress().unwrap_or_default(),
                process: None,
                bands: Default::default(),
            };
            let ev = Event::Sample {
                sample: Box::new(sample),
                warnings: vec![],
                grid: None,
            };
            for fx in session.handle(t, ev) {
                if let Effect::Record(tick) = fx {
                    rows.push(*tick);
                }
            }
        }
        (session, rows)
    }

    #[test]
    fn the_time_budget_governor_meets_its_budget_through_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        // The profile, then 40 minutes of decisions every 5 minutes at 400 g/kWh.
        let (session, rows) = governed_with(&state, GOVERNED_S + 2400.0, false, Some(0.05), &[]);
        let g = session.caps.governor.as_ref().unwrap();
        let slow = g.slowdown().unwrap();
        assert!((0.0..=0.06).contains(&slow), "slowdown so far {slow}");
        assert!(g.reason.contains("time budget +5.0%"), "{}", g.reason);
        // Below the maximum after the profile (Zeus's CIFAR-100 curve: 200 W costs +3.2% time
        // for 14% less energy per step), and the chosen caps logged.
        let after: Vec<f64> = rows
            .iter()
            .filter(|r| r.elapsed_s > GOVERNED_S + 300.0)
            .map(|r| r.gpus[0].cap_w.unwrap())
            .collect();
        let mean = after.iter().sum::<f64>() / after.len() as f64;
        assert!(mean < 250.0 && mean > 150.0, "mean cap {mean}");
    }

    /// Half-hour forecast slots from `from` for `hours`, 200 g/kWh then 800 in turn every two
    /// hours.
    fn swinging_forecast(from: chrono::DateTime<chrono::Utc>, hours: i64) -> Vec<Slot> {
        (0..hours * 2)
            .map(|k| Slot {
                from: from + chrono::TimeDelta::minutes(30 * k),
                to: from + chrono::TimeDelta::minutes(30 * (k + 1)),
                g_per_kwh: if (k / 4) % 2 == 0 { 200.0 } else { 800.0 },
            })
            .collect()
    }

    #[test]
    fn the_screen_sets_the_governor_beside_the_oracle_so_far_and_over_the_forecast() {
        use crate::engine::schedule::{self, Signal};
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let forecast = swinging_forecast(t0 - chrono::TimeDelta::hours(1), 24);
        let secs = GOVERNED_S + 2400.0;
        let (mut session, _) = governed_with(&state, secs, false, Some(0.05), &forecast);
        let keys: Vec<&str> = session.dash.cap_limits.iter().map(|r| r.0).collect();
        assert_eq!(keys, ["vs best", "ahead"], "{:?}", session.dash.cap_limits);
        // So far: the summary's own comparison, made again within the last LIMIT_EVERY_S.
        let (at, so_far) = session.caps.so_far.clone().unwrap();
        let accounted = session.caps.governor.as_ref().unwrap().savings.time_s;
        assert!(
            accounted - at < LIMIT_EVERY_S && at >= LIMIT_EVERY_S,
            "{at} of {accounted}"
        );
        let so_far = so_far.unwrap();
        assert!(
            so_far.oracle_d_carbon <= so_far.d_carbon + 0.005,
            "{so_far:?}"
        );
        assert_eq!(
            session.dash.cap_limits[0].1,
            format!(
                "so far {:+.1}% of {:+.1}%",
                so_far.d_carbon * 100.0,
                so_far.oracle_d_carbon * 100.0
            )
        );
        // Ahead: the time-budget rule and the oracle on the forecast from the tick it was made
        // at, recomputed here from the slots by the schedule's own pieces (on the profile as it
        // is now: the governor refines its throughputs from the run, so within 0.2 point).
        let (made, a) = session.caps.ahead.clone().unwrap();
        let a = a.unwrap();
        assert!(secs - made < LIMIT_EVERY_S, "made at {made}");
        let now = t0 + chrono::TimeDelta::milliseconds((made * 1e3).round() as i64);
        let slots = crate::engine::forecast::ahead(&forecast, now, AHEAD_MAX);
        let g = session.caps.governor.as_ref().unwrap();
        let curve = crate::control::oracle::profile_curve(g.profile()).unwrap();
        let sig = Signal::from_slots(now, &slots);
        let slowest = curve.slowest_s();
        let work = sig.span_s() / slowest;
        let base = schedule::static_cap(curve.max(), &sig, work).unwrap();
        let o = schedule::oracle(&curve, &sig, work, a.d_time.max(0.0)).unwrap();
        assert!(
            (a.oracle_d_carbon - o.change(&base).2).abs() < 0.002,
            "{a:?} {:?}",
            o.change(&base)
        );
        // The rule within its budget (its +5% counted afresh), the oracle at least as good, and
        // following a 200 ↔ 800 forecast worth more than the flat grid so far.
        assert!(a.d_time <= 0.05 + 0.01, "{a:?}");
        assert!(a.oracle_d_carbon <= a.d_carbon + 1e-9, "{a:?}");
        assert!(
            a.oracle_d_carbon < so_far.oracle_d_carbon,
            "{a:?} {so_far:?}"
        );
        assert!(a.horizon_s <= sig.span_s() + 1e-6, "{a:?}");
        assert!(session.dash.cap_limits[1].1.ends_with(" h"));
        // The same forecast an hour later gives another figure: the comparison is made on the
        // hours ahead of the run, not any hours.
        let later =
            crate::engine::forecast::ahead(&forecast, now + chrono::TimeDelta::hours(1), AHEAD_MAX);
        let shifted = crate::control::oracle::ahead(g.profile(), &g.config(), &later).unwrap();
        assert!(
            (shifted.oracle_d_carbon - a.oracle_d_carbon).abs() > 0.005,
            "{shifted:?}"
        );
        // The governor stopped: no ahead row; what it did so far stays.
        session.caps.stop_governor();
        assert!(session.caps.ahead.is_none());
        let rows = session.caps.limit_rows();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ["vs best"]);
    }

    #[test]
    fn the_governor_profiles_decides_logs_every_change_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        let (mut session, rows) = governed_run(&state, GOVERNED_S);
        let changes: Vec<&Tick> = rows.iter().filter(|r| !r.cap_change.is_empty()).collect();
        // Profiling from the top down in 25 W steps, on both GPUs, each change on the row whose
        // interval it applied to, and the GPUs' caps read back on that row.
        assert_eq!(
            changes[0].cap_change.to_string(),
            "governor gpu0 300->275 W; governor gpu1 300->275 W"
        );
        let cap = |r: &Tick, i: usize| r.gpus[i].cap_w.unwrap();
        let profiled: Vec<(f64, f64)> = changes
            .iter()
            .take(8)
            .map(|r| (cap(r, 0), cap(r, 1)))
            .collect();
        let want: Vec<(f64, f64)> = [275.0, 250.0, 225.0, 200.0, 175.0, 150.0, 125.0, 100.0]
            .iter()
            .map(|&w| (w, w))
            .collect();
        assert_eq!(profiled, want);
        for (r, (w, _)) in changes.iter().zip(&want) {
            let old = w + 25.0;
            assert_eq!(
                r.cap_change.to_string(),
                format!("governor gpu0 {old}->{w} W; governor gpu1 {old}->{w} W")
            );
        }
        // Then a choice below the maximum (η=1: the least energy per step), in force on both
        // GPUs and in the state file.
        let last = changes.last().unwrap();
        let chosen = cap(last, 0);
        assert!(
            chosen < 300.0 && chosen > 100.0,
            "{chosen}: {:?}",
            session.caps.governor.as_ref().map(|g| g.profile().to_vec())
        );
        assert_eq!(cap(last, 1), chosen);
        assert_eq!(cap(rows.last().unwrap(), 0), chosen);
        assert_eq!(caps_in(&state), [chosen, chosen]);
        // The same scripted run decides the same way every time.
        let again = dir.path().join("again.json");
        let (_, rows2) = governed_run(&again, GOVERNED_S);
        assert_eq!(rows2, rows);
        // At the end: what the governor saved, and the caps put back, said.
        let notes = session.caps.finish();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("governor (η=1): ") && n.contains("less)")),
            "{notes:?}"
        );
        // Beside it, the oracle on the intensity this run saw (a flat 400 g/kWh: efficiency
        // alone), at least as good within half a point.
        let a = session.caps.against_oracle().unwrap().unwrap();
        assert!(a.oracle_d_carbon <= a.d_carbon + 0.005, "{a:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("; the oracle on the intensity this run saw, within +")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("caps put back: restore gpu0")),
            "{notes:?}"
        );
        assert_eq!(caps_in(&state), [300.0, 300.0]);
    }

    /// A grid that swings 200 ↔ 800 g/kWh every two hours for three days: following it is
    /// worth several points, so the oracle on the wrong hours gives a different figure.
    fn swinging_trace() -> crate::engine::reprice::Trace {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let pts = (0..36)
            .map(|k| {
                let i = if k % 2 == 0 { 200.0 } else { 800.0 };
                (
                    t0 + chrono::TimeDelta::hours(2 * k),
                    crate::units::GPerKwh(i),
                )
            })
            .collect();
        crate::engine::reprice::Trace::new(pts).unwrap()
    }

    #[test]
    fn the_summary_sets_the_governors_saving_beside_the_oracle_on_what_the_run_saw() {
        use crate::control::oracle::{profile_curve, zeus_curve};
        use crate::engine::schedule::{self, CapCurve, CapPoint, Signal};
        // The governor itself through the Session (scripted clock, one simulated A40 following
        // Zeus's ImageNet/ResNet-50 curve, a sample every 5 s priced by the trace): profile,
        // then 10 epochs within +5%.
        let curve = zeus_curve("a40", "imagenet-resnet50-b128").unwrap();
        let trace = swinging_trace();
        let sig = Signal::new(&trace, trace.start());
        let cfg = GovernorConfig {
            max_slowdown: Some(0.05),
            ..GovernorConfig::default()
        };
        let g = crate::app::simulate::session::governed(
            &curve,
            10_009.0,
            &sig,
            10.0,
            cfg,
            "x".into(),
            None,
            None,
        )
        .unwrap();
        let a = g.against.clone().unwrap().unwrap();
        let claimed = g.claimed.unwrap();
        // The claim is the governor's own accounting (the screen's and the summary's).
        assert!(
            (a.d_carbon + claimed.saved_pct() / 100.0).abs() < 1e-12,
            "{a:?}"
        );
        assert!((a.d_time - claimed.extra_time_pct() / 100.0).abs() < 1e-12);
        assert!(a.d_carbon < -0.05, "{a:?}");
        // The oracle knows the hours ahead on the same curve: at least as good as the governor,
        // within half a point (the governor's carbon is what the GPU drew, the oracle's its
        // profile's means, each measured to ±2%); both against the same uncapped figure.
        assert!(a.oracle_d_carbon <= a.d_carbon + 0.005, "{a:?}");
        // An independent recomputation: the trace itself from the profile's end (not the
        // ticks), the profile made a curve by hand, the oracle and uncapped run directly.
        let profile = g.measured.as_ref().unwrap().points.clone();
        let by_hand = CapCurve::new(
            profile
                .iter()
                .map(|p| CapPoint {
                    cap_w: p.cap_w,
                    s_per_epoch: 1.0 / p.throughput,
                    j_per_epoch: p.power_w / p.throughput,
                })
                .collect(),
        )
        .unwrap();
        assert_eq!(by_hand, profile_curve(&profile).unwrap());
        let oracle_from = |offset_s: f64| {
            let from = trace.start() + chrono::TimeDelta::milliseconds((offset_s * 1e3) as i64);
            let sig = Signal::new(&trace, from);
            let work = claimed.uncapped_time_s / by_hand.max().s_per_epoch;
            let x = claimed.time_s / claimed.uncapped_time_s - 1.0;
            let o = schedule::oracle(&by_hand, &sig, work, x).unwrap();
            o.carbon_g / claimed.uncapped_co2e_g - 1.0
        };
        let independent = oracle_from(g.profile_s);
        assert!(
            (a.oracle_d_carbon - independent).abs() < 0.001,
            "{a:?} against {independent}"
        );
        // The same recomputation on the wrong hours (an hour later) is far off: the check can
        // tell the trace the run saw from another.
        let wrong = oracle_from(g.profile_s + 3600.0);
        assert!(
            (a.oracle_d_carbon - wrong).abs() > 0.005,
            "{a:?} against {wrong}"
        );
        // The summary's line.
        let note = oracle_note(&Ok(a));
        assert!(
            note.contains("the oracle on the intensity this run saw, within +"),
            "{note}"
        );
    }

    #[test]
    fn the_caps_put_back_at_the_stop_are_on_the_closing_row() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        let (mut session, rows) = governed(&state, 40.0, true);
        let before = &rows[rows.len() - 2];
        assert!(
            before
                .gpus
                .iter()
                .all(|g| g.cap_w.is_some_and(|c| c < 300.0)),
            "{before:?}"
        );
        // Issue 20: the restore at quit was made after the last row and recorded nowhere.
        let closing = rows.last().unwrap();
        let cell = closing.cap_change.to_string();
        assert!(
            cell.contains("restore gpu0") && cell.contains("->300 W"),
            "{cell}"
        );
        assert!(cell.contains("restore gpu1"), "{cell}");
        assert_eq!(caps_in(&state), [300.0, 300.0]);
        // The summary still says what was put back, once, and nothing "after the last row".
        let notes = session.caps.finish();
        assert_eq!(
            notes
                .iter()
                .filter(|n| n.starts_with("caps put back: "))
                .count(),
            1,
            "{notes:?}"
        );
        assert!(
            !notes.iter().any(|n| n.contains("after the last row")),
            "{notes:?}"
        );
    }

    #[test]
    fn dropping_the_cap_side_puts_the_caps_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("caps.json");
        let (session, _) = governed_run(&state, 40.0);
        assert!(caps_in(&state).iter().all(|&c| c < 300.0));
        // No finish(): an early return, a signal or a panic unwinding only drops it.
        drop(session);
        assert_eq!(caps_in(&state), [300.0, 300.0]);
    }
}
