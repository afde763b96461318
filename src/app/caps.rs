//! The cap side of a measuring run: the one `CapControl` (or why there is none), the cap keys
//! and the carbon governor, turned into changes, status-line text and summary notes. The
//! control puts the original caps back when it is dropped, so every exit path — the end of the
//! run, `q`, a signal, a panic unwinding — restores them.

use crate::config::Settings;
use crate::control::governor::{Governor, GovernorConfig, Obs, Savings};
use crate::control::{CapControl, PowerCap, Target, Who};
use crate::engine::Tick;
use crate::ui::state::CapKey;

pub struct CapSide {
    control: Option<CapControl>,
    /// Why caps cannot be changed, when there is no control.
    why: String,
    governor: Option<Governor>,
    cfg: GovernorConfig,
    step_w: f64,
    /// Savings of governors switched off earlier in the run.
    past: Savings,
}

impl CapSide {
    pub fn new(caps: Result<Box<dyn PowerCap>, String>, s: &Settings) -> Self {
        let (control, why) = match caps {
            Ok(a) => (Some(CapControl::new(a, s.restore_caps)), String::new()),
            Err(why) => (None, why),
        };
        let measure_s = s.governor_profile.as_secs_f64();
        Self {
            control,
            why,
            governor: None,
            cfg: GovernorConfig {
                eta: s.eta,
                warmup_s: measure_s / 2.0,
                measure_s,
                ..GovernorConfig::default()
            },
            step_w: s.cap_step,
            past: Savings::default(),
        }
    }

    /// Why the keys cannot act, if they cannot.
    fn refused(&self) -> Option<String> {
        match &self.control {
            None => Some(self.why.clone()),
            Some(c) => c.refused().map(str::to_owned),
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
        self.governor = Some(Governor::new(self.cfg, l.min_w, l.max_w));
        Ok(format!(
            "governor on (η={}): profiling caps {:.0}–{:.0} W, {:.1} s each",
            self.cfg.eta,
            l.max_w,
            l.min_w,
            self.cfg.warmup_s + self.cfg.measure_s
        ))
    }

    fn stop_governor(&mut self) {
        if let Some(g) = self.governor.take() {
            self.past.add(&g.savings);
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
        let obs = Obs {
            elapsed_s: t.elapsed_s,
            gpu_w: t.gpu_power_w,
            steps: t.progress.step.map(|s| s as f64),
            util_pct: (!utils.is_empty()).then(|| utils.iter().sum::<f64>() / utils.len() as f64),
            intensity: t.intensity_g_per_kwh,
            intensity_ahead,
        };
        let cap = g.observe(&obs)?;
        let reason = g.reason.clone();
        let c = self.control.as_mut()?;
        match c.set(Target::All, cap, Who::Governor) {
            Ok(_) => Some(format!("governor: {reason}")),
            Err(e) => {
                self.stop_governor();
                Some(format!("governor stopped: {e}"))
            }
        }
    }

    /// The header's cap mode.
    pub fn mode(&self) -> String {
        let Some(c) = &self.control else {
            return "no GPU".into();
        };
        if let Some(g) = &self.governor {
            return format!("governor η={} · {}", g.config().eta, short(&g.reason));
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

    /// Changes since the last row, for its `cap_change` cell.
    pub fn take_log(&mut self) -> Option<String> {
        self.control.as_mut()?.take_log()
    }

    /// At the end: put the caps back (unless --no-restore) and say what the governor saved.
    pub fn finish(&mut self) -> Vec<String> {
        self.stop_governor();
        let mut notes = Vec::new();
        let s = self.past;
        if s.uncapped_time_s > 0.0 {
            notes.push(format!(
                "governor (η={}): {} CO2e of GPU energy against {} uncapped for the same work \
                 ({:.1}% less), {:+.1}% time (estimated from its profile)",
                self.cfg.eta,
                crate::report::summary::fmt_co2e_g(s.co2e_g),
                crate::report::summary::fmt_co2e_g(s.uncapped_co2e_g),
                s.saved_pct(),
                s.extra_time_pct()
            ));
        }
        if let Some(c) = self.control.as_mut() {
            if c.restores_on_exit() {
                let errs = c.restore();
                if let Some(log) = c.take_log() {
                    notes.push(format!("caps put back: {log}"));
                }
                notes.extend(errs);
            } else if c.changed() {
                notes.push("caps left as they are (--no-restore)".into());
            }
        }
        notes
    }
}

/// The governor's reason up to its first `;`, for the header.
fn short(r: &str) -> &str {
    r.split(';').next().unwrap_or(r)
}
