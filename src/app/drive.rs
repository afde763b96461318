//! The one driver loop of a measuring command: waits for the next event or deadline, hands it
//! to the [`Session`] with the time it came, and carries out the effects. Everything that
//! touches the world — the sampler, the command, the terminal, samples.csv, /metrics — is here
//! or in [`Output`]; the rules are in the Session.

use crate::app::child::{Child, ChildEvent};
use crate::app::feed::Feed;
use crate::app::screen::{self, Screen};
use crate::app::session::{Effect, Event, Session};
use crate::app::{AppError, say};
use crate::report::emissions::RunMeta;
use crate::report::samples::SamplesWriter;
use crate::report::summary::status_line;
use crate::serve::agents::Node;
use crate::source::grid::live::GridHandle;
use crate::source::sampler::SamplerEvent;
use ratatui::crossterm::event::Event as CtEvent;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// What the threads send the loop.
pub enum Raw {
    Sampler(SamplerEvent),
    /// A round of the agents' scrapes and when it was made.
    Agents(Vec<Node>, chrono::DateTime<chrono::Utc>),
    /// A feed thread other than the sampler stopped.
    Done,
    Child(ChildEvent),
    Signal(i32),
    Input(CtEvent),
}

/// Where the run is shown, chosen once: the screen, or a status line per tick on stderr.
pub enum Output {
    Screen(Box<Screen>),
    Headless { quiet: bool, cpu_estimate: bool },
}

impl Output {
    /// A frame the screen owes (output lines arriving fast), as a deadline.
    fn owed(&self) -> Option<Instant> {
        match self {
            Output::Screen(sc) => sc.owed,
            Output::Headless { .. } => None,
        }
    }

    fn pay_owed(&mut self, s: &Session) {
        if let Output::Screen(sc) = self {
            sc.pay_owed(&s.dash);
        }
    }

    /// A terminal event: the action its key asks for; other keys and resizes redraw.
    fn input(&mut self, e: CtEvent, s: &Session) -> Option<Event> {
        let Output::Screen(sc) = self else {
            return None;
        };
        let action = match e {
            CtEvent::Key(k) => sc.ui.handle_key(k, &s.dash, s.running()),
            _ => None,
        };
        if action.is_none() {
            sc.draw(&s.dash);
        }
        action.map(Event::Action)
    }

    /// Shows an effect; the others are the driver's.
    fn show(&mut self, fx: &Effect, s: &Session) {
        match (self, fx) {
            (Output::Headless { .. }, Effect::Warn(m)) => say(m),
            (Output::Headless { quiet: false, .. }, Effect::Note(m) | Effect::Info(m)) => say(m),
            (Output::Headless { quiet: false, .. }, Effect::Print(m)) => crate::errln!("{m}"),
            (
                Output::Headless {
                    quiet: false,
                    cpu_estimate,
                },
                Effect::Ticked,
            ) => {
                if let Some(t) = s.dash.last() {
                    crate::errln!("{}", status_line(t, *cpu_estimate));
                }
            }
            (Output::Screen(sc), Effect::Note(m)) => sc.ui.flash = Some(m.clone()),
            (Output::Screen(sc), Effect::Draw) => sc.draw(&s.dash),
            // At most a frame every MIN_FRAME_GAP: a replay at max speed ticks far faster.
            (Output::Screen(sc), Effect::Ticked | Effect::DrawSoon) => sc.draw_soon(&s.dash),
            _ => {}
        }
    }
}

/// The world the loop acts on.
pub struct Io {
    pub rx: Receiver<Raw>,
    /// The driver's clock: a Session's times are seconds since this.
    pub start: Instant,
    pub out: Output,
    pub feed: Feed,
    pub child: Option<Child>,
    pub grid: Option<GridHandle>,
    grid_seen: u64,
    pub writer: Option<SamplesWriter>,
    write_failed: bool,
    pub exporter: Option<crate::serve::Exporter>,
    /// Where `e` writes, and the machine facts its CSV row wants (read when first asked).
    pub export_dir: PathBuf,
    pub meta: Box<dyn Fn() -> RunMeta>,
}

impl Io {
    /// What every command has: its channel, clock, output and feed. The rest (a command, a
    /// live grid, samples.csv, /metrics, where `e` writes) is set by the commands that have it.
    pub fn new(rx: Receiver<Raw>, start: Instant, out: Output, feed: Feed) -> Self {
        Self {
            rx,
            start,
            out,
            feed,
            child: None,
            grid: None,
            grid_seen: 0,
            writer: None,
            write_failed: false,
            exporter: None,
            export_dir: PathBuf::from("."),
            meta: Box::new(RunMeta::default),
        }
    }

    /// What a message from a thread means to the Session (None: nothing for it).
    fn event(&mut self, raw: Option<Raw>, s: &Session) -> Option<Event> {
        Some(match raw {
            Some(Raw::Sampler(SamplerEvent::Sample(sample, warnings))) => {
                // The live provider's state, when it changed since the last tick.
                let grid = self.grid.as_ref().and_then(|h| {
                    let v = h.version();
                    (v != self.grid_seen).then(|| {
                        self.grid_seen = v;
                        h.view(sample.time)
                    })
                });
                Event::Sample {
                    sample,
                    warnings,
                    grid,
                }
            }
            Some(Raw::Sampler(SamplerEvent::Done) | Raw::Done) => Event::SamplerDone,
            Some(Raw::Agents(nodes, at)) => Event::Agents { nodes, at },
            Some(Raw::Child(c)) => Event::Child(c),
            Some(Raw::Signal(sig)) => Event::Signal(sig),
            Some(Raw::Input(e)) => return self.out.input(e, s),
            // The loop's own deadline, or a recording's next row.
            None => self.feed.take().unwrap_or(Event::Timer),
        })
    }

    /// Carries out one effect; true to leave the loop.
    fn apply(&mut self, fx: Effect, s: &mut Session) -> bool {
        self.out.show(&fx, s);
        match fx {
            Effect::Record(tick) => self.record(&tick, s),
            Effect::Export => {
                if let Output::Screen(sc) = &mut self.out {
                    screen::export(sc, &s.dash, &self.export_dir, &(self.meta)());
                }
            }
            Effect::SignalChild(sig) => {
                if let Some(c) = &self.child {
                    c.signal(sig);
                }
            }
            Effect::StopSampler => self.feed.stop(),
            Effect::Playback(a) => {
                if let Feed::Playback(p) = &mut self.feed {
                    let flash = p.control(a, s);
                    s.dash.info.mode = p.mode();
                    if let (Some(f), Output::Screen(sc)) = (flash, &mut self.out) {
                        sc.ui.flash = Some(f);
                    }
                }
            }
            Effect::Quit => return true,
            Effect::Warn(_)
            | Effect::Note(_)
            | Effect::Info(_)
            | Effect::Print(_)
            | Effect::Ticked
            | Effect::Draw
            | Effect::DrawSoon => {}
        }
        false
    }

    /// Writes the row and updates /metrics; a disk that refuses rows is said once per outage.
    fn record(&mut self, tick: &crate::engine::Tick, s: &mut Session) {
        #[cfg(debug_assertions)]
        crate::app::live::test_panic(tick.elapsed_s);
        if let Some(w) = self.writer.as_mut()
            && let Some(e) = crate::app::live::write_tick(w, tick, &mut self.write_failed)
        {
            // Said when the outage starts and ends; the summary has its own note on it.
            s.dash.warn(e.clone());
            self.out.show(&Effect::Warn(e), s);
        }
        if let Some(ex) = &self.exporter {
            ex.update(tick, &s.dash.meter.snapshot());
        }
    }
}

/// Runs the session until it says to quit or every sender is gone.
pub fn drive(s: &mut Session, io: &mut Io) -> Result<(), AppError> {
    loop {
        let due = s
            .next_deadline()
            .and_then(|t| io.start.checked_add(crate::app::feed::secs(t)));
        let deadline = [due, io.out.owed(), io.feed.due()]
            .into_iter()
            .flatten()
            .min();
        let Ok(raw) = crate::app::recv_until(&io.rx, deadline) else {
            return Ok(());
        };
        let now = io.start.elapsed().as_secs_f64();
        if let Some(ev) = io.event(raw, s) {
            for fx in s.handle(now, ev) {
                if io.apply(fx, s) {
                    return Ok(());
                }
            }
        }
        if let Feed::Playback(p) = &io.feed {
            s.dash.info.mode = p.mode();
        }
        io.out.pay_owed(s);
    }
}
