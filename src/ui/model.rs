//! The screen's view model: the engine's Meter (every figure, made once) and what only the
//! screen keeps: the run's title and mode, the command's output lines, notices and warnings.
//! Built only from ticks (never from the wall clock), so a replay renders the same screen
//! every time and snapshots are exact.

pub use crate::engine::meter::{GREENER_HORIZON, GridInfo, Target, col};
use crate::engine::{Meter, Tick, Totals};
use crate::source::term::{Shown, Stream, StyledLine};
use std::collections::VecDeque;

/// Lines of the command's output the pane keeps (the whole log goes to output.log).
pub const OUTPUT_LINES: usize = 1000;

/// What the screen is watching.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `run -- CMD` or `watch`: live.
    Live,
    /// `replay FILE`.
    Replay {
        speed: Option<f64>,
        playing: bool,
        ended: bool,
    },
}

/// Facts fixed at start, as the screen names them.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// e.g. "run `python3 train.py`", "watch", "replay a.csv".
    pub title: String,
    /// Grid zone and where its intensity comes from (e.g. "WORLD · table (Ember 2022)").
    pub zone: String,
    pub cpu_estimate: bool,
    /// GPU names, one per GPU column group.
    pub gpus: Vec<String>,
    /// What is happening to power caps ("caps untouched" until the governor exists).
    pub cap_mode: String,
    /// Where samples.csv goes, if anywhere.
    pub samples_path: Option<String>,
    pub mode: Mode,
}

/// Everything the panels show: the Meter's figures and the screen's own state.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub info: RunInfo,
    pub meter: Meter,
    /// The command's latest final output lines (bounded), as a terminal shows them.
    pub output: VecDeque<StyledLine>,
    /// Lines the pane dropped (they are still in output.log).
    pub output_dropped: u64,
    /// The rows each of the command's streams may still redraw (a progress bar in its latest
    /// state), stdout's then stderr's: shown below the final lines, as on a terminal.
    pub output_live: [Vec<StyledLine>; 2],
    /// Standing notices (e.g. "CPU power is an estimate …").
    pub notices: Vec<String>,
    /// The latest warning and the elapsed time it came at.
    pub warning: Option<(String, f64)>,
    /// Why the run ended, once it has.
    pub ended: Option<String>,
    /// The governor's reason or the cap side's latest word (set by the app).
    pub cap_note: Option<String>,
    /// The governor against its limit (the oracle so far, and over the forecast): (key, text).
    pub cap_limits: Vec<(&'static str, String)>,
}

impl Dashboard {
    pub fn new(info: RunInfo, meter: Meter) -> Self {
        Self {
            info,
            meter,
            output: VecDeque::new(),
            output_dropped: 0,
            output_live: [Vec::new(), Vec::new()],
            notices: Vec::new(),
            warning: None,
            ended: None,
            cap_note: None,
            cap_limits: Vec::new(),
        }
    }

    /// Folds one tick (and the Ledger's totals after it) in.
    pub fn push(&mut self, t: &Tick, totals: Totals) {
        self.meter.push(t, totals);
    }

    /// The last tick, if any.
    pub fn last(&self) -> Option<&Tick> {
        self.meter.last.as_ref()
    }

    /// Adds a line of text to the pane (control characters applied, as a terminal would).
    pub fn push_output(&mut self, line: &str) {
        self.push_line(StyledLine::plain(line));
    }

    fn push_line(&mut self, line: StyledLine) {
        if self.output.len() == OUTPUT_LINES {
            self.output.pop_front();
            self.output_dropped += 1;
        }
        self.output.push_back(line);
    }

    /// What a chunk of the command's output changed: its final lines, and the rows it may still
    /// redraw.
    pub fn show_output(&mut self, stream: Stream, shown: Shown) {
        for l in shown.done {
            self.push_line(l);
        }
        if let Some(live) = shown.live {
            self.output_live[stream.index()] = live;
        }
    }

    /// The pane's lines: the final ones, then the rows still being drawn.
    pub fn output_rows(&self) -> impl Iterator<Item = &StyledLine> {
        self.output
            .iter()
            .chain(self.output_live.iter().flat_map(|l| l.iter()))
    }

    pub fn output_len(&self) -> usize {
        self.output.len() + self.output_live.iter().map(Vec::len).sum::<usize>()
    }

    pub fn warn(&mut self, w: String) {
        let at = self.meter.elapsed_s();
        self.warning = Some((w, at));
    }

    pub fn elapsed_s(&self) -> f64 {
        self.meter.elapsed_s()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Basis, Meter};

    #[test]
    fn output_pane_is_bounded_and_sanitised() {
        let mut d = Dashboard::new(
            RunInfo {
                title: "t".into(),
                zone: "FR".into(),
                cpu_estimate: true,
                gpus: vec![],
                cap_mode: "caps untouched".into(),
                samples_path: None,
                mode: Mode::Live,
            },
            Meter::new(Basis::default(), true),
        );
        for i in 0..(OUTPUT_LINES + 5) {
            d.push_output(&format!("line {i}\n"));
        }
        assert_eq!(d.output.len(), OUTPUT_LINES);
        assert_eq!(d.output_dropped, 5);
        assert_eq!(d.output.front().map(|l| l.text.as_str()), Some("line 5"));
        d.push_output("10%|##   \r50%|#####\tx\u{1b}[0m\n");
        assert_eq!(
            d.output.back().map(|l| l.text.as_str()),
            Some("50%|#####       x")
        );
        d.push_output(&"é".repeat(1200));
        assert!(d.output.back().unwrap().text.ends_with('…'));
        // A bar being redrawn shows below the final lines, in its latest state.
        let mut t = crate::source::term::Term::new(true);
        d.show_output(Stream::Err, t.feed(b"\r 10%|#\r 20%|##", false).shown);
        let mut out = crate::source::term::Term::new(true);
        d.show_output(
            Stream::Out,
            out.feed(b"{'eval_accuracy': 0.8}\n", false).shown,
        );
        let rows: Vec<_> = d.output_rows().map(|l| l.text.as_str()).collect();
        assert_eq!(
            rows[rows.len() - 2..],
            ["{'eval_accuracy': 0.8}", " 20%|##"]
        );
        assert_eq!(d.output_len(), OUTPUT_LINES + 1);
        d.show_output(Stream::Err, t.finish().shown);
        assert_eq!(d.output.back().map(|l| l.text.as_str()), Some(" 20%|##"));
        assert!(d.output_live.iter().all(Vec::is_empty));
    }
}
