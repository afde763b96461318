//! `carbontop simulate` against an oracle computed here independently: a dynamic programme over
//! the trace's half-hour slots on Zeus's A40 ImageNet/ResNet-50 b128 curve and the MISO signal,
//! the work done quantised to 1/400 epoch, each slot's speed any mix of two measured caps (the
//! least power at that speed by trying every pair), the run finishing inside a slot at the
//! cheapest energy per epoch that still finishes by the budget. No hull code, no Lagrangian and
//! no bisection shared with the engine.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use chrono::{DateTime, Utc};
use common::*;

const Q: f64 = 1.0 / 400.0;

/// (s per epoch, W) per cap of the Zeus A40 ImageNet/ResNet-50 b128 rows.
fn curve() -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(fixture("zeus/summary_power_a40.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[..3] == ["imagenet", "resnet50", "128"])
        .map(|f| (f[5].parse().unwrap(), f[6].parse().unwrap()))
        .collect()
}

/// (start, g/kWh) per half hour of the MISO signal.
fn signal() -> Vec<(DateTime<Utc>, f64)> {
    let text = std::fs::read_to_string(fixture("zeus/carbon_hist.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| {
            let t = DateTime::parse_from_rfc3339(f[1]).unwrap().to_utc();
            (t, f[3].parse().unwrap())
        })
        .collect()
}

/// The least power at speed `r` (epochs/s) sharing time between two caps; None out of range.
fn power_at(c: &[(f64, f64)], r: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    for &(sa, pa) in c {
        for &(sb, pb) in c {
            let (ra, rb) = (1.0 / sa, 1.0 / sb);
            if ra <= r + 1e-15 && r <= rb + 1e-15 {
                let th = if rb > ra { (r - ra) / (rb - ra) } else { 1.0 };
                let p = (1.0 - th) * pa + th * pb;
                best = Some(best.map_or(p, |b: f64| b.min(p)));
            }
        }
    }
    best
}

/// Slots (length s, g/kWh) from `start` until `deadline` seconds after it.
fn slots(sig: &[(DateTime<Utc>, f64)], start: DateTime<Utc>, deadline: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (k, &(t, i)) in sig.iter().enumerate() {
        let end = sig
            .get(k + 1)
            .map_or(t + chrono::TimeDelta::minutes(30), |n| n.0);
        let a = ((t - start).num_milliseconds() as f64 / 1e3).max(0.0);
        let b = ((end - start).num_milliseconds() as f64 / 1e3).min(deadline);
        if b > a {
            out.push((b - a, i));
        }
    }
    out
}

/// The least carbon (g/kWh·J) for `n` epochs within `deadline` s from the slots.
fn dp(c: &[(f64, f64)], sl: &[(f64, f64)], n: f64) -> f64 {
    let r_min = c.iter().map(|p| 1.0 / p.0).fold(f64::INFINITY, f64::min);
    let r_max = c.iter().map(|p| 1.0 / p.0).fold(0.0, f64::max);
    let states = (n / Q).round() as usize;
    let mut cost = vec![f64::INFINITY; states + 1];
    cost[0] = 0.0;
    let mut best = f64::INFINITY;
    for &(l, i) in sl {
        let mut next = vec![f64::INFINITY; states + 1];
        let (lo, hi) = (
            (l * r_min / Q).ceil() as usize,
            (l * r_max / Q).floor() as usize,
        );
        // The least power for each whole-slot amount of work, once per slot.
        let level_p: Vec<Option<f64>> = (lo..=hi)
            .map(|lev| power_at(c, lev as f64 * Q / l))
            .collect();
        for (w, &here) in cost.iter().enumerate().take(states) {
            if !here.is_finite() {
                continue;
            }
            let rest = n - w as f64 * Q;
            // Finish in this slot: the cheapest energy per epoch at a speed that does.
            let need = rest / l;
            if need <= r_max {
                let mut speeds: Vec<f64> =
                    c.iter().map(|p| 1.0 / p.0).filter(|&r| r >= need).collect();
                speeds.push(need.max(r_min));
                for r in speeds {
                    if let Some(p) = power_at(c, r) {
                        best = best.min(here + i * p * rest / r);
                    }
                }
            }
            // Or run the whole slot and go on.
            for lev in lo..=hi {
                let to = w + lev;
                if to >= states {
                    break;
                }
                if let Some(p) = level_p[lev - lo] {
                    next[to] = next[to].min(here + i * p * l);
                }
            }
        }
        cost = next;
    }
    best
}

#[test]
fn the_oracle_agrees_with_an_independent_programme_and_the_time_budget_governor_comes_close() {
    let c = curve();
    let sig = signal();
    let s_fast = c.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let p_fast = c.iter().find(|p| p.0 == s_fast).unwrap().1;
    for budget in ["3%", "10%"] {
        let v = json_of(
            bin()
                .args(["simulate", "--json", "--epochs", "10", "--starts", "10"])
                .args(["--max-slowdown", budget, "--trace"])
                .arg(fixture("zeus/carbon_hist.csv")),
        );
        let ev = &v["evaluation"];
        let starts = ev["starts"].as_array().unwrap();
        assert!(starts.len() >= 10);
        let x: f64 = budget.trim_end_matches('%').parse::<f64>().unwrap() / 100.0;
        let mut sum = 0.0;
        for s in starts {
            let start = DateTime::parse_from_rfc3339(s.as_str().unwrap())
                .unwrap()
                .to_utc();
            let t_fast = 10.0 * s_fast;
            let base: f64 = slots(&sig, start, t_fast)
                .iter()
                .map(|(l, i)| l * i * p_fast)
                .sum();
            let best = dp(&c, &slots(&sig, start, t_fast * (1.0 + x)), 10.0);
            sum += best / base - 1.0;
        }
        let mine = sum / starts.len() as f64;
        eprintln!("within {budget}: the oracle {mine:.4} here");
        let theirs = ev["oracle"].as_f64().unwrap();
        assert!(
            (mine - theirs).abs() < 0.005,
            "within {budget}: oracle {theirs:.4} here {mine:.4}"
        );
        // The time-budget governor within 2 points of the oracle at its own slowdown.
        let rows = ev["rows"].as_array().unwrap();
        let gov = rows
            .iter()
            .find(|r| r["policy"].as_str().unwrap().contains("time budget"))
            .unwrap();
        let (g, at) = (
            gov["d_carbon"].as_f64().unwrap(),
            ev["oracle_at_governor"].as_f64().unwrap(),
        );
        assert!(gov["d_time"].as_f64().unwrap() <= x + 0.002, "{gov}");
        assert!(
            g - at < 0.02,
            "governor {g:.4} against the oracle's {at:.4}"
        );
        // The governor itself, through the Session against the simulated GPU, its profile
        // included: within 2 points of the oracle at its own slowdown, and of the oracle at
        // the slowdown left after its profile (its own decisions), and over its budget by no
        // more than the profile's time.
        let session = rows
            .iter()
            .find(|r| {
                let p = r["policy"].as_str().unwrap();
                p.starts_with("governor ≤") && p.ends_with("(Session)")
            })
            .unwrap();
        let f = |k: &str| session[k].as_f64().unwrap();
        eprintln!("within {budget}: the Session's governor {session}");
        assert!(f("d_carbon") - f("oracle_same") < 0.02, "{session}");
        assert!(
            f("d_carbon") - f("oracle_after_profile") < 0.02,
            "{session}"
        );
        assert!(f("d_time") - f("profile_d_time") <= x + 0.003, "{session}");
        assert!(
            f("profile_s") > 0.0 && f("profile_d_time") < 0.01,
            "{session}"
        );
        // From a saved profile there is no profile to leave out: what the governor itself says
        // (the screen's and the summary's saving against the same work uncapped) is what the
        // Ledger accounted against the uncapped run, within half a point.
        let saved = rows
            .iter()
            .find(|r| {
                r["policy"]
                    .as_str()
                    .unwrap()
                    .ends_with("(Session, saved profile)")
            })
            .unwrap();
        let f = |k: &str| saved[k].as_f64().unwrap();
        assert!(f("d_carbon") - f("oracle_same") < 0.02, "{saved}");
        assert!(f("d_time") <= x + 0.003, "{saved}");
        assert!(
            (f("claimed_d_carbon") - f("d_carbon")).abs() < 0.005,
            "{saved}"
        );
        assert!((f("claimed_d_time") - f("d_time")).abs() < 0.003, "{saved}");
        // The summary's oracle, on the intensity that run saw for the same work within the
        // same slowdown, on its profile: at least as good as the claim, within half a point.
        assert!(
            f("claimed_oracle_d_carbon") <= f("claimed_d_carbon") + 0.005,
            "{saved}"
        );
        // Nothing beats the oracle.
        for r in rows {
            if r["d_time"].as_f64().unwrap() <= x + 1e-9 {
                assert!(r["d_carbon"].as_f64().unwrap() >= theirs - 1e-9, "{r}");
            }
        }
    }
}

#[test]
fn an_unknown_workload_names_the_known_ones() {
    let out = bin()
        .args(["simulate", "--workload", "mnist-lenet-b1", "--trace"])
        .arg(fixture("zeus/carbon_hist.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imagenet-resnet50-b128"), "{err}");
}

#[test]
fn v100_curves_are_zeus_v100_table_and_other_gpus_name_the_measured_ones() {
    let cmd = |args: &[&str]| {
        let mut c = bin();
        c.args(["simulate", "--starts", "1", "--trace"])
            .arg(fixture("zeus/carbon_hist.csv"))
            .args(args);
        c
    };
    let run = |args: &[&str]| cmd(args).output().unwrap();
    let v = json_of(&mut cmd(&["--gpu", "v100", "--json"]));
    assert_eq!(v["gpu"], "v100");
    // Zeus's V100 ImageNet/ResNet-50 b128 rows: 100 to 250 W, 250 W at 3603.6 s per epoch.
    let curve = v["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 7);
    assert_eq!(curve[6]["cap_w"], 250.0);
    assert!((curve[6]["s_per_epoch"].as_f64().unwrap() - 3603.5966666666664).abs() < 1e-9);
    // A name two optimizers share: both named.
    let out = run(&["--gpu", "v100", "--workload", "cifar100-shufflenetv2-b1024"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cifar100-shufflenetv2-b1024-adadelta")
            && err.contains("cifar100-shufflenetv2-b1024-adam"),
        "{err}"
    );
    let out = run(&[
        "--gpu",
        "v100",
        "--workload",
        "cifar100-shufflenetv2-b1024-adam",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A GPU Zeus did not measure: the ones it did.
    let out = run(&["--gpu", "h100"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a40, v100"), "{err}");
}

#[test]
fn a_saved_profile_is_a_curve_simulate_runs_on() {
    // Zeus's A40 ImageNet/ResNet-50 b128 rows as the governor would have saved them, an epoch
    // being 1000 steps: the same curve, so the same oracle.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("My_GPU").join("resnet.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut text = "# carbontop governor profile; gpu=My GPU; workload=resnet; \
                    throughput=steps/s\ncap_w,power_w,throughput,rel_err\n"
        .to_owned();
    let rows: Vec<(f64, f64)> = curve();
    for (k, (s, w)) in rows.iter().enumerate() {
        text += &format!("{},{w},{},0.01\n", 100 + 25 * k, 1000.0 / s);
    }
    std::fs::write(&file, text).unwrap();
    let run = |args: &[&str]| {
        json_of(
            bin()
                .env("CARBONTOP_PROFILE_DIR", dir.path())
                .args(["simulate", "--json", "--starts", "2", "--trace"])
                .arg(fixture("zeus/carbon_hist.csv"))
                .args(args),
        )
    };
    let zeus = run(&[]);
    let saved = run(&["--profile", file.to_str().unwrap()]);
    let by_name = run(&["--gpu", "My GPU", "--workload", "resnet"]);
    for v in [&saved, &by_name] {
        let (a, b) = (&v["evaluation"]["oracle"], &zeus["evaluation"]["oracle"]);
        assert!(
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
            "{a} {b}"
        );
        assert_eq!(v["curve"].as_array().unwrap().len(), 9);
    }
}
