//! The one owner of the terminal: enters the alternate screen in raw mode, draws frames, and
//! puts the terminal back on every exit path — normal return, early return (Drop), and panic
//! (ratatui's `try_init` installs a hook that restores before the panic message prints).
//! SIGTERM/SIGHUP/SIGINT are turned into events by the callers, so they leave through the
//! normal path.

use crate::ui::model::Dashboard;
use crate::ui::render;
use crate::ui::state::UiState;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Output lines arriving faster than this are drawn together.
const MIN_FRAME_GAP: Duration = Duration::from_millis(50);

/// The terminal and the screen's own state (keys, focus, theme); what it draws, the
/// [`Dashboard`], is handed in by whoever owns it.
pub struct Screen {
    terminal: Option<DefaultTerminal>,
    pub ui: UiState,
    last_draw: Option<Instant>,
    /// A frame is owed (output arrived within MIN_FRAME_GAP of the last one).
    pub owed: Option<Instant>,
}

/// Whether a screen can be shown: stdout and stdin are terminals.
pub fn available() -> Result<(), String> {
    if !std::io::stdout().is_terminal() {
        return Err("stdout is not a terminal".into());
    }
    if !std::io::stdin().is_terminal() {
        return Err("stdin is not a terminal (the screen needs keys)".into());
    }
    Ok(())
}

/// Screen or headless: the screen unless --headless, or unless there is no terminal (then it
/// says why, once, and the command runs headless).
pub fn wanted(headless: bool) -> bool {
    if headless {
        return false;
    }
    match available() {
        Ok(()) => true,
        Err(why) => {
            crate::app::say(&format!(
                "{why}: running headless (use --headless to say so)"
            ));
            false
        }
    }
}

impl Screen {
    /// Takes over the terminal and draws `dash`.
    pub fn start(dash: &Dashboard, ui: UiState) -> Result<Self, String> {
        available()?;
        let terminal = ratatui::try_init().map_err(|e| {
            ratatui::restore();
            format!("cannot start the screen: {e}")
        })?;
        let mut s = Self {
            terminal: Some(terminal),
            ui,
            last_draw: None,
            owed: None,
        };
        s.draw(dash);
        Ok(s)
    }

    /// Draws a frame now.
    pub fn draw(&mut self, d: &Dashboard) {
        let Some(t) = self.terminal.as_mut() else {
            return;
        };
        let ui = &self.ui;
        if t.draw(|f| render::draw(f, d, ui)).is_err() {
            // The terminal went away (hang-up): stop drawing, keep measuring.
            self.stop();
        }
        self.last_draw = Some(Instant::now());
        self.owed = None;
    }

    /// Draws now unless a frame was drawn within MIN_FRAME_GAP; then owes one at the gap's end.
    pub fn draw_soon(&mut self, d: &Dashboard) {
        let now = Instant::now();
        match self.last_draw {
            Some(t) if now < t + MIN_FRAME_GAP => {
                self.owed.get_or_insert(t + MIN_FRAME_GAP);
            }
            _ => self.draw(d),
        }
    }

    /// Draws an owed frame whose time has come.
    pub fn pay_owed(&mut self, d: &Dashboard) {
        if self.owed.is_some_and(|t| Instant::now() >= t) {
            self.draw(d);
        }
    }

    /// Gives the terminal back (idempotent).
    pub fn stop(&mut self) {
        if self.terminal.take().is_some() {
            ratatui::restore();
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `e`: writes a PNG report of what the screen holds to `dir` and says where on the status line.
/// samples.csv needs nothing: it is flushed every tick, so it is complete up to now.
pub fn export(
    sc: &mut Screen,
    d: &Dashboard,
    dir: &std::path::Path,
    meta: &crate::report::emissions::RunMeta,
) {
    let (png, csv) = match export_paths(dir, d.elapsed_s()) {
        Ok(p) => p,
        Err(e) => {
            sc.ui.flash = Some(format!("cannot export to {}: {e}", dir.display()));
            return;
        }
    };
    // The printable theme, whatever the screen shows.
    let theme = sc
        .ui
        .themes
        .iter()
        .find(|t| t.name == "light")
        .unwrap_or(sc.ui.theme())
        .clone();
    let snap = d.meter.snapshot();
    let run = crate::report::png::Run {
        meter: &d.meter,
        snap: &snap,
        cpu_estimate: d.info.cpu_estimate,
        cap_note: d.cap_note.as_deref(),
    };
    let wrote_png = crate::report::png::write(
        &run,
        &theme,
        &d.info.title,
        &png,
        crate::report::png::DEFAULT_SIZE,
    )
    .map_err(|e| format!("cannot write {}: {e}", png.display()));
    // The run so far as one CodeCarbon-format row (the same as emissions.csv at the end).
    let file = d.info.samples_path.clone().unwrap_or_default();
    let wrote_csv = crate::report::emissions::append(&csv, &file, &snap, meta)
        .map_err(|e| format!("cannot write {}: {e}", csv.display()));
    let msg = match (wrote_png, wrote_csv) {
        (Ok(()), Ok(())) => {
            let mut m = format!(
                "wrote {} and {} (CodeCarbon format)",
                png.display(),
                csv.display()
            );
            if let Some(p) = &d.info.samples_path {
                m.push_str(&format!(" · {p} is complete up to now"));
            }
            m
        }
        (Err(e), _) | (_, Err(e)) => e,
    };
    sc.ui.flash = Some(msg);
}

/// An export's PNG and CSV: `report-HH-MM-SS` after the run's elapsed time, then `-2`, `-3`, …
/// while an earlier export holds the name (one of this run's in the same second, or another
/// run's at the same elapsed time in the same directory). The CSV is created here, empty, so
/// two exports never share a file (issue 20: they appended duplicate rows to one).
pub fn export_paths(
    dir: &std::path::Path,
    elapsed_s: f64,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let stem = format!(
        "report-{}",
        crate::ui::render::clock(elapsed_s).replace(':', "-")
    );
    for k in 1..=1000 {
        let name = if k == 1 {
            stem.clone()
        } else {
            format!("{stem}-{k}")
        };
        let png = dir.join(format!("{name}.png"));
        let csv = dir.join(format!("{name}.csv"));
        if png.exists() {
            continue;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&csv)
        {
            Ok(_) => return Ok((png, csv)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "1,000 exports named {stem} already"
    )))
}

/// Reads terminal events on a thread of its own (blocking, so no polling loop) and hands each
/// to `emit` until it returns false.
pub fn spawn_input<F>(emit: F) -> Result<(), String>
where
    F: Fn(Event) -> bool + Send + 'static,
{
    std::thread::Builder::new()
        .name("carbontop-input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if !emit(ev) {
                    break;
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the input thread: {e}"))
}
