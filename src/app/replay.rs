//! `replay FILE`: a recording played back through the same engine, on the screen (with pause,
//! seek and speed keys) or headless.

use crate::app::live::{open_writer, write_tick};
use crate::app::screen::{self, Screen};
use crate::app::{AppError, say};
use crate::engine::{Meter, Tick};
use crate::report::account::Recorded;
use crate::report::emissions::RunMeta;
use crate::report::samples::SamplesWriter;
use crate::report::summary::{RunFacts, status_line, summary};
use crate::sample::Sample;
use crate::source::replay::Speed;
use crate::ui::model::{Dashboard, Mode, RunInfo};
use crate::ui::state::{Effect, UiState};
use crate::ui::theme;
use ratatui::crossterm::event::Event as CtEvent;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ReplayOpts<'a> {
    pub file: &'a Path,
    pub speed: Speed,
    pub out: Option<&'a Path>,
    pub pue: Option<f64>,
    pub quiet: bool,
    pub headless: bool,
    pub theme: Option<&'a str>,
    /// `serve --replay`: every tick also goes to /metrics, and the totals are held there after
    /// the end until a signal.
    pub exporter: Option<crate::serve::Exporter>,
}

/// Speeds `<`/`>` move between; above the top is `max`.
const MIN_SPEED: f64 = 0.125;
const MAX_SPEED: f64 = 1024.0;
/// At `max` speed the screen takes this long of work between frames.
const MAX_SPEED_SLICE: Duration = Duration::from_millis(30);

/// The recording, the engine, and where replayed rows go.
struct Player {
    rec: Recorded,
    /// The figures so far (lent to the screen's Dashboard while it plays).
    meter: Meter,
    writer: Option<SamplesWriter>,
    write_failed: bool,
}

impl Player {
    fn open(file: &Path, pue: Option<f64>, history: bool) -> Result<Self, AppError> {
        let rec = Recorded::open(file, pue).map_err(|e| AppError::Usage(format!("replay {e}")))?;
        let meter = Meter::new(rec.basis(), history);
        Ok(Self {
            rec,
            meter,
            writer: None,
            write_failed: false,
        })
    }

    /// The next sample (read ahead, not yet accounted).
    fn peek(&mut self) -> Option<&Sample> {
        self.rec.peek()
    }

    fn ended(&self) -> bool {
        self.rec.ended
    }

    /// Accounts the next sample into `meter`; the tick and an error to show, if writing failed.
    fn step(&mut self, meter: &mut Meter) -> Option<(Tick, Option<String>)> {
        let tick = self.rec.step_into(meter)?;
        let err = self.write(&tick);
        Some((tick, err))
    }

    /// The same, into the player's own meter (headless).
    fn advance(&mut self) -> Option<(Tick, Option<String>)> {
        let tick = self.rec.step_into(&mut self.meter)?;
        let err = self.write(&tick);
        Some((tick, err))
    }

    /// Writes the replayed row where `--out` asked; an error to show, if writing failed.
    fn write(&mut self, tick: &Tick) -> Option<String> {
        write_tick(self.writer.as_mut()?, tick, &mut self.write_failed)
    }
}

pub fn replay(o: &ReplayOpts<'_>) -> Result<i32, AppError> {
    crate::app::survive_file_size_limit();
    let mut player = Player::open(o.file, o.pue, false)?;
    let themes = theme::resolve(o.theme, theme::user_dir().as_deref()).map_err(AppError::Usage)?;
    if let Some(dir) = o.out {
        player.writer = Some(open_writer(
            dir,
            player.rec.rp.gpu_count(),
            &player.rec.rp.metric_names(),
        )?);
    }
    let use_screen = screen::wanted(o.headless);
    if use_screen {
        // The screen draws the history.
        player.meter = Meter::new(player.rec.basis(), true);
    }
    let interrupted = if use_screen {
        replay_screen(o, &mut player, themes)?
    } else {
        replay_headless(o, &mut player)?
    };

    let mut notes = Vec::new();
    if interrupted {
        notes.push("stopped before the end of the recording".into());
    }
    if let Some(n) = player
        .writer
        .as_mut()
        .and_then(crate::app::live::finish_writer)
    {
        notes.push(n);
    }
    if let Some(line) = player.rec.rp.truncated_tail() {
        notes.push(format!(
            "the last row (line {line}) was cut off mid-write and is left out"
        ));
    }
    let path = player.rec.rp.path().to_owned();
    let facts = RunFacts {
        title: format!("replay {path}"),
        interval_s: None,
        sources: vec![("all".into(), format!("replayed from {path}"))],
        samples_path: player
            .writer
            .as_ref()
            .map(|w| w.path().display().to_string()),
        notes,
    };
    crate::app::err_out(&summary(&player.meter.snapshot(), &facts));
    if let Some(e) = player.rec.error {
        say(&format!("replay {e}"));
        return Ok(2);
    }
    Ok(0)
}

/// Plays to the end or a signal; true when stopped early.
fn replay_headless(o: &ReplayOpts<'_>, p: &mut Player) -> Result<bool, AppError> {
    let stop = crate::app::stop_flag()?;
    let started = Instant::now();
    let mut first_elapsed = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(next) = p.peek() else { break };
        let elapsed = next.elapsed_s;
        if let Speed::Times(x) = o.speed {
            // Pace against the start so sleep overshoot never accumulates.
            let t0 = *first_elapsed.get_or_insert(elapsed);
            let due = started + Duration::from_secs_f64(((elapsed - t0) / x).max(0.0));
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(100)));
            }
        }
        let Some((tick, err)) = p.advance() else {
            break;
        };
        if let Some(e) = err {
            say(&e);
        }
        if let Some(ex) = &o.exporter {
            ex.update(&tick, &p.meter.snapshot());
        }
        if !o.quiet && o.speed != Speed::Max {
            crate::errln!("{}", status_line(&tick, false));
        }
    }
    if o.exporter.is_some() {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(false);
    }
    Ok(stop.load(Ordering::Relaxed))
}

enum Ev {
    Input(CtEvent),
    Signal,
}

fn replay_info(p: &Player, speed: Option<f64>) -> RunInfo {
    RunInfo {
        title: format!("replay {}", p.rec.rp.path()),
        zone: "recorded".into(),
        cpu_estimate: false,
        gpus: (0..p.rec.rp.gpu_count())
            .map(|i| format!("GPU{i}"))
            .collect(),
        cap_mode: "recorded".into(),
        samples_path: p.writer.as_ref().map(|w| w.path().display().to_string()),
        mode: Mode::Replay {
            speed,
            playing: true,
            ended: false,
        },
    }
}

/// The replay screen's dashboard, holding the player's meter while it plays.
fn replay_dash(p: &mut Player, speed: Option<f64>) -> Dashboard {
    let meter = std::mem::replace(&mut p.meter, Meter::new(p.rec.basis(), false));
    Dashboard::new(replay_info(p, speed), meter)
}

/// Plays on the screen until `q` or a signal; true when stopped before the end.
fn replay_screen(
    o: &ReplayOpts<'_>,
    p: &mut Player,
    themes: (Vec<theme::Theme>, usize),
) -> Result<bool, AppError> {
    let (tx, rx) = mpsc::channel::<Ev>();
    let sig_handle = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |_| tx.send(Ev::Signal).is_ok())?
    };
    let mut speed = match o.speed {
        Speed::Times(x) => Some(x),
        Speed::Max => None,
    };
    let mut dash = replay_dash(p, speed);
    let ui = UiState::new(themes.0, themes.1, true, false);
    let mut sc = Screen::start(&dash, ui).map_err(AppError::Runtime)?;
    {
        let tx = tx.clone();
        screen::spawn_input(move |e| tx.send(Ev::Input(e)).is_ok()).map_err(AppError::Runtime)?;
    }
    drop(tx);

    let mut playing = true;
    // Pacing: recording time `origin.1` plays at wall time `origin.0`.
    let mut origin: Option<(Instant, f64)> = None;
    let mut interrupted = false;

    loop {
        // Play what is due.
        let mut due: Option<Instant> = None;
        if playing && !p.ended() {
            let slice_end = Instant::now() + MAX_SPEED_SLICE;
            while let Some(next) = p.peek() {
                let el = next.elapsed_s;
                let now = Instant::now();
                if let Some(x) = speed {
                    let (t0, e0) = *origin.get_or_insert((now, el));
                    let at = t0 + Duration::from_secs_f64(((el - e0) / x).max(0.0));
                    if at > now {
                        due = Some(at);
                        break;
                    }
                } else if now >= slice_end {
                    due = Some(now);
                    break;
                }
                if show_step(p, &mut dash) {
                    sc.owed.get_or_insert(Instant::now());
                }
            }
            if p.ended() {
                mark_ended(&mut dash, p);
                sc.owed.get_or_insert(Instant::now());
            }
        }
        set_mode(&mut dash, speed, playing, p.ended());
        if speed.is_none() && due.is_some() {
            // At max speed: a frame per slice, then straight on.
            sc.draw(&dash);
        } else {
            sc.pay_owed(&dash);
        }

        let wait_until = [due, sc.owed].into_iter().flatten().min();
        let Ok(ev) = crate::app::recv_until(&rx, wait_until) else {
            break;
        };
        let Some(ev) = ev else { continue };
        let effect = match ev {
            Ev::Signal => {
                interrupted = !p.ended();
                break;
            }
            Ev::Input(CtEvent::Key(k)) => sc.ui.handle_key(k, &dash, false),
            Ev::Input(_) => None,
        };
        match effect {
            Some(Effect::Quit) | Some(Effect::Interrupt) => {
                interrupted = !p.ended();
                break;
            }
            Some(Effect::TogglePlay) => {
                playing = !playing;
                origin = None;
            }
            Some(Effect::Speed(f)) => {
                speed = match speed {
                    None if f < 1.0 => Some(MAX_SPEED / 2.0),
                    None => None,
                    Some(x) if x * f > MAX_SPEED => None,
                    Some(x) => Some((x * f).max(MIN_SPEED)),
                };
                origin = None;
                sc.ui.flash = Some(format!(
                    "speed {}",
                    speed.map_or("max".into(), |x| format!("{x}×"))
                ));
            }
            Some(Effect::Seek(dt)) => {
                let target = dash.elapsed_s() + dt;
                seek(o, p, &mut sc, &mut dash, target, speed)?;
                origin = None;
            }
            Some(Effect::Export) => {
                let meta = RunMeta {
                    project_name: "carbontop".into(),
                    gpu_models: dash.info.gpus.clone(),
                    ..Default::default()
                };
                screen::export(&mut sc, &dash, o.out.unwrap_or(Path::new(".")), &meta);
            }
            Some(Effect::Restart) => {
                seek(o, p, &mut sc, &mut dash, f64::NEG_INFINITY, speed)?;
                origin = None;
            }
            // The keys say so themselves; a recording's caps are what was recorded.
            Some(Effect::Cap(..) | Effect::ToggleGovernor) | None => {}
        }
        set_mode(&mut dash, speed, playing, p.ended());
        sc.draw(&dash);
    }
    sig_handle.close();
    sc.stop();
    // The meter goes back to the player for the summary.
    p.meter = std::mem::replace(&mut dash.meter, Meter::new(Default::default(), false));
    Ok(interrupted)
}

/// Accounts the next sample and shows it; false at the end.
fn show_step(p: &mut Player, d: &mut Dashboard) -> bool {
    let Some((_, err)) = p.step(&mut d.meter) else {
        return false;
    };
    if let Some(e) = err {
        d.warn(e);
    }
    true
}

fn set_mode(d: &mut Dashboard, speed: Option<f64>, playing: bool, ended: bool) {
    d.info.mode = Mode::Replay {
        speed,
        playing,
        ended,
    };
}

fn mark_ended(d: &mut Dashboard, p: &Player) {
    if d.ended.is_none() {
        d.ended = Some(match &p.rec.error {
            Some(e) => format!("replay stopped: {e} · q to quit"),
            None => "end of recording · q to quit (, seeks back, home restarts)".into(),
        });
    }
}

/// Moves playback to recording time `target`: forward by accounting without pacing, back by
/// replaying from the start (the Ledger is a fold; there is no undo).
fn seek(
    o: &ReplayOpts<'_>,
    p: &mut Player,
    sc: &mut Screen,
    dash: &mut Dashboard,
    target: f64,
    speed: Option<f64>,
) -> Result<(), AppError> {
    if target < dash.elapsed_s() {
        if p.writer.is_some() {
            sc.ui.flash = Some("seeking back is off while --out writes a copy".into());
            return Ok(());
        }
        *p = Player::open(o.file, o.pue, true)?;
        *dash = replay_dash(p, speed);
    }
    while p.peek().is_some_and(|s| s.elapsed_s <= target) {
        show_step(p, dash);
    }
    if p.ended() {
        mark_ended(dash, p);
    } else {
        dash.ended = None;
    }
    Ok(())
}

/// The dashboard a replay of `file` shows once it has played up to recording time `until_s`
/// (None: the whole file). For snapshot tests and screenshots.
pub fn dashboard_of(file: &Path, until_s: Option<f64>) -> Result<Dashboard, AppError> {
    let mut p = Player::open(file, None, true)?;
    let mut d = replay_dash(&mut p, Some(1.0));
    let until = until_s.unwrap_or(f64::INFINITY);
    while p.peek().is_some_and(|s| s.elapsed_s <= until) {
        show_step(&mut p, &mut d);
    }
    if let Some(e) = p.rec.error.take() {
        return Err(AppError::Usage(format!("replay {e}")));
    }
    p.peek();
    set_mode(&mut d, Some(1.0), true, p.ended());
    if p.ended() {
        mark_ended(&mut d, &p);
    }
    Ok(d)
}
