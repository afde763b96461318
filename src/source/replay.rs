//! Replay: a samples.csv recorded by carbontop, played back through the same engine.
//!
//! The reader lives in `report::samples`; this module paces it and recovers the recording's PUE.

use crate::engine::CapLog;
use crate::engine::constants::Bound;
use crate::report::samples::{ReadError, SamplesReader};
use crate::sample::Sample;
use std::path::Path;

/// Playback speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// × real time.
    Times(f64),
    /// As fast as possible.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let t = s.trim().trim_end_matches(['x', 'X']);
        match t.parse::<f64>() {
            Ok(v) => crate::engine::constants::SPEED_BOUND
                .check(v)
                .map(Speed::Times)
                .map_err(|e| format!("{s:?}: {e}, or max")),
            _ => Err(format!(
                "{s:?} is not a speed: give a factor like 10 or 2.5x, or max"
            )),
        }
    }
}

/// Replays a recording sample by sample.
pub struct Replay {
    reader: SamplesReader,
    prev_elapsed: Option<f64>,
    prev_recorded_kwh: Option<f64>,
    inferred_pue: Option<f64>,
    /// The user gives the PUE: the recording's is not inferred (nor checked).
    pue_given: bool,
}

impl Replay {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        Ok(Self {
            reader: SamplesReader::open(path)?,
            prev_elapsed: None,
            prev_recorded_kwh: None,
            inferred_pue: None,
            pue_given: false,
        })
    }

    /// The PUE is the user's (`--pue`): none is inferred from the recording.
    pub fn pue_given(&mut self, given: bool) {
        self.pue_given = given;
    }

    /// The recording's own metrics (`metric_<name>` columns).
    pub fn metric_names(&self) -> Vec<String> {
        self.reader.metric_names()
    }

    /// The recorded `embodied_co2e_g` of the row last read.
    pub fn embodied_g(&self) -> Option<f64> {
        self.reader.recorded_embodied_g()
    }

    /// The recorded `cap_change` of the row last read.
    pub fn cap_change(&self) -> &CapLog {
        self.reader.cap_change()
    }

    pub fn gpu_count(&self) -> usize {
        self.reader.gpu_count()
    }

    /// The recorded GPUs' numbers, in column order.
    pub fn gpu_ids(&self) -> &[u32] {
        self.reader.gpu_ids()
    }

    /// The line of a last row cut off mid-write and left out, once the end was reached.
    pub fn truncated_tail(&self) -> Option<u64> {
        self.reader.truncated_tail()
    }

    pub fn path(&self) -> &str {
        self.reader.path()
    }

    /// The next sample and the recorded gap since the previous one (seconds).
    pub fn next_sample(&mut self) -> Option<Result<(Sample, f64), ReadError>> {
        let s = match self.reader.next_sample()? {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let gap = self
            .prev_elapsed
            .map_or(0.0, |p| (s.elapsed_s - p).max(0.0));
        if let Err(e) = self.infer_pue(&s, gap) {
            return Some(Err(e));
        }
        self.prev_elapsed = Some(s.elapsed_s);
        self.prev_recorded_kwh = self.reader.recorded_energy_kwh();
        Some(Ok((s, gap)))
    }

    /// The PUE the recording was made with, once a row with energy has been read:
    /// Δenergy_kwh × 3.6e6 / (IT power × Δt) of the first interval that used energy.
    pub fn inferred_pue(&self) -> Option<f64> {
        self.inferred_pue
    }

    /// Sets the ledger's PUE to `explicit`, or else to the recording's once it is known.
    pub fn apply_pue(&self, ledger: &mut crate::engine::Ledger, explicit: Option<f64>) {
        if let Some(p) = explicit
            .or(self.inferred_pue)
            .map(crate::units::Pue::saturating)
            && p != ledger.config().pue
        {
            ledger.set_pue(p);
        }
    }

    /// The PUE the first interval that used energy implies, checked against
    /// [`PUE_BOUND`](crate::engine::constants::PUE_BOUND): one outside it is no facility's, and
    /// the recording is refused at that row rather than read with it (issue 20: a jump in
    /// `energy_kwh` inferred a PUE of 8,035,873 and then infinite energy).
    fn infer_pue(&mut self, s: &Sample, gap: f64) -> Result<(), ReadError> {
        if self.pue_given || self.inferred_pue.is_some() || gap <= 0.0 {
            return Ok(());
        }
        let (Some(before), Some(after)) =
            (self.prev_recorded_kwh, self.reader.recorded_energy_kwh())
        else {
            return Ok(());
        };
        let it_w: f64 = s
            .gpus
            .iter()
            .filter_map(|g| g.power.map(|p| p.watts().0))
            .sum::<f64>()
            + match &s.cpu {
                crate::sample::CpuReading::Power(p) => p.watts().0,
                _ => 0.0,
            }
            + s.mem.map_or(0.0, |m| m.watts().0)
            + s.net.and_then(|n| n.power).map_or(0.0, |p| p.watts().0);
        let it_j = it_w * gap;
        if it_j > 0.0 && after > before {
            let pue = (after - before) * crate::engine::constants::J_PER_KWH / it_j;
            // Round away float noise: PUEs are given to a few decimals.
            let pue = (pue * 1e6).round() / 1e6;
            // Up to 1% under 1 is the recorded figures' rounding, read as no overhead.
            let pue = if (0.99..1.0).contains(&pue) { 1.0 } else { pue };
            if crate::engine::constants::PUE_BOUND.check(pue).is_err() {
                let b = crate::engine::constants::PUE_BOUND;
                return Err(ReadError::Cell {
                    path: self.reader.path().to_owned(),
                    line: self.reader.line(),
                    column: "energy_kwh".into(),
                    msg: format!(
                        "rises by {} kWh over {gap} s at {it_w} W of IT power: a PUE of {}, \
                         and {} is {} (give --pue to read it with one)",
                        Bound::show(after - before),
                        Bound::show(pue),
                        b.what,
                        b.range()
                    ),
                });
            }
            self.inferred_pue = Some(pue);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("10".parse::<Speed>(), Ok(Speed::Times(10.0)));
        assert_eq!("2.5x".parse::<Speed>(), Ok(Speed::Times(2.5)));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
        // Issue 20: `--speed 1e-30` panicked converting a row's wait to a Duration.
        for bad in ["1e-30", "1e-300", "1e300", "inf", "NaN", "-2"] {
            let e = bad.parse::<Speed>().unwrap_err();
            assert!(e.contains("from 0.001 to 1000000"), "{bad}: {e}");
        }
        assert_eq!("0.001".parse::<Speed>(), Ok(Speed::Times(0.001)));
    }
}
