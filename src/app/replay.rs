//! `replay FILE`: a recording played back through the same Session and driver loop as a live
//! run, on the screen (with pause, seek and speed keys) or headless; `serve --replay` is the
//! same with /metrics.

use crate::app::caps::CapSide;
use crate::app::drive::{Io, Output, Raw, drive};
use crate::app::feed::{Feed, Playback};
use crate::app::live::open_writer;
use crate::app::screen::{self, Screen};
use crate::app::session::{Session, SessionConfig};
use crate::app::{AppError, say};
use crate::engine::{Ledger, LedgerConfig, Meter};
use crate::report::account::Recorded;
use crate::report::emissions::RunMeta;
use crate::report::summary::{RunFacts, summary};
use crate::source::replay::Speed;
use crate::ui::model::{Dashboard, Mode, RunInfo};
use crate::ui::state::UiState;
use crate::ui::theme;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

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

/// The screen's facts for a recording.
fn replay_info(rec: &Recorded, speed: Option<f64>, samples: Option<String>) -> RunInfo {
    RunInfo {
        title: format!("replay {}", rec.rp.path()),
        zone: "recorded".into(),
        cpu_estimate: false,
        gpus: rec.rp.gpu_ids().iter().map(|i| format!("GPU{i}")).collect(),
        cap_mode: "recorded".into(),
        samples_path: samples,
        mode: Mode::Replay {
            speed,
            playing: true,
            ended: false,
        },
    }
}

pub fn replay(o: &ReplayOpts<'_>) -> Result<i32, AppError> {
    crate::app::survive_file_size_limit();
    let rec = Recorded::open(o.file, o.pue).map_err(|e| AppError::Usage(format!("replay {e}")))?;
    let themes = theme::resolve(o.theme, theme::user_dir().as_deref())
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let writer = match o.out {
        Some(dir) => Some(open_writer(dir, rec.rp.gpu_ids(), &rec.rp.metric_names())?),
        None => None,
    };
    let use_screen = screen::wanted(o.headless);
    let speed = match o.speed {
        Speed::Times(x) => Some(x),
        Speed::Max => None,
    };
    let samples = writer.as_ref().map(|w| w.path().display().to_string());
    let dash = Dashboard::new(
        replay_info(&rec, speed, samples),
        Meter::new(rec.basis(), use_screen),
    );
    let (tx, rx) = mpsc::channel::<Raw>();
    let sig = {
        let tx = tx.clone();
        crate::app::spawn_signal_thread(move |s| tx.send(Raw::Signal(s)).is_ok())?
    };
    let out = if use_screen {
        let ui = UiState::new(themes.0, themes.1, true, false);
        let sc = Screen::start(&dash, ui).map_err(AppError::Runtime)?;
        screen::spawn_input(move |e| tx.send(Raw::Input(e)).is_ok()).map_err(AppError::Runtime)?;
        Output::Screen(Box::new(sc))
    } else {
        Output::Headless {
            // At max speed a status line per row would be a flood.
            quiet: o.quiet || speed.is_none(),
            cpu_estimate: false,
        }
    };
    let mut playback = Playback::new(rec, o.file.to_path_buf(), o.pue, speed);
    playback.writing = writer.is_some();
    let cfg = SessionConfig {
        screen: use_screen,
        child: false,
        duration_s: None,
        recording: writer.is_some(),
        hold: o.exporter.is_some(),
    };
    // The recording accounts its own ticks (its PUE, its cap changes); its caps are history.
    let caps = CapSide::without_control("a recording's caps are what was recorded");
    let mut session = Session::new(dash, Ledger::new(LedgerConfig::default()), caps, cfg);
    let feed = Feed::Playback(Box::new(playback));
    let mut io = Io::new(rx, Instant::now(), out, feed);
    io.writer = writer;
    io.exporter = o.exporter.clone();
    io.export_dir = o.out.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let gpus = session.dash.info.gpus.clone();
    io.meta = Box::new(move || RunMeta {
        project_name: "carbontop".into(),
        gpu_models: gpus.clone(),
        ..Default::default()
    });
    drive(&mut session, &mut io)?;
    sig.close();
    let Io {
        feed, out, writer, ..
    } = io;
    drop(out);
    let Feed::Playback(p) = feed else {
        return Err(AppError::Runtime("replay lost its recording".into()));
    };
    finish(*p, session, writer)
}

/// The summary of what was played, and the exit code (2 when the recording was cut short by
/// a bad row).
fn finish(
    mut p: Playback,
    session: Session,
    mut writer: Option<crate::report::samples::SamplesWriter>,
) -> Result<i32, AppError> {
    let mut notes = Vec::new();
    if !p.ended() {
        notes.push("stopped before the end of the recording".into());
    }
    notes.extend(writer.as_mut().and_then(crate::app::live::finish_writer));
    if let Some(line) = p.rec.rp.truncated_tail() {
        notes.push(format!(
            "the last row (line {line}) was cut off mid-write and is left out"
        ));
    }
    let path = p.rec.rp.path().to_owned();
    let facts = RunFacts {
        title: format!("replay {path}"),
        interval_s: None,
        sources: vec![("all".into(), format!("replayed from {path}"))],
        samples_path: writer.as_ref().map(|w| w.path().display().to_string()),
        notes,
    };
    crate::app::err_out(&summary(&session.finish().snapshot, &facts));
    if let Some(e) = p.rec.error.take() {
        say(&format!("replay {e}"));
        return Ok(2);
    }
    Ok(0)
}

/// The dashboard a replay of `file` shows once it has played up to recording time `until_s`
/// (None: the whole file). For snapshot tests and screenshots.
pub fn dashboard_of(file: &Path, until_s: Option<f64>) -> Result<Dashboard, AppError> {
    let mut rec = Recorded::open(file, None).map_err(|e| AppError::Usage(format!("replay {e}")))?;
    let mut d = Dashboard::new(
        replay_info(&rec, Some(1.0), None),
        Meter::new(rec.basis(), true),
    );
    let until = until_s.unwrap_or(f64::INFINITY);
    while rec.peek().is_some_and(|s| s.elapsed_s <= until) {
        rec.step_into(&mut d.meter);
    }
    if let Some(e) = rec.error.take() {
        return Err(AppError::Usage(format!("replay {e}")));
    }
    rec.peek();
    d.info.mode = Mode::Replay {
        speed: Some(1.0),
        playing: true,
        ended: rec.ended,
    };
    if rec.ended {
        d.ended = Some("end of recording · q to quit (, seeks back, home restarts)".into());
    }
    Ok(d)
}
