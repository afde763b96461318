//! Recordings summed by a key: `report --by-job` per SLURM job, user and account. Each
//! recording's figures are its Snapshot's (the totals `report` shows for it alone); here they
//! are only added up, so a job's figure is the sum of its nodes' and a user's the sum of their
//! jobs'. A recording made for a job (`record --slurm-job`, `run --tracking-mode process`)
//! counts its own share of the node; any other, the whole machine's.

use crate::engine::Snapshot;
use crate::units::{FacilityKwh, GramsCo2e};

/// What one recording adds: its facility energy and operational carbon (with PUE, at the
/// grid's intensity tick by tick), the command's or job's own where it holds them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub energy_kwh: FacilityKwh,
    pub co2e_g: GramsCo2e,
    pub duration_s: f64,
    /// The figures are the job's own share (tracking_mode process), not the machine's.
    pub own: bool,
}

impl Figures {
    /// `own`: the recording was made for its job or command (run.json's tracking_mode
    /// process); its own figures are taken where the Snapshot has them.
    pub fn of(s: &Snapshot, own: bool) -> Self {
        match s.command.filter(|_| own) {
            Some(c) => Figures {
                energy_kwh: c.energy_kwh,
                co2e_g: c.co2e_g,
                duration_s: s.elapsed_s,
                own: true,
            },
            None => Figures {
                energy_kwh: s.energy_kwh,
                co2e_g: s.co2e_g,
                duration_s: s.elapsed_s,
                own: false,
            },
        }
    }
}

/// A sum of recordings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    pub recordings: usize,
    /// Of those, the ones whose figures are their job's own share.
    pub own: usize,
    pub energy_kwh: FacilityKwh,
    pub co2e_g: GramsCo2e,
    /// The longest recording (a job's nodes record side by side: its wall time).
    pub longest_s: f64,
}

impl Tally {
    pub fn add(&mut self, f: &Figures) {
        self.recordings += 1;
        self.own += usize::from(f.own);
        self.energy_kwh += f.energy_kwh;
        self.co2e_g += f.co2e_g;
        self.longest_s = self.longest_s.max(f.duration_s);
    }

    /// Another sum's recordings added to this one (a user's jobs).
    pub fn merge(&mut self, o: &Tally) {
        self.recordings += o.recordings;
        self.own += o.own;
        self.energy_kwh += o.energy_kwh;
        self.co2e_g += o.co2e_g;
        self.longest_s = self.longest_s.max(o.longest_s);
    }

    /// `process` (every recording the job's own share), `machine` (none) or `mixed`.
    pub fn basis(&self) -> &'static str {
        match (self.own, self.recordings) {
            (0, _) => "machine",
            (o, n) if o == n => "process",
            _ => "mixed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_add_up_and_say_whose_figures_they_are() {
        let f = |kwh, g, s, own| Figures {
            energy_kwh: FacilityKwh(kwh),
            co2e_g: GramsCo2e(g),
            duration_s: s,
            own,
        };
        let mut job = Tally::default();
        job.add(&f(0.5, 200.0, 60.0, true));
        job.add(&f(0.25, 100.0, 90.0, true));
        assert_eq!(
            (job.energy_kwh, job.co2e_g),
            (FacilityKwh(0.75), GramsCo2e(300.0))
        );
        assert_eq!(
            (job.recordings, job.longest_s, job.basis()),
            (2, 90.0, "process")
        );
        let mut user = Tally::default();
        user.merge(&job);
        let mut other = Tally::default();
        other.add(&f(1.0, 400.0, 10.0, false));
        assert_eq!(other.basis(), "machine");
        user.merge(&other);
        assert_eq!(
            (user.energy_kwh, user.co2e_g),
            (FacilityKwh(1.75), GramsCo2e(700.0))
        );
        assert_eq!((user.recordings, user.basis()), (3, "mixed"));
    }
}
