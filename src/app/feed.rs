//! Where a command's ticks come from, for the one driver loop: the sampler (this machine,
//! live), a recording played back (replay, `serve --replay`), or the agents' /metrics
//! (`watch --agent`). The sampler and the agents run on threads of their own and send on the
//! loop's channel; a recording is read by the loop itself when its next row is due, so pause,
//! seek and speed act at once.

use crate::app::drive::Raw;
use crate::app::session::{Event, Session};
use crate::report::account::Recorded;
use crate::serve::agents::Agents;
use crate::source::sampler::SamplerHandle;
use crate::ui::model::Mode;
use crate::ui::state::Effect as Action;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Speeds `<`/`>` move between; above the top is `max`.
const MIN_SPEED: f64 = 0.125;
const MAX_SPEED: f64 = 1024.0;

pub enum Feed {
    Sampler(SamplerHandle),
    Playback(Box<Playback>),
    Agents(AgentsHandle),
}

impl Feed {
    /// When the loop must read the feed itself (a recording's next row), if ever.
    pub fn due(&mut self) -> Option<Instant> {
        match self {
            Feed::Playback(p) => p.due(),
            Feed::Sampler(_) | Feed::Agents(_) => None,
        }
    }

    /// What the feed has now, if its time has come (only a recording is read by the loop):
    /// the loop also wakes for its own deadlines and owed frames, and a paused or paced
    /// recording must not move then.
    pub fn take(&mut self) -> Option<Event> {
        match self {
            Feed::Playback(p) => {
                let due = p.due().is_some_and(|d| d <= Instant::now());
                if due { p.take() } else { None }
            }
            Feed::Sampler(_) | Feed::Agents(_) => None,
        }
    }

    /// Asks the feed to stop; it answers with a last `SamplerDone`.
    pub fn stop(&mut self) {
        match self {
            Feed::Sampler(h) => h.stop(),
            Feed::Playback(p) => p.stopped = true,
            Feed::Agents(a) => {
                let _ = a.stop.send(());
            }
        }
    }

    /// Waits for the feed's threads to end.
    pub fn join(self) {
        match self {
            Feed::Sampler(h) => h.join(),
            Feed::Agents(a) => {
                let _ = a.join.join();
            }
            Feed::Playback(_) => {}
        }
    }
}

/// A recording played back: paced at `speed` × the recorded time (None: as fast as it reads),
/// paused, sought.
pub struct Playback {
    pub rec: Recorded,
    file: PathBuf,
    pue: Option<f64>,
    pub speed: Option<f64>,
    pub playing: bool,
    /// Recording time `origin.1` plays at wall time `origin.0`.
    origin: Option<(Instant, f64)>,
    /// Play without pacing up to this recording time (a seek).
    seek_to: Option<f64>,
    stopped: bool,
    done_sent: bool,
    end_sent: bool,
    /// Seeking back would rewrite rows already written with --out: refused.
    pub writing: bool,
    /// The recording time a pause stopped at, played on from when play resumes.
    paused_at: Option<f64>,
}

/// `s` seconds as a Duration: none below 0 (or NaN), the longest one above what it holds.
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

impl Playback {
    pub fn new(rec: Recorded, file: PathBuf, pue: Option<f64>, speed: Option<f64>) -> Self {
        Self {
            rec,
            file,
            pue,
            speed,
            playing: true,
            origin: None,
            seek_to: None,
            stopped: false,
            done_sent: false,
            end_sent: false,
            writing: false,
            paused_at: None,
        }
    }

    /// The screen's mode line for the playback.
    pub fn mode(&self) -> Mode {
        Mode::Replay {
            speed: self.speed,
            playing: self.playing,
            ended: self.rec.ended,
        }
    }

    /// The recording reached its end (or an error cut it short).
    pub fn ended(&self) -> bool {
        self.rec.ended
    }

    fn due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if self.stopped {
            return (!self.done_sent).then_some(now);
        }
        let Some(el) = self.rec.peek().map(|s| s.elapsed_s) else {
            return (!self.end_sent).then_some(now);
        };
        if self.seek_to.is_some_and(|t| el <= t) {
            return Some(now);
        }
        self.seek_to = None;
        if !self.playing {
            return None;
        }
        match self.speed {
            None => Some(now),
            Some(x) => {
                let (t0, e0) = *self.origin.get_or_insert((now, el));
                // A wait too long for the clock is no wait the loop needs to keep.
                t0.checked_add(secs((el - e0) / x))
            }
        }
    }

    /// Where the playback stands in recording time at `now`, while it is paced.
    fn position(&self, now: Instant) -> Option<f64> {
        let (t0, e0) = self.origin?;
        Some(e0 + now.saturating_duration_since(t0).as_secs_f64() * self.speed?)
    }

    fn take(&mut self) -> Option<Event> {
        if self.stopped {
            self.done_sent = true;
            return Some(Event::SamplerDone);
        }
        match self.rec.step() {
            Some(tick) => Some(Event::Tick {
                tick: Box::new(tick),
                totals: Box::new(self.rec.ledger.totals()),
                pue: self.rec.ledger.config().pue,
            }),
            None if !self.end_sent => {
                self.end_sent = true;
                Some(Event::Ended(
                    self.rec.error.as_ref().map(ToString::to_string),
                ))
            }
            None => None,
        }
    }

    /// A playback key; the line to flash, if any. Seeking back starts the recording over
    /// (the Ledger is a fold; there is no undo), which the session hears as `Restart`.
    pub fn control(&mut self, a: Action, s: &mut Session) -> Option<String> {
        match a {
            Action::TogglePlay => {
                // Paused where it stands, and played on from there.
                let now = Instant::now();
                if self.playing {
                    self.paused_at = self.position(now);
                    self.origin = None;
                } else {
                    self.origin = self.paused_at.take().map(|e| (now, e));
                }
                self.playing = !self.playing;
                None
            }
            Action::Speed(f) => {
                self.set_speed(f);
                Some(format!(
                    "speed {}",
                    self.speed.map_or("max".into(), |x| format!("{x}×"))
                ))
            }
            Action::Seek(dt) => self.seek(s.dash.elapsed_s() + dt, s),
            Action::Restart => self.seek(f64::NEG_INFINITY, s),
            _ => None,
        }
    }

    /// `<` (×0.5) and `>` (×2), between MIN_SPEED and max. The pacing goes on from where the
    /// playback stands: a change neither plays the next row at once nor starts its wait over
    /// (issue 20: at the slowest speed each `<` stepped one row), and a press at the end of the
    /// range changes nothing.
    pub fn set_speed(&mut self, f: f64) {
        let new = match self.speed {
            None if f < 1.0 => Some(MAX_SPEED / 2.0),
            None => None,
            Some(x) if x * f > MAX_SPEED => None,
            Some(x) => Some((x * f).max(MIN_SPEED)),
        };
        if new != self.speed {
            let now = Instant::now();
            self.origin = self.position(now).map(|e| (now, e));
            self.speed = new;
        }
    }

    fn seek(&mut self, target: f64, s: &mut Session) -> Option<String> {
        self.origin = None;
        if target < s.dash.elapsed_s() {
            if self.writing {
                return Some("seeking back is off while --out writes a copy".into());
            }
            match Recorded::open(&self.file, self.pue) {
                Ok(r) => self.rec = r,
                Err(e) => return Some(format!("cannot read the recording again: {e}")),
            }
            self.end_sent = false;
            s.handle(0.0, Event::Restart);
        }
        self.seek_to = Some(target);
        None
    }
}

/// The agents' scraper on a thread of its own: every `interval`, every agent once.
pub struct AgentsHandle {
    stop: Sender<()>,
    join: JoinHandle<()>,
}

/// Starts scraping at once and then every `interval`, sending each round on `tx`.
pub fn spawn_agents(
    mut agents: Agents,
    interval: Duration,
    tx: Sender<Raw>,
) -> std::io::Result<AgentsHandle> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let join = std::thread::Builder::new()
        .name("carbontop-agents".into())
        .spawn(move || {
            let start = Instant::now();
            let mut k: u32 = 0;
            loop {
                agents.scrape();
                let round = Raw::Agents(agents.nodes.clone(), chrono::Utc::now());
                if tx.send(round).is_err() {
                    return;
                }
                k = k.saturating_add(1);
                let next = start + interval * k;
                match stop_rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        let _ = tx.send(Raw::Done);
                        return;
                    }
                }
            }
        })?;
    Ok(AgentsHandle {
        stop: stop_tx,
        join,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/traces/a40x4-cifar100.csv")
    }

    /// A replay's session (pause and speed do not touch it; a seek would).
    fn session() -> Session {
        use crate::engine::{Basis, Ledger, LedgerConfig, Meter};
        use crate::ui::model::{Dashboard, RunInfo};
        let info = RunInfo {
            title: "replay".into(),
            zone: "FR".into(),
            cpu_estimate: false,
            gpus: vec![],
            cap_mode: "replay".into(),
            samples_path: None,
            mode: Mode::Live,
        };
        let cfg = crate::app::session::SessionConfig {
            screen: false,
            child: false,
            duration_s: None,
            recording: false,
            hold: false,
        };
        Session::new(
            Dashboard::new(info, Meter::new(Basis::default(), false)),
            Ledger::new(LedgerConfig::default()),
            crate::app::caps::CapSide::without_control("replay"),
            cfg,
        )
    }

    /// How long until the next row is due.
    fn wait(p: &mut Playback) -> Duration {
        p.due()
            .expect("a row is due")
            .saturating_duration_since(Instant::now())
    }

    #[test]
    fn a_speed_key_neither_steps_a_row_nor_restarts_its_wait() {
        let f = fixture();
        let rec = Recorded::open(&f, None).unwrap();
        let mut p = Playback::new(rec, f, None, Some(MIN_SPEED));
        // The first row is due at once, the second (1.003 s of recording later) 8 s later.
        assert_eq!(wait(&mut p), Duration::ZERO);
        assert!(p.take().is_some());
        assert!(wait(&mut p) > Duration::from_secs(6));
        // Issue 20: at the slowest speed each `<` made the next row due at once.
        for _ in 0..5 {
            p.set_speed(0.5);
            assert_eq!(p.speed, Some(MIN_SPEED));
            assert!(wait(&mut p) > Duration::from_secs(6));
        }
        // Twice as fast from where it stands: about half of the ~8 s wait, not 0, not 8.
        p.set_speed(2.0);
        assert_eq!(p.speed, Some(2.0 * MIN_SPEED));
        let w = wait(&mut p);
        assert!(
            w > Duration::from_secs(2) && w < Duration::from_millis(4100),
            "{w:?}"
        );
    }

    #[test]
    fn a_pause_holds_the_playback_where_it_stands() {
        let f = fixture();
        let rec = Recorded::open(&f, None).unwrap();
        let mut p = Playback::new(rec, f, None, Some(MIN_SPEED));
        assert_eq!(wait(&mut p), Duration::ZERO);
        assert!(p.take().is_some());
        let mut s = session();
        assert_eq!(p.control(Action::TogglePlay, &mut s), None);
        assert_eq!(p.due(), None);
        p.control(Action::TogglePlay, &mut s);
        // Played on from where it paused: the row's wait goes on, it does not start at once.
        assert!(wait(&mut p) > Duration::from_secs(6));
    }

    #[test]
    fn a_wait_beyond_the_clock_is_no_panic() {
        assert_eq!(secs(f64::INFINITY), Duration::MAX);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert!(Instant::now().checked_add(secs(1e300)).is_none());
    }
}
