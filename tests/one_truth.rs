//! One truth: each fixture trace through every output — `report` text and `--json`, the PNG's
//! summary, the comparison table, the replay screen, `/metrics` of `serve --replay` and
//! emissions.csv — shows the same kWh, gCO2e, embodied (with its band), communication band,
//! per-point cost and tree-days, all equal to what the recording itself says where it says it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use carbontop::engine::Snapshot;
use carbontop::report::summary::{fmt_co2e_g, fmt_energy_kwh, fmt_sig};
use common::*;

const TRACES: [&str; 2] = [
    "traces/a40x4-cifar100.csv",
    "traces/a40x4-cifar100-cap200.csv",
];

/// The strings every human-readable output must show for a run.
fn shown(s: &Snapshot) -> Vec<(&'static str, String)> {
    let e = s.embodied.unwrap();
    let c = s.comms.unwrap();
    let (lo, hi) = c.range().unwrap();
    vec![
        ("energy", fmt_energy_kwh(s.energy_kwh.0)),
        ("carbon", format!("{} CO2e", fmt_co2e_g(s.co2e_g.0))),
        ("embodied", fmt_co2e_g(e.g)),
        ("embodied low", fmt_co2e_g(e.low)),
        ("embodied high", fmt_co2e_g(e.high)),
        ("comms low", fmt_co2e_g(lo)),
        ("comms high", fmt_co2e_g(hi)),
        ("per point", fmt_co2e_g(s.per_point.unwrap().co2e_g.0)),
        ("tree-days", fmt_sig(s.equivalents.tree_days)),
    ]
}

fn assert_shows(output: &str, text: &str, s: &Snapshot) {
    for (what, want) in shown(s) {
        assert!(
            text.contains(&want),
            "{output} does not show the {what} {want:?}:\n{text}"
        );
    }
}

fn snapshot(file: &str) -> Snapshot {
    carbontop::report::account::account_file(&fixture(file), None, false)
        .unwrap()
        .snapshot
}

#[test]
fn every_output_shows_the_same_figures() {
    for file in TRACES {
        let s = snapshot(file);
        // The engine agrees with the recording's own cumulative columns (its last row).
        let (h, rows) = read_csv(&fixture(file));
        let last = rows.last().unwrap();
        assert!(close(
            s.energy_kwh.0,
            num(&last[col(&h, "energy_kwh")]),
            1e-9
        ));
        assert!(close(s.co2e_g.0, num(&last[col(&h, "co2e_g")]), 1e-9));
        // Per point is C_total / (a_last − a_first) (DESIGN.md §5).
        let accs: Vec<f64> = rows
            .iter()
            .map(|r| &r[col(&h, "accuracy")])
            .filter(|a| !a.is_empty())
            .map(|a| num(a))
            .collect();
        let gained = accs.last().unwrap() - accs[0];
        assert!(close(
            s.per_point.unwrap().co2e_g.0,
            s.co2e_g.0 / gained,
            1e-12
        ));

        // report: text.
        let o = bin().arg("report").arg(fixture(file)).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_shows("report", &String::from_utf8_lossy(&o.stdout), &s);

        // report --json: the same numbers, at full precision.
        let (v, _) = report_json(&fixture(file));
        let r = &v["runs"][0];
        let f = |k: &str| r.pointer(k).and_then(serde_json::Value::as_f64).unwrap();
        assert_eq!(f("/energy_kwh"), s.energy_kwh.0);
        assert_eq!(f("/co2e_g"), s.co2e_g.0);
        assert_eq!(f("/embodied_co2e/g"), s.embodied.unwrap().g.0);
        assert_eq!(f("/embodied_co2e/low_g"), s.embodied.unwrap().low.0);
        assert_eq!(f("/embodied_co2e/high_g"), s.embodied.unwrap().high.0);
        assert_eq!(f("/comms_co2e/low_g"), s.comms.unwrap().low.0);
        assert_eq!(f("/comms_co2e/high_g"), s.comms.unwrap().high.0);
        assert_eq!(f("/per_point/co2e_g"), s.per_point.unwrap().co2e_g.0);
        assert_eq!(f("/tree_days"), s.equivalents.tree_days);

        // The PNG's summary box.
        let png = carbontop::report::png::summary_lines(&s, "summary")
            .into_iter()
            .map(|l| l.0)
            .collect::<Vec<_>>()
            .join("\n");
        assert_shows("the PNG summary", &png, &s);

        // The replay screen.
        let d = carbontop::app::replay::dashboard_of(&fixture(file), None).unwrap();
        assert_eq!(d.meter.snapshot(), s);
        let (themes, i) = carbontop::ui::theme::resolve(None, None).unwrap();
        let ui = carbontop::ui::state::UiState::new(themes, i, true, false);
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(200, 60)).unwrap();
        t.draw(|fr| carbontop::ui::render::draw(fr, &d, &ui))
            .unwrap();
        let buf = t.backend().buffer();
        let screen: String = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    + "\n"
            })
            .collect();
        assert_shows("the replay screen", &screen, &s);

        // emissions.csv (CodeCarbon's units: kg, kWh).
        let dir = tempfile::tempdir().unwrap();
        let em = dir.path().join("emissions.csv");
        let o = bin()
            .arg("report")
            .arg(fixture(file))
            .arg("--emissions")
            .arg(&em)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (eh, erows) = read_csv(&em);
        assert!(close(
            num(&erows[0][col(&eh, "emissions")]) * 1000.0,
            s.co2e_g.0,
            1e-12
        ));
        assert!(close(
            num(&erows[0][col(&eh, "energy_consumed")]),
            s.energy_kwh.0,
            1e-12
        ));
    }
}

#[test]
fn the_comparison_table_shows_each_runs_figures() {
    let o = bin()
        .arg("report")
        .args(TRACES.map(fixture))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let table = text.split("carbontop comparison").nth(1).unwrap();
    let row = |k: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or_else(|| panic!("no {k} row in {table}"))
            .to_owned()
    };
    for file in TRACES {
        let s = snapshot(file);
        assert!(
            row("energy").contains(&fmt_energy_kwh(s.energy_kwh.0)),
            "{table}"
        );
        assert!(row("carbon").contains(&fmt_co2e_g(s.co2e_g.0)), "{table}");
        assert!(
            row("per point").contains(&fmt_co2e_g(s.per_point.unwrap().co2e_g.0)),
            "{table}"
        );
    }
}

/// `/metrics` of `serve --replay` holds the file's figures, and `watch --agent` over two such
/// agents gives the job's totals as their sum and each node's as its file's.
#[test]
fn agents_and_the_aggregator_show_the_files_figures() {
    let (_a1, p1) = agent(TRACES[0], "n1");
    let (_a2, p2) = agent(TRACES[1], "n2");
    let snaps = TRACES.map(snapshot);
    for (addr, s) in [&p1, &p2].into_iter().zip(&snaps) {
        let m = metrics_when_done(addr, s.ticks as usize);
        assert!(close(
            value(&m, "carbontop_facility_energy_joules_total") / 3.6e6,
            s.energy_kwh.0,
            1e-9
        ));
        assert!(close(
            value(&m, "carbontop_co2e_grams_total"),
            s.co2e_g.0,
            1e-9
        ));
        assert!(close(
            value(&m, "carbontop_embodied_co2e_grams_total"),
            s.embodied.unwrap().g.0,
            1e-9
        ));
    }
    let (out, _) = aggregate(&[&p1, &p2], "0.5s");
    let job = out.lines().find(|l| l.starts_with("nodes=")).unwrap();
    assert!(close(
        field(job, "energy_kwh"),
        snaps[0].energy_kwh.0 + snaps[1].energy_kwh.0,
        1e-9
    ));
    assert!(close(
        field(job, "co2e_g"),
        snaps[0].co2e_g.0 + snaps[1].co2e_g.0,
        1e-9
    ));
    for (node, s) in ["n1", "n2"].into_iter().zip(&snaps) {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("node={node} ")))
            .unwrap_or_else(|| panic!("no line for {node} in {out}"));
        assert!(
            close(field(line, "energy_kwh"), s.energy_kwh.0, 1e-9),
            "{line}"
        );
        assert!(close(field(line, "co2e_g"), s.co2e_g.0, 1e-9), "{line}");
    }
}
