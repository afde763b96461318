//! What the carbon governor saved against running uncapped (DESIGN.md §5, after Zeus): the
//! energy and carbon of the governed work and of the same work at the maximum cap, from the
//! governor's measured profile. The governor (`control/governor.rs`) decides; the figures it
//! reports are made here, with the rest of the engine's.

use crate::engine::constants::J_PER_KWH;

/// The carbon saved against running uncapped, estimated from the profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Savings {
    /// GPU energy used while governing (J) and what the same work would have used at the
    /// maximum cap.
    pub energy_j: f64,
    pub uncapped_energy_j: f64,
    /// Operational carbon of both (g, before PUE).
    pub co2e_g: f64,
    pub uncapped_co2e_g: f64,
    /// Time governed (s) and what the same work would have taken at the maximum cap.
    pub time_s: f64,
    pub uncapped_time_s: f64,
}

impl Savings {
    /// One governed interval of `dt` s at `w` W of GPU power and `throughput`, at intensity
    /// `i`: its energy and carbon, and what the same work would have cost uncapped, at the
    /// profile's maximum cap (`max_w` for `max_throughput`): E_max = work × P_max / T_max,
    /// C = E × I (GPU energy, before PUE).
    pub fn record(
        &mut self,
        w: f64,
        dt: f64,
        throughput: f64,
        max_w: f64,
        max_throughput: f64,
        i: f64,
    ) {
        let work = throughput * dt;
        self.energy_j += w * dt;
        self.co2e_g += w * dt / J_PER_KWH * i;
        let e_max = work * max_w / max_throughput;
        self.uncapped_energy_j += e_max;
        self.uncapped_co2e_g += e_max / J_PER_KWH * i;
        self.time_s += dt;
        self.uncapped_time_s += work / max_throughput;
    }

    /// Adds another stretch of governing (a governor switched off and on again).
    pub fn add(&mut self, o: &Savings) {
        self.energy_j += o.energy_j;
        self.uncapped_energy_j += o.uncapped_energy_j;
        self.co2e_g += o.co2e_g;
        self.uncapped_co2e_g += o.uncapped_co2e_g;
        self.time_s += o.time_s;
        self.uncapped_time_s += o.uncapped_time_s;
    }

    pub fn saved_g(&self) -> f64 {
        self.uncapped_co2e_g - self.co2e_g
    }
    pub fn saved_pct(&self) -> f64 {
        if self.uncapped_co2e_g > 0.0 {
            self.saved_g() / self.uncapped_co2e_g * 100.0
        } else {
            0.0
        }
    }
    pub fn extra_time_pct(&self) -> f64 {
        if self.uncapped_time_s > 0.0 {
            (self.time_s / self.uncapped_time_s - 1.0) * 100.0
        } else {
            0.0
        }
    }
}

/// The most slots [`Seen`] keeps: past it, neighbours are merged in pairs (time-weighted), so
/// a week of one-second ticks stays a few kilobytes and the oracle over it stays quick (its
/// cost grows with the slots times the slot boundaries inside the slowdown: in a debug build,
/// 0.18 s for 512 slots within +30% on Zeus's A40 ResNet-50 curve, measured 2026-11-28). A
/// tuning bound, not a measurement: a slot per 20 minutes for a week fits.
pub const MAX_SEEN_SLOTS: usize = 512;

/// The intensity each governed interval was priced at, in order — the trace the governor's
/// savings were accounted on: (seconds, g/kWh), equal neighbours merged, at most
/// [`MAX_SEEN_SLOTS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    slots: Vec<(f64, f64)>,
}

impl Seen {
    /// `dt` seconds priced at `i` g/kWh.
    pub fn push(&mut self, dt: f64, i: f64) {
        if !(dt.is_finite() && dt > 0.0 && i.is_finite()) {
            return;
        }
        match self.slots.last_mut() {
            Some(last) if last.1 == i => last.0 += dt,
            _ => self.slots.push((dt, i)),
        }
        if self.slots.len() > MAX_SEEN_SLOTS {
            self.slots = self
                .slots
                .chunks(2)
                .map(|c| {
                    let l: f64 = c.iter().map(|s| s.0).sum();
                    (l, c.iter().map(|s| s.0 * s.1).sum::<f64>() / l)
                })
                .collect();
        }
    }

    /// (seconds, g/kWh) in order.
    pub fn slots(&self) -> &[(f64, f64)] {
        &self.slots
    }

    /// The seconds seen.
    pub fn span_s(&self) -> f64 {
        self.slots.iter().map(|s| s.0).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_merges_equal_neighbours_and_stays_bounded() {
        let mut s = Seen::default();
        s.push(1.0, 400.0);
        s.push(2.0, 400.0);
        s.push(1.0, 500.0);
        s.push(0.0, 900.0);
        assert_eq!(s.slots(), [(3.0, 400.0), (1.0, 500.0)]);
        for k in 0..10 * MAX_SEEN_SLOTS {
            s.push(1.0, (k % 7) as f64);
        }
        assert!(s.slots().len() <= MAX_SEEN_SLOTS);
        assert!((s.span_s() - 4.0 - 10.0 * MAX_SEEN_SLOTS as f64).abs() < 1e-6);
    }
}
