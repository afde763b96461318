//! Grid carbon intensity. For now a fixed value or the embedded per-country table; live providers
//! (Electricity Maps, GB Carbon Intensity, WattTime) implement the same trait.

pub mod table;

use crate::sample::Intensity;
use chrono::{DateTime, Utc};

pub trait GridSource: Send {
    /// The intensity valid at `at`.
    fn intensity(&mut self, at: DateTime<Utc>) -> Intensity;
    /// Where the figure comes from, for the summary.
    fn describe(&self) -> String;
    fn take_warning(&mut self) -> Option<String> {
        None
    }
}

/// `--intensity G`: one figure for the whole run.
pub struct FixedIntensity(pub f64);

impl GridSource for FixedIntensity {
    fn intensity(&mut self, _at: DateTime<Utc>) -> Intensity {
        Intensity {
            g_per_kwh: self.0,
            source: "fixed".into(),
        }
    }

    fn describe(&self) -> String {
        format!("fixed {} gCO2e/kWh (--intensity)", self.0)
    }
}
