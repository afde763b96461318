//! The one actuator (DESIGN.md §2, §9): GPU power caps. A `PowerCap` reads constraints and
//! limits and sets them — through NVML on real GPUs (directly as root, else through `carbontop
//! capd`: `capd.rs`), or on the simulated GPUs that follow Zeus's measured A40 curves.
//! `CapControl` is the only way the program changes a cap: within the constraints, every change
//! logged (who, GPU, old, new), and the original caps put back when it is dropped — on quit,
//! Ctrl-C, SIGTERM, SIGHUP and panic (unwinding drops it).

pub mod capd;
pub mod governor;
pub mod nvml;
pub mod oracle;
pub mod profile;
pub mod sim;

pub use crate::engine::caplog::{CapLog, Change, Who};

/// A GPU's allowed range and its default (W).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapLimits {
    pub min_w: f64,
    pub max_w: f64,
    pub default_w: f64,
}

/// Why a cap could not be read or set, or the actuator not opened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapError {
    /// NVML refused: setting caps needs root. Remembered by `CapControl`.
    #[error(
        "no permission to change GPU power caps: run carbontop as root (sudo), with persistence mode on (nvidia-smi -pm 1)"
    )]
    NoPermission,
    /// This GPU has no settable cap. Remembered by `CapControl`.
    #[error("this GPU does not support setting a power cap")]
    NotSupported,
    /// Every GPU's range is unknown, so nothing can be changed.
    #[error("these GPUs report no power-cap range: caps cannot be changed")]
    NoRange,
    /// The GPU fell off the bus.
    #[error("GPU {0} is lost")]
    Lost(usize),
    /// No such GPU (an index past the last).
    #[error("no {}GPU {gpu}", if *.simulated { "simulated " } else { "" })]
    NoSuchGpu { gpu: usize, simulated: bool },
    /// A cap outside the simulated GPU's range.
    #[error("{watts} W is outside the simulated GPU's {min_w}–{max_w} W")]
    OutOfRange { watts: f64, min_w: f64, max_w: f64 },
    /// The simulated GPUs' state file could not be written.
    #[error("simulated GPU state {}: {reason}", .path.display())]
    StateFile {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The simulated GPUs' embedded measurements are missing.
    #[error("the embedded Zeus A40 measurements could not be read")]
    NoCurve,
    /// NVML could not be opened (the text says why, as the GPU source does).
    #[error("{0}")]
    Unavailable(String),
    /// Any other NVML failure.
    #[error("NVML: {0}")]
    Nvml(String),
    /// capd could not be reached or answered nonsense (the text names its socket).
    #[error("{0}")]
    Capd(String),
    /// capd refused the request (the text says why and what to do).
    #[error("capd refused: {0}")]
    Refused(String),
}

/// Reads and sets power caps.
pub trait PowerCap: Send {
    fn count(&self) -> usize;
    fn limits(&self, gpu: usize) -> Result<CapLimits, CapError>;
    /// The cap in force now (W).
    fn get(&mut self, gpu: usize) -> Result<f64, CapError>;
    /// Sets the cap (W); callers keep within `limits`.
    fn set(&mut self, gpu: usize, watts: f64) -> Result<(), CapError>;
    /// GPU `gpu` (its position here) as every output numbers it: NVML's index, as nvidia-smi
    /// shows it.
    fn number(&self, gpu: usize) -> usize {
        gpu
    }
}

/// Which GPUs a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    All,
    Gpu(usize),
}

/// The caps carbontop may change, what they were at start, and the log of changes.
pub struct CapControl {
    act: Box<dyn PowerCap>,
    limits: Vec<Option<CapLimits>>,
    /// The caps in force when carbontop started: put back on exit.
    originals: Vec<Option<f64>>,
    current: Vec<Option<f64>>,
    restore_on_exit: bool,
    /// Changes not yet written to samples.csv.
    pending: Vec<Change>,
    /// Why caps cannot be changed, once that is known (said instead of acting).
    refused: Option<CapError>,
}

impl CapControl {
    /// Reads every GPU's limits and present cap. `restore_on_exit` false is `--no-restore`.
    pub fn new(mut act: Box<dyn PowerCap>, restore_on_exit: bool) -> Self {
        let n = act.count();
        let limits: Vec<_> = (0..n).map(|i| act.limits(i).ok()).collect();
        let originals: Vec<_> = (0..n).map(|i| act.get(i).ok()).collect();
        let refused = (limits.iter().all(Option::is_none) && n > 0).then_some(CapError::NoRange);
        Self {
            current: originals.clone(),
            act,
            limits,
            originals,
            restore_on_exit,
            pending: Vec::new(),
            refused,
        }
    }

    pub fn count(&self) -> usize {
        self.limits.len()
    }

    pub fn limits(&self, gpu: usize) -> Option<CapLimits> {
        self.limits.get(gpu).copied().flatten()
    }

    pub fn current(&self, gpu: usize) -> Option<f64> {
        self.current.get(gpu).copied().flatten()
    }

    /// Why nothing can be changed, if so.
    pub fn refused(&self) -> Option<&CapError> {
        self.refused.as_ref()
    }

    /// The range every targeted GPU accepts (the narrowest), for the governor.
    pub fn common_limits(&self) -> Option<CapLimits> {
        let mut it = self.limits.iter().flatten();
        let first = *it.next()?;
        Some(it.fold(first, |a, l| CapLimits {
            min_w: a.min_w.max(l.min_w),
            max_w: a.max_w.min(l.max_w),
            default_w: a.default_w.min(l.default_w),
        }))
    }

    fn targets(&self, t: Target) -> Vec<usize> {
        match t {
            Target::All => (0..self.count()).collect(),
            Target::Gpu(i) if i < self.count() => vec![i],
            Target::Gpu(_) => vec![],
        }
    }

    /// Sets `target` to `watts`, clamped to each GPU's range. Returns the changes made; an error
    /// says why not (permission is remembered: later calls say it without trying).
    pub fn set(&mut self, target: Target, watts: f64, who: Who) -> Result<Vec<Change>, CapError> {
        self.apply(target, who, |_, _| watts)
    }

    /// Moves `target` by `delta_w` from its present cap.
    pub fn step(
        &mut self,
        target: Target,
        delta_w: f64,
        who: Who,
    ) -> Result<Vec<Change>, CapError> {
        self.apply(target, who, |cur, _| cur + delta_w)
    }

    /// Puts `target` back to each GPU's default cap.
    pub fn to_default(&mut self, target: Target, who: Who) -> Result<Vec<Change>, CapError> {
        self.apply(target, who, |_, l| l.default_w)
    }

    fn apply(
        &mut self,
        target: Target,
        who: Who,
        want: impl Fn(f64, CapLimits) -> f64,
    ) -> Result<Vec<Change>, CapError> {
        if let Some(r) = &self.refused {
            return Err(r.clone());
        }
        let mut done = Vec::new();
        for i in self.targets(target) {
            let (Some(l), Some(cur)) = (self.limits(i), self.current(i)) else {
                continue;
            };
            let new = want(cur, l).clamp(l.min_w, l.max_w).round();
            if (new - cur).abs() < 0.5 {
                continue;
            }
            match self.act.set(i, new) {
                Ok(()) => {
                    self.current[i] = Some(new);
                    let c = Change {
                        who,
                        gpu: i,
                        old_w: cur,
                        new_w: new,
                    };
                    self.pending.push(c.clone());
                    done.push(c);
                }
                Err(e) => {
                    if matches!(e, CapError::NoPermission | CapError::NotSupported) {
                        self.refused = Some(e.clone());
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Changes since the last call, for the tick's `cap_change`.
    pub fn take_log(&mut self) -> CapLog {
        CapLog(std::mem::take(&mut self.pending))
    }

    /// Whether any cap differs from what it was at start.
    pub fn changed(&self) -> bool {
        self.current
            .iter()
            .zip(&self.originals)
            .any(|(c, o)| c != o)
    }

    /// Puts every changed cap back as it was at start; the errors, if any.
    pub fn restore(&mut self) -> Vec<String> {
        let mut errs = Vec::new();
        for i in 0..self.count() {
            if let (Some(o), Some(c)) = (self.originals[i], self.current[i])
                && (o - c).abs() >= 0.5
            {
                match self.act.set(i, o) {
                    Ok(()) => {
                        self.current[i] = Some(o);
                        self.pending.push(Change {
                            who: Who::Restore,
                            gpu: i,
                            old_w: c,
                            new_w: o,
                        });
                    }
                    Err(e) => errs.push(format!(
                        "GPU {}: cannot restore the {o:.0} W cap: {e}",
                        self.act.number(i)
                    )),
                }
            }
        }
        errs
    }

    /// [`restore`](Self::restore), and the changes it made (also left in the log, for the
    /// row the restore happens in).
    pub fn restore_logged(&mut self) -> (CapLog, Vec<String>) {
        let from = self.pending.len();
        let errs = self.restore();
        (CapLog(self.pending[from..].to_vec()), errs)
    }

    /// `--no-restore` state.
    pub fn restores_on_exit(&self) -> bool {
        self.restore_on_exit
    }
}

impl Drop for CapControl {
    fn drop(&mut self) {
        if self.restore_on_exit {
            for e in self.restore() {
                crate::errln!("carbontop: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An actuator that records every set.
    struct Fake {
        caps: Arc<Mutex<Vec<f64>>>,
        deny: bool,
    }

    impl PowerCap for Fake {
        fn count(&self) -> usize {
            self.caps.lock().unwrap().len()
        }
        fn limits(&self, _: usize) -> Result<CapLimits, CapError> {
            Ok(CapLimits {
                min_w: 100.0,
                max_w: 300.0,
                default_w: 300.0,
            })
        }
        fn get(&mut self, i: usize) -> Result<f64, CapError> {
            Ok(self.caps.lock().unwrap()[i])
        }
        fn set(&mut self, i: usize, w: f64) -> Result<(), CapError> {
            if self.deny {
                return Err(CapError::NoPermission);
            }
            self.caps.lock().unwrap()[i] = w;
            Ok(())
        }
    }

    fn control(deny: bool) -> (CapControl, Arc<Mutex<Vec<f64>>>) {
        let caps = Arc::new(Mutex::new(vec![300.0, 250.0]));
        let f = Fake {
            caps: caps.clone(),
            deny,
        };
        (CapControl::new(Box::new(f), true), caps)
    }

    #[test]
    fn steps_clamp_log_and_restore_on_drop() {
        let (mut c, caps) = control(false);
        let ch = c.step(Target::All, -10.0, Who::User).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(*caps.lock().unwrap(), vec![290.0, 240.0]);
        assert_eq!(
            c.take_log().to_string(),
            "user gpu0 300->290 W; user gpu1 250->240 W"
        );
        assert!(c.take_log().is_empty());
        // Clamped to the range; a no-op is not logged.
        c.set(Target::Gpu(1), 50.0, Who::Governor).unwrap();
        assert_eq!(caps.lock().unwrap()[1], 100.0);
        assert!(
            c.set(Target::Gpu(1), 40.0, Who::Governor)
                .unwrap()
                .is_empty()
        );
        c.to_default(Target::Gpu(0), Who::User).unwrap();
        assert_eq!(caps.lock().unwrap()[0], 300.0);
        assert!(c.changed());
        drop(c);
        assert_eq!(*caps.lock().unwrap(), vec![300.0, 250.0], "originals back");
    }

    #[test]
    fn no_restore_leaves_the_caps() {
        let caps = Arc::new(Mutex::new(vec![300.0]));
        let mut c = CapControl::new(
            Box::new(Fake {
                caps: caps.clone(),
                deny: false,
            }),
            false,
        );
        c.step(Target::All, -50.0, Who::User).unwrap();
        drop(c);
        assert_eq!(*caps.lock().unwrap(), vec![250.0]);
    }

    #[test]
    fn permission_is_said_and_remembered() {
        let (mut c, _) = control(true);
        let e = c.step(Target::All, -10.0, Who::User).unwrap_err();
        assert_eq!(e, CapError::NoPermission);
        let e = e.to_string();
        assert!(e.contains("root") && e.contains("nvidia-smi -pm 1"), "{e}");
        assert_eq!(c.refused().map(ToString::to_string), Some(e.clone()));
        assert_eq!(
            c.step(Target::All, 10.0, Who::User)
                .unwrap_err()
                .to_string(),
            e
        );
    }

    /// GPUs whose range cannot be read.
    struct NoLimits;

    impl PowerCap for NoLimits {
        fn count(&self) -> usize {
            2
        }
        fn limits(&self, _: usize) -> Result<CapLimits, CapError> {
            Err(CapError::NotSupported)
        }
        fn get(&mut self, _: usize) -> Result<f64, CapError> {
            Ok(250.0)
        }
        fn set(&mut self, _: usize, _: f64) -> Result<(), CapError> {
            Ok(())
        }
    }

    #[test]
    fn no_range_is_refused_as_a_variant() {
        let mut c = CapControl::new(Box::new(NoLimits), false);
        assert_eq!(c.refused(), Some(&CapError::NoRange));
        assert_eq!(
            c.set(Target::All, 200.0, Who::User)
                .unwrap_err()
                .to_string(),
            "these GPUs report no power-cap range: caps cannot be changed"
        );
    }
}
