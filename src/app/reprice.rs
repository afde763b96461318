//! `carbontop reprice FILE`: the recording's energy profile priced again in other zones, at
//! other start times and under another PUE (DESIGN.md §3). The arithmetic is the engine's
//! (`engine::reprice`); this reads the recording and the trace and hands the options to the
//! formats in `report::reprice`.

use crate::app::AppError;
use crate::engine::constants::GRID_TABLE_BAND;
use crate::engine::reprice::{self, Profile, Starts, Trace};
use crate::report::account::Recorded;
use crate::report::reprice::{Outcome, Window};
use crate::source::grid::table;
use crate::units::{FacilityKwh, GPerKwh, GramsCo2e, ItKwh, Pue};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::path::Path;

pub struct RepriceOpts<'a> {
    pub file: &'a Path,
    pub zones: &'a [String],
    pub trace: Option<&'a Path>,
    pub within_s: f64,
    pub step_s: f64,
    pub pue: Option<f64>,
    pub json: bool,
    pub png: Option<&'a Path>,
}

pub fn run(o: &RepriceOpts<'_>) -> Result<i32, AppError> {
    let usage = |e: &dyn std::fmt::Display| AppError::Usage(e.to_string());
    let zones: Vec<&'static table::Entry> = o
        .zones
        .iter()
        .map(|z| table::resolve(z).map(|r| r.entry))
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let (profile, rec_pue) = profile_of(o.file)?;
    let pue = match o.pue {
        Some(p) => Pue::new(p).ok_or_else(|| AppError::Usage(format!("--pue {p}: below 1")))?,
        None => rec_pue,
    };
    let mut choices =
        vec![profile.recorded_choice(format!("the recording's own intensities, PUE {rec_pue}"))];
    if o.pue.is_some() {
        choices.push(profile.pue_choice(pue));
    }
    for e in &zones {
        let detail = format!(
            "{}, {} annual mean, {}; {}",
            e.name,
            e.year,
            e.basis.label(),
            e.source.label()
        );
        // An annual mean: the table's band (engine::constants::GRID_TABLE_BAND).
        let (lo, hi) = GRID_TABLE_BAND;
        let i = [e.g_per_kwh, e.g_per_kwh * lo, e.g_per_kwh * hi].map(GPerKwh);
        choices.push(profile.zone_choice(pue, i, format!("zone {}", e.zone), detail));
    }
    let mut window = None;
    if let Some(path) = o.trace {
        let trace = read_trace(path).map_err(|e| usage(&format!("--intensity-trace {e}")))?;
        let (from, moved) = if trace.at(profile.start).is_some() {
            (profile.start, false)
        } else {
            (trace.start(), true)
        };
        let s: Starts = reprice::starts(&profile, &trace, from, o.within_s, o.step_s, pue)
            .map_err(|e| usage(&format!("--intensity-trace {}: {e}", path.display())))?;
        let detail = format!("trace {}", path.display());
        let first = if moved {
            "trace's first start"
        } else {
            "start as recorded"
        };
        let best_at = s.tried[s.best].0;
        let best = format!(
            "best start, {} later",
            crate::report::summary::fmt_duration((best_at - s.tried[0].0).as_seconds_f64())
        );
        for (k, label) in [(0, first.to_owned()), (s.best, best)] {
            choices.extend(profile.start_choice(&s, k, pue, label, detail.clone()));
        }
        window = Some(Window {
            trace: path.display().to_string(),
            points: trace.len(),
            from,
            moved,
            within_s: o.within_s,
            step_s: o.step_s,
            tried: s.tried.len(),
            saving: s.saving(),
        });
    }
    let out = Outcome {
        file: o.file.display().to_string(),
        start: profile.start,
        duration_s: profile.duration_s,
        ticks: profile.ticks,
        it: profile.it(),
        facility: profile.facility(),
        pue,
        choices,
        window,
    };
    if let Some(png) = o.png {
        crate::report::reprice::write_png(&out, png).map_err(|e| usage(&e))?;
    }
    if o.json {
        crate::outln!("{}", out.json())?;
    } else {
        crate::outln!("{}", out.text())?;
    }
    Ok(0)
}

/// The recording's IT energy, bin by bin, with its band and the carbon it was recorded with;
/// and the PUE it was recorded under (the last the recording implies).
fn profile_of(file: &Path) -> Result<(Profile, Pue), AppError> {
    let usage = |e: String| AppError::Usage(format!("reprice {e}"));
    let mut rec = Recorded::open(file, None).map_err(|e| usage(e.to_string()))?;
    let mut meter = crate::engine::Meter::new(rec.basis(), false);
    let mut profile: Option<Profile> = None;
    let mut before = rec.ledger.totals();
    while let Some(t) = rec.step_into(&mut meter) {
        let after = rec.ledger.totals();
        let p = profile.get_or_insert_with(|| {
            Profile::new(t.timestamp - chrono::TimeDelta::milliseconds((t.elapsed_s * 1e3) as i64))
        });
        p.add(
            t.elapsed_s,
            t.dt_s,
            ItKwh::from_joules(after.it_j() - before.it_j()),
            FacilityKwh(after.energy_kwh - before.energy_kwh),
            GramsCo2e(after.co2e_g - before.co2e_g),
        )
        .map_err(|e| usage(format!("{}: {e}", file.display())))?;
        before = after;
    }
    if let Some(e) = rec.error.take() {
        return Err(usage(e.to_string()));
    }
    let mut profile = profile.filter(|p| p.it().0 > 0.0).ok_or_else(|| {
        usage(format!(
            "{}: {}",
            file.display(),
            reprice::RepriceError::NoEnergy
        ))
    })?;
    let snap = meter.snapshot();
    let table_g = snap.table_co2e.map_or(0.0, |b| b.g.0);
    profile.set_band(&snap.co2e_band, table_g, GRID_TABLE_BAND);
    Ok((profile, rec.ledger.config().pue))
}

/// A grid intensity trace: a carbontop samples.csv (its `intensity_g_per_kwh` over time), or a
/// CSV with a time column (`timestamp`, `time`, `datetime`, `from`, `point_time`) and a g/kWh
/// column (`g_per_kwh`, `intensity_g_per_kwh`, `carbon_intensity`, `intensity`, `value`).
pub fn read_trace(path: &Path) -> Result<Trace, String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| at(&e))?;
    let mut lines = Lines::new(std::io::BufReader::new(file));
    let first = lines.next_line().map_err(|e| at(&e))?.unwrap_or_default();
    if first.starts_with("timestamp,elapsed_s,") {
        return recording_trace(path).map_err(|e| at(&e));
    }
    simple_trace(&first, lines).map_err(|e| at(&e))
}

/// The longest line a simple trace may have.
const MAX_TRACE_LINE: usize = 4096;

/// Lines of at most [`MAX_TRACE_LINE`] bytes, numbered (bounded memory whatever the input).
struct Lines<R> {
    inner: R,
    line: usize,
}

impl<R: std::io::BufRead> Lines<R> {
    fn new(inner: R) -> Self {
        Self { inner, line: 0 }
    }

    fn next_line(&mut self) -> Result<Option<String>, String> {
        use std::io::{BufRead, Read};
        let mut buf = Vec::new();
        self.line += 1;
        let n = (&mut self.inner)
            .take(MAX_TRACE_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("line {}: {e}", self.line))?;
        if n == 0 {
            return Ok(None);
        }
        if buf.len() > MAX_TRACE_LINE && buf.last() != Some(&b'\n') {
            return Err(format!(
                "line {} is longer than {MAX_TRACE_LINE} bytes: not a time,g_per_kwh CSV",
                self.line
            ));
        }
        String::from_utf8(buf)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|_| format!("line {}: not UTF-8 text", self.line))
    }
}

/// A recording's intensity, a point wherever it changes: its rows as read (no accounting is
/// needed for their times and intensities).
fn recording_trace(path: &Path) -> Result<Trace, String> {
    let mut rp = crate::source::replay::Replay::open(path).map_err(|e| e.to_string())?;
    let mut points: Vec<(DateTime<Utc>, GPerKwh)> = Vec::new();
    let mut last = None;
    // A row's intensity priced the interval that row closes: it holds from the row before.
    let mut prev: Option<DateTime<Utc>> = None;
    while let Some(row) = rp.next_sample() {
        let (s, _gap) = row.map_err(|e| e.to_string())?;
        let from = prev.unwrap_or(s.time);
        prev = Some(s.time);
        let Some(g) = s.intensity.map(|i| i.g_per_kwh) else {
            continue;
        };
        last = Some((s.time, g));
        if points.last().is_none_or(|l| l.1 != g) {
            points.push((from, g));
            if points.len() > reprice::MAX_TRACE_POINTS {
                return Err(reprice::RepriceError::TraceTooLong.to_string());
            }
        }
    }
    // Its last value holds to its last row.
    if let Some(l) = last.filter(|l| points.last().is_some_and(|p| p.0 != l.0)) {
        points.push(l);
    }
    Trace::new(points).map_err(|e| e.to_string())
}

const TIME_COLUMNS: [&str; 6] = [
    "timestamp",
    "time",
    "datetime",
    "date",
    "from",
    "point_time",
];
const VALUE_COLUMNS: [&str; 6] = [
    "g_per_kwh",
    "intensity_g_per_kwh",
    "carbon_intensity",
    "carbonintensity",
    "intensity",
    "value",
];

fn cells(line: &str) -> Vec<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    rdr.records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(|c| c.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn simple_trace<R: std::io::BufRead>(first: &str, mut lines: Lines<R>) -> Result<Trace, String> {
    let header: Vec<String> = cells(first)
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
    };
    let (Some(tc), Some(vc)) = (find(&TIME_COLUMNS), find(&VALUE_COLUMNS)) else {
        return Err(format!(
            "line 1: needs a time column ({}) and a g/kWh column ({}); found {}",
            TIME_COLUMNS.join(", "),
            VALUE_COLUMNS.join(", "),
            header.join(",")
        ));
    };
    let mut points = Vec::new();
    while let Some(text) = lines.next_line()? {
        let line = lines.line;
        if text.trim().is_empty() {
            continue;
        }
        let r = cells(&text);
        let (Some(t), Some(v)) = (r.get(tc), r.get(vc)) else {
            return Err(format!("line {line}: too few columns"));
        };
        let t = parse_time(t).ok_or_else(|| {
            format!("line {line}: {t:?} is not a time (RFC 3339, `YYYY-MM-DD HH:MM[:SS]` UTC or Unix seconds)")
        })?;
        let g: f64 = v
            .parse()
            .ok()
            .filter(|g: &f64| (0.0..=crate::source::grid::series::MAX_G_PER_KWH).contains(g))
            .ok_or_else(|| format!("line {line}: {v:?} is not a grid intensity in g/kWh"))?;
        points.push((t, GPerKwh(g)));
        if points.len() > reprice::MAX_TRACE_POINTS {
            return Err(reprice::RepriceError::TraceTooLong.to_string());
        }
    }
    Trace::new(points).map_err(|e| e.to_string())
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%MZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    let secs: f64 = s.parse().ok()?;
    (secs.is_finite() && (0.0..1e11).contains(&secs))
        .then(|| DateTime::from_timestamp_millis((secs * 1e3) as i64))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(text: &str) -> Result<Trace, String> {
        let mut lines = Lines::new(text.as_bytes());
        let first = lines.next_line()?.unwrap_or_default();
        simple_trace(&first, lines)
    }

    #[test]
    fn a_simple_trace_in_each_shape_people_have() {
        let t = simple(
            "location,timestamp,duration,value\nX,2022-10-20T06:20:00+00:00,30,646.5\nX,2022-10-20T06:50:00+00:00,30,639.5\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let t = simple("time,g_per_kwh\n2026-01-01 00:00,100\n1767229200,200\n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.at(parse_time("2026-01-01T01:30:00Z").unwrap()),
            Some(GPerKwh(200.0))
        );
    }

    #[test]
    fn a_bad_trace_says_what_and_where() {
        let e = simple("when,what\n1,2\n").unwrap_err();
        assert!(e.starts_with("line 1: needs a time column"), "{e}");
        let e = simple("time,value\n2026-01-01 00:00,-5\n").unwrap_err();
        assert!(
            e.starts_with("line 2:") && e.contains("not a grid intensity"),
            "{e}"
        );
        let e = simple("time,value\nyesterday,5\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("not a time"), "{e}");
        let e = simple("time,value\n").unwrap_err();
        assert!(e.contains("no points"), "{e}");
    }
}
