//! The real governor through the Session (DESIGN.md §2, §5), in compressed time: a simulated
//! GPU following a measured cap curve, a scripted clock, and one sample every [`TICK_S`]
//! seconds priced by the grid trace, each handed to the Session as `carbontop run` hands its
//! samples — the Ledger accounts it, the cap side lets the governor see it, and the governor's
//! cap reaches the simulated GPU before the next interval. Everything the live governor does
//! is in it: its profile of every candidate cap (warm-up and windows timed by the run's own
//! step count), its decisions, its drift checks. The figures are the Ledger's.

use crate::app::caps::CapSide;
use crate::app::session::{Effect, Event, Session, SessionConfig};
use crate::control::PowerCap;
use crate::control::governor::GovernorConfig;
use crate::control::oracle::Governed;
use crate::control::profile::Saved;
use crate::control::sim::{Curve, MODEL, ScriptedClock, SimGpus, SimSource};
use crate::engine::schedule::{CapCurve, Outcome, Signal};
use crate::engine::{Ledger, LedgerConfig, Meter};
use crate::sample::{CpuReading, Intensity, Sample, SourceKind};
use crate::source::GpuSource;
use crate::ui::model::{Dashboard, Mode, RunInfo};
use chrono::TimeDelta;

/// Seconds between two samples. A tuning constant of the simulation, not a measurement: short
/// against the governor's 5-minute decisions and its profile windows (10 s), long enough that
/// ten 10-hour runs of each mode take a few seconds.
pub const TICK_S: f64 = 5.0;

/// The governor through the Session from one start: η, the time budget, and the time budget
/// again from the profile the first budget run measured (as a later run of the same workload
/// on the same GPU reuses it).
pub fn rows(
    curve: &CapCurve,
    steps_per_epoch: f64,
    signal: &Signal,
    epochs: f64,
    eta: f64,
    max_slowdown: f64,
) -> Result<Vec<Governed>, String> {
    let run = |cfg, policy: String, saved: Option<&Saved>| {
        governed(
            curve,
            steps_per_epoch,
            signal,
            epochs,
            cfg,
            policy,
            saved,
            None,
        )
    };
    let budget = GovernorConfig {
        max_slowdown: Some(max_slowdown),
        ..GovernorConfig::default()
    };
    let x = max_slowdown * 100.0;
    let first = run(budget, format!("governor ≤{x:+.1}% (Session)"), None)?;
    let again = match &first.measured {
        Some(p) => Some(run(
            budget,
            format!("governor ≤{x:+.1}% (Session, saved profile)"),
            Some(p),
        )?),
        None => None,
    };
    let eta = GovernorConfig {
        eta,
        ..GovernorConfig::default()
    };
    let mut out = vec![
        run(eta, format!("governor η={} (Session)", eta.eta), None)?,
        first,
    ];
    out.extend(again);
    Ok(out)
}

/// An upper bound on the seconds the governor's profile adds to a run: every candidate cap
/// settled and measured for its longest window.
pub fn profile_allowance_s(curve: &CapCurve) -> f64 {
    let cfg = GovernorConfig::default();
    let (lo, hi) = (curve.points()[0].cap_w, curve.max().cap_w);
    let caps = ((hi - lo) / cfg.step_w).ceil() + 1.0;
    caps * (cfg.warmup_s + cfg.longest_window() + 2.0 * TICK_S)
}

/// The simulated GPU's curve for `curve` (`steps_per_epoch` scales its step count).
fn sim_curve(curve: &CapCurve, steps_per_epoch: f64) -> Curve {
    let rows = curve
        .points()
        .iter()
        .map(|p| (p.cap_w, p.s_per_epoch, p.power_w()))
        .collect();
    Curve::new(rows, steps_per_epoch)
}

fn session(caps: CapSide, models: Vec<String>) -> Session {
    let dash = Dashboard::new(
        RunInfo {
            title: "simulate".into(),
            zone: "trace".into(),
            cpu_estimate: false,
            gpus: models,
            cap_mode: caps.mode(),
            samples_path: None,
            mode: Mode::Live,
        },
        Meter::new(Default::default(), false),
    );
    let cfg = SessionConfig {
        screen: false,
        child: false,
        duration_s: None,
        recording: false,
        hold: false,
    };
    // PUE 1: the GPU's own energy, as every other policy's figures are.
    Session::new(dash, Ledger::new(LedgerConfig::default()), caps, cfg)
}

/// One sample at `t`, the interval since `t0` priced at the signal's mean over it.
fn sample(src: &mut SimSource, signal: &Signal, t0: f64, t: f64) -> Event {
    Event::Sample {
        sample: Box::new(Sample {
            time: signal.start + TimeDelta::milliseconds((t * 1e3) as i64),
            elapsed_s: t,
            gpus: src.read(),
            cpu: CpuReading::Unknown,
            mem: None,
            net: None,
            intensity: Some(Intensity {
                g_per_kwh: crate::units::GPerKwh(signal.mean(t0, t)),
                source: SourceKind::Replay.into(),
            }),
            progress: src.progress().unwrap_or_default(),
            process: None,
            bands: Default::default(),
        }),
        warnings: vec![],
        grid: None,
    }
}

/// N epochs governed by `cfg` through the Session from the signal's start, on a GPU following
/// `curve`. The run ends at the sample on which its work is done; that last interval is cut
/// where the work was done, so its time and energy are the run's own.
#[allow(clippy::too_many_arguments)]
pub fn governed(
    curve: &CapCurve,
    steps_per_epoch: f64,
    signal: &Signal,
    epochs: f64,
    cfg: GovernorConfig,
    policy: String,
    saved: Option<&Saved>,
    keep: Option<&std::path::Path>,
) -> Result<Governed, String> {
    let clock = ScriptedClock::default();
    let c = sim_curve(curve, steps_per_epoch);
    let sim = SimGpus::with_curve(1, None, Box::new(clock.clone()), c.clone())
        .map_err(|e| e.to_string())?;
    let mut actuator = sim.actuator();
    let mut caps = CapSide::governed(Box::new(sim.actuator()), cfg);
    if let Some(p) = saved {
        caps.preload(p.clone());
    }
    if let Some(path) = keep {
        caps.keep_profiles(path.to_path_buf(), MODEL, &policy);
    }
    caps.start_governor()?;
    let reused = caps.governor().is_some_and(|g| g.reused());
    let mut src = sim.source();
    let mut s = session(caps, src.models());
    let need = epochs * steps_per_epoch;
    let slowest = curve.slowest_s();
    let limit = (epochs * slowest).min(signal.span_s());
    let (mut t, mut done) = (0.0, 0.0);
    let mut spans: Vec<(f64, f64, f64)> = Vec::new();
    // A saved profile: no minutes spent measuring.
    let mut profile = reused.then_some((0.0, 0.0, 0.0));
    s.handle(0.0, sample(&mut src, signal, 0.0, 0.0));
    while done < need * (1.0 - 1e-9) {
        // Up to the next tick, or to where the work is done at the present cap.
        let cap = actuator.get(0).map_err(|e| e.to_string())?;
        let rate = c.steps_per_s(cap);
        let next = t + TICK_S.min((need - done) / rate);
        if next > limit + TICK_S {
            return Err(format!(
                "{policy}: not done after {:.1} h (the trace, or the slowest cap's run, ends there)",
                limit / 3600.0
            ));
        }
        clock.set(next);
        let fx = s.handle(next, sample(&mut src, signal, t, next));
        if let Some(Effect::Warn(w)) = fx.iter().find(|f| matches!(f, Effect::Warn(_))) {
            return Err(format!("{policy}: {w}"));
        }
        done += rate * (next - t);
        match spans.last_mut() {
            Some(c) if c.2 == cap => c.1 += next - t,
            _ => spans.push((t, next - t, cap)),
        }
        if profile.is_none() && !s.caps.governor().is_some_and(|g| g.is_profiling()) {
            profile = Some((
                next,
                s.dash.meter.totals.co2e_by.gpu,
                (done / steps_per_epoch).min(epochs),
            ));
        }
        t = next;
    }
    let measured = s
        .caps
        .governor()
        .filter(|g| !g.reused() && g.blind().is_none() && !g.profile().is_empty())
        .map(|g| Saved {
            gpu: MODEL.into(),
            workload: policy.clone(),
            by_steps: g.by_steps(),
            points: g.profile().to_vec(),
        });
    let claimed = s.caps.governor().map(|g| g.savings);
    let against = s.caps.against_oracle();
    let totals = &s.dash.meter.totals;
    let (profile_s, profile_g, profile_epochs) = profile.unwrap_or((t, totals.co2e_by.gpu, epochs));
    Ok(Governed {
        outcome: Outcome {
            policy,
            time_s: t,
            energy_j: totals.gpu_j,
            carbon_g: totals.co2e_by.gpu,
            caps: spans,
        },
        profile_s,
        profile_g,
        profile_epochs,
        measured,
        claimed,
        against,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::reprice::read_trace;
    use crate::control::oracle::zeus_curve;
    use crate::engine::schedule::static_cap;

    /// The Zeus A40 ImageNet/ResNet-50 b128 curve and the MISO signal from its start.
    fn setup() -> (CapCurve, Signal) {
        let curve = zeus_curve("a40", "imagenet-resnet50-b128").unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/zeus/carbon_hist.csv");
        let tr = read_trace(std::path::Path::new(path)).unwrap();
        let sig = Signal::new(&tr, tr.start());
        (curve, sig)
    }

    #[test]
    fn the_session_governor_profiles_every_cap_then_meets_its_budget_by_the_step_count() {
        let (curve, sig) = setup();
        let cfg = GovernorConfig {
            max_slowdown: Some(0.03),
            ..Default::default()
        };
        let g = governed(&curve, 10_009.0, &sig, 10.0, cfg, "x".into(), None, None).unwrap();
        // The profile: every cap from 300 W down to 100 W, in turn, first.
        let caps: Vec<f64> = g.outcome.caps.iter().take(9).map(|c| c.2).collect();
        assert_eq!(
            caps,
            [
                300.0, 275.0, 250.0, 225.0, 200.0, 175.0, 150.0, 125.0, 100.0
            ]
        );
        assert!((g.profile_s - g.outcome.caps[9].0).abs() < 1e-9);
        assert!(
            g.profile_s > 300.0 && g.profile_s < 1200.0,
            "{}",
            g.profile_s
        );
        // After it, the budget by the run's own step count: +3% from the profile's end.
        let uncapped = static_cap(curve.max(), &sig, 10.0).unwrap();
        let t_max = (10.0 - g.profile_epochs) * curve.max().s_per_epoch;
        let after = (g.outcome.time_s - g.profile_s) / t_max - 1.0;
        assert!((0.025..=0.033).contains(&after), "{after}");
        // The Ledger's figures: less energy and carbon than uncapped, the same work.
        assert!(g.outcome.energy_j < 0.9 * uncapped.energy_j);
        assert!(g.outcome.carbon_g < 0.9 * uncapped.carbon_g);
        let spans: f64 = g.outcome.caps.iter().map(|c| c.1).sum();
        assert!((spans - g.outcome.time_s).abs() < 1e-6);
        // What the screen and the summary claim (the governor's Savings, since its profile)
        // agrees with the Ledger's accounting of the same stretch against running its work
        // uncapped at the same hours.
        let c = g.claimed.unwrap();
        let ledger_g = g.outcome.carbon_g - g.profile_g;
        let max = curve.max();
        let work_j = (10.0 - g.profile_epochs) * max.j_per_epoch;
        let time_s = g.outcome.time_s - g.profile_s;
        assert!(
            (c.co2e_g - ledger_g).abs() < 0.01 * ledger_g,
            "{c:?} against {ledger_g}"
        );
        assert!(
            (c.uncapped_energy_j / work_j - 1.0).abs() < 0.02,
            "{c:?} against {work_j}"
        );
        assert!(
            (c.time_s / time_s - 1.0).abs() < 0.01,
            "{c:?} against {time_s}"
        );
        assert!(
            (c.extra_time_pct() / 100.0 - after).abs() < 0.005,
            "{c:?} against {after}"
        );
    }

    #[test]
    fn a_profile_measured_once_is_saved_and_the_next_run_starts_from_it() {
        let (curve, sig) = setup();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("NVIDIA_A40").join("train.csv");
        let cfg = GovernorConfig {
            max_slowdown: Some(0.03),
            ..Default::default()
        };
        let run = || {
            governed(
                &curve,
                10_009.0,
                &sig,
                2.0,
                cfg,
                "x".into(),
                None,
                Some(&file),
            )
        };
        let first = run().unwrap();
        // Measured, then saved: nine caps, highest first.
        let saved = Saved::load(&file).unwrap().unwrap();
        assert_eq!(saved.points.len(), 9);
        assert_eq!(saved.points[0].cap_w, 300.0);
        assert!(saved.by_steps);
        assert!(first.profile_s > 300.0);
        // The next run profiles nothing: its first cap is the governor's choice, not 300 W,
        // and it finishes sooner for the same work.
        let second = run().unwrap();
        assert_eq!(second.profile_s, 0.0);
        assert!(
            second.outcome.caps[0].2 < 300.0,
            "{:?}",
            &second.outcome.caps[..3]
        );
        assert!(second.outcome.time_s < first.outcome.time_s);
        // A file that is not a profile: said, and profiled again.
        std::fs::write(&file, "cap,w\n").unwrap();
        let third = run().unwrap();
        assert!(third.profile_s > 300.0);
    }
}
