//! The GPU energy counter checked against the power readings (issue 19).
//!
//! Where a GPU has NVML's energy counter, its energy is the counter's (DESIGN.md §5); its power
//! readings are integrated as well (trapezoid), and the two are compared over a sliding minute.
//! They can disagree: on A100 and H100 `nvmlDeviceGetPowerUsage` is a 1 s average refreshed so
//! that it covers only about a quarter of the time (Yang, Adámek, Armour, SC'24, "Accurate and
//! Convenient Energy Measurements for GPUs"), and users have seen the counter and integrated
//! power differ (Zeus issue #181, github.com/ml-energy/zeus/issues/181). The counter stays the
//! figure; a difference above [`DIVERGENCE`] is said, so the user knows one of the two is off.

use std::collections::VecDeque;

/// The window compared: the last minute (the "over a minute").
pub const WINDOW_S: f64 = 60.0;
/// The relative difference said: above NVML's own ±5% (NVML API Reference,
/// `nvmlDeviceGetPowerUsage`: "accurate to within +/- 5% of current power draw").
pub const DIVERGENCE: f64 = 0.05;
/// A window decides only once it spans this long (each reading interval of 1 s or less is
/// then at most a fifth of it) …
pub const MIN_SPAN_S: f64 = 5.0;
/// … and holds this much counter energy (J): an idle or nearly idle GPU's few hundred joules
/// are where NVML's absolute floor (a few watts) rather than the sampling decides, so such a
/// window is left out rather than flagged. This program's choice: 100 W for 5 s.
pub const MIN_WINDOW_J: f64 = 500.0;
/// Intervals held per GPU: a minute at 10 ms, the shortest `--interval`; older ones are dropped
/// first in any case (bounded memory whatever the interval).
const MAX_INTERVALS: usize = 6_000;

/// One interval of one GPU: when it ended, how long, the counter's and the trapezoid's energy.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    end_s: f64,
    dt_s: f64,
    counter_j: f64,
    power_j: f64,
}

/// One GPU's window.
#[derive(Debug, Clone, Default, PartialEq)]
struct Window {
    intervals: VecDeque<Interval>,
}

impl Window {
    fn push(&mut self, iv: Interval) {
        self.intervals.push_back(iv);
        while self.intervals.len() > MAX_INTERVALS
            || self
                .intervals
                .front()
                .is_some_and(|f| f.end_s - f.dt_s < iv.end_s - WINDOW_S - 1e-9)
        {
            self.intervals.pop_front();
        }
    }

    /// The window's (trapezoid − counter) / counter, when it is long and energetic enough.
    fn difference(&self) -> Option<f64> {
        let (span, counter, power) = self
            .intervals
            .iter()
            .fold((0.0, 0.0, 0.0), |(s, c, p), iv| {
                (s + iv.dt_s, c + iv.counter_j, p + iv.power_j)
            });
        (span >= MIN_SPAN_S - 1e-9 && counter >= MIN_WINDOW_J).then(|| (power - counter) / counter)
    }
}

/// Every GPU's window, by its position in the sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterCheck {
    windows: Vec<Window>,
}

impl CounterCheck {
    /// One GPU's interval ending at `end_s`: `counter_j` from the energy counter, `power_j`
    /// the trapezoid of its power readings over the same interval. Returns the window's
    /// relative difference (trapezoid − counter) / counter, when the window decides.
    pub fn push(
        &mut self,
        gpu: usize,
        end_s: f64,
        dt_s: f64,
        counter_j: f64,
        power_j: f64,
    ) -> Option<f64> {
        if !(dt_s > 0.0 && counter_j.is_finite() && power_j.is_finite()) {
            return None;
        }
        if self.windows.len() <= gpu {
            self.windows.resize_with(gpu + 1, Window::default);
        }
        let w = &mut self.windows[gpu];
        w.push(Interval {
            end_s,
            dt_s,
            counter_j,
            power_j,
        });
        w.difference()
    }

    /// A GPU whose counter or power is missing this interval: its window starts again, so a
    /// gap never compares a counter delta with a trapezoid over different spans.
    pub fn gap(&mut self, gpu: usize) {
        if let Some(w) = self.windows.get_mut(gpu) {
            w.intervals.clear();
        }
    }
}

/// Whether a window's difference is one to say.
pub fn diverges(rel: f64) -> bool {
    rel.abs() > DIVERGENCE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `n` intervals of `dt` s at `counter_w` and `power_w`; the last answer.
    fn run(
        c: &mut CounterCheck,
        from: f64,
        n: usize,
        dt: f64,
        counter_w: f64,
        power_w: f64,
    ) -> Option<f64> {
        let mut out = None;
        for k in 1..=n {
            out = c.push(0, from + k as f64 * dt, dt, counter_w * dt, power_w * dt);
        }
        out
    }

    #[test]
    fn a_ten_percent_lower_power_trace_is_said_once_the_window_decides() {
        let mut c = CounterCheck::default();
        // 4.9 s: too short to decide.
        assert_eq!(run(&mut c, 0.0, 49, 0.1, 250.0, 225.0), None);
        let d = run(&mut c, 4.9, 1, 0.1, 250.0, 225.0).unwrap();
        assert!((d + 0.10).abs() < 1e-12, "{d}");
        assert!(diverges(d));
    }

    #[test]
    fn agreement_and_small_differences_are_not_flagged() {
        let mut c = CounterCheck::default();
        let d = run(&mut c, 0.0, 100, 0.1, 250.0, 250.0).unwrap();
        assert!(d.abs() < 1e-12 && !diverges(d));
        let mut c = CounterCheck::default();
        let d = run(&mut c, 0.0, 100, 0.1, 250.0, 240.0).unwrap();
        assert!((d + 0.04).abs() < 1e-12 && !diverges(d));
    }

    #[test]
    fn an_idle_gpus_window_decides_nothing() {
        let mut c = CounterCheck::default();
        // 60 W for 8 s: 480 J, under the floor, however far apart the two are.
        assert_eq!(run(&mut c, 0.0, 80, 0.1, 60.0, 30.0), None);
    }

    #[test]
    fn the_window_slides_so_an_old_difference_ages_out_after_a_minute() {
        let mut c = CounterCheck::default();
        // A minute that disagrees by 20%, then a minute that agrees.
        let d = run(&mut c, 0.0, 60, 1.0, 300.0, 240.0).unwrap();
        assert!((d + 0.2).abs() < 1e-12);
        let d = run(&mut c, 60.0, 30, 1.0, 300.0, 300.0).unwrap();
        assert!(
            (d + 0.1).abs() < 1e-9,
            "half the minute still disagrees: {d}"
        );
        let d = run(&mut c, 90.0, 30, 1.0, 300.0, 300.0).unwrap();
        assert!(d.abs() < 1e-12, "{d}");
        assert!(c.windows[0].intervals.len() <= 61);
    }

    #[test]
    fn a_gap_restarts_the_window_and_gpus_are_apart() {
        let mut c = CounterCheck::default();
        run(&mut c, 0.0, 60, 0.1, 250.0, 200.0);
        c.gap(0);
        assert_eq!(run(&mut c, 6.0, 10, 0.1, 250.0, 200.0), None);
        // GPU 1 agrees while GPU 0 does not.
        for k in 1..=60 {
            c.push(1, k as f64 * 0.1, 0.1, 25.0, 25.0);
        }
        assert_eq!(c.push(1, 6.1, 0.1, 25.0, 25.0), Some(0.0));
        assert_eq!(c.push(0, 7.1, 0.0, 25.0, 25.0), None, "no interval");
        assert_eq!(c.push(0, 7.1, 0.1, f64::NAN, 25.0), None);
    }

    #[test]
    fn memory_stays_bounded_at_any_interval() {
        let mut c = CounterCheck::default();
        for k in 1..=20_000 {
            c.push(0, k as f64 * 0.001, 0.001, 0.25, 0.25);
        }
        assert!(c.windows[0].intervals.len() <= MAX_INTERVALS);
    }
}
