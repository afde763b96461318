//! What the person at the screen chose (theme, window, focus, overlays) and the keys that
//! change it. `handle_key` is pure: it updates the state and returns the effect, if any, for
//! the app loop to carry out (quit, interrupt the command, seek a replay).

use crate::ui::model::Dashboard;
use crate::ui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Chart time windows, `←`/`→` or `[`/`]` step through them; None = the whole run.
pub const WINDOWS: [Option<f64>; 7] = [
    Some(60.0),
    Some(300.0),
    Some(900.0),
    Some(3600.0),
    Some(6.0 * 3600.0),
    Some(24.0 * 3600.0),
    None,
];

pub fn window_label(w: Option<f64>) -> String {
    match w {
        None => "whole run".into(),
        Some(s) if s >= 3600.0 => format!("{:.0} h", s / 3600.0),
        Some(s) => format!("{:.0} min", s / 60.0),
    }
}

/// The panels `tab` moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Power,
    Totals,
    Intensity,
    Progress,
    Output,
}

const PANELS: [Panel; 5] = [
    Panel::Power,
    Panel::Totals,
    Panel::Intensity,
    Panel::Progress,
    Panel::Output,
];

/// What the app loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// Leave the screen (a running command is asked to stop first).
    Quit,
    /// Ctrl-C: what the terminal would do without the screen — SIGINT to the command.
    Interrupt,
    /// Replay: pause or resume playback.
    TogglePlay,
    /// Replay: jump by this many seconds of recording (negative: back).
    Seek(f64),
    /// Replay: multiply the speed.
    Speed(f64),
    /// Replay: back to the start.
    Restart,
    /// `e`: write a PNG report and a CodeCarbon-format CSV row of the run so far.
    Export,
    /// `+` / `-` / `r`: move the chosen GPUs' caps (None: all GPUs).
    Cap(CapKey, Option<usize>),
    /// `g`: the carbon governor on or off.
    ToggleGovernor,
}

/// A cap key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapKey {
    Up,
    Down,
    Default,
}

/// The screen's own state.
#[derive(Debug, Clone)]
pub struct UiState {
    pub themes: Vec<Theme>,
    pub theme: usize,
    pub window: usize,
    pub focus: Panel,
    pub zoom: bool,
    pub help: bool,
    pub output_shown: bool,
    /// Lines scrolled up from the bottom of the output pane.
    pub output_scroll: usize,
    /// The frozen view while `p` pauses it.
    pub frozen: Option<Box<Dashboard>>,
    /// `q` pressed while the command runs: waiting for a second `q`.
    pub confirm_quit: bool,
    /// A replay: enables the playback keys.
    pub replay: bool,
    /// A one-shot message for the status line (e.g. "theme: light").
    pub flash: Option<String>,
    /// Which GPU the cap keys act on (None: all), `c` cycles.
    pub cap_target: Option<usize>,
    /// That GPU's number as every output shows it (NVML's index), when known.
    cap_target_number: Option<u32>,
    /// The first cap change asks for the same key again; once confirmed, no more.
    pub cap_confirmed: bool,
    confirm_cap: Option<CapKey>,
}

impl UiState {
    pub fn new(themes: Vec<Theme>, theme: usize, replay: bool, output_shown: bool) -> Self {
        Self {
            themes,
            theme,
            window: WINDOWS.len() - 1,
            focus: Panel::Power,
            zoom: false,
            help: false,
            output_shown,
            output_scroll: 0,
            frozen: None,
            confirm_quit: false,
            replay,
            flash: None,
            cap_target: None,
            cap_target_number: None,
            cap_confirmed: false,
            confirm_cap: None,
        }
    }

    /// `+`, `-`, `r`: the first asks for confirmation (same key again).
    fn cap_key(&mut self, k: CapKey, pending: Option<CapKey>) -> Option<Effect> {
        if self.replay {
            self.flash = Some("replay: the caps are as recorded".into());
            return None;
        }
        if !self.cap_confirmed {
            if pending != Some(k) {
                self.confirm_cap = Some(k);
                let what = match k {
                    CapKey::Up => "raise",
                    CapKey::Down => "lower",
                    CapKey::Default => "reset",
                };
                let key = match k {
                    CapKey::Up => "+",
                    CapKey::Down => "-",
                    CapKey::Default => "r",
                };
                self.flash = Some(format!(
                    "press {key} again to {what} the power cap of {} (the original caps are put back on exit)",
                    self.cap_target_label()
                ));
                return None;
            }
            self.cap_confirmed = true;
        }
        Some(Effect::Cap(k, self.cap_target))
    }

    pub fn cap_target_label(&self) -> String {
        match self.cap_target {
            None => "all GPUs".into(),
            Some(i) => format!("GPU {}", self.cap_target_number.unwrap_or(i as u32)),
        }
    }

    pub fn theme(&self) -> &Theme {
        &self.themes[self.theme.min(self.themes.len().saturating_sub(1))]
    }

    pub fn window(&self) -> Option<f64> {
        WINDOWS[self.window.min(WINDOWS.len() - 1)]
    }

    fn panels(&self) -> Vec<Panel> {
        PANELS
            .into_iter()
            .filter(|p| *p != Panel::Output || self.output_shown)
            .collect()
    }

    /// Applies a key. `live` is the current dashboard (`p` freezes a copy of it);
    /// `command_running`: `q` asks before stopping a running command.
    pub fn handle_key(
        &mut self,
        k: KeyEvent,
        live: &Dashboard,
        command_running: bool,
    ) -> Option<Effect> {
        if k.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            return Some(Effect::Interrupt);
        }
        let was_confirming = std::mem::take(&mut self.confirm_quit);
        let pending_cap = self.confirm_cap.take();
        self.flash = None;
        if self.help {
            // Any key closes the overlay; q still quits.
            self.help = false;
            if !matches!(k.code, KeyCode::Char('q')) {
                return None;
            }
        }
        match k.code {
            KeyCode::Char('q') => {
                if command_running && !was_confirming {
                    self.confirm_quit = true;
                    return None;
                }
                return Some(Effect::Quit);
            }
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Esc => {
                self.zoom = false;
            }
            KeyCode::Char('p') => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(Box::new(live.clone())),
                };
            }
            KeyCode::Char('o') => {
                self.output_shown = !self.output_shown;
                self.output_scroll = 0;
                if !self.output_shown && self.focus == Panel::Output {
                    self.focus = Panel::Power;
                    self.zoom = false;
                }
            }
            KeyCode::Char('t') => {
                self.theme = (self.theme + 1) % self.themes.len().max(1);
                self.flash = Some(format!("theme: {}", self.theme().name));
            }
            KeyCode::Left | KeyCode::Char('[') => self.window = self.window.saturating_sub(1),
            KeyCode::Right | KeyCode::Char(']') => {
                self.window = (self.window + 1).min(WINDOWS.len() - 1);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let panels = self.panels();
                let i = panels.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = panels.len();
                let next = if k.code == KeyCode::BackTab {
                    (i + n - 1) % n
                } else {
                    (i + 1) % n
                };
                self.focus = panels[next];
            }
            KeyCode::Enter | KeyCode::Char('z') => self.zoom = !self.zoom,
            KeyCode::Up if self.focus == Panel::Output => self.output_scroll += 1,
            KeyCode::Down if self.focus == Panel::Output => {
                self.output_scroll = self.output_scroll.saturating_sub(1);
            }
            KeyCode::PageUp if self.focus == Panel::Output => self.output_scroll += 10,
            KeyCode::PageDown if self.focus == Panel::Output => {
                self.output_scroll = self.output_scroll.saturating_sub(10);
            }
            KeyCode::Char('e') => return Some(Effect::Export),
            KeyCode::Char('+') | KeyCode::Char('=') => {
                return self.cap_key(CapKey::Up, pending_cap);
            }
            KeyCode::Char('-') | KeyCode::Char('_') => {
                return self.cap_key(CapKey::Down, pending_cap);
            }
            KeyCode::Char('r') => return self.cap_key(CapKey::Default, pending_cap),
            KeyCode::Char('g') if !self.replay => return Some(Effect::ToggleGovernor),
            KeyCode::Char('c') if !self.replay => {
                let n = live.info.gpus.len();
                self.cap_target = match self.cap_target {
                    _ if n == 0 => None,
                    None => Some(0),
                    Some(i) if i + 1 < n => Some(i + 1),
                    Some(_) => None,
                };
                self.cap_target_number = self.cap_target.and_then(|i| live.meter.gpu_number(i));
                self.flash = Some(format!("cap keys act on {}", self.cap_target_label()));
            }
            KeyCode::Char(' ') if self.replay => return Some(Effect::TogglePlay),
            KeyCode::Char('.') if self.replay => return Some(Effect::Seek(60.0)),
            KeyCode::Char(',') if self.replay => return Some(Effect::Seek(-60.0)),
            KeyCode::Char('>') if self.replay => return Some(Effect::Speed(2.0)),
            KeyCode::Char('<') if self.replay => return Some(Effect::Speed(0.5)),
            KeyCode::Home if self.replay => return Some(Effect::Restart),
            KeyCode::End if self.replay => return Some(Effect::Seek(f64::INFINITY)),
            _ => {}
        }
        None
    }
}

/// Every key, for the `?` overlay: (keys, what they do, replay only).
pub const KEYS: &[(&str, &str, bool)] = &[
    ("q", "quit (asks first while the command runs)", false),
    ("Ctrl-C", "interrupt the command (SIGINT), or quit", false),
    ("?  F1", "this help (any key closes it)", false),
    ("p", "pause / follow the view (measuring goes on)", false),
    ("o", "show / hide the command's output", false),
    ("t", "next theme", false),
    ("e", "export PNG + CSV of the run so far", false),
    ("+ -  r", "GPU power cap up / down / to default", false),
    ("c", "cap keys act on: all GPUs, GPU 0, 1, …", false),
    ("g", "carbon-aware cap governor on / off", false),
    ("← →  [ ]", "chart window: 1 min … whole run", false),
    ("tab  shift-tab", "move between panels", false),
    ("enter  z", "zoom the focused panel (esc: back)", false),
    ("↑ ↓  PgUp PgDn", "scroll the output (when focused)", false),
    ("space", "pause / play the recording", true),
    (", .", "seek 1 min back / forward", true),
    ("< >", "half / double speed", true),
    ("home  end", "start / end of the recording", true),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::{Mode, RunInfo};

    fn dash() -> Dashboard {
        Dashboard::new(
            RunInfo {
                title: "t".into(),
                zone: "FR".into(),
                cpu_estimate: false,
                gpus: vec![],
                cap_mode: "no GPU".into(),
                samples_path: None,
                mode: Mode::Live,
            },
            crate::engine::Meter::new(Default::default(), true),
        )
    }

    fn press(ui: &mut UiState, c: KeyCode, running: bool) -> Option<Effect> {
        ui.handle_key(KeyEvent::new(c, KeyModifiers::NONE), &dash(), running)
    }

    fn ui(replay: bool) -> UiState {
        UiState::new(crate::ui::theme::builtins(), 0, replay, false)
    }

    #[test]
    fn quit_asks_first_while_the_command_runs() {
        let mut u = ui(false);
        assert_eq!(press(&mut u, KeyCode::Char('q'), false), Some(Effect::Quit));
        assert_eq!(press(&mut u, KeyCode::Char('q'), true), None);
        assert!(u.confirm_quit);
        // Any other key cancels.
        assert_eq!(press(&mut u, KeyCode::Char('x'), true), None);
        assert!(!u.confirm_quit);
        press(&mut u, KeyCode::Char('q'), true);
        assert_eq!(press(&mut u, KeyCode::Char('q'), true), Some(Effect::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(u.handle_key(ctrl_c, &dash(), true), Some(Effect::Interrupt));
    }

    #[test]
    fn view_keys() {
        let mut u = ui(false);
        assert_eq!(u.window(), None, "whole run by default");
        press(&mut u, KeyCode::Left, false);
        assert_eq!(u.window(), Some(86_400.0));
        for _ in 0..10 {
            press(&mut u, KeyCode::Char('['), false);
        }
        assert_eq!(u.window(), Some(60.0));
        press(&mut u, KeyCode::Char(']'), false);
        assert_eq!(window_label(u.window()), "5 min");

        press(&mut u, KeyCode::Char('t'), false);
        assert_eq!(u.theme().name, "light");
        assert_eq!(u.flash.as_deref(), Some("theme: light"));
        for _ in 0..2 {
            press(&mut u, KeyCode::Char('t'), false);
        }
        assert_eq!(u.theme().name, "default", "t cycles");

        press(&mut u, KeyCode::Char('p'), false);
        assert!(u.frozen.is_some());
        press(&mut u, KeyCode::Char('p'), false);
        assert!(u.frozen.is_none());

        press(&mut u, KeyCode::Char('?'), false);
        assert!(u.help);
        // Any key closes help and does nothing else.
        press(&mut u, KeyCode::Char('t'), false);
        assert!(!u.help);
        assert_eq!(u.theme().name, "default");
    }

    #[test]
    fn focus_zoom_and_output_scroll() {
        let mut u = ui(false);
        let order: Vec<Panel> = (0..5)
            .map(|_| {
                press(&mut u, KeyCode::Tab, false);
                u.focus
            })
            .collect();
        // Without the output pane, tab skips it.
        assert_eq!(
            order,
            [
                Panel::Totals,
                Panel::Intensity,
                Panel::Progress,
                Panel::Power,
                Panel::Totals
            ]
        );
        press(&mut u, KeyCode::BackTab, false);
        assert_eq!(u.focus, Panel::Power);
        press(&mut u, KeyCode::Char('o'), false);
        assert!(u.output_shown);
        press(&mut u, KeyCode::BackTab, false);
        assert_eq!(u.focus, Panel::Output);
        press(&mut u, KeyCode::Up, false);
        press(&mut u, KeyCode::PageUp, false);
        assert_eq!(u.output_scroll, 11);
        press(&mut u, KeyCode::PageDown, false);
        press(&mut u, KeyCode::Down, false);
        press(&mut u, KeyCode::Down, false);
        assert_eq!(u.output_scroll, 0);
        press(&mut u, KeyCode::Enter, false);
        assert!(u.zoom);
        press(&mut u, KeyCode::Esc, false);
        assert!(!u.zoom);
        // Hiding the pane moves focus off it.
        press(&mut u, KeyCode::Char('o'), false);
        assert_eq!(u.focus, Panel::Power);
    }

    #[test]
    fn playback_keys_only_in_replay() {
        let mut live = ui(false);
        assert_eq!(press(&mut live, KeyCode::Char(' '), false), None);
        assert_eq!(press(&mut live, KeyCode::Char('.'), false), None);
        let mut r = ui(true);
        assert_eq!(
            press(&mut r, KeyCode::Char(' '), false),
            Some(Effect::TogglePlay)
        );
        assert_eq!(
            press(&mut r, KeyCode::Char('.'), false),
            Some(Effect::Seek(60.0))
        );
        assert_eq!(
            press(&mut r, KeyCode::Char(','), false),
            Some(Effect::Seek(-60.0))
        );
        assert_eq!(
            press(&mut r, KeyCode::Char('>'), false),
            Some(Effect::Speed(2.0))
        );
        assert_eq!(
            press(&mut r, KeyCode::Char('<'), false),
            Some(Effect::Speed(0.5))
        );
        assert_eq!(press(&mut r, KeyCode::Home, false), Some(Effect::Restart));
        assert_eq!(
            press(&mut r, KeyCode::End, false),
            Some(Effect::Seek(f64::INFINITY))
        );
    }

    /// Everything a key can change, as text.
    fn view(u: &UiState) -> String {
        format!(
            "{:?}",
            (
                u.window,
                u.theme,
                u.focus,
                u.zoom,
                u.help,
                u.output_shown,
                u.output_scroll,
                u.frozen.is_some(),
                u.flash.is_some(),
                u.cap_target
            )
        )
    }

    #[test]
    fn the_first_cap_change_is_confirmed_and_replay_refuses() {
        let mut u = ui(false);
        assert_eq!(press(&mut u, KeyCode::Char('-'), false), None);
        assert!(
            u.flash
                .as_deref()
                .unwrap()
                .starts_with("press - again to lower")
        );
        // Another key in between cancels the question.
        assert_eq!(press(&mut u, KeyCode::Char('+'), false), None);
        assert_eq!(
            press(&mut u, KeyCode::Char('+'), false),
            Some(Effect::Cap(CapKey::Up, None))
        );
        // Confirmed once: later changes act at once.
        assert_eq!(
            press(&mut u, KeyCode::Char('r'), false),
            Some(Effect::Cap(CapKey::Default, None))
        );
        assert_eq!(
            press(&mut u, KeyCode::Char('g'), false),
            Some(Effect::ToggleGovernor)
        );
        let mut r = ui(true);
        assert_eq!(press(&mut r, KeyCode::Char('-'), false), None);
        assert_eq!(r.flash.as_deref(), Some("replay: the caps are as recorded"));
    }

    #[test]
    fn c_cycles_the_cap_target_through_the_gpus() {
        let mut d = dash();
        d.info.gpus = vec!["A".into(), "B".into()];
        let mut u = ui(false);
        let mut seen = Vec::new();
        for _ in 0..4 {
            u.handle_key(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE),
                &d,
                false,
            );
            seen.push(u.cap_target);
        }
        assert_eq!(seen, [Some(0), Some(1), None, Some(0)]);
    }

    #[test]
    fn every_key_in_help_is_handled() {
        // The overlay's list and the handler agree: each listed key does something.
        for (keys, _, replay_only) in KEYS {
            let mut u = ui(*replay_only);
            let first = keys.split_whitespace().next().unwrap_or("");
            let code = match first {
                "Ctrl-C" => continue,
                "←" => KeyCode::Left,
                "tab" => KeyCode::Tab,
                "enter" => KeyCode::Enter,
                "↑" => {
                    u.output_shown = true;
                    u.focus = Panel::Output;
                    KeyCode::Up
                }
                "space" => KeyCode::Char(' '),
                "home" => KeyCode::Home,
                "?" => KeyCode::Char('?'),
                k => KeyCode::Char(k.chars().next().unwrap_or(' ')),
            };
            let before = view(&u);
            let eff = press(&mut u, code, false);
            let after = view(&u);
            assert!(eff.is_some() || before != after, "key {keys} did nothing");
        }
    }
}
