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
    /// The first accuracy the run reported (percent), for the cost per point gained.
    pub first_accuracy: Option<f64>,
    /// The line of a last row cut off mid-write (the recorder killed or out of disk), left out.
    pub truncated_tail: Option<u64>,
}

impl Account {
    /// Interval-average power of a component over the run (W).
    pub fn mean_power_w(&self, joules: f64) -> Option<f64> {
        (self.totals.elapsed_s > 0.0).then(|| joules / self.totals.elapsed_s)
    }
}

/// What a run's summary needs beyond the Ledger's totals, gathered sample by sample.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    util_sum: f64,
    util_n: u64,
    pub progress: Progress,
    first_accuracy: Option<f64>,
}

impl RunStats {
    pub fn observe(&mut self, s: &crate::sample::Sample) {
        self.start.get_or_insert(s.time);
        self.end = Some(s.time);
        for u in s.gpus.iter().filter_map(|g| g.util_pct) {
            self.util_sum += u;
            self.util_n += 1;
        }
        self.progress.merge(&s.progress);
        if self.first_accuracy.is_none() {
            self.first_accuracy = s.progress.accuracy;
        }
    }

    /// The account of a run whose ledger ended with `totals`.
    pub fn into_account(self, file: String, totals: Totals, pue: f64, gpu_count: usize) -> Account {
        Account {
            file,
            totals,
            pue,
            start: self.start,
            end: self.end,
            gpu_count,
            gpu_util_mean: (self.util_n > 0).then(|| self.util_sum / self.util_n as f64),
            last_progress: self.progress,
            first_accuracy: self.first_accuracy,
            truncated_tail: None,
        }
    }
}

/// Streams `path` through the Ledger (bounded memory, whatever the file's length).
pub fn account_file(path: &Path, pue: Option<f64>) -> Result<Account, ReadError> {
    let mut rp = Replay::open(path)?;
    let mut ledger = Ledger::new(LedgerConfig {
        pue: pue.unwrap_or(1.0),
        ..Default::default()
    });
    let mut stats = RunStats::default();
    while let Some(next) = rp.next_sample() {
        let (s, _) = next?;
        rp.apply_pue(&mut ledger, pue);
        stats.observe(&s);
        ledger.push(s);
    }
    let mut a = stats.into_account(
        rp.path().to_owned(),
        ledger.totals(),
        ledger.config().pue,
        rp.gpu_count(),
    );
    a.truncated_tail = rp.truncated_tail();
    Ok(a)
}
