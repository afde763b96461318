//! A live provider behind the `GridSource` trait: a poller thread asks the provider at the
//! data's own cadence, the answers are cached with their timestamps, and each tick is given the
//! value valid at its time — the last good value held (marked `-stale`) through faults, then
//! the embedded table. Sampling never waits for the network: until the provider's first
//! answer a tick's intensity is pending (`GridSource::reading` gives `None`), and the Session
//! holds those rows until the answer (or its deadline) and prices each at its own time through
//! [`GridHandle::intensity`] — the answer's history covers the run's first minutes.

use super::http::{FetchError, Http};
use super::series::{Point, Series};
use super::{Answer, GridSource, Provider};
use crate::sample::{Intensity, IntensitySource, SourceKind};
use chrono::{DateTime, TimeDelta, Utc};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long past the end of its slot the last good value is held (marked stale) before the
/// table takes over: a few missed updates of the slowest provider (hourly).
pub const MAX_HOLD: TimeDelta = TimeDelta::hours(3);
/// First wait after a failure; doubles up to the provider's cadence.
const BACKOFF_START: Duration = Duration::from_secs(5);
/// A provider is asked again at least this long after its data's slot ends (it publishes a
/// little after the slot starts).
const PUBLISH_LAG: TimeDelta = TimeDelta::seconds(90);
/// Never more often than this on the provider's own cadence (unless --grid-poll says so).
const MIN_POLL: Duration = Duration::from_secs(300);

/// The fallback value: the table's annual mean for the zone's place.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub g_per_kwh: f64,
    /// Which row and basis, for the status line (`US-CA 179.1 g/kWh, combustion at the
    /// plant`); empty says just "the table".
    pub label: String,
}

/// What the poller has learnt; pure, driven by the times it is given.
#[derive(Debug, Clone)]
pub struct LiveState {
    label: SourceKind,
    series: Series,
    fallback: Fallback,
    /// When the provider last answered well.
    last_ok: Option<DateTime<Utc>>,
    /// The current fault, while there is one, and its kind (a new kind is said again).
    failure: Option<String>,
    last_kind: Option<std::mem::Discriminant<FetchError>>,
    /// Extra facts from the last answer (WattTime's percentile).
    detail: Option<String>,
    /// Messages for the status line, taken by the sampler.
    messages: Vec<String>,
    /// Notes already said (each said once).
    said: Vec<String>,
    /// Bumped on every change, so readers can tell when to look again.
    version: u64,
    /// How many faults have ended, and the line that says the last one did: a recovery is
    /// news, not a warning, so it travels in the view rather than with the warnings.
    recoveries: u64,
    recovered: Option<String>,
}

/// What the screen and summary show of the grid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GridView {
    pub label: String,
    pub last_ok: Option<DateTime<Utc>>,
    pub failure: Option<String>,
    pub detail: Option<String>,
    /// The current slot and the forecast, in time order.
    pub ahead: Vec<Point>,
    pub version: u64,
    /// Faults ended so far, and the line saying the last one did.
    pub recoveries: u64,
    pub recovered: Option<String>,
}

impl LiveState {
    pub fn new(label: SourceKind, fallback: Fallback) -> Self {
        Self {
            label,
            series: Series::default(),
            fallback,
            last_ok: None,
            failure: None,
            last_kind: None,
            detail: None,
            messages: Vec::new(),
            said: Vec::new(),
            version: 0,
            recoveries: 0,
            recovered: None,
        }
    }

    pub fn on_answer(&mut self, now: DateTime<Utc>, ans: Answer) {
        self.series.merge(&ans.points, now);
        self.last_ok = Some(now);
        self.last_kind = None;
        if let Some(f) = self.failure.take() {
            self.recoveries += 1;
            self.recovered = Some(format!("grid: {} answering again (after: {f})", self.label));
        }
        for n in ans.notes {
            if !self.said.contains(&n) {
                self.messages.push(format!("grid: {n}"));
                self.said.push(n);
            }
        }
        if ans.detail.is_some() {
            self.detail = ans.detail;
        }
        self.version += 1;
    }

    /// Records a fault; the status line hears of it once per kind of fault.
    pub fn on_error(&mut self, e: &FetchError) {
        let msg = e.to_string();
        let kind = std::mem::discriminant(e);
        let new_kind = self.failure.is_none() || self.last_kind != Some(kind);
        if new_kind {
            let hold = match (self.series.is_empty(), self.fallback.label.as_str()) {
                (true, "") => "using the table meanwhile".to_owned(),
                (true, l) => format!("using the table ({l}) meanwhile"),
                (false, _) => "holding the last value (stale)".to_owned(),
            };
            self.messages.push(format!(
                "grid: {} failed: {msg}; {hold}, retrying",
                self.label
            ));
        }
        self.last_kind = Some(kind);
        self.failure = Some(msg);
        self.version += 1;
    }

    /// The intensity valid at `at`: the slot that holds it (stale while the provider fails),
    /// else the last value held up to MAX_HOLD past its slot (stale), else the table.
    pub fn intensity(&self, at: DateTime<Utc>) -> Intensity {
        let stale = |g: f64| Intensity {
            g_per_kwh: crate::units::GPerKwh(g),
            source: IntensitySource::held(self.label.clone()),
        };
        if let Some(p) = self.series.at(at) {
            return if self.failure.is_some() {
                stale(p.g_per_kwh)
            } else {
                Intensity {
                    g_per_kwh: crate::units::GPerKwh(p.g_per_kwh),
                    source: self.label.clone().into(),
                }
            };
        }
        if let Some(p) = self.series.last_before(at)
            && at - p.to <= MAX_HOLD
        {
            return stale(p.g_per_kwh);
        }
        Intensity {
            g_per_kwh: crate::units::GPerKwh(self.fallback.g_per_kwh),
            source: SourceKind::Table.into(),
        }
    }

    /// The provider has answered well at least once: a tick's intensity is known at once.
    pub fn answered(&self) -> bool {
        self.last_ok.is_some()
    }

    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }

    pub fn view(&self, now: DateTime<Utc>) -> GridView {
        GridView {
            label: self.label.to_string(),
            last_ok: self.last_ok,
            failure: self.failure.clone(),
            detail: self.detail.clone(),
            ahead: self
                .series
                .ahead(now)
                .filter(|p| p.from < now + TimeDelta::hours(48))
                .copied()
                .collect(),
            version: self.version,
            recoveries: self.recoveries,
            recovered: self.recovered.clone(),
        }
    }

    /// When to ask next after a good answer: just after the current slot ends (the data
    /// changes then), no sooner than MIN_POLL and no later than the cadence; `fixed` overrides.
    pub fn next_poll(
        &self,
        now: DateTime<Utc>,
        cadence: Duration,
        fixed: Option<Duration>,
    ) -> Duration {
        if let Some(f) = fixed {
            return f;
        }
        let slot_end = self
            .series
            .at(now)
            .map(|p| (p.to + PUBLISH_LAG - now).to_std().unwrap_or(MIN_POLL));
        slot_end
            .unwrap_or(MIN_POLL)
            .clamp(MIN_POLL.min(cadence), cadence.max(MIN_POLL))
    }
}

/// The shared state, readable from the main thread (forecast, staleness, the prices of held
/// rows) while the poller writes it and the sampler reads it.
#[derive(Clone)]
pub struct GridHandle(Arc<Mutex<LiveState>>);

impl GridHandle {
    /// A handle on a state of one's own (tests script it with `on_answer`).
    pub fn new(state: LiveState) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        // A panic elsewhere while holding the lock leaves plain data: keep using it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The intensity valid at `at` by what is known now: the Session prices the rows it held
    /// for the first answer with it (a past time is priced by the answer's history).
    pub fn intensity(&self, at: DateTime<Utc>) -> Intensity {
        self.lock().intensity(at)
    }

    /// The provider has answered well at least once.
    pub fn answered(&self) -> bool {
        self.lock().answered()
    }

    /// Scripts the state (tests): an answer at `now`.
    pub fn on_answer(&self, now: DateTime<Utc>, ans: Answer) {
        self.lock().on_answer(now, ans);
    }

    pub fn view(&self, now: DateTime<Utc>) -> GridView {
        self.lock().view(now)
    }

    pub fn version(&self) -> u64 {
        self.lock().version
    }
}

/// The `GridSource` the sampler holds; the poller thread runs until it is dropped.
pub struct LiveGrid {
    state: GridHandle,
    describe: String,
    stop: Option<Sender<()>>,
}

/// How the poller asks.
pub struct PollPlan {
    /// `--grid-poll`: a fixed period instead of the data's cadence.
    pub fixed: Option<Duration>,
}

impl LiveGrid {
    /// Starts the poller; the first request goes out at once.
    pub fn start(
        mut provider: Box<dyn Provider>,
        http: Http,
        fallback: Fallback,
        fallback_desc: &str,
        plan: PollPlan,
    ) -> Result<Self, super::GridError> {
        let state = GridHandle::new(LiveState::new(provider.label(), fallback));
        let describe = format!(
            "{} at {}; until it answers, and after {} h without one, table: {fallback_desc}",
            provider.describe(),
            http.base(),
            MAX_HOLD.num_hours()
        );
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = state.clone();
        std::thread::Builder::new()
            .name("carbontop-grid".into())
            .spawn(move || {
                let cadence = provider.cadence();
                // Retries back off from 5 s, doubling up to the regular period.
                let cap = plan.fixed.unwrap_or(cadence);
                let first_backoff = BACKOFF_START.min(cap);
                let mut backoff = first_backoff;
                loop {
                    let now = Utc::now();
                    let result = provider.fetch(&http, now);
                    let wait = {
                        let mut st = shared.lock();
                        match result {
                            Ok(ans) => {
                                st.on_answer(now, ans);
                                backoff = first_backoff;
                                st.next_poll(now, cadence, plan.fixed)
                            }
                            Err(e) => {
                                st.on_error(&e);
                                let w = match e {
                                    FetchError::Throttled {
                                        retry_after: Some(d),
                                        ..
                                    } => d.max(backoff),
                                    _ => backoff,
                                };
                                backoff = (backoff * 2).min(cap.max(first_backoff));
                                w
                            }
                        }
                    };
                    match stop_rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .map_err(|e| super::GridError::Poller(e.to_string()))?;
        Ok(Self {
            state,
            describe,
            stop: Some(stop_tx),
        })
    }

    pub fn handle(&self) -> GridHandle {
        self.state.clone()
    }
}

impl Drop for LiveGrid {
    fn drop(&mut self) {
        // Ends the poller at its next wait; a request in flight finishes on its own timeout.
        self.stop.take();
    }
}

impl GridSource for LiveGrid {
    fn intensity(&mut self, at: DateTime<Utc>) -> Intensity {
        self.state.lock().intensity(at)
    }

    /// Pending (`None`) until the provider's first good answer: the Session holds the row and
    /// prices it at its own time once the answer (or the hold's deadline) comes. Never waits.
    fn reading(&mut self, at: DateTime<Utc>) -> Option<Intensity> {
        let st = self.state.lock();
        st.answered().then(|| st.intensity(at))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn take_warning(&mut self) -> Option<String> {
        let msgs = self.state.lock().take_messages();
        (!msgs.is_empty()).then(|| msgs.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::series::Kind;
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 6, h, m, 0).unwrap()
    }

    fn slot(h: u32, m: u32, g: f64) -> Point {
        Point {
            from: t(h, m),
            to: t(h, m) + TimeDelta::minutes(30),
            g_per_kwh: g,
            kind: Kind::Actual,
        }
    }

    fn answer(points: Vec<Point>) -> Answer {
        Answer {
            points,
            ..Default::default()
        }
    }

    #[test]
    fn table_until_the_first_answer_then_live() {
        let mut s = LiveState::new(
            SourceKind::GbCarbonIntensity,
            Fallback {
                g_per_kwh: 237.6,
                label: String::new(),
            },
        );
        let i = s.intensity(t(12, 10));
        assert_eq!(
            (i.g_per_kwh.0, i.source.to_string().as_str()),
            (237.6, "table")
        );
        s.on_answer(
            t(12, 10),
            answer(vec![slot(12, 0, 200.0), slot(12, 30, 150.0)]),
        );
        let i = s.intensity(t(12, 10));
        assert_eq!(
            (i.g_per_kwh.0, i.source.to_string().as_str()),
            (200.0, "uk")
        );
        // The tick's own time picks the slot: a change mid-run without a new request.
        assert_eq!(s.intensity(t(12, 45)).g_per_kwh.0, 150.0);
    }

    #[test]
    fn a_fault_before_any_answer_names_the_table_row_and_its_basis() {
        let mut s = LiveState::new(
            SourceKind::WattTimeMoer,
            Fallback {
                g_per_kwh: 179.1,
                label: "US-CA 179.1 g/kWh, combustion at the plant".into(),
            },
        );
        s.on_error(&FetchError::Malformed("x: not JSON".into()));
        let m = s.take_messages();
        assert!(
            m[0].ends_with(
                "using the table (US-CA 179.1 g/kWh, combustion at the plant) meanwhile, retrying"
            ),
            "{m:?}"
        );
        assert_eq!(s.intensity(t(12, 0)).g_per_kwh.0, 179.1);
    }

    #[test]
    fn faults_hold_stale_then_table_then_recover() {
        let mut s = LiveState::new(
            SourceKind::ElectricityMaps,
            Fallback {
                g_per_kwh: 381.0,
                label: String::new(),
            },
        );
        s.on_answer(t(12, 0), answer(vec![slot(12, 0, 300.0)]));
        assert!(s.take_messages().is_empty());
        s.on_error(&FetchError::Status {
            path: "/carbon-intensity/latest".into(),
            status: 500,
        });
        s.on_error(&FetchError::Status {
            path: "/carbon-intensity/latest".into(),
            status: 502,
        });
        let m = s.take_messages();
        assert_eq!(m.len(), 1, "one message per kind of fault: {m:?}");
        assert!(m[0].contains("HTTP 500") && m[0].contains("stale"), "{m:?}");
        // Inside the slot: the value, marked stale.
        let i = s.intensity(t(12, 20));
        assert_eq!(
            (i.g_per_kwh.0, i.source.to_string().as_str()),
            (300.0, "emaps-stale")
        );
        // Past the slot: held up to MAX_HOLD, then the table.
        assert_eq!(s.intensity(t(14, 0)).source.to_string(), "emaps-stale");
        let i = s.intensity(t(15, 31));
        assert_eq!(
            (i.g_per_kwh.0, i.source.to_string().as_str()),
            (381.0, "table")
        );
        // A different kind of fault is said again.
        s.on_error(&FetchError::Malformed("x: not JSON".into()));
        assert_eq!(s.take_messages().len(), 1);
        // Recovery: said in the view, not among the warnings (issue 20: the summary called it
        // the "last warning").
        s.on_answer(t(15, 31), answer(vec![slot(15, 30, 250.0)]));
        assert_eq!(s.take_messages(), Vec::<String>::new());
        let v = s.view(t(15, 31));
        assert_eq!(v.recoveries, 1);
        assert!(
            v.recovered
                .as_deref()
                .unwrap_or("")
                .contains("answering again"),
            "{v:?}"
        );
        let i = s.intensity(t(15, 40));
        assert_eq!(
            (i.g_per_kwh.0, i.source.to_string().as_str()),
            (250.0, "emaps")
        );
    }

    #[test]
    fn notes_are_said_once() {
        let mut s = LiveState::new(
            SourceKind::ElectricityMaps,
            Fallback {
                g_per_kwh: 1.0,
                label: String::new(),
            },
        );
        for _ in 0..3 {
            s.on_answer(
                t(12, 0),
                Answer {
                    notes: vec!["forecast not available".into()],
                    ..Default::default()
                },
            );
        }
        assert_eq!(s.take_messages().len(), 1);
    }

    #[test]
    fn polls_follow_the_data() {
        let mut s = LiveState::new(
            SourceKind::GbCarbonIntensity,
            Fallback {
                g_per_kwh: 1.0,
                label: String::new(),
            },
        );
        let cadence = Duration::from_secs(1800);
        // No data: the shortest regular wait.
        assert_eq!(s.next_poll(t(12, 0), cadence, None), MIN_POLL);
        s.on_answer(t(12, 0), answer(vec![slot(12, 0, 1.0)]));
        // Slot ends at 12:30: ask at 12:31:30, i.e. 31.5 min later, capped at the cadence.
        assert_eq!(s.next_poll(t(12, 0), cadence, None), cadence);
        assert_eq!(
            s.next_poll(t(12, 20), cadence, None),
            Duration::from_secs(11 * 60 + 30)
        );
        assert_eq!(s.next_poll(t(12, 29), cadence, None), MIN_POLL);
        assert_eq!(
            s.next_poll(t(12, 0), cadence, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn view_holds_the_forecast_ahead() {
        let mut s = LiveState::new(
            SourceKind::GbCarbonIntensity,
            Fallback {
                g_per_kwh: 1.0,
                label: String::new(),
            },
        );
        s.on_answer(
            t(12, 0),
            answer(vec![slot(11, 0, 5.0), slot(12, 0, 1.0), slot(12, 30, 2.0)]),
        );
        let v = s.view(t(12, 10));
        assert_eq!(v.ahead.len(), 2);
        assert_eq!(v.version, 1);
        assert_eq!(v.label, "uk");
    }
}
