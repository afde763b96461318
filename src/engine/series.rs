//! Bounded, downsampled history for the screen (DESIGN.md §8: a week at 1 s in bounded memory).
//!
//! The full record lives in samples.csv; the screen only needs enough points to draw a chart a
//! few hundred cells wide. [`History`] keeps several tiers of the same columns:
//!
//! - fixed-width tiers (raw ticks, 10 s buckets, 2 min buckets), each a ring of a fixed number
//!   of buckets, for the short windows (1 min … 1 day) at full detail;
//! - one compacting tier for the whole run: when it is full, neighbouring buckets are merged in
//!   pairs and the bucket width doubles, so it always spans the whole run in at most `cap`
//!   points.
//!
//! A window is drawn from the finest tier that still covers it. Memory is
//! Σ tiers × cap × (columns + 1) × 8 bytes, whatever the run's length.
//!
//! Power and intensity columns are averaged within a bucket ([`Agg::Mean`]); cumulative columns
//! (energy, carbon) and progress keep the bucket's last value ([`Agg::Last`]). NaN marks
//! "unknown" and is skipped by both.

use std::collections::VecDeque;

/// How a column folds the values that fall into one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Mean,
    Last,
}

#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    sum: f64,
    n: u32,
    last: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.sum += v;
            self.n += 1;
            self.last = v;
        }
    }

    fn value(&self, agg: Agg) -> f64 {
        match (self.n, agg) {
            (0, _) => f64::NAN,
            (n, Agg::Mean) => self.sum / f64::from(n),
            (_, Agg::Last) => self.last,
        }
    }
}

/// A bucket being filled.
#[derive(Debug, Clone)]
struct Open {
    start: f64,
    t_sum: f64,
    n: u32,
    cols: Vec<Acc>,
}

#[derive(Debug, Clone)]
struct Tier {
    /// Bucket width in seconds; 0 = one bucket per tick.
    width: f64,
    cap: usize,
    /// Merge pairs instead of dropping the oldest when full.
    compacting: bool,
    /// Whether this tier ever dropped its oldest bucket (then it no longer reaches the start).
    dropped: bool,
    t: VecDeque<f64>,
    /// Per closed bucket, how many ticks it holds (weights for merging means).
    w: VecDeque<u32>,
    cols: Vec<VecDeque<f64>>,
    open: Option<Open>,
}

impl Tier {
    fn new(width: f64, cap: usize, compacting: bool, n_cols: usize) -> Self {
        Self {
            width,
            cap: cap.max(4),
            compacting,
            dropped: false,
            t: VecDeque::with_capacity(cap),
            w: VecDeque::with_capacity(cap),
            cols: (0..n_cols).map(|_| VecDeque::with_capacity(cap)).collect(),
            open: None,
        }
    }

    fn push(&mut self, t: f64, vals: &[f64], aggs: &[Agg]) {
        if let Some(o) = &self.open
            && (self.width <= 0.0 || t >= o.start + self.width)
        {
            self.close(aggs);
        }
        let open = self.open.get_or_insert_with(|| Open {
            start: t,
            t_sum: 0.0,
            n: 0,
            cols: vec![Acc::default(); vals.len()],
        });
        open.t_sum += t;
        open.n += 1;
        for (a, &v) in open.cols.iter_mut().zip(vals) {
            a.add(v);
        }
    }

    fn close(&mut self, aggs: &[Agg]) {
        let Some(o) = self.open.take() else { return };
        self.t.push_back(o.t_sum / f64::from(o.n.max(1)));
        self.w.push_back(o.n);
        for ((col, acc), &agg) in self.cols.iter_mut().zip(&o.cols).zip(aggs) {
            col.push_back(acc.value(agg));
        }
        if self.t.len() > self.cap {
            if self.compacting {
                self.compact(aggs);
            } else {
                self.t.pop_front();
                self.w.pop_front();
                for c in &mut self.cols {
                    c.pop_front();
                }
                self.dropped = true;
            }
        }
    }

    /// Merges neighbouring buckets in pairs and doubles the width.
    fn compact(&mut self, aggs: &[Agg]) {
        let n = self.t.len();
        if n < 2 {
            return;
        }
        let span = self.t[n - 1] - self.t[0];
        let mut t = VecDeque::with_capacity(self.cap);
        let mut w = VecDeque::with_capacity(self.cap);
        for i in (0..n).step_by(2) {
            if i + 1 < n {
                let (w0, w1) = (f64::from(self.w[i]), f64::from(self.w[i + 1]));
                t.push_back((self.t[i] * w0 + self.t[i + 1] * w1) / (w0 + w1));
                w.push_back(self.w[i] + self.w[i + 1]);
            } else {
                t.push_back(self.t[i]);
                w.push_back(self.w[i]);
            }
        }
        for (col, &agg) in self.cols.iter_mut().zip(aggs) {
            let mut out = VecDeque::with_capacity(self.cap);
            for i in (0..n).step_by(2) {
                let a = col[i];
                if i + 1 >= n {
                    out.push_back(a);
                    continue;
                }
                let b = col[i + 1];
                out.push_back(match (agg, a.is_finite(), b.is_finite()) {
                    (_, false, false) => f64::NAN,
                    (_, true, false) => a,
                    (_, false, true) | (Agg::Last, true, true) => b,
                    (Agg::Mean, true, true) => {
                        let (w0, w1) = (f64::from(self.w[i]), f64::from(self.w[i + 1]));
                        (a * w0 + b * w1) / (w0 + w1)
                    }
                });
            }
            *col = out;
        }
        self.t = t;
        self.w = w;
        self.width = if self.width > 0.0 {
            self.width * 2.0
        } else {
            2.0 * span / (n.saturating_sub(1).max(1)) as f64
        };
    }

    /// The first time this tier still holds.
    fn first_t(&self) -> Option<f64> {
        self.t
            .front()
            .copied()
            .or_else(|| self.open.as_ref().map(|o| o.t_sum / f64::from(o.n.max(1))))
    }

    fn len(&self) -> usize {
        self.t.len() + usize::from(self.open.is_some())
    }

    /// Points (t, v) of column `c` with t ≥ `from`, the open bucket included.
    fn points(&self, c: usize, from: f64, agg: Agg, out: &mut Vec<(f64, f64)>) {
        let start = self.t.partition_point(|&t| t < from);
        for i in start..self.t.len() {
            let v = self.cols[c][i];
            if v.is_finite() {
                out.push((self.t[i], v));
            }
        }
        if let Some(o) = &self.open {
            let t = o.t_sum / f64::from(o.n.max(1));
            let v = o.cols[c].value(agg);
            if t >= from && v.is_finite() {
                out.push((t, v));
            }
        }
    }
}

/// Several tiers of the same columns; see the module docs.
#[derive(Debug, Clone)]
pub struct History {
    aggs: Vec<Agg>,
    tiers: Vec<Tier>,
    last_t: Option<f64>,
    first_t: Option<f64>,
}

/// Bucket widths (s) and ring sizes of the fixed tiers: 600 raw ticks (10 min at 1 s), then
/// 10 s buckets for 3 h, then 2 min buckets for 2 days.
const FIXED_TIERS: [(f64, usize); 3] = [(0.0, 600), (10.0, 1080), (120.0, 1440)];
/// Points in the whole-run tier.
const WHOLE_RUN_POINTS: usize = 1024;

impl History {
    pub fn new(aggs: Vec<Agg>) -> Self {
        let n = aggs.len();
        let mut tiers: Vec<Tier> = FIXED_TIERS
            .iter()
            .map(|&(w, cap)| Tier::new(w, cap, false, n))
            .collect();
        tiers.push(Tier::new(0.0, WHOLE_RUN_POINTS, true, n));
        Self {
            aggs,
            tiers,
            last_t: None,
            first_t: None,
        }
    }

    pub fn columns(&self) -> usize {
        self.aggs.len()
    }

    /// Adds one tick at time `t` (seconds, non-decreasing); `vals` has one value per column
    /// (NaN = unknown). A tick earlier than the last one is ignored.
    pub fn push(&mut self, t: f64, vals: &[f64]) {
        if vals.len() != self.aggs.len() || !t.is_finite() || self.last_t.is_some_and(|l| t < l) {
            return;
        }
        self.first_t.get_or_insert(t);
        self.last_t = Some(t);
        for tier in &mut self.tiers {
            tier.push(t, vals, &self.aggs);
        }
    }

    pub fn last_t(&self) -> Option<f64> {
        self.last_t
    }

    pub fn first_t(&self) -> Option<f64> {
        self.first_t
    }

    /// Points of column `c` over the last `window` seconds (None: the whole run), taken from
    /// the finest tier that covers the window.
    pub fn window(&self, c: usize, window: Option<f64>) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let (Some(last), Some(first)) = (self.last_t, self.first_t) else {
            return out;
        };
        if c >= self.aggs.len() {
            return out;
        }
        let from = window.map_or(first, |w| last - w);
        self.tier_for(from).points(c, from, self.aggs[c], &mut out);
        out
    }

    /// Pairs (x, y) of columns `cx` and `cy` taken at the same points (both known), over the
    /// window, e.g. accuracy against cumulative carbon.
    pub fn xy(&self, cx: usize, cy: usize, window: Option<f64>) -> Vec<(f64, f64)> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let (Some(last), Some(first)) = (self.last_t, self.first_t) else {
            return xs;
        };
        if cx >= self.aggs.len() || cy >= self.aggs.len() {
            return xs;
        }
        let from = window.map_or(first, |w| last - w);
        let tier = self.tier_for(from);
        tier.points(cx, f64::NEG_INFINITY, self.aggs[cx], &mut xs);
        tier.points(cy, f64::NEG_INFINITY, self.aggs[cy], &mut ys);
        // Join on time: both lists are sorted by t.
        let mut out = Vec::new();
        let mut j = 0;
        for &(t, x) in &xs {
            while j < ys.len() && ys[j].0 < t {
                j += 1;
            }
            if j < ys.len() && ys[j].0 == t && t >= from {
                out.push((x, ys[j].1));
            }
        }
        out
    }

    fn tier_for(&self, from: f64) -> &Tier {
        self.tiers
            .iter()
            .find(|t| !t.dropped || t.first_t().is_some_and(|f| f <= from))
            .unwrap_or(&self.tiers[self.tiers.len() - 1])
    }

    /// Total points held (all tiers): bounded by the tiers' capacities.
    pub fn points_held(&self) -> usize {
        self.tiers.iter().map(Tier::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_runs_keep_every_tick() {
        let mut h = History::new(vec![Agg::Mean, Agg::Last]);
        for i in 0..100 {
            h.push(f64::from(i), &[f64::from(i), f64::from(i) * 2.0]);
        }
        let all = h.window(0, None);
        assert_eq!(all.len(), 100);
        assert_eq!(all[99], (99.0, 99.0));
        let last_min = h.window(1, Some(60.0));
        assert_eq!(last_min.first(), Some(&(39.0, 78.0)));
        assert_eq!(last_min.len(), 61);
    }

    #[test]
    fn a_week_at_one_second_stays_bounded_and_keeps_its_shape() {
        let mut h = History::new(vec![Agg::Mean, Agg::Last]);
        let week = 7 * 24 * 3600;
        let mut cum = 0.0;
        for i in 0..week {
            let t = f64::from(i);
            // 100 W for the first half, 300 W for the second; cumulative energy in J.
            let p = if i < week / 2 { 100.0 } else { 300.0 };
            cum += p;
            h.push(t, &[p, cum]);
        }
        // Bounded: every tier at most its capacity, plus an open bucket each.
        let bound: usize =
            FIXED_TIERS.iter().map(|t| t.1 + 1).sum::<usize>() + WHOLE_RUN_POINTS + 1;
        assert!(h.points_held() <= bound, "{}", h.points_held());
        let all = h.window(0, None);
        assert!(
            all.len() > 256 && all.len() <= WHOLE_RUN_POINTS + 1,
            "{}",
            all.len()
        );
        assert!(
            all[0].0 < 600.0,
            "whole run starts at the start: {}",
            all[0].0
        );
        // Means survive compaction: the time-weighted mean of the buckets is the true mean.
        let first_half: Vec<_> = all
            .iter()
            .filter(|p| p.0 < f64::from(week / 2) - 1e4)
            .collect();
        assert!(first_half.iter().all(|p| (p.1 - 100.0).abs() < 1e-9));
        // Last keeps the cumulative value at the end of each bucket: the final point is exact.
        let cum_all = h.window(1, None);
        assert_eq!(cum_all.last().map(|p| p.1), Some(cum));
        // A one-minute window still has per-second detail.
        let minute = h.window(0, Some(60.0));
        assert_eq!(minute.len(), 61);
        assert!(minute.iter().all(|p| p.1 == 300.0));
        // A one-hour window comes from the 10 s tier.
        let hour = h.window(0, Some(3600.0));
        assert!((355..=362).contains(&hour.len()), "{}", hour.len());
    }

    #[test]
    fn xy_joins_two_columns_where_both_are_known() {
        let mut h = History::new(vec![Agg::Last, Agg::Last]);
        h.push(0.0, &[0.0, f64::NAN]);
        h.push(1.0, &[1.5, 40.0]);
        h.push(2.0, &[3.0, f64::NAN]);
        h.push(3.0, &[4.5, 55.0]);
        assert_eq!(h.xy(0, 1, None), vec![(1.5, 40.0), (4.5, 55.0)]);
        assert_eq!(h.xy(0, 1, Some(1.0)), vec![(4.5, 55.0)]);
    }

    #[test]
    fn unknown_values_are_skipped_not_zero() {
        let mut h = History::new(vec![Agg::Mean]);
        h.push(0.0, &[f64::NAN]);
        h.push(1.0, &[5.0]);
        h.push(2.0, &[f64::NAN]);
        assert_eq!(h.window(0, None), vec![(1.0, 5.0)]);
        // A time going backwards or a wrong column count is ignored.
        h.push(1.5, &[9.0]);
        h.push(3.0, &[1.0, 2.0]);
        assert_eq!(h.window(0, None), vec![(1.0, 5.0)]);
    }
}
