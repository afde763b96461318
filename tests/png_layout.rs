//! The PNG reports' layout, checked in code from the boxes the drawing measured with the
//! embedded font's metrics: every text inside the image and inside its panel, none cut short,
//! every legend clear of every chart's plotted data, a legend on every chart of the comparison,
//! at the default size and at a smaller and a larger one.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use carbontop::report::account::{Recording, account_file};
use carbontop::report::png::{Compared, Kind, Layout, Rect, Run, render, render_compare};
use carbontop::report::summary::{comparison, run_name};
use carbontop::ui::theme;
use std::path::Path;

const FIXTURES: [&str; 2] = [
    "fixtures/traces/a40x4-cifar100.csv",
    "fixtures/traces/a40x4-cifar100-cap200.csv",
];
const SIZES: [(u32, u32); 3] = [(1600, 1000), (1200, 750), (2400, 1500)];

fn recordings() -> Vec<Recording> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    FIXTURES
        .iter()
        .map(|f| account_file(&root.join(f), None, true).unwrap())
        .collect()
}

/// The fixture with GPU0 capped at 250 W and drawing 20% less: the GPUs differ, so the
/// report adds a chart of each GPU's power.
fn differing(dir: &Path) -> Recording {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rdr = csv::Reader::from_path(root.join(FIXTURES[0])).unwrap();
    let head = rdr.headers().unwrap().clone();
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    let (cap, power) = (col("gpu0_cap_w"), col("gpu0_power_w"));
    let path = dir.join("differ.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(&head).unwrap();
    for r in rdr.records() {
        let mut r: Vec<String> = r.unwrap().iter().map(str::to_owned).collect();
        r[cap] = "250.0".into();
        if let Ok(p) = r[power].parse::<f64>() {
            r[power] = (p * 0.8).to_string();
        }
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
    account_file(&path, None, true).unwrap()
}

fn light() -> carbontop::ui::theme::Theme {
    let (themes, _) = theme::resolve(None, None).unwrap();
    themes.into_iter().find(|t| t.name == "light").unwrap()
}

/// The checks every image passes.
fn check(l: &Layout, what: &str) {
    let image = Rect {
        x0: 0,
        y0: 0,
        x1: l.size.0 as i32,
        y1: l.size.1 as i32,
    };
    assert!(!l.items.is_empty(), "{what}: nothing recorded");
    for p in &l.items {
        assert!(image.holds(&p.rect), "{what}: {p:?} leaves the image");
        assert!(p.within.holds(&p.rect), "{what}: {p:?} leaves its panel");
        if p.kind == Kind::Text {
            assert!(!p.what.ends_with('…'), "{what}: {:?} was cut short", p.what);
            assert!(
                p.rect.x1 > p.rect.x0 && p.rect.y1 > p.rect.y0,
                "{what}: {p:?}"
            );
        }
    }
    let data: Vec<&Rect> = l
        .items
        .iter()
        .filter(|p| p.kind == Kind::Data)
        .map(|p| &p.rect)
        .collect();
    for legend in l.items.iter().filter(|p| p.kind == Kind::Legend) {
        for d in &data {
            assert!(
                !legend.rect.overlaps(d),
                "{what}: legend {:?} over plotted data {d:?}",
                legend.rect
            );
        }
    }
    // Legends and texts outside the charts never cover one another.
    let boxes: Vec<&carbontop::report::png::Placed> =
        l.items.iter().filter(|p| p.kind == Kind::Legend).collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(!a.rect.overlaps(&b.rect), "{what}: {a:?} over {b:?}");
        }
    }
}

fn texts(l: &Layout) -> Vec<&str> {
    l.items
        .iter()
        .filter(|p| p.kind == Kind::Text)
        .map(|p| p.what.as_str())
        .collect()
}

#[test]
fn each_fixture_report_keeps_every_text_inside_and_legends_off_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let th = light();
    let mut recs = recordings();
    recs.push(differing(dir.path()));
    for (k, r) in recs.iter().enumerate() {
        for size in SIZES {
            let run = Run {
                meter: &r.meter,
                snap: &r.snapshot,
                cpu_estimate: false,
                cap_note: None,
            };
            let path = dir.path().join("r.png");
            let l = render(&run, &th, &run_name(&r.file), &path, size).unwrap();
            let what = format!("{} at {size:?}", r.file);
            check(&l, &what);
            let t = texts(&l);
            // The header names the run, never its directory.
            assert!(t[0].starts_with("carbontop report · "), "{t:?}");
            assert!(t.iter().all(|x| !x.contains(env!("CARGO_MANIFEST_DIR"))));
            // The headline row: carbon, energy, cost per point, as the Snapshot's.
            let co2 = carbontop::report::summary::fmt_co2e_g(r.snapshot.co2e_g);
            assert!(t.contains(&&*format!("{co2} CO2e")), "{what}: {t:?}");
            let pp = r.snapshot.per_point.unwrap();
            let per = carbontop::report::summary::fmt_co2e_g(pp.co2e_g);
            assert!(t.contains(&&*format!("{per} / point")), "{what}: {t:?}");
            // Axis titles carry units.
            assert!(t.contains(&"power (W)") && t.contains(&"gCO2e"), "{t:?}");
            let n_data = l.items.iter().filter(|p| p.kind == Kind::Data).count();
            let n_legend = l.items.iter().filter(|p| p.kind == Kind::Legend).count();
            // Four charts, and a fifth of each GPU's power where they differ.
            let charts = if k == 2 { 5 } else { 4 };
            assert_eq!((n_data, n_legend), (charts, charts), "{what}");
            assert!(std::fs::metadata(&path).unwrap().len() > 10_000);
        }
    }
}

#[test]
fn the_comparison_says_what_differs_and_the_trade_off_with_a_legend_on_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let th = light();
    let recs = recordings();
    let named: Vec<(&str, &carbontop::engine::Snapshot)> = recs
        .iter()
        .map(|r| (r.file.as_str(), &r.snapshot))
        .collect();
    let runs: Vec<Compared<'_>> = recs
        .iter()
        .map(|r| Compared {
            name: run_name(&r.file),
            meter: &r.meter,
            snap: &r.snapshot,
        })
        .collect();
    for size in SIZES {
        let path = dir.path().join("c.png");
        let l = render_compare(&runs, &comparison(&named), &th, &path, size).unwrap();
        let what = format!("comparison at {size:?}");
        check(&l, &what);
        let t = texts(&l);
        let differs = t.iter().find(|x| x.starts_with("Differs:")).unwrap();
        assert!(differs.contains("caps 4×300 W → 4×200 W"), "{differs}");
        assert!(differs.contains("duration 0:05:47 → 0:05:56"), "{differs}");
        assert!(differs.contains("Same: intensity fixture"), "{differs}");
        let trade = t.iter().find(|x| x.contains(" against ")).unwrap();
        assert!(
            trade.ends_with("−10.68 Wh, −3.81 g CO2e, +9 s, same 55%"),
            "{trade}"
        );
        let n_data = l.items.iter().filter(|p| p.kind == Kind::Data).count();
        let n_legend = l.items.iter().filter(|p| p.kind == Kind::Legend).count();
        assert_eq!((n_data, n_legend), (3, 3), "{what}");
        // No empty third: the lowest text is in the bottom tenth of the image.
        let lowest = l.items.iter().map(|p| p.rect.y1).max().unwrap();
        assert!(lowest > size.1 as i32 * 9 / 10, "{what}: lowest {lowest}");
    }
}

#[test]
fn the_layout_check_fails_on_text_past_the_edge_and_a_legend_over_data() {
    let r = |x0, y0, x1, y1| Rect { x0, y0, x1, y1 };
    let placed = |kind, rect| carbontop::report::png::Placed {
        kind,
        what: "x".into(),
        rect,
        within: r(0, 0, 100, 100),
    };
    let past = Layout {
        size: (100, 100),
        items: vec![placed(Kind::Text, r(90, 10, 110, 20))],
    };
    assert!(std::panic::catch_unwind(|| check(&past, "past")).is_err());
    let over = Layout {
        size: (100, 100),
        items: vec![
            placed(Kind::Data, r(10, 10, 90, 90)),
            placed(Kind::Legend, r(80, 5, 95, 20)),
        ],
    };
    assert!(std::panic::catch_unwind(|| check(&over, "over")).is_err());
}
