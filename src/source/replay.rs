//! Replay: a samples.csv recorded by carbontop, played back through the same engine.
//!
//! The reader lives in `report::samples`; this module paces it and recovers the recording's PUE.

use crate::engine::CapLog;
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
            Ok(v) if v.is_finite() && v > 0.0 => Ok(Speed::Times(v)),
            _ => Err(format!(
                "{s:?} is not a speed: give a factor > 0 like 10 or 2.5x, or max"
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
}

impl Replay {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        Ok(Self {
            reader: SamplesReader::open(path)?,
            prev_elapsed: None,
            prev_recorded_kwh: None,
            inferred_pue: None,
        })
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
        self.infer_pue(&s, gap);
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

    fn infer_pue(&mut self, s: &Sample, gap: f64) {
        if self.inferred_pue.is_some() || gap <= 0.0 {
            return;
        }
        let (Some(before), Some(after)) =
            (self.prev_recorded_kwh, self.reader.recorded_energy_kwh())
        else {
            return;
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
            self.inferred_pue = Some((pue * 1e6).round() / 1e6);
        }
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
    }
}
