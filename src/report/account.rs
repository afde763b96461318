//! Accounts a whole recording: samples.csv → Ledger totals and the facts a report needs.

use crate::engine::{Ledger, LedgerConfig, Totals};
use crate::report::samples::ReadError;
use crate::sample::Progress;
use crate::source::replay::Replay;
use chrono::{DateTime, Utc};
use std::path::Path;

/// A recording, accounted.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub file: String,
    pub totals: Totals,
    pub pue: f64,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub gpu_count: usize,
    /// Mean GPU utilisation over the ticks that report one (percent).
    pub gpu_util_mean: Option<f64>,
    pub last_progress: Progress,
}

impl Account {
    /// Interval-average power of a component over the run (W).
    pub fn mean_power_w(&self, joules: f64) -> Option<f64> {
        (self.totals.elapsed_s > 0.0).then(|| joules / self.totals.elapsed_s)
    }
}

/// Streams `path` through the Ledger (bounded memory, whatever the file's length).
pub fn account_file(path: &Path, pue: Option<f64>) -> Result<Account, ReadError> {
    let mut rp = Replay::open(path)?;
    let mut ledger = Ledger::new(LedgerConfig {
        pue: pue.unwrap_or(1.0),
        ..Default::default()
    });
    let (mut start, mut end) = (None, None);
    let (mut util_sum, mut util_n) = (0.0, 0u64);
    let mut progress = Progress::default();
    while let Some(next) = rp.next_sample() {
        let (s, _) = next?;
        rp.apply_pue(&mut ledger, pue);
        start.get_or_insert(s.time);
        end = Some(s.time);
        for g in &s.gpus {
            if let Some(u) = g.util_pct {
                util_sum += u;
                util_n += 1;
            }
        }
        progress.merge(&s.progress);
        ledger.push(s);
    }
    Ok(Account {
        file: rp.path().to_owned(),
        totals: ledger.totals(),
        pue: ledger.config().pue,
        start,
        end,
        gpu_count: rp.gpu_count(),
        gpu_util_mean: (util_n > 0).then(|| util_sum / util_n as f64),
        last_progress: progress,
    })
}
