//! The screen's view model: the engine's Meter (every figure, made once) and what only the
//! screen keeps: the run's title and mode, the command's output lines, notices and warnings.
//! Built only from ticks (never from the wall clock), so a replay renders the same screen
//! every time and snapshots are exact.

pub use crate::engine::meter::{GREENER_HORIZON, GridInfo, Target, col};
use crate::engine::{Meter, Tick, Totals};
use std::collections::VecDeque;

/// Lines of the command's output the pane keeps (the whole log goes to output.log).
pub const OUTPUT_LINES: usize = 1000;
/// Longest output line kept for the pane, in bytes.
const OUTPUT_LINE_MAX: usize = 1000;

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
    /// The command's latest output lines (bounded).
    pub output: VecDeque<String>,
    /// Lines the pane dropped (they are still in output.log).
    pub output_dropped: u64,
    /// Standing notices (e.g. "CPU power is an estimate …").
    pub notices: Vec<String>,
    /// The latest warning and the elapsed time it came at.
    pub warning: Option<(String, f64)>,
    /// Why the run ended, once it has.
    pub ended: Option<String>,
    /// The governor's reason or the cap side's latest word (set by the app).
    pub cap_note: Option<String>,
}

impl Dashboard {
    pub fn new(info: RunInfo, meter: Meter) -> Self {
        Self {
            info,
            meter,
            output: VecDeque::new(),
            output_dropped: 0,
            notices: Vec::new(),
            warning: None,
            ended: None,
            cap_note: None,
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

    /// Adds a line of the command's output to the pane.
    pub fn push_output(&mut self, line: &str) {
        let mut l = line.trim_end_matches(['\n', '\r']).to_owned();
        // A progress bar redrawn with \r: keep what the terminal would show last.
        if let Some(pos) = l.rfind('\r') {
            l = l[pos + 1..].to_owned();
        }
        if l.len() > OUTPUT_LINE_MAX {
            let mut cut = OUTPUT_LINE_MAX;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            l.truncate(cut);
            l.push('…');
        }
        // Tabs and control characters would break the pane's layout.
        let l: String = l
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '·',
                c => c,
            })
            .collect();
        if self.output.len() == OUTPUT_LINES {
            self.output.pop_front();
            self.output_dropped += 1;
        }
        self.output.push_back(l);
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
        assert_eq!(d.output.front().map(String::as_str), Some("line 5"));
        d.push_output("10%|##   \r50%|#####\tx\u{1b}[0m\n");
        assert_eq!(d.output.back().map(String::as_str), Some("50%|##### x·[0m"));
        d.push_output(&"é".repeat(900));
        assert!(d.output.back().unwrap().ends_with('…'));
    }
}
